package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// nginxTemplate is the nginx configuration TestNginxGateway runs, and the
// example configuration Gatehouse documents.
var nginxTemplate = filepath.Join("testdata", "nginx", "nginx.conf.tmpl")

// nginxConfig fills nginxTemplate.
type nginxConfig struct {
	Dir       string // nginx's prefix: configuration, logs, pid and temporary files
	Listen    string // the address clients call: 127.0.0.1:PORT
	Gatehouse string // Gatehouse's public listener, host:port
	App       string // the application behind nginx, host:port
}

// echoed is the application's answer: the request it received from nginx.
type echoed struct {
	Method  string      `json:"method"`
	URI     string      `json:"uri"`
	Headers http.Header `json:"headers"`
	Body    string      `json:"body"`
}

// echoApp is the application behind nginx: it answers 200 with the request it
// received, as JSON, and counts the requests.
func echoApp(t *testing.T, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", "1")
		_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, URI: r.RequestURI, Headers: r.Header, Body: string(body)})
	}))
	t.Cleanup(app.Close)
	return app
}

// nginxGateway is a running nginx in front of the echo application.
type nginxGateway struct {
	gatewayClient
	dir string
}

// gatewayClient sends requests through a gateway (nginx, Caddy, …) in front of
// the echo application.
type gatewayClient struct {
	name    string
	url     string // http://127.0.0.1:PORT
	client  *http.Client
	appHits *atomic.Int64
}

// gatewayAnswer is what a client of nginx sees.
type gatewayAnswer struct {
	status int
	header http.Header
	body   string
	app    *echoed // what the application received, nil when nginx answered alone
}

// requireNginx returns the path of an nginx with the auth_request module. It
// skips the test, with a message, when there is none; with CI=true that is a
// failure.
func requireNginx(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx" // not in a non-root PATH on Debian
	}
	msg := ""
	if _, err := os.Stat(bin); err != nil {
		msg = "nginx not found in PATH or at /usr/sbin/nginx; install it (Debian: apt-get install nginx) to run the nginx auth_request test"
	} else if out, err := exec.Command(bin, "-V").CombinedOutput(); err != nil {
		msg = fmt.Sprintf("%s -V: %v: %s", bin, err, out)
	} else if !bytes.Contains(out, []byte("http_auth_request_module")) {
		msg = bin + " was built without http_auth_request_module, which the nginx test needs"
	}
	if msg == "" {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing nginx is a failure, not a skip)")
	}
	t.Skip(msg)
	return ""
}

// dieWithTest has the kernel kill cmd's process when the test process dies, so
// that nginx never outlives a killed test: Pdeathsig, which exists on Linux and
// FreeBSD only (hence reflect, so that this file builds everywhere).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if f := reflect.ValueOf(cmd.SysProcAttr).Elem().FieldByName("Pdeathsig"); f.IsValid() && f.CanSet() {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
}

// freeLoopbackAddr returns a loopback address whose port was free a moment
// ago (nginx cannot take an inherited socket: it binds the port itself).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNginx writes nginxTemplate with cfg into a temporary directory and runs
// nginx on it until the test ends, on a free port (another one when someone
// took the port in between).
func startNginx(t *testing.T, bin string, cfg nginxConfig, appHits *atomic.Int64) *nginxGateway {
	t.Helper()
	tmpl, err := template.New(filepath.Base(nginxTemplate)).Option("missingkey=error").ParseFiles(nginxTemplate)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir = t.TempDir()
	conf := filepath.Join(cfg.Dir, "nginx.conf")
	errLog := filepath.Join(cfg.Dir, "error.log")
	client := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(client.CloseIdleConnections)
	for attempt := 1; ; attempt++ {
		cfg.Listen = freeLoopbackAddr(t)
		var b bytes.Buffer
		if err := tmpl.Execute(&b, cfg); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(conf, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(errLog) // a failed attempt's
		cmd := exec.Command(bin, "-p", cfg.Dir+string(filepath.Separator), "-c", conf, "-e", errLog)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		dieWithTest(cmd)
		started := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting nginx: %v", err)
		}
		done := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(done) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-done
		}
		g := &nginxGateway{gatewayClient: gatewayClient{name: "nginx", url: "http://" + cfg.Listen, client: client, appHits: appHits}, dir: cfg.Dir}
		err := g.waitReady(done, 5*time.Second)
		if err == nil {
			t.Logf("nginx on %s answering after %v (attempt %d)", cfg.Listen, time.Since(started).Round(time.Millisecond), attempt)
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					access := strings.Split(strings.TrimSpace(g.readLog("access.log")), "\n")
					access = access[max(0, len(access)-40):]
					t.Logf("nginx error.log:\n%s\nnginx access.log (the end):\n%s\nnginx output:\n%s", g.readLog("error.log"), strings.Join(access, "\n"), out)
				}
			})
			return g
		}
		select {
		case <-done:
			err = fmt.Errorf("%v (nginx exited: %v)", err, waitErr)
		default:
		}
		stop()
		logs := g.readLog("error.log") + out.String()
		if (errors.Is(err, errPortTaken) || strings.Contains(logs, "Address already in use")) && attempt < 5 {
			t.Logf("port %s was taken again before nginx bound it; another one", cfg.Listen)
			continue
		}
		t.Fatalf("nginx did not start: %v\nconfiguration %s\n%s", err, conf, logs)
	}
}

