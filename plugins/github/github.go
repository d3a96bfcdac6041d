// Package github is the GitHub plugin: sign-in with a GitHub account (an
// identity provider with the redirect capability) and linked GitHub accounts
// whose tokens a product uses on the user's behalf (an integration), both
// through one GitHub OAuth app, on golang.org/x/oauth2.
//
// # Registering the OAuth app
//
// At GitHub, Settings → Developer settings → OAuth Apps → New OAuth App (or the
// same under an organization). Homepage URL: the product's. Authorization
// callback URL: the host's https://PUBLIC/auth/providers/NAME/callback, where
// PUBLIC is Gatehouse's public address and NAME the plugin's name in the
// configuration ("github"). GitHub allows one callback URL per OAuth app, and
// one is enough: the host uses the same callback for sign-in and for
// integrations. Generate a client secret, put it in an environment variable of
// the host, and configure:
//
//	plugins:
//	  - name: github
//	    builtin: github
//	    config:
//	      clientId: Ov23li...
//	      clientSecretEnv: GITHUB_CLIENT_SECRET
//
// A GitHub App works too: register the same callback URL and give it the
// read-only "Email addresses" account permission. Its user tokens expire
// (after eight hours) and come with a refresh token, which Refresh uses. GitHub Enterprise Server: the same registration on
// that server, and the three URLs pointed at it.
//
// # Configuration keys
//
//	clientId           required    the OAuth app's client ID
//	clientSecretEnv    required    the environment variable of the host that holds the
//	                               client secret (the host resolves it: the secret
//	                               reaches the plugin as Secrets["clientSecret"] and
//	                               is never written in the file)
//	authURL            https://github.com/login/oauth/authorize
//	tokenURL           https://github.com/login/oauth/access_token
//	apiURL             https://api.github.com (GitHub Enterprise: https://HOST/api/v3)
//	scopes             ["read:user", "user:email"]   what a sign-in asks for
//	integrationScopes  scopes      what an integration asks for ("repo", say)
//	allowSignup        true        whether GitHub offers to create an account on the
//	                               authorization page (allow_signup)
//	prompt             ""          "select_account" makes GitHub show its account
//	                               picker even when a single account is signed in
//	timeout            "4s"        the bound of each call, all its requests to GitHub
//	                               together; keep it below the host's call timeout
//	                               of the plugin (5 s by default), so that a slow
//	                               GitHub is reported as unavailable, not cut off
//
// Unknown keys are refused, naming them; so is a clientSecret written in the
// block.
//
// # Identity
//
// Exchange redeems the code (with the PKCE verifier: the host keeps the state
// and the verifier, the plugin holds no flow state and may restart between
// AuthURL and Exchange), then reads GET /user and GET /user/emails. The
// identity's Subject is the account's numeric id in decimal, which never
// changes (a login can be renamed and taken by someone else; an email can
// move). Username is the login; DisplayName the profile name, or the login
// when there is none; GivenName and FamilyName come from a name of two words or
// more, split at the first space (first word / the rest): a guess, as GitHub
// has a single name field, that the user can correct in the product. Email is
// the primary address, EmailVerified whether GitHub verified it; without a
// primary, the first verified address; when /user/emails cannot be read (the
// token lacks user:email, or a GitHub App lacks the email permission), the
// public profile address, never marked verified. RawClaims is the /user
// object.
//
// # Integration
//
// The account's UserIdentifier is the login; its scopes are the granted ones
// from the token answer (GitHub separates them with commas; a GitHub App's
// tokens have none). Refresh needs a refresh token (GitHub App tokens only):
// without one, or with one GitHub refuses, it answers Unauthorized, so the host
// treats both the same way: the account must be connected again. Revoke deletes
// the user's grant of the app (DELETE /applications/{client_id}/grant), which
// revokes every token of the app for that user; a grant already gone counts as
// revoked.
//
// # Errors
//
// A refused code or refresh token is Unauthorized; an account GitHub refuses
// for its unverified email, Forbidden; GitHub refusing the client credentials
// or the redirect URI is the operator's misconfiguration, Unavailable with a
// message that names the setting (never the secret); GitHub unreachable, slow,
// answering 5xx or nonsense is Unavailable; its rate limit is RateLimited with
// the time to wait. Invalid requests are Invalid naming the field.
package github

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// Version is the plugin's version, reported by Describe.
const Version = "1.0.0"

