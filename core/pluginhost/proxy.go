package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gatehouse/gatehouse/core"
)

// call runs fn on the plugin's serving process with the plugin's call
// timeout, counting it in flight so that a restart or Close drains it first.
// It answers Unavailable at once when no process serves the plugin.
func call[T any](ctx context.Context, m *managed, method string, fn func(context.Context, *conn) (T, error)) (T, error) {
	op := "pluginhost." + method
	c, err := m.acquire(op)
	if err != nil {
		var zero T
		return zero, err
	}
	defer c.calls.Done()
	cctx, cancel := context.WithTimeout(ctx, m.spec.CallTimeout)
	defer cancel()
	v, err := fn(cctx, c)
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

// describe answers the PluginInfo the process gave at its start: a plugin
// describes itself the same way for its whole life, and this saves a round
// trip on every sign-up. It still answers Unavailable while the plugin is
// down, which is what callers check first.
func describe(m *managed, op string) (core.PluginInfo, error) {
	c, err := m.acquire(op)
	if err != nil {
		return core.PluginInfo{}, err
	}
	c.calls.Done()
	info := c.info
	info.Capabilities = slices.Clone(info.Capabilities)
	return info, nil
}

// identityProxy is a plugin of KindIdentityProvider as the core sees it.
type identityProxy struct{ m *managed }

var _ core.IdentityProvider = (*identityProxy)(nil)

// Describe answers what the plugin said of itself at its start.
func (p *identityProxy) Describe(context.Context) (core.PluginInfo, error) {
	return describe(p.m, "pluginhost.Describe")
}

// SendVerification calls the plugin.
func (p *identityProxy) SendVerification(ctx context.Context, req core.MailRequest) error {
	_, err := call(ctx, p.m, "SendVerification", func(ctx context.Context, c *conn) (struct{}, error) {
		return struct{}{}, c.idp.SendVerification(ctx, req)
	})
	return err
}

// ConfirmVerification calls the plugin.
func (p *identityProxy) ConfirmVerification(ctx context.Context, token string) (core.MailSubject, error) {
	return call(ctx, p.m, "ConfirmVerification", func(ctx context.Context, c *conn) (core.MailSubject, error) {
		return c.idp.ConfirmVerification(ctx, token)
	})
}

// SendPasswordReset calls the plugin.
func (p *identityProxy) SendPasswordReset(ctx context.Context, req core.MailRequest) error {
	_, err := call(ctx, p.m, "SendPasswordReset", func(ctx context.Context, c *conn) (struct{}, error) {
		return struct{}{}, c.idp.SendPasswordReset(ctx, req)
	})
	return err
}

// ConfirmPasswordReset calls the plugin.
func (p *identityProxy) ConfirmPasswordReset(ctx context.Context, token string) (core.MailSubject, error) {
	return call(ctx, p.m, "ConfirmPasswordReset", func(ctx context.Context, c *conn) (core.MailSubject, error) {
		return c.idp.ConfirmPasswordReset(ctx, token)
	})
}

// CheckPassword calls the plugin.
func (p *identityProxy) CheckPassword(ctx context.Context, identifier, password string) (core.Identity, error) {
	return call(ctx, p.m, "CheckPassword", func(ctx context.Context, c *conn) (core.Identity, error) {
		return c.idp.CheckPassword(ctx, identifier, password)
	})
}

// AuthURL calls the plugin.
func (p *identityProxy) AuthURL(ctx context.Context, req core.AuthURLRequest) (string, error) {
	return call(ctx, p.m, "AuthURL", func(ctx context.Context, c *conn) (string, error) {
		return c.idp.AuthURL(ctx, req)
	})
}

// Exchange calls the plugin.
func (p *identityProxy) Exchange(ctx context.Context, req core.ExchangeRequest) (core.Identity, error) {
	return call(ctx, p.m, "Exchange", func(ctx context.Context, c *conn) (core.Identity, error) {
		return c.idp.Exchange(ctx, req)
	})
}

// integrationProxy is a plugin of KindIntegration as the core sees it.
type integrationProxy struct{ m *managed }

var _ core.Integration = (*integrationProxy)(nil)

// Describe answers what the plugin said of itself at its start.
func (p *integrationProxy) Describe(context.Context) (core.PluginInfo, error) {
	return describe(p.m, "pluginhost.Describe")
}

// AuthURL calls the plugin.
func (p *integrationProxy) AuthURL(ctx context.Context, req core.AuthURLRequest) (string, error) {
	return call(ctx, p.m, "AuthURL", func(ctx context.Context, c *conn) (string, error) {
		return c.integ.AuthURL(ctx, req)
	})
}

// accountTokens is Exchange's two answers in one value, for call.
type accountTokens struct {
	account core.IntegrationAccount
	tokens  core.IntegrationTokens
}

// Exchange calls the plugin.
func (p *integrationProxy) Exchange(ctx context.Context, req core.ExchangeRequest) (core.IntegrationAccount, core.IntegrationTokens, error) {
	r, err := call(ctx, p.m, "Exchange", func(ctx context.Context, c *conn) (accountTokens, error) {
		a, t, err := c.integ.Exchange(ctx, req)
		return accountTokens{a, t}, err
	})
	return r.account, r.tokens, err
}

// Refresh calls the plugin.
func (p *integrationProxy) Refresh(ctx context.Context, refreshToken string) (core.IntegrationTokens, error) {
	return call(ctx, p.m, "Refresh", func(ctx context.Context, c *conn) (core.IntegrationTokens, error) {
		return c.integ.Refresh(ctx, refreshToken)
	})
}

// Revoke calls the plugin.
func (p *integrationProxy) Revoke(ctx context.Context, t core.IntegrationTokens) error {
	_, err := call(ctx, p.m, "Revoke", func(ctx context.Context, c *conn) (struct{}, error) {
		return struct{}{}, c.integ.Revoke(ctx, t)
	})
	return err
}
