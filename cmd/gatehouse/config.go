package main

import (
	"bytes"
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
)

// defaultConfigPath is the configuration file read when neither --config nor
// GATEHOUSE_CONFIG names one and the file exists (SPEC §8).
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
	Signup       SignupConfig   `json:"signup"`
	// PublicURL is how browsers reach the public listener, the base of the links
	// in mails; empty: derived from PublicAddr (http://localhost:PORT).
	PublicURL string     `json:"publicURL"`
	CORS      CORSConfig `json:"cors"`
	// PluginDir holds external plugin binaries; a plugin's path must resolve
	// inside it.
	PluginDir string `json:"pluginDir"`
	// Plugins are the plugins to run (SPEC §4); by default the built-in email
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
// fixed at 1 MiB (SPEC §6) and deliberately not configurable.
type SecurityConfig struct {
	Argon2 Argon2Config `json:"argon2"`
	// MaxConcurrentHashes caps concurrent argon2 computations; 0 means one per CPU.
	MaxConcurrentHashes int `json:"maxConcurrentHashes"`
	// TrustedProxies lists the CIDR prefixes (or bare addresses) whose
	// X-Forwarded-For is believed.
	TrustedProxies []string `json:"trustedProxies"`
}

// SessionsConfig holds session and token lifetimes (Go durations: "24h", "90m").
type SessionsConfig struct {
	// TTL is a login session's absolute lifetime.
	TTL string `json:"ttl"`
	// MaxPerUser caps a user's live sessions when its sessionsLimit is null; the
	// oldest is evicted.
	MaxPerUser int `json:"maxPerUser"`
	// OAuthTokenTTL is the lifetime of a client-credentials access token.
	OAuthTokenTTL string `json:"oauthTokenTTL"`
}

// RateLimits are the Redis-backed limits of SPEC §6, each "COUNT/PERIOD" with a
// Go duration or second, minute, hour ("10/minute", "3/1h").
type RateLimits struct {
	// LoginPerIdentifier and LoginPerAddress count failed logins only.
	LoginPerIdentifier string `json:"loginPerIdentifier"`
	LoginPerAddress    string `json:"loginPerAddress"`
	// VerifyFailures counts failed key and Basic attempts at /verify per key id
	// (or username) and client address.
	VerifyFailures string `json:"verifyFailures"`
	// SignupPerAddress counts sign-ups per client address.
	SignupPerAddress string `json:"signupPerAddress"`
	// MailPerAddress and MailPerEmail count verification and reset mails asked
	// for (a sign-up's own first mail does not count).
	MailPerAddress string `json:"mailPerAddress"`
	MailPerEmail   string `json:"mailPerEmail"`
}

// SignupConfig holds the rules of self-service sign-up.
type SignupConfig struct {
	// RequireVerifiedEmail refuses password logins of users who signed up by
	// email and never verified it (admin-created users are never held to it).
	RequireVerifiedEmail bool `json:"requireVerifiedEmail"`
	// UnverifiedTTL is how long a never-verified email sign-up lives (a Go duration).
	UnverifiedTTL string `json:"unverifiedTTL"`
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
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Builtin     string          `json:"builtin,omitempty"`
	Path        string          `json:"path,omitempty"`
	SHA256      string          `json:"sha256,omitempty"`
	CallTimeout string          `json:"callTimeout,omitempty"`
	Config      json.RawMessage `json:"config,omitempty"`
}

// Argon2Config holds the argon2id parameters for passwords and basic-auth secrets.
type Argon2Config struct {
	MemoryKiB   int `json:"memoryKiB"`
	Iterations  int `json:"iterations"`
	Parallelism int `json:"parallelism"`
}

