package core_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/configs"
	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// svcEnv is a core.Service on redisstore over miniredis, for service-level tests
// of the rules (users, /verify, mail): the round trips its client makes are logged,
// and the errors of background work collected.
type svcEnv struct {
	t        *testing.T
	svc      *core.Service
	store    core.Store // the real store, under any wrapper the service has
	mr       *miniredis.Miniredis
	trips    *tripLog
	mail     *mailFake
	reported *errorLog
	// providers are the service's, for a second service on the same store.
	providers testProviders
}

// svcOptions changes what newSvcEnv builds.
type svcOptions struct {
	policy       func(*core.Policy)
	wrap         func(core.Store) core.Store // the store the service sees
	mailTimeout  time.Duration
	providers    map[string]core.IdentityProvider // besides "email"
	integrations map[string]core.Integration
	now          func() time.Time // the service's clock; nil: time.Now
	redirectURIs []string
	noEmailLink  []string
	keyring      *core.Keyring // nil: an ephemeral one
	// verifyCache turns the verification cache on; newSvcEnv then follows the
	// store's changes and waits until the cache is in use.
	verifyCache core.VerifyCacheOptions
	// follow follows the store's changes with the cache off (the copy of
	// the registries still uses them).
	follow bool
}

func newSvcEnv(t *testing.T, o svcOptions) *svcEnv {
	t.Helper()
	mr := miniredis.RunT(t)
	// Redis' clock stands still unless a test moves it, so throttle answers
	// (Retry-After) are exact and comparable.
	mr.SetTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	client := redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{mr.Addr()}})
	trips := &tripLog{}
	client.AddHook(redistest.OnSend(trips.add))
	t.Cleanup(func() { client.Close() })
	// Bounds for a loaded CI machine: a /verify under -race there has waited
	// past the default 500 ms read bound for a CPU.
	store := redisstore.New(client, redisstore.Options{Prefix: "h:", ReadTimeout: redistest.StoreTimeout, WriteTimeout: redistest.StoreTimeout})
	models, err := core.LoadModels(configs.Models)
	if err != nil {
		t.Fatal(err)
	}
	policy := core.DefaultPolicy()
	if o.policy != nil {
		o.policy(&policy)
	}
	var seen core.Store = store
	if o.wrap != nil {
		seen = o.wrap(store)
	}
	mail := newMailFake()
	reported := &errorLog{}
	providers := testProviders{idp: map[string]core.IdentityProvider{"email": mail}, integ: map[string]core.Integration{}}
	keyring := o.keyring
	if keyring == nil {
		keyring = core.NewEphemeralKeyring()
	}
	maps.Copy(providers.idp, o.providers)
	maps.Copy(providers.integ, o.integrations)
	svc := core.NewService(seen, core.Options{
		Models: models, Hasher: core.NewHasher(core.TestArgon2, 4), Keyring: keyring,
		Limiter: store.Limiter(), Policy: policy, Providers: providers,
		PublicURL: "https://auth.example.test", ReportError: reported.add, MailTimeout: o.mailTimeout,
		Now: o.now, RedirectURIs: o.redirectURIs, NoEmailLink: o.noEmailLink, VerifyCache: o.verifyCache,
	})
	if o.verifyCache.Size > 0 || o.follow {
		follow(t, svc)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mail.open() // a test that failed half-way may have left sends waiting
		if err := svc.Drain(ctx); err != nil {
			t.Errorf("Drain: %v", err)
		}
	})
	return &svcEnv{t: t, svc: svc, store: store, mr: mr, trips: trips, mail: mail, reported: reported, providers: providers}
}

// follow runs svc.FollowChanges until the test ends, and waits until the
// change feed is followed and the verification cache, when on, in use.
func follow(t *testing.T, svc *core.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.FollowChanges(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("FollowChanges did not return after its context ended")
		}
	})
	waitFor(t, "the change feed followed", func() bool { return svc.ChangesFollowed() })
	waitFor(t, "the verification cache in use", func() bool { return svc.VerifyCacheLive() || !core.VerifyCacheOn(svc) })
}

