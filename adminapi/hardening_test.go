package adminapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// verifyAnswerOf describes a /verify answer for comparisons: status, the
// headers a gateway acts on, and the body without its request id.
func verifyAnswerOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	body := decode(t, w.Body.Bytes())
	delete(body, "requestId")
	b, _ := json.Marshal(body)
	return fmt.Sprintf("%d Retry-After=%q WWW-Authenticate=%q %s", w.Code, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"), b)
}

// TestVerifyUnknownLikeKnownHTTP: through the handler, 21+ wrong tries from
// one address for an unknown key id (or Basic username) and for a known one
// get the same statuses, Retry-After and WWW-Authenticate headers and bodies,
// in the same sequence.
func TestVerifyUnknownLikeKnownHTTP(t *testing.T) {
	e := newEnv(t)
	e.mr.SetTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) // Redis' clock stands still: exact Retry-After
	e.must(200, "POST", "/users", `{"username":"ana","firstname":"A","lastname":"B","email":"ana@example.com"}`)
	e.must(200, "POST", "/credentials", `{"consumerId":"ana","type":"key-auth","credential":{"keyId":"ana-key"}}`)
	e.must(200, "POST", "/credentials", `{"consumerId":"ana","type":"basic-auth","credential":{"password":"correct horse battery"}}`)
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for i, tt := range []struct {
		name           string
		header         string
		unknown, known string
	}{
		{"key-auth", "x-api-key", "nobody-key:" + strings.Repeat("x", 43), "ana-key:" + strings.Repeat("x", 43)},
		{"basic-auth", "Authorization", basic("nobody", "wrong password"), basic("ana", "wrong password")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var unknown, known []string
			for range 25 {
				unknown = append(unknown, verifyAnswerOf(t, e.pub("GET", "/verify", "", tt.header, tt.unknown, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", 2*i+1))))
				known = append(known, verifyAnswerOf(t, e.pub("GET", "/verify", "", tt.header, tt.known, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", 2*i+2))))
			}
			if d := cmp.Diff(known, unknown); d != "" {
				t.Errorf("answers (-known +unknown):\n%s", d)
			}
			// testPolicy: 5 failures a minute per name and address.
			if !strings.Contains(known[4], `Retry-After=""`) || !strings.HasPrefix(known[5], `401 Retry-After="`) || strings.Contains(known[5], `Retry-After=""`) {
				t.Errorf("tries 5 and 6: %s / %s; want the 6th 401 with Retry-After", known[4], known[5])
			}
		})
	}
}

// TestVerifyPerAddressCapHTTP: 200 distinct key ids from one address are
// answered 401 with Retry-After (never 429, which nginx's auth_request turns
// into a 500) from the 61st on; then even the right key is refused there, and
// answered at another address.
func TestVerifyPerAddressCapHTTP(t *testing.T) {
	e := newEnv(t)
	// Redis' clock stands still: the cap refills one failure a second, so on a
	// busy machine, where 61 guesses can take longer than that, a moving clock
	// would move the first Retry-After past the 61st.
	e.mr.SetTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e.must(200, "POST", "/users", `{"username":"ana","firstname":"A","lastname":"B","email":"ana@example.com"}`)
	k := e.must(200, "POST", "/credentials", `{"consumerId":"ana","type":"key-auth"}`)
	good := k["keyId"].(string) + ":" + k["keySecret"].(string)
	first := 0
	for i := range 200 {
		w := e.pub("GET", "/verify", "", "x-api-key", fmt.Sprintf("guess-%d:%s", i, strings.Repeat("x", 43)), "X-Forwarded-For", "192.0.2.77")
		if w.Code != 401 {
			t.Fatalf("guess %d: status %d, want 401", i+1, w.Code)
		}
		if first == 0 && w.Header().Get("Retry-After") != "" {
			first = i + 1
		}
	}
	if first != 61 {
		t.Errorf("first Retry-After at guess %d, want 61 (60 failures a minute per address)", first)
	}
	if w := e.pub("GET", "/verify", "", "x-api-key", good, "X-Forwarded-For", "192.0.2.77"); w.Code != 401 || w.Header().Get("Retry-After") == "" {
		t.Errorf("the right key from the capped address: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := e.pub("GET", "/verify", "", "x-api-key", good, "X-Forwarded-For", "192.0.2.78"); w.Code != 200 {
		t.Errorf("the right key from another address: %d", w.Code)
	}
}

// TestMixedScriptUsernames: a username mixing scripts is 422 on "username"
// saying so, beside the same-looking single-script ones; a sign-up whose email
// (its username) mixes scripts in its local part is 422 on "email".
func TestMixedScriptUsernames(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"Ada","firstname":"A","lastname":"L","email":"ada@example.com"}`)
	e.must(200, "POST", "/users", `{"username":"Алиса","firstname":"A","lastname":"L","email":"alisa@example.com"}`)
	e.must(200, "POST", "/users", `{"username":"山田たろう","firstname":"T","lastname":"Y","email":"taro@example.com"}`)
	w := e.do("POST", "/users", `{"username":"Аda","firstname":"A","lastname":"L","email":"ada2@example.com"}`) // Cyrillic А
	body := decode(t, w.Body.Bytes())
	if w.Code != 422 || !slices.Equal(fieldsOf(body), []string{"username"}) || !strings.Contains(w.Body.String(), "must not mix scripts (here Cyrillic and Latin)") {
		t.Errorf("a mixed-script username: %d %s", w.Code, w.Body)
	}
	// (The default user model's "format": "email" refuses any non-ASCII local
	// part as well; the username rule says why this one cannot be a username.)
	w = e.pub("POST", "/auth/providers/email/signup", `{"email":"Аda@example.org","password":"correct horse battery"}`)
	fields := fieldsOf(decode(t, w.Body.Bytes()))
	if w.Code != 422 || len(fields) == 0 || slices.ContainsFunc(fields, func(f string) bool { return f != "email" }) {
		t.Errorf("a sign-up with a mixed-script local part: %d %s", w.Code, w.Body)
	}
}
