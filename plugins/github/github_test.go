package github_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/plugins/github"
	"github.com/gatehouse/gatehouse/plugins/github/githubtest"
	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

const callback = "https://id.example.com/auth/providers/github/callback"

var octocat = githubtest.User{ID: 583231, Login: "octocat", Name: "Mona Lisa Octocat",
	Emails: []githubtest.Email{
		{Email: "old@example.com", Verified: true},
		{Email: "octocat@example.com", Primary: true, Verified: true},
	}}

// fake starts a fake GitHub with octocat and a second user.
func fake(t *testing.T, opts githubtest.Options) *githubtest.Server {
	t.Helper()
	gh := githubtest.New(opts)
	t.Cleanup(gh.Close)
	gh.AddUser(octocat)
	gh.AddUser(githubtest.User{ID: 9, Login: "hubot", Emails: []githubtest.Email{{Email: "hubot@example.com", Primary: true, Verified: true}}})
	return gh
}

// config returns the plugin configuration for gh, with extra keys merged in.
func config(t *testing.T, gh *githubtest.Server, extra map[string]any) sdk.Config {
	t.Helper()
	block := map[string]any{"clientId": gh.ClientID, "authURL": gh.AuthURL(), "tokenURL": gh.TokenURL(), "apiURL": gh.APIURL()}
	for k, v := range extra {
		block[k] = v
	}
	raw, err := json.Marshal(block)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Config{Name: "github", Raw: raw, Secrets: map[string]string{"clientSecret": gh.ClientSecret}}
}

// provider runs a GitHub identity provider over in-process gRPC against gh,
// and checks at the end of the test that its log never held a secret.
func provider(t *testing.T, gh *githubtest.Server, cfg sdk.Config) sdk.IdentityProvider {
	t.Helper()
	p, host := sdk.TestProvider(t, github.NewProvider(), cfg)
	noSecretLogged(t, host, gh)
	return p
}

func integration(t *testing.T, gh *githubtest.Server, cfg sdk.Config) sdk.Integration {
	t.Helper()
	p, host := sdk.TestIntegration(t, github.NewIntegration(), cfg)
	noSecretLogged(t, host, gh)
	return p
}

// noSecretLogged fails the test if a log line holds the client secret or a
// token of the fake's.
func noSecretLogged(t *testing.T, host *sdk.TestHost, gh *githubtest.Server) {
	t.Cleanup(func() {
		for _, l := range host.Lines() {
			line := l.Message + " " + strings.Join(slices.Collect(maps.Values(l.Fields)), " ")
			for _, bad := range []string{gh.ClientSecret, "gho_", "ghu_", "ghr_"} {
				if strings.Contains(line, bad) {
					t.Errorf("log line holds a secret: %q", line)
				}
			}
		}
	})
}

// newPKCE returns a verifier and its S256 challenge, as the host makes them.
func newPKCE(t *testing.T) (verifier, challenge string) {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// follow opens an authorization URL as a browser would, without following
// the redirect back, and returns the redirect's query.
func follow(t *testing.T, authURL string) url.Values {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != callback {
		t.Fatalf("authorize redirected to %s, want %s", got, callback)
	}
	return loc.Query()
}

// authorize asks authURL for a URL, follows it, and returns the code and the verifier.
func authorize(t *testing.T, authURL func(sdk.AuthURLRequest) (string, error), login string) (code, verifier string) {
	t.Helper()
	verifier, challenge := newPKCE(t)
	u, err := authURL(sdk.AuthURLRequest{State: "st-1", CodeChallenge: challenge, RedirectURI: callback, LoginHint: login})
	if err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	q := follow(t, u)
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("authorize answered %v, want a code and state st-1", q)
	}
	return q.Get("code"), verifier
}

func wantKind(t *testing.T, err error, kind errs.Kind, msgPart string) {
	t.Helper()
	if errs.KindOf(err) != kind {
		t.Fatalf("error %v: kind %v, want %v", err, errs.KindOf(err), kind)
	}
	if !strings.Contains(errs.MessageOf(err), msgPart) {
		t.Fatalf("error message %q does not say %q", errs.MessageOf(err), msgPart)
	}
}

