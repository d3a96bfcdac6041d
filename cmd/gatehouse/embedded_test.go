package main

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

func TestEmbeddedRedisExpiresKeys(t *testing.T) {
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
