package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/adminapi/openapi/openapitest"
	"github.com/gatehouse/gatehouse/configs"
	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// testAdminKey is the GATEHOUSE_ADMIN_KEY of test servers.
const testAdminKey = "test-admin-key-0123456789"

// lockedBuffer is a log sink safe for concurrent handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a Server over a real store on miniredis, with its log captured.
type env struct {
	t      testing.TB
	svc    *core.Service
	store  core.Store
	srv    *Server
	admin  http.Handler
	public http.Handler
	logs   *lockedBuffer
	mr     *miniredis.Miniredis
	clock  *testClock
	mail   *fakeProvider // the "email" identity provider
}

// testClock is the services' clock: real time plus an offset tests can move.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// testPolicy keeps the defaults but for rates small enough to reach in a test.
func testPolicy() core.Policy {
	p := core.DefaultPolicy()
	p.LoginPerIdentifier = core.Rate{Count: 5, Per: time.Minute}
	p.VerifyFailures = core.Rate{Count: 5, Per: time.Minute}
	p.SignupPerAddress = core.Rate{Count: 20, Per: time.Minute}
	return p
}

func newEnv(t testing.TB) *env {
	t.Helper()
	mr := miniredis.RunT(t)
	client := redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{mr.Addr()}}) // the server's own client settings
	t.Cleanup(func() { client.Close() })
	return newEnvOn(t, client, mr)
}

// newEnvOn builds an env on any Redis client.
func newEnvOn(t testing.TB, client redis.UniversalClient, mr *miniredis.Miniredis) *env {
	t.Helper()
	return newEnvCached(t, client, mr, core.VerifyCacheOptions{})
}

// newEnvCached builds an env on any Redis client, with that /verify cache
// (in use by the time it returns when it is on).
func newEnvCached(t testing.TB, client redis.UniversalClient, mr *miniredis.Miniredis, cache core.VerifyCacheOptions) *env {
	t.Helper()
	// Bounds for a loaded CI machine: a request under -race there has waited
	// past the default 500 ms read bound for a CPU.
	return newEnvClocked(t, client, mr, cache, false, redisstore.Options{ReadTimeout: redistest.StoreTimeout, WriteTimeout: redistest.StoreTimeout})
}

// newEnvClocked is newEnvCached on a store with opt's bounds and replicas to
// wait for (its prefix and clock are the env's); with storeClock the store
// tells the time of its claims by the env's clock rather than Redis TIME, so
// that a test can move claims past their grace.
func newEnvClocked(t testing.TB, client redis.UniversalClient, mr *miniredis.Miniredis, cache core.VerifyCacheOptions, storeClock bool, opt redisstore.Options) *env {
	t.Helper()
	models, err := core.LoadModels(configs.Models)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	opt.Prefix = "t:"
	if storeClock {
		opt.Clock = clock
	}
	store := redisstore.New(client, opt)
	mail := newFakeProvider()
	svc := core.NewService(store, core.Options{
		Providers: fakeProviders{"email": mail}, PublicURL: "https://auth.example.test",
		Models: models, Hasher: core.NewHasher(core.TestArgon2, 4),
		Keyring: core.NewEphemeralKeyring(), AdminKey: testAdminKey,
		Limiter: store.Limiter(), Policy: testPolicy(), Now: clock.Now, VerifyCache: cache,
	})
	if cache.Size > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); svc.FollowChanges(ctx) }()
		t.Cleanup(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("FollowChanges did not return after its context ended")
			}
		})
		for deadline := time.Now().Add(5 * time.Second); !svc.VerifyCacheLive(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the /verify cache not in use after 5 s")
			}
		}
	}
	logs := &lockedBuffer{}
	// httptest's requests come from 192.0.2.1: trust it, as a gateway in front.
	srv := New(svc, Options{Log: zerolog.New(logs).Level(zerolog.DebugLevel), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}})
	admin, public := srv.Admin(), srv.Public()
	if _, bench := t.(*testing.B); !bench { // benchmarks time the handlers alone
		// Every exchange of the suite is checked against the OpenAPI document.
		admin, public = openapitest.Wrap(t, srv.Routes(), admin, public)
	}
	return &env{t: t, svc: svc, store: store, srv: srv, admin: admin, public: public, logs: logs, mr: mr, clock: clock, mail: mail}
}

// do sends a request to the admin listener with the test admin key.
func (e *env) do(method, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.doKey(method, path, body, testAdminKey)
}

// doKey sends a request with an explicit key in x-api-key ("" sends none).
func (e *env) doKey(method, path, body, key string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	w := httptest.NewRecorder()
	e.admin.ServeHTTP(w, req)
	return w
}

// must sends a request and fails the test unless the status is want; it returns
// the decoded JSON body (nil for an empty one).
func (e *env) must(want int, method, path, body string) map[string]any {
	e.t.Helper()
	w := e.do(method, path, body)
	if w.Code != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, w.Code, want, w.Body)
	}
	return decode(e.t, w.Body.Bytes())
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, b)
	}
	return m
}

// fieldsOf returns the field names of a problem's errors.
func fieldsOf(m map[string]any) []string {
	var out []string
	errs, _ := m["errors"].([]any)
	for _, e := range errs {
		if f, ok := e.(map[string]any)["field"].(string); ok {
			out = append(out, f)
		}
	}
	return out
}

// call sends a request to h with headers (pairs of name, value) and returns the
// recorder.
func call(t testing.TB, h http.Handler, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// pub sends a request to the public listener.
func (e *env) pub(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	return call(e.t, e.public, method, path, body, headers...)
}
