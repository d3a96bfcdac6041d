package redisstore_test

import (
	"errors"
	"io"
	"net"
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

// TestStalledRedis stalls a real redis-server with DEBUG SLEEP: reads answer
// Unavailable once ReadTimeout (the default) has passed and a write once
// WriteTimeout has, well before Redis answers again; then the same Store serves
// again, without a restart.
func TestStalledRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t) // skips under -short
	opts, err := redisstore.ParseURL(srv.URL)
	must(t, err)
	s := redisstore.New(redisstore.NewClient(opts), redisstore.Options{Prefix: newPrefix(), WriteTimeout: time.Second})
	defer s.Close()
	ctx := t.Context()
	u := stallUser("stall")
	must(t, s.CreateUser(ctx, &u))

	const sleep = 6 * time.Second
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: sleep + 10*time.Second})
	defer admin.Close()
	slept := make(chan error, 1)
	go func() { slept <- admin.Do(ctx, "DEBUG", "SLEEP", strconv.Itoa(int(sleep/time.Second))).Err() }()
	waitStalled(t, srv.Addr, slept)

	// Loose bounds: each call is cut at its timeout (0.5 s, 1 s), and Redis
	// sleeps for 6 s.
	stalled(t, "GetUser", 2500*time.Millisecond, "redis did not answer within 500ms", func() error {
		_, err := s.GetUser(ctx, u.ID)
		return err
	})
	stalled(t, "ReadAuth", 2500*time.Millisecond, "redis did not answer within 500ms", func() error {
		_, err := s.ReadAuth(ctx, core.AuthQuery{UserID: u.ID, Password: true})
		return err
	})
	stalled(t, "Limiter.Allow", 2500*time.Millisecond, "redis did not answer within 500ms", func() error {
		_, _, err := s.Limiter().Allow(ctx, "stall", core.Rate{Count: 1, Per: time.Minute}, 1)
		return err
	})
	v := stallUser("during")
	stalled(t, "CreateUser", 3500*time.Millisecond, "redis did not answer within 1s", func() error {
		return s.CreateUser(ctx, &v)
	})

	select {
	case err := <-slept:
		must(t, err)
	case <-time.After(sleep + 20*time.Second):
		t.Fatal("DEBUG SLEEP never ended")
	}
	recovered(t, s, u.ID)
}

