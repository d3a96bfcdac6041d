package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"slices"
	"strings"
	"sync"
	"time"
)

// Service is Gatehouse's domain logic: every admin, public and dialect surface
// changes data only through it. It validates input, applies the rules of
// docs/admin-api.md and docs/decisions.md, and calls the Store.
type Service struct {
	store        Store
	models       *Models
	hasher       *Hasher // logins, password and credential creation
	verifyHasher *Hasher // /verify Basic checks: a burst of logins cannot starve it
	keyring      *Keyring
	limiter      Limiter
	policy       Policy
	now          func() time.Time
	adminKey     string            // GATEHOUSE_ADMIN_KEY, held in memory only
	adminKeySum  [sha256.Size]byte // its SHA-256, computed once: every admin request compares with it

	providers Providers
	publicURL string // the public listener's external URL, for links in mails
	// redirectURIs are the return addresses of redirect flows allowed besides
	// the apps' redirectUri (auth.redirectURIs).
	redirectURIs []string
	noEmailLink  []string // providers whose sign-ins never link to a user by email

	locators *boundedCache // presented name → the user whose slot holds it
	passed   *boundedCache // keyed hashes of recent successful argon2 checks
	touched  *boundedCache // sessions whose lastSeenAt this process wrote lately
	passKey  []byte        // the key of those hashes, random per process
	vcache   *verifyCache  // resolved verifications; nil when off
	regs     *registryCopy // the scope and group registries, for verifications
	over     *overRate     // /verify's failure throttles over their rate
	nobody   string        // a user id that exists nowhere, random per process (locateAlike)

	background  sync.WaitGroup // work off the request path: mails, session touches
	mailSlots   chan struct{}  // bounds the mails in flight
	mailTimeout time.Duration
	reportError func(error)
}

// Policy holds the session, token and rate-limit settings.
type Policy struct {
	SessionTTL    time.Duration // absolute lifetime of a login session
	MaxSessions   int           // live sessions per user when its sessionsLimit is null
	OAuthTokenTTL time.Duration // lifetime of a client-credentials access token
	// LoginPerIdentifier and LoginPerAddress count failed logins only.
	LoginPerIdentifier Rate
	LoginPerAddress    Rate
	// VerifyFailures counts failed key and Basic attempts at /verify per key id
	// (or username) and client address; over it, /verify answers 401 with
	// Retry-After.
	VerifyFailures Rate
	// VerifyFailuresPerAddress counts every failed key and Basic attempt at
	// /verify per client address, whatever key id or username it named; over
	// it, /verify answers 401 with Retry-After.
	VerifyFailuresPerAddress Rate
	// RememberSuccess is how long a successful argon2 comparison at /verify is
	// remembered (only the hash check is skipped; records are still read).
	RememberSuccess time.Duration
	// SignupPerAddress counts sign-ups per client address.
	SignupPerAddress Rate
	// FlowsPerAddress counts redirect sign-ins and integration links started
	// per client address (each keeps a record for ten minutes).
	FlowsPerAddress Rate
	// MailPerAddress and MailPerEmail count verification and reset mails asked
	// for (a sign-up's own first mail does not count).
	MailPerAddress Rate
	MailPerEmail   Rate
	// UnverifiedTTL is how long an email sign-up that was never verified lives.
	UnverifiedTTL time.Duration
	// DialectCalls is the call budget of each admin key on the dialects that
	// announce one (publica.la's X-RateLimit-Limit and -Remaining).
	DialectCalls Rate
	// RequireVerifiedEmail refuses password logins of users who signed up by
	// email and never verified it (admin-created users are never held to it).
	RequireVerifiedEmail bool
}

// DefaultPolicy returns the default lifetimes and rates, the one place they are written.
func DefaultPolicy() Policy {
	return Policy{
		SessionTTL: 24 * time.Hour, MaxSessions: 100, OAuthTokenTTL: time.Hour,
		LoginPerIdentifier: Rate{10, time.Minute}, LoginPerAddress: Rate{100, time.Minute},
		VerifyFailures: Rate{20, time.Minute}, VerifyFailuresPerAddress: Rate{60, time.Minute}, RememberSuccess: time.Minute,
		SignupPerAddress: Rate{30, time.Minute}, DialectCalls: Rate{60, time.Minute}, FlowsPerAddress: Rate{60, time.Minute}, MailPerAddress: Rate{3, time.Hour}, MailPerEmail: Rate{3, time.Hour},
		UnverifiedTTL: 24 * time.Hour, RequireVerifiedEmail: true,
	}
}

