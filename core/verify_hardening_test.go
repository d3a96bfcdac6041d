package core_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core"
)

// verifyFixture: user vic with an app, one credential of each type /verify
// takes, and a session; the presented forms of each, right and wrong.
type verifyFixture struct {
	vic              core.User
	app              core.App
	key, appKey, jwt core.Presented // right secrets
	basic, appBasic  core.Presented
	session          core.Presented
}

const (
	vicKeySecret = "vic-key-secret-vic-key-secret-vic-key-secret"
	vicJWTSecret = "vic-jwt-secret-vic-jwt-secret-0123"
	vicPassword  = "correct horse battery"
	appPassword  = "app horse battery staple"
)

func newVerifyFixture(e *svcEnv) verifyFixture {
	e.t.Helper()
	var f verifyFixture
	f.vic = e.user("vic")
	f.app = e.app(f.vic, "vic-app")
	e.cred("vic", "key-auth", core.Fields{"keyId": "vic-key", "keySecret": vicKeySecret})
	e.cred(f.app.ID, "key-auth", core.Fields{"keyId": "app-key", "keySecret": vicKeySecret})
	e.cred("vic", "jwt", core.Fields{"keyId": "vic-jwt", "keySecret": vicJWTSecret})
	e.cred("vic", "basic-auth", core.Fields{"password": vicPassword})
	e.cred(f.app.ID, "basic-auth", core.Fields{"password": appPassword})
	f.key = core.Presented{Scheme: core.SchemeAPIKey, ID: "vic-key", Secret: vicKeySecret}
	f.appKey = core.Presented{Scheme: core.SchemeAPIKey, ID: "app-key", Secret: vicKeySecret}
	f.jwt = core.Presented{Scheme: core.SchemeBearer, Secret: signJWT(e.t, "vic-jwt", vicJWTSecret)}
	f.basic = core.Presented{Scheme: core.SchemeBasic, ID: "vic", Secret: vicPassword}
	f.appBasic = core.Presented{Scheme: core.SchemeBasic, ID: "vic-app", Secret: appPassword}
	f.session = core.Presented{Scheme: core.SchemeBearer, Secret: e.session(f.vic)}
	return f
}

