package adminapi

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// send sends a request to the admin listener with the test admin key and
// further headers (pairs of name, value).
func (e *env) send(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	return call(e.t, e.admin, method, path, body, append([]string{"x-api-key", testAdminKey, "Content-Type", "application/json"}, headers...)...)
}

// etag returns the ETag of GET path, failing without one.
func (e *env) etag(path string) string {
	e.t.Helper()
	w := e.send("GET", path, "")
	if w.Code != 200 || w.Header().Get("ETag") == "" {
		e.t.Fatalf("GET %s: %d, ETag %q: %s", path, w.Code, w.Header().Get("ETag"), w.Body)
	}
	return w.Header().Get("ETag")
}

// TestETags: every user, app, credential and scope answers a strong ETag that
// follows its changes; If-None-Match gets 304; a write with a stale If-Match
// gets 412 and writes nothing; a current one, or *, goes through.
func TestETags(t *testing.T) {
	e := newEnv(t)
	w := e.send("POST", "/users", `{"username":"alice","firstname":"A","lastname":"L"}`)
	created := w.Header().Get("ETag")
	if w.Code != 200 || !strings.HasPrefix(created, `"`) {
		t.Fatalf("create: %d, ETag %q", w.Code, created)
	}
	if got := e.etag("/users/alice"); got != created {
		t.Fatalf("GET's ETag %s, the create's %s", got, created)
	}
	if w := e.send("GET", "/users/alice", "", "If-None-Match", created); w.Code != 304 || w.Body.Len() != 0 {
		t.Fatalf("If-None-Match with the current ETag: %d %q, want 304 and no body", w.Code, w.Body)
	}
	if w := e.send("GET", "/users/alice", "", "If-None-Match", `"other"`); w.Code != 200 {
		t.Fatalf("If-None-Match with another ETag: %d", w.Code)
	}
	w = e.send("PUT", "/users/alice", `{"firstname":"Alicia"}`, "If-Match", created)
	updated := w.Header().Get("ETag")
	if w.Code != 200 || updated == created || updated != e.etag("/users/alice") {
		t.Fatalf("PUT with the current If-Match: %d, ETag %s (was %s, GET says %s)", w.Code, updated, created, e.etag("/users/alice"))
	}
	w = e.send("PUT", "/users/alice", `{"firstname":"Stale"}`, "If-Match", created)
	if w.Code != 412 || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("PUT with a stale If-Match: %d %s", w.Code, w.Body)
	}
	if fn := e.must(200, "GET", "/users/alice", "")["firstname"]; fn != "Alicia" {
		t.Fatalf("a refused PUT wrote: firstname %v", fn)
	}
	for _, tc := range []struct{ ifMatch string }{{"W/" + updated}, {`"a", ` + created}} {
		if w := e.send("PUT", "/users/alice", `{"firstname":"Weak"}`, "If-Match", tc.ifMatch); w.Code != 412 {
			t.Errorf("If-Match %s: %d, want 412", tc.ifMatch, w.Code)
		}
	}
	if w := e.send("PUT", "/users/alice", `{"firstname":"X"}`, "If-Match", "not-a-tag"); w.Code != 400 || !strings.Contains(w.Body.String(), "If-Match") {
		t.Errorf("malformed If-Match: %d %s, want 400 naming If-Match", w.Code, w.Body)
	}
	if w := e.send("PUT", "/users/alice", `{"firstname":"Star"}`, "If-Match", "*"); w.Code != 200 {
		t.Errorf("If-Match *: %d %s", w.Code, w.Body)
	}
	if w := e.send("PUT", "/users/nobody", `{"firstname":"X"}`, "If-Match", "*"); w.Code != 404 {
		t.Errorf("If-Match * on a missing user: %d, want 404", w.Code)
	}

	// Apps, credentials and scopes, and the status and scope sub-routes.
	e.must(200, "POST", "/apps", `{"name":"app1","userId":"alice"}`)
	e.must(201, "POST", "/scopes", `{"scopes":["read","write"]}`)
	e.must(200, "POST", "/credentials", `{"consumerId":"alice","type":"key-auth","credential":{"keyId":"k1","scopes":["read"]}}`)
	for _, tc := range []struct {
		name, get, method, path, body string
		okStatus                      int
	}{
		{"user status", "/users/alice", "PUT", "/users/alice/status", `{"status":false}`, 200},
		{"app", "/apps/app1", "PUT", "/apps/app1", `{"redirectUri":"https://app.example/cb"}`, 200},
		{"app status", "/apps/app1", "PUT", "/apps/app1/status", `{"status":false}`, 200},
		{"credential status", "/credentials/key-auth/k1", "PUT", "/credentials/key-auth/k1/status", `{"status":false}`, 200},
		{"credential scopes", "/credentials/key-auth/k1", "PUT", "/credentials/key-auth/k1/scopes", `{"scopes":["write"]}`, 204},
		{"credential scope add", "/credentials/key-auth/k1", "PUT", "/credentials/key-auth/k1/scopes/read", ``, 204},
		{"credential scope remove", "/credentials/key-auth/k1", "DELETE", "/credentials/key-auth/k1/scopes/read", ``, 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := e.etag(tc.get)
			if w := e.send(tc.method, tc.path, tc.body, "If-Match", `"stale"`); w.Code != 412 {
				t.Fatalf("stale If-Match: %d %s", w.Code, w.Body)
			}
			if got := e.etag(tc.get); got != cur {
				t.Fatalf("a refused write changed the ETag: %s → %s", cur, got)
			}
			w := e.send(tc.method, tc.path, tc.body, "If-Match", cur)
			if w.Code != tc.okStatus {
				t.Fatalf("current If-Match: %d %s, want %d", w.Code, w.Body, tc.okStatus)
			}
			if et := w.Header().Get("ETag"); et != "" && et != e.etag(tc.get) {
				t.Errorf("the answer's ETag %s is not the GET's %s", et, e.etag(tc.get))
			}
		})
	}
	// PUT /scopes/{name} only registers: with If-Match it never writes.
	if w := e.send("PUT", "/scopes/write", ``, "If-Match", e.etag("/scopes/write")); w.Code != 409 {
		t.Errorf("PUT /scopes/write with its If-Match: %d, want 409 (registered)", w.Code)
	}
	if w := e.send("PUT", "/scopes/fresh", ``, "If-Match", "*"); w.Code != 412 {
		t.Errorf("PUT /scopes/fresh with If-Match *: %d, want 412 (nothing to match)", w.Code)
	}
	e.must(404, "GET", "/scopes/fresh", "")
	// A change of the owner's status changes what an app shows, and its ETag.
	app := e.etag("/apps/app1")
	e.must(200, "PUT", "/users/alice/status", `{"status":true}`)
	if e.etag("/apps/app1") == app {
		t.Error("the app's ETag did not change with its owner's status")
	}

	// Deletes: stale refused with everything kept, current deletes.
	for _, path := range []string{"/credentials/key-auth/k1", "/scopes/read", "/apps/app1", "/users/alice"} {
		cur := e.etag(path)
		if w := e.send("DELETE", path, "", "If-Match", `"stale"`); w.Code != 412 {
			t.Fatalf("DELETE %s with a stale If-Match: %d %s", path, w.Code, w.Body)
		}
		e.must(200, "GET", path, "")
		if w := e.send("DELETE", path, "", "If-Match", cur); w.Code != 204 {
			t.Fatalf("DELETE %s with the current If-Match: %d %s", path, w.Code, w.Body)
		}
		e.must(404, "GET", path, "")
	}
}