// New returns the GitHub identity provider and integration, unconfigured:
// each answers Unavailable until its Configure succeeds. The host configures
// each kind it uses separately.
func New() sdk.Plugins {
	return sdk.Plugins{IdentityProvider: NewProvider(), Integration: NewIntegration()}
}

// Provider is the GitHub identity provider. Its methods are safe for
// concurrent use; Configure may be called again to replace the configuration.
type Provider struct {
	sdk.Unsupported // the mail and password methods: NotFound
	b               base
}

// Integration is the GitHub integration. Its methods are safe for concurrent
// use; Configure may be called again to replace the configuration.
type Integration struct{ b base }

var (
	_ sdk.IdentityProvider = (*Provider)(nil)
	_ sdk.Integration      = (*Integration)(nil)
)

// NewProvider returns an unconfigured identity provider.
func NewProvider() *Provider { return &Provider{b: base{now: time.Now}} }

// NewIntegration returns an unconfigured integration.
func NewIntegration() *Integration { return &Integration{b: base{now: time.Now}} }

// base is what both kinds share: the configuration and the GitHub client.
type base struct {
	state atomic.Pointer[state]
	now   func() time.Time // the clock that tells whether an access token has expired
}

// state is what Configure sets up, replaced as a whole.
type state struct {
	cfg    Config
	name   string // the plugin's name in the host's configuration
	secret string
	scopes []string // what AuthURL asks for when the request names none
	log    sdk.HostLogger
	client *http.Client
}

// Describe says what the provider is and can do.
func (p *Provider) Describe(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "github", Kind: sdk.KindIdentityProvider, Version: Version,
		DisplayName: "GitHub", Capabilities: []string{sdk.CapRedirect}}, nil
}

// Describe says what the integration is.
func (i *Integration) Describe(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "github", Kind: sdk.KindIntegration, Version: Version, DisplayName: "GitHub"}, nil
}

// Configure reads the configuration block (see the package documentation)
// and the client secret. Invalid names every problem. It calls no GitHub
// endpoint: a GitHub that is down must not keep the plugin from starting.
func (p *Provider) Configure(ctx context.Context, cfg sdk.Config, host sdk.Host) error {
	return p.b.configure(ctx, cfg, host, false)
}

// Configure reads the configuration block (see the package documentation)
// and the client secret. Invalid names every problem.
func (i *Integration) Configure(ctx context.Context, cfg sdk.Config, host sdk.Host) error {
	return i.b.configure(ctx, cfg, host, true)
}

