package adminapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// login posts to /auth/tokens and returns the recorder's status and token.
func (e *env) login(provider, identifier, secret string) (int, string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"provider": provider, "identifier": identifier, "secret": secret})
	w := e.pub("POST", "/auth/tokens", string(body), "X-Forwarded-For", "203.0.113.7")
	var ans struct{ Token, ExpiresAt string }
	_ = json.Unmarshal(w.Body.Bytes(), &ans)
	return w.Code, ans.Token
}

// verifyBearer asks /verify about a bearer token and returns the status.
func (e *env) verifyBearer(token string) int {
	e.t.Helper()
	return e.pub("GET", "/verify", "", "Authorization", "Bearer "+token).Code
}

// newUser creates a user with a password.
func (e *env) newUser(name, password string) map[string]any {
	e.t.Helper()
	u := e.must(200, "POST", "/users", fmt.Sprintf(`{"username":%q,"firstname":"F","lastname":"L","email":"%s@example.com"}`, name, name))
	if password != "" {
		e.must(204, "PUT", "/users/"+name+"/password", fmt.Sprintf(`{"password":%q}`, password))
	}
	return u
}

// TestPasswordLogin: login → /verify 200 with the consumer's headers → logout → 401;
// the identifier may be the id, the username or the email.
func TestPasswordLogin(t *testing.T) {
	e := newEnv(t)
	u := e.newUser("lena", "correct horse")
	for _, id := range []string{"lena", "LENA", u["id"].(string), "lena@example.com", "Lena@EXAMPLE.com"} {
		code, token := e.login("email", id, "correct horse")
		if code != 200 || !strings.HasPrefix(token, "gths_") {
			t.Fatalf("login as %q: %d %q", id, code, token)
		}
	}
	code, token := e.login("email", "lena", "correct horse")
	if code != 200 {
		t.Fatal(code)
	}
	w := e.pub("GET", "/verify", "", "Authorization", "Bearer "+token)
	if w.Code != 200 || w.Header().Get("X-Consumer-Id") != u["id"] || w.Header().Get("X-Consumer-Username") != "lena" {
		t.Fatalf("verify: %d %v", w.Code, w.Header())
	}
	if me := e.pub("GET", "/users/me", "", "Authorization", "Bearer "+token); me.Code != 200 || !strings.Contains(me.Body.String(), `"username":"lena"`) {
		t.Errorf("/users/me: %d %s", me.Code, me.Body)
	}
	sessions := e.must(200, "GET", "/users/lena/sessions", "")["sessions"].([]any)
	if len(sessions) != 6 || strings.Contains(fmt.Sprint(sessions), token) {
		t.Errorf("sessions: %d listed, or a token shown", len(sessions))
	}
	if s0 := sessions[0].(map[string]any); s0["clientAddr"] != "203.0.113.7" || s0["provider"] != "email" {
		t.Errorf("session fields: %v", s0)
	}
	if w := e.pub("POST", "/auth/logout", "", "Authorization", "Bearer "+token); w.Code != 204 {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if code := e.verifyBearer(token); code != 401 {
		t.Errorf("verify after logout: %d", code)
	}
	if w := e.pub("POST", "/auth/logout", "", "Authorization", "Bearer "+token); w.Code != 401 {
		t.Errorf("second logout: %d", w.Code)
	}
}

// TestLoginRefusals: one 401 for an unknown identifier and a wrong password; bad
// bodies are 422; a deactivated user is refused.
func TestLoginRefusals(t *testing.T) {
	e := newEnv(t)
	e.newUser("mia", "correct horse")
	e.newUser("nopass", "")
	var bodies []string
	for _, c := range [][3]string{{"email", "mia", "wrong horse"}, {"email", "nobody", "correct horse"}, {"email", "nopass", "whatever1"}, {"secret", "mia", "gthu_nope"}} {
		w := e.pub("POST", "/auth/tokens", fmt.Sprintf(`{"provider":%q,"identifier":%q,"secret":%q}`, c[0], c[1], c[2]))
		if w.Code != 401 {
			t.Errorf("%v: %d", c, w.Code)
		}
		var p map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		bodies = append(bodies, fmt.Sprint(p["detail"]))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("answers differ: %q vs %q", b, bodies[0])
		}
	}
	for _, body := range []string{`{"provider":"email","identifier":"mia"}`, `{"provider":"ldap","identifier":"mia","secret":"x"}`, `{"identifier":"mia","secret":"x"}`, `{"provider":"email","identifier":"mia","secret":"x","extra":1}`} {
		if w := e.pub("POST", "/auth/tokens", body); w.Code != 422 {
			t.Errorf("%s: %d", body, w.Code)
		}
	}
	e.must(200, "PUT", "/users/mia/status", `{"status":false}`)
	if code, _ := e.login("email", "mia", "correct horse"); code != 403 {
		t.Errorf("deactivated user logs in: %d", code)
	}
}

