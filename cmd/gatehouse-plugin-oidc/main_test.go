package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/plugins/oidc"
	"github.com/gatehouse/gatehouse/plugins/oidc/oidctest"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// TestMain serves the plugin when the test binary is started as one.
func TestMain(m *testing.M) {
	if os.Getenv("GATEHOUSE_TEST_SERVE_OIDC") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// start runs this binary as the plugin process, as the host does, and
// dispenses kind.
func start(t *testing.T, kind string) (*plugin.Client, any) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GATEHOUSE_TEST_SERVE_OIDC=1")
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: sdk.Handshake, VersionedPlugins: sdk.VersionedPlugins, Cmd: cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC}, AutoMTLS: true, Logger: hclog.NewNullLogger(),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start the plugin: %v", err)
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		t.Fatalf("dispense %s: %v", kind, err)
	}
	return client, raw
}

// TestSignInAcrossRestart: the binary serves both kinds, and a sign-in
// started with one plugin process completes with the next one, since the
// host, not the plugin, keeps the flow's state.
func TestSignInAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts plugin processes; skipped with -short")
	}
	f := oidctest.New(oidctest.Options{})
	t.Cleanup(f.Close)
	f.AddUser(oidctest.User{Subject: "42", Email: "kim@example.com", EmailVerified: true})
	raw, _ := json.Marshal(map[string]string{"issuer": f.Issuer, "clientId": f.ClientID, "clientSecretEnv": "S"})
	cfg := sdk.Config{Name: "keycloak", Raw: raw, Secrets: map[string]string{oidc.SecretClientSecret: f.ClientSecret}}
	host := sdk.NewTestHost().Host()
	const callback = "https://gatehouse.example/auth/providers/keycloak/callback"
	verifier := oauth2.GenerateVerifier()

	first, rawIdp := start(t, sdk.KindIdentityProvider)
	idp := rawIdp.(*sdk.IdentityProviderClient)
	if err := idp.Configure(t.Context(), cfg, host); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	u, err := idp.AuthURL(t.Context(), sdk.AuthURLRequest{State: "st", CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier),
		RedirectURI: callback, Nonce: "nonce"})
	if err != nil {
		t.Fatalf("AuthURL: %v", err)
	}
	first.Kill()

	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))

	_, rawIdp = start(t, sdk.KindIdentityProvider)
	idp = rawIdp.(*sdk.IdentityProviderClient)
	if err := idp.Configure(t.Context(), cfg, host); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	id, err := idp.Exchange(t.Context(), sdk.ExchangeRequest{Code: back.Query().Get("code"), CodeVerifier: verifier,
		RedirectURI: callback, Nonce: "nonce"})
	if err != nil || id.Provider != "keycloak" || id.Subject != "42" || !id.EmailVerified {
		t.Errorf("Exchange in the restarted plugin = %+v, %v", id, err)
	}

	_, rawInteg := start(t, sdk.KindIntegration)
	integ := rawInteg.(*sdk.IntegrationClient)
	if err := integ.Configure(t.Context(), cfg, host); err != nil {
		t.Fatalf("Configure the integration: %v", err)
	}
	if info, err := integ.Describe(t.Context()); err != nil || info.Kind != sdk.KindIntegration || info.Name != "oidc" {
		t.Errorf("the integration's Describe = %+v, %v", info, err)
	}
}
