package core_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// cacheOn is the verification cache as configured by default.
var cacheOn = core.VerifyCacheOptions{Size: 1000, TTL: 3 * time.Second, NegativeTTL: time.Second}

// verifyNoTrip verifies p and fails unless it was answered without a Redis
// round trip.
func (e *svcEnv) verifyNoTrip(p core.Presented) (core.Principal, error) {
	e.t.Helper()
	var pr core.Principal
	var err error
	if trips := e.trips.during(func() { pr, err = e.svc.Verify(e.t.Context(), p) }); len(trips) != 0 {
		e.t.Fatalf("a cached verification made round trips %v", trips)
	}
	return pr, err
}

// TestVerifyCacheHit: a verification already answered is answered again
// without a Redis round trip, for every credential type, required scopes
// checked on the hit too; with the cache off, each verification reads Redis.
func TestVerifyCacheHit(t *testing.T) {
	e := newSvcEnv(t, svcOptions{verifyCache: cacheOn})
	f := newVerifyFixture(e)
	for name, p := range map[string]core.Presented{"key": f.key, "app key": f.appKey, "jwt": f.jwt, "basic": f.basic, "app basic": f.appBasic, "session": f.session} {
		want, err := e.svc.Verify(t.Context(), p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := e.verifyNoTrip(p)
		if err != nil || got.ConsumerID != want.ConsumerID || got.Kind != want.Kind {
			t.Errorf("%s, cached: %+v %v, want %+v", name, got, err, want)
		}
		p.RequiredScopes = []string{"admin"}
		if _, err := e.verifyNoTrip(p); core.KindOf(err) != core.Forbidden {
			t.Errorf("%s, cached, requiring a scope it lacks: %v, want Forbidden", name, err)
		}
	}
	// A wrong secret is another presented credential: never a hit.
	wrong := f.key
	wrong.Secret += "x"
	if trips := e.trips.during(func() { _, _ = e.svc.Verify(t.Context(), wrong) }); len(trips) == 0 {
		t.Error("a wrong secret was answered from the cache")
	}

	off := newSvcEnv(t, svcOptions{})
	g := newVerifyFixture(off)
	for range 2 {
		if trips := off.trips.during(func() { _, _ = off.svc.Verify(t.Context(), g.key) }); len(trips) == 0 {
			t.Error("with the cache off, a verification made no round trip")
		}
	}
}

// TestVerifyCacheInvalidatedAtOnce: every write that changes a verification's
// answer is seen by the next verification on the node that wrote it, with no
// wait, though the answer before it was cached.
func TestVerifyCacheInvalidatedAtOnce(t *testing.T) {
	type setup struct {
		e *svcEnv
		f verifyFixture
	}
	ctx := context.Background()
	cases := []struct {
		name    string
		present func(s setup) core.Presented
		write   func(s setup) error
		want    core.Kind
	}{
		{"user deactivated", func(s setup) core.Presented { return s.f.key },
			func(s setup) error { _, err := s.e.svc.SetUserStatus(ctx, "vic", false); return err }, core.Forbidden},
		{"user deleted", func(s setup) core.Presented { return s.f.key },
			func(s setup) error { return s.e.svc.DeleteUser(ctx, "vic") }, core.Unauthorized},
		{"force logout", func(s setup) core.Presented { return s.f.session },
			func(s setup) error { return s.e.svc.EndSessions(ctx, "vic") }, core.Unauthorized},
		{"session revoked", func(s setup) core.Presented { return s.f.session },
			func(s setup) error { return s.e.svc.RevokeToken(ctx, s.f.session.Secret) }, core.Unauthorized},
		{"password changed: sessions end", func(s setup) core.Presented { return s.f.session },
			func(s setup) error { _, err := s.e.svc.SetPassword(ctx, "vic", "a new password entirely"); return err }, core.Unauthorized},
		{"credential deactivated", func(s setup) core.Presented { return s.f.key },
			func(s setup) error {
				_, err := s.e.svc.SetCredentialStatus(ctx, core.KeyAuth, "vic-key", false)
				return err
			}, core.Forbidden},
		{"credential deleted", func(s setup) core.Presented { return s.f.jwt },
			func(s setup) error { return s.e.svc.DeleteCredential(ctx, core.JWT, "vic-jwt") }, core.Unauthorized},
		{"credential loses a scope", func(s setup) core.Presented { p := s.f.key; p.RequiredScopes = []string{"read"}; return p },
			func(s setup) error {
				_, err := s.e.svc.SetCredentialScopes(ctx, core.KeyAuth, "vic-key", nil)
				return err
			}, core.Forbidden},
		{"scope unregistered", func(s setup) core.Presented { p := s.f.key; p.RequiredScopes = []string{"read"}; return p },
			func(s setup) error { return s.e.svc.DeleteScope(ctx, "read") }, core.Forbidden},
		{"app deactivated", func(s setup) core.Presented { return s.f.appBasic },
			func(s setup) error { _, err := s.e.svc.SetAppStatus(ctx, s.f.app.ID, false); return err }, core.Forbidden},
		{"app deleted", func(s setup) core.Presented { return s.f.appKey },
			func(s setup) error { return s.e.svc.DeleteApp(ctx, s.f.app.ID) }, core.Unauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newSvcEnv(t, svcOptions{verifyCache: cacheOn})
			s := setup{e, newVerifyFixture(e)}
			if _, err := e.svc.CreateScopes(ctx, []string{"read"}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.SetCredentialScopes(ctx, core.KeyAuth, "vic-key", []string{"read"}); err != nil {
				t.Fatal(err)
			}
			p := c.present(s)
			if _, err := e.svc.Verify(ctx, p); err != nil {
				t.Fatal(err)
			}
			if _, err := e.verifyNoTrip(p); err != nil {
				t.Fatal(err)
			}
			if err := c.write(s); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Verify(ctx, p); core.KindOf(err) != c.want {
				t.Errorf("right after the write: %v, want %v", err, c.want)
			}
		})
	}

	t.Run("user reactivated after a cached refusal", func(t *testing.T) {
		e := newSvcEnv(t, svcOptions{verifyCache: cacheOn})
		f := newVerifyFixture(e)
		if _, err := e.svc.SetUserStatus(ctx, "vic", false); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := e.svc.Verify(ctx, f.key); core.KindOf(err) != core.Forbidden {
				t.Fatalf("deactivated: %v", err)
			}
		}
		if _, err := e.svc.SetUserStatus(ctx, "vic", true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Verify(ctx, f.key); err != nil {
			t.Errorf("right after reactivation: %v", err)
		}
	})
}

// TestVerifyCacheOtherNode: a write made by another process (another store on
// the same Redis) reaches this one through the subscription.
func TestVerifyCacheOtherNode(t *testing.T) {
	e := newSvcEnv(t, svcOptions{verifyCache: cacheOn})
	f := newVerifyFixture(e)
	other := redisstore.New(redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{e.mr.Addr()}}), redisstore.Options{Prefix: "h:"})
	t.Cleanup(func() { other.Close() })
	if _, err := e.svc.Verify(t.Context(), f.key); err != nil {
		t.Fatal(err)
	}
	if _, err := other.UpdateUser(t.Context(), f.vic.ID, func(u *core.User) error { u.IsActive = false; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "refused after the other node's deactivation", func() bool {
		_, err := e.svc.Verify(t.Context(), f.key)
		return core.KindOf(err) == core.Forbidden
	})
}

