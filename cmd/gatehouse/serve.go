package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/adminapi"
	"github.com/gatehouse/gatehouse/adminapi/openapi"
	"github.com/gatehouse/gatehouse/configs"
	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/pluginhost"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// Server timeouts (slow clients cannot hold connections) and the grace given to
// in-flight requests at shutdown.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownGrace     = 10 * time.Second
	startupPing       = 5 * time.Second
)

// serve runs the admin and public listeners until ctx ends, then shuts down
// gracefully: in-flight requests finish, then the store closes.
//
// It binds both listeners before anything else: a second instance started on
// ports in use must fail before it creates an admin key, writes a key file or
// starts a plugin.
func serve(ctx context.Context, cfg Config, log zerolog.Logger, stderr *os.File) error {
	setGCPercent()
	listeners, err := listen(cfg)
	if err != nil {
		return err
	}
	defer func() {
		for _, ln := range listeners {
			ln.Close() // once Serve took it, already closed: harmless
		}
	}()

	redisURL := cfg.Redis.Target()
	embedded := redisURL == ""
	if embedded {
		url, stop, err := startEmbeddedRedis(ctx, log)
		if err != nil {
			return err
		}
		defer stop()
		redisURL = url
	}
	opts, err := redisstore.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("redis.url: %w", err)
	}
	client := redisstore.NewClient(opts)
	store := redisstore.New(client, cfg.Redis.StoreOptions())
	defer store.Close()
	if err := pingUntil(ctx, store, startupPing); err != nil {
		return fmt.Errorf("redis at %s does not answer: %w", redisstore.RedactURL(redisURL), err)
	}
	// List indexes of the layout before the buckets are moved before serving
	// (docs/scale.md); a store already upgraded answers in one round trip.
	if err := store.UpgradeIndexes(ctx); err != nil {
		return fmt.Errorf("upgrading the list indexes: %w", err)
	}
	log.Info().Str("redis", redisstore.RedactURL(redisURL)).Str("prefix", cfg.Redis.Prefix).Msg("store ready")

	reg := newRegistry(client)
	plugins, err := startPlugins(ctx, cfg, store, log, newPluginCalls(reg).observe)
	if err != nil {
		return err
	}
	reg.MustRegister(pluginCollector{plugins.Status})
	defer func() {
		// After the listeners drained (below), before the store closes (deferred above).
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := plugins.Close(ctx); err != nil {
			log.Warn().Err(err).Msg("plugins stopped before their calls finished")
		}
	}()
	svc, err := newService(cfg, store, store.Limiter(), plugins, embedded, log)
	if err != nil {
		return err
	}
	go sweepExpiredUsers(ctx, svc, log)
	go svc.FollowChanges(ctx) // the /verify cache is used only while this follows
	if err := bootstrapAdminKey(ctx, svc, cfg, stderr, log); err != nil {
		return err
	}

	trusted, err := trustedProxies(cfg.Security.TrustedProxies)
	if err != nil {
		return err
	}
	var accessLog io.Writer // nil: the base logger writes the access lines
	if accessW := newAccessLog(cfg, stderr); accessW != nil {
		defer accessW.Close() // after the listeners drained (below): their last lines
		reg.MustRegister(droppedLines(accessW))
		accessLog = accessW
	}
	api := adminapi.New(svc, adminapi.Options{Log: log, AccessLog: accessLog, TrustedProxies: trusted, AllowedOrigins: cfg.CORS.AllowedOrigins, Plugins: plugins,
		Registry: reg, MetricsRequireKey: cfg.Metrics.RequireKey})
	admin, public := api.Admin(), api.Public()
	if wrap, ok := ctx.Value(wrapListenersKey{}).(wrapListeners); ok {
		admin, public = wrap(api.Routes(), admin, public)
	}
	servers := []*http.Server{
		newHTTPServer(cfg.AdminAddr, admin, log),
		newHTTPServer(cfg.PublicAddr, public, log),
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		ln := listeners[i]
		log.Info().Str("addr", ln.Addr().String()).Msg(listenerNames[i] + " listening")
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", listenerNames[i], err)
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	log.Info().Msg("shutting down: finishing in-flight requests")
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, srv := range servers {
		if serr := srv.Shutdown(shutCtx); serr != nil {
			log.Warn().Err(serr).Str("addr", srv.Addr).Msg("shutdown cut requests short")
		}
	}
	if derr := svc.Drain(shutCtx); derr != nil {
		log.Warn().Err(derr).Msg("shutdown cut mails short")
	}
	return err
}

// gcPercent is serve's garbage-collection target when GOGC is not set: the
// heap may grow to 5 times what is live between collections, instead of Go's
// default of twice. A server's live heap is small (tens of MB) and its
// requests allocate quickly, so at the default it collects several times a
// second under load, and each collection's marking takes a quarter of the
// CPU and slows the requests it overlaps (docs/operations.md, "Memory and
// garbage collection").
const gcPercent = 400

// setGCPercent sets gcPercent unless GOGC says otherwise.
func setGCPercent() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
}

// listenerNames name the listeners of listen, in its order.
var listenerNames = []string{"admin API", "public API"}

