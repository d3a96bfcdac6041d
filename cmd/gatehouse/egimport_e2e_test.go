package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/adminapi"
	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
	"github.com/gatehouse/gatehouse/internal/proctest"
)

// egPackage is the pinned Express Gateway that adminapi's CLI test installs
// (npm ci in adminapi/testdata/eg).
const egPackage = "../../adminapi/testdata/eg/node_modules/express-gateway"

// startExpressGateway runs the real Express Gateway 1.16.11 (its admin API)
// on the redis-server at redisAddr, namespace EG, and returns its admin
// API's base URL. It skips without node or the package (fails with CI=true).
func startExpressGateway(t *testing.T, redisAddr string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	pkg, _ := filepath.Abs(egPackage)
	if err == nil {
		_, err = os.Stat(filepath.Join(pkg, "lib", "index.js"))
	}
	if err != nil {
		msg := fmt.Sprintf("Express Gateway needs node and %s (npm ci in adminapi/testdata/eg, which adminapi's tests run): %v", pkg, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "models"), os.DirFS(filepath.Join(pkg, "lib", "config", "models"))); err != nil {
		t.Fatal(err)
	}
	rhost, rport, _ := net.SplitHostPort(redisAddr)
	system := fmt.Sprintf("db:\n  redis:\n    emulate: false\n    host: %s\n    port: %s\n    namespace: EG\n"+
		"crypto:\n  cipherKey: sensitiveKey\n  algorithm: aes256\n  saltRounds: 10\n"+
		"session:\n  secret: keyboard cat\n  resave: false\n  saveUninitialized: false\n"+
		"accessTokens:\n  timeToExpiry: 7200000\nrefreshTokens:\n  timeToExpiry: 7200000\nauthorizationCodes:\n  timeToExpiry: 300000\n", rhost, rport)
	if err := os.WriteFile(filepath.Join(dir, "system.config.yml"), []byte(system), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 { // a port found free may be taken before node binds it
		admin, httpAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
		_, aport, _ := net.SplitHostPort(admin)
		_, hport, _ := net.SplitHostPort(httpAddr)
		gw := fmt.Sprintf("http:\n  port: %s\nadmin:\n  port: %s\n  host: 127.0.0.1\napiEndpoints: {}\nserviceEndpoints: {}\npolicies: []\npipelines: {}\n", hport, aport)
		if err := os.WriteFile(filepath.Join(dir, "gateway.config.yml"), []byte(gw), 0o644); err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		cmd := exec.Command(node, "-e", fmt.Sprintf("require(%q)().load(%q).run()", pkg, dir))
		cmd.Env = append(os.Environ(), "NODE_ENV=production", "LOG_LEVEL=error")
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		stop := func() {
			proctest.Signal(t, pid, os.Getpid(), syscall.SIGKILL)
			_ = cmd.Wait()
		}
		base := "http://" + admin
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if resp, err := http.Get(base + "/users"); err == nil {
				resp.Body.Close()
				t.Cleanup(stop)
				return base
			}
		}
		stop()
		t.Logf("express gateway did not answer on %s:\n%s", admin, log.String())
	}
	t.Fatal("express gateway did not start")
	return ""
}

// egCall sends a JSON body to Express Gateway's admin API and decodes its
// answer into out, failing unless it answers 200 or 201.
func egCall(t *testing.T, base, method, path string, body, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 && resp.StatusCode != 201 {
		t.Fatalf("express gateway %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("express gateway %s %s: %v in %s", method, path, err, b)
		}
	}
}

