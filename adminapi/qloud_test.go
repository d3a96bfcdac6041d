package adminapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// dialectKey makes an admin key of a dialect's scope (Qloud's application
// secret, publica.la's api_token).
func (e *env) dialectKey(scope core.AdminScope) string {
	e.t.Helper()
	_, plain, err := e.svc.CreateAdminKey(e.t.Context(), string(scope)+"-app", scope)
	if err != nil {
		e.t.Fatal(err)
	}
	return plain
}

// TestQloudManagementAPI replays the Qloud seed's examples and the Spring
// Boot starter's two calls (GET and DELETE /users/{id}, the secret bare in
// Authorization), with the /verify cache on: a deleted user's session and
// key are refused at once, and its email may sign up again with a new id.
func TestQloudManagementAPI(t *testing.T) {
	mr := miniredis.RunT(t)
	client := redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{mr.Addr()}})
	t.Cleanup(func() { client.Close() })
	e := newEnvCached(t, client, mr, core.VerifyCacheOptions{Size: 1000, TTL: core.MaxVerifyCacheTTL})
	secret := e.dialectKey(core.ScopeQloud)
	q := func(method, path, key string) (int, string, []byte) {
		t.Helper()
		var h []string
		if key != "" {
			h = []string{"Authorization", key}
		}
		w := call(t, e.admin, method, "/.q/api/management"+path, "", h...)
		return w.Code, w.Header().Get("Content-Type"), w.Body.Bytes()
	}

	// A user who signed up by email, not yet verified.
	if code := e.signup(`{"email":"ada.lovelace@example.com","password":"correct horse","firstname":"Ada","lastname":"Lovelace"}`); code != 201 {
		t.Fatalf("signup: %d", code)
	}
	ada, err := e.svc.ResolveUser(t.Context(), "ada.lovelace@example.com")
	if err != nil {
		t.Fatal(err)
	}
	status, ctype, body := q("GET", "/users/"+ada.ID, secret)
	if status != 200 || ctype != "application/json" {
		t.Fatalf("GET user: %d %s %s", status, ctype, body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range got {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"email", "emailVerified", "id", "name", "provider", "providerSubject", "signedUpAt"}; !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v", keys, want)
	}
	if got["id"] != ada.ID || got["provider"] != "EMAIL" || got["providerSubject"] != "ada.lovelace@example.com" ||
		got["name"] != "Ada Lovelace" || got["email"] != "ada.lovelace@example.com" || got["emailVerified"] != false {
		t.Errorf("user: %v", got)
	}
	if s, _ := got["signedUpAt"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(s) {
		t.Errorf("signedUpAt %q: not RFC 3339 UTC with microseconds", s)
	}
	t.Logf("GET /.q/api/management/users/{id}: %s", strings.TrimSpace(string(body)))

	// An admin-created user without an email: EMAIL, its username as subject, no email field.
	e.must(200, "POST", "/users", `{"username":"babbage","firstname":"Charles","lastname":"Babbage"}`)
	bab, _ := e.svc.ResolveUser(t.Context(), "babbage")
	if status, _, body = q("GET", "/users/"+bab.ID+"/", secret); status != 200 || !strings.Contains(string(body), `"provider":"EMAIL","providerSubject":"babbage","name":"Charles Babbage","emailVerified":false`) {
		t.Errorf("admin-created user (trailing slash): %d %s", status, body)
	}

	// The seed's 404, byte for byte but the newline.
	const missing = "92ee40a0-bb53-40b4-84d2-39d76b2cee1b"
	want404 := `{"title":"User ` + missing + ` does not exist","type":"https://qloud.network/not-found","status":404}`
	for _, m := range []string{"GET", "DELETE"} {
		if status, ctype, body = q(m, "/users/"+missing, secret); status != 404 || ctype != "application/problem+json" || strings.TrimSpace(string(body)) != want404 {
			t.Errorf("%s missing user: %d %s %s", m, status, ctype, body)
		}
	}
	if status, _, body = q("GET", "/users/babbage", secret); status != 404 || strings.Contains(string(body), "babbage") {
		t.Errorf("a username is not a Qloud id: %d %s", status, body)
	}

	// 401 in the same shape: no secret, a wrong one.
	for _, key := range []string{"", "S2XHHOEpDUTOUW3kPPPV6NjT6zJ4RioN"} {
		status, ctype, body = q("GET", "/users/"+ada.ID, key)
		var p map[string]any
		_ = json.Unmarshal(body, &p)
		if status != 401 || ctype != "application/problem+json" || p["type"] != "https://qloud.network/unauthorized" || p["status"] != 401.0 || p["title"] == "" {
			t.Errorf("secret %q: %d %s %s", key, status, ctype, body)
		}
	}

	// DELETE: a session and a key of the user, both in the /verify cache, are refused at once.
	e.newUser("grace", "correct horse")
	grace, _ := e.svc.ResolveUser(t.Context(), "grace")
	_, session := e.login("email", "grace", "correct horse")
	k := e.must(200, "POST", "/credentials", `{"consumerId":"grace","type":"key-auth"}`)
	apiKey := k["keyId"].(string) + ":" + k["keySecret"].(string)
	verifyKey := func() int { return e.pub("GET", "/verify", "", "x-api-key", apiKey).Code }
	for range 2 {
		if e.verifyBearer(session) != 200 || verifyKey() != 200 {
			t.Fatal("grace's session or key refused before the delete")
		}
	}
	if status, _, body = q("DELETE", "/users/"+grace.ID, secret); status != 204 || len(body) != 0 {
		t.Fatalf("DELETE: %d %q", status, body)
	}
	if s, kk := e.verifyBearer(session), verifyKey(); s != 401 || kk != 401 {
		t.Errorf("after DELETE: session %d, key %d; want 401, 401", s, kk)
	}
	if status, _, _ = q("GET", "/users/"+grace.ID, secret); status != 404 {
		t.Errorf("GET deleted user: %d", status)
	}

	// The same email signs up again and gets a new id.
	if status, _, _ = q("DELETE", "/users/"+ada.ID, secret); status != 204 {
		t.Fatalf("DELETE ada: %d", status)
	}
	if code := e.signup(`{"email":"ada.lovelace@example.com","password":"correct horse","firstname":"Ada","lastname":"Lovelace"}`); code != 201 {
		t.Fatalf("sign-up again: %d", code)
	}
	again, _ := e.svc.ResolveUser(t.Context(), "ada.lovelace@example.com")
	if again.ID == ada.ID {
		t.Error("the new sign-up kept the deleted user's id")
	}
	if status, _, _ = q("GET", "/users/"+again.ID, secret); status != 200 {
		t.Errorf("the new user: %d", status)
	}

	// The native admin key opens the surface in every header form; the
	// Qloud secret opens nothing else.
	for _, h := range [][]string{{"Authorization", testAdminKey}, {"Authorization", "Bearer " + testAdminKey}, {"x-api-key", testAdminKey}} {
		if w := call(t, e.admin, "GET", "/.q/api/management/users/"+again.ID, "", h...); w.Code != 200 {
			t.Errorf("native key in %s: %d", h[0], w.Code)
		}
	}
	for _, c := range []struct {
		h            http.Handler
		method, path string
		header       string
		want         int
		ctype        string
	}{
		{e.admin, "GET", "/users", "x-api-key", 403, "application/problem+json"},
		{e.admin, "GET", "/users", "Authorization", 403, "application/problem+json"},
		{e.admin, "GET", "/admin-keys", "Authorization", 403, "application/problem+json"},
		{e.public, "GET", "/verify", "Authorization", 401, "application/problem+json"},
		{e.public, "GET", "/gl/users/me", "x-api-key", 401, "application/json"},
		{e.admin, "GET", "/api/auth/manager/users", "Authorization", 403, "application/json"},
	} {
		w := call(t, c.h, c.method, c.path, "", c.header, secret)
		if w.Code != c.want || w.Header().Get("Content-Type") != c.ctype {
			t.Errorf("Qloud secret on %s %s (%s): %d %s", c.method, c.path, c.header, w.Code, w.Header().Get("Content-Type"))
		}
	}
	if strings.Contains(e.logs.String(), secret) {
		t.Error("the secret reached the log")
	}
}
