package adminapi

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// proxyKind is a gateway with a forward-auth hook that the end-to-end tests
// run in front of the echo application, configured by files under testdata
// that docs/gateways.md shows verbatim (TestGatewayDocs).
type proxyKind struct {
	name      string
	bins      []string // where to look: names in PATH, or paths
	missing   string   // the skip message when no binary is found
	inCI      bool     // .ci/run installs it: with CI=true a missing binary fails
	templates []string // under testdata; each is written into the run directory without .tmpl, the first is the configuration
	args      func(conf string) []string
	scoped    bool // the configuration requires the scope "write" under /admin/
	// loading is a status, besides 5xx, that the gateway answers while its
	// routes are still loading (0: none).
	loading int
}

// proxyConfig fills a proxyKind's templates.
type proxyConfig struct {
	Dir                                string // the gateway's files
	Listen, Gatehouse, App             string // host:port of the gateway, Gatehouse's public listener and the application
	ListenPort, GatehousePort, AppPort string
}

var (
	caddyKind = proxyKind{
		name:      "caddy",
		bins:      []string{"caddy", "/usr/bin/caddy"},
		missing:   "caddy not found; install it (Debian: apt-get install caddy) to run the Caddy forward_auth test",
		inCI:      true,
		templates: []string{"caddy/Caddyfile.tmpl"},
		args:      func(conf string) []string { return []string{"run", "--config", conf, "--adapter", "caddyfile"} },
		scoped:    true,
	}
	traefikKind = proxyKind{
		name: "traefik",
		bins: []string{"../.ci/bin/traefik", "traefik"},
		missing: "traefik not found: `make traefik` builds the pinned one (tools/traefik/go.mod) into .ci/bin, " +
			"or put a traefik v3.6.9 or later in PATH, to run the Traefik forwardAuth test",
		inCI:      true,
		templates: []string{"traefik/traefik.yml.tmpl", "traefik/dynamic.yml.tmpl"},
		args:      func(conf string) []string { return []string{"--configFile=" + conf} },
		scoped:    true,
		loading:   http.StatusNotFound, // its entry point listens before the file provider has read dynamic.yml
	}
	envoyKind = proxyKind{
		name: "envoy",
		bins: []string{"envoy"},
		missing: "envoy not found in PATH: it has no Debian package nor Go module, so it cannot be installed here; " +
			"put an envoy (1.28 or later) binary in PATH to run the Envoy ext_authz test",
		templates: []string{"envoy/envoy.yaml.tmpl"},
		args: func(conf string) []string {
			return []string{"-c", conf, "--disable-hot-restart", "--log-level", "warn"}
		},
	}
)

// require returns the gateway's binary, or skips the test with a message
// (with CI=true, a failure for a gateway .ci/run installs).
func (k proxyKind) require(t *testing.T) string {
	t.Helper()
	for _, b := range k.bins {
		if p, err := exec.LookPath(b); err == nil {
			// Absolute: the gateway runs in its own directory.
			if abs, err := filepath.Abs(p); err == nil {
				return abs
			}
			return p
		}
	}
	if k.inCI && os.Getenv("CI") == "true" {
		t.Fatal(k.missing + " (CI=true: .ci/run installs it, so a missing one is a failure, not a skip)")
	}
	t.Skip(k.missing)
	return ""
}

// proxyGateway is a running gateway in front of the echo application.
type proxyGateway struct{ gatewayClient }

