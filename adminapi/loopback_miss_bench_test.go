package adminapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/internal/asynclog"
	"github.com/gatehouse/gatehouse/internal/bench"
)

// BenchmarkVerifyMissLoopback is BenchmarkVerifyLoopback for a /verify miss
// (the cache off: one Redis round trip per answer, in the steady state where
// the failure throttles come from the process): beside the HGETALL ceiling of
// make bench, its own go-redis client on the same redis-server, in the same
// process. The difference of their cpu-µs/op is what a miss costs over the
// ceiling's plain call. Real redis-server only.
func BenchmarkVerifyMissLoopback(b *testing.B) {
	e, client := benchEnvClient(b, core.VerifyCacheOptions{})
	if client == nil {
		b.Skip("redis-server not installed")
	}
	following(b, e)
	f := newVerifyFixture(e)
	aw := asynclog.New(io.Discard, asynclog.Options{})
	b.Cleanup(func() { aw.Close() })
	public := New(e.svc, Options{Log: zerolog.New(io.Discard).Level(zerolog.InfoLevel), AccessLog: aw}).Public()

	// The steady state: a verification sends its one command.
	req := httptest.NewRequest("GET", "/verify", nil)
	req.Header.Set("x-api-key", f.keyID+":"+f.keySecret)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		before := redisCommands(b, client)
		public.ServeHTTP(httptest.NewRecorder(), req)
		if redisCommands(b, client)-before-1 <= 1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("a verification still reads more than its record after 30 s")
		}
	}

	ctx := b.Context()
	if err := client.HSet(ctx, bench.CeilingKey, bench.CeilingRecord).Err(); err != nil {
		b.Fatal(err)
	}
	ceiling := redis.NewClient(&redis.Options{Addr: client.Options().Addr})
	b.Cleanup(func() { ceiling.Close() })
	for _, c := range []struct {
		name string
		h    http.Handler
		req  string
	}{
		{"hgetall", bench.HGETALLCeiling(ceiling), "GET /verify HTTP/1.1\r\nHost: bench\r\n\r\n"},
		{"key-auth-miss", public, "GET /verify HTTP/1.1\r\nHost: bench\r\nx-api-key: " + f.keyID + ":" + f.keySecret + "\r\n\r\n"},
	} {
		b.Run(c.name, func(b *testing.B) { loopback(b, c.h, c.req) })
	}
}
