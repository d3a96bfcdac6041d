package adminapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// plAnswer is one answer of the publica.la surface.
type plAnswer struct {
	code int
	hdr  http.Header
	body []byte
	m    map[string]any
}

// plClient calls the publica.la surface over HTTP as the PHP client does:
// X-User-Token, Accept and Content-Type application/json on every request
// (bodiless ones too), and no redirect followed silently: a 3xx fails.
type plClient struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
	calls int
}

func (c *plClient) do(method, path, body string) plAnswer {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("X-User-Token", c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	c.calls++
	a := plAnswer{code: res.StatusCode, hdr: res.Header, body: b}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &a.m); err != nil {
			c.t.Fatalf("%s %s: %d, not a JSON object: %q", method, path, a.code, b)
		}
	}
	if a.hdr.Get("X-RateLimit-Limit") == "" || a.hdr.Get("X-RateLimit-Remaining") == "" {
		c.t.Errorf("%s %s: %d without X-RateLimit-Limit / -Remaining", method, path, a.code)
	}
	return a
}

// must fails unless the answer has status want.
func (a plAnswer) must(t *testing.T, want int, what string) plAnswer {
	t.Helper()
	if a.code != want {
		t.Fatalf("%s: %d, want %d: %s", what, a.code, want, a.body)
	}
	return a
}

