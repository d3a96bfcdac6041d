// Package oidc is the OpenID Connect plugin library: an identity provider
// (sign-in through redirects) and an integration (a linked account whose
// tokens the host keeps, refreshes and revokes) for any compliant issuer,
// such as Keycloak, Okta, GitLab or Auth0. New serves both as the generic
// "oidc" plugin (the gatehouse-plugin-oidc binary); NewWith builds the same
// with another provider's defaults (plugins/google).
//
// The plugin holds no flow state: the host makes the state, the PKCE
// verifier and challenge (S256) and the nonce, keeps them, and hands them back
// at the exchange, so a plugin restarted between the two calls still works.
// The issuer's discovery document (/.well-known/openid-configuration) is read
// on first use and kept for the life of the process; an issuer that cannot be
// reached answers Unavailable and is asked again on the next call. Every call
// to the issuer is bounded by RequestTimeout, below the host's call timeout.
//
// # Configuration
//
// The plugin's config block, JSON (YAML in the host's file), decoded
// strictly: an unknown key is refused by name.
//
//	clientId                   required: the client ID the provider gave
//	clientSecretEnv            required: the host's environment variable holding the
//	                           client secret (the secret is never written in the file)
//	issuer                     the issuer URL, exactly as the provider's discovery
//	                           document says it; required for the generic plugin;
//	                           https, or http for a loopback host only
//	scopes                     the sign-in scopes; default ["openid","email","profile"];
//	                           must include openid
//	integrationScopes          the scopes a linked account is asked for; default:
//	                           scopes; the plugin adds what offline access needs
//	usernameClaim              the claim read as the user's login; generic default
//	                           "preferred_username"; "" for none
//	displayName                the name shown to people; default "OpenID Connect"
//	authParams                 extra authorization parameters, as an object of
//	                           strings (Google's "hd", Keycloak's "kc_idp_hint",
//	                           "prompt": "select_account"); the protocol's own
//	                           parameters cannot be overridden
//	insecureSkipEmailVerified  default false; true treats an address as verified when
//	                           the provider sends no email_verified claim. Only for an
//	                           issuer that verifies every address: a verified address
//	                           may link to an existing user.
//
// For example:
//
//	plugins:
//	  - name: keycloak
//	    path: /usr/local/lib/gatehouse/gatehouse-plugin-oidc
//	    sha256: …
//	    config:
//	      issuer: https://keycloak.example.com/realms/main
//	      clientId: gatehouse
//	      clientSecretEnv: KEYCLOAK_CLIENT_SECRET
//
// # Registering Gatehouse at the provider
//
// Create a confidential client (web application) using the authorization
// code flow, with PKCE (S256) allowed, and register as its redirect URI the
// host's callback, https://PUBLIC/auth/providers/NAME/callback, where PUBLIC is
// the public address of Gatehouse and NAME the plugin's name in the host's
// configuration. Allow the scopes above and, for integrations, refresh
// tokens: the integration asks for offline_access with prompt=consent. Client
// authentication at the token endpoint is client_secret_basic unless the
// discovery document offers only client_secret_post.
//
// # Errors
//
// A refused code (used, expired, forged, or a wrong verifier or redirect URI)
// and a refused refresh token answer Unauthorized; so does an ID token that
// fails verification (signature, issuer, audience, expiry) or carries another
// nonce. An issuer that cannot be reached or answers 5xx answers Unavailable.
// Messages never hold a code, token or secret.
package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// Version is the plugin's version, reported by Describe.
const Version = "1.0.0"

// RequestTimeout bounds each plugin call's conversation with the issuer: it
// stays below the host's call timeout (5 s), so a slow issuer is reported as
// Unavailable by the plugin rather than cut off by the host.
const RequestTimeout = 4 * time.Second

