package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/rs/zerolog"
)

// clockTick is how often the embedded Redis's TTLs are advanced.
const clockTick = time.Second

// startEmbeddedRedis starts an in-process miniredis on a free loopback port, for
// running without a Redis server, and returns its redis:// URL.
//
// miniredis only moves TTLs when told to, so a goroutine advances them every
// second, by the time actually elapsed, until ctx ends or stop is called. (Its
// ClockTTL mode would do it on every command, but sorts every key each time.)
// stop closes the server; call it after the last client is done, since ctx ending
// does not close it: in-flight requests may still drain.
func startEmbeddedRedis(ctx context.Context, log zerolog.Logger) (url string, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, fmt.Errorf("embedded redis: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(clockTick)
		defer t.Stop()
		advanceClock(ctx, m, t.C, time.Now())
	}()
	url = "redis://" + m.Addr()
	log.Warn().Str("redis", url).Msg("no redis.url configured: using an embedded in-memory Redis; " +
		"ALL DATA IS LOST WHEN THE PROCESS STOPS (set GATEHOUSE_REDIS_URL to keep it)")
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			m.Close()
		})
	}
	return url, stop, nil
}

// advanceClock moves m's TTLs forward, at each tick, by the time elapsed since
// the previous one (since last, at first), until ctx ends. Measuring the
// elapsed time keeps TTLs true to the wall clock when ticks are late or dropped
// under load.
func advanceClock(ctx context.Context, m *miniredis.Miniredis, ticks <-chan time.Time, last time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticks:
			m.FastForward(now.Sub(last))
			last = now
		}
	}
}
