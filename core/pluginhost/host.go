// Package pluginhost runs the plugins of the configuration as separate
// processes and gives the core stable proxies to them.
//
// It is the one place where the two sides of the plugin contract meet: the
// plugins speak plugins/sdk (its interfaces and types, standard types only),
// the core its own (core.IdentityProvider, core.Identity, ...). The proxies
// translate between them, so either side may change without the other; the
// store's core.KV is handed to plugins as the SDK's KV as it is, the two
// interfaces being the same.
//
// A plugin entry serves the kinds of plugin its Spec.Kind names, or, without
// one, every kind its binary serves (an identity provider, an integration or
// both), found again at each start of its process: the host dispenses and
// configures each service, and a service the process answers Unimplemented to
// is simply not served. The proxies of IdentityProvider and Integration exist
// for every entry that may serve their kind; while the current process does
// not, their calls answer NotFound.
//
// A plugin is either built in, run as the gatehouse binary itself
// (`gatehouse plugin NAME`, Options.Launcher + [NAME], the hidden subcommand
// that calls sdk.Serve), or external: an executable inside Options.Dir whose SHA-256 is
// in the configuration. New refuses an external plugin whose checksum
// differs, whose path leads out of the directory (symlinks resolved) or that
// anyone may overwrite; the checksum is checked again before every start.
//
// Every process speaks go-plugin's gRPC protocol only, with AutoMTLS and the
// versioned handshake of sdk.Handshake, over a Unix socket in a short private
// folder. It starts without the host's environment: only Options.Env and
// go-plugin's handshake variables. Its configuration block and its secrets
// (the block's "...Env" settings, resolved by the host) reach it in Configure,
// with the host services: its KV namespace (Options.KV) and a log that lands
// in the host's zerolog stream tagged with its name, like the lines it writes
// on stderr.
//
// One goroutine supervises each plugin: it restarts the process with back-off
// (100 ms doubling to 5 s) when it exits or fails a health check, and gives up
// (state "failed") after Options.MaxRestarts restarts within
// Options.RestartWindow. While a plugin is not running, calls answer
// Unavailable at once; every call has a deadline (Spec.CallTimeout). Plugin
// processes die with the host, even a host killed with SIGKILL: the kernel
// sends them SIGKILL (Pdeathsig, Linux) and sdk.Serve exits when its parent
// changes.
//
// Plugin calls cost a round trip to another process (about 0.1 ms): they
// belong in login and sign-up flows, never on the /verify path.
package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// Spec is one plugin of the configuration.
type Spec struct {
	Name string // unique, [a-z][a-z0-9_-]*: the KV namespace and the log tag
	// Kind is core.KindIdentityProvider or core.KindIntegration: the entry
	// serves only that kind, and a binary that does not serve it fails its
	// start for good. Empty: every kind the binary serves.
	Kind    string
	Builtin string // a built-in plugin ("email"), run as Options.Launcher + [Builtin]
	Path    string // an external plugin: a file inside Options.Dir (relative to it, or absolute)
	SHA256  string // the external plugin's SHA-256, hex; required with Path
	// Config is the plugin's configuration block, a JSON object. Each key
	// ending in "Env" names an environment variable: the host resolves it with
	// Options.LookupEnv into a secret keyed by the setting's dotted path without
	// "Env" (smtp.passwordEnv gives Secrets["smtp.password"]) and removes the
	// key from the block it sends.
	Config      json.RawMessage
	CallTimeout time.Duration // the deadline of every call to the plugin; 0: 5 s
}

// Options configure a Host. Zero values take the defaults given.
type Options struct {
	Dir string // the external plugins' folder
	// Launcher is the command that runs a built-in plugin, to which its name
	// is appended. Default: this executable and "plugin" ({os.Executable(),
	// "plugin"}); tests pass {os.Args[0], "plugin"} and a marker in Env.
	Launcher []string
	// Env is the whole environment of plugin processes (and go-plugin's
	// handshake variables): they never inherit the host's, which holds the
	// Redis password and the admin keys.
	Env       []string
	LookupEnv func(string) (string, bool) // resolves ...Env settings; default os.LookupEnv
	Log       zerolog.Logger              // the host's log; each line gets plugin=NAME
	// KV returns the key-value namespace of the plugin called name (the
	// store's PluginKV). Required when there are plugins.
	KV             func(name string) core.KV
	StartTimeout   time.Duration // for the handshake; default 10 s
	HealthInterval time.Duration // between health checks; default 5 s
	// MaxRestarts restarts within RestartWindow are allowed: the next crash
	// marks the plugin failed. Default 5 in 1 minute; negative: never restart.
	MaxRestarts   int
	RestartWindow time.Duration
	// ObserveCall, when set, is told of every call to a plugin as it returns
	// (metrics): the plugin's name, the method ("SendVerification"), how long
	// it took and its error. A call to a plugin that is down is told too.
	ObserveCall func(plugin, method string, took time.Duration, err error)
}

