package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// fake is an IdentityProvider and an Integration whose answers are made of
// its arguments. fail, when set, is what every method but Configure returns.
type fake struct {
	cfg  Config
	host Host
	fail error
	got  []any // the arguments of each call, in order
}

func (f *fake) Configure(_ context.Context, cfg Config, host Host) error {
	f.cfg, f.host = cfg, host
	return nil
}

func (f *fake) Describe(context.Context) (PluginInfo, error) {
	return PluginInfo{Name: "fake", Kind: KindIdentityProvider, Version: "1.0.0", DisplayName: "Fake",
		Capabilities: []string{CapMailVerification, CapRedirect}}, f.fail
}

func (f *fake) SendVerification(_ context.Context, req MailRequest) error {
	f.got = append(f.got, req)
	return f.fail
}

func (f *fake) ConfirmVerification(_ context.Context, token string) (MailSubject, error) {
	return MailSubject{UserID: "u-" + token, Email: token + "@example.com"}, f.fail
}

func (f *fake) SendPasswordReset(_ context.Context, req MailRequest) error {
	f.got = append(f.got, req)
	return f.fail
}

func (f *fake) ConfirmPasswordReset(_ context.Context, token string) (MailSubject, error) {
	return MailSubject{UserID: "r-" + token, Email: token + "@example.org"}, f.fail
}

func (f *fake) CheckPassword(_ context.Context, identifier, password string) (Identity, error) {
	return Identity{Provider: "fake", Subject: identifier, Username: password}, f.fail
}

func (f *fake) AuthURL(_ context.Context, req AuthURLRequest) (string, error) {
	return fmt.Sprintf("https://idp.example/auth?state=%s&cc=%s&ru=%s&scope=%s",
		req.State, req.CodeChallenge, req.RedirectURI, strings.Join(req.Scopes, "+")), f.fail
}

func (f *fake) Exchange(_ context.Context, req ExchangeRequest) (Identity, error) {
	return Identity{
		Provider: "fake", Subject: req.Code, Email: "ada@example.com", EmailVerified: true,
		Username: req.CodeVerifier, DisplayName: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace",
		AvatarURL: req.RedirectURI,
		RawClaims: map[string]any{"sub": req.Code, "n": 42.5, "ok": true, "groups": []any{"a", "b"},
			"nested": map[string]any{"x": nil}},
	}, f.fail
}

// fakeIntegration is fake as an Integration: Exchange differs.
type fakeIntegration struct{ *fake }

func (f fakeIntegration) Exchange(_ context.Context, req ExchangeRequest) (IntegrationAccount, IntegrationTokens, error) {
	return IntegrationAccount{Connector: "fake", UserIdentifier: req.Code, DisplayName: req.CodeVerifier, Scopes: []string{"repo"}},
		IntegrationTokens{AccessToken: "at-" + req.Code, RefreshToken: "rt", TokenType: "Bearer",
			ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 678901000, time.UTC)}, f.fail
}

func (f fakeIntegration) Refresh(_ context.Context, refreshToken string) (IntegrationTokens, error) {
	return IntegrationTokens{AccessToken: "at-" + refreshToken, TokenType: "Bearer"}, f.fail
}

func (f fakeIntegration) Revoke(_ context.Context, t IntegrationTokens) error {
	f.got = append(f.got, t)
	return f.fail
}

var testCfg = Config{Name: "fake", Raw: json.RawMessage(`{"smtp":{"host":"localhost"}}`), Secrets: map[string]string{"smtp.password": "s3cret"}}