// startProxy writes k's templates into a temporary directory and runs the
// gateway on them until the test ends, on a free port (another one when
// someone took the port in between).
func startProxy(t *testing.T, k proxyKind, bin, gatehouse, app string, appHits *atomic.Int64) *proxyGateway {
	t.Helper()
	cfg := proxyConfig{Dir: t.TempDir(), Gatehouse: gatehouse, App: app}
	_, cfg.GatehousePort, _ = net.SplitHostPort(gatehouse)
	_, cfg.AppPort, _ = net.SplitHostPort(app)
	client := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(client.CloseIdleConnections)
	var conf string
	for attempt := 1; ; attempt++ {
		cfg.Listen = freeLoopbackAddr(t)
		_, cfg.ListenPort, _ = net.SplitHostPort(cfg.Listen)
		for i, name := range k.templates {
			path := filepath.Join(cfg.Dir, strings.TrimSuffix(filepath.Base(name), ".tmpl"))
			if i == 0 {
				conf = path
			}
			tmpl, err := template.New(filepath.Base(name)).Option("missingkey=error").ParseFiles(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := tmpl.Execute(&b, cfg); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(bin, k.args(conf)...)
		cmd.Dir = cfg.Dir
		// Caddy keeps its data and autosaved configuration under these.
		cmd.Env = append(os.Environ(), "HOME="+cfg.Dir, "XDG_DATA_HOME="+cfg.Dir, "XDG_CONFIG_HOME="+cfg.Dir)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		dieWithTest(cmd)
		started := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", k.name, err)
		}
		done := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(done) }()
		stop := func() {
			_ = cmd.Process.Kill() // cmd.Process is our own child, started above
			<-done
		}
		g := &proxyGateway{gatewayClient{name: k.name, url: "http://" + cfg.Listen, client: client, appHits: appHits}}
		err := g.waitReady(done, 10*time.Second, k.loading)
		if err == nil {
			t.Logf("%s on %s answering after %v (attempt %d)", k.name, cfg.Listen, time.Since(started).Round(time.Millisecond), attempt)
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("%s output:\n%s", k.name, out)
				}
			})
			return g
		}
		select {
		case <-done:
			err = fmt.Errorf("%v (%s exited: %v)", err, k.name, waitErr)
		default:
		}
		stop()
		if (errors.Is(err, errPortTaken) || strings.Contains(out.String(), "address already in use")) && attempt < 5 {
			t.Logf("port %s was taken again before %s bound it; another one", cfg.Listen, k.name)
			continue
		}
		t.Fatalf("%s did not start: %v\nconfiguration %s\n%s", k.name, err, conf, out)
	}
}