// DefaultConfig returns the built-in configuration, before any file, variable or
// flag. AdminKeyFile and Models.Path are left empty: Load derives them.
func DefaultConfig() Config {
	return Config{
		AdminAddr:  "127.0.0.1:9876",
		PublicAddr: ":8080",
		Redis:      RedisConfig{Prefix: "gh:"},
		Log:        LogConfig{Level: "info", Format: "auto"},
		Security: SecurityConfig{
			Argon2:         Argon2Config{MemoryKiB: owaspArgon2MemoryKiB, Iterations: owaspArgon2Iterations, Parallelism: 1},
			TrustedProxies: []string{"127.0.0.1/32", "::1/128"},
		},
		Plugins: []PluginConfig{{Name: "email", Kind: "identity_provider", Builtin: "email",
			Config: json.RawMessage(`{"from":"Gatehouse <no-reply@localhost>"}`)}},
		Sessions: SessionsConfig{TTL: "24h", MaxPerUser: 100, OAuthTokenTTL: "1h"},
		RateLimits: RateLimits{LoginPerIdentifier: "10/minute", LoginPerAddress: "100/minute", VerifyFailures: "20/minute",
			SignupPerAddress: "30/minute", MailPerAddress: "3/hour", MailPerEmail: "3/hour"},
		Signup: SignupConfig{RequireVerifiedEmail: true, UnverifiedTTL: "24h"},
	}
}

// parseRate reads "COUNT/PERIOD": a positive count and a Go duration or one of
// second, minute, hour.
func parseRate(s string) (core.Rate, error) {
	count, period, ok := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if !ok || err != nil || n < 1 {
		return core.Rate{}, fmt.Errorf("%q is not COUNT/PERIOD (e.g. 10/minute)", s)
	}
	words := map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
	d, known := words[strings.TrimSpace(period)]
	if !known {
		if d, err = time.ParseDuration(strings.TrimSpace(period)); err != nil || d <= 0 {
			return core.Rate{}, fmt.Errorf("%q is not COUNT/PERIOD (e.g. 10/minute)", s)
		}
	}
	return core.Rate{Count: n, Per: d}, nil
}

// Policy returns the session and rate-limit settings for core. Validate has
// checked they parse.
func (c Config) Policy() core.Policy {
	p := core.DefaultPolicy()
	if d, err := time.ParseDuration(c.Sessions.TTL); err == nil {
		p.SessionTTL = d
	}
	if d, err := time.ParseDuration(c.Sessions.OAuthTokenTTL); err == nil {
		p.OAuthTokenTTL = d
	}
	if c.Sessions.MaxPerUser > 0 {
		p.MaxSessions = c.Sessions.MaxPerUser
	}
	for _, r := range []struct {
		s   string
		dst *core.Rate
	}{{c.RateLimits.LoginPerIdentifier, &p.LoginPerIdentifier}, {c.RateLimits.LoginPerAddress, &p.LoginPerAddress}, {c.RateLimits.VerifyFailures, &p.VerifyFailures},
		{c.RateLimits.SignupPerAddress, &p.SignupPerAddress}, {c.RateLimits.MailPerAddress, &p.MailPerAddress}, {c.RateLimits.MailPerEmail, &p.MailPerEmail}} {
		if rate, err := parseRate(r.s); err == nil {
			*r.dst = rate
		}
	}
	p.RequireVerifiedEmail = c.Signup.RequireVerifiedEmail
	if d, err := time.ParseDuration(c.Signup.UnverifiedTTL); err == nil {
		p.UnverifiedTTL = d
	}
	return p
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
	set   func(c *Config, v string) error
}