func TestIdentityProviderRoundTrip(t *testing.T) {
	f := &fake{}
	c, _ := TestProvider(t, f, testCfg)
	ctx := t.Context()
	if diff := cmp.Diff(testCfg, f.cfg); diff != "" {
		t.Errorf("Configure (-want +got):\n%s", diff)
	}

	info, err := c.Describe(ctx)
	check(t, "Describe", err)
	if diff := cmp.Diff(PluginInfo{Name: "fake", Kind: KindIdentityProvider, Version: "1.0.0", DisplayName: "Fake",
		Capabilities: []string{CapMailVerification, CapRedirect}}, info); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}

	mail := MailRequest{UserID: "u1", Email: "ada@example.com", DisplayName: "Ada", Link: "https://gh.example/verify?token="}
	check(t, "SendVerification", c.SendVerification(ctx, mail))
	reset := mail
	reset.Link = "https://gh.example/reset?token="
	check(t, "SendPasswordReset", c.SendPasswordReset(ctx, reset))
	if diff := cmp.Diff([]any{mail, reset}, f.got); diff != "" {
		t.Errorf("mail requests (-want +got):\n%s", diff)
	}

	sub, err := c.ConfirmVerification(ctx, "tok")
	check(t, "ConfirmVerification", err)
	if diff := cmp.Diff(MailSubject{UserID: "u-tok", Email: "tok@example.com"}, sub); diff != "" {
		t.Errorf("ConfirmVerification (-want +got):\n%s", diff)
	}
	sub, err = c.ConfirmPasswordReset(ctx, "tok")
	check(t, "ConfirmPasswordReset", err)
	if diff := cmp.Diff(MailSubject{UserID: "r-tok", Email: "tok@example.org"}, sub); diff != "" {
		t.Errorf("ConfirmPasswordReset (-want +got):\n%s", diff)
	}

	id, err := c.CheckPassword(ctx, "ada", "pw")
	check(t, "CheckPassword", err)
	if diff := cmp.Diff(Identity{Provider: "fake", Subject: "ada", Username: "pw"}, id); diff != "" {
		t.Errorf("CheckPassword (-want +got):\n%s", diff)
	}

	u, err := c.AuthURL(ctx, AuthURLRequest{State: "st", CodeChallenge: "cc", RedirectURI: "https://gh.example/cb", Scopes: []string{"openid", "email"}})
	check(t, "AuthURL", err)
	if want := "https://idp.example/auth?state=st&cc=cc&ru=https://gh.example/cb&scope=openid+email"; u != want {
		t.Errorf("AuthURL = %q, want %q", u, want)
	}

	req := ExchangeRequest{Code: "code", CodeVerifier: "verifier", RedirectURI: "https://gh.example/cb"}
	id, err = c.Exchange(ctx, req)
	check(t, "Exchange", err)
	want, _ := f.Exchange(ctx, req)
	if diff := cmp.Diff(want, id); diff != "" {
		t.Errorf("Exchange (-want +got):\n%s", diff)
	}
}

func TestIntegrationRoundTrip(t *testing.T) {
	f := fakeIntegration{&fake{}}
	c, _ := TestIntegration(t, f, testCfg)
	ctx := t.Context()
	if diff := cmp.Diff(testCfg, f.cfg); diff != "" {
		t.Errorf("Configure (-want +got):\n%s", diff)
	}
	info, err := c.Describe(ctx)
	check(t, "Describe", err)
	if info.Name != "fake" {
		t.Errorf("Describe = %+v", info)
	}
	u, err := c.AuthURL(ctx, AuthURLRequest{State: "st"})
	check(t, "AuthURL", err)
	if !strings.Contains(u, "state=st") {
		t.Errorf("AuthURL = %q", u)
	}

	req := ExchangeRequest{Code: "code", CodeVerifier: "v"}
	acct, toks, err := c.Exchange(ctx, req)
	check(t, "Exchange", err)
	wantAcct, wantToks, _ := f.Exchange(ctx, req)
	if diff := cmp.Diff(wantAcct, acct); diff != "" {
		t.Errorf("Exchange account (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantToks, toks); diff != "" {
		t.Errorf("Exchange tokens (-want +got):\n%s", diff)
	}

	toks, err = c.Refresh(ctx, "rt")
	check(t, "Refresh", err)
	if diff := cmp.Diff(IntegrationTokens{AccessToken: "at-rt", TokenType: "Bearer"}, toks); diff != "" {
		t.Errorf("Refresh (-want +got):\n%s", diff) // a zero ExpiresAt stays zero
	}
	check(t, "Revoke", c.Revoke(ctx, wantToks))
	if diff := cmp.Diff([]any{wantToks}, f.got); diff != "" {
		t.Errorf("Revoke (-want +got):\n%s", diff)
	}
}

// kinds returns every kind but Other, up to the first one errs has no name for.
func kinds() []errs.Kind {
	var ks []errs.Kind
	for k := errs.Kind(1); k.String() != fmt.Sprintf("kind(%d)", k); k++ {
		ks = append(ks, k)
	}
	return ks
}

func TestKindsSurvivePluginToHost(t *testing.T) {
	f := &fake{}
	c, _ := TestProvider(t, f, testCfg)
	ic, _ := TestIntegration(t, fakeIntegration{f}, testCfg)
	for _, k := range kinds() {
		f.fail = &errs.Error{Kind: k, Op: "fake.Op", Msg: "msg for " + k.String(), Err: errors.New("the secret cause"),
			Fields: []errs.FieldError{{Field: "a.b", Detail: "bad"}}, RetryAfter: 1500 * time.Millisecond}
		_, err := c.CheckPassword(t.Context(), "ada", "pw")
		checkErr(t, "CheckPassword "+k.String(), err, k, "msg for "+k.String())
		if diff := cmp.Diff([]errs.FieldError{{Field: "a.b", Detail: "bad"}}, errs.FieldsOf(err)); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", k, diff)
		}
		if got := errs.RetryAfterOf(err); got != 1500*time.Millisecond {
			t.Errorf("%s: RetryAfter = %v", k, got)
		}
		_, err = ic.Refresh(t.Context(), "rt")
		checkErr(t, "Refresh "+k.String(), err, k, "msg for "+k.String())
	}
	// An error without a kind is Internal, and its text stays in the plugin.
	f.fail = errors.New("dial tcp 10.0.0.1:25: the secret cause")
	err := c.SendVerification(t.Context(), MailRequest{})
	checkErr(t, "plain error", err, errs.Internal, "")
}

