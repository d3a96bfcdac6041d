package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/adminapi"
	"github.com/gatehouse/gatehouse/configs"
	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/pluginhost"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// Server timeouts (SPEC §6) and the grace given to in-flight requests at shutdown.
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
func serve(ctx context.Context, cfg Config, log zerolog.Logger, stderr *os.File) error {
	embedded := cfg.Redis.URL == ""
	redisURL := cfg.Redis.URL
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
	store := redisstore.New(client, redisstore.Options{Prefix: cfg.Redis.Prefix})
	defer store.Close()
	pingCtx, cancel := context.WithTimeout(ctx, startupPing)
	err = store.Ping(pingCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("redis at %s does not answer: %w", redisstore.RedactURL(redisURL), err)
	}
	log.Info().Str("redis", redisstore.RedactURL(redisURL)).Str("prefix", cfg.Redis.Prefix).Msg("store ready")

	plugins, err := startPlugins(ctx, cfg, store, log)
	if err != nil {
		return err
	}
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
	if key, err := svc.BootstrapAdminKey(ctx); err != nil {
		return fmt.Errorf("bootstrap admin key: %w", err)
	} else if key != "" {
		if err := showBootstrapKey(key, cfg, stderr, log); err != nil {
			return err
		}
	}

	trusted, err := trustedProxies(cfg.Security.TrustedProxies)
	if err != nil {
		return err
	}
	api := adminapi.New(svc, adminapi.Options{Log: log, TrustedProxies: trusted, AllowedOrigins: cfg.CORS.AllowedOrigins, Plugins: plugins})
	servers := []*http.Server{
		newHTTPServer(cfg.AdminAddr, api.Admin(), log),
		newHTTPServer(cfg.PublicAddr, api.Public(), log),
	}
	names := []string{"admin API", "public API"}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("%s: %w", names[i], err)
		}
		log.Info().Str("addr", ln.Addr().String()).Msg(names[i] + " listening")
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", names[i], err)
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
	return err
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
	}), nil
}

// newHTTPServer returns a server with the timeouts of SPEC §6.
func newHTTPServer(addr string, h http.Handler, log zerolog.Logger) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h,
		ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout,
		ErrorLog: stdLogger(log),
	}
}

// trustedProxies parses CIDR prefixes (a bare address is a single-host prefix).
func trustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("security.trustedProxies: %q is not an address or CIDR prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// emailCallTimeout bounds a call to the built-in email plugin unless configured:
// above its SMTP conversation's own 10 s limit, so a slow mail server is reported
// by the plugin, not cut off by the host.
const emailCallTimeout = 15 * time.Second

// pluginEnv is what plugin processes may see of the host's environment: never a
// GATEHOUSE_ variable, a Redis password or an admin key.
var pluginEnv = []string{"TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "GORACE"}

// startPlugins starts the configured plugins (SPEC §4). A plugin that fails to
// start does not stop the server: it is retried, and its calls answer 503.
func startPlugins(ctx context.Context, cfg Config, store core.Store, log zerolog.Logger) (*pluginhost.Host, error) {
	specs := make([]pluginhost.Spec, 0, len(cfg.Plugins))
	for _, p := range cfg.Plugins {
		spec := pluginhost.Spec{Name: p.Name, Kind: p.Kind, Builtin: p.Builtin, Path: p.Path, SHA256: p.SHA256, Config: p.Config}
		if p.CallTimeout != "" {
			d, err := time.ParseDuration(p.CallTimeout)
			if err != nil {
				return nil, fmt.Errorf("plugins: %s: callTimeout %q is not a duration", p.Name, p.CallTimeout)
			}
			spec.CallTimeout = d
		}
		if p.Builtin == "email" {
			if spec.CallTimeout == 0 {
				spec.CallTimeout = emailCallTimeout
			}
			raw, err := withDefaultOutbox(p.Config, filepath.Join(filepath.Dir(cfg.AdminKeyFile), "outbox"))
			if err != nil {
				return nil, fmt.Errorf("plugins: %s: %w", p.Name, err)
			}
			spec.Config = raw
		}
		specs = append(specs, spec)
	}
	var env []string
	for _, k := range pluginEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	host, err := pluginhost.New(specs, pluginhost.Options{Dir: cfg.PluginDir, KV: store.PluginKV, Log: log, Env: env})
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	if err := host.Start(ctx); err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	return host, nil
}

// withDefaultOutbox gives the built-in email provider an outbox folder when it
// has neither an SMTP server nor an outbox: mail then goes to .eml files.
func withDefaultOutbox(raw json.RawMessage, outbox string) (json.RawMessage, error) {
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("config is not a JSON object: %w", err)
		}
	}
	if m == nil {
		m = map[string]any{}
	}
	smtp, _ := m["smtp"].(map[string]any)
	if host, _ := smtp["host"].(string); host != "" || m["outbox"] != nil {
		return raw, nil
	}
	m["outbox"] = outbox
	return json.Marshal(m)
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
