package adminapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifierMiddleware checks the in-process check a Go gateway uses: what
// the wrapped handler sees and what a refused client gets, for the same
// credentials /verify takes.
func TestVerifierMiddleware(t *testing.T) {
	e := newEnv(t)
	f := newVerifyFixture(e)
	key := f.keyID + ":" + f.keySecret // vic's, scope read
	v := NewVerifier(e.svc, VerifierOptions{})

	// serve sends one request through mw to a handler that records the
	// consumer headers it got; seen is nil when the handler was not called.
	serve := func(mw func(http.Handler) http.Handler, path string, headers ...string) (w *httptest.ResponseRecorder, seen http.Header) {
		t.Helper()
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = r.Header.Clone()
			w.WriteHeader(http.StatusNoContent)
		}))
		r := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Add(headers[i], headers[i+1])
		}
		before := r.Header.Clone()
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if !equalHeaders(before, r.Header) {
			t.Errorf("%s: the middleware changed the caller's request headers: %v, were %v", path, r.Header, before)
		}
		return w, seen
	}
	passed := func(what string, w *httptest.ResponseRecorder, seen http.Header, id, username, scopes string) {
		t.Helper()
		if w.Code != http.StatusNoContent || seen == nil {
			t.Errorf("%s: %d (handler called: %v), want the handler's 204: %s", what, w.Code, seen != nil, w.Body)
			return
		}
		for name, want := range map[string]string{"X-Consumer-Id": id, "X-Consumer-Username": username, "X-Consumer-Scopes": scopes, "X-Consumer-Groups": ""} {
			if got := seen.Values(name); len(got) != 1 || got[0] != want {
				t.Errorf("%s: the handler got %s %q, want %q", what, name, got, want)
			}
		}
	}
	refused := func(what string, w *httptest.ResponseRecorder, seen http.Header, status int, challenge string) {
		t.Helper()
		if w.Code != status || seen != nil {
			t.Errorf("%s: %d (handler called: %v), want %d from the middleware: %s", what, w.Code, seen != nil, status, w.Body)
			return
		}
		if got := w.Header().Get("WWW-Authenticate"); got != challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", what, got, challenge)
		}
		var p struct {
			Status int `json:"status"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != status || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: body %q (%s), want a problem document with status %d", what, w.Body, w.Header().Get("Content-Type"), status)
		}
		for _, s := range []string{f.keySecret, f.basicPass} {
			if strings.Contains(w.Body.String(), s) {
				t.Errorf("%s: the answer holds a secret", what)
			}
		}
	}

	w, seen := serve(v.Middleware, "/orders", "x-api-key", key)
	passed("good key", w, seen, f.userID, "vic", "read")
	w, seen = serve(v.Middleware, "/orders?apikey="+key)
	passed("?apikey=", w, seen, f.userID, "vic", "read")
	w, seen = serve(v.Middleware, "/orders", "Authorization", basicAuth("vic-app", f.appBasicPass))
	passed("app's basic", w, seen, f.appID, "vic-app", "")

	spoof := []string{"X-Consumer-Id", "evil", "X-Consumer-Username", "root", "X-Consumer-Scopes", "admin", "X-Consumer-Groups", "admins"}
	w, seen = serve(v.Middleware, "/orders", append([]string{"Authorization", "apikey " + key}, spoof...)...)
	passed("spoofed consumer headers, with a key", w, seen, f.userID, "vic", "read")
	w, seen = serve(v.Middleware, "/orders", spoof...)
	refused("spoofed consumer headers, no key", w, seen, 401, bearerChallenge)

	w, seen = serve(v.Middleware, "/orders", "x-api-key", f.keyID+":"+strings.Repeat("x", 43))
	refused("wrong key secret", w, seen, 401, bearerChallenge)
	w, seen = serve(v.Middleware, "/orders", "Authorization", basicAuth("vic", "wrong password"))
	refused("wrong basic password", w, seen, 401, basicChallenge)

	// Scopes are the program's to require, never the client's.
	w, seen = serve(v.Middleware, "/orders", "x-api-key", key, "X-Required-Scopes", "write")
	passed("client's X-Required-Scopes", w, seen, f.userID, "vic", "read")
	admin := v.Require("write")
	w, seen = serve(admin.Middleware, "/admin", "x-api-key", key)
	refused("Require(write), key with read", w, seen, 403, "")
	tok := signJWT(t, f.jwtSecret, map[string]any{"kid": f.jwtKeyID}, jwt.MapClaims{})
	w, seen = serve(admin.Middleware, "/admin", "Authorization", "Bearer "+tok)
	passed("Require(write), jwt with write", w, seen, f.userID, "vic", "write")
	w, seen = serve(v.Middleware, "/orders", "x-api-key", key)
	passed("Require left v alone", w, seen, f.userID, "vic", "read")

	e.must(200, "PUT", "/users/vic/status", `{"status":false}`)
	w, seen = serve(v.Middleware, "/orders", "x-api-key", key)
	refused("deactivated user's key", w, seen, 403, "")

	// A store that cannot answer: 503, never a pass.
	e.mr.Close()
	w, seen = serve(v.Middleware, "/orders", "x-api-key", key)
	refused("Redis down", w, seen, 503, "")
}

// equalHeaders reports whether a and b hold the same values.
func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\x00") != strings.Join(b[k], "\x00") {
			return false
		}
	}
	return true
}