func signJWT(t *testing.T, kid, secret string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// from returns p presented from a client address.
func from(p core.Presented, addr string) core.Presented {
	p.ClientAddr = addr
	return p
}

// outcome describes a verification's answer for comparisons: the consumer, or
// the error's kind, message and Retry-After.
func outcome(pr core.Principal, err error) string {
	if err != nil {
		return fmt.Sprintf("%v %q retry=%v", core.KindOf(err), core.MessageOf(err), core.RetryAfterOf(err))
	}
	return "ok " + pr.ConsumerID
}

// TestVerifyFailsClosed: every scheme and every way of failing answers an error
// and an empty Principal; every success names its consumer.
func TestVerifyFailsClosed(t *testing.T) {
	e := newSvcEnv(t, svcOptions{})
	f := newVerifyFixture(e)
	e.cred("vic", "key-auth", core.Fields{"keyId": "off", "keySecret": vicKeySecret, "isActive": false})
	bob := e.user("bob")
	e.cred("bob", "key-auth", core.Fields{"keyId": "bob-key", "keySecret": vicKeySecret})
	if _, err := e.svc.SetUserStatus(t.Context(), "bob", false); err != nil {
		t.Fatal(err)
	}
	other := e.user("other")
	garbageJWT := signJWT(t, "vic-jwt", "not-the-secret-not-the-secret-0123")
	tests := []struct {
		name string
		p    core.Presented
		want core.Kind // 0: success
	}{
		{"key", f.key, 0},
		{"app key", f.appKey, 0},
		{"jwt", f.jwt, 0},
		{"basic", f.basic, 0},
		{"basic by id", core.Presented{Scheme: core.SchemeBasic, ID: f.vic.ID, Secret: vicPassword}, 0},
		{"app basic by name", f.appBasic, 0},
		{"app basic by id", core.Presented{Scheme: core.SchemeBasic, ID: f.app.ID, Secret: appPassword}, 0},
		{"session", f.session, 0},

		{"key: wrong secret", core.Presented{Scheme: core.SchemeAPIKey, ID: "vic-key", Secret: "wrong"}, core.Unauthorized},
		{"key: empty secret", core.Presented{Scheme: core.SchemeAPIKey, ID: "vic-key"}, core.Unauthorized},
		{"key: unknown", core.Presented{Scheme: core.SchemeAPIKey, ID: "nobody", Secret: vicKeySecret}, core.Unauthorized},
		{"key: malformed id", core.Presented{Scheme: core.SchemeAPIKey, ID: "no/such key", Secret: vicKeySecret}, core.Unauthorized},
		{"key: empty id", core.Presented{Scheme: core.SchemeAPIKey, Secret: vicKeySecret}, core.Unauthorized},
		{"key: inactive", core.Presented{Scheme: core.SchemeAPIKey, ID: "off", Secret: vicKeySecret}, core.Forbidden},
		{"key: user deactivated", core.Presented{Scheme: core.SchemeAPIKey, ID: "bob-key", Secret: vicKeySecret}, core.Forbidden},
		{"key: missing scope", core.Presented{Scheme: core.SchemeAPIKey, ID: "vic-key", Secret: vicKeySecret, RequiredScopes: []string{"admin"}}, core.Forbidden},
		{"jwt: wrong signature", core.Presented{Scheme: core.SchemeBearer, Secret: garbageJWT}, core.Unauthorized},
		{"jwt: unknown kid", core.Presented{Scheme: core.SchemeBearer, Secret: signJWT(t, "nobody", vicJWTSecret)}, core.Unauthorized},
		{"jwt: malformed", core.Presented{Scheme: core.SchemeBearer, Secret: "a.b.c"}, core.Unauthorized},
		{"basic: wrong password", core.Presented{Scheme: core.SchemeBasic, ID: "vic", Secret: "wrong password"}, core.Unauthorized},
		{"basic: unknown", core.Presented{Scheme: core.SchemeBasic, ID: "nobody", Secret: vicPassword}, core.Unauthorized},
		{"basic: unknown id", core.Presented{Scheme: core.SchemeBasic, ID: core.NewID(), Secret: vicPassword}, core.Unauthorized},
		{"basic: user without basic-auth", core.Presented{Scheme: core.SchemeBasic, ID: other.Username, Secret: vicPassword}, core.Unauthorized},
		{"basic: empty name", core.Presented{Scheme: core.SchemeBasic, Secret: vicPassword}, core.Unauthorized},
		{"session: unknown", core.Presented{Scheme: core.SchemeBearer, Secret: core.NewToken(core.PrefixSession, f.vic.ID)}, core.Unauthorized},
		{"session: another user's id", core.Presented{Scheme: core.SchemeBearer, Secret: core.NewToken(core.PrefixSession, bob.ID)}, core.Unauthorized},
		{"bearer: garbage", core.Presented{Scheme: core.SchemeBearer, Secret: "garbage"}, core.Unauthorized},
		{"unknown scheme", core.Presented{Scheme: "digest", ID: "vic", Secret: vicPassword}, core.Unauthorized},
		{"no scheme", core.Presented{}, core.Unauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := e.svc.Verify(t.Context(), from(tt.p, "203.0.113.1"))
			if err != nil {
				if !cmp.Equal(pr, core.Principal{}) {
					t.Errorf("failed with a Principal: %+v", pr)
				}
			} else if pr.ConsumerID == "" {
				t.Fatalf("success without a consumer: %+v", pr)
			}
			if got := core.KindOf(err); tt.want == 0 && err != nil || tt.want != 0 && got != tt.want {
				t.Errorf("Verify = %s, want kind %v", outcome(pr, err), tt.want)
			}
		})
	}
}

