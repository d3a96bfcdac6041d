package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/adminapi"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// The scale test: how many users the small and the default large store hold,
// how long each measurement runs, how many rounds (the median counts) and how
// many requests are in flight.
const (
	scaleSmall        = 10_000
	scaleDefaultLarge = 100_000
	scaleRound        = 400 * time.Millisecond
	scaleRounds       = 15
	scaleConcurrency  = 8
	scaleWorkingSet   = 5_000 // the users requests go to, spread over the whole store
	scaleFlatness     = 0.9   // the large store answers at least 90 % of the small one's rate
	scaleAdminKey     = "scale-test-admin-key-0123456789"
)

// TestScaleFlat seeds a small (10 k users) and a large store (100 k, or the
// number in GATEHOUSE_SCALE when it is larger than 10 k: GATEHOUSE_SCALE=1000000
// for a million) with gatehouse seed's code, each user with one key-auth
// credential, in two real redis-servers, and measures over HTTP, in
// interleaved rounds, /verify with a random key, GET /users/{id} of a random
// user and a deep GET /users page (100 users from the last 150). Each must run
// on the large store at 90 % or more of its rate on the small one: nothing the
// product does per request grows with the number of users. It also logs the
// Redis memory per user and the seeding rate, which docs/scale.md reports.
//
// Slow (a minute for 100 k users, several for a million): it runs only with
// GATEHOUSE_SCALE set, never under -short, and wants the machine to itself:
//
//	GATEHOUSE_SCALE=1000000 go test -run TestScaleFlat -timeout 30m -v ./cmd/gatehouse
func TestScaleFlat(t *testing.T) {
	v := os.Getenv("GATEHOUSE_SCALE")
	if v == "" {
		t.Skip("set GATEHOUSE_SCALE=1 (10 k against 100 k users) or GATEHOUSE_SCALE=1000000 (10 k against a million) to run the scale test")
	}
	if testing.Short() {
		t.Skip("-short: the scale test seeds real Redis servers")
	}
	large := scaleDefaultLarge
	if n, err := strconv.Atoi(v); err == nil && n > scaleSmall {
		large = n
	}
	small := startScaleTarget(t, scaleSmall)
	big := startScaleTarget(t, large)

	endpoints := []struct {
		name string
		req  func(st *scaleTarget, r *rand.Rand) *http.Request
	}{
		{"/verify key-auth", func(st *scaleTarget, r *rand.Rand) *http.Request {
			u := st.working[r.IntN(len(st.working))]
			req, _ := http.NewRequest(http.MethodGet, st.public+"/verify", nil)
			req.Header.Set("x-api-key", u.key)
			return req
		}},
		{"GET /users/{id}", func(st *scaleTarget, r *rand.Rand) *http.Request {
			u := st.working[r.IntN(len(st.working))]
			return st.adminRequest("/users/" + u.id)
		}},
		{"GET /users deep page", func(st *scaleTarget, r *rand.Rand) *http.Request {
			return st.adminRequest(fmt.Sprintf("/users?start=%d&count=100", st.n-150+r.IntN(50)))
		}},
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%-22s %12s %12s %6s   %-13s  %s\n", "endpoint", fmt.Sprintf("%d users", scaleSmall), fmt.Sprintf("%d users", large), "ratio", "redis cmds/req", "redis µs/req")
	for _, ep := range endpoints {
		measure(t, small, ep.req) // warm-up: connections, the store's locator cache
		measure(t, big, ep.req)
		// Short rounds in pairs, each pair under the same load from the rest of
		// the machine; the median of the pairs' ratios is what counts.
		var a, b, ratios []float64
		for i := range scaleRounds {
			ra, rb := 0.0, 0.0
			if i%2 == 0 {
				ra, rb = measure(t, small, ep.req), measure(t, big, ep.req)
			} else {
				rb, ra = measure(t, big, ep.req), measure(t, small, ep.req)
			}
			a, b, ratios = append(a, ra), append(b, rb), append(ratios, rb/ra)
		}
		ratio := median(ratios)
		ca, ua := redisCost(t, small, ep.req)
		cb, ub := redisCost(t, big, ep.req)
		fmt.Fprintf(&report, "%-22s %10.0f/s %10.0f/s %6.2f   %5.1f / %5.1f  %6.1f / %6.1f\n", ep.name, median(a), median(b), ratio, ca, cb, ua, ub)
		// Redis' own count of commands is exact where rates are noisy: a request
		// that costs more commands in a larger store does not scale.
		if cb > ca+0.05 {
			t.Errorf("%s: %.2f Redis commands a request with %d users, %.2f with %d", ep.name, cb, large, ca, scaleSmall)
		}
		if ratio < scaleFlatness {
			t.Errorf("%s: %d users answer at %.2f × the rate of %d users (median of %d paired rounds): not flat (below %.2f); rounds %.0f / %.0f",
				ep.name, large, ratio, scaleSmall, scaleRounds, scaleFlatness, b, a)
		}
	}
	t.Logf("medians of %d paired rounds of %v, %d requests in flight (ratio: the median of the pairs' ratios):\n%s\nseeding: %s\nmemory: %s",
		scaleRounds, scaleRound, scaleConcurrency, report.String(), big.seeded, big.memory)
}

// scaleUser is one seeded user and its key.
type scaleUser struct{ id, key string }

// scaleTarget is a Gatehouse over its own redis-server holding n seeded users.
type scaleTarget struct {
	n              int
	working        []scaleUser // scaleWorkingSet users picked at random
	admin, public  string      // base URLs
	client         *http.Client
	rdb            redis.UniversalClient
	seeded, memory string // for the report
}

// adminRequest is a GET of the admin API with the admin key.
func (st *scaleTarget) adminRequest(path string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, st.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+scaleAdminKey)
	return req
}

