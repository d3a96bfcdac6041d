package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// Restart back-off: the first restart waits backoffMin, each further one
// within the restart window twice as long, up to backoffMax.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
	// killGrace is how long Client.Kill may take before the process is
	// SIGKILLed: go-plugin asks the plugin to exit with a gRPC call that has no
	// deadline, which a frozen plugin never answers. go-plugin itself waits 2 s
	// for a graceful exit.
	killGrace = 3 * time.Second
	// shutdownPing is how long a plugin has to answer the health check
	// before its graceful stop at shutdown.
	shutdownPing = 500 * time.Millisecond
	// maxErrorText caps Status.LastError: a broken handshake quotes whatever
	// the plugin wrote on stdout.
	maxErrorText = 300
)

// managed is one plugin of the configuration across its processes: run
// supervises it, the proxies route calls to its current process.
type managed struct {
	host    *Host
	spec    Spec
	argv    []string // the command
	bin     *binary  // an external plugin's executable, checked before every start
	config  json.RawMessage
	secrets map[string]string
	kv      core.KV
	log     zerolog.Logger // tagged with the plugin's name

	idp       identityProxy
	integ     integrationProxy
	firstDone chan struct{} // closed once the first start succeeded or failed
	done      chan struct{} // closed when run returns

	mu        sync.Mutex
	state     core.PluginState
	cur       *conn    // the serving process; nil unless running
	stopping  bool     // Close has begun
	kinds     []string // served by the current or last process; before: Spec.Kind, if any
	version   string   // as the current or last process described itself
	pid       int
	healthy   bool
	restarts  int
	recent    []time.Time // restarts within the restart window
	lastErr   string
	startedAt time.Time
}

// conn is one process of a plugin and go-plugin's client of it.
type conn struct {
	client *plugin.Client
	proc   *procRunner
	health grpc_health_v1.HealthClient
	// The services the process serves, and what each said of itself at the
	// start in the core's terms; a service not served is nil. Set by start,
	// read-only after.
	idp       sdk.IdentityProvider // an *sdk.IdentityProviderClient
	idpInfo   core.PluginInfo
	integ     sdk.Integration // an *sdk.IntegrationClient
	integInfo core.PluginInfo
	kinds     []string       // the kinds served, in allKinds' order
	calls     sync.WaitGroup // in flight; Add only while conn is managed.cur
}