// settings lists every configurable key. A test checks it covers every field of
// Config, so a new setting cannot forget its variable or flag.
func settings() []setting {
	return []setting{
		{"adminAddr", "GATEHOUSE_ADMIN_ADDR", "admin-addr", "admin API listen `address` (default 127.0.0.1:9876)", setString(func(c *Config) *string { return &c.AdminAddr })},
		{"publicAddr", "GATEHOUSE_PUBLIC_ADDR", "public-addr", "public API listen `address` (default :8080)", setString(func(c *Config) *string { return &c.PublicAddr })},
		{"redis.url", "GATEHOUSE_REDIS_URL", "redis-url", "Redis `URL`; empty = embedded in-memory miniredis (prefer the variable: flags show in ps)", setString(func(c *Config) *string { return &c.Redis.URL })},
		{"redis.prefix", "GATEHOUSE_REDIS_PREFIX", "redis-prefix", "`prefix` of every Redis key (default gh:)", setString(func(c *Config) *string { return &c.Redis.Prefix })},
		{"log.level", "GATEHOUSE_LOG_LEVEL", "log-level", "`level`: trace, debug, info, warn or error (default info)", setString(func(c *Config) *string { return &c.Log.Level })},
		{"log.format", "GATEHOUSE_LOG_FORMAT", "log-format", "`format`: auto (pretty on a terminal, else json), json or pretty (default auto)", setString(func(c *Config) *string { return &c.Log.Format })},
		{"adminKeyFile", "GATEHOUSE_ADMIN_KEY_FILE", "admin-key-file", "`file` receiving a generated admin key when stderr is not a terminal (default $XDG_STATE_HOME/gatehouse/admin-key)", setString(func(c *Config) *string { return &c.AdminKeyFile })},
		{"models.path", "GATEHOUSE_MODELS_PATH", "models-path", "`folder` of the model schemas users.json, applications.json, credentials.json (default: models/ beside the config file, else embedded)", setString(func(c *Config) *string { return &c.Models.Path })},
		{"security.argon2.memoryKiB", "GATEHOUSE_ARGON2_MEMORY_KIB", "argon2-memory-kib", "argon2id memory in `KiB` (default 19456)", setInt(func(c *Config) *int { return &c.Security.Argon2.MemoryKiB })},
		{"security.argon2.iterations", "GATEHOUSE_ARGON2_ITERATIONS", "argon2-iterations", "argon2id `passes` (default 2)", setInt(func(c *Config) *int { return &c.Security.Argon2.Iterations })},
		{"security.argon2.parallelism", "GATEHOUSE_ARGON2_PARALLELISM", "argon2-parallelism", "argon2id `lanes` (default 1)", setInt(func(c *Config) *int { return &c.Security.Argon2.Parallelism })},
		{"security.maxConcurrentHashes", "GATEHOUSE_MAX_CONCURRENT_HASHES", "max-concurrent-hashes", "at most `n` argon2 hashes at once, 0 = one per CPU (default 0)", setInt(func(c *Config) *int { return &c.Security.MaxConcurrentHashes })},
		{"sessions.ttl", "GATEHOUSE_SESSION_TTL", "session-ttl", "a login session's absolute `lifetime` (default 24h)", setString(func(c *Config) *string { return &c.Sessions.TTL })},
		{"sessions.maxPerUser", "GATEHOUSE_SESSIONS_MAX_PER_USER", "sessions-max-per-user", "live sessions per user when its sessionsLimit is null, `n` (default 100)", setInt(func(c *Config) *int { return &c.Sessions.MaxPerUser })},
		{"sessions.oauthTokenTTL", "GATEHOUSE_OAUTH_TOKEN_TTL", "oauth-token-ttl", "client-credentials access token `lifetime` (default 1h)", setString(func(c *Config) *string { return &c.Sessions.OAuthTokenTTL })},
		{"rateLimits.loginPerIdentifier", "GATEHOUSE_RATE_LOGIN_PER_IDENTIFIER", "rate-login-per-identifier", "failed logins per identifier, `COUNT/PERIOD` (default 10/minute)", setString(func(c *Config) *string { return &c.RateLimits.LoginPerIdentifier })},
		{"rateLimits.loginPerAddress", "GATEHOUSE_RATE_LOGIN_PER_ADDRESS", "rate-login-per-address", "failed logins per client address, `COUNT/PERIOD` (default 100/minute)", setString(func(c *Config) *string { return &c.RateLimits.LoginPerAddress })},
		{"rateLimits.verifyFailures", "GATEHOUSE_RATE_VERIFY_FAILURES", "rate-verify-failures", "failed /verify key or Basic attempts per key and address, `COUNT/PERIOD` (default 20/minute)", setString(func(c *Config) *string { return &c.RateLimits.VerifyFailures })},
		{"publicURL", "GATEHOUSE_PUBLIC_URL", "public-url", "the public API's external `URL`, for links in mails (default http://localhost:PORT)", setString(func(c *Config) *string { return &c.PublicURL })},
		{"cors.allowedOrigins", "GATEHOUSE_CORS_ALLOWED_ORIGINS", "cors-allowed-origins", "comma-separated browser `origins` allowed to call the public API (default none)", setList(func(c *Config) *[]string { return &c.CORS.AllowedOrigins })},
		{"pluginDir", "GATEHOUSE_PLUGIN_DIR", "plugin-dir", "`folder` of external plugin binaries", setString(func(c *Config) *string { return &c.PluginDir })},
		{"plugins", "GATEHOUSE_PLUGINS", "plugins", "the plugins to run, as a JSON `array` of {name, kind, builtin | path + sha256, config} (default: the built-in email provider)", setPlugins},
		{"rateLimits.signupPerAddress", "GATEHOUSE_RATE_SIGNUP_PER_ADDRESS", "rate-signup-per-address", "sign-ups per client address, `COUNT/PERIOD` (default 30/minute)", setString(func(c *Config) *string { return &c.RateLimits.SignupPerAddress })},
		{"rateLimits.mailPerAddress", "GATEHOUSE_RATE_MAIL_PER_ADDRESS", "rate-mail-per-address", "verification and reset mails per client address, `COUNT/PERIOD` (default 3/hour)", setString(func(c *Config) *string { return &c.RateLimits.MailPerAddress })},
		{"rateLimits.mailPerEmail", "GATEHOUSE_RATE_MAIL_PER_EMAIL", "rate-mail-per-email", "verification and reset mails per address mailed to, `COUNT/PERIOD` (default 3/hour)", setString(func(c *Config) *string { return &c.RateLimits.MailPerEmail })},
		{"signup.requireVerifiedEmail", "GATEHOUSE_SIGNUP_REQUIRE_VERIFIED_EMAIL", "signup-require-verified-email", "refuse password logins of email sign-ups never verified, `true|false` (default true)", setBool(func(c *Config) *bool { return &c.Signup.RequireVerifiedEmail })},
		{"signup.unverifiedTTL", "GATEHOUSE_SIGNUP_UNVERIFIED_TTL", "signup-unverified-ttl", "how long a never-verified email sign-up lives, a `duration` (default 24h)", setString(func(c *Config) *string { return &c.Signup.UnverifiedTTL })},
		{"security.trustedProxies", "GATEHOUSE_TRUSTED_PROXIES", "trusted-proxies", "comma-separated `prefixes` whose X-Forwarded-For is trusted (default 127.0.0.1/32,::1/128)", setList(func(c *Config) *[]string { return &c.Security.TrustedProxies })},
	}
}