// TestVerifyCacheTTLs: an answer whose invalidation never came (here, a
// change written around the store) is kept no longer than its TTL: 1 s for
// a refusal, 3 s for a success.
func TestVerifyCacheTTLs(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newSvcEnv(t, svcOptions{verifyCache: cacheOn, now: clk.now})
	f := newVerifyFixture(e)
	setActive := func(active bool) { // behind the store's back: nothing is published
		t.Helper()
		key := "h:u:{" + f.vic.ID + "}"
		v, err := e.mr.Get(key)
		if err != nil {
			t.Fatal(err)
		}
		// The record's short form holds isActive only when false, as "a":false.
		from, to := `{`, `{"a":false,`
		if active {
			from, to = to, from
		}
		if !strings.Contains(v, from) {
			t.Fatalf("user record without %s: %s", from, v)
		}
		if err := e.mr.Set(key, strings.Replace(v, from, to, 1)); err != nil {
			t.Fatal(err)
		}
	}
	kind := func() core.Kind {
		_, err := e.svc.Verify(t.Context(), f.key)
		if err == nil {
			return core.Other
		}
		return core.KindOf(err)
	}

	setActive(false)
	if k := kind(); k != core.Forbidden {
		t.Fatalf("deactivated: %v", k)
	}
	setActive(true)
	clk.add(999 * time.Millisecond)
	if k := kind(); k != core.Forbidden {
		t.Errorf("a refusal 999 ms old: %v, want it still cached (Forbidden)", k)
	}
	clk.add(time.Millisecond)
	if k := kind(); k != core.Other {
		t.Errorf("a refusal 1 s old: %v, want it gone (success)", k)
	}
	setActive(false)
	clk.add(2999 * time.Millisecond)
	if k := kind(); k != core.Other {
		t.Errorf("a success 2.999 s old: %v, want it still cached", k)
	}
	clk.add(time.Millisecond)
	if k := kind(); k != core.Forbidden {
		t.Errorf("a success 3 s old: %v, want it gone (Forbidden)", k)
	}
}