// permanentError is a start failure that another try cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// run supervises the plugin until ctx ends: start, watch, and restart with
// back-off after an exit or a failed health check, until the crash-loop cap.
func (m *managed) run(ctx context.Context) {
	defer close(m.done)
	first := sync.OnceFunc(func() { close(m.firstDone) })
	defer first()
	for {
		began := time.Now()
		c, err := m.start(ctx)
		if ctx.Err() != nil {
			if c != nil {
				c.stop(false)
			}
			return
		}
		if err == nil {
			if !m.up(c, time.Since(began)) {
				return
			}
			first()
			err = m.watch(ctx, c)
			if err == nil { // ctx ended: Close stops c
				return
			}
			m.down(err)
			// A crashed process has no call left to drain; an unresponsive one
			// gets the calls' own deadline to finish them.
			var drain time.Duration
			if !c.proc.Exited() {
				drain = m.spec.CallTimeout
			}
			c.drain(drain)
			c.stop(true)
		} else {
			if errors.As(err, new(permanentError)) {
				m.fail(err)
				return
			}
			m.down(err)
		}
		wait, ok := m.backoff()
		first() // after a failed first start, Start returns with the state decided
		if !ok {
			return
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// start starts a process, then configures each service it serves among
// those the entry asks for, and asks what each is.
func (m *managed) start(ctx context.Context) (*conn, error) {
	if m.bin != nil {
		if err := m.bin.verify(); err != nil {
			return nil, permanentError{err}
		}
	}
	var proc *procRunner
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: m.host.versions,
		RunnerFunc: func(_ hclog.Logger, base *exec.Cmd, _ string) (runner.Runner, error) {
			// base holds go-plugin's variables only (SkipHostEnv).
			cmd := exec.Command(m.argv[0], m.argv[1:]...)
			cmd.Env = append(slices.Clone(m.host.opt.Env), base.Env...)
			var err error
			proc, err = newProcRunner(cmd)
			return proc, err
		},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     m.host.opt.StartTimeout,
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: m.host.sockDir},
		Logger:           newHCLogger(m.log),
	})
	c := &conn{client: client, proc: proc}
	fail := func(err error) (*conn, error) {
		c.proc = proc
		c.stop(true)
		return nil, err
	}
	rpc, err := client.Client()
	if err != nil {
		return fail(startError(err))
	}
	c.proc = proc
	grpcClient, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		return fail(permanentError{fmt.Errorf("the plugin does not speak gRPC (%T)", rpc)})
	}
	c.health = grpc_health_v1.NewHealthClient(grpcClient.Conn)
	asked := allKinds
	if m.spec.Kind != "" {
		asked = []string{m.spec.Kind}
	}
	for _, kind := range asked {
		served, err := c.configure(ctx, m, rpc, kind)
		switch {
		case err != nil:
			return fail(err)
		case !served && m.spec.Kind != "":
			return fail(permanentError{fmt.Errorf("the plugin does not serve %s, the kind its entry asks for", kind)})
		case served:
			c.kinds = append(c.kinds, kind)
		}
	}
	if len(c.kinds) == 0 {
		return fail(permanentError{fmt.Errorf("the plugin serves none of %s", strings.Join(allKinds, ", "))})
	}
	return c, nil
}

// configure dispenses the service of kind, configures it (each service gets
// its own Configure: a plugin may keep one configuration per service object)
// and asks what it is, within the plugin's call timeout. It reports false,
// and no error, when the process does not serve that service at all.
func (c *conn) configure(ctx context.Context, m *managed, rpc plugin.ClientProtocol, kind string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, m.spec.CallTimeout)
	defer cancel()
	raw, err := rpc.Dispense(sdkKinds[kind])
	if err != nil {
		return false, permanentError{fmt.Errorf("dispense %s: %w", kind, err)}
	}
	var (
		svc  service
		keep func(core.PluginInfo) // makes the service the conn's
	)
	switch p := raw.(type) {
	case *sdk.IdentityProviderClient:
		svc, keep = p, func(info core.PluginInfo) { c.idp, c.idpInfo = p, info }
	case *sdk.IntegrationClient:
		svc, keep = p, func(info core.PluginInfo) { c.integ, c.integInfo = p, info }
	default:
		return false, permanentError{fmt.Errorf("unexpected client %T", raw)}
	}
	var info sdk.PluginInfo
	err = svc.Configure(ctx, sdk.Config{Name: m.spec.Name, Raw: m.config, Secrets: m.secrets}, sdk.Host{KV: m.kv, Log: pluginLog{m.log}})
	if err == nil {
		info, err = svc.Describe(ctx)
	}
	switch {
	case sdk.NotServed(err):
		return false, nil
	case err != nil:
		err = fmt.Errorf("configure: %w", err)
		if k := core.KindOf(err); k == core.Invalid || k == core.Malformed {
			err = permanentError{err} // the configuration is wrong: it stays wrong
		}
		return false, err
	}
	keep(pluginInfo(info))
	return true, nil
}

// service is what the SDK's clients of both services have in common.
type service interface {
	Configure(ctx context.Context, cfg sdk.Config, host sdk.Host) error
	Describe(ctx context.Context) (sdk.PluginInfo, error)
}

