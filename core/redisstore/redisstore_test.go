package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
	"github.com/gatehouse/gatehouse/core/storetest"
)

func TestMiniredis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	run(t, &redis.UniversalOptions{Addrs: []string{m.Addr()}}, 0, m.FastForward)
}

func TestRedisServer(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	opts, err := redisstore.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	run(t, opts, 0, nil)
}

// TestRedisSentinel runs the suite on a Sentinel-managed primary with one
// replica, through the failover client a master_name URL gives, each write
// waiting for the replica (WaitReplicas 1, the default with Sentinel).
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t)
	opts, err := redisstore.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if opts.MasterName != s.MasterName {
		t.Fatalf("ParseURL(%s).MasterName = %q", s.URL, opts.MasterName)
	}
	run(t, opts, 1, nil)
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	opts, err := redisstore.ParseURL(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := redisstore.NewClient(opts)
	defer client.Close()
	if _, ok := client.(*redis.ClusterClient); !ok {
		t.Fatalf("NewClient(%s) is not a ClusterClient", c.URL)
	}
	run(t, opts, 0, nil)
}

// prefixes numbers the stores of one test binary, isolating them by key prefix.
var prefixes atomic.Int64

// run runs the conformance suite on one Redis, each store under its own prefix
// and waiting for wait replicas (Options.WaitReplicas), and fails on any
// CROSSSLOT error, even one a cleanup path swallowed, and unless the stores
// sent WAIT exactly when wait is above 0. fastForward moves the key expiries
// of a server whose clock does not move by itself (miniredis); nil for a real
// one.
func run(t *testing.T, opts *redis.UniversalOptions, wait int, fastForward func(time.Duration)) {
	t0 := time.Now()
	watch := &errorWatch{t: t}
	t.Cleanup(func() {
		switch n := watch.waits.Load(); {
		case wait == 0 && n > 0:
			t.Errorf("the stores sent WAIT %d times with WaitReplicas 0", n)
		case wait > 0 && n == 0:
			t.Errorf("the stores never sent WAIT with WaitReplicas %d", wait)
		case wait > 0:
			t.Logf("the stores sent WAIT %d times", n)
		}
	})
	admin := redisstore.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	var mu sync.Mutex
	prefixOf := map[core.Store]string{}
	storePrefix := func(t *testing.T, s core.Store) string {
		mu.Lock()
		defer mu.Unlock()
		p, ok := prefixOf[s]
		if !ok {
			t.Fatal("harness: unknown store")
		}
		return p
	}
	// Not parallel: they run before the suite's parallel subtests start, so that
	// no other client touches the server's script cache meanwhile.
	t.Run("Layout", func(t *testing.T) { testLayout(t, opts, admin) })
	t.Run("ReadAuthRoundTrip", func(t *testing.T) { testReadAuthRoundTrip(t, opts, admin) })
	t.Run("ReadAuthTogether", func(t *testing.T) { testReadAuthTogether(t, opts) })
	t.Run("OldUserRecord", func(t *testing.T) { testOldUserRecord(t, opts, admin) })
	t.Run("OldLayout", func(t *testing.T) { testOldLayout(t, opts, admin) })
	t.Run("CompactLayout", func(t *testing.T) { testCompactLayout(t, opts, admin) })
	t.Run("OldClaims", func(t *testing.T) { testOldClaims(t, opts, admin) })
	t.Run("IndexUpgrade", func(t *testing.T) { testIndexUpgrade(t, opts, admin, fastForward) })
	t.Run("NameIndex", func(t *testing.T) { testNameIndex(t, opts, admin) })
	t.Run("NameUpgrade", func(t *testing.T) { testNameUpgrade(t, opts, admin, fastForward) })
	t.Run("LinkedLayout", func(t *testing.T) { testLinkedLayout(t, opts, admin) })
	t.Run("CreateRoundTrips", func(t *testing.T) { testCreateRoundTrips(t, opts, admin, wait) })
	t.Run("CreateStorm", func(t *testing.T) { testCreateStorm(t, opts) })
	t.Run("UpdateStorm", func(t *testing.T) { testUpdateStorm(t, opts) })
	var ff func(*testing.T, core.Store, time.Duration)
	if fastForward != nil {
		ff = func(_ *testing.T, _ core.Store, d time.Duration) { fastForward(d) }
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, clock core.Clock) core.Store {
			prefix := newPrefix()
			client := redisstore.NewClient(opts)
			client.AddHook(watch)
			// A read and a write step get 10 s, not the defaults (0.5 s, 2
			// s): the suite runs on every backend at once under -race, and on
			// a loaded 2-core CI machine a Cluster step has stalled past 2 s
			// (every grant of Groups/DeleteRace at once) and reads past 0.5
			// s. The bounds' own behaviour is tested apart (stall_test.go,
			// replicated_test.go).
			s := redisstore.New(client, loaded(redisstore.Options{Prefix: prefix, Clock: clock, WaitReplicas: wait}))
			t.Cleanup(func() { s.Close() })
			mu.Lock()
			prefixOf[s] = prefix
			mu.Unlock()
			return s
		},
		// Every key a store writes has a shape of the layout, the one Doctor
		// parses. A claim bucket is listed as its claims, "claim:<kind>:<name>"
		// each, so that the suite compares claims, not buckets. The marker P
		// layout:claims is left out: whether the first create finds the store
		// empty, and writes it, depends on which of racing creates reads
		// first (claims.go).
		Keys: func(t *testing.T, s core.Store) []string {
			prefix := storePrefix(t, s)
			var out []string
			for _, k := range rawKeys(t, admin, prefix) {
				if !redisstore.HasKeyShape(s.(*redisstore.Store), k) {
					t.Errorf("key %q has no shape of the layout", k)
				}
				if kind, ok := strings.CutPrefix(k, "cb:"); ok {
					kind, _, _ = strings.Cut(kind, ":{")
					names, err := admin.HKeys(t.Context(), prefix+k).Result()
					must(t, err)
					for _, n := range names {
						out = append(out, "claim:"+kind+":"+n)
					}
					continue
				}
				if k != "layout:claims" {
					out = append(out, k)
				}
			}
			slices.Sort(out)
			return out
		},
		LeaveClaim: func(t *testing.T, s core.Store, c storetest.Claim) {
			key, field := redisstore.ClaimBucket(s.(*redisstore.Store), c.Kind, c.Name)
			val := c.Owner + "|" + strconv.FormatInt(c.At.UnixMicro(), 10)
			if err := admin.HSet(t.Context(), storePrefix(t, s)+key, field, val).Err(); err != nil {
				t.Fatal(err)
			}
		},
		Interrupt:   func(t *testing.T, s core.Store) { redisstore.InterruptNext(s.(*redisstore.Store)) },
		NewLimiter:  func(t *testing.T, s core.Store) core.Limiter { return s.(*redisstore.Store).Limiter() },
		FastForward: ff,
	})
	t.Cleanup(func() { t.Logf("TIMING suite %v", time.Since(t0)) })
}

