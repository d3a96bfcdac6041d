package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/plugins/github/githubtest"
	"github.com/gatehouse/gatehouse/plugins/oidc/oidctest"
)

// The GL Connectors dialect replayed as its official clients call it: the
// Python SDK (gl_connectors_sdk: module-level requests calls, X-API-Key,
// exactly 200 expected) and the CLI (glcon: one requests.Session, x-api-key,
// the /clients/... paths, {"selected": true} on select, the client key as a
// bearer token on GET /connectors), each call with the headers and body they
// send, in the order a program and a CLI session make them, with the real
// plugin processes and the fake GitHub behind the integrations.

var (
	uuidRE    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	expiresRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)
)

// glCall is one HTTP call of a GL client: it returns the status and the
// decoded JSON body (every answer of the dialect is JSON).
func glCall(t *testing.T, c *http.Client, method, url, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: %d, not a JSON object: %q", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// data returns the envelope's data, checking the envelope.
func data(t *testing.T, what string, status int, m map[string]any) map[string]any {
	t.Helper()
	d, ok := m["data"].(map[string]any)
	if status != 200 || !ok || m["meta"] != nil || len(m) != 2 {
		t.Fatalf("%s: %d %v; want 200 {data: {...}, meta: null}", what, status, m)
	}
	return d
}

// createClient runs `gatehouse clients create NAME` against the instance
// and returns the key it prints.
func createClient(t *testing.T, in *instance, name string) string {
	t.Helper()
	var out strings.Builder
	code := run(context.Background(), []string{"clients", "create", name, "--admin-url", in.adminURL}, &out, devNull(t))
	if code != exitOK || !strings.HasPrefix(out.String(), "sk-client-") {
		t.Fatalf("gatehouse clients create: %d %q", code, out.String())
	}
	return strings.TrimSpace(out.String())
}

func devNull(t *testing.T) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestGLConnectorsSDKFlow replays a program using gl_connectors_sdk, the
// seed's examples included, in the SDK's order.
func TestGLConnectorsSDKFlow(t *testing.T) {
	e := newRedirectE2E(t)
	e.github.AddUser(githubtest.User{ID: 11, Login: "octocat", Emails: []githubtest.Email{{Email: "octo@example.test", Primary: true, Verified: true}}})
	e.github.AddUser(githubtest.User{ID: 12, Login: "hubot", Emails: []githubtest.Email{{Email: "hubot@example.test", Primary: true, Verified: true}}})
	key := createClient(t, e.in, "acme")
	base := e.in.publicURL + "/gl"
	sdk := func() *http.Client { return &http.Client{} } // module-level calls: a new connection each
	apiKey := []string{"X-API-Key", key}
	jsonType := []string{"Content-Type", "application/json"}

	// create_user: POST /users.
	status, m := glCall(t, sdk(), "POST", base+"/users", `{"identifier": "fahmi-armand"}`, append(apiKey, jsonType...)...)
	u := data(t, "create_user", status, m)
	secret, _ := u["secret"].(string)
	if !uuidRE.MatchString(str(u["id"])) || !uuidRE.MatchString(str(u["client_id"])) || u["identifier"] != "fahmi-armand" ||
		!strings.HasPrefix(secret, "sk-user-") || u["secret_preview"] != "sk-user-..."+secret[len(secret)-8:] || u["is_active"] != true {
		t.Fatalf("create_user data %v", u)
	}
	if l, ok := u["integrations"].([]any); !ok || len(l) != 0 {
		t.Errorf("integrations %v, want []", u["integrations"])
	}
	// A taken identifier is 409, with the error object.
	status, m = glCall(t, sdk(), "POST", base+"/users", `{"identifier": "fahmi-armand"}`, append(apiKey, jsonType...)...)
	if status != 409 || m["message"] == nil || m["error"].(map[string]any)["code"] != "CONFLICT" {
		t.Errorf("a taken identifier: %d %v", status, m)
	}

	// authenticate: POST /auth/tokens.
	status, m = glCall(t, sdk(), "POST", base+"/auth/tokens", `{"identifier": "fahmi-armand", "secret": "`+secret+`"}`, append(apiKey, jsonType...)...)
	tok := data(t, "authenticate", status, m)
	token := str(tok["token"])
	if token == "" || tok["token_type"] != "Bearer" || !expiresRE.MatchString(str(tok["expires_at"])) || tok["is_revoked"] != false ||
		tok["user_id"] != u["id"] || tok["client_id"] != u["client_id"] {
		t.Fatalf("authenticate data %v", tok)
	}
	// A second token does not revoke the first.
	status, m = glCall(t, sdk(), "POST", base+"/auth/tokens", `{"identifier": "fahmi-armand", "secret": "`+secret+`"}`, append(apiKey, jsonType...)...)
	data(t, "authenticate again", status, m)
	bearer := append([]string{"Authorization", "Bearer " + token}, apiKey...)

	// get_user_info: GET /users/me.
	status, m = glCall(t, sdk(), "GET", base+"/users/me", "", bearer...)
	me := data(t, "get_user_info", status, m)
	if me["secret"] != nil || me["secret_preview"] != u["secret_preview"] || me["identifier"] != "fahmi-armand" {
		t.Errorf("get_user_info data %v", me)
	}
	// The GL token is a session: /verify and the native public API take it.
	if status, _ := e.pub("GET", "/verify", "", "Authorization", "Bearer "+token); status != 200 {
		t.Errorf("/verify with the GL token: %d", status)
	}

	// user_has_integration, then initiate_connector_auth and the browser.
	hasIntegration := func() bool {
		status, m := glCall(t, sdk(), "GET", base+"/connectors/github/integration-exists", "", bearer...)
		return data(t, "user_has_integration", status, m)["has_integration"] == true
	}
	if hasIntegration() {
		t.Error("has_integration before any")
	}
	link := func(login string) {
		t.Helper()
		status, m := glCall(t, sdk(), "POST", base+"/connectors/github/integrations",
			`{"callback_url": "`+appConnected+`", "login_hint": "`+login+`"}`, append(bearer, jsonType...)...)
		q := e.browser().land(str(data(t, "initiate_connector_auth", status, m)["url"]))
		if q.Get("connector") != "github" || q.Get("user_identifier") != login {
			t.Fatalf("the link landed with %v", q)
		}
	}
	link("octocat")
	if !hasIntegration() {
		t.Error("has_integration after linking")
	}
	link("hubot")
	selected := func() map[string]bool {
		status, m := glCall(t, sdk(), "GET", base+"/users/me", "", bearer...)
		out := map[string]bool{}
		for _, i := range data(t, "get_user_info", status, m)["integrations"].([]any) {
			i := i.(map[string]any)
			if !uuidRE.MatchString(str(i["id"])) || i["client_id"] != u["client_id"] || i["user_id"] != u["id"] || i["connector"] != "github" {
				t.Errorf("integration %v", i)
			}
			out[str(i["user_identifier"])] = i["selected"].(bool)
		}
		return out
	}
	if s := selected(); len(s) != 2 || !s["octocat"] || s["hubot"] {
		t.Errorf("after two links: %v; want the first selected", s)
	}

	// select_integration: POST with no body and no Content-Type.
	status, m = glCall(t, sdk(), "POST", base+"/connectors/github/integrations/hubot", "", bearer...)
	if d := data(t, "select_integration", status, m); d["success"] != true || d["error"] != nil {
		t.Errorf("select data %v", d)
	}
	if s := selected(); !s["hubot"] || s["octocat"] {
		t.Errorf("after select: %v", s)
	}
	// get_integration: the token works at GitHub.
	status, m = glCall(t, sdk(), "GET", base+"/connectors/github/integrations/hubot", "", bearer...)
	d := data(t, "get_integration", status, m)
	if d["connector"] != "github" || d["user_identifier"] != "hubot" || d["selected"] != true {
		t.Errorf("get_integration data %v", d)
	}
	if status, _ := do(t, "GET", e.github.APIURL()+"/user", "", "Authorization", "Bearer "+str(d["auth_string"])); status != 200 {
		t.Errorf("auth_string does not work at GitHub: %d", status)
	}
	// An unknown account: the real status, data.success false with the error.
	status, m = glCall(t, sdk(), "GET", base+"/connectors/github/integrations/nobody", "", bearer...)
	if fd, _ := m["data"].(map[string]any); status != 404 || fd["success"] != false || fd["error"] == "" || m["error"].(map[string]any)["message"] == "" {
		t.Errorf("an unknown integration: %d %v", status, m)
	}
	// remove_integration: the selected one; the newest remaining is selected.
	status, m = glCall(t, sdk(), "DELETE", base+"/connectors/github/integrations/hubot", "", bearer...)
	if d := data(t, "remove_integration", status, m); d["success"] != true {
		t.Errorf("remove data %v", d)
	}
	if s := selected(); len(s) != 1 || !s["octocat"] {
		t.Errorf("after removing the selected: %v", s)
	}
	// A Google account: its identifier is an email, in the path with a raw '@'.
	e.google.AddUser(oidctest.User{Subject: "g-9", Email: "fahmi@gmail.test", EmailVerified: true})
	status, m = glCall(t, sdk(), "POST", base+"/connectors/google/integrations", `{"callback_url": "`+appConnected+`"}`, append(bearer, jsonType...)...)
	if q := e.browser().land(str(data(t, "link google", status, m)["url"])); q.Get("user_identifier") != "fahmi@gmail.test" {
		t.Fatalf("the Google link landed with %v", q)
	}
	status, m = glCall(t, sdk(), "GET", base+"/connectors/google/integrations/fahmi@gmail.test", "", bearer...)
	if d := data(t, "get the Google integration", status, m); d["user_identifier"] != "fahmi@gmail.test" || d["selected"] != true || str(d["auth_string"]) == "" {
		t.Errorf("Google integration %v", d)
	}
	// Custom configuration: GitHub takes none → 400 with a top-level message.
	status, m = glCall(t, sdk(), "POST", base+"/connectors/github/integrations", `{"auth_type": "custom", "configuration": {"token": "x"}}`, append(bearer, jsonType...)...)
	if status != 400 || str(m["message"]) == "" {
		t.Errorf("custom configuration of github: %d %v", status, m)
	}

	// get_available_modules and the schema fetch: no key at all, bare bodies.
	resp, err := http.Get(base + "/connectors/names")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	_ = json.NewDecoder(resp.Body).Decode(&names)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Join(names, ",") != "google,github" {
		t.Errorf("/connectors/names: %d %v", resp.StatusCode, names)
	}
	status, m = glCall(t, sdk(), "GET", base+"/connectors/?modules=github", "")
	if status != 200 || len(m) != 1 || m["github"] == nil {
		t.Errorf("/connectors/?modules=github: %d %v", status, m)
	}
}

// TestGLConnectorsCLIFlow replays a glcon session on one keep-alive
// connection: users create, auth login, integrations (list, add with the
// CLI's own callback, select, show, remove), and the failures it meets.
func TestGLConnectorsCLIFlow(t *testing.T) {
	e := newRedirectE2E(t)
	e.github.AddUser(githubtest.User{ID: 21, Login: "monalisa", Emails: []githubtest.Email{{Email: "mona@example.test", Primary: true, Verified: true}}})
	key := createClient(t, e.in, "cli-tenant")
	otherKey := createClient(t, e.in, "other-tenant")
	base := e.in.publicURL + "/gl"
	// One requests.Session: its calls share one keep-alive connection, which
	// every handler must leave usable (bodies it ignores included).
	var dials atomic.Int32
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	session := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}}}
	apiKey := []string{"x-api-key", key}
	jsonType := []string{"Content-Type", "application/json"}

	// glcon users create alice
	status, m := glCall(t, session, "POST", base+"/clients/register-user", `{"identifier": "alice"}`, append(apiKey, jsonType...)...)
	secret := str(data(t, "users create", status, m)["secret"])
	// glcon auth login K alice SECRET
	status, m = glCall(t, session, "POST", base+"/clients/oauth-token", `{"identifier": "alice", "secret": "`+secret+`"}`, append(apiKey, jsonType...)...)
	token := str(data(t, "auth login", status, m)["token"])
	bearer := []string{"Authorization", "Bearer " + token, "x-api-key", key}
	// glcon integrations: GET /clients/user, then GET /connectors with the
	// client key as the bearer token and no x-api-key: a bare object.
	status, m = glCall(t, session, "GET", base+"/clients/user", "", bearer...)
	data(t, "integrations (user)", status, m)
	status, m = glCall(t, session, "GET", base+"/connectors", "", "Authorization", "Bearer "+key)
	if status != 200 || len(m) != 2 || m["github"] == nil || m["google"] == nil {
		t.Errorf("GET /connectors: %d %v; want a bare object keyed by connector", status, m)
	}
	// glcon integrations add github: exists → initiate with the CLI's own
	// callback → the browser ends on Gatehouse's success page.
	status, m = glCall(t, session, "GET", base+"/connectors/github/integration-exists", "", bearer...)
	data(t, "integration-exists", status, m)
	callback := base + "/connectors/github/success-authorize-callback"
	status, m = glCall(t, session, "POST", base+"/connectors/github/integrations", `{"callback_url": "`+callback+`"}`, append(bearer, jsonType...)...)
	authURL := str(data(t, "integrations add", status, m)["url"])
	st, _, page := e.browser().get(authURL)
	if st != 200 || !strings.Contains(page, "monalisa") || !strings.Contains(page, "connected") {
		t.Errorf("the CLI's callback page: %d %s", st, page)
	}
	// Another callback is held to the allow-list.
	status, m = glCall(t, session, "POST", base+"/connectors/github/integrations", `{"callback_url": "http://evil.test/cb"}`, append(bearer, jsonType...)...)
	if status != 400 || m["error"].(map[string]any)["message"] == "" {
		t.Errorf("an unlisted callback_url: %d %v", status, m)
	}
	// glcon integrations select github monalisa: {"selected": true}.
	status, m = glCall(t, session, "POST", base+"/connectors/github/integrations/monalisa", `{"selected": true}`, append(bearer, jsonType...)...)
	if d := data(t, "integrations select", status, m); d["success"] != true {
		t.Errorf("select %v", d)
	}
	// glcon integrations show github monalisa
	status, m = glCall(t, session, "GET", base+"/connectors/github/integrations/monalisa", "", bearer...)
	if d := data(t, "integrations show", status, m); d["auth_string"] == "" || d["auth_scopes"] == nil {
		t.Errorf("show %v", d)
	}
	// glcon integrations remove github monalisa
	status, m = glCall(t, session, "DELETE", base+"/connectors/github/integrations/monalisa", "", bearer...)
	if d := data(t, "integrations remove", status, m); d["success"] != true {
		t.Errorf("remove %v", d)
	}

	// Failures, each with the error object and its real status.
	for _, c := range []struct {
		what    string
		status  int
		method  string
		path    string
		body    string
		headers []string
	}{
		{"no client key", 401, "POST", "/clients/register-user", `{"identifier":"bob"}`, jsonType},
		{"a wrong client key", 401, "POST", "/users", `{"identifier":"bob"}`, append([]string{"X-API-KEY", "sk-client-nope"}, jsonType...)},
		{"a wrong secret", 401, "POST", "/auth/tokens", `{"identifier":"alice","secret":"sk-user-wrong"}`, append(apiKey, jsonType...)},
		{"another client's key with the user's token", 401, "GET", "/users/me", "", []string{"Authorization", "Bearer " + token, "x-api-key", otherKey}},
		{"no identifier", 422, "POST", "/users", `{}`, append(apiKey, jsonType...)},
		{"an unknown connector", 404, "GET", "/connectors/slack/integration-exists", "", bearer},
	} {
		status, m := glCall(t, session, c.method, base+c.path, c.body, c.headers...)
		errObj, _ := m["error"].(map[string]any)
		if status != c.status || str(m["message"]) == "" || errObj == nil || errObj["message"] != m["message"] || str(errObj["code"]) == "" {
			t.Errorf("%s: %d %v; want %d with the error object", c.what, status, m, c.status)
		}
	}
	// Trailing slashes and header case, answered directly; a body where none
	// is read.
	status, m = glCall(t, session, "GET", base+"/clients/user/", `{"ignored": true}`, "AUTHORIZATION", "Bearer "+token, "X-Api-Key", key)
	data(t, "a trailing slash", status, m)
	if n := dials.Load(); n != 1 {
		t.Errorf("the session's calls took %d connections, want 1", n)
	}
	if strings.Contains(e.in.log(), secret) || strings.Contains(e.in.log(), key) {
		t.Error("a secret reached the log")
	}

	// The operator's side: gatehouse clients list, new-key, revoke-key, delete.
	cli := func(args ...string) (int, string) {
		var out strings.Builder
		code := run(context.Background(), append(append([]string{"clients"}, args...), "--admin-url", e.in.adminURL), &out, devNull(t))
		return code, out.String()
	}
	code, out := cli("list")
	if code != exitOK || !strings.Contains(out, "cli-tenant") || !strings.Contains(out, "other-tenant") || strings.Contains(out, "sk-client-") {
		t.Fatalf("clients list: %d %q", code, out)
	}
	var ids = map[string]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 2 {
			ids[f[1]] = f[0]
		}
	}
	code, newKey := cli("new-key", ids["cli-tenant"])
	newKey = strings.TrimSpace(newKey)
	if code != exitOK || !strings.HasPrefix(newKey, "sk-client-") {
		t.Fatalf("clients new-key: %d %q", code, newKey)
	}
	if status, m := glCall(t, session, "POST", base+"/users", `{"identifier":"carol"}`, "x-api-key", newKey); status != 200 {
		t.Errorf("the new key: %d %v", status, m)
	}
	status, body := e.admin("GET", "/clients/"+ids["cli-tenant"], "")
	var cl struct {
		Keys []struct{ ID, Preview string }
	}
	_ = json.Unmarshal([]byte(body), &cl)
	if status != 200 || len(cl.Keys) != 2 || strings.Contains(body, newKey) {
		t.Fatalf("GET /clients/{id}: %d %s", status, body)
	}
	revoked := cl.Keys[1]
	if !strings.HasSuffix(newKey, strings.TrimPrefix(revoked.Preview, "sk-client-...")) {
		revoked = cl.Keys[0]
	}
	if code, out := cli("revoke-key", ids["cli-tenant"], revoked.ID); code != exitOK {
		t.Fatalf("clients revoke-key: %d %q", code, out)
	}
	if status, _ := glCall(t, session, "POST", base+"/users", `{"identifier":"dave"}`, "x-api-key", newKey); status != 401 {
		t.Errorf("a revoked key: %d", status)
	}
	if code, out := cli("delete", ids["other-tenant"]); code != exitOK {
		t.Fatalf("clients delete: %d %q", code, out)
	}
	if status, _ := glCall(t, session, "POST", base+"/users", `{"identifier":"erin"}`, "x-api-key", otherKey); status != 401 {
		t.Errorf("a deleted client's key: %d", status)
	}
}

// str is v as a string ("" when it is not one).
func str(v any) string {
	s, _ := v.(string)
	return s
}