// shapeStore answers ReadAuth with the real record changed by shape: what a
// buggy store, or a cache plugged in later, might hand the service.
type shapeStore struct {
	core.Store
	shape func(*core.AuthRecord)
}

func (s shapeStore) ReadAuth(ctx context.Context, q core.AuthQuery) (core.AuthRecord, error) {
	rec, err := s.Store.ReadAuth(ctx, q)
	if err == nil {
		s.shape(&rec)
	}
	return rec, err
}

// TestVerifyFailsClosedOnOddRecords: whatever the read hands back — a record
// without a user, a credential or token whose consumer is missing, another's,
// or of an unknown kind, an app credential without its app — a right secret
// never yields a success without the consumer.
func TestVerifyFailsClosedOnOddRecords(t *testing.T) {
	withCred := func(f func(*core.Credential)) func(*core.AuthRecord) {
		return func(r *core.AuthRecord) {
			if r.Credential != nil {
				c := *r.Credential
				f(&c)
				r.Credential = &c
			}
		}
	}
	withSession := func(f func(*core.Session)) func(*core.AuthRecord) {
		return func(r *core.AuthRecord) {
			if r.Session != nil {
				s := *r.Session
				f(&s)
				r.Session = &s
			}
		}
	}
	both := func(c func(*core.Credential), s func(*core.Session)) func(*core.AuthRecord) {
		return func(r *core.AuthRecord) { withCred(c)(r); withSession(s)(r) }
	}
	shapes := []struct {
		name    string
		shape   func(*core.AuthRecord)
		appOnly bool // only an app's credential has an app to lose
	}{
		{"an empty record", func(r *core.AuthRecord) { *r = core.AuthRecord{} }, false},
		{"no user id", func(r *core.AuthRecord) { r.User.ID = "" }, false},
		{"no credential", func(r *core.AuthRecord) { r.Credential = nil; r.Session = nil }, false},
		{"no consumer id", both(func(c *core.Credential) { c.ConsumerID = "" }, func(s *core.Session) { s.ConsumerID = "" }), false},
		{"another consumer", both(func(c *core.Credential) { c.ConsumerID = core.NewID() }, func(s *core.Session) { s.ConsumerID = core.NewID() }), false},
		{"an unknown consumer kind", both(func(c *core.Credential) { c.ConsumerKind = "robot" }, func(s *core.Session) { s.ConsumerKind = "robot" }), false},
		{"an app's credential without its app", func(r *core.AuthRecord) { r.App = nil }, true},
	}
	var shape func(*core.AuthRecord)
	e := newSvcEnv(t, svcOptions{wrap: func(s core.Store) core.Store {
		return shapeStore{s, func(r *core.AuthRecord) {
			if shape != nil {
				shape(r)
			}
		}}
	}})
	f := newVerifyFixture(e)
	creds := []struct {
		name string
		p    core.Presented
		app  bool // an app's credential
	}{
		{"key", f.key, false}, {"jwt", f.jwt, false}, {"basic", f.basic, false}, {"session", f.session, false},
		{"app key", f.appKey, true}, {"app basic", f.appBasic, true},
	}
	for _, c := range creds { // the fixture verifies as it is
		if pr, err := e.svc.Verify(t.Context(), c.p); err != nil || pr.ConsumerID == "" {
			t.Fatalf("%s before any change: %s", c.name, outcome(pr, err))
		}
	}
	for _, sh := range shapes {
		for _, c := range creds {
			if sh.appOnly && !c.app {
				continue
			}
			t.Run(sh.name+"/"+c.name, func(t *testing.T) {
				shape = sh.shape
				defer func() { shape = nil }()
				pr, err := e.svc.Verify(t.Context(), from(c.p, "203.0.113.2"))
				if err == nil || !cmp.Equal(pr, core.Principal{}) {
					t.Errorf("Verify = %s, %+v; want an error and no Principal", outcome(pr, err), pr)
				}
			})
		}
	}
}

