package redistest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Persistence makes a server write every change to its append-only file before
// it answers (appendonly yes, appendfsync always): what a server that is
// killed and restarted needs to lose no acknowledged write.
var Persistence = []string{"--appendonly", "yes", "--appendfsync", "always"}

// failoverWait bounds a Sentinel failover and a Cluster replica's promotion.
const failoverWait = 30 * time.Second

// Node is one redis-server of a test that the test may kill and restart.
type Node struct {
	Addr string // host:port, the same after a restart
	t    testing.TB
	mu   sync.Mutex
	p    *process
}

func newNode(t testing.TB, p *process) *Node { return &Node{Addr: p.addr, t: t, p: p} }

// Kill ends the server with SIGKILL, as a crash would, and waits until it is
// gone. The signal goes only to the test's own child, by its checked pid.
func (n *Node) Kill() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	proc := n.p.cmd.Process
	if proc == nil || proc.Pid <= 0 {
		n.t.Fatalf("redistest: no process to kill on %s", n.Addr)
	}
	_ = proc.Kill()
	select {
	case <-n.p.done:
	case <-time.After(stopTimeout):
		n.t.Fatalf("redistest: redis-server on %s still running %v after SIGKILL", n.Addr, stopTimeout)
	}
}

// Restart starts the server again after Kill, on the same port, in the same
// directory and with the same arguments (so with its data, its append-only
// file and, in a cluster, its nodes.conf), and waits until it answers.
func (n *Node) Restart() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.p
	p, err := start(old.dir, old.port, old.extra)
	if err == nil {
		if err = p.waitReady(context.Background()); err != nil {
			p.stop()
		}
	}
	if err != nil {
		n.t.Fatalf("redistest: restarting redis-server on %s: %v", n.Addr, err)
	}
	n.t.Cleanup(p.stop)
	n.p = p
}

// Stall makes the server answer nothing, not even its primary or replicas,
// for d (DEBUG SLEEP, which the servers of StartSentinel accept from
// loopback), as a stalled process would. It returns once the server has
// stopped answering; the test's cleanup waits for it to wake.
func (n *Node) Stall(d time.Duration) {
	n.t.Helper()
	asleep := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := redis.NewClient(&redis.Options{Addr: n.Addr, DialerRetries: 1, MaxRetries: -1, ReadTimeout: d + 5*time.Second})
		defer c.Close()
		asleep <- c.Do(context.Background(), "DEBUG", "SLEEP", strconv.FormatFloat(d.Seconds(), 'f', 3, 64)).Err()
	}()
	n.t.Cleanup(func() { <-done })
	// A PING unanswered for half a second: asleep, not merely slow on a busy machine.
	probe := redis.NewClient(&redis.Options{Addr: n.Addr, DialerRetries: 1, MaxRetries: -1, ReadTimeout: 500 * time.Millisecond})
	defer probe.Close()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		select {
		case err := <-asleep:
			n.t.Fatalf("redistest: DEBUG SLEEP on %s ended at once: %v", n.Addr, err)
		default:
		}
		if probe.Ping(context.Background()).Err() != nil {
			return // the server is asleep
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.t.Fatalf("redistest: %s still answered PING while it should sleep for %v", n.Addr, d)
}

// Log returns the last lines of the server's log.
func (n *Node) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p.tail()
}

// StartNode starts a standalone redis-server with extra arguments (Persistence,
// say) that the test may kill and restart, and stops it in t.Cleanup. It skips
// the test under -short.
func StartNode(t testing.TB, extra ...string) *Node {
	t.Helper()
	skipShort(t, "a real redis-server")
	Require(t)
	return newNode(t, startNode(t, freePort, extra...))
}

// Sentinel is a primary with one replica, watched by one Sentinel.
type Sentinel struct {
	MasterName string
	Addrs      []string // the Sentinels' host:port
	// URL is redis://127.0.0.1:port?master_name=NAME, the configuration syntax
	// of redis.url for Sentinel.
	URL string
	// Nodes are the primary and the replica, in that order at the start (a
	// failover swaps their roles, not their places).
	Nodes []*Node
}

