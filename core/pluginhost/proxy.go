package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// call runs fn on the plugin's serving process with the plugin's call
// timeout, counting it in flight so that a restart or Close drains it first.
// It answers Unavailable at once when no process serves the plugin, NotFound
// when the process does not serve kind.
func call[T any](ctx context.Context, m *managed, kind, method string, fn func(context.Context, *conn) (T, error)) (v T, err error) {
	if observe := m.host.opt.ObserveCall; observe != nil {
		start := time.Now()
		defer func() { observe(m.spec.Name, method, time.Since(start), err) }()
	}
	op := "pluginhost." + method
	c, err := m.acquire(op, kind)
	if err != nil {
		return v, err
	}
	defer c.calls.Done()
	cctx, cancel := context.WithTimeout(ctx, m.spec.CallTimeout)
	defer cancel()
	v, err = fn(cctx, c)
	if err != nil {
		err = m.callError(ctx, cctx, op, c, err)
	}
	return v, err
}

// callError names the plugin in the failures that are the host's to explain:
// a call that timed out, a process that died or cannot be reached. Errors the
// plugin answered, and calls the caller gave up, pass unchanged.
func (m *managed) callError(ctx, cctx context.Context, op string, c *conn, err error) error {
	if core.KindOf(err) != core.Unavailable || ctx.Err() != nil {
		return err
	}
	e := &core.Error{Kind: core.Unavailable, Op: op, Err: err}
	switch {
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		e.Msg = fmt.Sprintf("plugin %s did not answer within %v", m.spec.Name, m.spec.CallTimeout)
	case c.proc.Exited():
		e.Msg = fmt.Sprintf("plugin %s is not running", m.spec.Name)
	case core.MessageOf(err) == "":
		e.Msg = fmt.Sprintf("plugin %s cannot be reached", m.spec.Name)
	default:
		return err // the plugin's own Unavailable: its mail server is down, say
	}
	return e
}

// describe answers the PluginInfo the process's service of kind gave at its
// start: a plugin describes itself the same way for its whole life, and this
// saves a round trip on every sign-up. It still answers Unavailable while the
// plugin is down, and NotFound while it does not serve kind, which is what
// callers check first.
func describe(m *managed, kind string) (core.PluginInfo, error) {
	c, err := m.acquire("pluginhost.Describe", kind)
	if err != nil {
		return core.PluginInfo{}, err
	}
	c.calls.Done()
	info := c.idpInfo
	if kind == core.KindIntegration {
		info = c.integInfo
	}
	info.Capabilities = slices.Clone(info.Capabilities)
	return info, nil
}

// identityProxy is a plugin of KindIdentityProvider as the core sees it.
type identityProxy struct{ m *managed }

var _ core.IdentityProvider = (*identityProxy)(nil)

// Describe answers what the plugin said of itself at its start.
func (p *identityProxy) Describe(context.Context) (core.PluginInfo, error) {
	return describe(p.m, core.KindIdentityProvider)
}

// SendVerification calls the plugin.
func (p *identityProxy) SendVerification(ctx context.Context, req core.MailRequest) error {
	_, err := call(ctx, p.m, core.KindIdentityProvider, "SendVerification", func(ctx context.Context, c *conn) (struct{}, error) {
		return struct{}{}, c.idp.SendVerification(ctx, sdkMailRequest(req))
	})
	return err
}

// ConfirmVerification calls the plugin.
func (p *identityProxy) ConfirmVerification(ctx context.Context, token string) (core.MailSubject, error) {
	return call(ctx, p.m, core.KindIdentityProvider, "ConfirmVerification", func(ctx context.Context, c *conn) (core.MailSubject, error) {
		s, err := c.idp.ConfirmVerification(ctx, token)
		return mailSubject(s), err
	})
}

// SendPasswordReset calls the plugin.
func (p *identityProxy) SendPasswordReset(ctx context.Context, req core.MailRequest) error {
	_, err := call(ctx, p.m, core.KindIdentityProvider, "SendPasswordReset", func(ctx context.Context, c *conn) (struct{}, error) {
		return struct{}{}, c.idp.SendPasswordReset(ctx, sdkMailRequest(req))
	})
	return err
}