// Defaults are what distinguishes one provider built on this library from
// another: its names and the defaults of its configuration.
type Defaults struct {
	Name          string // Describe's name: "oidc", "google"
	DisplayName   string // the displayName default
	Issuer        string // the issuer default; empty makes the key required
	UsernameClaim string // the usernameClaim default; empty: no username
	// OfflineScope is the scope that asks for a refresh token, added to an
	// integration's scopes ("offline_access"; Google has none).
	OfflineScope string
	// OfflineParams are the authorization parameters an integration adds so a
	// refresh token comes back (Google: access_type=offline, prompt=consent).
	OfflineParams map[string]string
}

// generic are the generic plugin's defaults.
var generic = Defaults{
	Name:          "oidc",
	DisplayName:   "OpenID Connect",
	UsernameClaim: "preferred_username",
	OfflineScope:  "offline_access",
	OfflineParams: map[string]string{"prompt": "consent"},
}

// New returns the generic OpenID Connect plugin, both kinds.
func New() sdk.Plugins { return NewWith(generic) }

// NewWith returns the plugin, both kinds, with d's defaults.
func NewWith(d Defaults) sdk.Plugins {
	return sdk.Plugins{
		IdentityProvider: &identityProvider{client: newClient(d)},
		Integration:      &integration{client: newClient(d)},
	}
}

// client is what both kinds share: the configuration and the issuer's
// endpoints, found lazily.
type client struct {
	defaults Defaults
	http     *http.Client
	conf     atomic.Pointer[configured]
	mu       sync.Mutex // guards disc and discFor
	disc     *discovered
	discFor  *configured // the configuration disc was read for
}

// configured is what Configure sets up, replaced as a whole.
type configured struct {
	name   string // the plugin's name in the host's configuration
	cfg    Config
	secret string
	log    sdk.HostLogger
}

// discovered is what the issuer's discovery document says.
type discovered struct {
	provider  *oidc.Provider
	verifier  *oidc.IDTokenVerifier
	jwksURL   string
	revokeURL string
	authStyle oauth2.AuthStyle
}

func newClient(d Defaults) *client {
	return &client{defaults: d, http: &http.Client{Timeout: RequestTimeout}}
}

// configure validates the block; it reaches no server, so a provider that is
// down at the host's start does not keep the plugin from starting.
func (c *client) configure(cfg sdk.Config, host sdk.Host) error {
	conf, err := parseConfig(c.defaults, cfg.Raw, cfg.Secrets[SecretClientSecret])
	if err != nil {
		return err
	}
	name := cfg.Name
	if name == "" {
		name = c.defaults.Name
	}
	c.conf.Store(&configured{name: name, cfg: conf, secret: cfg.Secrets[SecretClientSecret], log: host.Log})
	return nil
}

func (c *client) describe(kind string) sdk.PluginInfo {
	info := sdk.PluginInfo{Name: c.defaults.Name, Kind: kind, Version: Version, DisplayName: c.defaults.DisplayName}
	if conf := c.conf.Load(); conf != nil {
		info.DisplayName = conf.cfg.DisplayName
	}
	if kind == sdk.KindIdentityProvider {
		info.Capabilities = []string{sdk.CapRedirect}
	}
	return info
}