// rawKeys lists the keys under prefix, without it, on every master of a cluster.
func rawKeys(t *testing.T, admin redis.UniversalClient, prefix string) []string {
	t.Helper()
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, strings.TrimPrefix(iter.Val(), prefix))
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := admin.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(t.Context(), admin)
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// loaded returns o with the read and write bounds of a store whose bounds the
// test does not check (redistest.StoreTimeout): every test of this package
// runs at once under -race, on every backend, on a loaded CI machine.
func loaded(o redisstore.Options) redisstore.Options {
	o.ReadTimeout, o.WriteTimeout = redistest.StoreTimeout, redistest.StoreTimeout
	return o
}

// newPrefix returns a key prefix no other store of this test binary uses.
func newPrefix() string { return "t" + strconv.FormatInt(prefixes.Add(1), 10) + ":" }

// testLayout checks the key names that doc.go documents for passwords, secrets,
// sessions, tokens and the limiter, and the housekeeping expiry of a session.
func testLayout(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient) {
	ctx := t.Context()
	prefix := newPrefix()
	s := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	defer s.Close()
	now := time.Now().UTC()
	u := core.User{
		ID: core.NewID(), Username: "layout", Email: "layout@example.com", IsActive: true,
		Identities: []core.Identity{
			{Provider: "email", Subject: "layout@example.com"},
			{Provider: "google", Subject: "g:1{x}"}, // ':' and braces are fine in a subject
		},
		ExpiresAt: now.Add(24 * time.Hour), CreatedAt: now, UpdatedAt: now,
	}
	must(t, s.CreateUser(ctx, &u))
	must(t, s.PluginKV("email").Set(ctx, "tok:1", []byte("v"), 0))
	must(t, s.SetPassword(ctx, u.ID, "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA"))
	must(t, s.SetUserSecret(ctx, u.ID, core.HashSHA256("secret")))
	tok := "gths_layout"
	hash := core.HashSHA256(tok)
	sess := core.Session{
		ID: "s1", Hash: hash, Kind: core.KindSession, UserID: u.ID, ConsumerID: u.ID,
		ConsumerKind: core.ConsumerUser, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	must(t, s.CreateSession(ctx, sess, 10))
	oauth := sess
	oauth.Kind, oauth.Hash = core.KindOAuth, core.HashSHA256("gtho_layout")
	must(t, s.CreateSession(ctx, oauth, 0))
	l := s.Limiter()
	if _, _, err := l.Allow(ctx, "login:x", core.Rate{Count: 3, Per: time.Minute}, 1); err != nil {
		t.Fatal(err)
	}
	hx := strings.TrimPrefix(hash, "sha256:")
	ox := strings.TrimPrefix(oauth.Hash, "sha256:")
	tag := "u:{" + u.ID + "}"
	bucket := func(kind, name string) string {
		key, _ := redisstore.ClaimBucket(s, kind, name)
		return key
	}
	want := []string{
		bucket("email", "layout@example.com"), bucket("identity", "google:g:1{x}"), bucket("username", "layout"), "layout:claims",
		"idx:expiring", "{idx:users}:0", "{idx:users}:count", "kv:email:tok:1", "rl:login:x", "seq:users", tag, "{ix}:un:1", "{ix}:undir", "{ix}:unseq",
		tag + ":pw", tag + ":secret", tag + ":sess:" + hx, tag + ":sess:" + ox, tag + ":sessions", tag + ":tokens",
	}
	slices.Sort(want)
	if d := cmp.Diff(want, rawKeys(t, admin, prefix)); d != "" {
		t.Errorf("raw keys (-want +got):\n%s", d)
	}
	ttl, err := admin.PTTL(ctx, prefix+tag+":sess:"+hx).Result()
	must(t, err)
	if ttl <= 0 || ttl > time.Hour+time.Second {
		t.Errorf("session record PTTL = %v, want about 1h", ttl)
	}
	must(t, s.TouchSession(ctx, u.ID, hash, now.Add(time.Minute)))
	if ttl, err = admin.PTTL(ctx, prefix+tag+":sess:"+hx).Result(); err != nil || ttl <= 0 {
		t.Errorf("session record PTTL after a touch = %v, %v; want it kept", ttl, err)
	}
	score, err := admin.ZScore(ctx, prefix+"idx:expiring", u.ID).Result()
	must(t, err)
	if int64(score) != u.ExpiresAt.UnixMicro() {
		t.Errorf("idx:expiring score = %v, want %d (ExpiresAt in µs)", score, u.ExpiresAt.UnixMicro())
	}
	if v := admin.HGet(ctx, prefix+bucket("identity", "google:g:1{x}"), "google:g:1{x}").Val(); !strings.HasPrefix(v, u.ID+".") || len(v) != len(u.ID)+9 {
		t.Errorf("identity claim value = %q, want %q.<ms in base 36>", v, u.ID)
	}
	for _, exp := range []time.Time{{}, now.Add(time.Hour)} { // cleared, then set again
		_, err := s.UpdateUser(ctx, u.ID, func(x *core.User) error { x.ExpiresAt = exp; return nil })
		must(t, err)
		n, err := admin.ZCard(ctx, prefix+"idx:expiring").Result()
		must(t, err)
		var want int64
		if !exp.IsZero() {
			want = 1
		}
		if n != want {
			t.Errorf("idx:expiring holds %d entries after setting ExpiresAt to %v, want %d", n, exp, want)
		}
	}
	must(t, s.PluginKV("email").Set(ctx, "ttl", []byte("v"), 1500*time.Millisecond))
	if ttl, err := admin.PTTL(ctx, prefix+"kv:email:ttl").Result(); err != nil || ttl <= 0 || ttl > 1500*time.Millisecond {
		t.Errorf("PluginKV PTTL = %v, %v; want at most 1.5s", ttl, err)
	}
}

// testOldUserRecord: a user record written before Identities and ExpiresAt
// existed reads with none and never, and can be updated and deleted.
func testOldUserRecord(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient) {
	ctx := t.Context()
	prefix := newPrefix()
	s := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	defer s.Close()
	id := core.NewID()
	old := `{"id":"` + id + `","number":7,"username":"elder","email":"elder@example.com","isActive":true,` +
		`"props":{"firstname":"E"},"createdAt":"2024-01-02T03:04:05.123456Z","updatedAt":"2024-01-02T03:04:05.123456Z"}`
	must(t, admin.Set(ctx, prefix+"u:{"+id+"}", old, 0).Err())
	must(t, admin.Set(ctx, prefix+"claim:username:elder", id+"|1704164645123456", 0).Err())
	must(t, admin.Set(ctx, prefix+"seq:users", "7", 0).Err())
	at := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	want := core.User{
		ID: id, Number: 7, Username: "elder", Email: "elder@example.com", IsActive: true,
		Props: map[string]any{"firstname": "E"}, CreatedAt: at, UpdatedAt: at,
	}
	got, err := s.GetUser(ctx, id)
	must(t, err)
	if d := cmp.Diff(want, got, ignoreStored); d != "" {
		t.Errorf("old record (-want +got):\n%s", d)
	}
	linked := core.Identity{Provider: "github", Subject: "elder", LinkedAt: at}
	got, err = s.UpdateUser(ctx, id, func(u *core.User) error {
		u.Identities, u.ExpiresAt = []core.Identity{linked}, at.Add(24*time.Hour)
		return nil
	})
	must(t, err)
	byID, err := s.UserByIdentity(ctx, "github", "elder")
	must(t, err)
	if d := cmp.Diff(got, byID, ignoreStored); d != "" {
		t.Errorf("UserByIdentity after linking to an old record (-want +got):\n%s", d)
	}
	identityBucket, _ := redisstore.ClaimBucket(s, "identity", "github:elder")
	if keys := rawKeys(t, admin, prefix); !slices.Contains(keys, "idx:expiring") || !slices.Contains(keys, identityBucket) {
		t.Errorf("keys after linking an identity and setting ExpiresAt: %q", keys)
	}
	must(t, s.DeleteUser(ctx, id))
	if keys := rawKeys(t, admin, prefix); len(keys) != 1 || keys[0] != "seq:users" {
		t.Errorf("keys left after deleting an old record: %q", keys)
	}
}

// testReadAuthRoundTrip checks ReadAuth's round trips, with Throttles: an app's
// key read with its app named (AuthQuery.ConsumerApp) is one (one pipeline);
// without it, or with another app named, one more reads the app; an OAuth
// access token is one with OAuthToken (a script, one more EVAL after the
// server's scripts are flushed), two without. Each reads the same records.
func testReadAuthRoundTrip(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient) {
	ctx := t.Context()
	client := redisstore.NewClient(opts)
	trips := &tripCounter{}
	client.AddHook(redistest.OnSend(trips.add))
	s := redisstore.New(client, loaded(redisstore.Options{Prefix: newPrefix()}))
	defer s.Close()
	now := time.Now().UTC()
	u := core.User{ID: core.NewID(), Username: "trips", IsActive: true, CreatedAt: now, UpdatedAt: now}
	must(t, s.CreateUser(ctx, &u))
	a := core.App{ID: core.NewID(), Name: "trip", UserID: u.ID, IsActive: true, CreatedAt: now, UpdatedAt: now}
	must(t, s.CreateApp(ctx, &a))
	other := core.App{ID: core.NewID(), Name: "other", UserID: u.ID, IsActive: true, CreatedAt: now, UpdatedAt: now}
	must(t, s.CreateApp(ctx, &other))
	c := core.Credential{
		Type: core.KeyAuth, ID: "trip-key", ConsumerID: a.ID, ConsumerKind: core.ConsumerApp, UserID: u.ID,
		IsActive: true, Secret: core.HashSHA256("x"), CreatedAt: now, UpdatedAt: now,
	}
	must(t, s.CreateCredential(ctx, &c))
	oc := core.Credential{
		Type: core.OAuth2, ID: a.ID, ConsumerID: a.ID, ConsumerKind: core.ConsumerApp, UserID: u.ID,
		IsActive: true, Secret: core.HashSHA256("y"), CreatedAt: now, UpdatedAt: now,
	}
	must(t, s.CreateCredential(ctx, &oc))
	token := core.Session{
		ID: core.NewID(), Hash: core.HashSHA256(core.NewSecret("gtho_", 32)), Kind: core.KindOAuth, UserID: u.ID,
		ConsumerID: a.ID, ConsumerKind: core.ConsumerApp, CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now,
	}
	must(t, s.CreateSession(ctx, token, 0))
	must(t, s.CreateScopes(ctx, []core.Scope{{Name: "read", CreatedAt: now}}))
	throttles := []core.Throttle{{Key: "verify:trip-key", Rate: core.Rate{Count: 10, Per: time.Minute}}, {Key: "verify:addr:x", Rate: core.Rate{Count: 60, Per: time.Minute}}}
	key := core.AuthQuery{UserID: u.ID, Credential: &core.CredentialRef{Type: core.KeyAuth, ID: "trip-key"}, Password: true, Throttles: throttles}
	check := func(what string, q core.AuthQuery, wantCred string, wantTrips int) {
		t.Helper()
		trips.reset()
		r, err := s.ReadAuth(ctx, q)
		must(t, err)
		if r.Credential == nil || r.Credential.ID != wantCred || !r.Credential.OwnerActive || r.App == nil || r.App.ID != a.ID || len(r.Scopes) != 1 {
			t.Errorf("%s: ReadAuth = %+v", what, r)
		}
		if n, cmds := trips.get(); n != wantTrips {
			t.Errorf("%s: %d round trips (%v), want %d", what, n, cmds, wantTrips)
		}
	}
	check("an app's key", key, c.ID, 2)
	hinted := key
	hinted.ConsumerApp = a.ID
	check("an app's key, its app named", hinted, c.ID, 1)
	hinted.ConsumerApp = other.ID
	check("an app's key, another app named", hinted, c.ID, 2)

	tok := core.AuthQuery{UserID: u.ID, SessionHash: token.Hash, OAuthToken: true, Throttles: throttles}
	if _, err := s.ReadAuth(ctx, tok); err != nil { // loads the script
		t.Fatal(err)
	}
	check("a token", tok, oc.ID, 1)
	must(t, admin.ScriptFlush(ctx).Err())
	check("a token after SCRIPT FLUSH", tok, oc.ID, 2) // EVALSHA answers NOSCRIPT: one EVAL more
	check("a token once cached", tok, oc.ID, 1)
	tok.OAuthToken = false
	check("a token, not said to be one", tok, oc.ID, 2)
}

// tripCounter counts (through redistest.OnSend) round trips: each command sent alone
// and each pipeline.
type tripCounter struct {
	mu    sync.Mutex
	n     int
	cmds  []string
	bytes int // of the commands' arguments
}

func (c *tripCounter) reset() { c.mu.Lock(); c.n, c.cmds, c.bytes = 0, nil, 0; c.mu.Unlock() }

// sent is the size of the arguments of the commands sent since reset.
func (c *tripCounter) sent() int { c.mu.Lock(); defer c.mu.Unlock(); return c.bytes }

func (c *tripCounter) get() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, slices.Clone(c.cmds)
}

func (c *tripCounter) add(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	var names []string
	for _, cmd := range cmds {
		names = append(names, cmd.Name())
		for _, a := range cmd.Args() {
			c.bytes += len(fmt.Sprint(a))
		}
	}
	c.cmds = append(c.cmds, strings.Join(names, "+"))
}

// ignoreStored compares users without their stored form, a memo key.
var ignoreStored = cmpopts.IgnoreFields(core.User{}, "Stored")

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// errorWatch is a go-redis hook that fails the test on any CROSSSLOT error,
// and counts the WAIT commands sent.
type errorWatch struct {
	t     *testing.T
	waits atomic.Int64
}

func (w *errorWatch) check(cmds ...redis.Cmder) {
	for _, c := range cmds {
		if c.Name() == "wait" {
			w.waits.Add(1)
		}
		if err := c.Err(); err != nil && strings.Contains(err.Error(), "CROSSSLOT") {
			w.t.Errorf("CROSSSLOT error: %v in %v", err, c.Args())
		}
	}
}

func (w *errorWatch) DialHook(next redis.DialHook) redis.DialHook { return next }

func (w *errorWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		w.check(cmd)
		return err
	}
}

func (w *errorWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		w.check(cmds...)
		return err
	}
}