// waitFor polls cond until it holds, for 5 s at most.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s, still not %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// user stores an active user with that username (and email, if it has an '@').
func (e *svcEnv) user(name string) core.User {
	e.t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	u := core.User{ID: core.NewID(), Username: name, IsActive: true, CreatedAt: now, UpdatedAt: now}
	if strings.Contains(name, "@") {
		u.Email = name
	}
	if err := e.store.CreateUser(e.t.Context(), &u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// app stores an active app of owner.
func (e *svcEnv) app(owner core.User, name string) core.App {
	e.t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := core.App{ID: core.NewID(), Name: name, UserID: owner.ID, IsActive: true, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateApp(e.t.Context(), &a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// cred creates a credential through the service (fields as the admin API takes
// them) and returns it with its secret.
func (e *svcEnv) cred(consumer, typ string, fields core.Fields) core.NewCredential {
	e.t.Helper()
	nc, err := e.svc.CreateCredential(e.t.Context(), core.CredentialRequest{ConsumerID: consumer, Type: typ, Credential: fields})
	if err != nil {
		e.t.Fatalf("CreateCredential(%s, %s): %v", consumer, typ, err)
	}
	return nc
}

// session stores a live login session of u and returns its token.
func (e *svcEnv) session(u core.User) string {
	e.t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	token := core.NewToken(core.PrefixSession, u.ID)
	s := core.Session{
		ID: core.NewSecret("", 9), Hash: core.HashSHA256(token), Kind: core.KindSession, UserID: u.ID,
		ConsumerID: u.ID, ConsumerKind: core.ConsumerUser, Provider: "email",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now,
	}
	if err := e.store.CreateSession(e.t.Context(), s, 0); err != nil {
		e.t.Fatal(err)
	}
	return token
}

// tripLog logs (through redistest.OnSend) each round trip (a command sent alone, or
// a pipeline) as its command names joined with '+'.
type tripLog struct {
	mu      sync.Mutex
	trips   []string
	barrier *barrier
}

// barrier holds round trips until n of them are in flight together, or a
// while has passed (then timedOut: they came one after another).
type barrier struct {
	n, arrived int
	all        chan struct{}
	timedOut   bool
}

func (l *tripLog) add(cmds ...redis.Cmder) {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Name()
	}
	l.mu.Lock()
	l.trips = append(l.trips, strings.Join(names, "+"))
	b := l.barrier
	if b != nil {
		if b.arrived++; b.arrived == b.n {
			close(b.all)
			l.barrier = nil
		}
	}
	l.mu.Unlock()
	if b == nil {
		return
	}
	select {
	case <-b.all:
	case <-time.After(5 * time.Second): // not a timing assertion: the trips never met
		l.mu.Lock()
		if l.barrier == b {
			l.barrier, b.timedOut = nil, true
		}
		l.mu.Unlock()
	}
}

// together runs f and reports whether its first n round trips were in flight
// at the same time (sent concurrently, not one after another).
func (l *tripLog) together(n int, f func()) bool {
	b := &barrier{n: n, all: make(chan struct{})}
	l.mu.Lock()
	l.barrier = b
	l.mu.Unlock()
	f()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.barrier == b { // fewer than n trips at all
		l.barrier = nil
		return false
	}
	return !b.timedOut
}

// during returns the round trips made while f ran, sorted (concurrent ones
// come in any order).
func (l *tripLog) during(f func()) []string {
	l.mu.Lock()
	n := len(l.trips)
	l.mu.Unlock()
	f()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.trips[n:])
	slices.Sort(out)
	return out
}

// errorLog collects the errors the service reports.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) get() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// testProviders is a core.Providers over in-process providers.
type testProviders struct {
	idp   map[string]core.IdentityProvider
	integ map[string]core.Integration
}

func (m testProviders) IdentityProvider(name string) (core.IdentityProvider, bool) {
	p, ok := m.idp[name]
	return p, ok
}

func (m testProviders) Integration(name string) (core.Integration, bool) {
	p, ok := m.integ[name]
	return p, ok
}

func (m testProviders) IntegrationNames() []string { return slices.Sorted(maps.Keys(m.integ)) }

// mailFake is an email identity provider that records the mails it is asked to
// send. While its gate is shut, sends wait for it (or for their context); with
// fail set, they fail.
type mailFake struct {
	mu    sync.Mutex
	gate  chan struct{} // closed: open
	fail  error
	mails []sentMail
}

type sentMail struct{ Kind, Email string }

func newMailFake() *mailFake {
	g := make(chan struct{})
	close(g)
	return &mailFake{gate: g}
}

// shut makes sends wait until open.
func (m *mailFake) shut() {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.gate:
		m.gate = make(chan struct{})
	default:
	}
}

func (m *mailFake) open() {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.gate:
	default:
		close(m.gate)
	}
}

func (m *mailFake) failWith(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

func (m *mailFake) sent() []sentMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.mails)
}

func (m *mailFake) send(ctx context.Context, kind string, req core.MailRequest) error {
	m.mu.Lock()
	gate, fail := m.gate, m.fail
	m.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
		return core.Errorf(core.Unavailable, "mailFake", "gave up waiting: %v", ctx.Err())
	}
	if fail != nil {
		return fail
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, sentMail{kind, req.Email})
	return nil
}

func (m *mailFake) Describe(context.Context) (core.PluginInfo, error) {
	return core.PluginInfo{Name: "email", Kind: core.KindIdentityProvider, Version: "test",
		Capabilities: []string{core.CapMailVerification, core.CapPasswordReset}}, nil
}

func (m *mailFake) SendVerification(ctx context.Context, req core.MailRequest) error {
	return m.send(ctx, "verify", req)
}

func (m *mailFake) SendPasswordReset(ctx context.Context, req core.MailRequest) error {
	return m.send(ctx, "reset", req)
}

func (m *mailFake) ConfirmVerification(context.Context, string) (core.MailSubject, error) {
	return core.MailSubject{}, core.Errorf(core.NotFound, "mailFake", "link is invalid or has expired")
}

func (m *mailFake) ConfirmPasswordReset(context.Context, string) (core.MailSubject, error) {
	return core.MailSubject{}, core.Errorf(core.NotFound, "mailFake", "link is invalid or has expired")
}

func (m *mailFake) CheckPassword(context.Context, string, string) (core.Identity, error) {
	return core.Identity{}, core.Errorf(core.NotFound, "mailFake", "not supported")
}

func (m *mailFake) AuthURL(context.Context, core.AuthURLRequest) (string, error) {
	return "", core.Errorf(core.NotFound, "mailFake", "not supported")
}

func (m *mailFake) Exchange(context.Context, core.ExchangeRequest) (core.Identity, error) {
	return core.Identity{}, core.Errorf(core.NotFound, "mailFake", "not supported")
}