// TestImportExpressGateway runs the real Express Gateway on a real
// redis-server, creates users, apps, scopes and credentials of every type
// through its admin API, imports that database with `gatehouse import --from
// express-gateway`, and checks that Gatehouse's /verify accepts the same
// key-auth keys and basic-auth passwords (EG's bcrypt, rehashed to argon2id
// on first use), its token endpoint the oauth2 secret, and refuses (403) the
// key Express Gateway had deactivated. A second import changes nothing.
func TestImportExpressGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and Express Gateway")
	}
	srv := redistest.StartServer(t)
	eg := startExpressGateway(t, strings.TrimPrefix(srv.URL, "redis://"))

	type user struct{ ID, Username string }
	var ada, bob user
	egCall(t, eg, "POST", "/users", map[string]string{"username": "ada", "firstname": "Ada", "lastname": "Lovelace", "email": "Ada@Example.com"}, &ada)
	egCall(t, eg, "POST", "/users", map[string]string{"username": "bob", "firstname": "Bob", "lastname": "B"}, &bob)
	var app struct{ ID string }
	egCall(t, eg, "POST", "/apps", map[string]string{"name": "engine", "userId": ada.ID}, &app)
	egCall(t, eg, "POST", "/scopes", map[string]any{"scopes": []string{"read", "write"}}, nil)
	type cred struct{ ID, KeyID, KeySecret, Password, Secret string }
	var key, appKey, off, jwtKey, basic, oauth cred
	egCall(t, eg, "POST", "/credentials", map[string]any{"consumerId": ada.ID, "type": "key-auth", "credential": map[string]any{"scopes": []string{"read"}}}, &key)
	egCall(t, eg, "POST", "/credentials", map[string]any{"consumerId": app.ID, "type": "key-auth", "credential": map[string]any{}}, &appKey)
	egCall(t, eg, "POST", "/credentials", map[string]any{"consumerId": bob.ID, "type": "key-auth", "credential": map[string]any{}}, &off)
	egCall(t, eg, "PUT", "/credentials/key-auth/"+off.KeyID+"/status", map[string]bool{"status": false}, nil)
	egCall(t, eg, "POST", "/credentials", map[string]any{"consumerId": bob.ID, "type": "jwt", "credential": map[string]any{}}, &jwtKey)
	egCall(t, eg, "POST", "/credentials", map[string]any{"consumerId": ada.ID, "type": "basic-auth", "credential": map[string]any{"password": "analytical engine"}}, &basic)
	egCall(t, eg, "POST", "/credentials", map[string]any{"consumerId": app.ID, "type": "oauth2", "credential": map[string]any{"secret": "a-client-secret-of-the-engine"}}, &oauth)

	env := map[string]string{
		"GATEHOUSE_REDIS_URL": srv.URL, "GATEHOUSE_REDIS_PREFIX": "gh:",
		"GATEHOUSE_ENCRYPTION_KEYS": "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
	}
	imp := func() string {
		code, _, stderr := runVerb(t, func(e cliEnv) int {
			return runImport(t.Context(), []string{"--config", "", "--from", "express-gateway", "--redis", srv.URL, "--namespace", "EG"}, e)
		}, env)
		if code != exitOK {
			t.Fatalf("import --from express-gateway: exit %d\n%s", code, stderr)
		}
		return stderr
	}
	if out := imp(); !strings.Contains(out, "created 2 scope, 2 user;") {
		t.Errorf("import's summary: %s", out)
	}

	cfg := DefaultConfig()
	cfg.Redis.URL, cfg.Redis.Prefix, cfg.EncryptionKeys = srv.URL, "gh:", env["GATEHOUSE_ENCRYPTION_KEYS"]
	opts, err := redisstore.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(redisstore.NewClient(opts), cfg.Redis.StoreOptions())
	t.Cleanup(func() { store.Close() })
	svc, err := newService(cfg, store, store.Limiter(), nil, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	public := httptest.NewServer(adminapi.New(svc, adminapi.Options{Log: zerolog.Nop()}).Public())
	t.Cleanup(public.Close)
	verify := func(header, value string, want int) http.Header {
		t.Helper()
		req, _ := http.NewRequest("GET", public.URL+"/verify", nil)
		req.Header.Set(header, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("/verify with %s %.14s…: %d, want %d", header, value, resp.StatusCode, want)
		}
		return resp.Header
	}
	h := verify("Authorization", "apikey "+key.KeyID+":"+key.KeySecret, 200)
	if h.Get("X-Consumer-Id") != ada.ID || h.Get("X-Consumer-Username") != "ada" || !strings.Contains(h.Get("X-Consumer-Scopes"), "read") {
		t.Errorf("ada's key: consumer headers %v", h)
	}
	if h := verify("x-api-key", appKey.KeyID+":"+appKey.KeySecret, 200); h.Get("X-Consumer-Id") != app.ID {
		t.Errorf("the app's key: X-Consumer-Id %q, want the app %s", h.Get("X-Consumer-Id"), app.ID)
	}
	verify("Authorization", "apikey "+off.KeyID+":"+off.KeySecret, 403) // known, deactivated
	verify("Authorization", "apikey "+key.KeyID+":wrong"+key.KeySecret, 401)
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("ada:analytical engine"))
	verify("Authorization", basicAuth, 200)
	verify("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ada:wrong password")), 401)
	c, err := store.GetCredential(t.Context(), core.BasicAuth, ada.ID)
	if err != nil || !strings.HasPrefix(c.Secret, "$argon2id$") {
		t.Errorf("ada's bcrypt password after its first use: %.10s… (%v), want an argon2id hash", c.Secret, err)
	}
	verify("Authorization", basicAuth, 200)

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ID}, "client_secret": {"a-client-secret-of-the-engine"}}
	resp, err := http.PostForm(public.URL+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Errorf("client credentials with the imported oauth2 secret: %d", resp.StatusCode)
	} else {
		verify("Authorization", "Bearer "+tok.AccessToken, 200)
	}

	u, err := svc.ResolveUser(t.Context(), "ada")
	if err != nil || u.ID != ada.ID || u.Email != "Ada@example.com" || u.Props["firstname"] != "Ada" || u.Number == 0 {
		t.Errorf("ada in Gatehouse: %+v (%v)", u, err)
	}
	jc, err := store.GetCredential(t.Context(), core.JWT, jwtKey.KeyID)
	if err != nil || !strings.HasPrefix(jc.Secret, "aesgcm:") {
		t.Errorf("bob's jwt secret: %.8s… (%v), want it sealed", jc.Secret, err)
	} else if s, err := svc.JWTSecret(jc); err != nil || string(s) != jwtKey.KeySecret {
		t.Errorf("bob's sealed jwt secret does not open to Express Gateway's: %v", err)
	}

	if out := imp(); !strings.Contains(out, "created nothing; already there 2 scope, 2 user;") {
		t.Errorf("second import: %s", out)
	}
}