// TestVerifyUnknownAnsweredLikeKnown: from one address, wrong tries for an
// unknown key id (jwt kid, Basic username) and for a known one get the same
// answers, Retry-After included, in the same sequence, and make the same kind
// of Redis round trips: the known one's, plus the owner lookups an unknown name
// runs beside its read.
func TestVerifyUnknownAnsweredLikeKnown(t *testing.T) {
	e := newSvcEnv(t, svcOptions{policy: func(p *core.Policy) {
		p.VerifyFailures = core.Rate{Count: 5, Per: time.Minute}
		p.VerifyFailuresPerAddress = core.Rate{Count: 1000, Per: time.Minute}
	}})
	f := newVerifyFixture(e)
	wrongJWT := signJWT(t, "vic-jwt", "not-the-secret-not-the-secret-0123")
	const read = "mget+hgetall+hgetall+get+get+time" // ReadAuth (the scope and group registries) with two throttles
	tests := []struct {
		name           string
		unknown, known core.Presented
		extra          []string // what an unknown name's lookup adds to the known one's trips
		together       int      // how many of the unknown name's trips go at once (its lookups and read)
	}{
		{"key-auth",
			core.Presented{Scheme: core.SchemeAPIKey, ID: "nobody-key", Secret: "wrong"},
			core.Presented{Scheme: core.SchemeAPIKey, ID: "vic-key", Secret: "wrong"},
			[]string{"hget"}, 2},
		{"jwt",
			core.Presented{Scheme: core.SchemeBearer, Secret: signJWT(t, "nobody-jwt", "not-the-secret-not-the-secret-0123")},
			core.Presented{Scheme: core.SchemeBearer, Secret: wrongJWT},
			[]string{"hget"}, 2},
		{"basic",
			core.Presented{Scheme: core.SchemeBasic, ID: "nobody", Secret: "wrong password"},
			core.Presented{Scheme: core.SchemeBasic, ID: "vic", Secret: "wrong password"},
			[]string{"hget", "smembers"}, 3},
		{"basic by id",
			core.Presented{Scheme: core.SchemeBasic, ID: core.NewID(), Secret: "wrong password"},
			core.Presented{Scheme: core.SchemeBasic, ID: f.vic.ID, Secret: "wrong password"},
			[]string{"hget", read}, 3}, // the id read as a user's, and looked up as an app's
		{"basic by app id",
			core.Presented{Scheme: core.SchemeBasic, ID: core.NewID(), Secret: "wrong password"},
			core.Presented{Scheme: core.SchemeBasic, ID: f.app.ID, Secret: "wrong password"},
			[]string{"hget", read}, 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unknownAddr, knownAddr := fmt.Sprintf("198.51.100.%d", 2*i+1), fmt.Sprintf("198.51.100.%d", 2*i+2)
			var unknown, known []string
			for try := 1; try <= 25; try++ {
				var pu, pk core.Principal
				var eu, ek error
				tu := e.trips.during(func() { pu, eu = e.svc.Verify(t.Context(), from(tt.unknown, unknownAddr)) })
				tk := e.trips.during(func() { pk, ek = e.svc.Verify(t.Context(), from(tt.known, knownAddr)) })
				unknown, known = append(unknown, outcome(pu, eu)), append(known, outcome(pk, ek))
				if core.KindOf(eu) != core.Unauthorized || core.KindOf(ek) != core.Unauthorized {
					t.Fatalf("try %d: unknown %s, known %s; want 401 both", try, outcome(pu, eu), outcome(pk, ek))
				}
				if try == 1 {
					continue // the known key's owner is looked up once, then remembered
				}
				want := slices.Sorted(slices.Values(append(slices.Clone(tk), tt.extra...)))
				if d := cmp.Diff(want, tu); d != "" {
					t.Errorf("try %d: round trips of the unknown name (-known's plus lookups +got):\n%s", try, d)
				}
			}
			if d := cmp.Diff(known, unknown); d != "" {
				t.Errorf("answers (-known +unknown):\n%s", d)
			}
			// The unknown name's lookups run beside its read, not after it: one
			// round trip's time, as the known name's read.
			if !e.trips.together(tt.together, func() { _, _ = e.svc.Verify(t.Context(), from(tt.unknown, unknownAddr)) }) {
				t.Errorf("the unknown name's first %d round trips were not sent at once", tt.together)
			}
			if !strings.Contains(known[4], "retry=0s") || strings.Contains(known[5], "retry=0s") {
				t.Errorf("tries 5 and 6 of 5 a minute: %q, %q; want the 6th throttled", known[4], known[5])
			}
		})
	}
}

