package adminapi

import (
	"strings"
	"testing"
)

// TestStricterBodies: a duplicate key is 400 naming it (the last one never
// silently wins), every string is bounded (tighter on the open sign-up), and
// scope names in a credential are checked like registered ones, never echoed
// back at any length. Nothing is written.
func TestStricterBodies(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"ann","firstname":"A","lastname":"L"}`)
	huge := strings.Repeat("x", 60_000)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		field                    string
		listener                 string
	}{
		{"duplicate key", "POST", "/users", `{"username":"bob","firstname":"B","lastname":"L","isActive":true,"isActive":false}`, 400, "isActive", "admin"},
		{"nested duplicate", "POST", "/credentials", `{"consumerId":"ann","type":"key-auth","credential":{"scopes":[],"scopes":["x"]}}`, 400, "credential.scopes", "admin"},
		{"duplicate on update", "PUT", "/users/ann", `{"firstname":"X","firstname":"Y"}`, 400, "firstname", "admin"},
		{"long property", "POST", "/users", `{"username":"bob","firstname":"` + huge[:1025] + `","lastname":"L"}`, 422, "firstname", "admin"},
		{"long scope", "POST", "/credentials", `{"consumerId":"ann","type":"key-auth","credential":{"scopes":["` + huge + `"]}}`, 422, "credential.scopes.0", "admin"},
		{"bad scope name", "PUT", "/credentials/key-auth/nokey/scopes/a,b", ``, 422, "scope", "admin"},
		{"long sign-up name", "POST", "/auth/providers/email/signup", `{"email":"bob@example.com","password":"correct horse","firstname":"` + huge + `"}`, 422, "firstname", "public"},
		{"sign-up duplicate", "POST", "/auth/providers/email/signup", `{"email":"bob@example.com","email":"eve@example.com","password":"correct horse"}`, 400, "email", "public"},
	} {
		w := e.do(tc.method, tc.path, tc.body)
		if tc.listener == "public" {
			w = e.pub(tc.method, tc.path, tc.body, "Content-Type", "application/json")
		}
		m := decode(t, w.Body.Bytes())
		if w.Code != tc.status || !strings.Contains(strings.Join(fieldsOf(m), " "), tc.field) {
			t.Errorf("%s: %d %v, want %d naming %s", tc.name, w.Code, m, tc.status, tc.field)
		}
		if strings.Contains(w.Body.String(), huge[:200]) {
			t.Errorf("%s: the long value is echoed", tc.name)
		}
	}
	if w := e.do("GET", "/users/bob", ""); w.Code != 404 {
		t.Errorf("a refused create was stored: %d", w.Code)
	}
	if m := e.must(200, "GET", "/users/ann", ""); m["firstname"] != "A" {
		t.Errorf("a refused update was applied: %v", m)
	}
}
