// Package redistest starts real Redis servers for tests: a standalone redis-server
// (StartServer) or a 3-master Redis Cluster (StartCluster), each on free loopback
// ports chosen at run time, in the test's temporary directory, stopped in t.Cleanup.
//
// It needs redis-server (7 or later) and redis-cli in PATH. Without them the tests
// are skipped, except when CI=true, where a missing Redis is a failure (see
// Require). Real servers are slow to start, so both Start functions skip the test
// under go test -short.
//
// The servers accept DEBUG from loopback clients (DEBUG SLEEP stalls one, to test
// how clients bear a Redis that does not answer).
//
// Test packages run in parallel, so a port found free may be taken a moment later:
// every start is retried on a fresh port, and a server only counts as ready once
// the one answering PING on its port reports our process id.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	attempts     = 5                // starts tried, each on a new port, before giving up
	readyTimeout = 10 * time.Second // for one redis-server to answer PING
	clusterWait  = 30 * time.Second // for the cluster to reach cluster_state:ok and serve keys
	stopTimeout  = 5 * time.Second  // between SIGTERM and SIGKILL
)

// StoreTimeout is the read and write bound (redisstore.Options.ReadTimeout and
// WriteTimeout) of the stores that tests build without testing the bounds
// themselves. The product's defaults, 500 ms a read and 2 s a write step, are
// for a Redis beside an unloaded process: with the race detector on a loaded
// 2-core CI machine (load average 15 and more), a conformance read or a
// /verify has waited past 500 ms for a CPU. The bounds' own behaviour is
// tested apart, with short timeouts on a Redis that does not answer.
const StoreTimeout = 10 * time.Second

// Server is a running redis-server.
type Server struct {
	Addr string // host:port
	URL  string // redis://127.0.0.1:port
}

// Cluster is a running Redis Cluster.
type Cluster struct {
	Addrs []string // host:port of every master, as started
	// URL is redis+cluster://127.0.0.1:p1?addr=127.0.0.1:p2&addr=127.0.0.1:p3, the
	// configuration syntax of redis.url; go-redis' ParseClusterURL wants the scheme
	// rewritten to redis:// first.
	URL string
	// Nodes are every server of the cluster, masters and replicas, as started.
	Nodes []*Node
}

// Require reports whether redis-server and redis-cli are available; when they are
// not it calls t.Skip with a clear message, unless the environment has CI=true, in
// which case it calls t.Fatal.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("redistest: %s not found in PATH; install Redis 7 (e.g. apt-get install redis-server) to run this test",
		strings.Join(missing, " and "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing Redis is a failure, not a skip)")
	}
	t.Skip(msg)
}

// StartServer starts a standalone redis-server for the test and stops it in
// t.Cleanup. It skips the test under -short.
func StartServer(t testing.TB) *Server {
	t.Helper()
	skipShort(t, "a real redis-server")
	Require(t)
	p := startNode(t, freePort)
	return &Server{Addr: p.addr, URL: "redis://" + p.addr}
}

// StartCluster starts a 3-master Redis Cluster (no replicas) and stops it in
// t.Cleanup. It skips the test under -short.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return startCluster(t, 0, 5000)
}

// StartClusterReplicas starts a Redis Cluster of 3 masters with one replica
// each, with the extra arguments on every node (Persistence, say), and stops it
// in t.Cleanup. A master that stops answering for 2 s is replaced by its
// replica. It skips the test under -short.
func StartClusterReplicas(t testing.TB, extra ...string) *Cluster {
	t.Helper()
	return startCluster(t, 1, 2000, extra...)
}

// startCluster starts 3 masters with replicas replicas each.
func startCluster(t testing.TB, replicas, nodeTimeoutMs int, extra ...string) *Cluster {
	t.Helper()
	skipShort(t, "a real Redis Cluster")
	Require(t)
	var nodes []*process
	var addrs []string
	for range 3 * (1 + replicas) {
		p := startNode(t, freeClusterPort, append([]string{
			"--cluster-enabled", "yes", "--repl-diskless-sync-delay", "0",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(nodeTimeoutMs)}, extra...)...)
		nodes = append(nodes, p)
		addrs = append(addrs, p.addr)
	}

	ctx, cancel := context.WithTimeout(t.Context(), clusterWait)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	cli := exec.CommandContext(ctx, "redis-cli", args...)
	setPdeathsig(cli)
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s\n%s", err, out, logs(nodes))
	}
	if err := waitClusterOK(ctx, nodes); err != nil {
		t.Fatalf("redistest: cluster on %v not ready after %v: %v\n%s", addrs, clusterWait, err, logs(nodes))
	}
	if err := waitClusterServes(ctx, addrs); err != nil {
		t.Fatalf("redistest: cluster on %v does not serve keys after %v: %v\n%s", addrs, clusterWait, err, logs(nodes))
	}
	if replicas > 0 {
		// A replica that never synced cannot take over (its data is too old).
		if err := waitReplicas(ctx, addrs, 3*replicas); err != nil {
			t.Fatalf("redistest: cluster on %v: %v\n%s", addrs, err, logs(nodes))
		}
	}
	masters := addrs[:3] // redis-cli makes the first nodes masters
	u, sep := "redis+cluster://"+masters[0], "?"
	for _, a := range masters[1:] {
		u, sep = u+sep+"addr="+a, "&"
	}
	c := &Cluster{Addrs: masters, URL: u}
	for _, p := range nodes {
		c.Nodes = append(c.Nodes, newNode(t, p))
	}
	return c
}

// skipShort skips the test under -short: it needs what, which is slow to start.
func skipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("redistest: -short: not starting %s", what)
	}
}

