package google_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/plugins/google"
	"github.com/gatehouse/gatehouse/plugins/oidc"
	"github.com/gatehouse/gatehouse/plugins/oidc/oidctest"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

const callback = "https://gatehouse.example/auth/providers/google/callback"

func config(f *oidctest.Server) sdk.Config {
	raw, _ := json.Marshal(map[string]any{"issuer": f.Issuer, "clientId": f.ClientID, "clientSecretEnv": "GOOGLE_SECRET"})
	return sdk.Config{Name: "google", Raw: raw, Secrets: map[string]string{oidc.SecretClientSecret: f.ClientSecret}}
}

func query(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return u.Query()
}

// follow plays the browser and returns the code the provider redirected with.
func follow(t *testing.T, authURL string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("GET the authorization URL: %v", err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("the provider answered %s, Location %q; want a code", resp.Status, resp.Header.Get("Location"))
	}
	return back.Query().Get("code")
}

// TestURLs: linking a Google account asks for offline access the way Google
// wants it (access_type=offline, prompt=consent, no offline_access scope),
// and signing in does not; a refresh token comes back for the link.
func TestURLs(t *testing.T) {
	f := oidctest.New(oidctest.Options{})
	t.Cleanup(f.Close)
	f.AddUser(oidctest.User{Subject: "1080", Email: "ann@gmail.com", EmailVerified: true, Name: "Ann", PreferredUsername: "ann"})
	p := google.New()
	idp, _ := sdk.TestProvider(t, p.IdentityProvider, config(f))
	integ, _ := sdk.TestIntegration(t, p.Integration, config(f))
	verifier := oauth2.GenerateVerifier()
	req := sdk.AuthURLRequest{State: "s", CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), RedirectURI: callback, Nonce: "n"}

	signIn, err := idp.AuthURL(t.Context(), req)
	if err != nil {
		t.Fatalf("identity AuthURL: %v", err)
	}
	if q := query(t, signIn); q.Has("access_type") || q.Has("prompt") || q.Get("scope") != "openid email profile" {
		t.Errorf("the sign-in URL's query = %v, want no offline access", q)
	}
	link, err := integ.AuthURL(t.Context(), req)
	if err != nil {
		t.Fatalf("integration AuthURL: %v", err)
	}
	q := query(t, link)
	if q.Get("access_type") != "offline" || q.Get("prompt") != "consent" || q.Get("scope") != "openid email profile" {
		t.Errorf("the link URL's query = %v, want access_type=offline, prompt=consent and the plain scopes", q)
	}

	acct, tok, err := integ.Exchange(t.Context(), sdk.ExchangeRequest{Code: follow(t, link), CodeVerifier: verifier,
		RedirectURI: callback, Nonce: "n"})
	if err != nil || acct.Connector != "google" || acct.UserIdentifier != "ann@gmail.com" || tok.RefreshToken == "" {
		t.Errorf("Exchange = %+v, %+v, %v; want ann's account with a refresh token", acct, tok, err)
	}

	info, _ := idp.Describe(t.Context())
	if info.Name != "google" || info.DisplayName != "Google" {
		t.Errorf("Describe = %+v", info)
	}
}

// TestIdentity: Google's subject is sub and its accounts have no login.
func TestIdentity(t *testing.T) {
	f := oidctest.New(oidctest.Options{})
	t.Cleanup(f.Close)
	f.AddUser(oidctest.User{Subject: "1080", Email: "ann@gmail.com", EmailVerified: true, Name: "Ann", PreferredUsername: "ann"})
	idp, _ := sdk.TestProvider(t, google.New().IdentityProvider, config(f))
	verifier := oauth2.GenerateVerifier()
	u, err := idp.AuthURL(t.Context(), sdk.AuthURLRequest{State: "s", CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier),
		RedirectURI: callback, Nonce: "n"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := idp.Exchange(t.Context(), sdk.ExchangeRequest{Code: follow(t, u), CodeVerifier: verifier, RedirectURI: callback, Nonce: "n"})
	if err != nil || id.Provider != "google" || id.Subject != "1080" || id.Username != "" || !id.EmailVerified {
		t.Errorf("identity = %+v, %v; want subject 1080, verified, no username", id, err)
	}
}

// TestDefaultIssuer: the issuer may be left out; Configure reaches no server.
func TestDefaultIssuer(t *testing.T) {
	cfg := sdk.Config{Name: "google", Raw: json.RawMessage(`{"clientId":"c","clientSecretEnv":"S"}`),
		Secrets: map[string]string{oidc.SecretClientSecret: "s"}}
	if err := google.New().Integration.Configure(t.Context(), cfg, sdk.NewTestHost().Host()); err != nil {
		t.Errorf("Configure without an issuer: %v", err)
	}
	if google.DefaultIssuer != "https://accounts.google.com" {
		t.Errorf("the default issuer = %q, want Google's", google.DefaultIssuer)
	}
}
