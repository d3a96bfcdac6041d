package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/proctest"
	"github.com/gatehouse/gatehouse/plugins/email/smtptest"
)

// scrape reads GET /metrics (with key, when not "") into series → value, a
// series written as the text format writes it: name{label="v",...}, labels
// sorted by name.
func scrape(t *testing.T, in *instance, key string) map[string]float64 {
	t.Helper()
	var headers []string
	if key != "" {
		headers = []string{"Authorization", "Bearer " + key}
	}
	code, body := do(t, "GET", in.adminURL+"/metrics", "", headers...)
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	m := map[string]float64{}
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// waitSeries scrapes until series reaches at least want (a mail is sent, a
// plugin restarts: after the answer), within 20 s.
func waitSeries(t *testing.T, in *instance, series string, want float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := scrape(t, in, "")
		if m[series] >= want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed at %v, want %v", series, m[series], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsMove runs a server with the email plugin as its own process and
// checks that each series an operator alerts on moves when its behaviour
// happens: the Redis pool, sign-ups and logins by outcome, /verify by kind and
// outcome, rate-limit refusals, plugin calls, and a plugin's state and
// restarts when its process is killed.
func TestMetricsMove(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the email plugin as a process and kills it")
	}
	clearEnv(t)
	sink := smtptest.Start(t)
	t.Setenv("GATEHOUSE_PLUGINS", emailPlugins(t, sink))
	const key = "operator-chosen-key-123"
	t.Setenv("GATEHOUSE_ADMIN_KEY", key)
	in := startServe(t, filepath.Join(t.TempDir(), "key"), "--rate-verify-failures-per-address", "3/minute")
	pub := func(method, path, body string, headers ...string) int {
		code, _ := do(t, method, in.publicURL+path, body, append([]string{"Content-Type", "application/json"}, headers...)...)
		return code
	}

	before := scrape(t, in, "")
	for _, s := range []string{
		`gatehouse_redis_pool_connections`, `gatehouse_redis_pool_hits_total`, `gatehouse_redis_pool_idle_connections`,
		`gatehouse_plugin_up{plugin="email"}`, `gatehouse_plugin_state{plugin="email",state="running"}`, `gatehouse_plugin_restarts_total{plugin="email"}`,
		`gatehouse_verify_total{kind="key-auth",outcome="ok"}`, `gatehouse_logins_total{outcome="rate_limited"}`, `gatehouse_signups_total{outcome="ok"}`,
		`go_goroutines`, `process_open_fds`,
	} {
		if _, ok := before[s]; !ok {
			t.Errorf("no series %s before any request", s)
		}
	}
	if before[`gatehouse_redis_pool_connections`] < 1 || before[`gatehouse_plugin_up{plugin="email"}`] != 1 || before[`gatehouse_plugin_restarts_total{plugin="email"}`] != 0 {
		t.Errorf("at start: pool connections %v, email up %v, restarts %v", before[`gatehouse_redis_pool_connections`],
			before[`gatehouse_plugin_up{plugin="email"}`], before[`gatehouse_plugin_restarts_total{plugin="email"}`])
	}

	// Sign-ups and logins, by outcome; the verification mail is a plugin call.
	if c := pub("POST", "/auth/providers/email/signup", `{"email":"ada@example.com","password":"correct horse battery"}`); c != 201 {
		t.Fatalf("signup: %d", c)
	}
	if c := pub("POST", "/auth/providers/email/signup", `{"email":"not an address","password":"correct horse battery"}`); c != 422 && c != 400 {
		t.Fatalf("bad signup: %d", c)
	}
	if c := pub("POST", "/auth/tokens", `{"provider":"email","identifier":"ada@example.com","secret":"wrong wrong wrong"}`); c != 401 {
		t.Fatalf("wrong password: %d", c)
	}
	if c := pub("POST", "/auth/tokens", `{"provider":"email","identifier":"ada@example.com","secret":"correct horse battery"}`); c != 403 {
		t.Fatalf("unverified login: %d", c)
	}
	sink.WaitFor(t, "ada@example.com", 10*time.Second)
	waitSeries(t, in, `gatehouse_plugin_call_duration_seconds_count{method="SendVerification",outcome="ok",plugin="email"}`, 1)

	// /verify: nothing presented, a good key, then wrong keys until the
	// per-address cap (3 a minute) refuses with Retry-After.
	in.call(t, key, "POST", "/users", `{"username":"quinn","firstname":"Q","lastname":"N"}`)
	_, body := in.call(t, key, "POST", "/credentials", `{"consumerId":"quinn","type":"key-auth"}`)
	var cred struct{ KeyID, KeySecret string }
	_ = json.Unmarshal([]byte(body), &cred)
	if c := pub("GET", "/verify", ""); c != 401 {
		t.Fatalf("/verify with nothing: %d", c)
	}
	if c := pub("GET", "/verify", "", "x-api-key", cred.KeyID+":"+cred.KeySecret); c != 200 {
		t.Fatalf("/verify with the key: %d", c)
	}
	for range 4 {
		pub("GET", "/verify", "", "x-api-key", cred.KeyID+":wrong")
	}
	if c := pub("GET", "/verify", "", "Authorization", "Bearer gths_nothing"); c != 401 {
		t.Fatalf("/verify with an unknown session: %d", c)
	}
	after := scrape(t, in, "")
	for series, want := range map[string]float64{
		`gatehouse_signups_total{outcome="ok"}`:                           1,
		`gatehouse_signups_total{outcome="invalid"}`:                      1,
		`gatehouse_logins_total{outcome="unauthorized"}`:                  1,
		`gatehouse_logins_total{outcome="forbidden"}`:                     1,
		`gatehouse_verify_total{kind="none",outcome="unauthorized"}`:      1,
		`gatehouse_verify_total{kind="key-auth",outcome="ok"}`:            1,
		`gatehouse_verify_total{kind="key-auth",outcome="unauthorized"}`:  3, // the 4th is over the cap
		`gatehouse_verify_total{kind="key-auth",outcome="rate_limited"}`:  1,
		`gatehouse_verify_total{kind="session",outcome="unauthorized"}`:   1,
		`gatehouse_rate_limited_total{listener="public",route="/verify"}`: 1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	t.Logf("after the requests: redis pool hits %v misses %v, connections %v idle %v",
		after[`gatehouse_redis_pool_hits_total`], after[`gatehouse_redis_pool_misses_total`], after[`gatehouse_redis_pool_connections`], after[`gatehouse_redis_pool_idle_connections`])
	if after[`gatehouse_redis_pool_hits_total`] <= before[`gatehouse_redis_pool_hits_total`] {
		t.Errorf("redis pool hits did not move: %v → %v", before[`gatehouse_redis_pool_hits_total`], after[`gatehouse_redis_pool_hits_total`])
	}

	// A killed plugin: restarted, counted, up again.
	pid, _ := in.pluginState(t, key, "email")
	proctest.Signal(t, pid, os.Getpid(), syscall.SIGKILL)
	after = waitSeries(t, in, `gatehouse_plugin_restarts_total{plugin="email"}`, 1)
	for deadline := time.Now().Add(20 * time.Second); after[`gatehouse_plugin_up{plugin="email"}`] != 1; after = scrape(t, in, "") {
		if time.Now().After(deadline) {
			t.Fatalf("the email plugin is not up again: %v", after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsRequireKey: with metrics.requireKey, /metrics answers 401
// without an admin key and serves the metrics to a read key.
func TestMetricsRequireKey(t *testing.T) {
	clearEnv(t)
	t.Setenv("GATEHOUSE_PLUGINS", "[]")
	const key = "operator-chosen-key-123"
	t.Setenv("GATEHOUSE_ADMIN_KEY", key)
	in := startServe(t, filepath.Join(t.TempDir(), "key"), "--metrics-require-key=true")
	if code, _ := do(t, "GET", in.adminURL+"/metrics", ""); code != 401 {
		t.Errorf("GET /metrics without a key: %d, want 401", code)
	}
	code, body := in.call(t, key, "POST", "/admin-keys", `{"name":"prometheus","scope":"read"}`)
	var read struct{ Key string }
	if err := json.Unmarshal([]byte(body), &read); err != nil || code != 201 && code != 200 {
		t.Fatalf("read key: %d %s", code, body)
	}
	if m := scrape(t, in, read.Key); len(m) == 0 {
		t.Error("no series with a read key")
	}
	if code, _ := do(t, "GET", in.adminURL+"/healthz", ""); code != 200 {
		t.Errorf("/healthz stays open: %d", code)
	}
}