// TestVerifyCacheKeepsNoSecret: the cache holds neither the presented secrets
// nor anything that is not a hash of them.
func TestVerifyCacheKeepsNoSecret(t *testing.T) {
	e := newSvcEnv(t, svcOptions{verifyCache: cacheOn})
	f := newVerifyFixture(e)
	ps := []core.Presented{f.key, f.jwt, f.basic, f.session}
	for _, p := range ps {
		if _, err := e.svc.Verify(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	dump := core.VerifyCacheDump(e.svc)
	if len(dump) != len(ps) {
		t.Fatalf("%d entries, want %d: %q", len(dump), len(ps), dump)
	}
	for _, entry := range dump {
		for _, p := range ps {
			tokenBody := p.Secret // a prefixed token's random part (gths_…); a jwt's "_" are base64url
			if strings.HasPrefix(p.Secret, "gth") {
				tokenBody = p.Secret[strings.Index(p.Secret, "_")+1:]
			}
			if strings.Contains(entry, p.Secret) || strings.Contains(entry, tokenBody) {
				t.Errorf("a cache entry holds a presented secret: %s", entry)
			}
		}
	}
}

// TestVerifyCacheWrongSecretCounts: failures are never cached: a wrong secret
// after a cached success is refused and counted each time, and a throttled
// key with a wrong secret keeps answering Retry-After.
func TestVerifyCacheWrongSecretCounts(t *testing.T) {
	e := newSvcEnv(t, svcOptions{verifyCache: cacheOn, policy: func(p *core.Policy) {
		p.VerifyFailures = core.Rate{Count: 3, Per: time.Minute}
	}})
	f := newVerifyFixture(e)
	if _, err := e.svc.Verify(t.Context(), f.key); err != nil {
		t.Fatal(err)
	}
	wrong := f.key
	wrong.Secret = "not-the-secret"
	var last error
	for range 5 {
		_, last = e.svc.Verify(t.Context(), wrong)
		if core.KindOf(last) != core.Unauthorized {
			t.Fatalf("wrong secret: %v", last)
		}
	}
	if core.RetryAfterOf(last) == 0 {
		t.Errorf("after 5 wrong secrets: %v, want Retry-After", last)
	}
}

// TestVerifyCacheLostSubscription: when Redis goes away the subscription is
// lost, the cache is emptied and bypassed (so /verify answers 503 rather
// than from memory), and once Redis is back and the subscription confirmed
// it is used again, starting empty.
func TestVerifyCacheLostSubscription(t *testing.T) {
	e := newSvcEnv(t, svcOptions{verifyCache: cacheOn})
	f := newVerifyFixture(e)
	if _, err := e.svc.Verify(t.Context(), f.key); err != nil {
		t.Fatal(err)
	}
	if _, err := e.verifyNoTrip(f.key); err != nil {
		t.Fatal(err)
	}
	e.mr.Close()
	waitFor(t, "the cache out of use", func() bool { return !e.svc.VerifyCacheLive() })
	if n := len(core.VerifyCacheDump(e.svc)); n != 0 {
		t.Errorf("%d entries kept after the subscription was lost", n)
	}
	if _, err := e.svc.Verify(t.Context(), f.key); core.KindOf(err) != core.Unavailable {
		t.Errorf("Redis down: %v, want Unavailable (no answer from the cache)", err)
	}
	restart(t, e.mr)
	waitFor(t, "the cache in use again", func() bool { return e.svc.VerifyCacheLive() })
	if trips := e.trips.during(func() {
		if _, err := e.svc.Verify(t.Context(), f.key); err != nil {
			t.Error(err)
		}
	}); len(trips) == 0 {
		t.Error("the first verification after resubscribing made no round trip")
	}
	if _, err := e.verifyNoTrip(f.key); err != nil {
		t.Fatal(err)
	}
}

// restart starts a closed miniredis again on its address, with its data.
func restart(t *testing.T, mr *miniredis.Miniredis) {
	t.Helper()
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyRegistryCopy: while the store's changes are followed (the cache
// off here: the copy does not depend on it), a verification takes the scope
// and group registries from the process' copy, so its round trip reads no
// registry; a scope change on this node is seen by the next verification,
// one on another node within the feed's delay; with the subscription lost,
// every verification reads the registries again.
func TestVerifyRegistryCopy(t *testing.T) {
	ctx := t.Context()
	e := newSvcEnv(t, svcOptions{follow: true})
	f := newVerifyFixture(e)
	if _, err := e.svc.CreateScopes(ctx, []string{"read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetCredentialScopes(ctx, core.KeyAuth, "vic-key", []string{"read"}); err != nil {
		t.Fatal(err)
	}
	p := f.key
	p.RequiredScopes = []string{"read"}
	// readsRegistry verifies p, which must succeed (granted) or be
	// Forbidden, and says whether a registry was read.
	readsRegistry := func(granted bool) bool {
		t.Helper()
		var err error
		trips := e.trips.during(func() { _, err = e.svc.Verify(ctx, p) })
		if (err == nil) != granted || err != nil && core.KindOf(err) != core.Forbidden {
			t.Fatalf("verify: %v, want granted %v (else Forbidden)", err, granted)
		}
		return strings.Contains(strings.Join(trips, " "), "hgetall")
	}
	readsRegistry(true) // the first reads the registries into the copy
	if readsRegistry(true) {
		t.Error("the registries were read again while the copy was good")
	}
	if err := e.svc.DeleteScope(ctx, "read"); err != nil {
		t.Fatal(err)
	}
	readsRegistry(false) // at once on this node
	if _, err := e.svc.CreateScopes(ctx, []string{"read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetCredentialScopes(ctx, core.KeyAuth, "vic-key", []string{"read"}); err != nil {
		t.Fatal(err)
	}
	readsRegistry(true)

	other := redisstore.New(redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{e.mr.Addr()}}), redisstore.Options{Prefix: "h:"})
	t.Cleanup(func() { other.Close() })
	if err := other.DeleteScope(ctx, "read"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "refused after another node unregistered the scope", func() bool {
		_, err := e.svc.Verify(ctx, p)
		return core.KindOf(err) == core.Forbidden
	})

	e.mr.Close()
	waitFor(t, "the copy out of use", func() bool { return !e.svc.ChangesFollowed() })
	restart(t, e.mr)
	// Not followed yet, or just again: either way the registries are read.
	if !readsRegistry(false) {
		t.Error("the first verification after the subscription was lost did not read the registries")
	}
}

// heldReads counts ReadAuth calls and, while gate is set, holds each until
// it is closed.
type heldReads struct {
	core.Store
	g *gates
}

type gates struct {
	mu    sync.Mutex
	gate  chan struct{}
	reads int
}

func (s heldReads) ReadAuth(ctx context.Context, q core.AuthQuery) (core.AuthRecord, error) {
	s.g.mu.Lock()
	s.g.reads++
	gate := s.g.gate
	s.g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return s.Store.ReadAuth(ctx, q)
}

// FollowChanges is the wrapped store's change feed.
func (s heldReads) FollowChanges(ctx context.Context, sink core.ChangeSink) {
	s.Store.(core.ChangeFeed).FollowChanges(ctx, sink)
}

// hold makes the next reads wait; reset counts from 0.
func (g *gates) hold() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.reads = make(chan struct{}), 0
	return g.gate
}

func (g *gates) release(gate chan struct{}) {
	g.mu.Lock()
	g.gate = nil
	g.mu.Unlock()
	close(gate)
}

func (g *gates) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reads
}

// TestVerifyCacheCoalesces: verifications of one credential arriving while
// it is being read wait for that read's verdict instead of reading too, when
// it counted no failure; a wrong secret's waiters each read and count their
// own failure; a verification starting after a change does not wait for a
// read that began before it.
func TestVerifyCacheCoalesces(t *testing.T) {
	ctx := context.Background()
	g := &gates{}
	e := newSvcEnv(t, svcOptions{verifyCache: cacheOn, wrap: func(s core.Store) core.Store { return heldReads{Store: s, g: g} }})
	f := newVerifyFixture(e)
	// The key's owner located, its answer cached, then dropped by a change.
	if _, err := e.svc.Verify(ctx, f.key); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetCredentialScopes(ctx, core.KeyAuth, "vic-key", nil); err != nil {
		t.Fatal(err)
	}

	// run verifies p from n goroutines, the first one's read held until the
	// other n-1 wait for it (or have started their own reads: own), and
	// returns their errors.
	run := func(p core.Presented, n int, own bool) []error {
		t.Helper()
		gate := g.hold()
		errs := make([]error, n)
		var wg sync.WaitGroup
		wg.Go(func() { _, errs[0] = e.svc.Verify(ctx, p) })
		waitFor(t, "the first read under way", func() bool { return g.count() == 1 })
		for i := 1; i < n; i++ {
			wg.Go(func() { _, errs[i] = e.svc.Verify(ctx, p) })
		}
		waitFor(t, "the others waiting for it", func() bool { return core.VerifyWaiters(e.svc) == n-1 })
		g.release(gate)
		wg.Wait()
		return errs
	}
	for i, err := range run(f.key, 8, false) {
		if err != nil {
			t.Errorf("verification %d: %v", i, err)
		}
	}
	if got := g.count(); got != 1 {
		t.Errorf("8 verifications of one key at once: %d reads, want 1", got)
	}

	wrong := f.key
	wrong.Secret += "x"
	for i, err := range run(wrong, 4, false) {
		if core.KindOf(err) != core.Unauthorized {
			t.Errorf("wrong secret %d: %v, want Unauthorized", i, err)
		}
	}
	if got := g.count(); got != 4 {
		t.Errorf("4 verifications of a wrong secret at once: %d reads, want 4 (each counts its failure)", got)
	}

	// A change while a read is under way: a verification starting after it
	// reads for itself, and sees the change.
	if _, err := e.svc.SetCredentialScopes(ctx, core.KeyAuth, "vic-key", nil); err != nil { // drop the cached answer
		t.Fatal(err)
	}
	gate := g.hold()
	first := make(chan error, 1)
	go func() { _, err := e.svc.Verify(ctx, f.key); first <- err }()
	waitFor(t, "the first read under way", func() bool { return g.count() == 1 })
	if _, err := e.svc.SetUserStatus(ctx, f.vic.ID, false); err != nil {
		t.Fatal(err)
	}
	after := make(chan error, 1)
	go func() { _, err := e.svc.Verify(ctx, f.key); after <- err }()
	waitFor(t, "the later verification reading for itself", func() bool { return g.count() == 2 })
	if n := core.VerifyWaiters(e.svc); n != 0 {
		t.Errorf("%d verifications wait for a read older than a change", n)
	}
	g.release(gate)
	<-first
	if err := <-after; core.KindOf(err) != core.Forbidden {
		t.Errorf("after the deactivation: %v, want Forbidden", err)
	}
}

// TestVerifyOneRoundTrip: with the cache off (the change feed followed, so the
// registries come from the process' copy), a verification of each kind of
// valid credential, once its owner and its app are remembered, is one Redis
// round trip: an app's key too (its app is read with it). (An app's Basic
// name is looked up at every use: app names are rare at /verify.)
func TestVerifyOneRoundTrip(t *testing.T) {
	e := newSvcEnv(t, svcOptions{follow: true})
	f := newVerifyFixture(e)
	appByID := f.appBasic
	appByID.ID = f.app.ID
	for _, c := range []struct {
		name string
		p    core.Presented
	}{{"key", f.key}, {"app key", f.appKey}, {"jwt", f.jwt}, {"basic", f.basic}, {"app basic by id", appByID}, {"session", f.session}} {
		for try := 1; try <= 3; try++ {
			var err error
			trips := e.trips.during(func() { _, err = e.svc.Verify(t.Context(), c.p) })
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if try > 1 && len(trips) != 1 {
				t.Errorf("%s, try %d: round trips %v, want 1", c.name, try, trips)
			}
		}
	}
}
