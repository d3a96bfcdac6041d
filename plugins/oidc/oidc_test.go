package oidc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/plugins/oidc"
	"github.com/gatehouse/gatehouse/plugins/oidc/oidctest"
	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

const callback = "https://gatehouse.example/auth/providers/corp/callback"

var (
	alice = oidctest.User{Subject: "248289761001", Email: "alice@example.com", EmailVerified: true, Name: "Alice Liddell",
		GivenName: "Alice", FamilyName: "Liddell", Picture: "https://img.example/alice.png", PreferredUsername: "alice"}
	bob = oidctest.User{Subject: "9000", Email: "bob@example.com", Name: "Bob"}
)

func newFake(t *testing.T, opts oidctest.Options) *oidctest.Server {
	t.Helper()
	f := oidctest.New(opts)
	t.Cleanup(f.Close)
	f.AddUser(alice)
	f.AddUser(bob)
	return f
}

// config is the plugin's configuration for fake, with extra keys merged in.
func config(f *oidctest.Server, extra map[string]any) sdk.Config {
	block := map[string]any{"issuer": f.Issuer, "clientId": f.ClientID, "clientSecretEnv": "CORP_SECRET"}
	for k, v := range extra {
		block[k] = v
	}
	raw, _ := json.Marshal(block)
	return sdk.Config{Name: "corp", Raw: raw, Secrets: map[string]string{oidc.SecretClientSecret: f.ClientSecret}}
}

func provider(t *testing.T, p sdk.Plugins, cfg sdk.Config) (sdk.IdentityProvider, *sdk.TestHost) {
	t.Helper()
	return sdk.TestProvider(t, p.IdentityProvider, cfg)
}

// flow is what the host keeps between AuthURL and Exchange.
type flow struct{ state, verifier, nonce string }

func newFlow() flow {
	return flow{state: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier()}
}

func (f flow) authRequest(hint string) sdk.AuthURLRequest {
	return sdk.AuthURLRequest{State: f.state, CodeChallenge: oauth2.S256ChallengeFromVerifier(f.verifier),
		RedirectURI: callback, Nonce: f.nonce, LoginHint: hint}
}

func (f flow) exchange(code string) sdk.ExchangeRequest {
	return sdk.ExchangeRequest{Code: code, CodeVerifier: f.verifier, RedirectURI: callback, Nonce: f.nonce}
}

// follow plays the browser: it opens the authorization URL and returns the
// query the provider redirected back with.
func follow(t *testing.T, authURL string) url.Values {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("GET the authorization URL: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("the authorization URL answered %s, want 302", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), callback+"?") {
		t.Fatalf("redirected to %q, want the callback", resp.Header.Get("Location"))
	}
	return loc.Query()
}

// signIn runs AuthURL and the browser, and returns the code.
func signIn(t *testing.T, p sdk.IdentityProvider, fl flow, hint string) string {
	t.Helper()
	u, err := p.AuthURL(t.Context(), fl.authRequest(hint))
	if err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	q := follow(t, u)
	if q.Get("state") != fl.state || q.Get("code") == "" {
		t.Fatalf("the provider redirected with %v, want a code and the state", q)
	}
	return q.Get("code")
}

func wantKind(t *testing.T, what string, err error, kind errs.Kind, secrets ...string) {
	t.Helper()
	if errs.KindOf(err) != kind {
		t.Errorf("%s: error %v (kind %s), want %s", what, err, errs.KindOf(err), kind)
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(errs.MessageOf(err), s) {
			t.Errorf("%s: the message %q reveals a secret", what, errs.MessageOf(err))
		}
	}
}

