package oidc

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// profile is what the plugin reads of the claims.
type profile struct {
	subject, email, username, name, given, family, picture string
	emailVerified                                          bool
}

// profileOf reads the standard claims, and the username from the configured
// claim. email_verified may be a boolean or, from some providers, the string
// "true"; absent means unverified unless insecureSkipEmailVerified.
func profileOf(claims map[string]any, cfg Config) profile {
	str := func(k string) string {
		s, _ := claims[k].(string)
		return s
	}
	p := profile{subject: str("sub"), email: str("email"), name: str("name"), given: str("given_name"),
		family: str("family_name"), picture: str("picture")}
	if cfg.UsernameClaim != "" {
		p.username = str(cfg.UsernameClaim)
	}
	switch v := claims["email_verified"].(type) {
	case bool:
		p.emailVerified = v
	case string:
		p.emailVerified = strings.EqualFold(v, "true")
	case nil:
		p.emailVerified = cfg.InsecureSkipEmailVerified && p.email != ""
	}
	return p
}

// identityProvider is the plugin's identity-provider kind: sign-in by redirect.
type identityProvider struct {
	sdk.Unsupported // the mail and password methods
	*client
}

var _ sdk.IdentityProvider = (*identityProvider)(nil)

// Configure validates the configuration block; it does not reach the issuer.
func (p *identityProvider) Configure(_ context.Context, cfg sdk.Config, host sdk.Host) error {
	return p.configure(cfg, host)
}

// Describe says the provider signs in by redirect.
func (p *identityProvider) Describe(context.Context) (sdk.PluginInfo, error) {
	return p.describe(sdk.KindIdentityProvider), nil
}

// AuthURL returns the issuer's authorization URL for a sign-in.
func (p *identityProvider) AuthURL(ctx context.Context, req sdk.AuthURLRequest) (string, error) {
	conf := p.conf.Load()
	var scopes []string
	if conf != nil {
		scopes = conf.cfg.Scopes
	}
	return p.authURL(ctx, "oidc.AuthURL", req, scopes, nil, true)
}

// Exchange redeems the code and returns the identity of the verified ID token.
func (p *identityProvider) Exchange(ctx context.Context, req sdk.ExchangeRequest) (sdk.Identity, error) {
	conf, x, err := p.exchange(ctx, "oidc.Exchange", req, true)
	if err != nil {
		return sdk.Identity{}, err
	}
	pr := x.profile
	return sdk.Identity{Provider: conf.name, Subject: pr.subject, Email: pr.email, EmailVerified: pr.emailVerified,
		Username: pr.username, DisplayName: pr.name, GivenName: pr.given, FamilyName: pr.family,
		AvatarURL: pr.picture, RawClaims: x.claims}, nil
}

// integration is the plugin's integration kind: a linked account with
// tokens the host keeps.
type integration struct {
	*client
}

var _ sdk.Integration = (*integration)(nil)

// Configure validates the configuration block; it does not reach the issuer.
func (n *integration) Configure(_ context.Context, cfg sdk.Config, host sdk.Host) error {
	return n.configure(cfg, host)
}

// Describe says what the integration is.
func (n *integration) Describe(context.Context) (sdk.PluginInfo, error) {
	return n.describe(sdk.KindIntegration), nil
}

// AuthURL returns the issuer's authorization URL for linking an account,
// asking for offline access so that a refresh token comes back.
func (n *integration) AuthURL(ctx context.Context, req sdk.AuthURLRequest) (string, error) {
	conf := n.conf.Load()
	var scopes []string
	if conf != nil {
		scopes = conf.cfg.IntegrationScopes
	}
	if len(req.Scopes) > 0 {
		scopes = req.Scopes
	}
	if s := n.defaults.OfflineScope; s != "" && !slices.Contains(scopes, s) {
		scopes = append(slices.Clone(scopes), s)
	}
	req.Scopes = nil // decided here
	return n.authURL(ctx, "oidc.Integration.AuthURL", req, scopes, n.defaults.OfflineParams, false)
}

