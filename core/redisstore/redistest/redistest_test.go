package redistest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

func TestStartServer(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := redistest.StartServer(t)
	t.Logf("server on %s started in %v", s.Addr, time.Since(start))
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", s.URL, err)
	}
	if opt.Addr != s.Addr {
		t.Errorf("ParseURL(%q).Addr = %q, want %q", s.URL, opt.Addr, s.Addr)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET k = %q, %v; want \"v\"", got, err)
	}
}

// TestStartServerParallel starts servers side by side, as parallel test packages do.
func TestStartServerParallel(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	var mu sync.Mutex
	t.Run("group", func(t *testing.T) {
		for i := range 4 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				s := redistest.StartServer(t)
				mu.Lock()
				defer mu.Unlock()
				if seen[s.Addr] {
					t.Errorf("two servers on %s", s.Addr)
				}
				seen[s.Addr] = true
			})
		}
	})
}

func TestStartCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	cl := redistest.StartCluster(t)
	t.Logf("cluster %s started in %v", cl.URL, time.Since(start))
	if len(cl.Addrs) != 3 {
		t.Fatalf("Addrs = %v, want 3 masters", cl.Addrs)
	}
	// redisstore rewrites redis+cluster:// to redis:// before ParseClusterURL.
	opt, err := redis.ParseClusterURL("redis://" + strings.TrimPrefix(cl.URL, "redis+cluster://"))
	if err != nil {
		t.Fatalf("ParseClusterURL(%q): %v", cl.URL, err)
	}
	if diff := cmp.Diff(cl.Addrs, opt.Addrs); diff != "" {
		t.Errorf("addresses in URL %q (-want +got):\n%s", cl.URL, diff)
	}

	c := redis.NewClusterClient(opt)
	defer c.Close()
	ctx := t.Context()
	for i := range 100 {
		key := fmt.Sprintf("key:%d", i)
		if err := c.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if got, err := c.Get(ctx, key).Int(); err != nil || got != i {
			t.Fatalf("GET %s = %d, %v; want %d", key, got, err, i)
		}
	}
	var mu sync.Mutex
	sizes := map[string]int64{}
	err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		mu.Lock()
		defer mu.Unlock()
		sizes[m.Options().Addr] = n
		return err
	})
	if err != nil {
		t.Fatalf("DBSIZE: %v", err)
	}
	var total int64
	for addr, n := range sizes {
		if n == 0 {
			t.Errorf("master %s holds no key: %v", addr, sizes)
		}
		total += n
	}
	if len(sizes) != 3 || total != 100 {
		t.Errorf("keys per master = %v, want 3 masters holding 100 keys", sizes)
	}

	// The cluster is real: one node refuses a MULTI whose keys are in two slots,
	// even when it serves both slots.
	k1, k2, m := twoSlotsOneMaster(t, c)
	_, err = m.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k1, 1, 0)
		p.Set(ctx, k2, 2, 0)
		return nil
	})
	t.Logf("MULTI across slots %d and %d: %v", c.ClusterKeySlot(ctx, k1).Val(), c.ClusterKeySlot(ctx, k2).Val(), err)
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("MULTI SET %s SET %s on %s: err = %v, want CROSSSLOT", k1, k2, m.Options().Addr, err)
	}
}

// twoSlotsOneMaster returns two keys in different hash slots served by the same
// master, and a client for that master.
func twoSlotsOneMaster(t *testing.T, c *redis.ClusterClient) (string, string, *redis.Client) {
	t.Helper()
	ctx := t.Context()
	first := "{a}x"
	m, err := c.MasterForKey(ctx, first)
	if err != nil {
		t.Fatalf("MasterForKey(%q): %v", first, err)
	}
	slot := c.ClusterKeySlot(ctx, first).Val()
	for i := range 1000 {
		key := fmt.Sprintf("{b%d}y", i)
		mk, err := c.MasterForKey(ctx, key)
		if err != nil {
			t.Fatalf("MasterForKey(%q): %v", key, err)
		}
		if mk.Options().Addr == m.Options().Addr && c.ClusterKeySlot(ctx, key).Val() != slot {
			return first, key, m
		}
	}
	t.Fatalf("no key shares a master with %q in another slot", first)
	return "", "", nil
}

func TestStartSentinel(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := redistest.StartSentinel(t)
	t.Logf("sentinel %s started in %v", s.URL, time.Since(start))
	ctx := t.Context()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	before, err := s.Master(ctx)
	if err != nil || before != s.Nodes[0].Addr {
		t.Fatalf("Master = %q, %v; want the first node %s", before, err, s.Nodes[0].Addr)
	}
	start = time.Now()
	after := s.Failover(t)
	t.Logf("failover from %s to %s in %v", before, after, time.Since(start))
	if after != s.Nodes[1].Addr {
		t.Errorf("new primary %s, want the replica %s", after, s.Nodes[1].Addr)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET k after the failover = %q, %v; want \"v\"", got, err)
	}
}

func TestNodeKillRestart(t *testing.T) {
	t.Parallel()
	n := redistest.StartNode(t, redistest.Persistence...)
	c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	n.Restart()
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET k after kill -9 and restart = %q, %v; want \"v\" (appendfsync always)", got, err)
	}
}

// TestCommandStats: the counts the benchmarks and the throttle tests read grow
// by the commands sent, in all and for one command.
func TestCommandStats(t *testing.T) {
	srv := redistest.StartServer(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	ctx := t.Context()
	all0, _, err := redistest.CommandStats(ctx, c, "")
	if err != nil {
		t.Fatal(err)
	}
	time0, _, _ := redistest.CommandStats(ctx, c, "time")
	for range 3 {
		if err := c.Time(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	all1, usec, _ := redistest.CommandStats(ctx, c, "")
	time1, _, _ := redistest.CommandStats(ctx, c, "time")
	// Between all0 and all1: one INFO, three TIME and a SET, plus the INFO of time0.
	if got := all1 - all0; got != 6 {
		t.Errorf("commands between two reads: %d, want 6", got)
	}
	if got := time1 - time0; got != 3 {
		t.Errorf("TIME commands: %d, want 3", got)
	}
	if usec <= 0 {
		t.Errorf("usec: %d, want > 0", usec)
	}
}

// TestOnSendLeavesOutUpkeep: a round-trip log sees the test's commands and
// pipelines, not the handshake go-redis sends through the same hooks each time
// its pool dials (which a busy machine makes happen in the middle of a test).
func TestOnSendLeavesOutUpkeep(t *testing.T) {
	srv := redistest.StartServer(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 1, ConnMaxLifetime: time.Nanosecond})
	defer c.Close()
	var mu sync.Mutex
	var trips []string
	c.AddHook(redistest.OnSend(func(cmds ...redis.Cmder) {
		names := make([]string, len(cmds))
		for i, cmd := range cmds {
			names[i] = cmd.Name()
		}
		mu.Lock()
		trips = append(trips, strings.Join(names, "+"))
		mu.Unlock()
	}))
	ctx := t.Context()
	for range 3 { // each on a new connection: the last one has outlived its lifetime
		if err := c.Get(ctx, "k").Err(); err != redis.Nil {
			t.Fatal(err)
		}
		if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { p.Get(ctx, "k"); p.Time(ctx); return nil }); err != redis.Nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if d := cmp.Diff(strings.Split("get get+time get get+time get get+time", " "), trips); d != "" {
		t.Errorf("round trips (-want +got):\n%s", d)
	}
}
