package adminapi

import (
	"context"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/core"
)

// fakeProviders is a core.Providers over in-process providers.
type fakeProviders map[string]*fakeProvider

func (f fakeProviders) IdentityProvider(name string) (core.IdentityProvider, bool) {
	p, ok := f[name]
	return p, ok
}

// Integration answers the one integration of the fakes: "vault", which takes
// a custom configuration instead of an OAuth authorization.
func (f fakeProviders) Integration(name string) (core.Integration, bool) {
	if name != "vault" {
		return nil, false
	}
	return vaultIntegration{}, true
}

func (f fakeProviders) IntegrationNames() []string { return []string{"vault"} }

// vaultIntegration is an integration that takes a custom configuration.
type vaultIntegration struct{}

func (vaultIntegration) Describe(context.Context) (core.PluginInfo, error) {
	return core.PluginInfo{Name: "vault", Kind: core.KindIntegration, Capabilities: []string{core.CapCustomConfig}}, nil
}

func (vaultIntegration) AuthURL(context.Context, core.AuthURLRequest) (string, error) {
	return "", core.Errorf(core.NotFound, "vault", "no OAuth here")
}

func (vaultIntegration) Exchange(context.Context, core.ExchangeRequest) (core.IntegrationAccount, core.IntegrationTokens, error) {
	return core.IntegrationAccount{}, core.IntegrationTokens{}, core.Errorf(core.NotFound, "vault", "no OAuth here")
}

func (vaultIntegration) Refresh(context.Context, string) (core.IntegrationTokens, error) {
	return core.IntegrationTokens{}, core.Errorf(core.NotFound, "vault", "no OAuth here")
}

func (vaultIntegration) Revoke(context.Context, core.IntegrationTokens) error { return nil }

// fakeProvider is an in-process mail provider: it keeps tokens in a map and
// "sends" mails by recording their links.
type fakeProvider struct {
	mu     sync.Mutex
	down   bool
	tokens map[string]core.MailSubject // token → subject, "verify:" or "reset:" prefixed
	mails  []fakeMail
}

type fakeMail struct {
	Kind, Email, Link string
}

func newFakeProvider() *fakeProvider { return &fakeProvider{tokens: map[string]core.MailSubject{}} }

func (p *fakeProvider) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

func (p *fakeProvider) check() error {
	if p.down {
		return core.Errorf(core.Unavailable, "fake", "plugin email is not running")
	}
	return nil
}

// sent returns the mails sent so far.
func (p *fakeProvider) sent() []fakeMail {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]fakeMail(nil), p.mails...)
}

// lastToken returns the token of the last mail of that kind to email.
func (p *fakeProvider) lastToken(kind, email string) string {
	for _, m := range slicesReverse(p.sent()) {
		if m.Kind == kind && m.Email == email {
			return m.Link[strings.LastIndex(m.Link, "token=")+len("token="):]
		}
	}
	return ""
}

func slicesReverse(in []fakeMail) []fakeMail {
	out := make([]fakeMail, len(in))
	for i, m := range in {
		out[len(in)-1-i] = m
	}
	return out
}

func (p *fakeProvider) Describe(ctx context.Context) (core.PluginInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return core.PluginInfo{Name: "email", Kind: core.KindIdentityProvider, Version: "test",
		Capabilities: []string{core.CapMailVerification, core.CapPasswordReset}}, p.check()
}

func (p *fakeProvider) send(kind string, req core.MailRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.check(); err != nil {
		return err
	}
	token := core.NewSecret("", 24)
	p.tokens[kind+":"+token] = core.MailSubject{UserID: req.UserID, Email: req.Email}
	p.mails = append(p.mails, fakeMail{Kind: kind, Email: req.Email, Link: req.Link + token})
	return nil
}

func (p *fakeProvider) confirm(kind, token string) (core.MailSubject, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.check(); err != nil {
		return core.MailSubject{}, err
	}
	s, ok := p.tokens[kind+":"+token]
	if !ok {
		return core.MailSubject{}, core.Errorf(core.NotFound, "fake", "link is invalid or has expired")
	}
	delete(p.tokens, kind+":"+token)
	return s, nil
}

func (p *fakeProvider) SendVerification(ctx context.Context, req core.MailRequest) error {
	return p.send("verify", req)
}

func (p *fakeProvider) ConfirmVerification(ctx context.Context, token string) (core.MailSubject, error) {
	return p.confirm("verify", token)
}

func (p *fakeProvider) SendPasswordReset(ctx context.Context, req core.MailRequest) error {
	return p.send("reset", req)
}

func (p *fakeProvider) ConfirmPasswordReset(ctx context.Context, token string) (core.MailSubject, error) {
	return p.confirm("reset", token)
}

func (p *fakeProvider) CheckPassword(ctx context.Context, identifier, password string) (core.Identity, error) {
	return core.Identity{}, core.Errorf(core.NotFound, "fake", "not supported")
}

func (p *fakeProvider) AuthURL(ctx context.Context, req core.AuthURLRequest) (string, error) {
	return "", core.Errorf(core.NotFound, "fake", "not supported")
}

func (p *fakeProvider) Exchange(ctx context.Context, req core.ExchangeRequest) (core.Identity, error) {
	return core.Identity{}, core.Errorf(core.NotFound, "fake", "not supported")
}
