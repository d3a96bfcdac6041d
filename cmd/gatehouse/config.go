package main

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// defaultConfigPath is the configuration file read when neither --config nor
// GATEHOUSE_CONFIG names one and the file exists.
const defaultConfigPath = "configs/gatehouse.yaml"

// minAdminKeyLen is the shortest GATEHOUSE_ADMIN_KEY accepted, in characters.
const minAdminKeyLen = 16

// OWASP's argon2id minimums (m=19 MiB, t=2, p=1): lower values are accepted, with a warning.
const (
	owaspArgon2MemoryKiB  = 19456
	owaspArgon2Iterations = 2
)

// Config is the server's configuration. The file (YAML, keys as in the JSON tags)
// overrides DefaultConfig, GATEHOUSE_* environment variables override the file,
// and flags override both; settings lists every key's variable and flag.
type Config struct {
	// AdminAddr is the admin API's listen address.
	AdminAddr string `json:"adminAddr"`
	// PublicAddr is the public API's (end users, apps, gateways) listen address.
	PublicAddr string `json:"publicAddr"`
	// AdminKeyFile is where a generated bootstrap admin key is written when stderr is
	// not a terminal. Empty in the file means $XDG_STATE_HOME/gatehouse/admin-key
	// (else $HOME/.local/state/gatehouse/admin-key); never the working directory.
	AdminKeyFile string         `json:"adminKeyFile"`
	Redis        RedisConfig    `json:"redis"`
	Log          LogConfig      `json:"log"`
	Models       ModelsConfig   `json:"models"`
	Security     SecurityConfig `json:"security"`
	Sessions     SessionsConfig `json:"sessions"`
	RateLimits   RateLimits     `json:"rateLimits"`
	VerifyCache  VerifyCache    `json:"verifyCache"`
	Signup       SignupConfig   `json:"signup"`
	Metrics      MetricsConfig  `json:"metrics"`
	// PublicURL is how browsers reach the public listener, the base of the links
	// in mails; empty: derived from PublicAddr (http://localhost:PORT).
	PublicURL string     `json:"publicURL"`
	CORS      CORSConfig `json:"cors"`
	Auth      AuthConfig `json:"auth"`
	// PluginDir holds external plugin binaries; a plugin's path must resolve
	// inside it.
	PluginDir string `json:"pluginDir"`
	// Plugins are the plugins to run; by default the built-in email
	// identity provider, mailing to an outbox folder.
	Plugins []PluginConfig `json:"plugins"`

	// AdminKey is GATEHOUSE_ADMIN_KEY: an operator-given admin key (scope admin),
	// held in memory only. Secrets never come from the file.
	AdminKey string `json:"-"`
	// EncryptionKeys is GATEHOUSE_ENCRYPTION_KEYS, "id:base64key[,id:base64key]",
	// parsed by core.ParseKeyring.
	EncryptionKeys string `json:"-"`
	// File is the absolute path of the configuration file loaded, "" when none was.
	File string `json:"-"`
}

// RedisConfig says which Redis holds the data.
type RedisConfig struct {
	// URL is redis://, rediss://, unix://, redis://...?master_name= (Sentinel) or
	// redis+cluster:// (Cluster); empty means an embedded in-memory miniredis.
	URL string `json:"url"`
	// Prefix starts every key, so that several deployments can share one Redis.
	Prefix string `json:"prefix"`
	// ReadTimeout bounds each read on a request path (a /verify, a GET): when
	// it passes the request answers 503, so a stalled Redis never holds a
	// gateway.
	ReadTimeout Duration `json:"readTimeout"`
	// WriteTimeout bounds each write step (a claim, a transaction, a script).
	WriteTimeout Duration `json:"writeTimeout"`
	// WaitReplicas makes every write wait, before it is acknowledged, until
	// that many replicas have it (Redis WAIT); past WaitTimeout it answers 503.
	// 0 turns it off; -1, the default, means 1 with Sentinel and 0 otherwise
	// (waitReplicas). Refused on a Cluster and on the embedded store.
	WaitReplicas int `json:"waitReplicas"`
	// WaitTimeout bounds that wait: at most half of WriteTimeout.
	WaitTimeout Duration `json:"waitTimeout"`
	// Sentinel names a Sentinel-managed primary, the alternative to a URL
	// with master_name (docs/redis.md).
	Sentinel SentinelConfig `json:"sentinel"`
}

// SentinelConfig names a primary that Redis Sentinel manages: Gatehouse asks
// the Sentinels where the primary is and follows it through failovers
// (go-redis' failover client).
type SentinelConfig struct {
	// MasterName is the name the Sentinels monitor the primary under.
	MasterName string `json:"masterName"`
	// Addrs are host:port of some of the Sentinels (one is enough, more ride
	// out a Sentinel that is down).
	Addrs []string `json:"addrs"`
}

// Target returns the Redis URL to use: URL, or with Sentinel set the
// equivalent redis://SENTINEL?master_name=NAME&addr=... URL; "" means the
// embedded store.
func (r RedisConfig) Target() string {
	if r.Sentinel.MasterName == "" || len(r.Sentinel.Addrs) == 0 || r.URL != "" {
		return r.URL
	}
	q := url.Values{"master_name": {r.Sentinel.MasterName}}
	for _, a := range r.Sentinel.Addrs[1:] {
		q.Add("addr", a)
	}
	return (&url.URL{Scheme: "redis", Host: r.Sentinel.Addrs[0], RawQuery: q.Encode()}).String()
}

// LogConfig shapes the zerolog output.
type LogConfig struct {
	// Level is trace, debug, info, warn or error.
	Level string `json:"level"`
	// Format is auto (pretty on a terminal, JSON otherwise), json or pretty.
	Format string `json:"format"`
}

// ModelsConfig locates the JSON schemas of custom user and app properties.
type ModelsConfig struct {
	// Path is a folder holding users.json, applications.json and credentials.json. Empty means the
	// models/ folder beside the configuration file when there is one, else the
	// defaults embedded in the binary.
	Path string `json:"path"`
}

// SecurityConfig holds the hashing and proxy settings. The admin body limit is
// fixed at 1 MiB and deliberately not configurable.
type SecurityConfig struct {
	Argon2 Argon2Config `json:"argon2"`
	// MaxConcurrentHashes caps concurrent argon2 computations; 0 means one per CPU.
	MaxConcurrentHashes int `json:"maxConcurrentHashes"`
	// TrustedProxies lists the CIDR prefixes (or bare addresses) whose
	// X-Forwarded-For is believed.
	TrustedProxies []string `json:"trustedProxies"`
}