func TestSignIn(t *testing.T) {
	gh := fake(t, githubtest.Options{RedirectURIs: []string{callback}})
	p := provider(t, gh, config(t, gh, nil))
	verifier, challenge := newPKCE(t)

	u, err := p.AuthURL(t.Context(), sdk.AuthURLRequest{State: "state-123", CodeChallenge: challenge,
		RedirectURI: callback, LoginHint: "octocat", Nonce: "ignored"})
	if err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	parsed, _ := url.Parse(u)
	if got := parsed.Scheme + "://" + parsed.Host + parsed.Path; got != gh.AuthURL() {
		t.Errorf("AuthURL goes to %s, want %s", got, gh.AuthURL())
	}
	want := url.Values{"client_id": {gh.ClientID}, "redirect_uri": {callback}, "scope": {"read:user user:email"},
		"state": {"state-123"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		"login": {"octocat"}, "allow_signup": {"true"}, "response_type": {"code"}}
	if diff := cmp.Diff(want, parsed.Query()); diff != "" {
		t.Errorf("AuthURL parameters (-want +got):\n%s", diff)
	}

	q := follow(t, u)
	if q.Get("state") != "state-123" {
		t.Fatalf("state came back as %q", q.Get("state"))
	}
	id, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: q.Get("code"), CodeVerifier: verifier, RedirectURI: callback})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	wantID := sdk.Identity{Provider: "github", Subject: "583231", Email: "octocat@example.com", EmailVerified: true,
		Username: "octocat", DisplayName: "Mona Lisa Octocat", GivenName: "Mona", FamilyName: "Lisa Octocat",
		AvatarURL: gh.URL + "/avatars/u/583231"}
	if diff := cmp.Diff(wantID, id, cmpopts.IgnoreFields(sdk.Identity{}, "RawClaims")); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	if id.RawClaims["login"] != "octocat" || id.RawClaims["id"] != float64(583231) || id.RawClaims["html_url"] == nil {
		t.Errorf("RawClaims are not the /user object: %v", id.RawClaims)
	}
}

// TestLoginPicksTheUser checks that the login hint reaches GitHub: the second
// user, named by it, is the one signed in.
func TestLoginPicksTheUser(t *testing.T) {
	gh := fake(t, githubtest.Options{})
	p := provider(t, gh, config(t, gh, nil))
	code, verifier := authorize(t, func(r sdk.AuthURLRequest) (string, error) { return p.AuthURL(t.Context(), r) }, "hubot")
	id, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if id.Subject != "9" || id.Username != "hubot" || id.DisplayName != "hubot" || id.GivenName != "" || id.FamilyName != "" {
		t.Errorf("identity = %+v, want hubot (id 9, no name: display name = login)", id)
	}
}

