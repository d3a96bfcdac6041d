package redisstore_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// recordingSink records what a change feed reports.
type recordingSink struct {
	mu      sync.Mutex
	changed []string
	live    bool
}

func (r *recordingSink) Changed(uid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed = append(r.changed, uid)
}

func (r *recordingSink) Following(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live = ok
}

// Throttled records "!<key> <retryAfter>": the sink is a ThrottleSink.
func (r *recordingSink) Throttled(key string, retryAfter time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed = append(r.changed, "!"+key+" "+retryAfter.String())
}

func (r *recordingSink) state() ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changed), r.live
}

// waitUntil polls cond for 5 s at most.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s, still not %s", what)
		}
	}
}

func TestChangeFeedMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	testChangeFeed(t, &redis.UniversalOptions{Addrs: []string{m.Addr()}})
}

func TestChangeFeedRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	opts, err := redisstore.ParseURL(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	testChangeFeed(t, opts)
}

// testChangeFeed: a store's own writes reach its followers before the write
// returns, and only then (its echo through Redis is skipped); another
// store's writes reach them through Redis; a scope registry change says ""
// (everything); a write that changed nothing (NotFound) says nothing; a
// throttle over its rate (Throttled) reaches the other stores' ThrottleSinks
// with its wait, in milliseconds rounded up.
func testChangeFeed(t *testing.T, opts *redis.UniversalOptions) {
	prefix := newPrefix()
	a := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	b := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	t.Cleanup(func() { a.Close(); b.Close() })
	ctx := t.Context()
	sink := &recordingSink{}
	followCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.FollowChanges(followCtx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("FollowChanges did not return after its context ended")
		}
	})
	waitUntil(t, "subscribed", func() bool { _, live := sink.state(); return live })

	now := time.Now().UTC().Truncate(time.Millisecond)
	u := core.User{ID: core.NewID(), Username: "fay", IsActive: true, CreatedAt: now, UpdatedAt: now}
	if err := b.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	// a's own write: told before it returns.
	if err := a.SetPassword(ctx, u.ID, "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"); err != nil {
		t.Fatal(err)
	}
	if got, _ := sink.state(); !slices.Equal(got, []string{u.ID}) {
		t.Fatalf("right after a's own write: %q, want [%s]", got, u.ID)
	}
	// A write that found nothing changes nothing.
	if _, err := a.UpdateUser(ctx, core.NewID(), func(*core.User) error { return nil }); core.KindOf(err) != core.NotFound {
		t.Fatalf("update of a missing user: %v", err)
	}
	// b's writes come through Redis (in any order on a Cluster, whose nodes
	// relay PUBLISH among themselves); a's echo, sent first, is not told.
	if _, err := b.UpdateUser(ctx, u.ID, func(x *core.User) error { x.IsActive = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateScopes(ctx, []core.Scope{{Name: "read"}}); err != nil {
		t.Fatal(err)
	}
	a.Throttled(ctx, "verify:not-told|a", time.Second) // a's own: not told
	b.Throttled(ctx, "verify:key-auth:k|203.0.113.9", 2500*time.Microsecond)
	want := []string{"", "!verify:key-auth:k|203.0.113.9 3ms", u.ID, u.ID}
	waitUntil(t, "told of b's writes", func() bool { got, _ := sink.state(); return len(got) >= len(want) })
	time.Sleep(50 * time.Millisecond) // room for a stray message to show
	if got, _ := sink.state(); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("changes told: %q, want %q", got, want)
	}
}