// blockingKV is a host KV whose Get fails with err, or waits for ctx when
// err is nil, recording that it saw ctx end.
type blockingKV struct {
	KV
	err     error
	started chan struct{}
	ended   chan struct{} // closed when Get saw ctx end
}

func (b *blockingKV) Get(ctx context.Context, _ string) ([]byte, bool, error) {
	if b.err != nil {
		return nil, false, b.err
	}
	close(b.started)
	<-ctx.Done()
	close(b.ended)
	return nil, false, ctx.Err()
}

// kvProvider's CheckPassword reads the host KV and returns its error as is.
type kvProvider struct {
	fake
	seen errs.Kind // the kind the plugin saw
	done chan struct{}
}

func (p *kvProvider) CheckPassword(ctx context.Context, _, _ string) (Identity, error) {
	defer close(p.done)
	_, _, err := p.host.KV.Get(ctx, "k")
	p.seen = errs.KindOf(err)
	return Identity{}, err
}

func TestKindsSurviveHostToPlugin(t *testing.T) {
	for _, k := range kinds() {
		p := &kvProvider{done: make(chan struct{})}
		kv := &blockingKV{KV: NewTestHost(), err: errs.Errorf(k, "host.KV", "host says %s", k)}
		c := dispense(t, KindIdentityProvider, &IdentityProviderPlugin{Impl: p}).(*IdentityProviderClient)
		check(t, "Configure", c.Configure(t.Context(), Config{Name: "kv"}, Host{KV: kv, Log: NewTestHost()}))
		_, err := c.CheckPassword(t.Context(), "ada", "pw")
		if p.seen != k {
			t.Errorf("the plugin saw kind %s, want %s", p.seen, k)
		}
		checkErr(t, "host KV "+k.String(), err, k, "host says "+k.String())
	}
}

func TestCancelPropagates(t *testing.T) {
	p := &kvProvider{done: make(chan struct{})}
	kv := &blockingKV{KV: NewTestHost(), started: make(chan struct{}), ended: make(chan struct{})}
	c := dispense(t, KindIdentityProvider, &IdentityProviderPlugin{Impl: p}).(*IdentityProviderClient)
	check(t, "Configure", c.Configure(t.Context(), Config{Name: "kv"}, Host{KV: kv, Log: NewTestHost()}))

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := c.CheckPassword(ctx, "ada", "pw"); errc <- err }()
	<-kv.started // host → plugin → host KV
	cancel()
	checkErr(t, "cancelled call", <-errc, errs.Unavailable, "the call was cancelled")
	for what, c := range map[string]chan struct{}{"the host KV's call": kv.ended, "the plugin's call": p.done} {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not end", what)
		}
	}
	if p.seen != errs.Unavailable {
		t.Errorf("the plugin saw kind %s, want unavailable", p.seen)
	}
}