// TestVerifyPerAddressCap: every failed key, jwt and Basic attempt from one
// address counts against one cap, whatever it named; over it, every attempt
// from that address, a right one too, is 401 with Retry-After, and other
// addresses are not affected. Successes and token failures do not count.
func TestVerifyPerAddressCap(t *testing.T) {
	e := newSvcEnv(t, svcOptions{policy: func(p *core.Policy) {
		p.VerifyFailures = core.Rate{Count: 20, Per: time.Minute}
		p.VerifyFailuresPerAddress = core.Rate{Count: 60, Per: time.Minute}
	}})
	f := newVerifyFixture(e)
	verify := func(p core.Presented, addr string) (core.Principal, error) {
		return e.svc.Verify(t.Context(), from(p, addr))
	}
	// firstThrottled runs n attempts and returns the 1-based number of the first
	// answered with Retry-After (0: none), checking that all are refused.
	firstThrottled := func(n int, addr string, p func(i int) core.Presented) int {
		t.Helper()
		first := 0
		for i := range n {
			pr, err := verify(p(i), addr)
			if core.KindOf(err) != core.Unauthorized {
				t.Fatalf("attempt %d: %s, want 401", i+1, outcome(pr, err))
			}
			if first == 0 && core.RetryAfterOf(err) > 0 {
				first = i + 1
			} else if first != 0 && core.RetryAfterOf(err) == 0 {
				t.Fatalf("attempt %d: no Retry-After after attempt %d had one", i+1, first)
			}
		}
		return first
	}
	mustThrottle := func(what string, p core.Presented, addr string) {
		t.Helper()
		if pr, err := verify(p, addr); core.KindOf(err) != core.Unauthorized || core.RetryAfterOf(err) <= 0 {
			t.Errorf("%s from a capped address: %s, want 401 with Retry-After", what, outcome(pr, err))
		}
	}
	mustPass := func(what string, p core.Presented, addr string) {
		t.Helper()
		if pr, err := verify(p, addr); err != nil || pr.ConsumerID == "" {
			t.Errorf("%s from %s: %s, want a success", what, addr, outcome(pr, err))
		}
	}

	t.Run("200 distinct key ids", func(t *testing.T) {
		got := firstThrottled(200, "192.0.2.10", func(i int) core.Presented {
			return core.Presented{Scheme: core.SchemeAPIKey, ID: fmt.Sprintf("guess-%d", i), Secret: "wrong"}
		})
		if got != 61 {
			t.Errorf("first Retry-After at attempt %d, want 61", got)
		}
		mustThrottle("the right key", f.key, "192.0.2.10")
		mustPass("the right key", f.key, "192.0.2.11")
	})
	t.Run("100 Basic guesses over 10 users", func(t *testing.T) {
		for i := range 10 {
			name := fmt.Sprintf("user%d", i)
			e.user(name)
			e.cred(name, "basic-auth", core.Fields{"password": vicPassword})
		}
		got := firstThrottled(100, "192.0.2.20", func(i int) core.Presented {
			return core.Presented{Scheme: core.SchemeBasic, ID: fmt.Sprintf("user%d", i%10), Secret: fmt.Sprintf("guess %d guess", i)}
		})
		if got != 61 {
			t.Errorf("first Retry-After at attempt %d, want 61", got)
		}
		mustThrottle("a right password", core.Presented{Scheme: core.SchemeBasic, ID: "user0", Secret: vicPassword}, "192.0.2.20")
		mustPass("a right password", core.Presented{Scheme: core.SchemeBasic, ID: "user0", Secret: vicPassword}, "192.0.2.21")
	})
	t.Run("schemes share the cap", func(t *testing.T) {
		wrongJWT := signJWT(t, "vic-jwt", "not-the-secret-not-the-secret-0123")
		got := firstThrottled(61, "192.0.2.30", func(i int) core.Presented {
			switch i % 3 {
			case 0:
				return core.Presented{Scheme: core.SchemeAPIKey, ID: fmt.Sprintf("k%d", i), Secret: "wrong"}
			case 1:
				return core.Presented{Scheme: core.SchemeBearer, Secret: wrongJWT}
			}
			return core.Presented{Scheme: core.SchemeBasic, ID: fmt.Sprintf("u%d", i), Secret: "wrong password"}
		})
		if got != 61 {
			t.Errorf("first Retry-After at attempt %d, want 61", got)
		}
		mustThrottle("a right jwt", f.jwt, "192.0.2.30")
	})
	t.Run("successes and tokens do not count", func(t *testing.T) {
		for range 100 {
			mustPass("the right key", f.key, "192.0.2.40")
		}
		for range 100 {
			if _, err := verify(core.Presented{Scheme: core.SchemeBearer, Secret: core.NewToken(core.PrefixSession, f.vic.ID)}, "192.0.2.40"); core.RetryAfterOf(err) > 0 {
				t.Fatal("a session token failure was throttled")
			}
		}
		got := firstThrottled(61, "192.0.2.40", func(i int) core.Presented {
			return core.Presented{Scheme: core.SchemeAPIKey, ID: fmt.Sprintf("guess-%d", i), Secret: "wrong"}
		})
		if got != 61 {
			t.Errorf("after 100 successes and 100 token failures, first Retry-After at failure %d, want 61", got)
		}
	})
	t.Run("the window passes", func(t *testing.T) {
		mustThrottle("the right key", f.key, "192.0.2.10")
		e.mr.SetTime(time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC))
		mustPass("the right key, five minutes on,", f.key, "192.0.2.10")
	})
}