// start returns the configuration and a context that bounds the call and
// carries the plugin's HTTP client to oauth2 and go-oidc.
func (c *client) start(ctx context.Context, op string) (*configured, context.Context, context.CancelFunc, error) {
	conf := c.conf.Load()
	if conf == nil {
		return nil, nil, nil, errs.Errorf(errs.Unavailable, op, "%s: the plugin is not configured", c.defaults.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	return conf, oidc.ClientContext(ctx, c.http), cancel, nil
}

// discover returns the issuer's endpoints, reading its discovery document
// the first time for each configuration (a new one may name another
// issuer). A failure is not kept: the next call asks again.
func (c *client) discover(ctx context.Context, op string, conf *configured) (*discovered, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disc != nil && c.discFor == conf {
		return c.disc, nil
	}
	p, err := oidc.NewProvider(ctx, conf.cfg.Issuer)
	if err != nil {
		if _, ok := errors.AsType[*oidc.IssuerMismatchError](err); ok {
			return nil, &errs.Error{Kind: errs.Unavailable, Op: op, Err: err,
				Msg: fmt.Sprintf("%s: the issuer's discovery document names another issuer: check the issuer setting", conf.name)}
		}
		return nil, &errs.Error{Kind: errs.Unavailable, Op: op, Err: err,
			Msg: fmt.Sprintf("%s: cannot read the issuer's discovery document", conf.name)}
	}
	var meta struct {
		JWKS        string   `json:"jwks_uri"`
		Revocation  string   `json:"revocation_endpoint"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil || p.Endpoint().AuthURL == "" || p.Endpoint().TokenURL == "" || meta.JWKS == "" {
		return nil, &errs.Error{Kind: errs.Unavailable, Op: op, Err: err,
			Msg: fmt.Sprintf("%s: the issuer's discovery document lacks an endpoint", conf.name)}
	}
	d := &discovered{provider: p, jwksURL: meta.JWKS, revokeURL: meta.Revocation, authStyle: oauth2.AuthStyleInHeader,
		verifier: p.Verifier(&oidc.Config{ClientID: conf.cfg.ClientID})}
	// client_secret_basic is the default when the document says nothing.
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") &&
		slices.Contains(meta.AuthMethods, "client_secret_post") {
		d.authStyle = oauth2.AuthStyleInParams
	}
	c.disc, c.discFor = d, conf
	if conf.log != nil {
		conf.log.Log(ctx, "info", conf.name+": read the issuer's discovery document", map[string]string{"issuer": conf.cfg.Issuer})
	}
	return d, nil
}

func (d *discovered) oauth2(conf *configured, redirectURI string, scopes []string) *oauth2.Config {
	ep := d.provider.Endpoint()
	ep.AuthStyle = d.authStyle
	return &oauth2.Config{ClientID: conf.cfg.ClientID, ClientSecret: conf.secret, Endpoint: ep,
		RedirectURL: redirectURI, Scopes: scopes}
}

// authURL builds the authorization URL for req with the given scopes and
// extra parameters.
func (c *client) authURL(ctx context.Context, op string, req sdk.AuthURLRequest, scopes []string,
	extra map[string]string, needNonce bool) (string, error) {
	if err := checkAuthRequest(req, needNonce); err != nil {
		return "", err
	}
	conf, ctx, cancel, err := c.start(ctx, op)
	if err != nil {
		return "", err
	}
	defer cancel()
	d, err := c.discover(ctx, op, conf)
	if err != nil {
		return "", err
	}
	if len(req.Scopes) > 0 {
		scopes = slices.Clone(req.Scopes)
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	params := map[string]string{}
	for k, v := range conf.cfg.AuthParams {
		params[k] = v
	}
	for k, v := range extra {
		params[k] = v
	}
	params["code_challenge"], params["code_challenge_method"] = req.CodeChallenge, "S256"
	if req.Nonce != "" {
		params["nonce"] = req.Nonce
	}
	if req.LoginHint != "" {
		params["login_hint"] = req.LoginHint
	}
	opts := make([]oauth2.AuthCodeOption, 0, len(params))
	for k, v := range params {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return d.oauth2(conf, req.RedirectURI, scopes).AuthCodeURL(req.State, opts...), nil
}

// checkAuthRequest names the first field the host left out or got wrong.
func checkAuthRequest(req sdk.AuthURLRequest, needNonce bool) error {
	const op = "oidc.AuthURL"
	var problems []errs.FieldError
	check := func(bad bool, field, msg string) {
		if bad {
			problems = append(problems, errs.FieldError{Field: field, Detail: msg})
		}
	}
	check(req.State == "", "state", "is required")
	check(!validChallenge(req.CodeChallenge), "codeChallenge", "must be a PKCE S256 challenge (43 base64url characters)")
	check(!validRedirect(req.RedirectURI), "redirectUri", "must be an absolute http or https URL")
	check(needNonce && req.Nonce == "", "nonce", "is required")
	for i, s := range req.Scopes {
		check(!validScope(s), fmt.Sprintf("scopes.%d", i), "is not a scope")
	}
	check(strings.ContainsFunc(req.LoginHint, isControl), "loginHint", "must not contain control characters")
	if len(problems) > 0 {
		return errs.InvalidFields(op, problems...)
	}
	return nil
}

func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func validRedirect(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// exchanged is a code exchange's outcome.
type exchanged struct {
	token   *oauth2.Token
	claims  map[string]any // the ID token's claims, completed from userinfo; nil without either
	profile profile
}

// exchange redeems req's code and verifies the ID token. requireIDToken is
// the identity's case: without a verified ID token there is no identity.
func (c *client) exchange(ctx context.Context, op string, req sdk.ExchangeRequest, requireIDToken bool) (*configured, exchanged, error) {
	var problems []errs.FieldError
	for _, f := range []struct{ name, value string }{{"code", req.Code}, {"codeVerifier", req.CodeVerifier},
		{"redirectUri", req.RedirectURI}} {
		if f.value == "" {
			problems = append(problems, errs.FieldError{Field: f.name, Detail: "is required"})
		}
	}
	if requireIDToken && req.Nonce == "" {
		problems = append(problems, errs.FieldError{Field: "nonce", Detail: "is required"})
	}
	if len(problems) > 0 {
		return nil, exchanged{}, errs.InvalidFields(op, problems...)
	}
	conf, ctx, cancel, err := c.start(ctx, op)
	if err != nil {
		return nil, exchanged{}, err
	}
	defer cancel()
	d, err := c.discover(ctx, op, conf)
	if err != nil {
		return nil, exchanged{}, err
	}
	tok, err := d.oauth2(conf, req.RedirectURI, nil).Exchange(ctx, req.Code, oauth2.VerifierOption(req.CodeVerifier))
	if err != nil {
		return nil, exchanged{}, tokenError(op, conf.name, err, "the authorization code was refused")
	}
	out := exchanged{token: tok}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		if requireIDToken {
			return nil, exchanged{}, errs.Errorf(errs.Unauthorized, op, "%s: the provider returned no ID token", conf.name)
		}
	} else {
		idt, err := d.verifier.Verify(ctx, raw)
		if err != nil {
			return nil, exchanged{}, c.verifyError(ctx, op, conf, d, err)
		}
		if idt.Nonce != req.Nonce {
			return nil, exchanged{}, errs.Errorf(errs.Unauthorized, op, "%s: the ID token is for another sign-in (nonce mismatch)", conf.name)
		}
		if idt.Subject == "" {
			return nil, exchanged{}, errs.Errorf(errs.Unauthorized, op, "%s: the ID token names no subject", conf.name)
		}
		if err := idt.Claims(&out.claims); err != nil {
			return nil, exchanged{}, &errs.Error{Kind: errs.Unauthorized, Op: op, Err: err,
				Msg: fmt.Sprintf("%s: the ID token's claims cannot be read", conf.name)}
		}
	}
	// Userinfo completes an ID token without an address, or stands in for
	// a missing one (an integration asked for no openid).
	if out.claims == nil || out.claims["email"] == nil {
		if err := c.completeFromUserinfo(ctx, op, conf, d, tok, &out); err != nil {
			return nil, exchanged{}, err
		}
	}
	out.profile = profileOf(out.claims, conf.cfg)
	return conf, out, nil
}

// completeFromUserinfo adds userinfo's claims to out.claims, for claims the
// ID token lacks; its subject must be the ID token's, as OpenID Connect says.
func (c *client) completeFromUserinfo(ctx context.Context, op string, conf *configured, d *discovered,
	tok *oauth2.Token, out *exchanged) error {
	if d.provider.UserInfoEndpoint() == "" {
		if out.claims == nil {
			return errs.Errorf(errs.Unavailable, op, "%s: the provider returned no ID token and has no userinfo endpoint", conf.name)
		}
		return nil
	}
	ui, err := d.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: fmt.Sprintf("%s: cannot read the user's profile from the provider", conf.name)}
	}
	var extra map[string]any
	if err := ui.Claims(&extra); err != nil {
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: fmt.Sprintf("%s: the provider's profile cannot be read", conf.name)}
	}
	if out.claims == nil {
		if ui.Subject == "" {
			return errs.Errorf(errs.Unauthorized, op, "%s: the provider's profile names no subject", conf.name)
		}
		out.claims = extra
		return nil
	}
	if ui.Subject != out.claims["sub"] {
		return errs.Errorf(errs.Unauthorized, op, "%s: the provider's profile is another user's than the ID token's", conf.name)
	}
	for k, v := range extra {
		if _, ok := out.claims[k]; !ok {
			out.claims[k] = v
		}
	}
	return nil
}

// verifyError classifies a failed ID-token check: an expired or forged
// token is Unauthorized, unless the signing keys could not be fetched, which
// is the issuer's outage.
func (c *client) verifyError(ctx context.Context, op string, conf *configured, d *discovered, err error) error {
	refused := &errs.Error{Kind: errs.Unauthorized, Op: op, Err: err, Msg: fmt.Sprintf("%s: the ID token failed verification", conf.name)}
	if _, ok := errors.AsType[*oidc.TokenExpiredError](err); ok {
		refused.Msg = fmt.Sprintf("%s: the ID token has expired", conf.name)
		return refused
	}
	// go-oidc flattens the key set's errors into text; ask the JWKS
	// endpoint directly whether it answers.
	req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, d.jwksURL, nil)
	if rerr == nil {
		resp, herr := c.http.Do(req)
		if herr != nil {
			rerr = herr
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				rerr = fmt.Errorf("JWKS answered %s", resp.Status)
			}
		}
	}
	if rerr != nil {
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: errors.Join(err, rerr),
			Msg: fmt.Sprintf("%s: cannot fetch the issuer's signing keys", conf.name)}
	}
	return refused
}

// tokenError maps a token endpoint failure: a refused grant is refused, a
// failing or unreachable endpoint is unavailable. The provider's error code
// may be shown; its description and body are only logged.
func tokenError(op, name string, err error, refusedMsg string) error {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		switch {
		case re.ErrorCode == "invalid_grant":
			return &errs.Error{Kind: errs.Unauthorized, Op: op, Err: err, Msg: name + ": " + refusedMsg}
		case re.ErrorCode == "invalid_client" || status == http.StatusUnauthorized:
			return &errs.Error{Kind: errs.Unauthorized, Op: op, Err: err,
				Msg: name + ": the provider refused the client credentials: check clientId and clientSecretEnv"}
		case status >= 500 || status == http.StatusTooManyRequests:
			return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: fmt.Sprintf("%s: the provider's token endpoint failed (%d)", name, status)}
		case re.ErrorCode != "" && validScope(re.ErrorCode) && len(re.ErrorCode) <= 64:
			return &errs.Error{Kind: errs.Unauthorized, Op: op, Err: err, Msg: fmt.Sprintf("%s: the provider refused the request (%s)", name, re.ErrorCode)}
		default:
			return &errs.Error{Kind: errs.Unauthorized, Op: op, Err: err, Msg: fmt.Sprintf("%s: the provider refused the request (%d)", name, status)}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: name + ": the provider did not answer in time"}
	}
	// A transport failure, or a 200 without a usable token.
	return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: name + ": cannot get a token from the provider"}
}