// deadlineProvider records the deadline its Describe sees.
type deadlineProvider struct {
	fake
	deadline time.Time
}

func (p *deadlineProvider) Describe(ctx context.Context) (PluginInfo, error) {
	p.deadline, _ = ctx.Deadline()
	return PluginInfo{}, nil
}

func TestDeadlinePropagates(t *testing.T) {
	p := &deadlineProvider{}
	c, _ := TestProvider(t, p, testCfg)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	want, _ := ctx.Deadline()
	if _, err := c.Describe(ctx); err != nil {
		t.Fatal(err)
	}
	if d := want.Sub(p.deadline); p.deadline.IsZero() || d.Abs() > 5*time.Second {
		t.Errorf("plugin deadline %v, want about %v", p.deadline, want)
	}
}

func TestHostServices(t *testing.T) {
	f := &fake{}
	_, host := TestProvider(t, f, testCfg)
	ctx, kv := t.Context(), f.host.KV // the plugin's side, over the broker

	ok, err := kv.CompareAndSet(ctx, "k", nil, []byte("v1"), 0)
	check(t, "CompareAndSet absent", err)
	if !ok {
		t.Error("CompareAndSet(nil) on an absent key did not set")
	}
	if ok, _ := kv.CompareAndSet(ctx, "k", nil, []byte("v2"), 0); ok {
		t.Error("CompareAndSet(nil) on a present key did set")
	}
	if ok, _ := kv.CompareAndSet(ctx, "k", []byte("nope"), []byte("v2"), 0); ok {
		t.Error("CompareAndSet with a wrong old value did set")
	}
	if ok, _ := kv.CompareAndSet(ctx, "k", []byte("v1"), []byte(""), 0); !ok {
		t.Error("CompareAndSet with the old value did not set")
	}
	if ok, _ := kv.CompareAndSet(ctx, "k", []byte{}, []byte("v3"), 0); !ok {
		t.Error("CompareAndSet with an empty old value did not match an empty value")
	}
	v, found, err := kv.Get(ctx, "k")
	check(t, "Get", err)
	if !found || string(v) != "v3" {
		t.Errorf("Get = %q, %v", v, found)
	}
	if existed, _ := kv.Delete(ctx, "k"); !existed {
		t.Error("Delete of a present key said it did not exist")
	}
	if existed, _ := kv.Delete(ctx, "k"); existed {
		t.Error("Delete of an absent key said it existed")
	}

	check(t, "Set", kv.Set(ctx, "ttl", []byte("x"), time.Minute))
	if _, found, _ := kv.Get(ctx, "ttl"); !found {
		t.Error("a key with a TTL is gone before its time")
	}
	host.Advance(time.Minute)
	if _, found, _ := kv.Get(ctx, "ttl"); found {
		t.Error("a key outlived its TTL")
	}
	checkErr(t, "negative TTL", kv.Set(ctx, "k", nil, -time.Second), errs.Invalid, "negative ttl")

	f.host.Log.Log(ctx, "warn", "mail server slow", map[string]string{"server": "smtp.example"})
	if diff := cmp.Diff([]LogLine{{Level: "warn", Message: "mail server slow", Fields: map[string]string{"server": "smtp.example"}}},
		host.Lines()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// minimal implements Describe and Configure only.
type minimal struct{ Unsupported }

func (minimal) Describe(context.Context) (PluginInfo, error) {
	return PluginInfo{Name: "minimal"}, nil
}
func (minimal) Configure(context.Context, Config, Host) error { return nil }
func (minimal) Exchange(context.Context, ExchangeRequest) (IntegrationAccount, IntegrationTokens, error) {
	return IntegrationAccount{}, IntegrationTokens{}, nil
}

// minimalProvider is minimal as an IdentityProvider, with Unsupported's Exchange.
type minimalProvider struct{ Unsupported }

func (minimalProvider) Describe(context.Context) (PluginInfo, error) {
	return PluginInfo{}, nil
}
func (minimalProvider) Configure(context.Context, Config, Host) error { return nil }

func TestUnsupported(t *testing.T) {
	c, _ := TestProvider(t, minimalProvider{}, Config{})
	ic, _ := TestIntegration(t, minimal{}, Config{})
	ctx := t.Context()
	_, e1 := c.ConfirmVerification(ctx, "t")
	_, e2 := c.ConfirmPasswordReset(ctx, "t")
	_, e3 := c.CheckPassword(ctx, "a", "b")
	_, e4 := c.AuthURL(ctx, AuthURLRequest{})
	_, e5 := c.Exchange(ctx, ExchangeRequest{})
	_, e6 := ic.AuthURL(ctx, AuthURLRequest{})
	_, e7 := ic.Refresh(ctx, "rt")
	for i, err := range []error{
		c.SendVerification(ctx, MailRequest{}), e1, c.SendPasswordReset(ctx, MailRequest{}), e2, e3, e4, e5,
		e6, e7, ic.Revoke(ctx, IntegrationTokens{}),
	} {
		if errs.KindOf(err) != errs.NotFound || !strings.HasSuffix(errs.MessageOf(err), "is not supported by this plugin") {
			t.Errorf("call %d: %v (kind %s), want NotFound, not supported", i, err, errs.KindOf(err))
		}
	}
}

func TestStatusKeepsKind(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.String(), func(t *testing.T) {
			err := fromStatus(toStatus(&errs.Error{Kind: errs.Other, Op: "outer",
				Err: &errs.Error{Kind: k, Op: "inner", Msg: "safe", Err: errors.New("cause")}}))
			checkErr(t, "round trip", err, k, "safe")
			if k != errs.Malformed && kindOf(codeOf(k)) != k {
				t.Errorf("kindOf(codeOf(%s)) = %s", k, kindOf(codeOf(k)))
			}
		})
	}
	for _, tc := range []struct {
		name string
		err  error
		kind errs.Kind
		msg  string
	}{
		{"nil", nil, errs.Other, ""},
		{"no detail", status.Error(codes.PermissionDenied, "10.0.0.1 said no"), errs.Forbidden, ""},
		{"unimplemented", status.Error(codes.Unimplemented, "no such method"), errs.NotFound, ""},
		{"canceled status", status.Error(codes.Canceled, "x"), errs.Unavailable, "the call was cancelled"},
		{"deadline", context.DeadlineExceeded, errs.Unavailable, "the call timed out"},
		{"canceled", fmt.Errorf("wrapped: %w", context.Canceled), errs.Unavailable, "the call was cancelled"},
		{"not a status", errors.New("boom"), errs.Internal, ""},
	} {
		checkErr(t, tc.name, fromStatus(tc.err), tc.kind, tc.msg)
	}
	if toStatus(nil) != nil {
		t.Error("toStatus(nil) is not nil")
	}
}