func TestEmailAndName(t *testing.T) {
	for _, tc := range []struct {
		name       string
		user       githubtest.User
		scopes     []string
		wantEmail  string
		wantVerif  bool
		wantGiven  string
		wantFamily string
	}{
		{name: "unverified primary", user: githubtest.User{Login: "u1", Name: "Ada Lovelace", Emails: []githubtest.Email{
			{Email: "verified@example.com", Verified: true}, {Email: "primary@example.com", Primary: true}}},
			wantEmail: "primary@example.com", wantVerif: false, wantGiven: "Ada", wantFamily: "Lovelace"},
		{name: "no emails", user: githubtest.User{Login: "u2", Name: "Cher"}, wantEmail: "", wantVerif: false},
		{name: "no primary: first verified", user: githubtest.User{Login: "u3", Emails: []githubtest.Email{
			{Email: "a@example.com"}, {Email: "b@example.com", Verified: true}}}, wantEmail: "b@example.com", wantVerif: true},
		{name: "no user:email scope", scopes: []string{"read:user"}, user: githubtest.User{Login: "u4",
			Emails: []githubtest.Email{{Email: "p@example.com", Primary: true, Verified: true}}}, wantEmail: "", wantVerif: false},
		{name: "no user:email scope: the public address, unverified", scopes: []string{"read:user"}, user: githubtest.User{Login: "u5",
			PublicEmail: "public@example.com", Emails: []githubtest.Email{{Email: "public@example.com", Primary: true, Verified: true}}},
			wantEmail: "public@example.com", wantVerif: false},
		{name: "user:email granted: the public address is not used", user: githubtest.User{Login: "u6",
			PublicEmail: "public@example.com", Emails: []githubtest.Email{{Email: "p@example.com", Primary: true, Verified: true}}},
			wantEmail: "p@example.com", wantVerif: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := githubtest.New(githubtest.Options{})
			t.Cleanup(gh.Close)
			gh.AddUser(tc.user)
			p := provider(t, gh, config(t, gh, nil))
			verifier, challenge := newPKCE(t)
			u, err := p.AuthURL(t.Context(), sdk.AuthURLRequest{State: "s", CodeChallenge: challenge, RedirectURI: callback, Scopes: tc.scopes})
			if err != nil {
				t.Fatal(err)
			}
			id, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: follow(t, u).Get("code"), CodeVerifier: verifier, RedirectURI: callback})
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if id.Email != tc.wantEmail || id.EmailVerified != tc.wantVerif {
				t.Errorf("email = %q verified %v, want %q verified %v", id.Email, id.EmailVerified, tc.wantEmail, tc.wantVerif)
			}
			if id.GivenName != tc.wantGiven || id.FamilyName != tc.wantFamily {
				t.Errorf("given/family = %q/%q, want %q/%q", id.GivenName, id.FamilyName, tc.wantGiven, tc.wantFamily)
			}
		})
	}
}

// TestRestartBetweenCalls checks that the plugin holds no flow state: a fresh
// plugin redeems the code another one's URL produced.
func TestRestartBetweenCalls(t *testing.T) {
	gh := fake(t, githubtest.Options{})
	first := provider(t, gh, config(t, gh, nil))
	code, verifier := authorize(t, func(r sdk.AuthURLRequest) (string, error) { return first.AuthURL(t.Context(), r) }, "")
	second := provider(t, gh, config(t, gh, nil))
	id, err := second.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback})
	if err != nil || id.Subject != "583231" {
		t.Fatalf("Exchange on a restarted plugin: %+v, %v", id, err)
	}
}

func TestExchangeRefused(t *testing.T) {
	gh := fake(t, githubtest.Options{})
	p := provider(t, gh, config(t, gh, nil))
	authURL := func(r sdk.AuthURLRequest) (string, error) { return p.AuthURL(t.Context(), r) }

	t.Run("wrong verifier", func(t *testing.T) {
		code, _ := authorize(t, authURL, "")
		other, _ := newPKCE(t)
		_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: other, RedirectURI: callback})
		wantKind(t, err, errs.Unauthorized, "the authorization code was refused")
	})
	t.Run("replayed code", func(t *testing.T) {
		code, verifier := authorize(t, authURL, "")
		req := sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback}
		if _, err := p.Exchange(t.Context(), req); err != nil {
			t.Fatalf("first Exchange: %v", err)
		}
		_, err := p.Exchange(t.Context(), req)
		wantKind(t, err, errs.Unauthorized, "the authorization code was refused")
	})
	t.Run("expired code", func(t *testing.T) {
		code, verifier := authorize(t, authURL, "")
		gh.Advance(githubtest.CodeTTL + time.Second)
		_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback})
		wantKind(t, err, errs.Unauthorized, "the authorization code was refused")
	})
	t.Run("other redirect URI", func(t *testing.T) {
		code, verifier := authorize(t, authURL, "")
		_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: "https://other.example.com/cb"})
		wantKind(t, err, errs.Unavailable, "https://other.example.com/cb")
	})
	t.Run("bad request", func(t *testing.T) {
		_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: "", CodeVerifier: "short", RedirectURI: "/relative"})
		if errs.KindOf(err) != errs.Invalid {
			t.Fatalf("kind %v, want Invalid: %v", errs.KindOf(err), err)
		}
		var fields []string
		for _, f := range errs.FieldsOf(err) {
			fields = append(fields, f.Field)
		}
		if diff := cmp.Diff([]string{"code", "codeVerifier", "redirectUri"}, fields); diff != "" {
			t.Errorf("fields at fault (-want +got):\n%s", diff)
		}
	})
}