// waitReady waits until the gateway answers on its port, and checks the
// answer is Gatehouse's refusal passed on (not that of a process which took
// the port first). A 5xx, or the status loading, means the gateway's routes or
// upstreams are still loading.
func (g *proxyGateway) waitReady(done <-chan struct{}, timeout time.Duration, loading int) error {
	addr := strings.TrimPrefix(g.url, "http://")
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("%s exited before answering", g.name)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering on %s after %v", g.name, addr, timeout)
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c.Close()
		resp, err := g.client.Get(g.url + "/")
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == bearerChallenge:
			return nil
		case resp.StatusCode >= 500 || resp.StatusCode == loading:
			// Still loading (Traefik's file provider, Envoy's clusters).
			time.Sleep(20 * time.Millisecond)
		default:
			return fmt.Errorf("%w: %s answers %d, WWW-Authenticate %q", errPortTaken, addr, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

// reached asserts that the request reached the application, at path, as the
// consumer id (username, scopes) and in no group: each consumer header once,
// X-Consumer-Groups absent or empty (gateways differ on forwarding an empty
// header).
func (a gatewayAnswer) reached(t *testing.T, what, path, id, username, scopes string) {
	t.Helper()
	if a.status != http.StatusOK || a.app == nil {
		t.Errorf("%s: %d, want the application's 200: %.300s", what, a.status, a.body)
		return
	}
	h := a.app.Headers
	for name, want := range map[string]string{"X-Consumer-Id": id, "X-Consumer-Username": username, "X-Consumer-Scopes": scopes} {
		if got := h.Values(name); want == "" && len(got) > 1 || want == "" && len(got) == 1 && got[0] != "" || want != "" && (len(got) != 1 || got[0] != want) {
			t.Errorf("%s: the application got %s %q, want %q", what, name, got, want)
		}
	}
	if got := h.Values("X-Consumer-Groups"); len(got) > 1 || len(got) == 1 && got[0] != "" {
		t.Errorf("%s: the application got X-Consumer-Groups %q, want none (vic is in no group)", what, got)
	}
	if a.app.URI != path {
		t.Errorf("%s: the application got %s, want %s", what, a.app.URI, path)
	}
}

// denied asserts the gateway answered status without calling the
// application, with the WWW-Authenticate challenge Gatehouse gave (none for "").
func (a gatewayAnswer) denied(t *testing.T, what string, status int, challenge string) {
	t.Helper()
	if a.status != status || a.app != nil {
		t.Errorf("%s: %d (application reached: %v), want %d: %.300s", what, a.status, a.app != nil, status, a.body)
		return
	}
	if got := strings.Join(a.header.Values("WWW-Authenticate"), " | "); got != challenge {
		t.Errorf("%s: WWW-Authenticate %q, want %q", what, got, challenge)
	}
}

// testProxyGateway runs k in front of the echo application, asking a real
// Gatehouse handler, and checks what a client and the application see.
func testProxyGateway(t *testing.T, k proxyKind) {
	if testing.Short() {
		t.Skipf("-short: the %s test runs %s", k.name, k.name)
	}
	bin := k.require(t)
	e := newEnv(t)
	f := newVerifyFixture(e)
	gatehouse := httptest.NewServer(e.public)
	t.Cleanup(gatehouse.Close)
	var hits atomic.Int64
	app := echoApp(t, &hits)
	g := startProxy(t, k, bin, strings.TrimPrefix(gatehouse.URL, "http://"), strings.TrimPrefix(app.URL, "http://"), &hits)
	key := f.keyID + ":" + f.keySecret // vic's, scope read

	t.Run("good credentials reach the application as the consumer", func(t *testing.T) {
		g.do(t, "GET", "/orders/1", "", "x-api-key", key).reached(t, "x-api-key", "/orders/1", f.userID, "vic", "read")
		g.do(t, "GET", "/orders", "", "Authorization", "apikey "+key).reached(t, "Authorization: apikey", "/orders", f.userID, "vic", "read")
		p := "/orders?page=2&apikey=" + url.QueryEscape(key)
		g.do(t, "GET", p, "").reached(t, "?apikey= of the original URL", p, f.userID, "vic", "read")
		g.do(t, "GET", "/orders", "", "Authorization", basicAuth("vic", f.basicPass)).reached(t, "basic", "/orders", f.userID, "vic", "")
		g.do(t, "GET", "/orders", "", "x-api-key", f.appKeyID+":"+f.appKeySecret).reached(t, "app key", "/orders", f.appID, "vic-app", "")
	})

	t.Run("consumer headers come from Gatehouse, never the client", func(t *testing.T) {
		spoof := []string{"X-Consumer-Id", "evil", "X-Consumer-Username", "root", "X-Consumer-Scopes", "write admin", "X-Consumer-Groups", "admins"}
		g.do(t, "GET", "/orders", "", append([]string{"x-api-key", key}, spoof...)...).reached(t, "spoofed, with a key", "/orders", f.userID, "vic", "read")
		g.do(t, "GET", "/orders", "", spoof...).denied(t, "spoofed, without a key", 401, bearerChallenge)
	})

	t.Run("no or wrong credential is 401 with a challenge", func(t *testing.T) {
		g.do(t, "GET", "/orders", "").denied(t, "no credential", 401, bearerChallenge)
		g.do(t, "GET", "/orders", "", "x-api-key", f.keyID+":"+strings.Repeat("x", 43)).denied(t, "wrong key secret", 401, bearerChallenge)
		g.do(t, "GET", "/orders?apikey=nope:"+f.keySecret, "").denied(t, "unknown ?apikey=", 401, bearerChallenge)
		g.do(t, "GET", "/orders", "", "Authorization", basicAuth("vic", "wrong password")).denied(t, "wrong basic password", 401, basicChallenge)
	})

	if k.scoped {
		t.Run("required scope", func(t *testing.T) {
			g.do(t, "GET", "/admin/users", "", "x-api-key", key).denied(t, "/admin/ without write", 403, "")
			g.do(t, "GET", "/admin/users", "", "x-api-key", key, "X-Required-Scopes", "read").denied(t, "client's own X-Required-Scopes", 403, "")
			tok := signJWT(t, f.jwtSecret, map[string]any{"kid": f.jwtKeyID}, jwt.MapClaims{})
			g.do(t, "GET", "/admin/users", "", "Authorization", "Bearer "+tok).reached(t, "/admin/ with write (jwt)", "/admin/users", f.userID, "vic", "write")
			g.do(t, "GET", "/orders", "", "x-api-key", key, "X-Required-Scopes", "write").reached(t, "client's X-Required-Scopes elsewhere", "/orders", f.userID, "vic", "read")
		})
	}

	t.Run("deactivated user is 403", func(t *testing.T) {
		e.must(200, "PUT", "/users/vic/status", `{"status":false}`)
		g.do(t, "GET", "/orders", "", "x-api-key", key).denied(t, "deactivated user's key", 403, "")
		g.do(t, "GET", "/orders", "", "Authorization", basicAuth("vic", f.basicPass)).denied(t, "deactivated user's basic", 403, "")
		e.must(200, "PUT", "/users/vic/status", `{"status":true}`)
		g.do(t, "GET", "/orders", "", "x-api-key", key).reached(t, "reactivated user's key", "/orders", f.userID, "vic", "read")
	})

	// Last: this poisons a key for a minute from the gateway's client address.
	t.Run("repeated failures: 401 with Retry-After", func(t *testing.T) {
		k := e.must(200, "POST", "/credentials", `{"consumerId":"vic","type":"key-auth"}`)
		bad := k["keyId"].(string) + ":" + strings.Repeat("y", 43)
		for i := 1; i <= 10; i++ {
			a := g.do(t, "GET", "/orders", "", "x-api-key", bad)
			a.denied(t, fmt.Sprintf("wrong key, failure %d", i), 401, bearerChallenge)
			if ra := a.header.Get("Retry-After"); ra != "" {
				if n, err := strconv.Atoi(ra); err != nil || n < 1 || n > 60 {
					t.Errorf("Retry-After %q, want 1 to 60 seconds", ra)
				}
				return
			}
		}
		t.Error("no Retry-After reached the client after 10 failures")
	})
}

// TestCaddyGateway: Caddy's forward_auth, testdata/caddy/Caddyfile.tmpl.
func TestCaddyGateway(t *testing.T) { testProxyGateway(t, caddyKind) }

// TestTraefikGateway: Traefik's forwardAuth, testdata/traefik/*.yml.tmpl.
func TestTraefikGateway(t *testing.T) { testProxyGateway(t, traefikKind) }

// TestEnvoyGateway: Envoy's ext_authz (HTTP), testdata/envoy/envoy.yaml.tmpl.
func TestEnvoyGateway(t *testing.T) { testProxyGateway(t, envoyKind) }

// TestGatewayDocs checks that docs/gateways.md shows every configuration the
// gateway tests run, verbatim: the documented snippets are the tested ones.
func TestGatewayDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "gateways.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{nginxTemplate}
	for _, k := range []proxyKind{caddyKind, traefikKind, envoyKind} {
		for _, name := range k.templates {
			files = append(files, filepath.Join("testdata", name))
		}
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(doc, append([]byte("\n"), b...)) {
			t.Errorf("docs/gateways.md does not show %s verbatim (as a whole, in a fenced block): copy it there again", name)
		}
	}
}