// sentinelMaster is the name the Sentinel gives the primary it watches.
const sentinelMaster = "gatehouse"

// StartSentinel starts a primary, one replica of it and one Sentinel watching
// them (redis-server --sentinel), each on a free loopback port, and waits until
// the Sentinel knows the replica, so that a failover can promote it. Both
// servers refuse writes unless a replica is connected (min-replicas-to-write
// 1): a write the primary acknowledged has reached the replica's link, so a
// failover does not lose it (docs/redis.md). It skips the test under -short.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	skipShort(t, "a Redis Sentinel")
	Require(t)
	guard := []string{"--min-replicas-to-write", "1", "--min-replicas-max-lag", "10", "--repl-diskless-sync-delay", "0",
		"--enable-debug-command", "local"} // Node.Stall
	primary := startNode(t, freePort, guard...)
	replica := startNode(t, freePort, append(slices.Clone(guard), "--replicaof", "127.0.0.1", strconv.Itoa(primary.port))...)
	ctx, cancel := context.WithTimeout(t.Context(), clusterWait)
	defer cancel()
	if err := waitStreaming(ctx, primary.addr, replica.addr); err != nil {
		t.Fatalf("redistest: replica %s of %s: %v\n%s", replica.addr, primary.addr, err, logs([]*process{primary, replica}))
	}
	conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds %[1]s 2000\n"+
		"sentinel failover-timeout %[1]s 10000\n", sentinelMaster, primary.port)
	sent := startNodeConf(t, freePort, conf, "--sentinel")
	s := &Sentinel{
		MasterName: sentinelMaster, Addrs: []string{sent.addr},
		URL:   "redis://" + sent.addr + "?master_name=" + sentinelMaster,
		Nodes: []*Node{newNode(t, primary), newNode(t, replica)},
	}
	c := s.client()
	defer c.Close()
	err := poll(ctx, func() error {
		reps, err := c.Replicas(ctx, sentinelMaster).Result()
		if err != nil {
			return err
		}
		if len(reps) != 1 || !goodReplica(reps[0]) {
			return fmt.Errorf("sentinel sees replicas %v, want one in good health", reps)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: sentinel %s: %v\n%s", sent.addr, err, logs([]*process{primary, replica, sent}))
	}
	return s
}

// goodReplica reports whether a SENTINEL REPLICAS entry can be promoted.
func goodReplica(r map[string]string) bool {
	for _, f := range strings.Split(r["flags"], ",") {
		if f != "slave" {
			return false
		}
	}
	return r["master-link-status"] == "ok"
}

func (s *Sentinel) client() *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: s.Addrs[0], DialerRetries: 1, MaxRetries: -1})
}

// Master returns the address of the primary, as the Sentinel reports it.
func (s *Sentinel) Master(ctx context.Context) (string, error) {
	c := s.client()
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME = %v", hp)
	}
	return hp[0] + ":" + hp[1], nil
}

// Failover asks the Sentinel to promote the replica (SENTINEL FAILOVER) and
// waits until the new primary accepts writes with its own replica (the old
// primary) connected again. It returns the new primary's address.
func (s *Sentinel) Failover(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failoverWait)
	defer cancel()
	old, err := s.Master(ctx)
	if err != nil {
		t.Fatalf("redistest: sentinel: %v", err)
	}
	c := s.client()
	defer c.Close()
	// NOGOODSLAVE: the Sentinel has not heard from the replica lately enough.
	if err := poll(ctx, func() error { return c.Failover(ctx, s.MasterName).Err() }); err != nil {
		t.Fatalf("redistest: SENTINEL FAILOVER: %v", err)
	}
	var now string
	err = poll(ctx, func() error {
		if now, err = s.Master(ctx); err != nil {
			return err
		}
		if now == old {
			return fmt.Errorf("the primary is still %s", old)
		}
		return nil
	})
	if err == nil {
		err = waitStreaming(ctx, now, old)
	}
	if err != nil {
		t.Fatalf("redistest: failover from %s: %v\n%s\n%s", old, err, s.Nodes[0].Log(), s.Nodes[1].Log())
	}
	return now
}

