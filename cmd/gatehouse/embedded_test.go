package main

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// TestAdvanceClock: each tick moves the TTLs by the time elapsed since the
// previous one, however late it comes.
func TestAdvanceClock(t *testing.T) {
	m := miniredis.RunT(t)
	m.Set("k", "v")
	m.SetTTL("k", 2*time.Second)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		advanceClock(ctx, m, ticks, start)
	}()
	defer func() { cancel(); <-done }()
	// tick delivers at and returns once it was applied: the unbuffered channel
	// takes the repeated tick (0 elapsed) only after the first one's work.
	tick := func(at time.Time) { ticks <- at; ticks <- at }

	tick(start.Add(time.Second))
	if !m.Exists("k") {
		t.Fatal("key gone after 1 s of its 2 s TTL")
	}
	tick(start.Add(1500 * time.Millisecond))
	if ttl := m.TTL("k"); ttl != 500*time.Millisecond {
		t.Errorf("TTL after 1.5 s: %v, want 500ms", ttl)
	}
	tick(start.Add(10 * time.Second)) // a late tick
	if m.Exists("k") {
		t.Error("key still there 10 s into its 2 s TTL")
	}
}

// TestEmbeddedRedisExpiresKeys: the embedded Redis's clock runs by itself.
func TestEmbeddedRedisExpiresKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a real 2 s TTL")
	}
	url, stop, err := startEmbeddedRedis(t.Context(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := t.Context()
	if err := rdb.Set(ctx, "k", "v", 2*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 4500*time.Millisecond {
		n, err := rdb.Exists(ctx, "k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if time.Since(start) < time.Second {
				t.Fatalf("key gone after %v, before its 2 s TTL could", time.Since(start))
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("key with a 2 s TTL still there after %v", time.Since(start))
}

func TestEmbeddedRedisStopIsIdempotent(t *testing.T) {
	_, stop, err := startEmbeddedRedis(t.Context(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop()
}