func (b *base) configure(ctx context.Context, cfg sdk.Config, host sdk.Host, integration bool) error {
	const op = "github.Configure"
	if host.Log == nil {
		return errs.Errorf(errs.Internal, op, "github: the host gave no logger")
	}
	c, err := ParseConfig(cfg.Raw)
	if err != nil {
		return err
	}
	secret := cfg.Secrets[SecretClientSecret]
	if secret == "" {
		return invalidConfig(op, []errs.FieldError{{Field: "clientSecretEnv",
			Detail: "is required: the environment variable of the host holding the OAuth app's client secret"}})
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	name := cfg.Name
	if name == "" {
		name = "github"
	}
	st := &state{cfg: c, name: name, secret: secret, scopes: c.Scopes, log: host.Log, client: newClient(time.Duration(c.Timeout))}
	if integration {
		st.scopes = c.integrationScopes()
	}
	b.state.Store(st)
	host.Log.Log(ctx, "info", "github: configured", map[string]string{
		"clientId": c.ClientID, "authURL": c.AuthURL, "tokenURL": c.TokenURL, "apiURL": c.APIURL})
	return nil
}

// load returns the configuration, or Unavailable before Configure.
func (b *base) load(op string) (*state, error) {
	st := b.state.Load()
	if st == nil {
		return nil, errs.Errorf(errs.Unavailable, op, "the github plugin is not configured")
	}
	return st, nil
}

// AuthURL returns GitHub's authorization URL for req: client_id,
// redirect_uri, scope, state, the S256 PKCE challenge, allow_signup, and
// login from req.LoginHint. Invalid names a bad field of req.
func (p *Provider) AuthURL(_ context.Context, req sdk.AuthURLRequest) (string, error) {
	return p.b.authURL(req)
}

// AuthURL returns GitHub's authorization URL for req, as Provider's does,
// with the integration's scopes when req names none.
func (i *Integration) AuthURL(_ context.Context, req sdk.AuthURLRequest) (string, error) {
	return i.b.authURL(req)
}

func (b *base) authURL(req sdk.AuthURLRequest) (string, error) {
	const op = "github.AuthURL"
	st, err := b.load(op)
	if err != nil {
		return "", err
	}
	var problems []errs.FieldError
	check := func(bad bool, field, msg string) {
		if bad {
			problems = append(problems, errs.FieldError{Field: field, Detail: msg})
		}
	}
	check(req.State == "" || len(req.State) > 512 || hasControl(req.State), "state", "must be 1 to 512 printable bytes")
	check(!isChallenge(req.CodeChallenge), "codeChallenge", "must be an S256 PKCE challenge: 43 base64url characters")
	check(!isHTTPURL(req.RedirectURI), "redirectUri", "must be an absolute http(s) URL")
	check(len(req.LoginHint) > 256 || hasControl(req.LoginHint), "loginHint", "must be at most 256 printable bytes")
	for i, s := range req.Scopes {
		check(s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == ',' || r == 0x7f }),
			fmt.Sprintf("scopes.%d", i), "must be one scope name, without spaces or commas")
	}
	if len(problems) > 0 {
		return "", errs.InvalidFields(op, problems...)
	}
	scopes := req.Scopes
	if len(scopes) == 0 {
		scopes = st.scopes
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("code_challenge", req.CodeChallenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"),
		oauth2.SetAuthURLParam("allow_signup", st.cfg.allowSignup()),
	}
	if req.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login", req.LoginHint))
	}
	if st.cfg.Prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", st.cfg.Prompt))
	}
	return st.oauth(req.RedirectURI, scopes).AuthCodeURL(req.State, opts...), nil
}

// Exchange redeems the code for the user's GitHub identity (see the package
// documentation). Unauthorized when GitHub refuses the code, a replayed or
// expired one or a wrong verifier; Forbidden when GitHub refuses an account
// without a verified email; Unavailable when GitHub is unreachable or refuses
// the plugin's configuration; Invalid for a bad request.
func (p *Provider) Exchange(ctx context.Context, req sdk.ExchangeRequest) (sdk.Identity, error) {
	const op = "github.Exchange"
	st, err := p.b.load(op)
	if err != nil {
		return sdk.Identity{}, err
	}
	ctx, cancel := st.bound(ctx)
	defer cancel()
	tok, err := st.exchange(ctx, op, req)
	if err != nil {
		return sdk.Identity{}, err
	}
	u, err := st.user(ctx, op, tok.AccessToken)
	if err != nil {
		return sdk.Identity{}, err
	}
	emails, err := st.emails(ctx, op, tok.AccessToken)
	if err != nil {
		return sdk.Identity{}, err
	}
	return u.identity(st.name, emails), nil
}

// Exchange redeems the code for the linked account and its tokens. It fails
// as Provider's Exchange does.
func (i *Integration) Exchange(ctx context.Context, req sdk.ExchangeRequest) (sdk.IntegrationAccount, sdk.IntegrationTokens, error) {
	const op = "github.Integration.Exchange"
	st, err := i.b.load(op)
	if err != nil {
		return sdk.IntegrationAccount{}, sdk.IntegrationTokens{}, err
	}
	ctx, cancel := st.bound(ctx)
	defer cancel()
	tok, err := st.exchange(ctx, op, req)
	if err != nil {
		return sdk.IntegrationAccount{}, sdk.IntegrationTokens{}, err
	}
	u, err := st.user(ctx, op, tok.AccessToken)
	if err != nil {
		return sdk.IntegrationAccount{}, sdk.IntegrationTokens{}, err
	}
	account := sdk.IntegrationAccount{Connector: st.name, UserIdentifier: u.Login,
		DisplayName: u.displayName(), Scopes: grantedScopes(tok)}
	return account, tokensOf(tok), nil
}