// Options configures a Service.
type Options struct {
	// Models are the user, app and credential models; nil loads nothing and must
	// not happen outside tests of unrelated parts.
	Models *Models
	// Hasher hashes passwords; nil uses DefaultArgon2 with a CPU-sized cap.
	Hasher *Hasher
	// VerifyHasher checks Basic credentials at /verify, with its own concurrency
	// cap; nil shares Hasher's parameters with a CPU-sized cap of its own.
	VerifyHasher *Hasher
	// Keyring encrypts jwt key secrets; nil makes jwt credentials Unavailable.
	Keyring *Keyring
	// Limiter counts failed logins and verifications; nil limits nothing.
	Limiter Limiter
	// Policy holds lifetimes and rates; the zero value means DefaultPolicy.
	Policy Policy
	// Providers are the identity providers (plugins); nil: none.
	Providers Providers
	// PublicURL is the public listener's external URL ("https://auth.example.com"),
	// the base of the links in mails.
	PublicURL string
	// RedirectURIs are the addresses a redirect sign-in or an integration may
	// send the browser back to, besides the redirectUri of every active app
	// (auth.redirectURIs); exact matches only.
	RedirectURIs []string
	// NoEmailLink names the identity providers whose sign-ins never link to an
	// existing user by a verified email (linkByEmail: false).
	NoEmailLink []string
	// AdminKey is the bootstrap key from GATEHOUSE_ADMIN_KEY, if any.
	AdminKey string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// ReportError receives the errors of work done off the request path, which
	// no caller sees (a verification or reset mail that could not be sent);
	// nil drops them. It must not block for long.
	ReportError func(error)
	// MailTimeout bounds a mail sent off the request path; 0 means
	// DefaultMailTimeout.
	MailTimeout time.Duration
	// VerifyCache sizes /verify's cache of resolved verifications; the zero
	// value is off. It is used only while FollowChanges runs on a store that
	// is a ChangeFeed.
	VerifyCache VerifyCacheOptions
}

// DefaultMailTimeout bounds a mail that resend or password reset sends off the
// request path.
const DefaultMailTimeout = 30 * time.Second

// maxMailsInFlight bounds the mails being sent off the request path; beyond it a
// mail is dropped and reported (the rate limits per address and email keep
// this out of reach of one client).
const maxMailsInFlight = 64

// NewService returns a Service over store.
func NewService(store Store, opt Options) *Service {
	s := &Service{
		store: store, models: opt.Models, hasher: opt.Hasher, verifyHasher: opt.VerifyHasher,
		keyring: opt.Keyring, limiter: opt.Limiter, policy: opt.Policy, now: opt.Now, adminKey: opt.AdminKey,
		adminKeySum: sha256.Sum256([]byte(opt.AdminKey)),
		providers:   opt.Providers, publicURL: strings.TrimSuffix(opt.PublicURL, "/"),
		redirectURIs: slices.Clone(opt.RedirectURIs), noEmailLink: slices.Clone(opt.NoEmailLink),
		locators: newBoundedCache(100_000), passed: newBoundedCache(10_000), touched: newBoundedCache(10_000), passKey: make([]byte, 32),
		vcache: newVerifyCache(opt.VerifyCache), regs: &registryCopy{}, nobody: NewID(), mailSlots: make(chan struct{}, maxMailsInFlight), mailTimeout: opt.MailTimeout, reportError: opt.ReportError,
	}
	rand.Read(s.passKey)
	if s.hasher == nil {
		s.hasher = NewHasher(DefaultArgon2, 0)
	}
	if s.verifyHasher == nil {
		s.verifyHasher = NewHasher(s.hasher.p, 0)
	}
	if s.policy == (Policy{}) {
		s.policy = DefaultPolicy()
	}
	s.over = newOverRate(overRateGrace(s.policy))
	if s.now == nil {
		s.now = time.Now
	}
	if s.mailTimeout <= 0 {
		s.mailTimeout = DefaultMailTimeout
	}
	if s.reportError == nil {
		s.reportError = func(error) {}
	}
	return s
}

// Drain waits until the work the service does off the request path (mails,
// session touches) has finished, or ctx ends. Call it once no request is being
// served any more (after the listeners stopped) and before exiting, so that a
// mail already answered 202 is still sent.
func (s *Service) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.background.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Now returns the service's clock reading, in UTC and truncated to milliseconds,
// the precision every stored timestamp has.
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Ping reports whether the store can answer.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// Doctor reports (and with repair removes) leftovers of interrupted writes.
func (s *Service) Doctor(ctx context.Context, repair bool) (DoctorReport, error) {
	return s.store.Doctor(ctx, repair)
}

// checkList validates paging options (count 1..1000, default 100).
func checkList(op string, opt *ListOptions) error {
	var c checker
	if opt.Count == 0 {
		opt.Count = DefaultPageSize
	}
	if opt.Count < 1 || opt.Count > MaxPageSize {
		c.fail("count", "must be between 1 and %d", MaxPageSize)
	}
	if opt.Start < 0 {
		c.fail("start", "must be 0 or a nextKey returned earlier")
	}
	return c.err(op)
}
