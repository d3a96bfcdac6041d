package oidctest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/plugins/oidc/oidctest"
)

const redirectURI = "https://app.example/callback"

var ann = oidctest.User{Subject: "s-ann", Email: "ann@example.com", EmailVerified: true, Name: "Ann"}

var noRedirect = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func newServer(t *testing.T, opts oidctest.Options) *oidctest.Server {
	t.Helper()
	s := oidctest.New(opts)
	t.Cleanup(s.Close)
	s.AddUser(ann)
	s.AddUser(oidctest.User{Subject: "s-dan", Email: "dan@example.com", Deny: true})
	return s
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

const verifier = "the-verifier-of-this-test-0123456789-abcdefgh"

// authorize opens /authorize with the usual parameters, edited by edit, and
// returns the answer's status and the redirect's query.
func authorize(t *testing.T, s *oidctest.Server, edit func(url.Values)) (int, url.Values) {
	t.Helper()
	q := url.Values{"client_id": {s.ClientID}, "response_type": {"code"}, "redirect_uri": {redirectURI},
		"scope": {"openid email profile offline_access"}, "state": {"st"}, "nonce": {"no"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	if edit != nil {
		edit(q)
	}
	resp, err := noRedirect.Get(s.URL + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatalf("GET /authorize: %v", err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, loc.Query()
}

func code(t *testing.T, s *oidctest.Server) string {
	t.Helper()
	status, q := authorize(t, s, nil)
	if status != http.StatusFound || q.Get("code") == "" {
		t.Fatalf("/authorize answered %d %v, want a code", status, q)
	}
	return q.Get("code")
}

// post sends form to path with client_secret_basic (basic) or in the form.
func post(t *testing.T, s *oidctest.Server, path string, form url.Values, basic bool) (int, map[string]any) {
	t.Helper()
	if !basic {
		form.Set("client_id", s.ClientID)
		if !form.Has("client_secret") {
			form.Set("client_secret", s.ClientSecret)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(s.ClientID), url.QueryEscape(s.ClientSecret))
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func codeForm(c string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
}

func userinfo(t *testing.T, s *oidctest.Server, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("GET /userinfo: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// TestAuthorize: a request from an unknown client or to an unusable
// redirect URI is answered on the spot, never redirected; other faults and a
// refused consent go back to the client with the state.
func TestAuthorize(t *testing.T) {
	s := newServer(t, oidctest.Options{RedirectURIs: []string{redirectURI}})
	for _, tc := range []struct {
		name       string
		edit       func(url.Values)
		wantStatus int
		wantError  string
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "x") }, http.StatusBadRequest, ""},
		{"no redirect URI", func(q url.Values) { q.Del("redirect_uri") }, http.StatusBadRequest, ""},
		{"unregistered redirect URI", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/") }, http.StatusBadRequest, ""},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, http.StatusFound, "invalid_request"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge") }, http.StatusFound, "invalid_request"},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "token") }, http.StatusFound, "unsupported_response_type"},
		{"unknown scope", func(q url.Values) { q.Set("scope", "openid admin") }, http.StatusFound, "invalid_scope"},
		{"user who denies", func(q url.Values) { q.Set("login_hint", "dan@example.com") }, http.StatusFound, "access_denied"},
		{"unknown user", func(q url.Values) { q.Set("login_hint", "nobody@example.com") }, http.StatusFound, "access_denied"},
	} {
		status, q := authorize(t, s, tc.edit)
		if status != tc.wantStatus || q.Get("error") != tc.wantError || tc.wantError != "" && q.Get("state") != "st" {
			t.Errorf("%s: status %d, redirect query %v; want %d error %q with the state", tc.name, status, q, tc.wantStatus, tc.wantError)
		}
		if q.Get("code") != "" {
			t.Errorf("%s: a code was issued", tc.name)
		}
	}
	s.DenyNext()
	if _, q := authorize(t, s, nil); q.Get("error") != "access_denied" {
		t.Errorf("after DenyNext: %v, want access_denied", q)
	}
	if _, q := authorize(t, s, func(q url.Values) { q.Set("login_hint", "s-ann") }); q.Get("code") == "" {
		t.Errorf("a login hint naming the subject, after one denial: %v, want a code", q)
	}
}

// TestToken: the token endpoint authenticates the client either way (not
// both at once), and redeems a code once, for its redirect URI and PKCE
// verifier, before it expires; a replayed code revokes what it gave.
func TestToken(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newServer(t, oidctest.Options{Now: clock})

	for _, tc := range []struct {
		name       string
		edit       func(url.Values)
		basic      bool
		wantStatus int
		wantError  string
	}{
		{"wrong verifier", func(f url.Values) { f.Set("code_verifier", verifier+"x") }, true, 400, "invalid_grant"},
		{"no verifier", func(f url.Values) { f.Del("code_verifier") }, true, 400, "invalid_grant"},
		{"other redirect URI", func(f url.Values) { f.Set("redirect_uri", redirectURI+"/") }, true, 400, "invalid_grant"},
		{"wrong secret", func(f url.Values) { f.Set("client_secret", "nope") }, false, 401, "invalid_client"},
		{"two client authentications", func(f url.Values) { f.Set("client_secret", "x") }, true, 400, "invalid_request"},
		{"unknown grant", func(f url.Values) { f.Set("grant_type", "password") }, true, 400, "unsupported_grant_type"},
	} {
		form := codeForm(code(t, s))
		tc.edit(form)
		status, body := post(t, s, "/token", form, tc.basic)
		if status != tc.wantStatus || body["error"] != tc.wantError || body["access_token"] != nil {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, body, tc.wantStatus, tc.wantError)
		}
	}

	c := code(t, s)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if status, body := post(t, s, "/token", codeForm(c), true); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("an expired code: %d %v, want invalid_grant", status, body)
	}

	c = code(t, s)
	status, body := post(t, s, "/token", codeForm(c), false) // client_secret_post
	at, _ := body["access_token"].(string)
	if status != 200 || at == "" || body["refresh_token"] == nil || body["scope"] != "openid email profile offline_access" {
		t.Fatalf("a good exchange: %d %v", status, body)
	}
	if status, _ := userinfo(t, s, at); status != 200 {
		t.Fatalf("userinfo with the new token: %d", status)
	}
	if status, body := post(t, s, "/token", codeForm(c), true); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("a replayed code: %d %v, want invalid_grant", status, body)
	}
	if status, _ := userinfo(t, s, at); status != 401 {
		t.Errorf("userinfo with a token of a replayed code: %d, want 401", status)
	}
	if calls := s.TokenCalls(); calls != 9 {
		t.Errorf("TokenCalls = %d, want 9", calls)
	}
	s.FailTokenEndpoint(true)
	if status, _ := post(t, s, "/token", codeForm(code(t, s)), true); status != 503 {
		t.Errorf("with the token endpoint failing: %d, want 503", status)
	}
}