// errPortTaken: something else answers on the port nginx was given.
var errPortTaken = errors.New("not our nginx")

// waitReady waits until nginx answers on its port, and checks the answer is
// nginx's (not that of a process which took the port first).
func (g *nginxGateway) waitReady(done <-chan struct{}, timeout time.Duration) error {
	addr := strings.TrimPrefix(g.url, "http://")
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-done:
			return errors.New("nginx exited before listening")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listening on %s after %v", addr, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := g.client.Get(g.url + "/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Server"), "nginx") || resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("%w: %s answers %d, Server %q", errPortTaken, addr, resp.StatusCode, resp.Header.Get("Server"))
	}
	return nil
}

// readLog returns one of nginx's logs.
func (g *nginxGateway) readLog(name string) string {
	b, err := os.ReadFile(filepath.Join(g.dir, name))
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// do sends a request through the gateway, with headers as pairs of name,
// value, and tells the application's answer from the gateway's own.
func (g *gatewayClient) do(t *testing.T, method, path, body string, headers ...string) gatewayAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	hits := g.appHits.Load()
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s through %s: %v", method, path, g.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s through %s: reading the body: %v", method, path, g.name, err)
	}
	a := gatewayAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.Header.Get("X-Echo") != "" {
		a.app = &echoed{}
		if err := json.Unmarshal(b, a.app); err != nil {
			t.Fatalf("%s %s: the application's answer: %v: %s", method, path, err, b)
		}
	} else if g.appHits.Load() != hits {
		t.Fatalf("%s %s: the application was called but %s answered %d itself", method, path, g.name, resp.StatusCode)
	}
	return a
}

// passed asserts that the request reached the application as the consumer id
// (username, scopes), each consumer header once, and no groups.
func (a gatewayAnswer) passed(t *testing.T, what, id, username, scopes string) {
	t.Helper()
	if a.status != http.StatusOK || a.app == nil {
		t.Errorf("%s: nginx answered %d, want the application's 200: %.300s", what, a.status, a.body)
		return
	}
	h := a.app.Headers
	for name, want := range map[string]string{"X-Consumer-Id": id, "X-Consumer-Username": username, "X-Consumer-Scopes": scopes} {
		if got := h.Values(name); want == "" && len(got) != 0 || want != "" && (len(got) != 1 || got[0] != want) {
			t.Errorf("%s: the application got %s %q, want %q", what, name, got, want)
		}
	}
	if got := h.Values("X-Consumer-Groups"); len(got) != 0 {
		t.Errorf("%s: the application got X-Consumer-Groups %q, want none (vic is in no group)", what, got)
	}
}

// refused asserts nginx answered status itself (the application never saw
// the request), with WWW-Authenticate challenge for a 401.
func (a gatewayAnswer) refused(t *testing.T, what string, status int, challenge string) {
	t.Helper()
	if a.status != status || a.app != nil {
		t.Errorf("%s: %d (application reached: %v), want %d from nginx: %.300s", what, a.status, a.app != nil, status, a.body)
		return
	}
	if !strings.HasPrefix(a.header.Get("Server"), "nginx") {
		t.Errorf("%s: Server %q, want nginx", what, a.header.Get("Server"))
	}
	var want []string
	if challenge != "" {
		want = []string{challenge}
	}
	if got := a.header.Values("WWW-Authenticate"); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: WWW-Authenticate %q, want %q", what, got, want)
	}
}