func (a plAnswer) data() map[string]any {
	d, _ := a.m["data"].(map[string]any)
	return d
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedCopy(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestPublicalaUsersAPI replays the publica.la seed's examples and the PHP
// client's calls, in order, over HTTP: create, list (with its filters and
// Laravel's paginator), update where the client sends it (204), deactivate,
// re-activate, force-logout, Laravel's errors, the budget headers on every
// answer, both slash forms and no redirect; the key opens nothing else.
func TestPublicalaUsersAPI(t *testing.T) {
	mr := miniredis.RunT(t)
	client := redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{mr.Addr()}})
	t.Cleanup(func() { client.Close() })
	e := newEnvCached(t, client, mr, core.VerifyCacheOptions{Size: 1000, TTL: core.MaxVerifyCacheTTL})
	srv := httptest.NewServer(e.admin)
	t.Cleanup(srv.Close)
	token := e.dialectKey(core.ScopePublicala)
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return errors.New("redirected: the PHP client would turn a POST into a GET")
	}}
	pl := &plClient{t: t, base: srv.URL, token: token, hc: hc}
	const users = "/integration-api/v1/dashboard/users"

	// Create: the seed's example body (its comments and trailing comma removed), at the seed's path with its slash.
	created := pl.do("POST", users+"/", `{"email":"ana@example.com","external_id":"user-id-in-your-platform","new_password":"Abcd1234",
		"sessions_limit":null,"assign_new_plan":null,"new_plan_custom_valid_to":"","admin":false,"plan_admin":false,"only_sees_readable":true}`).must(t, 200, "create")
	if created.m["CODE"] != "success" {
		t.Errorf("create: %s", created.body)
	}
	d := created.data()
	if want := []string{"admin", "created_at", "deleted_at", "email", "id", "only_sees_readable", "picture", "plan_admin", "sessions_limit", "updated_at", "uuid"}; !slices.Equal(keysOf(d), want) {
		t.Errorf("create data fields %v, want %v", keysOf(d), want)
	}
	ana := d
	anaID := strconv.Itoa(int(ana["id"].(float64)))
	if ana["email"] != "ana@example.com" || ana["only_sees_readable"] != true || ana["admin"] != false || ana["sessions_limit"] != nil ||
		ana["deleted_at"] != nil || !core.IsUUID(ana["uuid"].(string)) || !strings.HasPrefix(ana["picture"].(string), "https://www.gravatar.com/avatar/") {
		t.Errorf("created user: %v", ana)
	}
	ca := ana["created_at"].(map[string]any)
	if ca["timezone"] != "UTC" || !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`).MatchString(ca["date"].(string)) || ca["timestamp"].(float64) < 1e9 {
		t.Errorf("created_at: %v", ca)
	}
	t.Logf("create: %s", strings.TrimSpace(string(created.body)))

	// Values as PHP sends them: "1", 0, "true", numeric strings; no trailing slash.
	bo := pl.do("POST", users, `{"email":"bo@example.com","external_id":"bo-1","admin":"1","plan_admin":0,"only_sees_readable":"true","sessions_limit":"5","assign_new_plan":"42","new_plan_custom_valid_to":"2027-01-31"}`).must(t, 200, "create with PHP values").data()
	if bo["admin"] != true || bo["plan_admin"] != false || bo["only_sees_readable"] != true || bo["sessions_limit"] != 5.0 {
		t.Errorf("PHP values: %v", bo)
	}
	boID := strconv.Itoa(int(bo["id"].(float64)))

	// Laravel's 422: every field at fault, named as the body names it.
	bad := pl.do("POST", users, `{"external_id":"`+strings.Repeat("x", 65)+`","new_password":"short","sessions_limit":0,"admin":"yes"}`).must(t, 422, "bad create")
	t.Logf("422: %s", bad.body)
	errs, _ := bad.m["errors"].(map[string]any)
	if want := []string{"admin", "email", "external_id", "new_password"}; !slices.Equal(keysOf(errs), want) || !strings.Contains(bad.m["message"].(string), "more error") {
		t.Errorf("422: %s", bad.body)
	}
	if r := pl.do("POST", users, `{"email":"x@example.com","external_id":"x-1","sessions_limit":1000000}`).must(t, 422, "sessions_limit"); keysOf(r.m["errors"].(map[string]any))[0] != "sessions_limit" {
		t.Errorf("sessions_limit over 999999: %s", r.body)
	}
	if r := pl.do("POST", users, `{"email":"ANA@example.com","external_id":"other"}`).must(t, 422, "taken email"); !strings.Contains(string(r.body), `"email":["The email has already been taken."]`) {
		t.Errorf("taken email: %s", r.body)
	}
	if r := pl.do("POST", users, `{"email":"new@example.com","external_id":"bo-1"}`).must(t, 422, "taken external_id"); r.m["errors"].(map[string]any)["external_id"] == nil {
		t.Errorf("taken external_id: %s", r.body)
	}
	pl.do("POST", users, `not json`).must(t, 400, "bad JSON")

	// The client's getAllUsers(null, '10', null): GET with Content-Type json and an empty body.
	list := pl.do("GET", users+"?per_page=10", "").must(t, 200, "list")
	pg := list.data()["paginator"].(map[string]any)
	if want := []string{"current_page", "data", "first_page_url", "from", "last_page", "last_page_url", "next_page_url", "path", "per_page", "prev_page_url", "to", "total"}; !slices.Equal(keysOf(pg), want) {
		t.Errorf("paginator fields %v", keysOf(pg))
	}
	items := pg["data"].([]any)
	if pg["total"] != 2.0 || len(items) != 2 || pg["current_page"] != 1.0 || pg["per_page"] != 10.0 || pg["last_page"] != 1.0 || pg["from"] != 1.0 || pg["to"] != 2.0 || pg["next_page_url"] != nil {
		t.Errorf("list: %s", list.body)
	}
	item := items[0].(map[string]any)
	seedItem := []string{"id", "uuid", "admin", "plan_admin", "email", "sessions_limit", "only_sees_readable", "picture", "created_at", "updated_at", "deleted_at",
		"purchased_issues_with_cancelled_count", "user_plans_count", "can_be_edited", "created_at_date_string", "impersonate", "sessions", "ip_ranges", "referrers",
		"purchased_issues_with_cancelled", "user_plans"}
	if !slices.Equal(keysOf(item), sortedCopy(seedItem)) {
		t.Errorf("list item fields %v", keysOf(item))
	}
	if item["id"] != ana["id"] || item["only_sees_readable"] != 1.0 || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(item["created_at"].(string)) {
		t.Errorf("list item: %v", item)
	}
	p2 := pl.do("GET", users+"/?page=2&per_page=1", "").must(t, 200, "page 2").data()["paginator"].(map[string]any)
	if p2["current_page"] != 2.0 || p2["from"] != 2.0 || p2["to"] != 2.0 || p2["last_page"] != 2.0 || p2["next_page_url"] != nil ||
		!strings.HasSuffix(p2["prev_page_url"].(string), users+"?page=1") || p2["data"].([]any)[0].(map[string]any)["id"] != bo["id"] {
		t.Errorf("page 2: %v", p2)
	}
	pl.do("GET", users+"?per_page=101", "").must(t, 422, "per_page over 100")
	for _, q := range []string{"?query=bo@example.com", "/?email=BO@example.com", "?query=admins"} {
		r := pl.do("GET", users+q, "").must(t, 200, q).data()["paginator"].(map[string]any)
		if r["total"] != 1.0 || r["data"].([]any)[0].(map[string]any)["email"] != "bo@example.com" {
			t.Errorf("%s: %v", q, r)
		}
	}

	// Update where the PHP client sends it, then by external_id under the integration API: 204, empty.
	up := pl.do("PUT", "/api/v1/dashboard/users/"+boID, `{"email":"bo@example.com","external_id":"bo-1","only_sees_readable":0,"admin":"false","sessions_limit":"","user_plan_name":"gold"}`)
	if up.must(t, 204, "update"); len(up.body) != 0 {
		t.Errorf("update body: %q", up.body)
	}
	pl.do("PUT", users+"/bo-1/", `{"email":"bo@example.com","external_id":"bo-1","only_sees_readable":"1","new_password":"Bo password 1"}`).must(t, 204, "update by external_id")
	if r := pl.do("PUT", users+"/"+boID, `{"email":"bo@example.com","external_id":"bo-1"}`).must(t, 422, "update without only_sees_readable"); r.m["errors"].(map[string]any)["only_sees_readable"] == nil {
		t.Errorf("update 422: %s", r.body)
	}
	boUser, _ := e.svc.UserByName(t.Context(), core.NameExternalID, "bo-1")
	if boUser.SessionsLimit != nil || boUser.Props["publicala:admin"] != false || boUser.Props["publicala:user_plan_name"] != "gold" {
		t.Errorf("updated user: %+v", boUser)
	}
	if code, _ := e.login("email", "bo@example.com", "Bo password 1"); code != 200 {
		t.Errorf("login with the updated password: %d", code)
	}

	// Deactivate: the password set at create, a session and a key, all refused at once (the /verify cache is on).
	code, session := e.login("email", "ana@example.com", "Abcd1234")
	if code != 200 {
		t.Fatalf("login with new_password: %d", code)
	}
	k := e.must(200, "POST", "/credentials", `{"consumerId":"`+ana["uuid"].(string)+`","type":"key-auth"}`)
	apiKey := k["keyId"].(string) + ":" + k["keySecret"].(string)
	verifyKey := func() int { return e.pub("GET", "/verify", "", "x-api-key", apiKey).Code }
	if e.verifyBearer(session) != 200 || verifyKey() != 200 || verifyKey() != 200 {
		t.Fatal("ana's session or key refused before deactivation")
	}
	del := pl.do("DELETE", users+"/"+anaID, "").must(t, 200, "deactivate")
	if strings.TrimSpace(string(del.body)) != `{"CODE":"success","data":[]}` {
		t.Errorf("deactivate: %s", del.body)
	}
	if s, kk := e.verifyBearer(session), verifyKey(); s < 401 || s > 403 || kk < 401 || kk > 403 {
		t.Errorf("after deactivation: session %d, key %d", s, kk)
	}
	if code, _ := e.login("email", "ana@example.com", "Abcd1234"); code == 200 {
		t.Error("a deactivated user logged in")
	}
	pl.do("DELETE", users+"/"+anaID, "").must(t, 404, "deactivate again")
	pl.do("PUT", users+"/"+anaID, `{"email":"ana@example.com","external_id":"user-id-in-your-platform","only_sees_readable":1}`).must(t, 404, "update a deactivated user")
	dl := pl.do("GET", users+"?query=deactivated", "").must(t, 200, "deactivated").data()["paginator"].(map[string]any)
	if dl["total"] != 1.0 || dl["data"].([]any)[0].(map[string]any)["deleted_at"] == nil {
		t.Errorf("query=deactivated: %v", dl)
	}
	if all := pl.do("GET", users, "").data()["paginator"].(map[string]any); all["total"] != 1.0 {
		t.Errorf("the default list holds deactivated users: %v", all)
	}

	// Re-activate (the client sends no body); the key works again.
	re := pl.do("PUT", users+"/"+anaID+"/re-activate", "").must(t, 200, "re-activate")
	if strings.TrimSpace(string(re.body)) != `{"CODE":"success","data":1}` || verifyKey() != 200 {
		t.Errorf("re-activate: %s", re.body)
	}

	// Force logout, by external_id: sessions end, keys stay; and the auth-sessions form.
	_, session = e.login("email", "ana@example.com", "Abcd1234")
	if fl := pl.do("POST", "/integration-api/v1/users/user-id-in-your-platform/force-logout", "").must(t, 200, "force-logout"); strings.TrimSpace(string(fl.body)) != `{"CODE":"success","data":[]}` {
		t.Errorf("force-logout: %s", fl.body)
	}
	if e.verifyBearer(session) != 401 || verifyKey() != 200 {
		t.Error("force-logout: the session lives on, or the key died")
	}
	pl.do("DELETE", "/integration-api/v1/auth-sessions/users/"+anaID+"/", "").must(t, 200, "auth-sessions")

	// 404 and 401 in Laravel's shapes; the budget announced and spent.
	if nf := pl.do("PUT", users+"/999999/re-activate", "").must(t, 404, "unknown user"); nf.m["message"] == nil || len(nf.m) != 1 {
		t.Errorf("404: %s", nf.body)
	}
	a1, a2 := pl.do("GET", users, ""), pl.do("GET", users, "")
	r1, _ := strconv.Atoi(a1.hdr.Get("X-RateLimit-Remaining"))
	r2, _ := strconv.Atoi(a2.hdr.Get("X-RateLimit-Remaining"))
	if a1.hdr.Get("X-RateLimit-Limit") != "60" || r2 >= r1 {
		t.Errorf("budget: limit %s, remaining %d then %d", a1.hdr.Get("X-RateLimit-Limit"), r1, r2)
	}
	t.Logf("after %d calls with its key: X-RateLimit-Limit %s, X-RateLimit-Remaining %d", pl.calls, a2.hdr.Get("X-RateLimit-Limit"), r2)
	anon := &plClient{t: t, base: srv.URL, hc: hc}
	for _, tok := range []string{"", "wrong-token"} {
		anon.token = tok
		if r := anon.do("POST", users, `{"email":"z@example.com","external_id":"z"}`).must(t, 401, "no token"); strings.TrimSpace(string(r.body)) != `{"message":"Unauthenticated."}` {
			t.Errorf("401: %s", r.body)
		}
	}

	// The native admin key opens the surface in X-User-Token too; the
	// publica.la key opens nothing else, and another dialect's key not this.
	anon.token = testAdminKey
	anon.do("GET", users, "").must(t, 200, "native key in X-User-Token")
	anon.token = e.dialectKey(core.ScopeQloud)
	if r := anon.do("GET", users, "").must(t, 403, "a qloud key"); strings.TrimSpace(string(r.body)) != `{"message":"This action is unauthorized."}` {
		t.Errorf("403: %s", r.body)
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
		{e.admin, "GET", "/.q/api/management/users/" + ana["uuid"].(string), "Authorization", 403, "application/problem+json"},
		{e.public, "GET", "/verify", "x-api-key", 401, "application/problem+json"},
		{e.public, "GET", "/gl/users/me", "x-api-key", 401, "application/json"},
		{e.admin, "GET", "/api/auth/manager/users", "Authorization", 403, "application/json"},
	} {
		w := call(t, c.h, c.method, c.path, "", c.header, token)
		if w.Code != c.want || w.Header().Get("Content-Type") != c.ctype {
			t.Errorf("publica.la key on %s %s (%s): %d %s", c.method, c.path, c.header, w.Code, w.Header().Get("Content-Type"))
		}
	}
	if strings.Contains(e.logs.String(), token) || strings.Contains(e.logs.String(), "Abcd1234") {
		t.Error("a key or a password reached the log")
	}
}
