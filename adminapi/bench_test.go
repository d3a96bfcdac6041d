package adminapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// benchEnv is an env on a real redis-server when one is installed (the figures
// then include a loopback Redis round trip), else on miniredis.
func benchEnv(b *testing.B, cache core.VerifyCacheOptions) *env {
	e, _ := benchEnvClient(b, cache)
	return e
}

// benchEnvClient is benchEnv with its client; nil when the env is on
// miniredis.
func benchEnvClient(b *testing.B, cache core.VerifyCacheOptions) (*env, *redis.Client) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		b.Log("redis-server not installed: measuring on miniredis")
		mr := miniredis.RunT(b)
		client := redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{mr.Addr()}})
		b.Cleanup(func() { client.Close() })
		return newEnvCached(b, client, mr, cache), nil
	}
	srv := redistest.StartServer(b)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { client.Close() })
	return newEnvCached(b, client, nil, cache), client
}

// redisCommands is the number of commands the server has run (INFO
// commandstats: a script's own calls count too), or -1 without a server.
func redisCommands(b *testing.B, c *redis.Client) int64 {
	calls, _ := redisWork(b, c)
	return calls
}

// redisWork is the number of commands the server has run and the
// microseconds it spent running them (INFO commandstats: a script's own
// calls count too), or -1 without a server.
func redisWork(b *testing.B, c *redis.Client) (calls, usec int64) {
	if c == nil {
		return -1, -1
	}
	calls, usec, err := redistest.CommandStats(context.Background(), c, "")
	if err != nil {
		b.Fatal(err)
	}
	return calls, usec
}

// following follows e's store changes until the benchmark ends, as serve
// does whatever the cache size: the registries' copy is then in use.
func following(b *testing.B, e *env) *env {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.svc.FollowChanges(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); !e.svc.ChangesFollowed(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the change feed not followed after 5 s")
		}
	}
	return e
}

// BenchmarkVerify measures /verify for a valid credential of each type through
// the public handler (in process: no client socket): with the verification
// cache off (miss: one Redis round trip each) and on (hit: none).
func BenchmarkVerify(b *testing.B) {
	b.Run("miss", func(b *testing.B) {
		e, client := benchEnvClient(b, core.VerifyCacheOptions{})
		benchVerify(b, following(b, e), client, true)
	})
	b.Run("hit", func(b *testing.B) {
		e, client := benchEnvClient(b, core.VerifyCacheOptions{Size: core.DefaultVerifyCacheSize, TTL: core.MaxVerifyCacheTTL})
		benchVerify(b, e, client, false)
	})
}

// benchVerify reports, on a real redis-server, the Redis commands each
// verification costs (redis-cmds/op; the INFO call that reads them counts
// one, spread over the loop) and the time the server spent running them
// (redis-µs/op, commandstats' usec). With steady, it first waits until a key-auth
// verification reads no failure throttle (the process has followed the change
// feed for the throttles' grace: 13 s at the tests' 5 failures a minute), as
// in a running process.
func benchVerify(b *testing.B, e *env, client *redis.Client, steady bool) {
	f := newVerifyFixture(e)
	e.must(204, "PUT", "/users/vic/password", `{"password":"correct horse"}`)
	_, session := e.login("email", "vic", "correct horse")
	_, tok := e.clientToken(f.oauthClient, f.oauthSecret, "")
	jwtToken := signJWT(b, f.jwtSecret, map[string]any{"kid": f.jwtKeyID}, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()})
	cases := []struct{ name, header, value string }{
		{"key-auth", "x-api-key", f.keyID + ":" + f.keySecret},
		{"basic-auth", "Authorization", basicAuth("vic", f.basicPass)},
		{"session", "Authorization", "Bearer " + session},
		{"oauth2", "Authorization", "Bearer " + tok["access_token"].(string)},
		{"jwt", "Authorization", "Bearer " + jwtToken},
	}
	if steady && client != nil {
		req := httptest.NewRequest("GET", "/verify", nil)
		req.Header.Set(cases[0].header, cases[0].value)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			before := redisCommands(b, client)
			e.public.ServeHTTP(httptest.NewRecorder(), req)
			if redisCommands(b, client)-before-1 <= 1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("a verification still reads more than its record after 30 s")
			}
		}
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", "/verify", nil)
		req.Header.Set(c.header, c.value)
		if w := httptest.NewRecorder(); func() int { e.public.ServeHTTP(w, req); return w.Code }() != 200 {
			b.Fatalf("%s: %d %s", c.name, w.Code, w.Body)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			calls, usec := redisWork(b, client)
			for b.Loop() {
				w := httptest.NewRecorder()
				e.public.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
			if calls >= 0 {
				calls1, usec1 := redisWork(b, client)
				b.ReportMetric(float64(calls1-calls-1)/float64(b.N), "redis-cmds/op")
				b.ReportMetric(float64(usec1-usec)/float64(b.N), "redis-µs/op")
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := req.Clone(req.Context())
					w := httptest.NewRecorder()
					e.public.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Error(w.Code)
						return
					}
				}
			})
		})
	}
}