const (
	bearerChallenge = `Bearer realm="gatehouse"`
	basicChallenge  = `Basic realm="gatehouse", charset="UTF-8"`
)

// TestNginxGateway runs the real use of Gatehouse: nginx in front of an
// application, asking Gatehouse's /verify with auth_request, configured by
// testdata/nginx/nginx.conf.tmpl (the configuration we document), and checks
// what a client and the application see.
func TestNginxGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the nginx test runs nginx")
	}
	bin := requireNginx(t)
	began := time.Now()
	e := newEnv(t)
	f := newVerifyFixture(e)
	gatehouse := httptest.NewServer(e.public)
	t.Cleanup(gatehouse.Close)
	var hits atomic.Int64
	app := echoApp(t, &hits)
	g := startNginx(t, bin, nginxConfig{
		Gatehouse: strings.TrimPrefix(gatehouse.URL, "http://"),
		App:       strings.TrimPrefix(app.URL, "http://"),
	}, &hits)

	key := f.keyID + ":" + f.keySecret // vic's, scope read
	wrongKey := f.keyID + ":" + strings.Repeat("x", 43)
	const password = "correct horse battery"
	var session string
	secrets := []string{f.keySecret, f.appKeySecret, f.basicPass, f.jwtSecret}

	t.Run("api key in every place", func(t *testing.T) {
		for _, c := range []struct {
			name, path string
			headers    []string
		}{
			{"Authorization: apikey", "/orders/1", []string{"Authorization", "apikey " + key}},
			{"x-api-key header", "/orders/1", []string{"x-api-key", key}},
			{"apikey header", "/orders/1", []string{"apikey", key}},
			{"?apikey= of the original URL", "/orders?page=2&apikey=" + url.QueryEscape(key), nil},
			{"?apiKey= of the original URL", "/orders?apiKey=" + url.QueryEscape(key) + "&page=2", nil},
		} {
			a := g.do(t, "GET", c.path, "", c.headers...)
			a.passed(t, c.name, f.userID, "vic", "read")
			if a.app != nil && (a.app.Method != "GET" || a.app.URI != c.path) {
				t.Errorf("%s: the application got %s %s, want GET %s", c.name, a.app.Method, a.app.URI, c.path)
			}
		}
		// An app's key: the consumer is the app.
		g.do(t, "GET", "/orders", "", "x-api-key", f.appKeyID+":"+f.appKeySecret).passed(t, "app key", f.appID, "vic-app", "")
	})

	t.Run("session token", func(t *testing.T) {
		e.must(204, "PUT", "/users/vic/password", fmt.Sprintf(`{"password":%q}`, password))
		code, tok := e.login("email", "vic", password) // POST /auth/tokens on e.public
		if code != 200 || tok == "" {
			t.Fatalf("login: %d", code)
		}
		session = tok
		secrets = append(secrets, tok, password)
		g.do(t, "GET", "/me", "", "Authorization", "Bearer "+session).passed(t, "session token", f.userID, "vic", "")
	})

	t.Run("basic auth", func(t *testing.T) {
		g.do(t, "GET", "/orders", "", "Authorization", basicAuth("vic", f.basicPass)).passed(t, "basic by username", f.userID, "vic", "")
		g.do(t, "GET", "/orders", "", "Authorization", basicAuth(f.appID, f.appBasicPass)).passed(t, "app's basic", f.appID, "vic-app", "")
	})

	t.Run("bearer jwt and oauth2 token", func(t *testing.T) {
		tok := signJWT(t, f.jwtSecret, map[string]any{"kid": f.jwtKeyID}, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()})
		g.do(t, "GET", "/orders", "", "Authorization", "Bearer "+tok).passed(t, "jwt", f.userID, "vic", "write")
		code, body := e.clientToken(f.oauthClient, f.oauthSecret, "")
		if code != 200 {
			t.Fatalf("client credentials: %d %v", code, body)
		}
		access := body["access_token"].(string)
		secrets = append(secrets, access)
		g.do(t, "GET", "/orders", "", "Authorization", "Bearer "+access).passed(t, "oauth2 token", f.appID, "vic-app", "read write")
	})

	t.Run("a POST's body goes to the application", func(t *testing.T) {
		a := g.do(t, "POST", "/orders", `{"item":42}`, "x-api-key", key, "Content-Type", "application/json")
		a.passed(t, "POST", f.userID, "vic", "read")
		if a.app != nil && (a.app.Method != "POST" || a.app.Body != `{"item":42}`) {
			t.Errorf("the application got %s with body %q", a.app.Method, a.app.Body)
		}
	})

	t.Run("no or wrong credential is 401 with a challenge", func(t *testing.T) {
		a := g.do(t, "GET", "/orders", "")
		a.refused(t, "no credential", 401, bearerChallenge)
		if ra := a.header.Values("Retry-After"); len(ra) != 0 {
			t.Errorf("no credential: Retry-After %q", ra)
		}
		g.do(t, "GET", "/orders", "", "x-api-key", wrongKey).refused(t, "wrong key secret", 401, bearerChallenge)
		g.do(t, "GET", "/orders", "", "Authorization", "apikey nope:"+f.keySecret).refused(t, "unknown keyId", 401, bearerChallenge)
		g.do(t, "GET", "/orders?apikey="+url.QueryEscape(wrongKey), "").refused(t, "wrong ?apikey=", 401, bearerChallenge)
		g.do(t, "GET", "/orders", "", "Authorization", basicAuth("vic", "wrong password")).refused(t, "wrong basic password", 401, basicChallenge)
		g.do(t, "GET", "/orders", "", "Authorization", "Bearer gths_nonsense").refused(t, "forged session token", 401, bearerChallenge)
	})

	t.Run("the check is internal", func(t *testing.T) {
		g.do(t, "GET", "/_verify", "", "x-api-key", key).refused(t, "GET /_verify", 404, "")
	})

	t.Run("consumer headers cannot be spoofed", func(t *testing.T) {
		spoof := []string{"X-Consumer-Id", "evil", "X-Consumer-Username", "root", "X-Consumer-Scopes", "write admin", "X-Consumer-Groups", "admins"}
		g.do(t, "GET", "/orders", "", append([]string{"x-api-key", key}, spoof...)...).passed(t, "spoofed, with a key", f.userID, "vic", "read")
		g.do(t, "GET", "/orders", "", spoof...).refused(t, "spoofed, without a key", 401, bearerChallenge)
		// Nor can a client choose its own required scopes.
		g.do(t, "GET", "/admin/users", "", "x-api-key", key, "X-Required-Scopes", "read").refused(t, "client's X-Required-Scopes", 403, "")
	})

	t.Run("required scope", func(t *testing.T) {
		g.do(t, "GET", "/admin/users", "", "x-api-key", key).refused(t, "/admin/ without write", 403, "")
		g.do(t, "GET", "/admin/users", "", "Authorization", basicAuth("vic", f.basicPass)).refused(t, "/admin/ with basic (no scopes)", 403, "")
		tok := signJWT(t, f.jwtSecret, map[string]any{"kid": f.jwtKeyID}, jwt.MapClaims{})
		g.do(t, "GET", "/admin/users", "", "Authorization", "Bearer "+tok).passed(t, "/admin/ with write (jwt)", f.userID, "vic", "write")
		// Granting and removing the scope takes effect at once.
		e.must(204, "PUT", "/credentials/key-auth/"+f.keyID+"/scopes/write", "")
		g.do(t, "GET", "/admin/users", "", "x-api-key", key).passed(t, "/admin/ after granting write", f.userID, "vic", "read write")
		e.must(204, "DELETE", "/credentials/key-auth/"+f.keyID+"/scopes/write", "")
		g.do(t, "GET", "/admin/users", "", "x-api-key", key).refused(t, "/admin/ after removing write", 403, "")
		g.do(t, "GET", "/orders", "", "x-api-key", key).passed(t, "/ after removing write", f.userID, "vic", "read")
	})

	t.Run("deactivated user is 403 at once", func(t *testing.T) {
		e.must(200, "PUT", "/users/vic/status", `{"status":false}`)
		g.do(t, "GET", "/orders", "", "x-api-key", key).refused(t, "deactivated user's key", 403, "")
		g.do(t, "GET", "/orders", "", "x-api-key", f.appKeyID+":"+f.appKeySecret).refused(t, "deactivated user's app key", 403, "")
		g.do(t, "GET", "/orders", "", "Authorization", basicAuth("vic", f.basicPass)).refused(t, "deactivated user's basic", 403, "")
		if session != "" {
			g.do(t, "GET", "/orders", "", "Authorization", "Bearer "+session).refused(t, "deactivated user's session", 403, "")
		}
		e.must(200, "PUT", "/users/vic/status", `{"status":true}`)
		g.do(t, "GET", "/orders", "", "x-api-key", key).passed(t, "reactivated user's key", f.userID, "vic", "read")
	})

	t.Run("logout is 401 at once", func(t *testing.T) {
		if session == "" {
			t.Skip("no session")
		}
		if w := e.pub("POST", "/auth/logout", "", "Authorization", "Bearer "+session); w.Code != 204 {
			t.Fatalf("logout: %d %s", w.Code, w.Body)
		}
		g.do(t, "GET", "/orders", "", "Authorization", "Bearer "+session).refused(t, "logged out session", 401, bearerChallenge)
	})

	// Last: this poisons a key and vic's basic credential for a minute from
	// nginx's address.
	t.Run("repeated failures: 401 with Retry-After, never 500", func(t *testing.T) {
		k := e.must(200, "POST", "/credentials", `{"consumerId":"vic","type":"key-auth"}`)
		good := k["keyId"].(string) + ":" + k["keySecret"].(string)
		bad := k["keyId"].(string) + ":" + strings.Repeat("y", 43)
		secrets = append(secrets, k["keySecret"].(string))
		// throttled fails with headers until Retry-After comes, which must be
		// at failure allowed+1 (the test policy allows 5 a minute).
		throttled := func(what string, allowed int, challenge string, headers ...string) {
			t.Helper()
			for i := 1; i <= 10; i++ {
				a := g.do(t, "GET", "/orders", "", headers...)
				a.refused(t, fmt.Sprintf("%s, failure %d", what, i), 401, challenge)
				if a.status != 401 {
					return
				}
				if ra := a.header.Get("Retry-After"); ra != "" {
					if i != allowed+1 {
						t.Errorf("%s: first Retry-After at failure %d, want %d", what, i, allowed+1)
					}
					return
				}
			}
			t.Errorf("%s: no Retry-After after 10 failures", what)
		}
		retryAfter := func(what string, a gatewayAnswer) {
			t.Helper()
			ra := a.header.Values("Retry-After")
			if len(ra) != 1 {
				t.Errorf("%s: Retry-After %q, want one", what, ra)
				return
			}
			if n, err := strconv.Atoi(ra[0]); err != nil || n < 1 || n > 60 {
				t.Errorf("%s: Retry-After %q, want 1 to 60 seconds", what, ra[0])
			}
		}
		throttled("wrong key", 5, bearerChallenge, "x-api-key", bad)
		a := g.do(t, "GET", "/orders", "", "x-api-key", good)
		a.refused(t, "right key after failures", 401, bearerChallenge)
		retryAfter("right key after failures", a)
		g.do(t, "GET", "/orders", "", "x-api-key", key).passed(t, "another key", f.userID, "vic", "read")

		// One wrong basic password was sent above.
		throttled("wrong basic password", 4, basicChallenge, "Authorization", basicAuth("vic", "wrong password"))
		a = g.do(t, "GET", "/orders", "", "Authorization", basicAuth("vic", f.basicPass))
		a.refused(t, "right basic password after failures", 401, basicChallenge)
		retryAfter("right basic password after failures", a)
	})

	// A rough figure, for the record: a verified request through nginx,
	// Gatehouse (on miniredis, race detector on) and the application.
	const n = 100
	start := time.Now()
	for range n {
		if a := g.do(t, "GET", "/orders", "", "x-api-key", key); a.status != 200 {
			t.Fatalf("timing run: %d", a.status)
		}
	}
	t.Logf("%d verified requests through nginx: %v each", n, (time.Since(start) / n).Round(time.Microsecond))

	t.Run("logs", func(t *testing.T) {
		access := g.readLog("access.log")
		for _, s := range secrets {
			if strings.Contains(access, s) || strings.Contains(access, url.QueryEscape(s)) {
				t.Errorf("a secret (%.6s…) is in nginx's access log", s)
			}
		}
		if !strings.Contains(access, "consumer="+f.userID) {
			t.Errorf("the access log does not name the consumer:\n%s", access)
		}
		// The configuration logs from warn up: nothing is expected (an
		// uninitialized variable, an upstream error would show here).
		if errs := strings.TrimSpace(g.readLog("error.log")); errs != "" {
			t.Errorf("nginx's error log:\n%s", errs)
		}
	})
	t.Logf("whole test: %v", time.Since(began).Round(time.Millisecond))
}