// process is one redis-server started by startNode.
type process struct {
	addr  string
	dir   string   // its working directory: data, AOF, nodes.conf
	port  int      // its port, kept across a restart
	extra []string // its extra arguments, kept across a restart
	log   string   // path of the server's log file (its stdout and stderr go there too)
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd.Wait returns
}

// startNode starts a redis-server on a port from pick, retrying on a new port and a
// new directory when the start fails (the port was taken meanwhile), and registers
// its stop with t.Cleanup.
func startNode(t testing.TB, pick func() (int, error), extra ...string) *process {
	t.Helper()
	return startNodeConf(t, pick, "", extra...)
}

// startNodeConf is startNode with a configuration file first on the command
// line (Sentinel needs one it can rewrite): conf is its content, written as
// node.conf in the server's directory; "" means none.
func startNodeConf(t testing.TB, pick func() (int, error), conf string, extra ...string) *process {
	t.Helper()
	var err error
	for range attempts {
		var port int
		if port, err = pick(); err != nil {
			continue
		}
		dir, args := t.TempDir(), extra
		if conf != "" {
			path := filepath.Join(dir, "node.conf")
			if err = os.WriteFile(path, []byte(conf), 0o600); err != nil {
				continue
			}
			args = append([]string{path}, extra...)
		}
		var p *process
		if p, err = start(dir, port, args); err != nil {
			continue
		}
		if err = p.waitReady(t.Context()); err != nil {
			p.stop()
			continue
		}
		t.Cleanup(p.stop)
		return p
	}
	t.Fatalf("redistest: cannot start redis-server after %d attempts: %v", attempts, err)
	return nil
}

// start launches redis-server in dir without waiting for it.
func start(dir string, port int, extra []string) (*process, error) {
	logPath := filepath.Join(dir, "redis.log")
	var conf []string // a configuration file must come first
	if len(extra) > 0 && !strings.HasPrefix(extra[0], "--") {
		conf, extra = extra[:1], extra[1:]
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	args := append(slices.Clone(conf),
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
		"--logfile", logPath, "--enable-debug-command", "local")
	args = append(args, extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile // errors before the log file is open
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, port: port,
		extra: append(slices.Clip(conf), extra...), log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// waitReady waits until the server accepts connections, and checks that the server
// answering is this process, not another test's server that took the port first.
func (p *process) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	// Plain dials: go-redis retries a refused dial itself, with backoff and log lines.
	for {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", p.addr)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-p.done:
			return fmt.Errorf("redis-server on %s exited: %v\n%s", p.addr, p.cmd.ProcessState, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s not listening after %v\n%s", p.addr, readyTimeout, p.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
	c := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, DialerRetries: 1, ReadTimeout: time.Second})
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("INFO on %s: %w\n%s", p.addr, err, p.tail())
	}
	if !strings.Contains(info, "process_id:"+strconv.Itoa(p.cmd.Process.Pid)+"\r\n") {
		return fmt.Errorf("port of %s taken by another redis-server\n%s", p.addr, p.tail())
	}
	return nil
}

// stop ends the server with SIGTERM, or SIGKILL if it does not exit in time, and
// waits for it. Signals go only to the child this process started, by its
// checked, positive pid (a pid of 0 or -1 would reach a whole process group).
func (p *process) stop() {
	proc := p.cmd.Process
	if proc == nil || proc.Pid <= 0 {
		return
	}
	_ = proc.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = proc.Kill()
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			// Unkillable (stopped by a debugger?): give up rather than hang.
		}
	}
}

// tail returns the last lines of the server's log, for failure messages.
func (p *process) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	lines = lines[max(0, len(lines)-20):]
	return "--- " + p.log + "\n" + string(bytes.Join(lines, []byte("\n")))
}

// logs returns the log tails of nodes.
func logs(nodes []*process) string {
	var parts []string
	for _, n := range nodes {
		parts = append(parts, n.tail())
	}
	return strings.Join(parts, "\n")
}

// waitClusterOK polls CLUSTER INFO on every node until each reports cluster_state:ok.
func waitClusterOK(ctx context.Context, nodes []*process) error {
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.addr})
		err := poll(ctx, func() error {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = fmt.Errorf("%s: cluster_state is not ok yet", n.addr)
			}
			return err
		})
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// waitClusterServes waits until a ClusterClient can SET and GET keys spread over
// the slots, so that every node agrees on the slot map, then deletes them.
func waitClusterServes(ctx context.Context, addrs []string) error {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	return poll(ctx, func() error {
		for i := range 16 {
			key := fmt.Sprintf("redistest:ready:%d", i)
			if err := c.Set(ctx, key, i, 0).Err(); err != nil {
				return err
			}
			if got, err := c.Get(ctx, key).Int(); err != nil || got != i {
				return fmt.Errorf("GET %s = %d, %v", key, got, err)
			}
			if err := c.Del(ctx, key).Err(); err != nil {
				return err
			}
		}
		return nil
	})
}

// poll calls f every 100ms until it succeeds or ctx ends, and returns f's last error.
func poll(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePort returns a loopback port the kernel found free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freeClusterPort returns a port such that port and port+10000 (the cluster bus,
// which Redis 7.0 refuses above 65535) are both free a moment ago.
func freeClusterPort() (int, error) {
	var err error
	for range 20 {
		port := 20000 + rand.IntN(30000)
		var l1, l2 net.Listener
		if l1, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
			continue
		}
		l2, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		l1.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return port, nil
	}
	return 0, err
}

// UsedMemory reads INFO memory's used_memory of the server c talks to.
func UsedMemory(t testing.TB, c redis.UniversalClient) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}