// startScaleTarget starts a redis-server, seeds n users into it through
// seedUsers and serves both APIs over it.
func startScaleTarget(t *testing.T, n int) *scaleTarget {
	t.Helper()
	srv := redistest.StartServer(t)
	cfg := DefaultConfig()
	cfg.Redis.URL = srv.URL
	cfg.AdminKey = scaleAdminKey
	opts, err := redisstore.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.PoolSize = 128
	client := redisstore.NewClient(opts)
	store := redisstore.New(client, cfg.Redis.StoreOptions())
	t.Cleanup(func() { store.Close() })
	svc, err := newService(cfg, store, store.Limiter(), nil, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}

	before := redistest.UsedMemory(t, client)
	var keys bytes.Buffer
	res, err := seedUsers(t.Context(), svc, seedOptions{users: n, prefix: "scale", workers: seedDefaultWorkers, keys: &keys}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.created != int64(n) {
		t.Fatalf("seeded %d users of %d", res.created, n)
	}
	after := redistest.UsedMemory(t, client)
	st := &scaleTarget{
		n:      n,
		rdb:    client,
		seeded: fmt.Sprintf("%d users with a key each in %v, %.0f users/s", n, res.took.Round(time.Millisecond), float64(n)/res.took.Seconds()),
		memory: fmt.Sprintf("used_memory %d bytes more after %d users: %.0f bytes per user", after-before, n, float64(after-before)/float64(n)),
	}
	var users []scaleUser
	for line := range strings.Lines(keys.String()) {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if len(f) != 3 {
			t.Fatalf("seed wrote a keys line of %d fields, want 3", len(f))
		}
		users = append(users, scaleUser{id: f[1], key: f[2]})
	}
	r := rand.New(rand.NewPCG(uint64(n), 1))
	r.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	st.working = users[:scaleWorkingSet]

	api := adminapi.New(svc, adminapi.Options{Log: zerolog.Nop()})
	adminSrv := httptest.NewServer(api.Admin())
	t.Cleanup(adminSrv.Close)
	publicSrv := httptest.NewServer(api.Public())
	t.Cleanup(publicSrv.Close)
	st.admin, st.public = adminSrv.URL, publicSrv.URL
	st.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: scaleConcurrency * 2}}
	t.Cleanup(st.client.CloseIdleConnections)

	// The deep page is full and not the last: paging really starts near the end.
	resp, err := st.client.Do(st.adminRequest(fmt.Sprintf("/users?start=%d&count=100", n-150)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Users   []json.RawMessage `json:"users"`
		NextKey int64             `json:"nextKey"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("deep page: %d %v", resp.StatusCode, err)
	}
	if len(page.Users) != 100 || page.NextKey == 0 {
		t.Fatalf("deep page from %d of %d users: %d users, nextKey %d; want 100 and more to come", n-150, n, len(page.Users), page.NextKey)
	}
	return st
}

// measure sends requests made by req to st from scaleConcurrency goroutines
// for scaleRound and returns the rate of answers; any answer but 200 fails the
// test.
func measure(t *testing.T, st *scaleTarget, req func(*scaleTarget, *rand.Rand) *http.Request) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), scaleRound)
	defer cancel()
	var done atomic.Int64
	var mu sync.Mutex
	var failure string
	var wg sync.WaitGroup
	start := time.Now()
	for g := range scaleConcurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), uint64(start.UnixNano())))
			for ctx.Err() == nil {
				resp, err := st.client.Do(req(st, r).WithContext(ctx))
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						failure = err.Error()
						mu.Unlock()
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					mu.Lock()
					failure = fmt.Sprintf("%s %s: %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode)
					mu.Unlock()
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if failure != "" {
		t.Fatal(failure)
	}
	return float64(done.Load()) / time.Since(start).Seconds()
}

// scaleCostRequests is how many requests redisCost sends, one at a time.
const scaleCostRequests = 500

// redisCost sends scaleCostRequests requests made by req to st, one at a
// time, and returns what Redis spent on each: commands (as INFO commandstats
// counts them, a script's own calls included) and microseconds of command
// execution.
func redisCost(t *testing.T, st *scaleTarget, req func(*scaleTarget, *rand.Rand) *http.Request) (cmds, usec float64) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	c0, u0 := commandStats(t, st.rdb)
	for range scaleCostRequests {
		resp, err := st.client.Do(req(st, r).WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", resp.Request.URL.Path, resp.StatusCode)
		}
	}
	c1, u1 := commandStats(t, st.rdb)
	// The INFO call between the two snapshots counts itself once.
	return float64(c1-c0-1) / scaleCostRequests, float64(u1-u0) / scaleCostRequests
}

// commandStats sums the calls and usec of INFO commandstats.
func commandStats(t *testing.T, c redis.UniversalClient) (calls, usec int64) {
	t.Helper()
	calls, usec, err := redistest.CommandStats(t.Context(), c, "")
	if err != nil {
		t.Fatal(err)
	}
	return calls, usec
}

// median returns the middle value of xs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