// TestSessionLifecycle covers force logout, a password change, sessionsLimit,
// deactivation, deletion and expiry.
func TestSessionLifecycle(t *testing.T) {
	e := newEnv(t)
	e.newUser("noor", "correct horse")
	_, t1 := e.login("email", "noor", "correct horse")
	_, t2 := e.login("email", "noor", "correct horse")
	e.must(204, "DELETE", "/users/noor/sessions", "")
	if e.verifyBearer(t1) != 401 || e.verifyBearer(t2) != 401 {
		t.Errorf("force logout left a session")
	}

	_, t3 := e.login("email", "noor", "correct horse")
	e.must(204, "PUT", "/users/noor/password", `{"password":"battery staple"}`)
	if e.verifyBearer(t3) != 401 {
		t.Errorf("a password change left a session")
	}
	if code, _ := e.login("email", "noor", "correct horse"); code != 401 {
		t.Errorf("old password still works: %d", code)
	}
	e.must(422, "PUT", "/users/noor/password", `{"password":"short"}`)

	e.must(200, "PUT", "/users/noor", `{"sessionsLimit":2}`)
	var tokens []string
	for range 3 {
		_, tok := e.login("email", "noor", "battery staple")
		tokens = append(tokens, tok)
		e.clock.Advance(time.Millisecond) // distinct creation times
	}
	if e.verifyBearer(tokens[0]) != 401 || e.verifyBearer(tokens[1]) != 200 || e.verifyBearer(tokens[2]) != 200 {
		t.Errorf("sessionsLimit 2: oldest not evicted (%d %d %d)", e.verifyBearer(tokens[0]), e.verifyBearer(tokens[1]), e.verifyBearer(tokens[2]))
	}

	e.must(200, "PUT", "/users/noor/status", `{"status":false}`)
	if code := e.verifyBearer(tokens[2]); code != 403 {
		t.Errorf("deactivated user's session: %d", code)
	}
	e.must(200, "PUT", "/users/noor/status", `{"status":true}`)
	if code := e.verifyBearer(tokens[2]); code != 200 {
		t.Errorf("reactivated user's session: %d", code)
	}

	e.clock.Advance(25 * time.Hour)
	if code := e.verifyBearer(tokens[2]); code != 401 {
		t.Errorf("session past its 24 h lifetime: %d", code)
	}
	e.clock.Advance(-25 * time.Hour)
	e.must(204, "DELETE", "/users/noor", "")
	if code := e.verifyBearer(tokens[1]); code != 401 {
		t.Errorf("deleted user's session: %d", code)
	}
}

// TestUserSecret: a new secret logs in with provider "secret"; the next one
// replaces it; sessions stay.
func TestUserSecret(t *testing.T) {
	e := newEnv(t)
	u := e.newUser("omar", "")
	s1 := e.must(200, "POST", "/users/omar/secret", "")["secret"].(string)
	if !strings.HasPrefix(s1, "gthu_") {
		t.Fatalf("secret %.5s…", s1)
	}
	code, tok := e.login("secret", u["id"].(string), s1)
	if code != 200 {
		t.Fatalf("login with the secret: %d", code)
	}
	s2 := e.must(200, "POST", "/users/omar/secret", "")["secret"].(string)
	if code, _ := e.login("secret", "omar", s1); code != 401 {
		t.Errorf("old secret still works: %d", code)
	}
	if code, _ := e.login("secret", "omar", s2); code != 200 {
		t.Errorf("new secret: %d", code)
	}
	if e.verifyBearer(tok) != 200 {
		t.Errorf("a new secret ended a session")
	}
	if code, _ := e.login("email", "omar", s2); code != 401 {
		t.Errorf("a user secret works as a password: %d", code)
	}
}

// TestLoginRateLimit: failed logins are limited per identifier (429 with
// Retry-After), and successes before did not count.
func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	e.newUser("pia", "correct horse")
	for range 10 {
		if code, _ := e.login("email", "pia", "correct horse"); code != 200 {
			t.Fatalf("successful logins were limited: %d", code)
		}
	}
	var last int
	for range 6 {
		last, _ = e.login("email", "pia", "wrong horse")
	}
	w := e.pub("POST", "/auth/tokens", `{"provider":"email","identifier":"PIA","secret":"correct horse"}`)
	if last != 429 || w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after 6 failures: last %d, then %d Retry-After %q", last, w.Code, w.Header().Get("Retry-After"))
	}
	if code, _ := e.login("email", "pia@example.com", "correct horse"); code != 200 {
		t.Errorf("a different identifier is counted apart, yet it was limited: %d", code)
	}
}

// TestLastSeenAt: a session's lastSeenAt moves when it is used after a minute,
// off the request path.
func TestLastSeenAt(t *testing.T) {
	e := newEnv(t)
	e.newUser("yara", "correct horse")
	_, tok := e.login("email", "yara", "correct horse")
	first := e.must(200, "GET", "/users/yara/sessions", "")["sessions"].([]any)[0].(map[string]any)["lastSeenAt"]
	e.clock.Advance(2 * time.Minute)
	defer e.clock.Advance(-2 * time.Minute)
	for range 20 {
		if e.verifyBearer(tok) != 200 {
			t.Fatal("verify")
		}
	}
	deadline := time.Now().Add(10 * time.Second) // written off the request path: bounded loosely
	for {
		s := e.must(200, "GET", "/users/yara/sessions", "")["sessions"].([]any)[0].(map[string]any)
		if s["lastSeenAt"] != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lastSeenAt stayed %v", first)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
