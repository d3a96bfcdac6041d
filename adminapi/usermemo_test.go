package adminapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/core"
)

// TestUserMemo: GET /users/{id} and GET /users answer the same bytes and ETag
// whether a user's rendering comes from the memo or not, and a changed user is
// shown changed at once (its stored form is another key).
func TestUserMemo(t *testing.T) {
	e := newEnv(t)
	u := e.must(200, "POST", "/users", `{"username":"memo","firstname":"M","lastname":"<&>","email":"memo@example.com"}`)
	path := "/users/" + u["id"].(string)
	first := e.do("GET", path, "")
	if n := e.srv.users.m.Len(); n != 1 {
		t.Fatalf("memo after one read: %d users, want 1", n)
	}
	again := e.do("GET", path, "")
	if first.Body.String() != again.Body.String() || first.Header().Get("ETag") != again.Header().Get("ETag") {
		t.Errorf("a read from the memo differs:\n%s %s\n%s %s", first.Header().Get("ETag"), first.Body, again.Header().Get("ETag"), again.Body)
	}
	stored, err := e.store.GetUser(t.Context(), u["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := renderUser(stored, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(fresh.body) != again.Body.String() || `"`+fresh.version+`"` != again.Header().Get("ETag") {
		t.Errorf("memo's answer %s %s, want as rendered %q %s", again.Header().Get("ETag"), again.Body, fresh.version, fresh.body)
	}
	list := e.do("GET", "/users", "")
	if !strings.Contains(list.Body.String(), string(fresh.view())) {
		t.Errorf("list %s does not hold the user's view %s", list.Body, fresh.view())
	}

	e.must(200, "PUT", path, `{"firstname":"Changed"}`)
	if got := e.must(200, "GET", path, ""); got["firstname"] != "Changed" {
		t.Errorf("GET after a change: firstname %v, want Changed", got["firstname"])
	}
	if got := e.do("GET", path, ""); got.Header().Get("ETag") == first.Header().Get("ETag") {
		t.Errorf("GET after a change kept the ETag %s", got.Header().Get("ETag"))
	}
	if got := e.do("GET", "/users", ""); !strings.Contains(got.Body.String(), `"firstname":"Changed"`) {
		t.Errorf("list after a change: %s", got.Body)
	}
}

// TestUserMemoBound: the memo keeps at most two generations of userMemoSize.
func TestUserMemoBound(t *testing.T) {
	m := newUserMemo()
	for i := range 3*userMemoSize + 7 {
		u := core.User{ID: fmt.Sprint(i), Username: "u", Stored: fmt.Sprintf(`{"id":"%d"}`, i)}
		if _, err := m.render(u, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.m.Len(); n > 2*userMemoSize {
		t.Errorf("memo holds %d users, want at most %d", n, 2*userMemoSize)
	}
	// A user without a stored form is rendered, not kept.
	before := m.m.Len()
	if _, err := m.render(core.User{ID: "x", Username: "x"}, true); err != nil || m.m.Len() != before {
		t.Errorf("a user without a stored form: err %v, memo %d → %d", err, before, m.m.Len())
	}
}