// TestSignIn: the authorization URL carries every parameter the protocol
// needs, following it gives a code, and the exchange gives the identity of
// the ID token, keyed by sub, never by the email.
func TestSignIn(t *testing.T) {
	f := newFake(t, oidctest.Options{})
	p, host := provider(t, oidc.New(), config(f, nil))
	fl := newFlow()
	u, err := p.AuthURL(t.Context(), fl.authRequest("alice@example.com"))
	if err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	pu, _ := url.Parse(u)
	q := pu.Query()
	want := map[string]string{"response_type": "code", "client_id": f.ClientID, "redirect_uri": callback,
		"scope": "openid email profile", "state": fl.state, "code_challenge": oauth2.S256ChallengeFromVerifier(fl.verifier),
		"code_challenge_method": "S256", "nonce": fl.nonce, "login_hint": "alice@example.com"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("the authorization URL's %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if !strings.HasPrefix(u, f.URL+"/authorize?") || q.Has("prompt") || q.Has("access_type") {
		t.Errorf("a sign-in URL %q is not the discovered endpoint, or asks for offline access", u)
	}
	back := follow(t, u)
	id, err := p.Exchange(t.Context(), fl.exchange(back.Get("code")))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	wantID := sdk.Identity{Provider: "corp", Subject: alice.Subject, Email: alice.Email, EmailVerified: true,
		Username: "alice", DisplayName: "Alice Liddell", GivenName: "Alice", FamilyName: "Liddell", AvatarURL: alice.Picture}
	if diff := cmp.Diff(wantID, id, cmpopts.IgnoreFields(sdk.Identity{}, "RawClaims")); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	if id.RawClaims["sub"] != alice.Subject || id.RawClaims["iss"] != f.Issuer {
		t.Errorf("raw claims = %v, want the ID token's", id.RawClaims)
	}
	for _, l := range host.Lines() {
		if strings.Contains(l.Message+strings.Join(mapsValues(l.Fields), " "), f.ClientSecret) {
			t.Errorf("a log line holds the client secret: %+v", l)
		}
	}

	// The login hint picks the account; an unverified address stays unverified.
	fl = newFlow()
	id, err = p.Exchange(t.Context(), fl.exchange(signIn(t, p, fl, "bob@example.com")))
	if err != nil || id.Subject != bob.Subject || id.EmailVerified || id.Username != "" {
		t.Errorf("bob's identity = %+v, %v; want subject %s, unverified, no username", id, err, bob.Subject)
	}
}

func mapsValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestRestartBetweenCalls: a plugin holds no flow state, so an exchange
// by a new process (a new plugin) redeems a code an earlier one asked for.
func TestRestartBetweenCalls(t *testing.T) {
	f := newFake(t, oidctest.Options{})
	first, _ := provider(t, oidc.New(), config(f, nil))
	fl := newFlow()
	code := signIn(t, first, fl, "")
	second, _ := provider(t, oidc.New(), config(f, nil))
	if id, err := second.Exchange(t.Context(), fl.exchange(code)); err != nil || id.Subject != alice.Subject {
		t.Fatalf("Exchange after a restart = %+v, %v", id, err)
	}
}

// TestExchangeRefused: each forged, replayed or mismatched piece of a
// sign-in is refused as Unauthorized, and no message reveals the code.
func TestExchangeRefused(t *testing.T) {
	f := newFake(t, oidctest.Options{})
	other := newFake(t, oidctest.Options{})
	for _, tc := range []struct {
		name   string
		setup  func()                                      // before the sign-in
		cfg    map[string]any                              // configuration changes
		secret string                                      // the plugin's client secret, if not the fake's
		req    func(req *sdk.ExchangeRequest, code string) // changes to the exchange
		replay bool                                        // redeem the code twice
		msg    string                                      // in the message: the reason
	}{
		{name: "wrong verifier", msg: "code was refused", req: func(r *sdk.ExchangeRequest, _ string) { r.CodeVerifier = oauth2.GenerateVerifier() }},
		{name: "wrong redirect URI", msg: "code was refused", req: func(r *sdk.ExchangeRequest, _ string) { r.RedirectURI = callback + "x" }},
		{name: "forged code", msg: "code was refused", req: func(r *sdk.ExchangeRequest, _ string) { r.Code = "forged" }},
		{name: "replayed code", msg: "code was refused", replay: true},
		{name: "wrong nonce", msg: "nonce", req: func(r *sdk.ExchangeRequest, _ string) { r.Nonce = "another-sign-in" }},
		{name: "wrong client secret", msg: "client credentials", secret: "not-the-secret"},
		{name: "another issuer", msg: "failed verification", setup: func() {
			f.TamperNextIDToken(func(c map[string]any) { c["iss"] = other.Issuer })
		}},
		{name: "another audience", msg: "failed verification", setup: func() {
			f.TamperNextIDToken(func(c map[string]any) { c["aud"] = "another-client" })
		}},
		{name: "expired ID token", msg: "has expired", setup: func() {
			f.TamperNextIDToken(func(c map[string]any) {
				c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
			})
		}},
		{name: "forged signature", msg: "failed verification", setup: f.ForgeNextIDToken},
		{name: "no subject", msg: "no subject", setup: func() { f.TamperNextIDToken(func(c map[string]any) { delete(c, "sub") }) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(f, tc.cfg)
			if tc.secret != "" {
				cfg.Secrets[oidc.SecretClientSecret] = tc.secret
			}
			p, _ := provider(t, oidc.New(), cfg)
			fl := newFlow()
			code := signIn(t, p, fl, "")
			if tc.setup != nil {
				tc.setup()
			}
			req := fl.exchange(code)
			if tc.req != nil {
				tc.req(&req, code)
			}
			if tc.replay {
				if _, err := p.Exchange(t.Context(), req); err != nil {
					t.Fatalf("the first exchange: %v", err)
				}
			}
			id, err := p.Exchange(t.Context(), req)
			if err == nil {
				t.Fatalf("Exchange = %+v, want it refused", id)
			}
			wantKind(t, tc.name, err, errs.Unauthorized, code, tc.secret, f.ClientSecret)
			if !strings.Contains(errs.MessageOf(err), tc.msg) {
				t.Errorf("the message %q does not say %q", errs.MessageOf(err), tc.msg)
			}
		})
	}
}

// TestIssuerDown: an unreachable issuer or a failing token endpoint answers
// Unavailable, and the next call succeeds once the issuer is back (the failed
// discovery is not kept).
func TestIssuerDown(t *testing.T) {
	f := newFake(t, oidctest.Options{})
	p, _ := provider(t, oidc.New(), config(f, nil))
	fl := newFlow()
	f.SetDown(true)
	_, err := p.AuthURL(t.Context(), fl.authRequest(""))
	wantKind(t, "AuthURL with the issuer down", err, errs.Unavailable)
	f.SetDown(false)
	code := signIn(t, p, fl, "")

	f.FailTokenEndpoint(true)
	_, err = p.Exchange(t.Context(), fl.exchange(code))
	wantKind(t, "Exchange with the token endpoint failing", err, errs.Unavailable, code)
	f.FailTokenEndpoint(false)
	if _, err := p.Exchange(t.Context(), fl.exchange(code)); err != nil {
		t.Errorf("Exchange once the token endpoint is back: %v", err)
	}

	gone := oidctest.New(oidctest.Options{})
	gone.Close()
	q, _ := provider(t, oidc.New(), config(gone, nil))
	_, err = q.AuthURL(t.Context(), newFlow().authRequest(""))
	wantKind(t, "AuthURL with nothing listening", err, errs.Unavailable)
	if !strings.Contains(errs.MessageOf(err), "discovery") {
		t.Errorf("the message %q does not say what failed", errs.MessageOf(err))
	}
}

// TestUserinfo: an ID token without the address is completed from userinfo.
func TestUserinfo(t *testing.T) {
	f := newFake(t, oidctest.Options{EmailInUserinfoOnly: true})
	p, _ := provider(t, oidc.New(), config(f, nil))
	fl := newFlow()
	id, err := p.Exchange(t.Context(), fl.exchange(signIn(t, p, fl, "")))
	if err != nil || id.Email != alice.Email || !id.EmailVerified || id.Subject != alice.Subject {
		t.Fatalf("identity = %+v, %v; want alice's verified address from userinfo", id, err)
	}
}

// TestEmailVerified: an absent email_verified claim means unverified (a
// verified address may link to an existing user), unless the operator says
// the issuer verifies every address.
func TestEmailVerified(t *testing.T) {
	f := newFake(t, oidctest.Options{})
	for _, tc := range []struct {
		skip bool
		want bool
	}{{false, false}, {true, true}} {
		p, _ := provider(t, oidc.New(), config(f, map[string]any{"insecureSkipEmailVerified": tc.skip}))
		fl := newFlow()
		code := signIn(t, p, fl, "")
		f.TamperNextIDToken(func(c map[string]any) { delete(c, "email_verified") })
		id, err := p.Exchange(t.Context(), fl.exchange(code))
		if err != nil || id.EmailVerified != tc.want {
			t.Errorf("insecureSkipEmailVerified %v: identity %+v, %v; want EmailVerified %v", tc.skip, id, err, tc.want)
		}
	}
}

// TestIntegration: linking asks for offline access, the exchange gives the
// account, its granted scopes and tokens, Refresh gives a working access
// token and keeps the refresh token, and Revoke reaches the provider, after
// which the refresh token is refused.
func TestIntegration(t *testing.T) {
	f := newFake(t, oidctest.Options{})
	n, _ := sdk.TestIntegration(t, oidc.New().Integration, config(f, nil))
	fl := newFlow()
	req := fl.authRequest("")
	req.Nonce = ""
	u, err := n.AuthURL(t.Context(), req)
	if err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	pu, _ := url.Parse(u)
	if q := pu.Query(); q.Get("scope") != "openid email profile offline_access" || q.Get("prompt") != "consent" || q.Has("nonce") {
		t.Errorf("the integration URL's query = %v, want offline_access and prompt=consent", q)
	}
	back := follow(t, u)
	ex := fl.exchange(back.Get("code"))
	ex.Nonce = ""
	acct, tok, err := n.Exchange(t.Context(), ex)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	wantAcct := sdk.IntegrationAccount{Connector: "corp", UserIdentifier: alice.Email, DisplayName: alice.Name,
		Scopes: []string{"openid", "email", "profile", "offline_access"}}
	if diff := cmp.Diff(wantAcct, acct); diff != "" {
		t.Errorf("account (-want +got):\n%s", diff)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" ||
		tok.ExpiresAt.Before(time.Now().Add(50*time.Minute)) || !f.ValidAccessToken(tok.AccessToken) {
		t.Fatalf("tokens = %+v, want a valid access token, a refresh token and an expiry", tok)
	}

	f.ExpireAccessTokens()
	fresh, err := n.Refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || !f.ValidAccessToken(fresh.AccessToken) || fresh.RefreshToken != tok.RefreshToken {
		t.Errorf("refreshed tokens = %+v; want a new valid access token and the old refresh token kept", fresh)
	}

	if err := n.Revoke(t.Context(), fresh); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if !slices.Contains(f.Revoked(), tok.RefreshToken) || f.ValidAccessToken(fresh.AccessToken) {
		t.Errorf("the provider revoked %d tokens, not the refresh token, or its access token still works", len(f.Revoked()))
	}
	_, err = n.Refresh(t.Context(), tok.RefreshToken)
	wantKind(t, "Refresh after Revoke", err, errs.Unauthorized, tok.RefreshToken)

	f.SetDown(true)
	err = n.Revoke(t.Context(), sdk.IntegrationTokens{AccessToken: fresh.AccessToken})
	wantKind(t, "Revoke with the provider down", err, errs.Unavailable, fresh.AccessToken)
	if err := n.Revoke(t.Context(), sdk.IntegrationTokens{}); err != nil {
		t.Errorf("Revoke with no token: %v, want nothing to do", err)
	}
}

// TestRotatedRefreshToken: a provider that rotates refresh tokens hands the
// new one back.
func TestRotatedRefreshToken(t *testing.T) {
	f := newFake(t, oidctest.Options{RotateRefreshTokens: true})
	n, _ := sdk.TestIntegration(t, oidc.New().Integration, config(f, nil))
	fl := newFlow()
	u, err := n.AuthURL(t.Context(), fl.authRequest(""))
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := n.Exchange(t.Context(), fl.exchange(follow(t, u).Get("code")))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := n.Refresh(t.Context(), tok.RefreshToken)
	if err != nil || fresh.RefreshToken == tok.RefreshToken || fresh.RefreshToken == "" {
		t.Fatalf("Refresh = %+v, %v; want the rotated refresh token", fresh, err)
	}
}

// TestRequestChecks: a request the host got wrong is Invalid, naming the field.
func TestRequestChecks(t *testing.T) {
	f := newFake(t, oidctest.Options{})
	p, _ := provider(t, oidc.New(), config(f, nil))
	req := newFlow().authRequest("")
	req.CodeChallenge, req.Nonce, req.Scopes = "plain", "", []string{"a b"}
	_, err := p.AuthURL(t.Context(), req)
	if errs.KindOf(err) != errs.Invalid || !slices.Equal(fieldNames(err), []string{"codeChallenge", "nonce", "scopes.0"}) {
		t.Errorf("AuthURL with bad fields = %v (fields %v)", err, fieldNames(err))
	}
	_, err = p.Exchange(t.Context(), sdk.ExchangeRequest{Code: "c"})
	if errs.KindOf(err) != errs.Invalid || !slices.Equal(fieldNames(err), []string{"codeVerifier", "redirectUri", "nonce"}) {
		t.Errorf("Exchange with missing fields = %v (fields %v)", err, fieldNames(err))
	}
}

func fieldNames(err error) []string {
	var out []string
	for _, f := range errs.FieldsOf(err) {
		out = append(out, f.Field)
	}
	return out
}

// TestConfigure: a bad block is Invalid naming each field at fault, without
// reaching the issuer; a good one describes the plugin.
func TestConfigure(t *testing.T) {
	ok := `{"issuer":"https://id.example.com","clientId":"c","clientSecretEnv":"S"}`
	for _, tc := range []struct {
		name   string
		raw    string
		secret string
		fields []string
	}{
		{"empty", `{}`, "s", []string{"clientId", "issuer"}},
		{"no secret", ok, "", []string{"clientSecretEnv"}},
		{"unknown keys", `{"issuer":"https://id.example.com","clientId":"c","clinetId":"x","clientSecret":"s"}`, "s",
			[]string{"clientSecret", "clinetId"}},
		{"http issuer", `{"issuer":"http://id.example.com","clientId":"c"}`, "s", []string{"issuer"}},
		{"scopes without openid", `{"issuer":"https://id.example.com","clientId":"c","scopes":["email","bad scope"]}`, "s",
			[]string{"scopes", "scopes.1"}},
		{"integration scopes", `{"issuer":"https://id.example.com","clientId":"c","integrationScopes":[]}`, "s",
			[]string{"integrationScopes"}},
		{"wrong type", `{"issuer":"https://id.example.com","clientId":"c","scopes":"openid"}`, "s", []string{"scopes"}},
		{"reserved auth param", `{"issuer":"https://id.example.com","clientId":"c","authParams":{"state":"x","hd":"example.com"}}`, "s",
			[]string{"authParams.state"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sdk.Config{Name: "corp", Raw: json.RawMessage(tc.raw), Secrets: map[string]string{oidc.SecretClientSecret: tc.secret}}
			err := oidc.New().IdentityProvider.Configure(context.Background(), cfg, sdk.NewTestHost().Host())
			got := fieldNames(err)
			slices.Sort(got)
			if errs.KindOf(err) != errs.Invalid || !slices.Equal(got, tc.fields) {
				t.Errorf("Configure(%s) = %v, fields %v; want Invalid naming %v", tc.raw, err, got, tc.fields)
			}
		})
	}
	p, _ := provider(t, oidc.New(), sdk.Config{Name: "keycloak",
		Raw:     json.RawMessage(`{"issuer":"https://id.example.com","clientId":"c","displayName":"Keycloak"}`),
		Secrets: map[string]string{oidc.SecretClientSecret: "s"}})
	info, err := p.Describe(t.Context())
	want := sdk.PluginInfo{Name: "oidc", Kind: sdk.KindIdentityProvider, Version: oidc.Version, DisplayName: "Keycloak",
		Capabilities: []string{sdk.CapRedirect}}
	if diff := cmp.Diff(want, info); err != nil || diff != "" {
		t.Errorf("Describe: %v (-want +got):\n%s", err, diff)
	}
}

// TestReconfigure: a new configuration's issuer is discovered anew.
func TestReconfigure(t *testing.T) {
	a, b := newFake(t, oidctest.Options{}), newFake(t, oidctest.Options{})
	p, host := provider(t, oidc.New(), config(a, nil))
	fl := newFlow()
	if u, err := p.AuthURL(t.Context(), fl.authRequest("")); err != nil || !strings.HasPrefix(u, a.URL) {
		t.Fatalf("AuthURL = %q, %v; want the first issuer's", u, err)
	}
	if err := p.Configure(t.Context(), config(b, nil), host.Host()); err != nil {
		t.Fatal(err)
	}
	if u, err := p.AuthURL(t.Context(), fl.authRequest("")); err != nil || !strings.HasPrefix(u, b.URL) {
		t.Errorf("AuthURL after Configure = %q, %v; want the new issuer's", u, err)
	}
}