// startError classifies a failed start: an executable that cannot run, a
// refused handshake or protocol version are permanent.
func startError(err error) error {
	msg := err.Error()
	switch {
	case errors.As(err, new(*fs.PathError)), errors.Is(err, exec.ErrNotFound):
		return permanentError{fmt.Errorf("cannot run the plugin: %w", err)}
	case strings.Contains(msg, "incompatible API version"), strings.Contains(msg, "incompatible core API version"):
		// go-plugin names both sides' versions.
		return permanentError{fmt.Errorf("handshake: %w", err)}
	case strings.Contains(msg, "Failed to read any lines from plugin's stdout"),
		strings.Contains(msg, "plugin exited before we could connect"):
		return errors.New("start: the plugin exited before its handshake")
	case strings.Contains(msg, "Unrecognized remote plugin message"), strings.Contains(msg, "unsupported plugin protocol"):
		return permanentError{fmt.Errorf("handshake: %w", err)}
	}
	return fmt.Errorf("start: %w", err)
}

// watch returns why c stopped serving: the process exited, or a health
// check failed. It returns nil when ctx ends.
func (m *managed) watch(ctx context.Context, c *conn) error {
	t := time.NewTicker(m.host.opt.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.proc.exited:
			return fmt.Errorf("the process exited (%s)", c.proc.ExitStatus())
		case <-t.C:
			if err := c.ping(ctx, m.spec.CallTimeout); err != nil {
				switch {
				case ctx.Err() != nil:
					return nil
				case c.proc.Exited():
					return fmt.Errorf("the process exited (%s)", c.proc.ExitStatus())
				}
				return fmt.Errorf("health check failed: %w", err)
			}
		}
	}
}

// ping is go-plugin's health check (ClientProtocol.Ping) with a deadline:
// Ping's own has none, and a frozen plugin would block it forever.
func (c *conn) ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := c.health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err
}

// drain waits up to d for c's calls in flight.
func (c *conn) drain(d time.Duration) bool {
	if d <= 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.drainCtx(ctx)
}

// drainCtx waits for c's calls in flight until ctx ends; it reports whether
// they all finished.
func (c *conn) drainCtx(ctx context.Context) bool {
	done := make(chan struct{})
	go func() {
		c.calls.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// stop ends c's process and go-plugin's client: hard sends SIGKILL at once,
// else the plugin is asked to exit and killed if it has not after killGrace.
// Client.Kill also removes the process's socket folder.
func (c *conn) stop(hard bool) {
	if hard && c.proc != nil {
		_ = c.proc.Kill(context.Background())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.client.Kill()
	}()
	select {
	case <-done:
		return
	case <-time.After(killGrace):
	}
	if c.proc != nil {
		_ = c.proc.Kill(context.Background())
	}
	<-done
}

// up makes c the serving process; with Close under way it stops c instead
// and returns false.
func (m *managed) up(c *conn, took time.Duration) bool {
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		c.stop(false)
		return false
	}
	m.cur, m.state, m.healthy = c, core.PluginRunning, true
	m.kinds, m.version, m.pid, m.startedAt = c.kinds, c.version(), c.proc.PID(), time.Now()
	restarts := m.restarts
	m.mu.Unlock()
	m.log.Info().Str("version", c.version()).Strs("kinds", c.kinds).Int("pid", c.proc.PID()).Int("restarts", restarts).
		Dur("took", took).Msg("plugin running")
	return true
}

// version is the plugin's version as its first service described it.
func (c *conn) version() string {
	if c.idp != nil {
		return c.idpInfo.Version
	}
	return c.integInfo.Version
}

// down takes the serving process out: from now on calls answer Unavailable.
func (m *managed) down(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur, m.healthy, m.pid, m.startedAt = nil, false, 0, time.Time{}
	m.lastErr = errorText(err)
	if !m.stopping {
		m.state = core.PluginRestarting
		m.log.Warn().Err(err).Msg("plugin is down; restarting it")
	}
}

// fail gives up on the plugin.
func (m *managed) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur, m.healthy, m.pid, m.startedAt = nil, false, 0, time.Time{}
	m.lastErr = errorText(err)
	if !m.stopping {
		m.state = core.PluginFailed
		m.log.Error().Err(err).Int("restarts", m.restarts).Msg("plugin failed; the host gave up on it")
	}
}

