package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/proctest"
	"github.com/gatehouse/gatehouse/plugins/github/githubtest"
	"github.com/gatehouse/gatehouse/plugins/oidc/oidctest"
)

// The end-to-end redirect sign-ins: a real server, the google and github
// plugins as their own processes, fake Google and GitHub servers speaking the
// real protocols, and a browser (an HTTP client with a cookie jar) that
// follows every redirect.

// Gatehouse's public URL in these tests: the browser's transport dials the
// real listener for it, so the callback URL the providers see is stable.
const (
	gatehouseHost = "gatehouse.test"
	appSignedIn   = "http://app.test/signed-in"
	appConnected  = "http://app.test/connected"
)

// redirectEnv is a server with both redirect plugins and their fakes.
type redirectEnv struct {
	t      *testing.T
	in     *instance
	google *oidctest.Server
	github *githubtest.Server
}

const e2eAdminKey = "operator-chosen-key-123"

func newRedirectE2E(t *testing.T) *redirectEnv {
	t.Helper()
	return newRedirectE2EWith(t, "", nil)
}

// newRedirectE2EWith also runs extra plugin entries, external ones from
// pluginDir.
func newRedirectE2EWith(t *testing.T, pluginDir string, extra []map[string]any) *redirectEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the google and github plugins as processes against fake providers")
	}
	clearEnv(t)
	// Short-lived access tokens: the admin API's token answer refreshes them.
	google := oidctest.New(oidctest.Options{TokenTTL: 30 * time.Second})
	t.Cleanup(google.Close)
	gh := githubtest.New(githubtest.Options{})
	t.Cleanup(gh.Close)
	plugins, err := json.Marshal(append([]map[string]any{
		{"name": "google", "builtin": "google", "config": map[string]any{
			"clientId": google.ClientID, "clientSecretEnv": "GOOGLE_SECRET", "issuer": google.Issuer}},
		{"name": "github", "builtin": "github", "config": map[string]any{
			"clientId": gh.ClientID, "clientSecretEnv": "GITHUB_SECRET",
			"authURL": gh.AuthURL(), "tokenURL": gh.TokenURL(), "apiURL": gh.APIURL()}},
	}, extra...))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_SECRET", google.ClientSecret)
	t.Setenv("GITHUB_SECRET", gh.ClientSecret)
	t.Setenv("GATEHOUSE_PLUGINS", string(plugins))
	if pluginDir != "" {
		t.Setenv("GATEHOUSE_PLUGIN_DIR", pluginDir)
	}
	t.Setenv("GATEHOUSE_ADMIN_KEY", e2eAdminKey)
	t.Setenv("GATEHOUSE_AUTH_REDIRECT_URIS", appSignedIn+","+appConnected)
	in := startServe(t, filepath.Join(t.TempDir(), "key"), "--public-url", "http://"+gatehouseHost)
	return &redirectEnv{t: t, in: in, google: google, github: gh}
}

// browser is a cookie-keeping HTTP client that follows redirects until the
// app's pages (which do not exist: where it lands is the answer).
type browser struct {
	t *testing.T
	c *http.Client
}

func (e *redirectEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	public := strings.TrimPrefix(e.in.publicURL, "http://")
	dial := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == gatehouseHost+":80" {
			addr = public
		}
		return dial.DialContext(ctx, network, addr)
	}}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: e.t, c: &http.Client{Jar: jar, Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host == "app.test" || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

// get fetches u, following redirects, and returns the last answer's status,
// its Location (where it sends the browser next) and body.
func (b *browser) get(u string) (int, string, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// stopAt fetches u but stops before the browser would reach a URL with
// prefix stop, returning that URL.
func (b *browser) stopAt(u, stop string) string {
	b.t.Helper()
	c := *b.c
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), stop) || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, stop) {
		b.t.Fatalf("GET %s: %d, Location %q; want one starting %q", u, resp.StatusCode, loc, stop)
	}
	return loc
}

