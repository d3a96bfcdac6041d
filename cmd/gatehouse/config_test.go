package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// fakeEnv is a lookupEnv over a map.
func fakeEnv(m map[string]string) lookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadWithFlags runs the serve command's configuration steps: flags, file, env.
func loadWithFlags(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := newConfigFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	cfg, err := load(flags.configPath(fs, fakeEnv(env)), fakeEnv(env))
	if err != nil {
		return Config{}, err
	}
	flags.apply(&cfg)
	return cfg, nil
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "g.yaml", `
adminAddr: 127.0.0.1:1111
redis:
  prefix: "file:"
log:
  level: debug
security:
  argon2:
    iterations: 3
  trustedProxies: [10.0.0.0/8]
`)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(*Config)
	}{
		{
			name: "file over defaults",
			args: []string{"--config", file},
			want: func(c *Config) {},
		},
		{
			name: "env over file",
			args: []string{"--config", file},
			env: map[string]string{
				"GATEHOUSE_ADMIN_ADDR": "127.0.0.1:2222", "GATEHOUSE_REDIS_PREFIX": "env:",
				"GATEHOUSE_ARGON2_ITERATIONS": "4", "GATEHOUSE_TRUSTED_PROXIES": "10.1.0.0/16, ::1",
			},
			want: func(c *Config) {
				c.AdminAddr, c.Redis.Prefix, c.Security.Argon2.Iterations = "127.0.0.1:2222", "env:", 4
				c.Security.TrustedProxies = []string{"10.1.0.0/16", "::1"}
			},
		},
		{
			name: "flag over env",
			args: []string{"--config", file, "--admin-addr", "127.0.0.1:3333", "--argon2-iterations=5", "--log-level", "warn"},
			env:  map[string]string{"GATEHOUSE_ADMIN_ADDR": "127.0.0.1:2222", "GATEHOUSE_ARGON2_ITERATIONS": "4"},
			want: func(c *Config) {
				c.AdminAddr, c.Security.Argon2.Iterations, c.Log.Level = "127.0.0.1:3333", 5, "warn"
			},
		},
		{
			name: "empty variable counts as unset",
			args: []string{"--config", file},
			env:  map[string]string{"GATEHOUSE_ADMIN_ADDR": ""},
			want: func(c *Config) {},
		},
		{
			name: "GATEHOUSE_CONFIG names the file, --config wins",
			args: []string{"--config", file},
			env:  map[string]string{"GATEHOUSE_CONFIG": filepath.Join(dir, "missing.yaml")},
			want: func(c *Config) {},
		},
		{
			name: "secrets from the environment",
			args: []string{"--config", file},
			env:  map[string]string{"GATEHOUSE_ADMIN_KEY": "0123456789abcdef", "GATEHOUSE_ENCRYPTION_KEYS": "k1:AAAA"},
			want: func(c *Config) { c.AdminKey, c.EncryptionKeys = "0123456789abcdef", "k1:AAAA" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"XDG_STATE_HOME": "/state"}
			for k, v := range tt.env {
				env[k] = v
			}
			got, err := loadWithFlags(t, tt.args, env)
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			want.File, want.AdminKeyFile = file, "/state/gatehouse/admin-key"
			want.AdminAddr, want.Redis.Prefix, want.Log.Level = "127.0.0.1:1111", "file:", "debug"
			want.Security.Argon2.Iterations, want.Security.TrustedProxies = 3, []string{"10.0.0.0/8"}
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml string
		env        map[string]string
		wantErr    []string
	}{
		{name: "unknown top-level key", yaml: "adminAdress: x\n", wantErr: []string{`unknown setting "adminAdress"`}},
		{name: "unknown nested keys, all named by path", yaml: "redis:\n  urll: redis://x\nsecurity:\n  argon2:\n    memory: 1\n", wantErr: []string{`"redis.urll", "security.argon2.memory"`}},
		{name: "secret in the file", yaml: "adminKey: 0123456789abcdef\n", wantErr: []string{`"adminKey"`, "GATEHOUSE_ADMIN_KEY"}},
		{name: "not a mapping", yaml: "- adminAddr\n", wantErr: []string{"g.yaml"}},
		{name: "wrong type", yaml: "security:\n  maxConcurrentHashes: many\n", wantErr: []string{"maxConcurrentHashes"}},
		{name: "bad YAML", yaml: "adminAddr: [\n", wantErr: []string{"g.yaml"}},
		{name: "bad integer variable", yaml: "", env: map[string]string{"GATEHOUSE_ARGON2_MEMORY_KIB": "lots"}, wantErr: []string{"GATEHOUSE_ARGON2_MEMORY_KIB", `"lots"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, "g.yaml", tt.yaml)
			_, err := load(p, fakeEnv(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	t.Run("missing explicit file", func(t *testing.T) {
		if _, err := load(filepath.Join(dir, "nope.yaml"), fakeEnv(nil)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want not exist", err)
		}
	})
	t.Run("empty file is the defaults", func(t *testing.T) {
		p := writeFile(t, dir, "empty.yaml", "# nothing\n")
		got, err := load(p, fakeEnv(map[string]string{"HOME": "/home/u"}))
		if err != nil {
			t.Fatal(err)
		}
		if got.AdminAddr != DefaultConfig().AdminAddr {
			t.Errorf("adminAddr = %q", got.AdminAddr)
		}
	})
}

func TestFlagSyntaxCheckedWhileParsing(t *testing.T) {
	_, err := loadWithFlags(t, []string{"--argon2-memory-kib", "lots"}, nil)
	if err == nil || !strings.Contains(err.Error(), "argon2-memory-kib") {
		t.Errorf("err = %v, want a parse error naming the flag", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.AdminKeyFile = "/state/admin-key"
	c.AdminAddr = "nowhere"
	c.Log.Level = "loud"
	c.Redis.Prefix = "{gh}:"
	c.Redis.URL = "http://user:hunter2@example.com"
	c.Security.TrustedProxies = []string{"10.0.0.0/8", "proxy.local"}
	c.Security.Argon2.Parallelism = 0
	err := c.Validate()
	ce, ok := errors.AsType[*ConfigError](err)
	if !ok {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	want := []string{"adminAddr", "log.level", "redis.prefix", "redis.url", "trustedProxies[1]", "parallelism"}
	if len(ce.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ce.Problems), len(want), err)
	}
	for _, w := range want {
		if !slices.ContainsFunc(ce.Problems, func(p string) bool { return strings.Contains(p, w) }) {
			t.Errorf("no problem mentions %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a problem echoes the Redis password:\n%v", err)
	}
}

func TestValidateDefaults(t *testing.T) {
	c := DefaultConfig()
	c.AdminKeyFile = "/state/admin-key"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.AdminKeyFile = ""
	if err := c.Validate(); err == nil {
		t.Error("no admin key file and no admin key: want a problem")
	}
	c.AdminKey = "0123456789abcdef"
	if err := c.Validate(); err != nil {
		t.Errorf("with GATEHOUSE_ADMIN_KEY the file is not needed: %v", err)
	}
}

func TestAdminKeyRule(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"0123456789abcdef", true},
		{"0123456789abcde", false}, // 15
		{"gtha_" + strings.Repeat("x", 40), true},
		{"with inner spaces ok", true},
		{"ééééééééééééééééé", true}, // 16+ characters, more bytes
		{" 0123456789abcdef", false},
		{"0123456789abcdef\n", false},
		{"0123456789\x00abcdef", false},
		{"0123456789abcdef\xff", false},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.AdminKeyFile = "/state/admin-key"
		c.AdminKey = tt.key
		err := c.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("key %q: err = %v, want ok %v", tt.key, err, tt.ok)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "GATEHOUSE_ADMIN_KEY must be at least 16") {
				t.Errorf("key %q: message %q does not state the rule", tt.key, err)
			}
			if strings.Contains(err.Error(), strings.TrimSpace(tt.key)) {
				t.Errorf("message echoes the key: %q", err)
			}
		}
	}
}

func TestModelsPathDefault(t *testing.T) {
	withModels := t.TempDir()
	if err := os.Mkdir(filepath.Join(withModels, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	withoutModels := t.TempDir()
	elsewhere := t.TempDir()
	tests := []struct {
		name, dir, yaml string
		env             map[string]string
		want            string
	}{
		{name: "models/ beside the file", dir: withModels, want: filepath.Join(withModels, "models")},
		{name: "no models/ beside the file", dir: withoutModels, want: ""},
		{name: "relative to the file, not the working directory", dir: withModels, yaml: "models:\n  path: models\n", want: filepath.Join(withModels, "models")},
		{name: "absolute in the file", dir: withoutModels, yaml: "models:\n  path: " + elsewhere + "\n", want: elsewhere},
		{name: "environment", dir: withModels, env: map[string]string{"GATEHOUSE_MODELS_PATH": elsewhere}, want: elsewhere},
		{name: "no file", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.dir != "" {
				path = writeFile(t, tt.dir, "gatehouse.yaml", tt.yaml)
			}
			cfg, err := load(path, fakeEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Models.Path != tt.want {
				t.Errorf("models.path = %q, want %q", cfg.Models.Path, tt.want)
			}
		})
	}
}

func TestAdminKeyFileDefault(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_STATE_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/gatehouse/admin-key"},
		{map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/home/u"}, "/home/u/.local/state/gatehouse/admin-key"},
		{map[string]string{"HOME": "/home/u"}, "/home/u/.local/state/gatehouse/admin-key"},
		{map[string]string{"HOME": "/home/u", "GATEHOUSE_ADMIN_KEY_FILE": "/run/key"}, "/run/key"},
		{map[string]string{}, ""},
	}
	for _, tt := range tests {
		cfg, err := load("", fakeEnv(tt.env))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AdminKeyFile != tt.want {
			t.Errorf("env %v: adminKeyFile = %q, want %q", tt.env, cfg.AdminKeyFile, tt.want)
		}
	}
}

// TestExampleConfig checks configs/gatehouse.yaml loads, is valid, and states the
// built-in defaults, so the example documents them truthfully.
func TestExampleConfig(t *testing.T) {
	path, err := filepath.Abs("../../configs/gatehouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := fakeEnv(map[string]string{"HOME": "/home/u"})
	got, err := load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.File = path
	want.deriveDefaults(env)
	if diff := cmp.Diff(want, got, cmp.Transformer("json", func(r json.RawMessage) any {
		var v any
		_ = json.Unmarshal(r, &v)
		return v
	})); diff != "" {
		t.Errorf("example differs from DefaultConfig (-want +got):\n%s", diff)
	}
	text, _ := os.ReadFile(path)
	for _, s := range settings() {
		key := s.path[strings.LastIndexByte(s.path, '.')+1:]
		if !strings.Contains(string(text), key+":") || !strings.Contains(string(text), s.env) || !strings.Contains(string(text), "--"+s.flag) {
			t.Errorf("the example does not document %s with its variable %s and flag --%s", s.path, s.env, s.flag)
		}
	}
}

// TestSettingsCoverConfig checks every field of Config has a setting (so an
// environment variable and a flag) and the names are unique.
func TestSettingsCoverConfig(t *testing.T) {
	var leaves []string
	collectJSONLeaves(reflect.TypeFor[Config](), "", &leaves)
	var paths []string
	envs, flags := map[string]bool{}, map[string]bool{}
	for _, s := range settings() {
		paths = append(paths, s.path)
		if envs[s.env] || flags[s.flag] {
			t.Errorf("setting %s: duplicate variable or flag", s.path)
		}
		envs[s.env], flags[s.flag] = true, true
		if !strings.HasPrefix(s.env, "GATEHOUSE_") {
			t.Errorf("setting %s: variable %s lacks the GATEHOUSE_ prefix", s.path, s.env)
		}
	}
	slices.Sort(leaves)
	slices.Sort(paths)
	if diff := cmp.Diff(leaves, paths); diff != "" {
		t.Errorf("Config fields vs settings (-fields +settings):\n%s", diff)
	}
}

// TestSettingsDefaultsRoundTrip checks that each default the flag help shows,
// given back as a variable or flag, sets DefaultConfig's value: the help tells
// the truth and every type reads what it writes.
func TestSettingsDefaultsRoundTrip(t *testing.T) {
	def := DefaultConfig()
	for _, s := range settings() {
		shown := s.show(&def)
		if s.def != "" || shown == "" {
			continue // a derived default, or an empty one: nothing to give back
		}
		var c Config
		if err := s.set(&c, shown); err != nil {
			t.Errorf("%s: its default %q does not parse: %v", s.path, shown, err)
			continue
		}
		if got := s.show(&c); got != shown {
			t.Errorf("%s: default %q read back as %q", s.path, shown, got)
		}
	}
}

// TestDefaultsFromTheirPackages: the configuration's defaults are those of
// core, redisstore and the built-in plugins table, not copies that could drift.
func TestDefaultsFromTheirPackages(t *testing.T) {
	c := DefaultConfig()
	if diff := cmp.Diff(core.DefaultPolicy(), c.Policy()); diff != "" {
		t.Errorf("default Policy() vs core.DefaultPolicy() (-want +got):\n%s", diff)
	}
	want := redisstore.Options{Prefix: redisstore.DefaultPrefix, ReadTimeout: redisstore.DefaultReadTimeout, WriteTimeout: redisstore.DefaultWriteTimeout,
		WaitTimeout: redisstore.DefaultWaitTimeout}
	if diff := cmp.Diff(want, c.Redis.StoreOptions()); diff != "" {
		t.Errorf("default store options (-want +got):\n%s", diff)
	}
	a := c.Security.Argon2
	if a.MemoryKiB != int(core.DefaultArgon2.Memory) || a.Iterations != int(core.DefaultArgon2.Iterations) || a.Parallelism != int(core.DefaultArgon2.Parallelism) {
		t.Errorf("argon2 defaults %+v, want core.DefaultArgon2", a)
	}
}

// TestPolicyCarriesEverySetting: each session, sign-up and rate setting,
// changed from its default, reaches core.Policy.
func TestPolicyCarriesEverySetting(t *testing.T) {
	env := map[string]string{
		"GATEHOUSE_SESSION_TTL": "2h", "GATEHOUSE_SESSIONS_MAX_PER_USER": "7", "GATEHOUSE_OAUTH_TOKEN_TTL": "15m",
		"GATEHOUSE_RATE_LOGIN_PER_IDENTIFIER": "1/second", "GATEHOUSE_RATE_LOGIN_PER_ADDRESS": "2/hour",
		"GATEHOUSE_RATE_VERIFY_FAILURES": "3/day", "GATEHOUSE_RATE_VERIFY_FAILURES_PER_ADDRESS": "4/90s",
		"GATEHOUSE_RATE_SIGNUP_PER_ADDRESS": "5/minute", "GATEHOUSE_RATE_MAIL_PER_ADDRESS": "6/2h",
		"GATEHOUSE_RATE_MAIL_PER_EMAIL": "8/1h30m", "GATEHOUSE_SIGNUP_REQUIRE_VERIFIED_EMAIL": "false",
		"GATEHOUSE_SIGNUP_UNVERIFIED_TTL": "48h",
	}
	c, err := load("", fakeEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	want := core.DefaultPolicy()
	want.SessionTTL, want.MaxSessions, want.OAuthTokenTTL = 2*time.Hour, 7, 15*time.Minute
	want.LoginPerIdentifier, want.LoginPerAddress = core.Rate{Count: 1, Per: time.Second}, core.Rate{Count: 2, Per: time.Hour}
	want.VerifyFailures, want.VerifyFailuresPerAddress = core.Rate{Count: 3, Per: 24 * time.Hour}, core.Rate{Count: 4, Per: 90 * time.Second}
	want.SignupPerAddress, want.MailPerAddress = core.Rate{Count: 5, Per: time.Minute}, core.Rate{Count: 6, Per: 2 * time.Hour}
	want.MailPerEmail = core.Rate{Count: 8, Per: 90 * time.Minute}
	want.RequireVerifiedEmail, want.UnverifiedTTL = false, 48*time.Hour
	if diff := cmp.Diff(want, c.Policy()); diff != "" {
		t.Errorf("Policy (-want +got):\n%s", diff)
	}
}

// TestRedisTimeouts: redis.readTimeout and redis.writeTimeout reach the
// store's options from the file, a variable and a flag, and a bad one is
// refused with its key.
func TestRedisTimeouts(t *testing.T) {
	file := writeFile(t, t.TempDir(), "g.yaml", "redis:\n  readTimeout: 250ms\n  writeTimeout: 3s\n")
	c, err := loadWithFlags(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Redis.StoreOptions(); o.ReadTimeout != 250*time.Millisecond || o.WriteTimeout != 3*time.Second {
		t.Errorf("from the file: %+v", o)
	}
	c, err = loadWithFlags(t, []string{"--config", file, "--redis-write-timeout", "1500ms"}, map[string]string{"GATEHOUSE_REDIS_READ_TIMEOUT": "100ms"})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Redis.StoreOptions(); o.ReadTimeout != 100*time.Millisecond || o.WriteTimeout != 1500*time.Millisecond {
		t.Errorf("from the variable and the flag: %+v", o)
	}
	c = DefaultConfig()
	c.AdminKeyFile = "/state/admin-key"
	c.Redis.ReadTimeout, c.Redis.WriteTimeout = 0, Duration(2*time.Minute)
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "redis.readTimeout 0s must be between") || !strings.Contains(err.Error(), "redis.writeTimeout 2m must be between") {
		t.Errorf("err = %v, want both timeouts refused by key", err)
	}
}

// TestBadTypedValues: a duration or rate that does not parse is refused when
// the configuration is loaded, named by its key (every bad one at once), its
// variable or its flag.
func TestBadTypedValues(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "g.yaml", `
sessions:
  ttl: 1 day
  oauthTokenTTL: 60
rateLimits:
  mailPerEmail: 3 per hour
  loginPerAddress: 0/minute
plugins:
  - name: email
    builtin: email
    callTimeout: soon
`)
	_, err := load(file, fakeEnv(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`sessions.ttl: "1 day" is not a duration`, `sessions.oauthTokenTTL: "60" is not a duration`,
		`rateLimits.mailPerEmail: "3 per hour" is not COUNT/PERIOD`, `rateLimits.loginPerAddress: "0/minute"`,
		`plugins[0].callTimeout: "soon" is not a duration`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}

	_, err = load("", fakeEnv(map[string]string{"GATEHOUSE_RATE_VERIFY_FAILURES_PER_ADDRESS": "sixty", "GATEHOUSE_SIGNUP_UNVERIFIED_TTL": "1d",
		"GATEHOUSE_PLUGINS": `[{"name":"email","builtin":"email","callTimeout":15}]`}))
	for _, w := range []string{`GATEHOUSE_RATE_VERIFY_FAILURES_PER_ADDRESS: "sixty" is not COUNT/PERIOD`, `GATEHOUSE_SIGNUP_UNVERIFIED_TTL: "1d" is not a duration`,
		`GATEHOUSE_PLUGINS: plugins[0].callTimeout: "15" is not a duration`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	for _, args := range [][]string{{"--session-ttl", "forever"}, {"--rate-signup-per-address", "10/fortnight"}, {"--redis-read-timeout", "fast"}} {
		if _, err := loadWithFlags(t, args, nil); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(args[0], "--")) {
			t.Errorf("%v: err = %v, want a parse error naming the flag", args, err)
		}
	}
}

// TestRateSyntax: the forms of COUNT/PERIOD accepted and refused.
func TestRateSyntax(t *testing.T) {
	for in, want := range map[string]core.Rate{
		"10/minute": {Count: 10, Per: time.Minute}, " 3 / hour ": {Count: 3, Per: time.Hour}, "1/second": {Count: 1, Per: time.Second},
		"2/day": {Count: 2, Per: 24 * time.Hour}, "5/30s": {Count: 5, Per: 30 * time.Second}, "7/1h": {Count: 7, Per: time.Hour},
	} {
		var r Rate
		if err := r.UnmarshalText([]byte(in)); err != nil || core.Rate(r) != want {
			t.Errorf("%q: %v, %v; want %v", in, r, err, want)
		}
	}
	for _, in := range []string{"", "10", "10/", "/minute", "0/minute", "-1/minute", "1/0s", "1/-1m", "1/week", "x/minute"} {
		var r Rate
		if err := r.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted as %v", in, r)
		}
	}
}

// TestPluginChecks: a bad callTimeout, an unknown built-in, an unknown kind
// and a kind the built-in does not serve are reported by Validate with the
// entry's key, the last naming what the built-in serves; a built-in's call
// timeout defaults to its row of the table, and a kind left out stays out
// (the host finds what the plugin serves).
func TestPluginChecks(t *testing.T) {
	c := DefaultConfig()
	c.AdminKeyFile = "/state/admin-key"
	c.Plugins = []PluginConfig{
		{Name: "email", Builtin: "email", CallTimeout: Duration(-time.Second)},
		{Name: "gh", Kind: "identity_provider", Builtin: "gitlub"},
		{Name: "mail2", Kind: "integration", Builtin: "email"},
		{Name: "ext", Kind: "storage", Path: "ext", SHA256: strings.Repeat("0", 64)},
		{Name: "mail3", Kind: "Integration", Builtin: "email"},
	}
	err := c.Validate()
	for _, w := range []string{"plugins[0].callTimeout -1s must be positive", `plugins[1].builtin "gitlub" is not a built-in plugin (built in: email, github`,
		`plugins[2].kind "integration": the built-in email serves identity_provider only (or leave kind out)`,
		`plugins[3].kind "storage" must be identity_provider or integration (or left out: every kind the plugin serves)`,
		`plugins[4].kind "Integration" must be identity_provider or integration`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	// An unknown kind is reported once, not also as one the built-in lacks.
	if err != nil && strings.Contains(err.Error(), `plugins[4].kind "Integration": the built-in`) {
		t.Errorf("an unknown kind reported twice:\n%v", err)
	}

	c.Plugins = []PluginConfig{{Name: "email", Builtin: "email"}, {Name: "slow", Kind: "identity_provider", Builtin: "email", CallTimeout: Duration(time.Minute)},
		{Name: "ext", Kind: "integration", Path: "ext", SHA256: strings.Repeat("0", 64)}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	specs, err := pluginSpecs(c)
	if err != nil {
		t.Fatal(err)
	}
	email, _ := builtinNamed("email")
	for i, want := range []struct {
		kind    string
		timeout time.Duration
	}{{"", email.callTimeout}, {"identity_provider", time.Minute}, {"integration", 0}} {
		if specs[i].Kind != want.kind || specs[i].CallTimeout != want.timeout {
			t.Errorf("spec %s: kind %q, call timeout %v; want %q, %v", specs[i].Name, specs[i].Kind, specs[i].CallTimeout, want.kind, want.timeout)
		}
	}
}

func collectJSONLeaves(t reflect.Type, prefix string, out *[]string) {
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textType) {
			collectJSONLeaves(f.Type, prefix+name+".", out)
			continue
		}
		*out = append(*out, prefix+name)
	}
}

// TestRedisSentinel: redis.sentinel names a Sentinel-managed primary from the
// file, the variables or the flags, and gives the same Redis URL as the
// master_name form; half a setting, or one beside redis.url, is refused.
func TestRedisSentinel(t *testing.T) {
	file := writeFile(t, t.TempDir(), "g.yaml", "redis:\n  sentinel:\n    masterName: mymaster\n    addrs: [\"10.0.0.1:26379\", \"10.0.0.2:26379\"]\n")
	c, err := loadWithFlags(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const want = "redis://10.0.0.1:26379?addr=10.0.0.2%3A26379&master_name=mymaster"
	if got := c.Redis.Target(); got != want {
		t.Errorf("from the file: Target() = %q, want %q", got, want)
	}
	c, err = loadWithFlags(t, []string{"--redis-sentinel-master-name", "mymaster"},
		map[string]string{"GATEHOUSE_REDIS_SENTINEL_ADDRS": "10.0.0.1:26379, 10.0.0.2:26379"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Redis.Target(); got != want {
		t.Errorf("from the variable and the flag: Target() = %q, want %q", got, want)
	}
	opts, err := redisstore.ParseURL(c.Redis.Target())
	if err != nil || opts.MasterName != "mymaster" || !slices.Equal(opts.Addrs, []string{"10.0.0.1:26379", "10.0.0.2:26379"}) {
		t.Errorf("ParseURL(Target()) = %+v, %v; want master mymaster on both Sentinels", opts, err)
	}
	for _, tc := range []struct {
		name     string
		sentinel SentinelConfig
		url      string
		want     string
	}{
		{"no addrs", SentinelConfig{MasterName: "m"}, "", "redis.sentinel.masterName is set without redis.sentinel.addrs"},
		{"no name", SentinelConfig{Addrs: []string{"h:1"}}, "", "redis.sentinel.addrs is set without redis.sentinel.masterName"},
		{"bad addr", SentinelConfig{MasterName: "m", Addrs: []string{"h"}}, "", `redis.sentinel.addrs[0] "h" is not host:port`},
		{"with url", SentinelConfig{MasterName: "m", Addrs: []string{"h:1"}}, "redis://h:2", "redis.url and redis.sentinel are both set"},
	} {
		c := DefaultConfig()
		c.AdminKeyFile = "/state/admin-key"
		c.Redis.Sentinel, c.Redis.URL = tc.sentinel, tc.url
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestRedisWaitReplicas: redis.waitReplicas defaults to 1 with Sentinel (the
// settings or the master_name URL) and to 0 otherwise; it is refused on a
// Cluster and on the embedded store, and redis.waitTimeout must fit in half a
// write step.
func TestRedisWaitReplicas(t *testing.T) {
	sentinel := SentinelConfig{MasterName: "m", Addrs: []string{"h:26379"}}
	for _, tc := range []struct {
		name     string
		url      string
		sentinel SentinelConfig
		set      int // redis.waitReplicas; autoWaitReplicas: not set
		timeout  Duration
		want     int    // the store's WaitReplicas
		problem  string // from Validate, "" for none
	}{
		{"embedded", "", SentinelConfig{}, autoWaitReplicas, 0, 0, ""},
		{"server", "redis://h:6379/0", SentinelConfig{}, autoWaitReplicas, 0, 0, ""},
		{"server, set", "redis://h:6379/0", SentinelConfig{}, 1, 0, 1, ""},
		{"sentinel settings", "", sentinel, autoWaitReplicas, 0, 1, ""},
		{"sentinel URL", "redis://s:26379?master_name=m", SentinelConfig{}, autoWaitReplicas, 0, 1, ""},
		{"sentinel, off", "", sentinel, 0, 0, 0, ""},
		{"sentinel, two", "", sentinel, 2, 0, 2, ""},
		{"cluster", "redis+cluster://h:7000", SentinelConfig{}, autoWaitReplicas, 0, 0, ""},
		{"cluster, set", "redis+cluster://h:7000", SentinelConfig{}, 1, 0, 1, "not supported on a Redis Cluster"},
		{"embedded, set", "", SentinelConfig{}, 1, 0, 1, "the embedded store has none"},
		{"negative", "redis://h:6379/0", SentinelConfig{}, -2, 0, -2, "redis.waitReplicas -2 must be"},
		{"timeout too long", "", sentinel, autoWaitReplicas, Duration(1500 * time.Millisecond), 1, "redis.waitTimeout 1.5s must be between 1ms and half of redis.writeTimeout (1s)"},
	} {
		c := DefaultConfig()
		c.AdminKeyFile = "/state/admin-key"
		c.Redis.URL, c.Redis.Sentinel, c.Redis.WaitReplicas = tc.url, tc.sentinel, tc.set
		if tc.timeout != 0 {
			c.Redis.WaitTimeout = tc.timeout
		}
		if got := c.Redis.StoreOptions().WaitReplicas; got != tc.want {
			t.Errorf("%s: StoreOptions().WaitReplicas = %d, want %d", tc.name, got, tc.want)
		}
		err := c.Validate()
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("%s: Validate() = %v", tc.name, err)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.problem)
		}
	}
	c, err := loadWithFlags(t, []string{"--redis-wait-replicas", "2", "--redis-wait-timeout", "300ms"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Redis.StoreOptions(); o.WaitReplicas != 2 || o.WaitTimeout != 300*time.Millisecond {
		t.Errorf("from the flags: StoreOptions() = %+v, want WaitReplicas 2, WaitTimeout 300ms", o)
	}
	c, err = loadWithFlags(t, nil, map[string]string{"GATEHOUSE_REDIS_WAIT_REPLICAS": "0", "GATEHOUSE_REDIS_SENTINEL_MASTER_NAME": "m", "GATEHOUSE_REDIS_SENTINEL_ADDRS": "h:26379"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Redis.StoreOptions().WaitReplicas; got != 0 {
		t.Errorf("GATEHOUSE_REDIS_WAIT_REPLICAS=0 with Sentinel: WaitReplicas %d, want 0", got)
	}
}