func TestWrongClientSecret(t *testing.T) {
	gh := fake(t, githubtest.Options{})
	cfg := config(t, gh, nil)
	cfg.Name = "gh-work"
	const wrong = "not-the-secret-0123456789"
	cfg.Secrets = map[string]string{"clientSecret": wrong}
	p := provider(t, gh, cfg)
	code, verifier := authorize(t, func(r sdk.AuthURLRequest) (string, error) { return p.AuthURL(t.Context(), r) }, "")
	_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback})
	wantKind(t, err, errs.Unavailable, `check clientId and clientSecretEnv of plugin "gh-work"`)
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("the error names the secret: %v", err)
	}
}

func TestGitHubDown(t *testing.T) {
	t.Run("5xx", func(t *testing.T) {
		gh := fake(t, githubtest.Options{})
		p := provider(t, gh, config(t, gh, nil))
		code, verifier := authorize(t, func(r sdk.AuthURLRequest) (string, error) { return p.AuthURL(t.Context(), r) }, "")
		gh.Fail(http.StatusBadGateway)
		_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback})
		wantKind(t, err, errs.Unavailable, "HTTP 502")
	})
	t.Run("API 5xx after the token", func(t *testing.T) {
		gh := fake(t, githubtest.Options{})
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "unicorn", http.StatusServiceUnavailable)
		}))
		t.Cleanup(front.Close)
		p := provider(t, gh, config(t, gh, map[string]any{"apiURL": front.URL}))
		code, verifier := authorize(t, func(r sdk.AuthURLRequest) (string, error) { return p.AuthURL(t.Context(), r) }, "")
		_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback})
		wantKind(t, err, errs.Unavailable, "GET /user with HTTP 503")
	})
	t.Run("unreachable", func(t *testing.T) {
		gh := fake(t, githubtest.Options{})
		p := provider(t, gh, config(t, gh, nil))
		code, verifier := authorize(t, func(r sdk.AuthURLRequest) (string, error) { return p.AuthURL(t.Context(), r) }, "")
		gh.Close()
		_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback})
		wantKind(t, err, errs.Unavailable, "GitHub cannot be reached")
	})
	t.Run("too slow", func(t *testing.T) {
		gh := fake(t, githubtest.Options{})
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select { // bounded: the client gives up first, the test's end releases it
			case <-r.Context().Done():
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}))
		t.Cleanup(slow.Close)
		t.Cleanup(func() { close(release) })
		p := provider(t, gh, config(t, gh, map[string]any{"tokenURL": slow.URL, "timeout": "200ms"}))
		_, verifier := newPKCE(t)
		_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: "0123456789abcdef0123", CodeVerifier: verifier, RedirectURI: callback})
		wantKind(t, err, errs.Unavailable, "GitHub did not answer in time")
	})
	t.Run("rate limited", func(t *testing.T) {
		gh := fake(t, githubtest.Options{})
		limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(90*time.Second).Unix(), 10))
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message":"API rate limit exceeded"}`))
		}))
		t.Cleanup(limited.Close)
		p := provider(t, gh, config(t, gh, map[string]any{"apiURL": limited.URL}))
		code, verifier := authorize(t, func(r sdk.AuthURLRequest) (string, error) { return p.AuthURL(t.Context(), r) }, "")
		_, err := p.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback})
		wantKind(t, err, errs.RateLimited, "rate limit")
		if d := errs.RetryAfterOf(err); d < 30*time.Second || d > 2*time.Minute {
			t.Errorf("RetryAfter = %v, want about 90s", d)
		}
	})
}