// backoff records a restart and returns how long to wait before it, or false
// when the crash-loop cap is reached: then the plugin is marked failed.
func (m *managed) backoff() (time.Duration, bool) {
	now := time.Now()
	m.mu.Lock()
	window, limit := m.host.opt.RestartWindow, m.host.opt.MaxRestarts
	m.recent = slices.DeleteFunc(m.recent, func(t time.Time) bool { return now.Sub(t) >= window })
	n := len(m.recent)
	stopping := m.stopping
	if limit < 0 || n >= limit || stopping {
		last := m.lastErr
		m.mu.Unlock()
		if !stopping {
			m.fail(fmt.Errorf("%d restarts within %v; last: %s", n, window, last))
		}
		return 0, false
	}
	m.recent = append(m.recent, now)
	m.restarts++
	m.mu.Unlock()
	return min(backoffMin<<min(n, 10), backoffMax), true
}

// setState sets the state unless Close has begun.
func (m *managed) setState(s core.PluginState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.stopping {
		m.state = s
	}
}

// stop marks the plugin stopped for Close and returns the serving process,
// if any.
func (m *managed) stop() *conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cur
	m.stopping, m.state, m.cur, m.healthy, m.pid, m.startedAt = true, core.PluginStopped, nil, false, 0, time.Time{}
	return c
}

// shutdown drains c's calls until ctx ends, then stops it. It reports
// whether every call finished.
func (m *managed) shutdown(ctx context.Context, c *conn) bool {
	drained := c.drainCtx(ctx)
	if !drained {
		m.log.Warn().Msg("plugin calls still in flight at shutdown are cut")
	}
	// A plugin that does not answer a health check would not answer go-plugin's
	// request to exit either: kill it at once rather than after killGrace.
	hard := c.proc.Exited() || c.ping(context.WithoutCancel(ctx), shutdownPing) != nil
	c.stop(hard)
	m.log.Info().Msg("plugin stopped")
	return drained
}

// mayServe reports whether the entry may serve kind: its kind is that one,
// or left out.
func (m *managed) mayServe(kind string) bool {
	return m.spec.Kind == "" || m.spec.Kind == kind
}

// acquire returns the serving process and counts a call on it, or
// Unavailable at once when there is none, or NotFound when it does not serve
// kind.
func (m *managed) acquire(op, kind string) (*conn, error) {
	m.mu.Lock()
	c, state := m.cur, m.state
	if c != nil {
		c.calls.Add(1)
	}
	m.mu.Unlock()
	if c == nil {
		e := &core.Error{Kind: core.Unavailable, Op: op, Msg: fmt.Sprintf("plugin %s is not running", m.spec.Name)}
		if state == core.PluginStarting || state == core.PluginRestarting {
			e.RetryAfter = time.Second
		}
		return nil, e
	}
	if !slices.Contains(c.kinds, kind) {
		c.calls.Done()
		return nil, &core.Error{Kind: core.NotFound, Op: op, Msg: fmt.Sprintf("plugin %s is not %s", m.spec.Name, kindNouns[kind])}
	}
	return c, nil
}

// status returns the plugin's status, as GET /plugins shows it.
func (m *managed) status() core.PluginStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return core.PluginStatus{
		Name: m.spec.Name, Kinds: slices.Clone(m.kinds), Builtin: m.spec.Builtin, Path: m.spec.Path,
		Version: m.version, State: m.state, Healthy: m.healthy, PID: m.pid,
		Restarts: m.restarts, LastError: m.lastErr, StartedAt: m.startedAt,
	}
}

// errorText is err's text for Status.LastError, capped.
func errorText(err error) string {
	s := err.Error()
	if len(s) <= maxErrorText {
		return s
	}
	n := maxErrorText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