// listen binds the admin and public addresses, in that order, or neither: when
// the second fails, the first is closed. An address in use gets a message that
// says so, and that nothing was done.
func listen(cfg Config) ([]net.Listener, error) {
	var lns []net.Listener
	for i, s := range []struct{ key, addr string }{{"adminAddr", cfg.AdminAddr}, {"publicAddr", cfg.PublicAddr}} {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("%s: %s %s is already in use (is another gatehouse running?); nothing was started or written", listenerNames[i], s.key, s.addr)
			}
			return nil, fmt.Errorf("%s: %s %s: %w", listenerNames[i], s.key, s.addr, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// newService builds the core service from the configuration: models, password
// hashing and the encryption keyring.
func newService(cfg Config, store core.Store, limiter core.Limiter, providers core.Providers, embedded bool, log zerolog.Logger) (*core.Service, error) {
	var modelFS fs.FS = configs.Models
	if cfg.Models.Path != "" {
		modelFS = os.DirFS(cfg.Models.Path)
	}
	models, err := core.LoadModels(modelFS)
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	var keyring *core.Keyring
	switch {
	case cfg.EncryptionKeys != "":
		if keyring, err = core.ParseKeyring(cfg.EncryptionKeys); err != nil {
			return nil, fmt.Errorf("GATEHOUSE_ENCRYPTION_KEYS: %w", err)
		}
	case embedded:
		keyring = core.NewEphemeralKeyring()
		log.Info().Msg("jwt secrets are encrypted with an ephemeral key (embedded store: it lives as long as the data)")
	default:
		log.Warn().Msg("GATEHOUSE_ENCRYPTION_KEYS is not set: jwt credentials cannot be created")
	}
	a := cfg.Security.Argon2
	hasher := core.NewHasher(core.Argon2Params{
		Memory: uint32(a.MemoryKiB), Iterations: uint32(a.Iterations), Parallelism: uint8(a.Parallelism),
		SaltLen: core.DefaultArgon2.SaltLen, KeyLen: core.DefaultArgon2.KeyLen,
	}, cfg.Security.HashConcurrency())
	return core.NewService(store, core.Options{
		Models: models, Hasher: hasher, Keyring: keyring, AdminKey: cfg.AdminKey,
		Limiter: limiter, Policy: cfg.Policy(), Providers: providers, PublicURL: cfg.publicURL(),
		RedirectURIs: cfg.Auth.RedirectURIs, NoEmailLink: cfg.noEmailLink(), VerifyCache: cfg.VerifyCache.Options(),
		ReportError: func(err error) { log.Error().Err(err).Msg("background work failed") },
	}), nil
}

// wrapListeners wraps the handlers of both listeners, whose routes are
// routes. The end-to-end tests put one in serve's context (at
// wrapListenersKey) to check every exchange against the OpenAPI document;
// nothing else sets it.
type wrapListeners func(routes []openapi.Route, admin, public http.Handler) (http.Handler, http.Handler)

type wrapListenersKey struct{}

// newHTTPServer returns a server with those timeouts.
func newHTTPServer(addr string, h http.Handler, log zerolog.Logger) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h,
		ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout,
		ErrorLog: stdLogger(log),
	}
}

// trustedProxies parses the prefixes Validate has checked.
func trustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, ok := parsePrefix(s)
		if !ok {
			return nil, fmt.Errorf("security.trustedProxies: %q is not an address or CIDR prefix", s)
		}
		out = append(out, p)
	}
	return out, nil
}

// pluginEnv is what plugin processes may see of the host's environment: never a
// GATEHOUSE_ variable, a Redis password or an admin key.
var pluginEnv = []string{"TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "GORACE"}

// startPlugins starts the configured plugins. A plugin that fails to start
// does not stop the server: it is retried, and its calls answer 503.
func startPlugins(ctx context.Context, cfg Config, store core.Store, log zerolog.Logger, observe func(plugin, method string, took time.Duration, err error)) (*pluginhost.Host, error) {
	specs, err := pluginSpecs(cfg)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, k := range pluginEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	host, err := pluginhost.New(specs, pluginhost.Options{Dir: cfg.PluginDir, KV: store.PluginKV, Log: log, Env: env, ObserveCall: observe})
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	if err := host.Start(ctx); err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	return host, nil
}

// pluginSpecs turns the plugins list into the host's specs, a built-in taking
// its call timeout and configuration defaults from its row of builtins. The
// kind stays as configured: without one, the host finds what the plugin
// serves at each start.
func pluginSpecs(cfg Config) ([]pluginhost.Spec, error) {
	specs := make([]pluginhost.Spec, 0, len(cfg.Plugins))
	for _, p := range cfg.Plugins {
		spec := pluginhost.Spec{Name: p.Name, Kind: p.Kind, Builtin: p.Builtin, Path: p.Path, SHA256: p.SHA256,
			CallTimeout: time.Duration(p.CallTimeout), Config: p.Config}
		if b, ok := builtinNamed(p.Builtin); ok {
			spec.CallTimeout = cmp.Or(spec.CallTimeout, b.callTimeout)
			if b.prepare != nil {
				raw, err := b.prepare(p.Config, cfg)
				if err != nil {
					return nil, fmt.Errorf("plugins: %s: %w", p.Name, err)
				}
				spec.Config = raw
			}
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// sweepExpiredUsers deletes never-verified sign-ups past their 24 h, every
// minute, until ctx ends.
func sweepExpiredUsers(ctx context.Context, svc *core.Service, log zerolog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := svc.SweepExpiredUsers(ctx, 1000)
			if err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Msg("sweeping expired sign-ups failed")
			} else if n > 0 {
				log.Info().Int("deleted", n).Msg("deleted sign-ups never verified within their time")
			}
		}
	}
}

// pingUntil pings the store until it answers or within passes: each ping is
// bounded by the store's read timeout, which a first connection (a TLS
// handshake, a Sentinel lookup) may exceed once.
func pingUntil(ctx context.Context, store core.Store, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		err := store.Ping(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