func (e *redirectEnv) start(provider, redirectURI string, extra ...string) string {
	q := url.Values{"redirect_uri": {redirectURI}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "http://" + gatehouseHost + "/auth/providers/" + provider + "/start?" + q.Encode()
}

// land fetches u, following redirects, and returns the query of where the
// browser lands on the app.
func (b *browser) land(u string) url.Values {
	b.t.Helper()
	t := b.t
	status, loc, _ := b.get(u)
	if status != http.StatusFound || !strings.HasPrefix(loc, "http://app.test/") {
		t.Fatalf("landed with %d at %q; want a redirect to the app", status, loc)
	}
	at, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return at.Query()
}

// pub calls the public API.
func (e *redirectEnv) pub(method, path, body string, headers ...string) (int, string) {
	e.t.Helper()
	return do(e.t, method, e.in.publicURL+path, body, append([]string{"Content-Type", "application/json"}, headers...)...)
}

// admin calls the admin API.
func (e *redirectEnv) admin(method, path, body string) (int, string) {
	e.t.Helper()
	return e.in.call(e.t, e2eAdminKey, method, path, body)
}

// exchange trades a sign-in's code for a session token.
func (e *redirectEnv) exchange(provider, code string) string {
	e.t.Helper()
	status, body := e.pub("POST", "/auth/tokens", fmt.Sprintf(`{"provider":%q,"code":%q}`, provider, code))
	if status != 200 {
		e.t.Fatalf("exchanging the code: %d %s", status, body)
	}
	var ans struct{ Token, ExpiresAt string }
	_ = json.Unmarshal([]byte(body), &ans)
	if !strings.HasPrefix(ans.Token, "gths_") || ans.ExpiresAt == "" {
		e.t.Fatalf("exchange answer %s", body)
	}
	return ans.Token
}

// me returns GET /users/me of a session.
func (e *redirectEnv) me(token string) map[string]any {
	e.t.Helper()
	status, body := e.pub("GET", "/users/me", "", "Authorization", "Bearer "+token)
	if status != 200 {
		e.t.Fatalf("/users/me: %d %s", status, body)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return m
}

// userCount is the number of users, from X-Total-Count.
func (e *redirectEnv) userCount() string {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.in.adminURL+"/users", nil)
	req.Header.Set("x-api-key", e2eAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Total-Count")
}

// TestGoogleSignInEndToEnd: a whole Google sign-in through the browser, the
// code exchanged for a session that /verify accepts, the same person again
// being the same user.
func TestGoogleSignInEndToEnd(t *testing.T) {
	e := newRedirectE2E(t)
	e.google.AddUser(oidctest.User{Subject: "110248495921238986420", Email: "ada@gmail.test", EmailVerified: true,
		Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace"})
	b := e.browser()
	q := b.land(e.start("google", appSignedIn, "state", "app-state-1"))
	if q.Get("state") != "app-state-1" || q.Get("code") == "" {
		t.Fatalf("landing query %v", q)
	}
	token := e.exchange("google", q.Get("code"))
	me := e.me(token)
	if me["email"] != "ada@gmail.test" || me["emailVerified"] != true || me["firstname"] != "Ada" {
		t.Errorf("/users/me %v", me)
	}
	ids, _ := me["identities"].([]any)
	if len(ids) != 1 || ids[0].(map[string]any)["provider"] != "google" || ids[0].(map[string]any)["providerSubject"] != "110248495921238986420" {
		t.Errorf("identities %v", me["identities"])
	}
	if status, _ := e.pub("GET", "/verify", "", "Authorization", "Bearer "+token); status != 200 {
		t.Errorf("/verify with the Google session: %d", status)
	}
	// The code is single-use.
	if status, _ := e.pub("POST", "/auth/tokens", fmt.Sprintf(`{"provider":"google","code":%q}`, q.Get("code"))); status != 401 {
		t.Errorf("a code used twice: %d", status)
	}
	// Again, from another browser: the same user.
	q = e.browser().land(e.start("google", appSignedIn))
	if again := e.me(e.exchange("google", q.Get("code"))); again["id"] != me["id"] {
		t.Errorf("second sign-in made user %v, want %v", again["id"], me["id"])
	}
	if n := e.userCount(); n != "1" {
		t.Errorf("%s users, want 1", n)
	}
	for _, secret := range []string{e.google.ClientSecret, token} {
		if strings.Contains(e.in.log(), secret) {
			t.Error("a secret reached the log")
		}
	}
}

// TestGitHubSignInEndToEnd: GitHub's numeric id is the subject, its login the
// username, its primary verified email the user's.
func TestGitHubSignInEndToEnd(t *testing.T) {
	e := newRedirectE2E(t)
	e.github.AddUser(githubtest.User{ID: 583231, Login: "octocat", Name: "The Octocat",
		Emails: []githubtest.Email{{Email: "octocat@github.test", Primary: true, Verified: true}}})
	q := e.browser().land(e.start("github", appSignedIn, "login_hint", "octocat"))
	token := e.exchange("github", q.Get("code"))
	me := e.me(token)
	ids, _ := me["identities"].([]any)
	if me["username"] != "octocat" || me["email"] != "octocat@github.test" || len(ids) != 1 ||
		ids[0].(map[string]any)["providerSubject"] != "583231" {
		t.Errorf("/users/me %v", me)
	}
	if status, _ := e.pub("GET", "/verify", "", "Authorization", "Bearer "+token); status != 200 {
		t.Errorf("/verify with the GitHub session: %d", status)
	}
}

// TestRedirectSignInFailures: each failure is a clear answer, and nothing is
// created.
func TestRedirectSignInFailures(t *testing.T) {
	e := newRedirectE2E(t)
	e.github.AddUser(githubtest.User{ID: 1, Login: "mallory",
		Emails: []githubtest.Email{{Email: "grace@example.test", Primary: true, Verified: false}}})

	// An unlisted redirect URI: a 400 page at start, never a redirect.
	for _, uri := range []string{"http://evil.test/steal", appSignedIn + "/../x", ""} {
		status, loc, body := e.browser().get(e.start("github", uri))
		if status != 400 || loc != "" || !strings.Contains(body, "redirect_uri") {
			t.Errorf("redirect_uri %q: %d, Location %q", uri, status, loc)
		}
	}
	// Consent refused at the provider.
	e.github.DenyNext()
	q := e.browser().land(e.start("github", appSignedIn, "state", "s-9"))
	if q.Get("error") != "access_denied" || q.Get("state") != "s-9" || q.Has("code") {
		t.Errorf("denied consent landed with %v", q)
	}
	if n := e.userCount(); n != "0" {
		t.Errorf("%s users after a refused consent", n)
	}

	// The callback without the flow cookie (another browser), replayed, forged.
	b := e.browser()
	callback := b.stopAt(e.start("github", appSignedIn), "http://"+gatehouseHost+"/auth/providers/github/callback")
	if status, loc, _ := e.browser().get(callback); status != 400 || loc != "" {
		t.Errorf("the callback in another browser: %d %q", status, loc)
	}
	b.land(callback) // the flow's own browser still completes it
	if status, loc, _ := b.get(callback); status != 400 || loc != "" {
		t.Errorf("a replayed callback: %d %q", status, loc)
	}
	forged := strings.Replace(callback, "state=", "state=x", 1)
	if status, _, _ := b.get(forged); status != 400 {
		t.Errorf("a forged state: %d", status)
	}
	// Another provider's callback for a GitHub flow.
	if status, _, _ := b.get(strings.Replace(callback, "/github/", "/google/", 1)); status != 400 {
		t.Errorf("a state brought to another provider: %d", status)
	}

	// An unverified email never links to the user holding it.
	status, body := e.admin("POST", "/users", `{"username":"grace","email":"grace@example.test","firstname":"Grace","lastname":"Hopper"}`)
	if status != 200 {
		t.Fatalf("create grace: %d %s", status, body)
	}
	var grace struct{ ID string }
	_ = json.Unmarshal([]byte(body), &grace)
	q = e.browser().land(e.start("github", appSignedIn))
	mallory := e.me(e.exchange("github", q.Get("code")))
	if mallory["id"] == grace.ID || mallory["email"] != nil && mallory["email"] != "" {
		t.Errorf("an unverified email linked or was taken: %v", mallory)
	}

	// A deactivated user is sent back with access_denied.
	if status, body := e.admin("PUT", "/users/"+mallory["id"].(string)+"/status", `{"status":false}`); status != 200 {
		t.Fatalf("deactivate: %d %s", status, body)
	}
	q = e.browser().land(e.start("github", appSignedIn))
	if q.Get("error") != "access_denied" || q.Has("code") {
		t.Errorf("a deactivated user landed with %v", q)
	}
}

// TestPluginRestartMidSignIn: the plugin killed between the authorization
// URL and the callback; once it is back, the same flow completes.
func TestPluginRestartMidSignIn(t *testing.T) {
	e := newRedirectE2E(t)
	e.google.AddUser(oidctest.User{Subject: "restart-1", Email: "r@gmail.test", EmailVerified: true})
	b := e.browser()
	providerURL := b.stopAt(e.start("google", appSignedIn), e.google.URL)
	pid := e.pluginPID("google")
	proctest.Signal(t, pid, os.Getpid(), syscall.SIGKILL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if p, state := e.in.pluginState(t, e2eAdminKey, "google"); p != pid && p != 0 && state == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the google plugin did not come back:\n%s", e.in.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := b.land(providerURL)
	if q.Get("code") == "" {
		t.Fatalf("after the restart: %v", q)
	}
	e.exchange("google", q.Get("code"))
}

func (e *redirectEnv) pluginPID(name string) int {
	e.t.Helper()
	pid, state := e.in.pluginState(e.t, e2eAdminKey, name)
	if pid <= 0 || state != "running" {
		e.t.Fatalf("plugin %s: pid %d, state %s", name, pid, state)
	}
	return pid
}

// pluginState returns a plugin's process id and state from GET /plugins.
func (in *instance) pluginState(t *testing.T, key, name string) (int, string) {
	t.Helper()
	_, body := in.call(t, key, "GET", "/plugins", "")
	var ans struct {
		Plugins []struct {
			Name, State string
			PID         int
		}
	}
	_ = json.Unmarshal([]byte(body), &ans)
	for _, p := range ans.Plugins {
		if p.Name == name {
			return p.PID, p.State
		}
	}
	t.Fatalf("no plugin %s in %s", name, body)
	return 0, ""
}

// TestExternalOIDCPluginSignIn is docs/plugins.md's worked example of an
// external plugin: gatehouse-plugin-oidc built, checksummed, configured by
// path against an OpenID Connect issuer (here a fake one), started, and
// signed in through.
func TestExternalOIDCPluginSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a plugin binary")
	}
	dir := t.TempDir()
	name, sum := buildPlugin(t, "cmd/gatehouse-plugin-oidc", dir)
	issuer := oidctest.New(oidctest.Options{ClientID: "gatehouse", ClientSecret: "keycloak-client-secret"})
	t.Cleanup(issuer.Close)
	issuer.AddUser(oidctest.User{Subject: "f:1d2c:alan", Email: "alan@corp.test", EmailVerified: true, PreferredUsername: "alan"})
	t.Setenv("KEYCLOAK_SECRET", issuer.ClientSecret)
	e := newRedirectE2EWith(t, dir, []map[string]any{{
		"name": "keycloak", "path": name, "sha256": sum,
		"config": map[string]any{"clientId": issuer.ClientID, "clientSecretEnv": "KEYCLOAK_SECRET", "issuer": issuer.Issuer},
	}})
	q := e.browser().land(e.start("keycloak", appSignedIn))
	me := e.me(e.exchange("keycloak", q.Get("code")))
	ids, _ := me["identities"].([]any)
	if me["username"] != "alan" || me["email"] != "alan@corp.test" || len(ids) != 1 || ids[0].(map[string]any)["provider"] != "keycloak" {
		t.Errorf("/users/me %v", me)
	}
	status, body := e.admin("GET", "/plugins", "")
	if status != 200 || !strings.Contains(body, `"path":"`+name+`"`) || !strings.Contains(body, `"kinds":["identity_provider","integration"]`) {
		t.Errorf("GET /plugins: %d %s", status, body)
	}
}

// signedIn signs a GitHub user in through a fresh browser and returns the
// session token and the user's id.
func (e *redirectEnv) signedIn(login string) (token, id string) {
	e.t.Helper()
	q := e.browser().land(e.start("github", appSignedIn, "login_hint", login))
	token = e.exchange("github", q.Get("code"))
	return token, e.me(token)["id"].(string)
}

// TestIntegrationsEndToEnd: a signed-in user links a Google and a GitHub
// account; /users/me lists them without tokens; the admin API hands the
// backend a working access token (Google's refreshed when it expires); an
// unlink revokes at the provider; deleting the user removes the rest.
func TestIntegrationsEndToEnd(t *testing.T) {
	e := newRedirectE2E(t)
	e.github.AddUser(githubtest.User{ID: 7, Login: "linus", Name: "Linus", Emails: []githubtest.Email{{Email: "linus@example.test", Primary: true, Verified: true}}})
	e.google.AddUser(oidctest.User{Subject: "g-77", Email: "linus@gmail.test", EmailVerified: true, Name: "Linus T"})
	token, uid := e.signedIn("linus")
	auth := []string{"Authorization", "Bearer " + token}

	linkURL := func(connector, callback string) (int, string) {
		status, body := e.pub("POST", "/users/me/integrations/"+connector, fmt.Sprintf(`{"callback_url":%q}`, callback), auth...)
		var ans struct{ URL string }
		_ = json.Unmarshal([]byte(body), &ans)
		if status == 200 {
			return status, ans.URL
		}
		return status, body
	}
	if status, body := linkURL("google", "http://evil.test/x"); status != 400 || !strings.Contains(body, "callback_url") {
		t.Errorf("an unlisted callback_url: %d %s", status, body)
	}
	if status, _ := e.pub("POST", "/users/me/integrations/google", `{"callback_url":"`+appConnected+`"}`); status != 401 {
		t.Errorf("no bearer token: %d", status)
	}
	for connector, want := range map[string]string{"google": "linus@gmail.test", "github": "linus"} {
		status, u := linkURL(connector, appConnected)
		if status != 200 {
			t.Fatalf("%s link: %d %s", connector, status, u)
		}
		if connector == "google" && (!strings.Contains(u, "access_type=offline") || !strings.Contains(u, "prompt=consent")) {
			t.Errorf("Google's link URL asks no offline access: %s", u)
		}
		// A browser that has never seen Gatehouse (a CLI opened it) completes it.
		q := e.browser().land(u)
		if q.Get("connector") != connector || q.Get("user_identifier") != want {
			t.Errorf("%s link landed with %v", connector, q)
		}
	}
	me := e.me(token)
	list, _ := me["integrations"].([]any)
	if len(list) != 2 {
		t.Fatalf("/users/me integrations: %v", me["integrations"])
	}
	status, body := e.admin("GET", "/users/"+uid+"/integrations", "")
	if status != 200 || !strings.Contains(body, `"connector":"github"`) || !strings.Contains(body, `"userIdentifier":"linus@gmail.test"`) {
		t.Errorf("admin list: %d %s", status, body)
	}
	for _, leak := range []string{"access", "refresh", "aesgcm"} {
		if strings.Contains(strings.ToLower(body), leak) {
			t.Errorf("the admin list shows %q: %s", leak, body)
		}
	}

	// The backend's token: Google's is short-lived, so each answer refreshes it.
	accessToken := func(connector, ident string) string {
		status, body := e.admin("POST", "/users/"+uid+"/integrations/"+connector+"/"+ident+"/token", "")
		var ans struct{ AccessToken, TokenType, ExpiresAt string }
		_ = json.Unmarshal([]byte(body), &ans)
		if status != 200 || ans.AccessToken == "" {
			t.Fatalf("%s token: %d %s", connector, status, body)
		}
		return ans.AccessToken
	}
	calls := e.google.TokenCalls()
	g1 := accessToken("google", "linus@gmail.test")
	if e.google.TokenCalls() != calls+1 || !e.google.ValidAccessToken(g1) {
		t.Errorf("Google's expiring token was not refreshed (token calls %d → %d) or does not work", calls, e.google.TokenCalls())
	}
	gh := accessToken("github", "linus")
	if status, _ := do(t, "GET", e.github.APIURL()+"/user", "", "Authorization", "Bearer "+gh); status != 200 {
		t.Errorf("GitHub's token does not work at GitHub: %d", status)
	}

	// Unlink GitHub: revoked there, gone here.
	if status, body := e.pub("DELETE", "/users/me/integrations/github/linus", "", auth...); status != 204 {
		t.Fatalf("unlink: %d %s", status, body)
	}
	if r := e.github.Revoked(); len(r) != 1 || r[0] != "linus" {
		t.Errorf("GitHub revocations %v", r)
	}
	if status, _ := do(t, "GET", e.github.APIURL()+"/user", "", "Authorization", "Bearer "+gh); status != 401 {
		t.Errorf("the unlinked token still works at GitHub: %d", status)
	}
	if status, _ := e.admin("POST", "/users/"+uid+"/integrations/github/linus/token", ""); status != 404 {
		t.Errorf("token of an unlinked account: %d", status)
	}
	// Deleting the user removes its accounts.
	if status, _ := e.admin("DELETE", "/users/"+uid, ""); status != 204 {
		t.Fatalf("delete user: %d", status)
	}
	if status, _ := e.admin("GET", "/users/"+uid+"/integrations", ""); status != 404 {
		t.Errorf("a deleted user's integrations: %d", status)
	}
	for _, secret := range []string{g1, gh, e.github.ClientSecret, e.google.ClientSecret} {
		if strings.Contains(e.in.log(), secret) {
			t.Error("a token or secret reached the log")
		}
	}
}