// setString returns a setter of the string field picks.
func setString(pick func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *pick(c) = v; return nil }
}

// setInt returns a setter of the integer field picks, refusing non-integers.
func setInt(pick func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*pick(c) = n
		return nil
	}
}

// setBool returns a setter of the boolean field picks.
func setBool(pick func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*pick(c) = b
		return nil
	}
}

// setPlugins sets the plugin list from a JSON array.
func setPlugins(c *Config, v string) error {
	var list []PluginConfig
	if err := decodeStrict([]byte(v), &list); err != nil {
		return fmt.Errorf("not a JSON array of plugins: %w", err)
	}
	c.Plugins = list
	return nil
}

// setList returns a setter of the list field picks, from comma-separated items.
func setList(pick func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		list := []string{}
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		*pick(c) = list
		return nil
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
	if err := decodeStrict(js, c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	c.File = abs
	dir := filepath.Dir(abs)
	c.AdminKeyFile = besideFile(dir, c.AdminKeyFile)
	c.Models.Path = besideFile(dir, c.Models.Path)
	c.PluginDir = besideFile(dir, c.PluginDir)
	return nil
}

// decodeStrict decodes JSON into v, refusing unknown keys, all of which it names
// by their full path. A key naming a secret gets a hint: secrets come only from
// the environment.
func decodeStrict(js []byte, v any) error {
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		return err
	}
	if unknown := unknownKeys(generic, reflect.TypeOf(v).Elem(), ""); len(unknown) > 0 {
		for i, k := range unknown {
			unknown[i] = fmt.Sprintf("%q", k)
			if hint, ok := secretHints[k]; ok {
				unknown[i] += " (" + hint + ")"
			}
		}
		return fmt.Errorf("unknown setting %s", strings.Join(unknown, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields() // also catches what unknownKeys does not model
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// unknownKeys returns the dotted paths of the keys in v, a decoded JSON value,
// that no JSON-tagged field of struct type t declares.
func unknownKeys(v any, t reflect.Type, prefix string) []string {
	obj, ok := v.(map[string]any)
	if !ok || t.Kind() != reflect.Struct {
		return nil // type mismatches are the decoder's to report
	}
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "-" && name != "" {
			fields[name] = f.Type
		}
	}
	var unknown []string
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		ft, ok := fields[k]
		if !ok {
			unknown = append(unknown, prefix+k)
			continue
		}
		unknown = append(unknown, unknownKeys(obj[k], ft, prefix+k+".")...)
	}
	return unknown
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
		fs.Func(s.flag, s.usage+" [$"+s.env+"]", func(v string) error {
			var scratch Config // syntax errors surface while parsing, with the usage
			if err := s.set(&scratch, v); err != nil {
				return err
			}
			f.values = append(f.values, flagValue{s, v})
			return nil
		})
	}
	return f
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

// ConfigError lists every problem Validate found.
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
		{strings.ContainsAny(c.Redis.Prefix, "{}"), "redis.prefix must not contain { or }: they would move keys between Redis Cluster hash slots"},
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
	for _, kv := range [][2]string{{"sessions.ttl", c.Sessions.TTL}, {"sessions.oauthTokenTTL", c.Sessions.OAuthTokenTTL}, {"signup.unverifiedTTL", c.Signup.UnverifiedTTL}} {
		d, err := time.ParseDuration(kv[1])
		checks = append(checks, check{err != nil || d < time.Minute, fmt.Sprintf("%s %q must be a duration of at least 1m", kv[0], kv[1])})
	}
	checks = append(checks, check{c.Sessions.MaxPerUser < 1 || c.Sessions.MaxPerUser > 999999, "sessions.maxPerUser must be between 1 and 999999"})
	for _, kv := range [][2]string{{"rateLimits.loginPerIdentifier", c.RateLimits.LoginPerIdentifier}, {"rateLimits.loginPerAddress", c.RateLimits.LoginPerAddress}, {"rateLimits.verifyFailures", c.RateLimits.VerifyFailures},
		{"rateLimits.signupPerAddress", c.RateLimits.SignupPerAddress}, {"rateLimits.mailPerAddress", c.RateLimits.MailPerAddress}, {"rateLimits.mailPerEmail", c.RateLimits.MailPerEmail}} {
		_, err := parseRate(kv[1])
		checks = append(checks, check{err != nil, fmt.Sprintf("%s: %v", kv[0], err)})
	}
	for i, p := range c.Security.TrustedProxies {
		checks = append(checks, check{!validPrefix(p), fmt.Sprintf("security.trustedProxies[%d] %q is not an IP address or CIDR prefix", i, p)})
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
	if _, err := netip.ParsePrefix(p); err == nil {
		return true
	}
	_, err := netip.ParseAddr(p)
	return err == nil
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