// SessionsConfig holds session and token lifetimes.
type SessionsConfig struct {
	// TTL is a login session's absolute lifetime.
	TTL Duration `json:"ttl"`
	// MaxPerUser caps a user's live sessions when its sessionsLimit is null; the
	// oldest is evicted.
	MaxPerUser int `json:"maxPerUser"`
	// OAuthTokenTTL is the lifetime of a client-credentials access token.
	OAuthTokenTTL Duration `json:"oauthTokenTTL"`
}

// VerifyCache sizes each process' cache of resolved /verify answers,
// invalidated through Redis pub/sub (docs/verify.md).
type VerifyCache struct {
	// Size is how many verifications are kept; 0 turns the cache off.
	Size int `json:"size"`
	// TTL is how long a success is kept, at most 5s.
	TTL Duration `json:"ttl"`
	// NegativeTTL is how long a refusal that counts no failure (deactivated,
	// revoked, expired) is kept, at most 1s.
	NegativeTTL Duration `json:"negativeTTL"`
}

// Options returns the settings for core.
func (v VerifyCache) Options() core.VerifyCacheOptions {
	return core.VerifyCacheOptions{Size: v.Size, TTL: time.Duration(v.TTL), NegativeTTL: time.Duration(v.NegativeTTL)}
}

// RateLimits are the Redis-backed limits, shared by every instance.
type RateLimits struct {
	// LoginPerIdentifier and LoginPerAddress count failed logins only.
	LoginPerIdentifier Rate `json:"loginPerIdentifier"`
	LoginPerAddress    Rate `json:"loginPerAddress"`
	// VerifyFailures counts failed key and Basic attempts at /verify per key id
	// (or username) and client address.
	VerifyFailures Rate `json:"verifyFailures"`
	// VerifyFailuresPerAddress counts every failed key and Basic attempt at
	// /verify per client address, whatever key id or username it named.
	VerifyFailuresPerAddress Rate `json:"verifyFailuresPerAddress"`
	// SignupPerAddress counts sign-ups per client address.
	SignupPerAddress Rate `json:"signupPerAddress"`
	// FlowsPerAddress counts redirect sign-ins and integration links started
	// per client address.
	FlowsPerAddress Rate `json:"flowsPerAddress"`
	// MailPerAddress and MailPerEmail count verification and reset mails asked
	// for (a sign-up's own first mail does not count).
	MailPerAddress Rate `json:"mailPerAddress"`
	MailPerEmail   Rate `json:"mailPerEmail"`
	// DialectCalls is each admin key's call budget on the dialects that
	// announce one (publica.la's X-RateLimit-* headers).
	DialectCalls Rate `json:"dialectCalls"`
}

// MetricsConfig is about the admin listener's GET /metrics (Prometheus).
type MetricsConfig struct {
	// RequireKey puts /metrics behind an admin key (scope admin or read), sent
	// as the admin API's are (Prometheus: authorization.credentials). Off,
	// anyone who reaches the admin listener may read it.
	RequireKey bool `json:"requireKey"`
}

// SignupConfig holds the rules of self-service sign-up.
type SignupConfig struct {
	// RequireVerifiedEmail refuses password logins of users who signed up by
	// email and never verified it (admin-created users are never held to it).
	RequireVerifiedEmail bool `json:"requireVerifiedEmail"`
	// UnverifiedTTL is how long a never-verified email sign-up lives.
	UnverifiedTTL Duration `json:"unverifiedTTL"`
}

// AuthConfig holds the settings of redirect sign-ins and integrations.
type AuthConfig struct {
	// RedirectURIs are the addresses a redirect sign-in or an integration may
	// send the browser back to, besides the redirectUri of every active app;
	// exact matches only.
	RedirectURIs []string `json:"redirectURIs"`
}

// CORSConfig lists the browser origins allowed to call the public API.
type CORSConfig struct {
	AllowedOrigins []string `json:"allowedOrigins"`
}