// TestTokens: the ID token is RS256-signed by the JWKS key and carries the
// protocol's claims; userinfo, refresh, expiry and revocation behave.
func TestTokens(t *testing.T) {
	s := newServer(t, oidctest.Options{})
	status, body := post(t, s, "/token", codeForm(code(t, s)), true)
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, body)
	}
	at, rt := body["access_token"].(string), body["refresh_token"].(string)

	resp, err := noRedirect.Get(s.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	var keys jose.JSONWebKeySet
	err = json.NewDecoder(resp.Body).Decode(&keys)
	resp.Body.Close()
	if err != nil || len(keys.Keys) != 1 {
		t.Fatalf("JWKS: %v, %d keys", err, len(keys.Keys))
	}
	jws, err := jose.ParseSignedCompact(body["id_token"].(string), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse the ID token: %v", err)
	}
	payload, err := jws.Verify(keys.Keys[0])
	if err != nil || jws.Signatures[0].Header.KeyID != keys.Keys[0].KeyID {
		t.Fatalf("the ID token does not verify with the JWKS key: %v", err)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	for k, v := range map[string]any{"iss": s.Issuer, "aud": s.ClientID, "sub": ann.Subject, "nonce": "no",
		"email": ann.Email, "email_verified": true, "name": ann.Name} {
		if claims[k] != v {
			t.Errorf("ID token claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if exp, _ := claims["exp"].(float64); int64(exp) <= time.Now().Unix() {
		t.Errorf("the ID token's exp %v is not in the future", claims["exp"])
	}

	if status, info := userinfo(t, s, at); status != 200 || info["sub"] != ann.Subject || info["email"] != ann.Email {
		t.Errorf("userinfo: %d %v", status, info)
	}
	s.ExpireAccessTokens()
	if status, _ := userinfo(t, s, at); status != 401 {
		t.Errorf("userinfo with an expired token: %d, want 401", status)
	}
	status, body = post(t, s, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, true)
	fresh, _ := body["access_token"].(string)
	if status != 200 || fresh == "" || body["refresh_token"] != nil {
		t.Fatalf("refresh: %d %v, want a new access token and no new refresh token", status, body)
	}
	if status, _ := userinfo(t, s, fresh); status != 200 {
		t.Errorf("userinfo with the refreshed token: %d", status)
	}

	if status, _ := post(t, s, "/revoke", url.Values{"token": {rt}}, false); status != 200 {
		t.Errorf("revoke: %d", status)
	}
	if status, _ := post(t, s, "/revoke", url.Values{"token": {"unknown"}}, true); status != 200 {
		t.Errorf("revoking an unknown token: %d, want 200 (RFC 7009)", status)
	}
	if status, _ := post(t, s, "/revoke", url.Values{"token": {rt}, "client_secret": {"nope"}}, false); status != 401 {
		t.Errorf("revoke with a wrong secret: %d, want 401", status)
	}
	if !slices.Equal(s.Revoked(), []string{rt, "unknown"}) {
		t.Errorf("Revoked() holds %d tokens, want the refresh token and the unknown one", len(s.Revoked()))
	}
	if status, _ := userinfo(t, s, fresh); status != 401 {
		t.Errorf("userinfo with an access token of a revoked refresh token: %d, want 401", status)
	}
	if status, body := post(t, s, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, true); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh with a revoked token: %d %v", status, body)
	}

	s.SetDown(true)
	if resp, err := noRedirect.Get(s.URL + "/.well-known/openid-configuration"); err != nil || resp.StatusCode != 503 {
		t.Errorf("discovery while down: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestInteractive: a person picks a user and approves or denies.
func TestInteractive(t *testing.T) {
	s := newServer(t, oidctest.Options{Interactive: true})
	q := url.Values{"client_id": {s.ClientID}, "response_type": {"code"}, "redirect_uri": {redirectURI},
		"scope": {"openid email"}, "state": {"st"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	resp, err := noRedirect.Get(s.URL + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"Approve", "Deny", "ann@example.com", "dan@example.com", `name="state" value="st"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the consent page lacks %q", want)
		}
	}
	for _, tc := range []struct{ decision, want string }{{"approve", "code"}, {"deny", "error"}} {
		form := url.Values{}
		for k := range q {
			form.Set(k, q.Get(k))
		}
		form.Set("user", ann.Subject)
		form.Set("decision", tc.decision)
		resp, err := noRedirect.PostForm(s.URL+"/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get(tc.want) == "" || loc.Query().Get("state") != "st" {
			t.Errorf("%s: %d %q, want a redirect with %s", tc.decision, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
	}
}