func TestLoggerKeys(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf)
	log.Warn().Str("plugin", "email").Msg("hello")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if line["@level"] != "warn" || line["@message"] != "hello" || line["plugin"] != "email" {
		t.Errorf("line = %s", buf.Bytes())
	}
	ts, _ := line["@timestamp"].(string)
	if _, err := time.Parse(hclogTime, ts); err != nil { // as go-plugin parses it
		t.Errorf("@timestamp: %v", err)
	}
}

func TestWatchParent(t *testing.T) {
	var ppid atomic.Int64
	ppid.Store(4242)
	gone := make(chan struct{})
	go watchParent(time.Millisecond, func() int { return int(ppid.Load()) }, func() { close(gone) })
	select {
	case <-gone:
		t.Fatal("gone before the parent changed")
	case <-time.After(20 * time.Millisecond):
	}
	ppid.Store(1)
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the parent changed, but watchParent did not notice")
	}
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// checkErr checks err's kind and client message, and that no cause leaked.
func checkErr(t *testing.T, what string, err error, kind errs.Kind, msg string) {
	t.Helper()
	if got := errs.KindOf(err); got != kind {
		t.Errorf("%s: kind %s, want %s (%v)", what, got, kind, err)
	}
	if got := errs.MessageOf(err); got != msg {
		t.Errorf("%s: message %q, want %q", what, got, msg)
	}
	if err != nil && strings.Contains(err.Error(), "secret cause") {
		t.Errorf("%s: the cause crossed the wire: %v", what, err)
	}
}