// TestVerifyBasicThrottledCostsNoHash: a throttled Basic attempt, known name or
// not, is refused before any password check, so a right password there fails
// like a wrong one.
func TestVerifyBasicThrottledCostsNoHash(t *testing.T) {
	e := newSvcEnv(t, svcOptions{policy: func(p *core.Policy) {
		p.VerifyFailures = core.Rate{Count: 3, Per: time.Minute}
	}})
	newVerifyFixture(e)
	for range 3 {
		_, _ = e.svc.Verify(t.Context(), from(core.Presented{Scheme: core.SchemeBasic, ID: "vic", Secret: "wrong password"}, "192.0.2.50"))
	}
	_, right := e.svc.Verify(t.Context(), from(core.Presented{Scheme: core.SchemeBasic, ID: "vic", Secret: vicPassword}, "192.0.2.50"))
	_, wrong := e.svc.Verify(t.Context(), from(core.Presented{Scheme: core.SchemeBasic, ID: "vic", Secret: "wrong password"}, "192.0.2.50"))
	if outcome(core.Principal{}, right) != outcome(core.Principal{}, wrong) || core.RetryAfterOf(right) <= 0 {
		t.Errorf("throttled: right password %s, wrong one %s; want the same 401 with Retry-After", outcome(core.Principal{}, right), outcome(core.Principal{}, wrong))
	}
}