// ConfirmPasswordReset calls the plugin.
func (p *identityProxy) ConfirmPasswordReset(ctx context.Context, token string) (core.MailSubject, error) {
	return call(ctx, p.m, core.KindIdentityProvider, "ConfirmPasswordReset", func(ctx context.Context, c *conn) (core.MailSubject, error) {
		s, err := c.idp.ConfirmPasswordReset(ctx, token)
		return mailSubject(s), err
	})
}

// CheckPassword calls the plugin.
func (p *identityProxy) CheckPassword(ctx context.Context, identifier, password string) (core.Identity, error) {
	return call(ctx, p.m, core.KindIdentityProvider, "CheckPassword", func(ctx context.Context, c *conn) (core.Identity, error) {
		id, err := c.idp.CheckPassword(ctx, identifier, password)
		return identity(id), err
	})
}

// AuthURL calls the plugin.
func (p *identityProxy) AuthURL(ctx context.Context, req core.AuthURLRequest) (string, error) {
	return call(ctx, p.m, core.KindIdentityProvider, "AuthURL", func(ctx context.Context, c *conn) (string, error) {
		return c.idp.AuthURL(ctx, sdkAuthURLRequest(req))
	})
}

// Exchange calls the plugin.
func (p *identityProxy) Exchange(ctx context.Context, req core.ExchangeRequest) (core.Identity, error) {
	return call(ctx, p.m, core.KindIdentityProvider, "Exchange", func(ctx context.Context, c *conn) (core.Identity, error) {
		id, err := c.idp.Exchange(ctx, sdkExchangeRequest(req))
		return identity(id), err
	})
}

// integrationProxy is a plugin of KindIntegration as the core sees it.
type integrationProxy struct{ m *managed }

var _ core.Integration = (*integrationProxy)(nil)

// Describe answers what the plugin said of itself at its start.
func (p *integrationProxy) Describe(context.Context) (core.PluginInfo, error) {
	return describe(p.m, core.KindIntegration)
}

// AuthURL calls the plugin.
func (p *integrationProxy) AuthURL(ctx context.Context, req core.AuthURLRequest) (string, error) {
	return call(ctx, p.m, core.KindIntegration, "AuthURL", func(ctx context.Context, c *conn) (string, error) {
		return c.integ.AuthURL(ctx, sdkAuthURLRequest(req))
	})
}

// accountTokens is Exchange's two answers in one value, for call.
type accountTokens struct {
	account core.IntegrationAccount
	tokens  core.IntegrationTokens
}

// Exchange calls the plugin.
func (p *integrationProxy) Exchange(ctx context.Context, req core.ExchangeRequest) (core.IntegrationAccount, core.IntegrationTokens, error) {
	r, err := call(ctx, p.m, core.KindIntegration, "Exchange", func(ctx context.Context, c *conn) (accountTokens, error) {
		a, t, err := c.integ.Exchange(ctx, sdkExchangeRequest(req))
		return accountTokens{integrationAccount(a), integrationTokens(t)}, err
	})
	return r.account, r.tokens, err
}

// Refresh calls the plugin.
func (p *integrationProxy) Refresh(ctx context.Context, refreshToken string) (core.IntegrationTokens, error) {
	return call(ctx, p.m, core.KindIntegration, "Refresh", func(ctx context.Context, c *conn) (core.IntegrationTokens, error) {
		t, err := c.integ.Refresh(ctx, refreshToken)
		return integrationTokens(t), err
	})
}

// Revoke calls the plugin.
func (p *integrationProxy) Revoke(ctx context.Context, t core.IntegrationTokens) error {
	_, err := call(ctx, p.m, core.KindIntegration, "Revoke", func(ctx context.Context, c *conn) (struct{}, error) {
		return struct{}{}, c.integ.Revoke(ctx, sdkIntegrationTokens(t))
	})
	return err
}