// TestSilentRedis runs the same checks on miniredis behind a proxy that holds
// every request while it is stalled, with short timeouts: fast enough for
// -short. The create here holds a claim when it is cut, so its release, bounded
// too, runs on the stalled server as well.
func TestSilentRedis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	p := newStallProxy(t, m.Addr())
	opts, err := redisstore.ParseURL("redis://" + p.addr())
	must(t, err)
	clock := storetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := redisstore.New(redisstore.NewClient(opts), redisstore.Options{
		Clock: clock, ReadTimeout: 100 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	defer s.Close()
	ctx := t.Context()
	u := stallUser("quiet")
	// The set-up goes straight to miniredis with bounds of its own: through
	// the proxy, 200 ms a step is short for a loaded machine.
	set := redisstore.New(redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{m.Addr()}}), loaded(redisstore.Options{Clock: clock}))
	defer set.Close()
	must(t, set.CreateUser(ctx, &u))
	kv := s.PluginKV("stall")

	p.stall(true)
	stalled(t, "GetUser", 2*time.Second, "redis did not answer within 100ms", func() error {
		_, err := s.GetUser(ctx, u.ID)
		return err
	})
	stalled(t, "LocateUser", 2*time.Second, "redis did not answer within 100ms", func() error {
		_, err := s.LocateUser(ctx, core.NameUsername, "quiet")
		return err
	})
	stalled(t, "PluginKV.Get", 2*time.Second, "redis did not answer within 100ms", func() error {
		_, _, err := kv.Get(ctx, "k")
		return err
	})
	stalled(t, "PluginKV.Set", 2*time.Second, "redis did not answer within 200ms", func() error {
		return kv.Set(ctx, "k", []byte("v"), 0)
	})
	v := stallUser("hush")
	stalled(t, "CreateUser", 2*time.Second, "redis did not answer within 200ms", func() error {
		return s.CreateUser(ctx, &v)
	})
	stalled(t, "UpdateUser", 2*time.Second, "redis did not answer within 200ms", func() error {
		_, err := s.UpdateUser(ctx, u.ID, func(*core.User) error { return nil })
		return err
	})
	// A process's first create reads Redis' clock first (claimTime): a
	// step of its own, cut at the write bound like the rest.
	fresh := redisstore.New(redisstore.NewClient(opts), redisstore.Options{ReadTimeout: 100 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	defer fresh.Close()
	p.stall(false)
	must(t, fresh.UpgradeIndexes(ctx)) // as serve does before it serves
	p.stall(true)
	w := stallUser("first")
	stalled(t, "a process's first CreateUser", 2*time.Second, "redis did not answer within 200ms", func() error {
		return fresh.CreateUser(ctx, &w)
	})
	p.stall(false)
	recovered(t, s, u.ID)
}

// stallUser returns a user (not stored) named name.
func stallUser(name string) core.User {
	now := time.Now().UTC()
	return core.User{ID: core.NewID(), Username: name, IsActive: true, CreatedAt: now, UpdatedAt: now}
}

// stalled fails unless f answers Unavailable with a message containing msg,
// within limit.
func stalled(t *testing.T, what string, limit time.Duration, msg string, f func() error) {
	t.Helper()
	t0 := time.Now()
	err := f()
	took := time.Since(t0)
	if core.KindOf(err) != core.Unavailable || !strings.Contains(core.MessageOf(err), msg) {
		t.Errorf("%s on a stalled Redis = %v (kind %v), want Unavailable saying %q", what, err, core.KindOf(err), msg)
	}
	if took > limit {
		t.Errorf("%s on a stalled Redis took %v, want it cut short within %v", what, took, limit)
	}
}

// recovered fails unless s reads, creates and updates again within 5 s each:
// the connections cut short are gone and new ones are dialled. A call that
// fails is tried again (a create with a new user), for on a loaded machine
// one may overrun the short bounds of TestSilentRedis.
func recovered(t *testing.T, s *redisstore.Store, uid string) {
	t.Helper()
	ctx := t.Context()
	tries := 0
	for _, c := range []struct {
		what string
		f    func() error
	}{
		{"GetUser", func() error { _, err := s.GetUser(ctx, uid); return err }},
		{"CreateUser", func() error { w := stallUser("after" + strconv.Itoa(tries)); return s.CreateUser(ctx, &w) }},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(ctx, uid, func(u *core.User) error { u.Props = map[string]any{"back": true}; return nil })
			return err
		}},
	} {
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			tries++
			if err = c.f(); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s after Redis came back: %v", c.what, err)
		}
	}
}

// waitStalled waits until the server at addr stops answering (DEBUG SLEEP has
// started), or fails if it never does.
func waitStalled(t *testing.T, addr string, slept <-chan error) {
	t.Helper()
	probe := redis.NewClient(&redis.Options{
		Addr: addr, ReadTimeout: 100 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true,
	})
	defer probe.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-slept:
			t.Fatalf("DEBUG SLEEP ended before the server was seen stalled: %v", err)
		default:
		}
		if err := probe.Ping(t.Context()).Err(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			t.Fatalf("PING while waiting for DEBUG SLEEP: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the server never stalled")
}

// stallProxy forwards TCP connections to a server; while stalled it holds what
// clients send, as a server that does not answer would.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	closed  atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &stallProxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		p.closed.Store(true)
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) stall(on bool) { p.stalled.Store(on) }

func (p *stallProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *stallProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client)
		p.track(server)
		p.wg.Go(func() { p.forward(server, client) })
		p.wg.Go(func() { _, _ = io.Copy(client, server) })
	}
}

// forward copies from client to server, holding each chunk while stalled.
func (p *stallProxy) forward(server, client net.Conn) {
	defer server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			for p.stalled.Load() && !p.closed.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
