package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

func TestAllowEachMiniredis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	testAllowEach(t, &redis.UniversalOptions{Addrs: []string{m.Addr()}})
}

func TestAllowEachRedisServer(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	opts, err := redisstore.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	testAllowEach(t, opts)
}

func TestAllowEachRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	t.Parallel()
	c := redistest.StartCluster(t)
	opts, err := redisstore.ParseURL(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	testAllowEach(t, opts)
}

// testAllowEach: AllowEach counts against several keys in one round trip, each
// at its own rate; a key over its rate counts nothing and says how long to wait;
// its state is the one Allow and ReadAuth's Throttles read and write.
func testAllowEach(t *testing.T, opts *redis.UniversalOptions) {
	ctx := t.Context()
	client := redisstore.NewClient(opts)
	trips := &tripCounter{}
	client.AddHook(redistest.OnSend(trips.add))
	defer client.Close()
	prefix := newPrefix()
	s := redisstore.New(client, loaded(redisstore.Options{Prefix: prefix}))
	l := s.Limiter()
	three := core.Rate{Count: 3, Per: time.Minute}
	five := core.Rate{Count: 5, Per: time.Minute}
	ts := []core.Throttle{{Key: "verify:k|a", Rate: three}, {Key: "verify:addr:a", Rate: five}}
	var over []time.Duration // each's second answer
	each := func(ts []core.Throttle) []time.Duration {
		t.Helper()
		w, o, err := l.AllowEach(ctx, ts, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(w) != len(ts) || len(o) != len(ts) {
			t.Fatalf("AllowEach answered %d waits and %d overs for %d throttles", len(w), len(o), len(ts))
		}
		over = o
		return w
	}
	if w := each(ts); w[0] != 0 || w[1] != 0 || over[0] != 0 || over[1] != 0 { // loads the script
		t.Fatalf("first event refused or over: %v, %v", w, over)
	}
	trips.reset()
	for i := range 2 {
		if w := each(ts); w[0] != 0 || w[1] != 0 {
			t.Fatalf("event %d of 3 a minute refused: %v", i+2, w)
		}
	}
	if n, _ := trips.get(); n != 2 {
		t.Errorf("2 calls of AllowEach on 2 keys took %d round trips, want 2", n)
	}
	// The 3rd used 3 a minute up: one more fits after a third of a minute at
	// most; 3 of 5 leave room.
	if over[0] <= 0 || over[0] > 20*time.Second || over[1] != 0 {
		t.Errorf("after the 3rd event: over %v; want the first key over its rate for 20 s at most, not the second", over)
	}
	// The 4th: over 3 a minute (nothing counted), within 5 a minute (counted).
	w := each(ts)
	if w[0] <= 0 || w[0] > time.Minute || w[1] != 0 {
		t.Fatalf("4th event: waits %v; want the first key refused within a minute, the second counted", w)
	}
	if over[0] != w[0] || over[1] != 0 {
		t.Errorf("4th event: over %v, want the first key's wait %v and 0", over, w[0])
	}
	// ReadAuth's Throttles and Allow see the same state.
	u := core.User{ID: core.NewID(), Username: "each", IsActive: true, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	rec, err := s.ReadAuth(ctx, core.AuthQuery{UserID: u.ID, Throttles: ts})
	if err != nil || rec.RetryAfter <= 0 {
		t.Errorf("ReadAuth's Throttles over the first key's rate: RetryAfter %v, %v", rec.RetryAfter, err)
	}
	if rec, err := s.ReadAuth(ctx, core.AuthQuery{UserID: u.ID, Throttles: ts[1:]}); err != nil || rec.RetryAfter != 0 {
		t.Errorf("ReadAuth's Throttles on the second key only (4 of 5): RetryAfter %v, %v", rec.RetryAfter, err)
	}
	if ok, _, err := l.Allow(ctx, ts[1].Key, five, 0); !ok || err != nil {
		t.Errorf("Allow asking on 4 of 5: %v, %v", ok, err)
	}
	if ok, _, err := l.Allow(ctx, ts[1].Key, five, 1); !ok || err != nil { // the 5th, counted by Allow
		t.Errorf("Allow on the 5th of 5: %v, %v", ok, err)
	}
	if w := each(ts[1:]); w[0] <= 0 {
		t.Errorf("AllowEach after 5 of 5 (4 by AllowEach, 1 by Allow): wait %v, want refused", w[0])
	}
	// Allow's count is AllowEach's: 3 by Allow on a fresh key leave none.
	if ok, _, err := l.Allow(ctx, "fresh", three, 3); !ok || err != nil {
		t.Fatalf("Allow of 3 of 3: %v, %v", ok, err)
	}
	if w := each([]core.Throttle{{Key: "fresh", Rate: three}}); w[0] <= 0 {
		t.Errorf("AllowEach after Allow used the rate: wait %v, want refused", w[0])
	}
	if w, _, err := l.AllowEach(ctx, nil, 1); err != nil || len(w) != 0 {
		t.Errorf("AllowEach of nothing: %v, %v", w, err)
	}
	for _, bad := range []struct {
		ts []core.Throttle
		n  int
	}{{[]core.Throttle{{Key: "x", Rate: core.Rate{}}}, 1}, {[]core.Throttle{{Key: "x", Rate: three}}, 0}} {
		if _, _, err := l.AllowEach(ctx, bad.ts, bad.n); core.KindOf(err) != core.Invalid {
			t.Errorf("AllowEach(%v, %d) = %v, want Invalid", bad.ts, bad.n, err)
		}
	}
	// After a SCRIPT FLUSH (a restart, a failover) it still counts, once.
	admin := redisstore.NewClient(opts)
	defer admin.Close()
	flush := func(ctx context.Context, c redis.Cmdable) error { return c.ScriptFlush(ctx).Err() }
	if cc, ok := admin.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return flush(ctx, c) })
	} else {
		err = flush(ctx, admin)
	}
	if err != nil {
		t.Fatal(err)
	}
	k := []core.Throttle{{Key: "flushed", Rate: core.Rate{Count: 2, Per: time.Minute}}}
	if w := each(k); w[0] != 0 {
		t.Fatalf("first event after SCRIPT FLUSH refused: %v", w)
	}
	if w := each(k); w[0] != 0 {
		t.Fatalf("second of 2 after SCRIPT FLUSH refused (counted twice?): %v", w)
	}
	if w := each(k); w[0] <= 0 {
		t.Fatalf("third of 2 after SCRIPT FLUSH allowed: %v", w)
	}
}

// TestLimiterRemaining: the budget left shrinks with each event counted,
// reads nothing into the key, and is 0 once the rate is used.
func TestLimiterRemaining(t *testing.T) {
	m := miniredis.RunT(t)
	m.SetTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	client := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{m.Addr()}})
	t.Cleanup(func() { client.Close() })
	l := redisstore.NewLimiter(client, "r:")
	rate := core.Rate{Count: 3, Per: time.Minute}
	ctx := t.Context()
	for want := 3; want >= 0; want-- {
		left, err := l.Remaining(ctx, "k", rate)
		if err != nil || left != want {
			t.Fatalf("remaining %d (%v), want %d", left, err, want)
		}
		if want > 0 {
			if ok, _, err := l.Allow(ctx, "k", rate, 1); !ok || err != nil {
				t.Fatalf("event %d refused: %v", 4-want, err)
			}
		}
	}
	if ok, _, _ := l.Allow(ctx, "k", rate, 1); ok {
		t.Error("a fourth event fit a rate of 3")
	}
}