// PluginConfig declares one plugin: a built-in (run as `gatehouse plugin NAME`)
// or an external binary in PluginDir with its SHA-256. Keys of Config ending in
// "Env" name environment variables holding secrets; the host resolves them and
// hands them to the plugin, never the variables themselves.
type PluginConfig struct {
	Name string `json:"name"`
	// Kind (identity_provider or integration) makes the entry serve only that
	// kind of its plugin, which must serve it. Left out, the entry serves
	// every kind the plugin serves.
	Kind    string `json:"kind,omitempty"`
	Builtin string `json:"builtin,omitempty"`
	Path    string `json:"path,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	// CallTimeout is the deadline of each call; 0 means the built-in's own
	// default, else pluginhost.DefaultCallTimeout.
	CallTimeout Duration        `json:"callTimeout,omitempty"`
	Config      json.RawMessage `json:"config,omitempty"`
	// LinkByEmail lets a sign-in through this identity provider link to the
	// existing user of the email the provider says is verified; nil means
	// true. False: such a sign-in makes a user of its own, without the email.
	LinkByEmail *bool `json:"linkByEmail,omitempty"`
}

// Argon2Config holds the argon2id parameters for passwords and basic-auth secrets.
type Argon2Config struct {
	MemoryKiB   int `json:"memoryKiB"`
	Iterations  int `json:"iterations"`
	Parallelism int `json:"parallelism"`
}

// DefaultConfig returns the built-in configuration, before any file, variable or
// flag. AdminKeyFile and Models.Path are left empty: Load derives them. The
// policy, store and hashing defaults are those of their packages, never
// repeated here.
func DefaultConfig() Config {
	p := core.DefaultPolicy()
	a := core.DefaultArgon2
	return Config{
		AdminAddr:  "127.0.0.1:9876",
		PublicAddr: ":8080",
		Redis: RedisConfig{Prefix: redisstore.DefaultPrefix,
			ReadTimeout: Duration(redisstore.DefaultReadTimeout), WriteTimeout: Duration(redisstore.DefaultWriteTimeout),
			WaitReplicas: autoWaitReplicas, WaitTimeout: Duration(redisstore.DefaultWaitTimeout),
			Sentinel: SentinelConfig{Addrs: []string{}}},
		Log: LogConfig{Level: "info", Format: "auto"},
		Security: SecurityConfig{
			Argon2:         Argon2Config{MemoryKiB: int(a.Memory), Iterations: int(a.Iterations), Parallelism: int(a.Parallelism)},
			TrustedProxies: []string{"127.0.0.1/32", "::1/128"},
		},
		Plugins:  defaultPlugins(),
		Sessions: SessionsConfig{TTL: Duration(p.SessionTTL), MaxPerUser: p.MaxSessions, OAuthTokenTTL: Duration(p.OAuthTokenTTL)},
		RateLimits: RateLimits{
			LoginPerIdentifier: Rate(p.LoginPerIdentifier), LoginPerAddress: Rate(p.LoginPerAddress),
			VerifyFailures: Rate(p.VerifyFailures), VerifyFailuresPerAddress: Rate(p.VerifyFailuresPerAddress),
			SignupPerAddress: Rate(p.SignupPerAddress), FlowsPerAddress: Rate(p.FlowsPerAddress), MailPerAddress: Rate(p.MailPerAddress), MailPerEmail: Rate(p.MailPerEmail),
			DialectCalls: Rate(p.DialectCalls),
		},
		Signup:      SignupConfig{RequireVerifiedEmail: p.RequireVerifiedEmail, UnverifiedTTL: Duration(p.UnverifiedTTL)},
		VerifyCache: VerifyCache{Size: core.DefaultVerifyCacheSize, TTL: Duration(core.DefaultVerifyCacheTTL), NegativeTTL: Duration(core.MaxVerifyCacheNegativeTTL)},
	}
}

// Duration is a Go duration ("500ms", "90s", "24h"), a string in the file, a
// variable or a flag, parsed once when the configuration is loaded.
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 500ms, 90s, 15m, 24h)", b)
	}
	*d = Duration(v)
	return nil
}

// String writes d as one would configure it: "24h", "1h30m", "500ms".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Rate is a core.Rate written "COUNT/PERIOD": a positive count and a period that
// is second, minute, hour, day or a positive Go duration ("10/minute", "3/1h").
type Rate core.Rate

// ratePeriods are the period words a Rate may use.
var ratePeriods = []struct {
	word string
	d    time.Duration
}{{"second", time.Second}, {"minute", time.Minute}, {"hour", time.Hour}, {"day", 24 * time.Hour}}

// UnmarshalText parses "COUNT/PERIOD".
func (r *Rate) UnmarshalText(b []byte) error {
	bad := fmt.Errorf("%q is not COUNT/PERIOD (e.g. 10/minute, 3/hour, 5/30s)", b)
	count, period, ok := strings.Cut(strings.TrimSpace(string(b)), "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if !ok || err != nil || n < 1 {
		return bad
	}
	period = strings.TrimSpace(period)
	d, err := time.ParseDuration(period)
	for _, p := range ratePeriods {
		if p.word == period {
			d, err = p.d, nil
		}
	}
	if err != nil || d <= 0 {
		return bad
	}
	*r = Rate{Count: n, Per: d}
	return nil
}

// String writes r as one would configure it: "10/minute", "5/30s".
func (r Rate) String() string {
	for _, p := range ratePeriods {
		if p.d == r.Per {
			return fmt.Sprintf("%d/%s", r.Count, p.word)
		}
	}
	return fmt.Sprintf("%d/%s", r.Count, Duration(r.Per))
}

// Policy returns the session and rate-limit settings for core: every value was
// parsed and checked when the configuration was loaded and validated, so
// nothing can fail here. RememberSuccess is not configurable and keeps core's
// default.
func (c Config) Policy() core.Policy {
	p := core.DefaultPolicy()
	p.SessionTTL = time.Duration(c.Sessions.TTL)
	p.MaxSessions = c.Sessions.MaxPerUser
	p.OAuthTokenTTL = time.Duration(c.Sessions.OAuthTokenTTL)
	p.LoginPerIdentifier = core.Rate(c.RateLimits.LoginPerIdentifier)
	p.LoginPerAddress = core.Rate(c.RateLimits.LoginPerAddress)
	p.VerifyFailures = core.Rate(c.RateLimits.VerifyFailures)
	p.VerifyFailuresPerAddress = core.Rate(c.RateLimits.VerifyFailuresPerAddress)
	p.SignupPerAddress = core.Rate(c.RateLimits.SignupPerAddress)
	p.FlowsPerAddress = core.Rate(c.RateLimits.FlowsPerAddress)
	p.MailPerAddress = core.Rate(c.RateLimits.MailPerAddress)
	p.MailPerEmail = core.Rate(c.RateLimits.MailPerEmail)
	p.DialectCalls = core.Rate(c.RateLimits.DialectCalls)
	p.UnverifiedTTL = time.Duration(c.Signup.UnverifiedTTL)
	p.RequireVerifiedEmail = c.Signup.RequireVerifiedEmail
	return p
}

// StoreOptions returns the redisstore options the configuration sets.
func (r RedisConfig) StoreOptions() redisstore.Options {
	return redisstore.Options{Prefix: r.Prefix, ReadTimeout: time.Duration(r.ReadTimeout), WriteTimeout: time.Duration(r.WriteTimeout),
		WaitReplicas: r.waitReplicas(), WaitTimeout: time.Duration(r.WaitTimeout)}
}

// autoWaitReplicas is redis.waitReplicas' default: decided by the deployment.
const autoWaitReplicas = -1

// deployment names the kind of Redis the configuration points at: embedded,
// server, sentinel or cluster (by the URL's scheme and master_name; a URL that
// does not parse counts as a server, and Validate reports it).
func (r RedisConfig) deployment() string {
	target := r.Target()
	if target == "" {
		return "embedded"
	}
	u, err := url.Parse(target)
	switch {
	case err != nil:
		return "server"
	case strings.HasSuffix(u.Scheme, "+cluster"):
		return "cluster"
	case u.Query().Has("master_name"):
		return "sentinel"
	}
	return "server"
}

// waitReplicas is redis.waitReplicas with its default decided: with
// Sentinel, whose failovers are what loses writes not yet replicated, every
// write waits for one replica; a single server has no replica to wait for,
// and a Cluster or the embedded store cannot wait (docs/redis.md).
func (r RedisConfig) waitReplicas() int {
	if r.WaitReplicas != autoWaitReplicas {
		return r.WaitReplicas
	}
	if r.deployment() == "sentinel" {
		return 1
	}
	return 0
}

// waitChecks are the problems of redis.waitReplicas and redis.waitTimeout.
func (r RedisConfig) waitChecks() []check {
	n := r.waitReplicas()
	return []check{
		{r.WaitReplicas < autoWaitReplicas, fmt.Sprintf("redis.waitReplicas %d must be 0 (off), a number of replicas, or -1 (1 with Sentinel, else 0)", r.WaitReplicas)},
		{n > 0 && r.deployment() == "cluster", "redis.waitReplicas is not supported on a Redis Cluster (WAIT would reach an arbitrary node, not the master of the slot written): set it to 0"},
		{n > 0 && r.deployment() == "embedded", "redis.waitReplicas needs a Redis with replicas: the embedded store has none; set it to 0"},
		{r.WaitTimeout < Duration(time.Millisecond) || r.WaitTimeout > r.WriteTimeout/2,
			fmt.Sprintf("redis.waitTimeout %s must be between 1ms and half of redis.writeTimeout (%s), so the wait fits in its write step", r.WaitTimeout, r.WriteTimeout/2)},
	}
}

// HashConcurrency returns MaxConcurrentHashes, or the number of CPUs when it is 0.
func (s SecurityConfig) HashConcurrency() int {
	if s.MaxConcurrentHashes > 0 {
		return s.MaxConcurrentHashes
	}
	return runtime.NumCPU()
}

// lookupEnv is os.LookupEnv, injectable in tests.
type lookupEnv func(key string) (string, bool)

// get returns the variable's value; set but empty counts as unset.
func (env lookupEnv) get(key string) (string, bool) {
	v, ok := env(key)
	return v, ok && v != ""
}

// setting is one configuration key with its environment variable and flag.
type setting struct {
	path  string // JSON path in the file, "redis.url"
	env   string
	flag  string
	usage string // for the flag; a `quoted` word names the value
	// field points into c at the setting's field: a *string, *int, *bool,
	// *[]string, *Duration, *Rate or *[]PluginConfig.
	field func(c *Config) any
	// def describes a default that is derived at load rather than held by
	// DefaultConfig; "" shows DefaultConfig's value.
	def string
}

// set parses v, as a variable or a flag gives it, into c's field.
func (s setting) set(c *Config, v string) error {
	switch p := s.field(c).(type) {
	case *string:
		*p = v
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p = b
	case *[]string:
		list := []string{}
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		*p = list
	case *Duration:
		return p.UnmarshalText([]byte(v))
	case *Rate:
		return p.UnmarshalText([]byte(v))
	case *[]PluginConfig:
		var list []PluginConfig
		if err := decodeStrict([]byte(v), &list, s.path); err != nil {
			if ce, ok := errors.AsType[*ConfigError](err); ok {
				return errors.New(strings.Join(ce.Problems, "; "))
			}
			return fmt.Errorf("not a JSON array of plugins: %w", err)
		}
		*p = list
	default:
		panic(fmt.Sprintf("setting %s: unsupported field type %T", s.path, p))
	}
	return nil
}

// show returns c's value of the setting as a variable or a flag would give it;
// "" for an empty value.
func (s setting) show(c *Config) string {
	switch p := s.field(c).(type) {
	case *[]string:
		return strings.Join(*p, ",")
	case *[]PluginConfig:
		if len(*p) == 0 {
			return ""
		}
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // "Gatehouse <no-reply@localhost>" as written
		_ = enc.Encode(*p)       // plain data: cannot fail
		return strings.TrimSuffix(b.String(), "\n")
	default:
		return fmt.Sprint(reflect.ValueOf(p).Elem().Interface())
	}
}

// defaultText is the default the flag help shows.
func (s setting) defaultText() string {
	if s.def != "" {
		return s.def
	}
	def := DefaultConfig()
	return s.show(&def)
}

// settings lists every configurable key. A test checks it covers every field of
// Config, so a new setting cannot forget its variable or flag. The defaults shown
// in the flag help come from DefaultConfig.
func settings() []setting {
	return []setting{
		{"adminAddr", "GATEHOUSE_ADMIN_ADDR", "admin-addr", "admin API listen `address`", func(c *Config) any { return &c.AdminAddr }, ""},
		{"publicAddr", "GATEHOUSE_PUBLIC_ADDR", "public-addr", "public API listen `address`", func(c *Config) any { return &c.PublicAddr }, ""},
		{"redis.url", "GATEHOUSE_REDIS_URL", "redis-url", "Redis `URL`; empty = embedded in-memory miniredis (prefer the variable: flags show in ps)", func(c *Config) any { return &c.Redis.URL }, ""},
		{"redis.prefix", "GATEHOUSE_REDIS_PREFIX", "redis-prefix", "`prefix` of every Redis key", func(c *Config) any { return &c.Redis.Prefix }, ""},
		{"redis.readTimeout", "GATEHOUSE_REDIS_READ_TIMEOUT", "redis-read-timeout", "bound on each Redis read of a request (/verify, GET), a `duration`; past it the request answers 503", func(c *Config) any { return &c.Redis.ReadTimeout }, ""},
		{"redis.writeTimeout", "GATEHOUSE_REDIS_WRITE_TIMEOUT", "redis-write-timeout", "bound on each Redis write step, a `duration`; past it the request answers 503", func(c *Config) any { return &c.Redis.WriteTimeout }, ""},
		{"redis.waitReplicas", "GATEHOUSE_REDIS_WAIT_REPLICAS", "redis-wait-replicas", "replicas every write waits for (Redis WAIT) before it is acknowledged, `n`; 0 = off, -1 = 1 with Sentinel, else 0", func(c *Config) any { return &c.Redis.WaitReplicas }, "1 with Sentinel, else 0"},
		{"redis.waitTimeout", "GATEHOUSE_REDIS_WAIT_TIMEOUT", "redis-wait-timeout", "bound on the wait for the replicas, a `duration` up to half of redis.writeTimeout; past it the write answers 503", func(c *Config) any { return &c.Redis.WaitTimeout }, ""},
		{"redis.sentinel.masterName", "GATEHOUSE_REDIS_SENTINEL_MASTER_NAME", "redis-sentinel-master-name", "`name` of the Sentinel-managed primary (with redis.sentinel.addrs, instead of redis.url)", func(c *Config) any { return &c.Redis.Sentinel.MasterName }, ""},
		{"redis.sentinel.addrs", "GATEHOUSE_REDIS_SENTINEL_ADDRS", "redis-sentinel-addrs", "comma-separated host:port `list` of Sentinels", func(c *Config) any { return &c.Redis.Sentinel.Addrs }, ""},
		{"log.level", "GATEHOUSE_LOG_LEVEL", "log-level", "`level`: trace, debug, info, warn or error", func(c *Config) any { return &c.Log.Level }, ""},
		{"log.format", "GATEHOUSE_LOG_FORMAT", "log-format", "`format`: auto (pretty on a terminal, else json), json or pretty", func(c *Config) any { return &c.Log.Format }, ""},
		{"adminKeyFile", "GATEHOUSE_ADMIN_KEY_FILE", "admin-key-file", "`file` receiving a generated admin key when stderr is not a terminal; an existing file is kept beside it, renamed", func(c *Config) any { return &c.AdminKeyFile }, "$XDG_STATE_HOME/gatehouse/admin-key"},
		{"models.path", "GATEHOUSE_MODELS_PATH", "models-path", "`folder` of the model schemas users.json, applications.json, credentials.json", func(c *Config) any { return &c.Models.Path }, "models/ beside the config file, else embedded"},
		{"security.argon2.memoryKiB", "GATEHOUSE_ARGON2_MEMORY_KIB", "argon2-memory-kib", "argon2id memory in `KiB`", func(c *Config) any { return &c.Security.Argon2.MemoryKiB }, ""},
		{"security.argon2.iterations", "GATEHOUSE_ARGON2_ITERATIONS", "argon2-iterations", "argon2id `passes`", func(c *Config) any { return &c.Security.Argon2.Iterations }, ""},
		{"security.argon2.parallelism", "GATEHOUSE_ARGON2_PARALLELISM", "argon2-parallelism", "argon2id `lanes`", func(c *Config) any { return &c.Security.Argon2.Parallelism }, ""},
		{"security.maxConcurrentHashes", "GATEHOUSE_MAX_CONCURRENT_HASHES", "max-concurrent-hashes", "at most `n` argon2 hashes at once, 0 = one per CPU", func(c *Config) any { return &c.Security.MaxConcurrentHashes }, ""},
		{"sessions.ttl", "GATEHOUSE_SESSION_TTL", "session-ttl", "a login session's absolute `lifetime`", func(c *Config) any { return &c.Sessions.TTL }, ""},
		{"sessions.maxPerUser", "GATEHOUSE_SESSIONS_MAX_PER_USER", "sessions-max-per-user", "live sessions per user when its sessionsLimit is null, `n`", func(c *Config) any { return &c.Sessions.MaxPerUser }, ""},
		{"sessions.oauthTokenTTL", "GATEHOUSE_OAUTH_TOKEN_TTL", "oauth-token-ttl", "client-credentials access token `lifetime`", func(c *Config) any { return &c.Sessions.OAuthTokenTTL }, ""},
		{"rateLimits.loginPerIdentifier", "GATEHOUSE_RATE_LOGIN_PER_IDENTIFIER", "rate-login-per-identifier", "failed logins per identifier, `COUNT/PERIOD`", func(c *Config) any { return &c.RateLimits.LoginPerIdentifier }, ""},
		{"rateLimits.loginPerAddress", "GATEHOUSE_RATE_LOGIN_PER_ADDRESS", "rate-login-per-address", "failed logins per client address, `COUNT/PERIOD`", func(c *Config) any { return &c.RateLimits.LoginPerAddress }, ""},
		{"rateLimits.verifyFailures", "GATEHOUSE_RATE_VERIFY_FAILURES", "rate-verify-failures", "failed /verify key or Basic attempts per key and address, `COUNT/PERIOD`", func(c *Config) any { return &c.RateLimits.VerifyFailures }, ""},
		{"rateLimits.verifyFailuresPerAddress", "GATEHOUSE_RATE_VERIFY_FAILURES_PER_ADDRESS", "rate-verify-failures-per-address", "failed /verify key or Basic attempts per client address, whatever the key, `COUNT/PERIOD`", func(c *Config) any { return &c.RateLimits.VerifyFailuresPerAddress }, ""},
		{"publicURL", "GATEHOUSE_PUBLIC_URL", "public-url", "the public API's external `URL`, for links in mails", func(c *Config) any { return &c.PublicURL }, "http://localhost:PORT"},
		{"auth.redirectURIs", "GATEHOUSE_AUTH_REDIRECT_URIS", "auth-redirect-uris", "comma-separated `URIs` a redirect sign-in or integration may return to, besides apps' redirectUri (exact matches)", func(c *Config) any { return &c.Auth.RedirectURIs }, "none"},
		{"cors.allowedOrigins", "GATEHOUSE_CORS_ALLOWED_ORIGINS", "cors-allowed-origins", "comma-separated browser `origins` allowed to call the public API", func(c *Config) any { return &c.CORS.AllowedOrigins }, "none"},
		{"pluginDir", "GATEHOUSE_PLUGIN_DIR", "plugin-dir", "`folder` of external plugin binaries", func(c *Config) any { return &c.PluginDir }, ""},
		{"plugins", "GATEHOUSE_PLUGINS", "plugins", "the plugins to run, as a JSON `array` of {name, kind (optional), builtin | path + sha256, callTimeout, config}", func(c *Config) any { return &c.Plugins }, ""},
		{"rateLimits.dialectCalls", "GATEHOUSE_RATE_DIALECT_CALLS", "rate-dialect-calls", "calls per admin key on the dialects that announce a budget (publica.la), `COUNT/PERIOD`", func(c *Config) any { return &c.RateLimits.DialectCalls }, ""},
		{"rateLimits.signupPerAddress", "GATEHOUSE_RATE_SIGNUP_PER_ADDRESS", "rate-signup-per-address", "sign-ups per client address, `COUNT/PERIOD`", func(c *Config) any { return &c.RateLimits.SignupPerAddress }, ""},
		{"rateLimits.flowsPerAddress", "GATEHOUSE_RATE_FLOWS_PER_ADDRESS", "rate-flows-per-address", "redirect sign-ins and integration links started per client address, `COUNT/PERIOD`", func(c *Config) any { return &c.RateLimits.FlowsPerAddress }, ""},
		{"rateLimits.mailPerAddress", "GATEHOUSE_RATE_MAIL_PER_ADDRESS", "rate-mail-per-address", "verification and reset mails per client address, `COUNT/PERIOD`", func(c *Config) any { return &c.RateLimits.MailPerAddress }, ""},
		{"rateLimits.mailPerEmail", "GATEHOUSE_RATE_MAIL_PER_EMAIL", "rate-mail-per-email", "verification and reset mails per address mailed to, `COUNT/PERIOD`", func(c *Config) any { return &c.RateLimits.MailPerEmail }, ""},
		{"signup.requireVerifiedEmail", "GATEHOUSE_SIGNUP_REQUIRE_VERIFIED_EMAIL", "signup-require-verified-email", "refuse password logins of email sign-ups never verified, `true|false`", func(c *Config) any { return &c.Signup.RequireVerifiedEmail }, ""},
		{"signup.unverifiedTTL", "GATEHOUSE_SIGNUP_UNVERIFIED_TTL", "signup-unverified-ttl", "how long a never-verified email sign-up lives, a `duration`", func(c *Config) any { return &c.Signup.UnverifiedTTL }, ""},
		{"verifyCache.size", "GATEHOUSE_VERIFY_CACHE_SIZE", "verify-cache-size", "/verify answers kept per process, `n`; 0 turns the cache off", func(c *Config) any { return &c.VerifyCache.Size }, ""},
		{"verifyCache.ttl", "GATEHOUSE_VERIFY_CACHE_TTL", "verify-cache-ttl", "how long a cached /verify success lives, a `duration` up to 5s", func(c *Config) any { return &c.VerifyCache.TTL }, ""},
		{"verifyCache.negativeTTL", "GATEHOUSE_VERIFY_CACHE_NEGATIVE_TTL", "verify-cache-negative-ttl", "how long a cached /verify refusal lives, a `duration` up to 1s", func(c *Config) any { return &c.VerifyCache.NegativeTTL }, ""},
		{"metrics.requireKey", "GATEHOUSE_METRICS_REQUIRE_KEY", "metrics-require-key", "GET /metrics needs an admin key (scope admin or read), `true|false`", func(c *Config) any { return &c.Metrics.RequireKey }, ""},
		{"security.trustedProxies", "GATEHOUSE_TRUSTED_PROXIES", "trusted-proxies", "comma-separated `prefixes` whose X-Forwarded-For is trusted", func(c *Config) any { return &c.Security.TrustedProxies }, ""},
	}
}

// Load returns DefaultConfig overlaid with the YAML file at path (none when path
// is "") and then with the GATEHOUSE_* environment variables, with AdminKeyFile and
// Models.Path derived when left empty. Flags are applied afterwards by the caller
// (configFlags.apply), then Validate.
func Load(path string) (Config, error) {
	return load(path, os.LookupEnv)
}

// load is Load with an injectable environment.
func load(path string, env lookupEnv) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		if err := cfg.readFile(path); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.applyEnv(env); err != nil {
		return Config{}, err
	}
	cfg.deriveDefaults(env)
	return cfg, nil
}

// readFile decodes the YAML file at path over c. Unknown keys are errors, and
// relative paths in the file are relative to the file's folder, not the working
// directory.
func (c *Config) readFile(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := decodeStrict(js, c, ""); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	c.File = abs
	dir := filepath.Dir(abs)
	c.AdminKeyFile = besideFile(dir, c.AdminKeyFile)
	c.Models.Path = besideFile(dir, c.Models.Path)
	c.PluginDir = besideFile(dir, c.PluginDir)
	return nil
}

// decodeStrict decodes JSON into v, refusing unknown keys and values its typed
// fields (durations, rates) cannot parse, all of which it names by their full
// path (path is v's own, "" for the whole configuration). A key naming a secret
// gets a hint: secrets come only from the environment.
func decodeStrict(js []byte, v any, path string) error {
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		return err
	}
	var ch keyCheck
	ch.walk(generic, reflect.TypeOf(v).Elem(), path)
	var problems []string
	if len(ch.unknown) > 0 {
		for i, k := range ch.unknown {
			ch.unknown[i] = fmt.Sprintf("%q", k)
			if hint, ok := secretHints[k]; ok {
				ch.unknown[i] += " (" + hint + ")"
			}
		}
		problems = append(problems, "unknown setting "+strings.Join(ch.unknown, ", "))
	}
	if problems = append(problems, ch.bad...); len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields() // also catches what keyCheck does not model
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// keyCheck collects what decodeStrict refuses, by dotted path.
type keyCheck struct {
	unknown []string // keys no JSON-tagged field declares
	bad     []string // values a text-typed field (Duration, Rate) refuses, and why
}

// textType is a field type read from a JSON string by its UnmarshalText.
var textType = reflect.TypeFor[encoding.TextUnmarshaler]()

// walk checks v, a decoded JSON value, against type t. Type mismatches other
// than those of text-typed fields are left to the decoder.
func (ch *keyCheck) walk(v any, t reflect.Type, path string) {
	if reflect.PointerTo(t).Implements(textType) {
		text, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v) // a decoded JSON value: cannot fail
			text = string(b)
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(text)); err != nil {
			ch.bad = append(ch.bad, fmt.Sprintf("%s: %v", path, err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Slice:
		if list, ok := v.([]any); ok {
			for i, item := range list {
				ch.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "-" && name != "" {
				fields[name] = f.Type
			}
		}
		prefix := path
		if prefix != "" {
			prefix += "."
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if ft, ok := fields[k]; ok {
				ch.walk(obj[k], ft, prefix+k)
			} else {
				ch.unknown = append(ch.unknown, prefix+k)
			}
		}
	}
}

// secretHints answers a secret written in the file.
var secretHints = map[string]string{
	"adminKey":       "secrets are read only from the environment: GATEHOUSE_ADMIN_KEY",
	"encryptionKeys": "secrets are read only from the environment: GATEHOUSE_ENCRYPTION_KEYS",
}

// besideFile resolves a relative path from the configuration file against the
// file's folder.
func besideFile(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// applyEnv overrides c with every GATEHOUSE_* variable that is set and not empty.
func (c *Config) applyEnv(env lookupEnv) error {
	var errs []error
	for _, s := range settings() {
		if v, ok := env.get(s.env); ok {
			if err := s.set(c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
			}
		}
	}
	if v, ok := env.get("GATEHOUSE_ADMIN_KEY"); ok {
		c.AdminKey = v
	}
	if v, ok := env.get("GATEHOUSE_ENCRYPTION_KEYS"); ok {
		c.EncryptionKeys = v
	}
	return errors.Join(errs...)
}

// deriveDefaults fills AdminKeyFile and Models.Path when nothing set them.
func (c *Config) deriveDefaults(env lookupEnv) {
	if c.AdminKeyFile == "" {
		c.AdminKeyFile = defaultAdminKeyFile(env)
	}
	if c.Models.Path == "" && c.File != "" {
		if dir := filepath.Join(filepath.Dir(c.File), "models"); isDir(dir) {
			c.Models.Path = dir
		}
	}
}

// defaultAdminKeyFile follows the XDG base directory spec (a relative
// XDG_STATE_HOME is ignored); "" when neither it nor HOME is usable.
func defaultAdminKeyFile(env lookupEnv) string {
	if dir, ok := env.get("XDG_STATE_HOME"); ok && filepath.IsAbs(dir) {
		return filepath.Join(dir, "gatehouse", "admin-key")
	}
	if home, ok := env.get("HOME"); ok && filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "gatehouse", "admin-key")
	}
	return ""
}

// isDir reports whether p is an existing folder.
func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// configFlags holds the flags of the serve command: --config and one per setting.
type configFlags struct {
	config *string
	values []flagValue // in command-line order
}

// flagValue is one setting given on the command line.
type flagValue struct {
	s setting
	v string
}

// newConfigFlags defines --config and every setting's flag on fs.
func newConfigFlags(fs *flag.FlagSet) *configFlags {
	f := &configFlags{config: fs.String("config", "", "configuration `file`; --config \"\" loads none (default "+defaultConfigPath+" if present) [$GATEHOUSE_CONFIG]")}
	for _, s := range settings() {
		fs.Var(&settingFlag{s: s, f: f, def: s.defaultText()}, s.flag, s.usage+" [$"+s.env+"]")
	}
	return f
}

// settingFlag is a setting's flag: it checks the value's syntax while the
// command line is parsed (so an error comes with the usage) and records it for
// apply, which runs after the file and the environment are loaded.
type settingFlag struct {
	s   setting
	f   *configFlags
	def string
}

// String returns the default the help shows.
func (sf *settingFlag) String() string { return sf.def }

// Set checks v and records it.
func (sf *settingFlag) Set(v string) error {
	var scratch Config
	if err := sf.s.set(&scratch, v); err != nil {
		return err
	}
	sf.f.values = append(sf.f.values, flagValue{sf.s, v})
	return nil
}

// configPath returns the file to load: --config, else GATEHOUSE_CONFIG, else the
// default file when it exists, else "" (built-in defaults). An explicit empty
// --config loads no file.
func (f *configFlags) configPath(fs *flag.FlagSet, env lookupEnv) string {
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == "config" })
	if set {
		return *f.config
	}
	if p, ok := env.get("GATEHOUSE_CONFIG"); ok {
		return p
	}
	if _, err := os.Stat(defaultConfigPath); err == nil {
		return defaultConfigPath
	}
	return ""
}

// apply overrides c with the flags given on the command line.
func (f *configFlags) apply(c *Config) {
	for _, fv := range f.values {
		_ = fv.s.set(c, fv.v) // checked while parsing
	}
}

// ConfigError lists every problem found in a configuration, by Validate or
// while a file or a variable was decoded.
type ConfigError struct {
	Problems []string
}

// Error lists the problems one per line.
func (e *ConfigError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// check is one row of Validate's table.
type check struct {
	bad bool
	msg string
}

// Validate reports every problem at once, as a *ConfigError. No message echoes a
// secret.
func (c Config) Validate() error {
	checks := []check{
		{!validListenAddr(c.AdminAddr), fmt.Sprintf("adminAddr %q is not a host:port listen address", c.AdminAddr)},
		{!validListenAddr(c.PublicAddr), fmt.Sprintf("publicAddr %q is not a host:port listen address", c.PublicAddr)},
		{sameListenAddr(c.AdminAddr, c.PublicAddr), "adminAddr and publicAddr must differ"},
		{redisstore.CheckPrefix(c.Redis.Prefix) != nil, "redis.prefix must not contain { or }: they would move keys between Redis Cluster hash slots"},
		{!oneOf(c.Log.Level, "trace", "debug", "info", "warn", "error"), fmt.Sprintf("log.level %q is not one of trace, debug, info, warn, error", c.Log.Level)},
		{!oneOf(c.Log.Format, "auto", "json", "pretty"), fmt.Sprintf("log.format %q is not one of auto, json, pretty", c.Log.Format)},
		{c.AdminKey == "" && c.AdminKeyFile == "", "adminKeyFile has no default (neither XDG_STATE_HOME nor HOME is set): set GATEHOUSE_ADMIN_KEY_FILE or GATEHOUSE_ADMIN_KEY"},
		{c.Models.Path != "" && !isDir(c.Models.Path), fmt.Sprintf("models.path %q is not a folder", c.Models.Path)},
		{c.Security.Argon2.Parallelism < 1 || c.Security.Argon2.Parallelism > 255, "security.argon2.parallelism must be between 1 and 255"},
		{c.Security.Argon2.Iterations < 1, "security.argon2.iterations must be at least 1"},
		{c.Security.Argon2.MemoryKiB < 8*max(c.Security.Argon2.Parallelism, 1) || c.Security.Argon2.MemoryKiB > 4<<20, "security.argon2.memoryKiB must be between 8 × parallelism and 4194304 (4 GiB)"},
		{c.Security.MaxConcurrentHashes < 0, "security.maxConcurrentHashes must be 0 (one per CPU) or more"},
		{c.AdminKey != "" && !validAdminKey(c.AdminKey), fmt.Sprintf("GATEHOUSE_ADMIN_KEY must be at least %d printable characters, without leading or trailing spaces (value not shown)", minAdminKeyLen)},
	}
	if msg := redisURLProblem(c.Redis.URL); msg != "" {
		checks = append(checks, check{true, msg})
	}
	checks = append(checks, c.Redis.Sentinel.checks(c.Redis.URL != "")...)
	checks = append(checks, c.Redis.waitChecks()...)
	for _, d := range []struct {
		key string
		v   Duration
	}{{"sessions.ttl", c.Sessions.TTL}, {"sessions.oauthTokenTTL", c.Sessions.OAuthTokenTTL}, {"signup.unverifiedTTL", c.Signup.UnverifiedTTL}} {
		checks = append(checks, check{d.v < Duration(time.Minute), fmt.Sprintf("%s %s must be at least 1m", d.key, d.v)})
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"redis.readTimeout", c.Redis.ReadTimeout}, {"redis.writeTimeout", c.Redis.WriteTimeout}} {
		checks = append(checks, check{d.v < Duration(time.Millisecond) || d.v > Duration(time.Minute), fmt.Sprintf("%s %s must be between 1ms and 1m", d.key, d.v)})
	}
	checks = append(checks, check{c.Sessions.MaxPerUser < 1 || c.Sessions.MaxPerUser > 999999, "sessions.maxPerUser must be between 1 and 999999"},
		check{c.VerifyCache.Size < 0 || c.VerifyCache.Size > 10_000_000, "verifyCache.size must be between 0 (off) and 10000000"},
		check{c.VerifyCache.TTL < Duration(time.Millisecond) || c.VerifyCache.TTL > Duration(core.MaxVerifyCacheTTL), fmt.Sprintf("verifyCache.ttl %s must be between 1ms and %s", c.VerifyCache.TTL, Duration(core.MaxVerifyCacheTTL))},
		check{c.VerifyCache.NegativeTTL < Duration(time.Millisecond) || c.VerifyCache.NegativeTTL > Duration(core.MaxVerifyCacheNegativeTTL), fmt.Sprintf("verifyCache.negativeTTL %s must be between 1ms and %s", c.VerifyCache.NegativeTTL, Duration(core.MaxVerifyCacheNegativeTTL))})
	checks = append(checks, c.pluginChecks()...)
	for i, p := range c.Security.TrustedProxies {
		checks = append(checks, check{!validPrefix(p), fmt.Sprintf("security.trustedProxies[%d] %q is not an IP address or CIDR prefix", i, p)})
	}
	for i, u := range c.Auth.RedirectURIs {
		pu, err := url.Parse(u)
		checks = append(checks, check{err != nil || !pu.IsAbs() || pu.Fragment != "" || strings.Contains(u, "#"),
			fmt.Sprintf("auth.redirectURIs[%d] %q is not an absolute URL without a fragment", i, u)})
	}
	var problems []string
	for _, ch := range checks {
		if ch.bad {
			problems = append(problems, ch.msg)
		}
	}
	if problems != nil {
		return &ConfigError{Problems: problems}
	}
	return nil
}

// pluginChecks checks what the configuration knows of each plugin: a kind is
// known, a built-in exists and serves the kind given, a call timeout is
// positive. The plugin host checks the rest (names, paths, checksums) when it
// starts them, and whether an external plugin serves the kind given.
func (c Config) pluginChecks() []check {
	var checks []check
	for i, p := range c.Plugins {
		key := fmt.Sprintf("plugins[%d]", i)
		knownKind := oneOf(p.Kind, "", core.KindIdentityProvider, core.KindIntegration)
		checks = append(checks,
			check{p.CallTimeout < 0, fmt.Sprintf("%s.callTimeout %s must be positive (or left out for the default)", key, p.CallTimeout)},
			check{!knownKind, fmt.Sprintf("%s.kind %q must be %s or %s (or left out: every kind the plugin serves)", key, p.Kind, core.KindIdentityProvider, core.KindIntegration)})
		if p.Builtin == "" {
			continue
		}
		b, ok := builtinNamed(p.Builtin)
		checks = append(checks,
			check{!ok, fmt.Sprintf("%s.builtin %q is not a built-in plugin (built in: %s)", key, p.Builtin, strings.Join(builtinNames(), ", "))},
			check{ok && knownKind && p.Kind != "" && !slices.Contains(b.kinds, p.Kind),
				fmt.Sprintf("%s.kind %q: the built-in %s serves %s only (or leave kind out)", key, p.Kind, b.name, strings.Join(b.kinds, " and "))})
	}
	return checks
}

// Warnings lists settings that are valid but probably unwise, for the start-up log.
func (c Config) Warnings() []string {
	var w []string
	a := c.Security.Argon2
	if a.MemoryKiB < owaspArgon2MemoryKiB || a.Iterations < owaspArgon2Iterations {
		w = append(w, "security.argon2 is below OWASP's minimum (memoryKiB 19456, iterations 2)")
	}
	if host, _, err := net.SplitHostPort(c.AdminAddr); err == nil && !isLoopbackHost(host) {
		w = append(w, "adminAddr is not a loopback address: the admin API is reachable from the network")
	}
	return w
}

// oneOf reports whether v is one of allowed.
func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// validListenAddr accepts host:port with an empty host, a name or an IP, and a
// port from 0 to 65535.
func validListenAddr(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// sameListenAddr reports two equal addresses, except with port 0 (any free port).
func sameListenAddr(a, b string) bool {
	_, port, err := net.SplitHostPort(a)
	return err == nil && a == b && port != "0"
}

// isLoopbackHost reports a loopback IP or localhost; an empty host listens everywhere.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// validPrefix accepts a CIDR prefix or a bare IP address.
func validPrefix(p string) bool {
	_, ok := parsePrefix(p)
	return ok
}

// parsePrefix parses a CIDR prefix or a bare address (a single-host prefix),
// masked; the one reading of security.trustedProxies, for Validate and serve.
func parsePrefix(s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return p.Masked(), true
}

// validAdminKey: at least minAdminKeyLen printable characters (spaces inside
// allowed), valid UTF-8, no leading or trailing space (HTTP would trim it).
func validAdminKey(k string) bool {
	if !utf8.ValidString(k) || utf8.RuneCountInString(k) < minAdminKeyLen || strings.TrimSpace(k) != k {
		return false
	}
	for _, r := range k {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// checks are the problems of a Sentinel setting; withURL says redis.url is set too.
func (s SentinelConfig) checks(withURL bool) []check {
	on := s.MasterName != "" || len(s.Addrs) > 0
	out := []check{
		{on && withURL, "redis.url and redis.sentinel are both set: use one (a URL with ?master_name= is the other way to name a Sentinel)"},
		{len(s.Addrs) > 0 && s.MasterName == "", "redis.sentinel.addrs is set without redis.sentinel.masterName"},
		{s.MasterName != "" && len(s.Addrs) == 0, "redis.sentinel.masterName is set without redis.sentinel.addrs (host:port of the Sentinels)"},
	}
	for i, a := range s.Addrs {
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(port)
		out = append(out, check{err != nil || host == "" || perr != nil || n < 1 || n > 65535,
			fmt.Sprintf("redis.sentinel.addrs[%d] %q is not host:port", i, a)})
	}
	return out
}

// redisURLProblem checks the scheme only (redisstore parses the rest) and never
// quotes the URL, which may hold a password.
func redisURLProblem(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "redis.url is not a valid URL (value not shown: it may hold a password)"
	}
	if !oneOf(u.Scheme, "redis", "rediss", "unix", "redis+cluster") {
		return fmt.Sprintf("redis.url scheme %q is not redis, rediss, unix or redis+cluster", u.Scheme)
	}
	return ""
}

// publicURL returns PublicURL, or http://localhost:PORT from PublicAddr.
func (c Config) publicURL() string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(c.PublicAddr)
	if err != nil {
		return "http://localhost"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
