package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
	"github.com/gatehouse/gatehouse/core/storetest"
)

func TestMiniredis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	run(t, &redis.UniversalOptions{Addrs: []string{m.Addr()}})
}

func TestRedisServer(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	opts, err := redisstore.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	run(t, opts)
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	opts, err := redisstore.ParseURL(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := redisstore.NewClient(opts)
	defer client.Close()
	if _, ok := client.(*redis.ClusterClient); !ok {
		t.Fatalf("NewClient(%s) is not a ClusterClient", c.URL)
	}
	run(t, opts)
}

// prefixes numbers the stores of one test binary, isolating them by key prefix.
var prefixes atomic.Int64

// run runs the conformance suite on one Redis, each store under its own prefix,
// and fails on any CROSSSLOT error, even one a cleanup path swallowed.
func run(t *testing.T, opts *redis.UniversalOptions) {
	t0 := time.Now()
	watch := &errorWatch{t: t}
	admin := redisstore.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	var mu sync.Mutex
	prefixOf := map[core.Store]string{}
	storePrefix := func(t *testing.T, s core.Store) string {
		mu.Lock()
		defer mu.Unlock()
		p, ok := prefixOf[s]
		if !ok {
			t.Fatal("harness: unknown store")
		}
		return p
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, clock core.Clock) core.Store {
			prefix := "t" + strconv.FormatInt(prefixes.Add(1), 10) + ":"
			client := redisstore.NewClient(opts)
			client.AddHook(watch)
			s := redisstore.New(client, redisstore.Options{Prefix: prefix, Clock: clock})
			t.Cleanup(func() { s.Close() })
			mu.Lock()
			prefixOf[s] = prefix
			mu.Unlock()
			return s
		},
		Keys: func(t *testing.T, s core.Store) []string {
			prefix := storePrefix(t, s)
			var mu sync.Mutex
			var keys []string
			scan := func(ctx context.Context, c redis.Cmdable) error {
				iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
				for iter.Next(ctx) {
					mu.Lock()
					keys = append(keys, strings.TrimPrefix(iter.Val(), prefix))
					mu.Unlock()
				}
				return iter.Err()
			}
			var err error
			if cc, ok := admin.(*redis.ClusterClient); ok {
				err = cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
			} else {
				err = scan(t.Context(), admin)
			}
			if err != nil {
				t.Fatal(err)
			}
			return keys
		},
		LeaveClaim: func(t *testing.T, s core.Store, c storetest.Claim) {
			key := storePrefix(t, s) + "claim:" + c.Kind + ":" + c.Name
			val := c.Owner + "|" + strconv.FormatInt(c.At.UnixMicro(), 10)
			if err := admin.Set(t.Context(), key, val, 0).Err(); err != nil {
				t.Fatal(err)
			}
		},
		Interrupt: func(t *testing.T, s core.Store) { redisstore.InterruptNext(s.(*redisstore.Store)) },
	})
	t.Cleanup(func() { t.Logf("TIMING suite %v", time.Since(t0)) })
}

// errorWatch is a go-redis hook that fails the test on any CROSSSLOT error.
type errorWatch struct{ t *testing.T }

func (w *errorWatch) check(cmds ...redis.Cmder) {
	for _, c := range cmds {
		if err := c.Err(); err != nil && strings.Contains(err.Error(), "CROSSSLOT") {
			w.t.Errorf("CROSSSLOT error: %v in %v", err, c.Args())
		}
	}
}

func (w *errorWatch) DialHook(next redis.DialHook) redis.DialHook { return next }

func (w *errorWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		w.check(cmd)
		return err
	}
}

func (w *errorWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		w.check(cmds...)
		return err
	}
}