// waitStreaming waits until the server at replica is a replica with its link
// up and the primary streams its writes to it: after a full sync without a
// disk, a primary holds the stream back until the replica's first REPLCONF
// ACK (up to a second later), and a failover in that second would lose the
// writes it acknowledged meanwhile. WAIT 1 answers 1 once the stream flows.
func waitStreaming(ctx context.Context, primary, replica string) error {
	if err := waitReplicaLink(ctx, replica); err != nil {
		return err
	}
	c := redis.NewClient(&redis.Options{Addr: primary, DialerRetries: 1, MaxRetries: -1})
	defer c.Close()
	return poll(ctx, func() error {
		if err := c.Set(ctx, "redistest:streaming", 1, 0).Err(); err != nil {
			return err
		}
		n, err := c.Do(ctx, "WAIT", 1, 1000).Int()
		if err == nil && n < 1 {
			err = fmt.Errorf("WAIT 1 on %s: no replica acknowledged", primary)
		}
		return err
	})
}

// waitReplicaLink waits until the server at addr is a replica whose link to its
// primary is up.
func waitReplicaLink(ctx context.Context, addr string) error {
	return poll(ctx, func() error { return replicaLinkUp(ctx, addr) })
}

// replicaLinkUp says why the server at addr is not a replica with its link to
// its primary up, or returns nil.
func replicaLinkUp(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DialerRetries: 1, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	if !strings.Contains(info, "role:slave\r\n") || !strings.Contains(info, "master_link_status:up\r\n") {
		return fmt.Errorf("%s is not a replica with its link up yet", addr)
	}
	return nil
}

// Node returns the node of the cluster at addr, or nil.
func (c *Cluster) Node(addr string) *Node {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// WaitPromoted waits until the cluster, seen from every node but the one at
// dead, is in state ok again and none of its masters is dead: after dead's
// master was killed, its replica took its slots.
func (c *Cluster) WaitPromoted(t testing.TB, dead string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failoverWait)
	defer cancel()
	for _, n := range c.Nodes {
		if n.Addr == dead {
			continue
		}
		rc := redis.NewClient(&redis.Options{Addr: n.Addr, DialerRetries: 1, MaxRetries: -1})
		err := poll(ctx, func() error {
			info, err := rc.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("%s: cluster_state is not ok", n.Addr)
			}
			nodes, err := rc.ClusterNodes(ctx).Result()
			if err != nil {
				return err
			}
			for line := range strings.SplitSeq(nodes, "\n") {
				f := strings.Fields(line)
				if len(f) > 2 && strings.HasPrefix(f[1], dead) && strings.Contains(f[2], "master") && !strings.Contains(f[2], "fail") {
					return fmt.Errorf("%s still sees %s as a master", n.Addr, dead)
				}
			}
			return nil
		})
		rc.Close()
		if err != nil {
			t.Fatalf("redistest: no replica promoted in place of %s after %v: %v", dead, failoverWait, err)
		}
	}
}

// waitReplicas waits until n of the servers at addrs are replicas with their
// link to their master up.
func waitReplicas(ctx context.Context, addrs []string, n int) error {
	return poll(ctx, func() error {
		up := 0
		for _, a := range addrs {
			if replicaLinkUp(ctx, a) == nil {
				up++
			}
		}
		if up < n {
			return fmt.Errorf("%d replicas in sync, want %d", up, n)
		}
		return nil
	})
}

// WaitReplicas waits until every master of the cluster has a replica in sync
// again (after a killed master was restarted, say) and every node reports the
// cluster's state ok.
func (c *Cluster) WaitReplicas(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failoverWait)
	defer cancel()
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.Addr)
	}
	if err := waitReplicas(ctx, addrs, len(addrs)-3); err != nil {
		t.Fatalf("redistest: cluster replicas: %v", err)
	}
	var ps []*process
	for _, n := range c.Nodes {
		n.mu.Lock()
		ps = append(ps, n.p)
		n.mu.Unlock()
	}
	if err := waitClusterOK(ctx, ps); err != nil {
		t.Fatalf("redistest: cluster state: %v", err)
	}
}