// The translations between the core's side of the plugin contract and the
// SDK's: sdkX builds the SDK's value from the core's, x the core's from the
// SDK's. Errors need none: the SDK's errs.Error is core.Error.

// The store's KV is handed to plugins as it is.
var _ sdk.KV = core.KV(nil)

// allKinds are the plugin kinds, in the order the host dispenses them.
var allKinds = []string{core.KindIdentityProvider, core.KindIntegration}

// kindNouns name the kinds in the NotFound of a proxy whose process does not
// serve its kind.
var kindNouns = map[string]string{
	core.KindIdentityProvider: "an identity provider",
	core.KindIntegration:      "an integration",
}

// sdkKinds maps the core's plugin kinds to the SDK's, the names under which
// go-plugin dispenses them.
var sdkKinds = map[string]string{
	core.KindIdentityProvider: sdk.KindIdentityProvider,
	core.KindIntegration:      sdk.KindIntegration,
}

// capabilities maps the SDK's capabilities to the core's.
var capabilities = map[string]string{
	sdk.CapMailVerification: core.CapMailVerification,
	sdk.CapPasswordReset:    core.CapPasswordReset,
	sdk.CapPasswordCheck:    core.CapPasswordCheck,
	sdk.CapRedirect:         core.CapRedirect,
	sdk.CapCustomConfig:     core.CapCustomConfig,
}

// pluginInfo is what a plugin said of itself, in the core's terms. A
// capability the host does not know (a newer SDK's) is left out: the core
// would never call its methods anyway.
func pluginInfo(i sdk.PluginInfo) core.PluginInfo {
	kind := i.Kind
	switch i.Kind {
	case sdk.KindIdentityProvider:
		kind = core.KindIdentityProvider
	case sdk.KindIntegration:
		kind = core.KindIntegration
	}
	var caps []string
	for _, c := range i.Capabilities {
		if cc, ok := capabilities[c]; ok {
			caps = append(caps, cc)
		}
	}
	return core.PluginInfo{Name: i.Name, Kind: kind, Version: i.Version, DisplayName: i.DisplayName, Capabilities: caps}
}

func sdkMailRequest(r core.MailRequest) sdk.MailRequest {
	return sdk.MailRequest{UserID: r.UserID, Email: r.Email, DisplayName: r.DisplayName, Link: r.Link}
}

func mailSubject(s sdk.MailSubject) core.MailSubject {
	return core.MailSubject{UserID: s.UserID, Email: s.Email}
}

// identity leaves LinkedAt zero: the core sets it when it links the identity.
func identity(id sdk.Identity) core.Identity {
	return core.Identity{
		Provider: id.Provider, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
		Username: id.Username, DisplayName: id.DisplayName, GivenName: id.GivenName,
		FamilyName: id.FamilyName, AvatarURL: id.AvatarURL, RawClaims: id.RawClaims,
	}
}

func sdkAuthURLRequest(r core.AuthURLRequest) sdk.AuthURLRequest {
	return sdk.AuthURLRequest{State: r.State, CodeChallenge: r.CodeChallenge, RedirectURI: r.RedirectURI, Scopes: r.Scopes, Nonce: r.Nonce, LoginHint: r.LoginHint}
}

func sdkExchangeRequest(r core.ExchangeRequest) sdk.ExchangeRequest {
	return sdk.ExchangeRequest{Code: r.Code, CodeVerifier: r.CodeVerifier, RedirectURI: r.RedirectURI, Nonce: r.Nonce}
}

func integrationAccount(a sdk.IntegrationAccount) core.IntegrationAccount {
	return core.IntegrationAccount{Connector: a.Connector, UserIdentifier: a.UserIdentifier, DisplayName: a.DisplayName, Scopes: a.Scopes}
}

func integrationTokens(t sdk.IntegrationTokens) core.IntegrationTokens {
	return core.IntegrationTokens{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, ExpiresAt: t.ExpiresAt}
}

func sdkIntegrationTokens(t core.IntegrationTokens) sdk.IntegrationTokens {
	return sdk.IntegrationTokens{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, ExpiresAt: t.ExpiresAt}
}