// Defaults of Spec and Options.
const (
	DefaultCallTimeout    = 5 * time.Second
	DefaultStartTimeout   = 10 * time.Second
	DefaultHealthInterval = 5 * time.Second
	DefaultMaxRestarts    = 5
	DefaultRestartWindow  = time.Minute
)

// Host runs the plugins of the configuration. It implements core.Providers.
type Host struct {
	opt      Options
	plugins  []*managed // in configuration order
	byName   map[string]*managed
	versions map[int]plugin.PluginSet // sdk.VersionedPlugins; a test changes it

	mu      sync.Mutex
	started bool
	closed  bool
	sockDir string
	cancel  context.CancelFunc // ends the supervisors
}

var _ core.Providers = (*Host)(nil)

// New checks every spec and returns a Host that has started nothing yet.
// Each problem is reported, naming the plugin and why: a duplicate or invalid
// name, a kind that is neither empty nor known, neither or both of Builtin and Path, an external
// binary outside Dir (after symlinks), world-writable, not executable or
// whose SHA-256 differs, a malformed config block, an ...Env setting naming
// an unset variable.
func New(specs []Spec, opt Options) (*Host, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if opt.LookupEnv == nil {
		opt.LookupEnv = os.LookupEnv
	}
	opt.StartTimeout = orDefault(opt.StartTimeout, DefaultStartTimeout)
	opt.HealthInterval = orDefault(opt.HealthInterval, DefaultHealthInterval)
	opt.RestartWindow = orDefault(opt.RestartWindow, DefaultRestartWindow)
	if opt.MaxRestarts == 0 {
		opt.MaxRestarts = DefaultMaxRestarts
	}
	if opt.StartTimeout < 0 || opt.HealthInterval < 0 || opt.RestartWindow < 0 {
		bad("plugin options: negative durations")
	}
	if len(specs) > 0 && opt.KV == nil {
		bad("plugin options: no KV for the plugins' host services")
	}
	if len(opt.Launcher) == 0 && slices.ContainsFunc(specs, func(s Spec) bool { return s.Builtin != "" }) {
		exe, err := os.Executable()
		if err != nil {
			bad("plugin options: the launcher of built-in plugins: %v", err)
		}
		opt.Launcher = []string{exe, "plugin"}
	}
	opt.Env = slices.Clone(opt.Env)

	h := &Host{opt: opt, byName: map[string]*managed{}, versions: sdk.VersionedPlugins}
	for i, s := range specs {
		m, err := h.newManaged(s)
		if err != nil {
			name := s.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, err := range j.Unwrap() {
					bad("plugin %q: %w", name, err)
				}
			} else {
				bad("plugin %q: %w", name, err)
			}
			continue
		}
		if _, dup := h.byName[s.Name]; dup {
			bad("plugin %q: the name is used twice", s.Name)
			continue
		}
		h.byName[s.Name] = m
		h.plugins = append(h.plugins, m)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return h, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// newManaged checks s and prepares its supervision.
func (h *Host) newManaged(s Spec) (*managed, error) {
	switch {
	case !validName.MatchString(s.Name):
		return nil, errors.New("a name is a lowercase letter then up to 62 lowercase letters, digits, '-' or '_'")
	case s.Kind != "" && !slices.Contains(allKinds, s.Kind):
		return nil, fmt.Errorf("kind %q is neither %s nor %s (nor left out: every kind the plugin serves)", s.Kind, core.KindIdentityProvider, core.KindIntegration)
	case (s.Builtin == "") == (s.Path == ""):
		return nil, errors.New("set either builtin or path")
	case s.Builtin != "" && !validName.MatchString(s.Builtin):
		return nil, fmt.Errorf("builtin %q is not a plugin name", s.Builtin)
	case s.Builtin != "" && s.SHA256 != "":
		return nil, errors.New("sha256 goes with path, not with builtin")
	case s.CallTimeout < 0:
		return nil, errors.New("negative call timeout")
	}
	s.CallTimeout = orDefault(s.CallTimeout, DefaultCallTimeout)
	m := &managed{
		host:      h,
		spec:      s,
		log:       h.opt.Log.With().Str("plugin", s.Name).Logger(),
		state:     core.PluginStopped,
		firstDone: make(chan struct{}),
		done:      make(chan struct{}),
	}
	m.idp.m, m.integ.m = m, m
	if s.Kind != "" {
		m.kinds = []string{s.Kind}
	}
	if s.Builtin != "" {
		m.argv = append(slices.Clone(h.opt.Launcher), s.Builtin)
	} else {
		b, err := checkBinary(h.opt.Dir, s.Path, s.SHA256)
		if err != nil {
			return nil, err
		}
		m.bin = &b
		m.argv = []string{b.path}
	}
	var err error
	if m.config, m.secrets, err = splitSecrets(s.Config, h.opt.LookupEnv); err != nil {
		return nil, err
	}
	if h.opt.KV != nil {
		m.kv = h.opt.KV(s.Name)
	}
	return m, nil
}

// Start starts every plugin, in parallel, and returns once each has started
// or failed its first start (or when ctx ends). A plugin that fails is logged
// and keeps being retried in the background like a crashed one, unless its
// failure is permanent (a refused handshake or configuration, a binary that
// changed); either way the host runs on, and calls to the plugin answer
// Unavailable: a missing mail plugin must not keep the admin API down. Start
// returns an error only when called twice or after Close, or when ctx ends;
// then too the plugins keep starting in the background until Close.
func (h *Host) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.started || h.closed {
		h.mu.Unlock()
		return errors.New("pluginhost: Start called twice or after Close")
	}
	h.started = true
	if len(h.plugins) == 0 {
		h.mu.Unlock()
		return nil
	}
	dir, err := os.MkdirTemp(socketBase(), "ghp")
	if err != nil {
		h.mu.Unlock()
		return fmt.Errorf("pluginhost: a folder for the plugins' sockets: %w", err)
	}
	h.sockDir = dir
	// The supervisors outlive Start's ctx: Close ends them.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel = cancel
	for _, m := range h.plugins {
		m.setState(core.PluginStarting)
		go m.run(runCtx)
	}
	h.mu.Unlock()
	for _, m := range h.plugins {
		select {
		case <-m.firstDone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// socketBase is where the socket folder goes: the temporary directory unless
// its path is so long that a socket path in it could pass the 104 bytes of
// sun_path on some systems (macOS's $TMPDIR), then /tmp.
func socketBase() string {
	dir := os.TempDir()
	if len(dir) > 40 {
		if fi, err := os.Stat("/tmp"); err == nil && fi.IsDir() {
			return "/tmp"
		}
	}
	return dir
}

// IdentityProvider returns the identity provider configured under name: a
// proxy to whichever process currently serves it, valid for the host's life.
// There is one when the entry's kind is KindIdentityProvider or left out.
// Its calls answer Unavailable at once while the plugin is not running,
// Unavailable after the plugin's CallTimeout if it does not answer, and
// NotFound while the running process serves no identity provider. Describe
// answers what the plugin said of its identity provider at its start, without
// a round trip.
func (h *Host) IdentityProvider(name string) (core.IdentityProvider, bool) {
	m, ok := h.byName[name]
	if !ok || !m.mayServe(core.KindIdentityProvider) {
		return nil, false
	}
	return &m.idp, true
}

// Integration returns the integration configured under name, as
// IdentityProvider does.
func (h *Host) Integration(name string) (core.Integration, bool) {
	m, ok := h.byName[name]
	if !ok || !m.mayServe(core.KindIntegration) {
		return nil, false
	}
	return &m.integ, true
}

// IntegrationNames lists the plugins serving an integration, as their
// processes last said (an entry without a kind whose binary serves none is
// left out), in configuration order.
func (h *Host) IntegrationNames() []string {
	var names []string
	for _, m := range h.plugins {
		if m.mayServe(core.KindIntegration) && slices.Contains(m.status().Kinds, core.KindIntegration) {
			names = append(names, m.spec.Name)
		}
	}
	return names
}

// Status returns every plugin's status, in configuration order.
func (h *Host) Status() []core.PluginStatus {
	out := make([]core.PluginStatus, len(h.plugins))
	for i, m := range h.plugins {
		out[i] = m.status()
	}
	return out
}

// Close stops the host: calls answer Unavailable from now on, calls in
// flight may finish until ctx ends, then the processes are stopped and the
// socket folder removed. It returns ctx's error if ctx ended before the calls
// in flight did (they are cut, and the processes stopped all the same).
// Calling it again does nothing.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	started, cancel, dir := h.started, h.cancel, h.sockDir
	h.mu.Unlock()

	// New calls fail from here on; then the supervisors end, so that none
	// restarts a plugin stopped below; then the calls in flight drain.
	conns := make([]*conn, len(h.plugins))
	for i, m := range h.plugins {
		conns[i] = m.stop()
	}
	if cancel != nil {
		cancel()
	}
	var (
		wg  sync.WaitGroup
		cut atomic.Bool
	)
	for i, c := range conns {
		if c != nil {
			wg.Go(func() {
				if !h.plugins[i].shutdown(ctx, c) {
					cut.Store(true)
				}
			})
		}
	}
	wg.Wait()
	var err error
	if cut.Load() {
		err = ctx.Err()
	}
	if started {
		for _, m := range h.plugins {
			select {
			case <-m.done:
			case <-ctx.Done():
				err = ctx.Err() // a start is stuck in its handshake; it cleans up after itself
			}
		}
	}
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	return err
}