// Exchange redeems the code for the account and its tokens.
func (n *integration) Exchange(ctx context.Context, req sdk.ExchangeRequest) (sdk.IntegrationAccount, sdk.IntegrationTokens, error) {
	conf, x, err := n.exchange(ctx, "oidc.Integration.Exchange", req, false)
	if err != nil {
		return sdk.IntegrationAccount{}, sdk.IntegrationTokens{}, err
	}
	id := x.profile.email
	if id == "" {
		id = x.profile.subject
	}
	granted, _ := x.token.Extra("scope").(string)
	scopes := strings.Fields(granted)
	if len(scopes) == 0 {
		// The token response may leave scope out when all were granted.
		scopes = slices.Clone(conf.cfg.IntegrationScopes)
	}
	return sdk.IntegrationAccount{Connector: conf.name, UserIdentifier: id, DisplayName: x.profile.name, Scopes: scopes},
		tokensOf(x.token, ""), nil
}

// Refresh redeems a refresh token; Unauthorized when the provider refuses it
// (access was revoked). The old refresh token is kept when no new one comes.
func (n *integration) Refresh(ctx context.Context, refreshToken string) (sdk.IntegrationTokens, error) {
	const op = "oidc.Integration.Refresh"
	if refreshToken == "" {
		return sdk.IntegrationTokens{}, errs.InvalidFields(op, errs.FieldError{Field: "refreshToken", Detail: "is required"})
	}
	conf, ctx, cancel, err := n.start(ctx, op)
	if err != nil {
		return sdk.IntegrationTokens{}, err
	}
	defer cancel()
	d, err := n.discover(ctx, op, conf)
	if err != nil {
		return sdk.IntegrationTokens{}, err
	}
	// An expired token with the refresh token makes the source refresh.
	tok, err := d.oauth2(conf, "", nil).TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken,
		Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return sdk.IntegrationTokens{}, tokenError(op, conf.name, err, "the refresh token was refused: the access was revoked")
	}
	return tokensOf(tok, refreshToken), nil
}

func tokensOf(t *oauth2.Token, oldRefresh string) sdk.IntegrationTokens {
	out := sdk.IntegrationTokens{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.Type(), ExpiresAt: t.Expiry}
	if out.RefreshToken == "" {
		out.RefreshToken = oldRefresh
	}
	return out
}

// Revoke revokes the refresh token, or else the access token, at the
// issuer's revocation endpoint (RFC 7009); without one there is nothing to do.
func (n *integration) Revoke(ctx context.Context, tokens sdk.IntegrationTokens) error {
	const op = "oidc.Integration.Revoke"
	token, hint := tokens.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = tokens.AccessToken, "access_token"
	}
	if token == "" {
		return nil
	}
	conf, ctx, cancel, err := n.start(ctx, op)
	if err != nil {
		return err
	}
	defer cancel()
	d, err := n.discover(ctx, op, conf)
	if err != nil {
		return err
	}
	if d.revokeURL == "" {
		return nil
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	if d.authStyle == oauth2.AuthStyleInParams {
		form.Set("client_id", conf.cfg.ClientID)
		form.Set("client_secret", conf.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.revokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: conf.name + ": the revocation endpoint is not a valid URL"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if d.authStyle == oauth2.AuthStyleInHeader {
		req.SetBasicAuth(url.QueryEscape(conf.cfg.ClientID), url.QueryEscape(conf.secret))
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return &errs.Error{Kind: errs.Unavailable, Op: op, Err: err, Msg: conf.name + ": cannot reach the provider's revocation endpoint"}
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return errs.Errorf(errs.Unavailable, op, "%s: the provider's revocation endpoint failed (%d)", conf.name, resp.StatusCode)
	case resp.StatusCode == http.StatusUnauthorized:
		return errs.Errorf(errs.Unauthorized, op, "%s: the provider refused the client credentials: check clientId and clientSecretEnv", conf.name)
	default:
		return errs.Errorf(errs.Unauthorized, op, "%s: the provider refused the revocation (%d)", conf.name, resp.StatusCode)
	}
}