// TestIfMatchConcurrent: N clients PUT the user they all read at one version,
// each with If-Match: exactly one wins, the others get 412, and the user holds
// the winner's change.
func TestIfMatchConcurrent(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"bob","firstname":"B","lastname":"L"}`)
	tag := e.etag("/users/bob")
	srv := httptest.NewServer(e.admin)
	t.Cleanup(srv.Close)
	const n = 16
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = put(t, srv.URL+"/users/bob", fmt.Sprintf(`{"firstname":"writer-%d"}`, i), "If-Match", tag)
		})
	}
	wg.Wait()
	winner, lost := -1, 0
	for i, st := range statuses {
		switch st {
		case 200:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both won at one version", winner, i)
			}
			winner = i
		case 412:
			lost++
		default:
			t.Fatalf("writer %d: status %d", i, st)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	if fn := e.must(200, "GET", "/users/bob", "")["firstname"]; fn != fmt.Sprintf("writer-%d", winner) {
		t.Fatalf("firstname %v, want the winner's writer-%d", fn, winner)
	}
	t.Logf("%d concurrent PUTs with one If-Match: 1 × 200, %d × 412", n, lost)
}

// put sends PUT url with an admin key and headers; it returns the status.
func put(t *testing.T, url, body string, headers ...string) int {
	return send(t, "PUT", url, body, headers...).StatusCode
}

// send sends a request over HTTP with the test admin key and headers (pairs).
func send(t *testing.T, method, url, body string, headers ...string) *http.Response {
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return &http.Response{}
	}
	req.Header.Set("x-api-key", testAdminKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return &http.Response{}
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(strings.NewReader(string(b)))
	return res
}

// TestGroupETags: groups answer ETags, honour If-Match on PUT and DELETE (their
// tag routes too) and Idempotency-Key on POST; N renames at one version: one wins.
func TestGroupETags(t *testing.T) {
	e := newEnv(t)
	body := `{"name":"Development team","tags":["deploy"]}`
	first := e.send("POST", "/groups", body, "Idempotency-Key", "g-1")
	again := e.send("POST", "/groups", body, "Idempotency-Key", "g-1")
	id, _ := decode(t, first.Body.Bytes())["id"].(string)
	if first.Code != 200 || again.Code != 200 || again.Header().Get("Idempotent-Replayed") != "true" || decode(t, again.Body.Bytes())["id"] != id {
		t.Fatalf("create and retry: %d %d %s", first.Code, again.Code, again.Body)
	}
	if n := len(e.must(200, "GET", "/groups", "")["groups"].([]any)); n != 1 {
		t.Fatalf("%d groups after a create and its retry, want 1", n)
	}
	path := "/groups/" + id
	tag := e.etag(path)
	if tag != first.Header().Get("ETag") {
		t.Fatalf("GET's ETag %s, the create's %s", tag, first.Header().Get("ETag"))
	}
	if w := e.send("GET", path, "", "If-None-Match", tag); w.Code != 304 {
		t.Fatalf("If-None-Match: %d", w.Code)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", path, `{"name":"Ops"}`},
		{"PUT", path + "/tags", `{"tags":["x"]}`},
		{"PUT", path + "/tags/y", ``},
		{"DELETE", path + "/tags/deploy", ``},
		{"DELETE", path, ``},
	} {
		if w := e.send(tc.method, tc.path, tc.body, "If-Match", `"stale"`); w.Code != 412 {
			t.Fatalf("%s %s with a stale If-Match: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
	if got := e.etag(path); got != tag {
		t.Fatalf("refused writes changed the group: ETag %s → %s", tag, got)
	}
	w := e.send("PUT", path+"/tags/y", ``, "If-Match", tag)
	if w.Code != 200 || w.Header().Get("ETag") != e.etag(path) {
		t.Fatalf("tag grant with the current If-Match: %d, ETag %s (GET: %s)", w.Code, w.Header().Get("ETag"), e.etag(path))
	}
	tag = e.etag(path)
	srv := httptest.NewServer(e.admin)
	t.Cleanup(srv.Close)
	const n = 12
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = put(t, srv.URL+path, fmt.Sprintf(`{"name":"team %d"}`, i), "If-Match", tag) })
	}
	wg.Wait()
	won := 0
	for _, st := range statuses {
		switch st {
		case 200:
			won++
		case 412:
		default:
			t.Fatalf("a rename answered %d", st)
		}
	}
	if won != 1 {
		t.Fatalf("%d renames won at one version, want 1 (%v)", won, statuses)
	}
	t.Logf("%d concurrent group renames with one If-Match: 1 × 200, %d × 412", n, n-1)
	if w := e.send("DELETE", path, "", "If-Match", e.etag(path)); w.Code != 204 {
		t.Fatalf("DELETE with the current If-Match: %d %s", w.Code, w.Body)
	}
	e.must(404, "GET", path, "")
}

// TestUserGroupsTagsIfMatch: a user's group and tag routes honour If-Match with
// the user's ETag and answer its new one.
func TestUserGroupsTagsIfMatch(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"gus","firstname":"G","lastname":"L"}`)
	e.must(200, "POST", "/groups", `{"name":"ops"}`)
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/users/gus/groups", `{"groups":["ops"]}`},
		{"POST", "/users/gus/groups", `{"groups":["ops"]}`},
		{"DELETE", "/users/gus/groups/ops", ``},
		{"PUT", "/users/gus/tags", `{"tags":["a"]}`},
		{"PUT", "/users/gus/tags/b", ``},
		{"DELETE", "/users/gus/tags/a", ``},
	} {
		cur := e.etag("/users/gus")
		if w := e.send(tc.method, tc.path, tc.body, "If-Match", `"stale"`); w.Code != 412 {
			t.Fatalf("%s %s with a stale If-Match: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
		w := e.send(tc.method, tc.path, tc.body, "If-Match", cur)
		if w.Code != 200 || w.Header().Get("ETag") != e.etag("/users/gus") {
			t.Fatalf("%s %s with the current If-Match: %d, ETag %s (GET: %s)", tc.method, tc.path, w.Code, w.Header().Get("ETag"), e.etag("/users/gus"))
		}
	}
	// PUT replaces: what the user held before is gone.
	e.must(200, "POST", "/groups", `{"name":"dev"}`)
	e.must(200, "PUT", "/users/gus/groups", `{"groups":["ops"]}`)
	if gs := e.must(200, "PUT", "/users/gus/groups", `{"groups":["dev"]}`)["groups"].([]any); len(gs) != 1 || gs[0].(map[string]any)["name"] != "dev" {
		t.Errorf("groups after PUT [dev] over [ops]: %v", gs)
	}
	if tags := e.must(200, "PUT", "/users/gus/tags", `{"tags":["y","x"]}`)["tags"]; !cmp.Equal(tags, []any{"x", "y"}) {
		t.Errorf("tags after PUT [y x] over [b]: %v", tags)
	}
}

// ifMatchRoute is a write that honours If-Match, for the table-driven tests
// below: setup makes what it writes (a fresh one each call) and returns the
// request's path and body, and the If-Match it expects; written reports
// whether the write happened.
type ifMatchRoute struct {
	name, method string
	ok           int
	setup        func(e *env, n int) (path, body, tag string)
	written      func(e *env, path string) bool
}

// ifMatchRoutes are the admin keys, clients, client keys and passwords.
var ifMatchRoutes = []ifMatchRoute{
	{
		name: "password", method: "PUT", ok: 204,
		setup: func(e *env, n int) (string, string, string) {
			name := fmt.Sprintf("pw%d", n)
			e.must(200, "POST", "/users", `{"username":"`+name+`","firstname":"P","lastname":"W"}`)
			e.must(204, "PUT", "/users/"+name+"/password", `{"password":"the first password"}`)
			return "/users/" + name + "/password", `{"password":"the second password"}`, e.etag("/users/" + name)
		},
		written: func(e *env, path string) bool {
			name := strings.Split(path, "/")[2]
			w := e.pub("POST", "/auth/tokens", `{"provider":"email","identifier":"`+name+`","secret":"the second password"}`)
			return w.Code == 200
		},
	},
	{
		name: "admin key", method: "DELETE", ok: 204,
		setup: func(e *env, n int) (string, string, string) {
			w := e.send("POST", "/admin-keys", fmt.Sprintf(`{"name":"ops-%d","scope":"read"}`, n))
			k := decode(e.t, w.Body.Bytes())
			if w.Code != 201 || w.Header().Get("ETag") == "" || w.Header().Get("ETag") != k["etag"] {
				e.t.Fatalf("POST /admin-keys: %d, ETag %q, etag %v", w.Code, w.Header().Get("ETag"), k["etag"])
			}
			return "/admin-keys/" + k["id"].(string), "", w.Header().Get("ETag")
		},
		written: func(e *env, path string) bool {
			id := strings.TrimPrefix(path, "/admin-keys/")
			for _, k := range e.must(200, "GET", "/admin-keys", "")["adminKeys"].([]any) {
				if k.(map[string]any)["id"] == id {
					return false
				}
			}
			return true
		},
	},
	{
		name: "client", method: "DELETE", ok: 204,
		setup: func(e *env, n int) (string, string, string) {
			w := e.send("POST", "/clients", fmt.Sprintf(`{"name":"Tenant %d"}`, n))
			path := "/clients/" + decode(e.t, w.Body.Bytes())["id"].(string)
			if w.Code != 201 || w.Header().Get("ETag") != e.etag(path) {
				e.t.Fatalf("POST /clients: %d, ETag %q, GET's %q", w.Code, w.Header().Get("ETag"), e.etag(path))
			}
			return path, "", e.etag(path)
		},
		written: func(e *env, path string) bool { return e.send("GET", path, "").Code == 404 },
	},
	{
		name: "client key", method: "DELETE", ok: 204,
		setup: func(e *env, n int) (string, string, string) {
			c := e.must(201, "POST", "/clients", fmt.Sprintf(`{"name":"Keyed %d"}`, n))
			path := "/clients/" + c["id"].(string)
			before := e.etag(path)
			k := e.must(201, "POST", path+"/keys", "")
			if e.etag(path) == before {
				e.t.Fatal("a new client key did not change the client's ETag")
			}
			return path + "/keys/" + k["id"].(string), "", e.etag(path)
		},
		written: func(e *env, path string) bool {
			client, keyID, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/keys/")
			for _, k := range e.must(200, "GET", "/"+client, "")["keys"].([]any) {
				if k.(map[string]any)["id"] == keyID {
					return false
				}
			}
			return true
		},
	},
}

// TestIfMatchKeysClientsPasswords: a stale If-Match on an admin key's or a
// client's DELETE, a client key's revocation or a password change is 412
// with nothing written; the current ETag writes; and 16 writers at once
// holding one ETag: exactly one wins.
func TestIfMatchKeysClientsPasswords(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.admin)
	t.Cleanup(srv.Close)
	for i, rt := range ifMatchRoutes {
		t.Run(rt.name, func(t *testing.T) {
			path, body, tag := rt.setup(e, 2*i)
			if w := e.send(rt.method, path, body, "If-Match", `"stale"`); w.Code != 412 {
				t.Fatalf("stale If-Match: %d %s, want 412", w.Code, w.Body)
			}
			if rt.written(e, path) {
				t.Fatal("a refused write was written")
			}
			w := e.send(rt.method, path, body, "If-Match", tag)
			if w.Code != rt.ok || !rt.written(e, path) {
				t.Fatalf("current If-Match: %d %s, want %d and written", w.Code, w.Body, rt.ok)
			}
			if rt.name == "password" && (w.Header().Get("ETag") == tag || w.Header().Get("ETag") != e.etag(strings.TrimSuffix(path, "/password"))) {
				t.Errorf("password: answered ETag %q (was %q, GET says %q)", w.Header().Get("ETag"), tag, e.etag(strings.TrimSuffix(path, "/password")))
			}

			path, body, tag = rt.setup(e, 2*i+1)
			const n = 16
			statuses := make([]int, n)
			var wg sync.WaitGroup
			for j := range n {
				wg.Go(func() { statuses[j] = send(t, rt.method, srv.URL+path, body, "If-Match", tag).StatusCode })
			}
			wg.Wait()
			count := map[int]int{}
			for _, st := range statuses {
				count[st]++
			}
			if count[rt.ok] != 1 || count[rt.ok]+count[412]+count[404] != n {
				t.Fatalf("%d concurrent writes with one If-Match: %v, want exactly one %d, the rest 412 or 404", n, count, rt.ok)
			}
			if !rt.written(e, path) {
				t.Fatal("the winner's write is not there")
			}
			t.Logf("%d concurrent %s %s with one If-Match: %v", n, rt.method, rt.name, count)
		})
	}
}
