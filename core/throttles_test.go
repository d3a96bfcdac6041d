package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// TestVerifyThrottlesThroughTheFeed: two services on one Redis, each following
// the change feed. Once a service has followed it for longer than the
// throttles' grace, its verifications read no throttle from Redis. Failures
// counted on one lock the key out on the other too, within a second, even
// with the right secret (401 with Retry-After), and a service that does not
// follow the feed reads the throttles from Redis and refuses at once.
func TestVerifyThrottlesThroughTheFeed(t *testing.T) {
	ctx := t.Context()
	// 3 failures per 3 s: over the rate for up to a second after the third,
	// so the grace after subscribing is 2 s.
	policy := func(p *core.Policy) {
		p.VerifyFailures = core.Rate{Count: 3, Per: 3 * time.Second}
		p.VerifyFailuresPerAddress = core.Rate{Count: 1000, Per: time.Minute}
	}
	a := newSvcEnv(t, svcOptions{follow: true, policy: policy})
	f := newVerifyFixture(a)
	second := func(followed bool) (*core.Service, *tripLog) {
		client := redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{a.mr.Addr()}})
		trips := &tripLog{}
		client.AddHook(redistest.OnSend(trips.add))
		t.Cleanup(func() { client.Close() })
		p := core.DefaultPolicy()
		policy(&p)
		store := redisstore.New(client, redisstore.Options{Prefix: "h:", ReadTimeout: redistest.StoreTimeout, WriteTimeout: redistest.StoreTimeout})
		svc := core.NewService(store, core.Options{
			Hasher: core.NewHasher(core.TestArgon2, 4), Limiter: store.Limiter(), Policy: p,
		})
		if followed {
			follow(t, svc)
		}
		return svc, trips
	}
	b, bTrips := second(true)
	alone, _ := second(false)
	if b.ThrottlesFollowed() {
		t.Error("the throttles were taken from the set right after subscribing, before its grace")
	}
	waitFor(t, "the throttles known on a", func() bool { return a.svc.ThrottlesFollowed() })
	waitFor(t, "the throttles known on b", func() bool { return b.ThrottlesFollowed() })

	right := from(f.key, "192.0.2.7")
	if _, err := b.Verify(ctx, right); err != nil {
		t.Fatal(err)
	}
	if trips := strings.Join(bTrips.during(func() { _, _ = b.Verify(ctx, right) }), " "); trips != "mget" {
		t.Errorf("a verification on b, its throttles known: round trips %q, want one MGET (no throttle read)", trips)
	}
	wrong := right
	wrong.Secret = "not the secret"
	for i := range 3 {
		if _, err := a.svc.Verify(ctx, wrong); core.KindOf(err) != core.Unauthorized || core.RetryAfterOf(err) != 0 {
			t.Fatalf("wrong secret %d on a: %v, want 401 without Retry-After", i+1, err)
		}
	}
	refused := func(svc *core.Service) bool {
		_, err := svc.Verify(ctx, right)
		return core.KindOf(err) == core.Unauthorized && core.RetryAfterOf(err) > 0
	}
	if !refused(a.svc) {
		t.Error("the right secret on a after 3 failures: not refused with Retry-After")
	}
	start := time.Now()
	for !refused(b) {
		if time.Since(start) > time.Second {
			t.Fatal("the right secret on b: still not refused 1 s after the failures on a")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !refused(alone) {
		t.Error("the right secret on a service not following the feed: not refused at once")
	}
	// Another address is not concerned.
	if _, err := b.Verify(ctx, from(f.key, "192.0.2.8")); err != nil {
		t.Errorf("the right secret on b from another address: %v", err)
	}
}