func TestIntegrationExchange(t *testing.T) {
	gh := fake(t, githubtest.Options{})
	cfg := config(t, gh, map[string]any{"integrationScopes": []string{"repo", "read:user"}})
	cfg.Name = "github-work"
	in := integration(t, gh, cfg)
	verifier, challenge := newPKCE(t)
	u, err := in.AuthURL(t.Context(), sdk.AuthURLRequest{State: "s", CodeChallenge: challenge, RedirectURI: callback})
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := url.Parse(u)
	if got := parsed.Query().Get("scope"); got != "repo read:user" {
		t.Errorf("scope = %q, want the integration's scopes", got)
	}
	account, tokens, err := in.Exchange(t.Context(), sdk.ExchangeRequest{Code: follow(t, u).Get("code"), CodeVerifier: verifier, RedirectURI: callback})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	want := sdk.IntegrationAccount{Connector: "github-work", UserIdentifier: "octocat", DisplayName: "Mona Lisa Octocat",
		Scopes: []string{"repo", "read:user"}}
	if diff := cmp.Diff(want, account); diff != "" {
		t.Errorf("account (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(tokens.AccessToken, "gho_") || tokens.RefreshToken != "" || tokens.TokenType != "Bearer" || !tokens.ExpiresAt.IsZero() {
		t.Errorf("tokens = %+v, want an OAuth app token: no refresh token, no expiry", redact(tokens))
	}
	if status := apiStatus(t, gh, tokens.AccessToken); status != http.StatusOK {
		t.Errorf("the access token gets %d from /user, want 200", status)
	}
}

func redact(t sdk.IntegrationTokens) sdk.IntegrationTokens {
	if t.AccessToken != "" {
		t.AccessToken = t.AccessToken[:4] + "…"
	}
	if t.RefreshToken != "" {
		t.RefreshToken = t.RefreshToken[:4] + "…"
	}
	return t
}

// apiStatus returns the status of GET /user with token at the fake.
func apiStatus(t *testing.T, gh *githubtest.Server, token string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gh.APIURL()+"/user", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// connect links octocat through in and returns the tokens.
func connect(t *testing.T, in sdk.Integration) sdk.IntegrationTokens {
	t.Helper()
	code, verifier := authorize(t, func(r sdk.AuthURLRequest) (string, error) { return in.AuthURL(t.Context(), r) }, "")
	_, tokens, err := in.Exchange(t.Context(), sdk.ExchangeRequest{Code: code, CodeVerifier: verifier, RedirectURI: callback})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tokens
}

func TestRefresh(t *testing.T) {
	gh := fake(t, githubtest.Options{ExpiringTokens: true})
	in := integration(t, gh, config(t, gh, nil))
	before := time.Now()
	tokens := connect(t, in)
	if !strings.HasPrefix(tokens.RefreshToken, "ghr_") {
		t.Fatalf("tokens = %+v, want a refresh token", redact(tokens))
	}
	if d := tokens.ExpiresAt.Sub(before); d < githubtest.DefaultTokenTTL-time.Minute || d > githubtest.DefaultTokenTTL+time.Minute {
		t.Errorf("ExpiresAt is %v after the exchange, want about %v", d, githubtest.DefaultTokenTTL)
	}

	fresh, err := in.Refresh(t.Context(), tokens.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if fresh.AccessToken == tokens.AccessToken || fresh.RefreshToken == tokens.RefreshToken || fresh.ExpiresAt.IsZero() {
		t.Errorf("Refresh gave %+v, want new tokens with an expiry", redact(fresh))
	}
	if status := apiStatus(t, gh, fresh.AccessToken); status != http.StatusOK {
		t.Errorf("the refreshed token gets %d from /user, want 200", status)
	}

	_, err = in.Refresh(t.Context(), tokens.RefreshToken) // used already: GitHub rotates them
	wantKind(t, err, errs.Unauthorized, "GitHub refused the refresh token")
	_, err = in.Refresh(t.Context(), "")
	wantKind(t, err, errs.Unauthorized, "no refresh token")
}

func TestRevoke(t *testing.T) {
	t.Run("OAuth app", func(t *testing.T) {
		gh := fake(t, githubtest.Options{})
		in := integration(t, gh, config(t, gh, nil))
		tokens := connect(t, in)
		other := connect(t, in) // a second token of the same grant
		if err := in.Revoke(t.Context(), tokens); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if diff := cmp.Diff([]string{"octocat"}, gh.Revoked()); diff != "" {
			t.Errorf("revoked grants (-want +got):\n%s", diff)
		}
		for _, tok := range []string{tokens.AccessToken, other.AccessToken} {
			if status := apiStatus(t, gh, tok); status != http.StatusUnauthorized {
				t.Errorf("a revoked token gets %d from /user, want 401", status)
			}
		}
		if err := in.Revoke(t.Context(), tokens); err != nil {
			t.Errorf("Revoke of a grant already gone: %v, want success", err)
		}
	})
	t.Run("expired token is refreshed first", func(t *testing.T) {
		gh := fake(t, githubtest.Options{ExpiringTokens: true})
		in := integration(t, gh, config(t, gh, nil))
		tokens := connect(t, in)
		gh.Advance(githubtest.DefaultTokenTTL + time.Minute)
		tokens.ExpiresAt = time.Now().Add(-time.Minute)
		if err := in.Revoke(t.Context(), tokens); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if diff := cmp.Diff([]string{"octocat"}, gh.Revoked()); diff != "" {
			t.Errorf("revoked grants (-want +got):\n%s", diff)
		}
		if _, err := in.Refresh(t.Context(), tokens.RefreshToken); errs.KindOf(err) != errs.Unauthorized {
			t.Errorf("Refresh after Revoke: %v, want Unauthorized", err)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		gh := fake(t, githubtest.Options{})
		tokens := connect(t, integration(t, gh, config(t, gh, nil)))
		cfg := config(t, gh, nil)
		cfg.Secrets = map[string]string{"clientSecret": "wrong"}
		err := integration(t, gh, cfg).Revoke(t.Context(), tokens)
		wantKind(t, err, errs.Unavailable, "clientSecretEnv")
	})
	t.Run("down", func(t *testing.T) {
		gh := fake(t, githubtest.Options{})
		in := integration(t, gh, config(t, gh, nil))
		tokens := connect(t, in)
		gh.Fail(http.StatusInternalServerError)
		wantKind(t, in.Revoke(t.Context(), tokens), errs.Unavailable, "HTTP 500")
		gh.Fail(0)
		if status := apiStatus(t, gh, tokens.AccessToken); status != http.StatusOK {
			t.Errorf("the token gets %d after a failed revoke, want 200 (still live)", status)
		}
	})
}

func TestAuthURLOptions(t *testing.T) {
	gh := fake(t, githubtest.Options{})
	p := provider(t, gh, config(t, gh, map[string]any{"allowSignup": false, "prompt": "select_account", "scopes": []string{"read:user"}}))
	_, challenge := newPKCE(t)
	u, err := p.AuthURL(t.Context(), sdk.AuthURLRequest{State: "s", CodeChallenge: challenge, RedirectURI: callback})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.Parse(u)
	if got := q.Query(); got.Get("allow_signup") != "false" || got.Get("prompt") != "select_account" ||
		got.Get("scope") != "read:user" || got.Has("login") {
		t.Errorf("AuthURL parameters = %v", got)
	}

	_, err = p.AuthURL(t.Context(), sdk.AuthURLRequest{State: "", CodeChallenge: "plain", RedirectURI: "ftp://x/cb", Scopes: []string{"a b"}})
	if errs.KindOf(err) != errs.Invalid {
		t.Fatalf("bad AuthURL request: %v, want Invalid", err)
	}
	var fields []string
	for _, f := range errs.FieldsOf(err) {
		fields = append(fields, f.Field)
	}
	if diff := cmp.Diff([]string{"state", "codeChallenge", "redirectUri", "scopes.0"}, fields); diff != "" {
		t.Errorf("fields at fault (-want +got):\n%s", diff)
	}
}

func TestConfigErrors(t *testing.T) {
	secret := map[string]string{"clientSecret": "s3cret"}
	for _, tc := range []struct {
		name    string
		raw     string
		secrets map[string]string
		fields  []string
	}{
		{"no clientId", `{}`, secret, []string{"clientId"}},
		{"no secret", `{"clientId":"abc"}`, nil, []string{"clientSecretEnv"}},
		{"secret in the file", `{"clientId":"abc","clientSecret":"s3cret"}`, secret, []string{"clientSecret"}},
		{"unknown keys", `{"clientId":"abc","scope":"x","issuer":"y"}`, secret, []string{"issuer", "scope"}},
		{"bad URLs", `{"clientId":"abc","authURL":"github.com/login","tokenURL":"ftp://h/t","apiURL":"https://user:pw@h"}`,
			secret, []string{"authURL", "tokenURL", "apiURL"}},
		{"bad types", `{"clientId":7,"scopes":"read:user"}`, secret, []string{"clientId", "scopes"}},
		{"bad scopes", `{"clientId":"abc","scopes":[],"integrationScopes":["repo","a,b"]}`, secret, []string{"scopes", "integrationScopes.1"}},
		{"bad prompt and timeout", `{"clientId":"abc","prompt":"consent","timeout":"2h"}`, secret, []string{"prompt", "timeout"}},
		{"unreadable timeout", `{"clientId":"abc","timeout":"soon"}`, secret, []string{"timeout"}},
		{"not an object", `["clientId"]`, secret, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := github.NewProvider().Configure(t.Context(), sdk.Config{Name: "github", Raw: json.RawMessage(tc.raw), Secrets: tc.secrets},
				sdk.NewTestHost().Host())
			if errs.KindOf(err) != errs.Invalid {
				t.Fatalf("Configure: %v, want Invalid", err)
			}
			var fields []string
			for _, f := range errs.FieldsOf(err) {
				fields = append(fields, f.Field)
				if !strings.Contains(errs.MessageOf(err), f.Field) {
					t.Errorf("message %q does not name %s", errs.MessageOf(err), f.Field)
				}
			}
			if diff := cmp.Diff(tc.fields, fields, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("fields at fault (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error names the secret: %v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := github.ParseConfig(json.RawMessage(`{"clientId":"abc","scopes":null}`))
	if err != nil {
		t.Fatal(err)
	}
	want := github.Config{ClientID: "abc", AuthURL: "https://github.com/login/oauth/authorize",
		TokenURL: "https://github.com/login/oauth/access_token", APIURL: "https://api.github.com",
		Scopes: []string{"read:user", "user:email"}, Timeout: sdk.Duration(4 * time.Second)}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestDescribeAndUnconfigured(t *testing.T) {
	plugins := github.New()
	info, err := plugins.IdentityProvider.Describe(t.Context())
	if err != nil || info.Kind != sdk.KindIdentityProvider || !slices.Equal(info.Capabilities, []string{sdk.CapRedirect}) {
		t.Errorf("provider Describe = %+v, %v; want an identity provider with the redirect capability only", info, err)
	}
	info, err = plugins.Integration.Describe(t.Context())
	if err != nil || info.Kind != sdk.KindIntegration {
		t.Errorf("integration Describe = %+v, %v", info, err)
	}
	_, err = plugins.IdentityProvider.AuthURL(t.Context(), sdk.AuthURLRequest{})
	wantKind(t, err, errs.Unavailable, "not configured")
	if _, err := plugins.IdentityProvider.CheckPassword(t.Context(), "a", "b"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("CheckPassword: %v, want NotFound", err)
	}
}
