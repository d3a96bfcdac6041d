package adminapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core"
)

// gaioCall is one request of the Gaio replay and what it must answer.
type gaioCall struct {
	method, path, body string
	want               int
	wantBody           string // exact JSON, or "" to skip
}

// TestGaioUserManagerAPI replays every example of the Gaio seed document
// in order, first as written (ids 0, which no user or group has: 404 in
// Gaio's error shape) and then with the ids of the users and groups made
// along the way, checking statuses and shapes; a user made through
// create-user logs in with its password; the gaio key opens nothing else.
func TestGaioUserManagerAPI(t *testing.T) {
	e := newEnv(t)
	key := e.dialectKey(core.ScopeGaio)
	g := func(c gaioCall) map[string]any {
		t.Helper()
		w := call(t, e.admin, c.method, "/api/auth/manager"+c.path, c.body, "Authorization", "Bearer "+key, "Content-Type", "application/json")
		if w.Code != c.want {
			t.Fatalf("%s %s %s: %d, want %d: %s", c.method, c.path, c.body, w.Code, c.want, w.Body)
		}
		if c.wantBody != "" && !jsonEqual(t, c.wantBody, w.Body.String()) {
			t.Errorf("%s %s: body %s, want %s", c.method, c.path, w.Body, c.wantBody)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", c.method, c.path, ct)
		}
		var m map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		return m
	}
	notFound := func(m map[string]any) {
		t.Helper()
		if m["errors"] != true || m["message"] == "" {
			t.Errorf("error body %v, want {errors: true, message}", m)
		}
	}

	// The seed's groups, so that its user examples have them.
	g(gaioCall{"POST", "/create-group", `{"name":"Analytics team"}`, 200, `{"groupId":1,"name":"Analytics team"}`})
	g(gaioCall{"POST", "/create-group", `{"name":"Development team"}`, 200, `{"groupId":2,"name":"Development team"}`})
	g(gaioCall{"POST", "/create-group", `{"name":"RH team"}`, 200, `{"groupId":3,"name":"RH team"}`})

	// The examples as written.
	g(gaioCall{"GET", "/users/1", "", 200, `[]`})
	notFound(g(gaioCall{"GET", "/user/1", "", 404, ""}))
	g(gaioCall{"POST", "/create-user", `{"name":"New User","email":"new.user@example.com","password":"securePassword123","groups":["Development team"]}`, 200,
		`{"userId":1,"name":"New User","email":"new.user@example.com","status":"active","groups":["Development team"]}`})
	notFound(g(gaioCall{"POST", "/status", `{"userId":0,"status":"active"}`, 404, ""}))
	g(gaioCall{"POST", "/update", `{"userId":1,"name":"Updated Gaio User","email":"gaio.user@example.com"}`, 200, `{"status":"done"}`})
	notFound(g(gaioCall{"POST", "/update-password", `{"userId":0,"password":"newSecurePassword"}`, 404, ""}))
	notFound(g(gaioCall{"DELETE", "/delete", `{"userId":0}`, 404, ""}))
	g(gaioCall{"POST", "/create-group", `{"name":"New Group"}`, 200, `{"groupId":4,"name":"New Group"}`})
	notFound(g(gaioCall{"DELETE", "/delete-group", `{"groupId":0}`, 404, ""}))
	g(gaioCall{"GET", "/groups/1", "", 200, `[{"groupId":1,"name":"Analytics team"},{"groupId":2,"name":"Development team"},{"groupId":3,"name":"RH team"},{"groupId":4,"name":"New Group"}]`})
	notFound(g(gaioCall{"POST", "/group/grant", `{"userId":0,"groupIds":[0]}`, 404, ""}))
	notFound(g(gaioCall{"POST", "/group/revoke", `{"userId":0,"groupIds":[0]}`, 404, ""}))
	notFound(g(gaioCall{"POST", "/tag/grant", `{"userId":0,"tags":["admin"]}`, 404, ""}))
	notFound(g(gaioCall{"POST", "/tag/revoke", `{"userId":0,"tags":["admin"]}`, 404, ""}))

	// The examples with real ids: user 1 gets all three seed groups, as the
	// seed's example user has them.
	g(gaioCall{"POST", "/group/grant", `{"userId":1,"groupIds":[1,2,3]}`, 200, `{"status":"done"}`})
	want := `{"userId":1,"name":"Updated Gaio User","email":"gaio.user@example.com","status":"active","groups":["Analytics team","Development team","RH team"]}`
	g(gaioCall{"GET", "/user/1", "", 200, want})
	g(gaioCall{"GET", "/users/1", "", 200, "[" + want + "]"})
	g(gaioCall{"GET", "/users", "", 200, "[" + want + "]"})
	g(gaioCall{"GET", "/users/2", "", 200, `[]`})
	g(gaioCall{"POST", "/update-password", `{"userId":1,"password":"newSecurePassword"}`, 200, `{"status":"done"}`})
	if code, _ := e.login("email", "gaio.user@example.com", "newSecurePassword"); code != 200 {
		t.Errorf("login with the password set through Gaio: %d", code)
	}
	g(gaioCall{"POST", "/tag/grant", `{"userId":1,"tags":["admin"]}`, 200, `{"status":"done"}`})
	g(gaioCall{"POST", "/tag/grant", `{"groupId":2,"tags":["deploy"]}`, 200, `{"status":"done"}`})
	if got := e.must(200, "GET", "/users/new.user@example.com/tags", ""); !cmp.Equal(got["effectiveTags"], []any{"admin", "deploy"}) {
		t.Errorf("effective tags after Gaio's grants: %v", got)
	}
	g(gaioCall{"POST", "/tag/revoke", `{"userId":1,"tags":["admin"]}`, 200, `{"status":"done"}`})
	g(gaioCall{"POST", "/tag/revoke", `{"groupId":2,"tags":["deploy"]}`, 200, `{"status":"done"}`})
	g(gaioCall{"POST", "/group/revoke", `{"userId":1,"groupIds":[1,3]}`, 200, `{"status":"done"}`})
	g(gaioCall{"POST", "/status", `{"userId":1,"status":"inactive"}`, 200, `{"status":"done"}`})
	g(gaioCall{"GET", "/user/1", "", 200, `{"userId":1,"name":"Updated Gaio User","email":"gaio.user@example.com","status":"inactive","groups":["Development team"]}`})
	g(gaioCall{"POST", "/status", `{"userId":1,"status":"active"}`, 200, `{"status":"done"}`})
	g(gaioCall{"DELETE", "/delete-group", `{"groupId":4}`, 200, `{"status":"done"}`})
	g(gaioCall{"DELETE", "/delete-group", `{"groupId":2}`, 200, `{"status":"done"}`})
	g(gaioCall{"GET", "/user/1", "", 200, `{"userId":1,"name":"Updated Gaio User","email":"gaio.user@example.com","status":"active","groups":[]}`})

	// Errors: a taken email, bad input, a taken group name.
	g(gaioCall{"POST", "/create-user", `{"name":"Other","email":"GAIO.user@example.com","password":"securePassword123"}`, 409, `{"errors":true,"message":"userExists"}`})
	m := g(gaioCall{"POST", "/create-user", `{"name":"Other","email":"other@example.com","password":"short"}`, 422, ""})
	if msg, _ := m["message"].(string); !strings.HasPrefix(msg, "password:") {
		t.Errorf("a short password: %v", m)
	}
	g(gaioCall{"POST", "/create-user", `{"name":"Other","email":"other@example.com","password":"securePassword123","groups":["Nobody"]}`, 404, ""})
	if w := e.do("GET", "/users?email=other@example.com", ""); w.Header().Get("X-Total-Count") != "0" {
		t.Errorf("a refused create-user left a user: %s", w.Body)
	}
	g(gaioCall{"POST", "/create-group", `{"name":"rh TEAM"}`, 409, `{"errors":true,"message":"groupExists"}`})
	g(gaioCall{"POST", "/status", `{"userId":1,"status":"paused"}`, 422, ""})
	g(gaioCall{"POST", "/status", `{"userId":1`, 400, ""})
	g(gaioCall{"GET", "/users/0", "", 422, ""})
	for range 60 {
		g(gaioCall{"POST", "/create-group", fmt.Sprintf(`{"name":"g%s"}`, core.NewID()[:8]), 200, ""})
	}
	var page2 []any
	w := call(t, e.admin, "GET", "/api/auth/manager/groups/2", "", "Authorization", "Bearer "+key)
	if err := json.Unmarshal(w.Body.Bytes(), &page2); err != nil || len(page2) != 12 {
		t.Errorf("groups page 2: %d items (%v), want 12 of 62", len(page2), err)
	}

	// The gaio key opens nothing else, in each surface's shape.
	for _, c := range []struct {
		h            bool // admin listener
		method, path string
		want         int
		ctype        string
	}{
		{true, "GET", "/users", 403, "application/problem+json"},
		{true, "GET", "/groups", 403, "application/problem+json"},
		{true, "GET", "/.q/api/management/users/" + core.NewID(), 403, "application/problem+json"},
		{false, "GET", "/verify", 401, "application/problem+json"},
		{false, "GET", "/gl/users/me", 401, "application/json"},
	} {
		h := e.public
		if c.h {
			h = e.admin
		}
		w := call(t, h, c.method, c.path, "", "Authorization", "Bearer "+key)
		if w.Code != c.want || w.Header().Get("Content-Type") != c.ctype {
			t.Errorf("gaio key on %s %s: %d %s", c.method, c.path, w.Code, w.Header().Get("Content-Type"))
		}
	}
	// Without a key, or with another dialect's: Gaio's shape.
	for _, k := range []string{"", e.dialectKey(core.ScopeQloud)} {
		w := call(t, e.admin, "GET", "/api/auth/manager/users", "", "Authorization", "Bearer "+k)
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if (w.Code != 401 && w.Code != 403) || body["errors"] != true {
			t.Errorf("key %q on Gaio: %d %s", k, w.Code, w.Body)
		}
	}
	// The native admin key opens Gaio's routes.
	if w := call(t, e.admin, "GET", "/api/auth/manager/users", "", "Authorization", "Bearer "+testAdminKey); w.Code != 200 {
		t.Errorf("native admin key on Gaio: %d", w.Code)
	}
	if strings.Contains(e.logs.String(), key) || strings.Contains(e.logs.String(), "securePassword123") {
		t.Error("the key or a password reached the log")
	}
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, want, got string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal([]byte(want), &a); err != nil {
		t.Fatalf("want is not JSON: %s", want)
	}
	if err := json.Unmarshal([]byte(got), &b); err != nil {
		return false
	}
	return cmp.Equal(a, b)
}