// Refresh returns fresh tokens for a GitHub App's refresh token. Unauthorized
// when there is none (OAuth app tokens do not expire and cannot be refreshed)
// or GitHub refuses it: either way the account must be connected again.
// Unavailable when GitHub is unreachable or refuses the configuration.
func (i *Integration) Refresh(ctx context.Context, refreshToken string) (sdk.IntegrationTokens, error) {
	const op = "github.Refresh"
	st, err := i.b.load(op)
	if err != nil {
		return sdk.IntegrationTokens{}, err
	}
	ctx, cancel := st.bound(ctx)
	defer cancel()
	tok, err := st.refresh(ctx, op, refreshToken)
	if err != nil {
		return sdk.IntegrationTokens{}, err
	}
	return tokensOf(tok), nil
}

// Revoke deletes the user's grant of the app at GitHub, which revokes every
// token of the app for that user. An expired access token is refreshed first
// (GitHub needs a live one to find the grant); a grant GitHub no longer
// knows, or tokens that can no longer be refreshed, count as revoked.
// Unavailable when GitHub is unreachable or refuses the client credentials.
func (i *Integration) Revoke(ctx context.Context, tokens sdk.IntegrationTokens) error {
	const op = "github.Revoke"
	st, err := i.b.load(op)
	if err != nil {
		return err
	}
	ctx, cancel := st.bound(ctx)
	defer cancel()
	access := tokens.AccessToken
	expired := !tokens.ExpiresAt.IsZero() && !i.b.now().Before(tokens.ExpiresAt)
	if (access == "" || expired) && tokens.RefreshToken != "" {
		tok, err := st.refresh(ctx, op, tokens.RefreshToken)
		if errs.KindOf(err) == errs.Unauthorized {
			return nil // nothing usable is left to revoke
		}
		if err != nil {
			return err
		}
		access = tok.AccessToken
	}
	if access == "" {
		return nil
	}
	return st.deleteGrant(ctx, op, access)
}

// bound gives ctx the configured deadline and the plugin's HTTP client, which
// x/oauth2 takes from the context.
func (st *state) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(st.cfg.Timeout))
	return context.WithValue(ctx, oauth2.HTTPClient, st.client), cancel
}

// oauth returns the x/oauth2 configuration for one request: the redirect URI
// comes with each request, as the host decides it.
func (st *state) oauth(redirectURI string, scopes []string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: st.cfg.ClientID, ClientSecret: st.secret, RedirectURL: redirectURI, Scopes: scopes,
		// GitHub takes the client credentials in the body; saying so spares
		// x/oauth2's probing, which would send every failed request twice.
		Endpoint: oauth2.Endpoint{AuthURL: st.cfg.AuthURL, TokenURL: st.cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
}

// tokensOf returns an x/oauth2 token as the host stores it.
func tokensOf(tok *oauth2.Token) sdk.IntegrationTokens {
	t := sdk.IntegrationTokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.Type()}
	if !tok.Expiry.IsZero() {
		t.ExpiresAt = tok.Expiry.Round(0).UTC()
	}
	return t
}

// grantedScopes returns the scopes of a token answer: GitHub separates them
// with commas.
func grantedScopes(tok *oauth2.Token) []string {
	s, _ := tok.Extra("scope").(string)
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// isChallenge reports whether c is an S256 challenge: a base64url SHA-256.
func isChallenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == 32
}

// isVerifier reports whether v is a PKCE code verifier: 43 to 128 unreserved
// characters (RFC 7636).
func isVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	return !strings.ContainsFunc(v, func(r rune) bool {
		return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || strings.ContainsRune("-._~", r))
	})
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