// BenchmarkListUsers measures GET /users?count=100, a page of 100 users with
// their model properties, through the admin handler.
func BenchmarkListUsers(b *testing.B) {
	e := benchEnv(b, core.VerifyCacheOptions{})
	for i := range 150 {
		e.must(200, "POST", "/users", fmt.Sprintf(`{"username":"u%d","firstname":"F","lastname":"L","email":"u%d@example.com"}`, i, i))
	}
	req := httptest.NewRequest("GET", "/users?count=100", nil)
	req.Header.Set("X-Api-Key", testAdminKey)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.admin.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkCreateUserWait measures POST /users through the admin handler on a
// Sentinel-managed primary with one replica (loopback), each write waiting for
// the replica (wait=1, redis.waitReplicas' default with Sentinel) or not
// (wait=0): the price of WAIT. Run it with -bench CreateUserWait -benchtime 3s.
func BenchmarkCreateUserWait(b *testing.B) {
	s := redistest.StartSentinel(b)
	opts, err := redisstore.ParseURL(s.URL)
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	for _, wait := range []int{0, 1} {
		client := redisstore.NewClient(opts)
		b.Cleanup(func() { client.Close() })
		e := newEnvClocked(b, client, nil, core.VerifyCacheOptions{}, false, redisstore.Options{WaitReplicas: wait})
		create := func() int {
			i := n.Add(1)
			req := httptest.NewRequest("POST", "/users", strings.NewReader(fmt.Sprintf(`{"username":"b%d","firstname":"F","lastname":"L","email":"b%d@example.com"}`, i, i)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Api-Key", testAdminKey)
			w := httptest.NewRecorder()
			e.admin.ServeHTTP(w, req)
			return w.Code
		}
		b.Run(fmt.Sprintf("wait=%d", wait), func(b *testing.B) {
			for b.Loop() {
				if code := create(); code != 200 {
					b.Fatal(code)
				}
			}
		})
		b.Run(fmt.Sprintf("wait=%d/parallel", wait), func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if code := create(); code != 200 {
						b.Error(code)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGetUser measures GET /users/{id}, one user with its model
// properties, through the admin handler.
func BenchmarkGetUser(b *testing.B) {
	e := benchEnv(b, core.VerifyCacheOptions{})
	u := e.must(200, "POST", "/users", `{"username":"getme","firstname":"F","lastname":"L","email":"getme@example.com"}`)
	req := httptest.NewRequest("GET", "/users/"+u["id"].(string), nil)
	req.Header.Set("X-Api-Key", testAdminKey)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.admin.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkCreateUser measures POST /users, a user with two model properties
// and an email, through the admin handler, and on a real redis-server the
// Redis commands each costs (redis-cmds/op, as BenchmarkVerify counts them).
func BenchmarkCreateUser(b *testing.B) {
	e, client := benchEnvClient(b, core.VerifyCacheOptions{})
	var n int
	b.ReportAllocs()
	before := redisCommands(b, client)
	for b.Loop() {
		n++
		req := httptest.NewRequest("POST", "/users", strings.NewReader(fmt.Sprintf(`{"username":"c%d","firstname":"F","lastname":"L","email":"c%d@example.com"}`, n, n)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Api-Key", testAdminKey)
		w := httptest.NewRecorder()
		e.admin.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body)
		}
	}
	if before >= 0 {
		b.ReportMetric(float64(redisCommands(b, client)-before-1)/float64(b.N), "redis-cmds/op")
	}
}
