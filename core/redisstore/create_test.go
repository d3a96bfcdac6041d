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
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// testCreateRoundTrips: on the store's own clock (Redis', estimated), a user
// with a username and an email is created in two sequential round trips on
// one server (the claims with the number; the write with the entries and the
// final check, and with WaitReplicas the fence and WAIT) and in three on a
// Cluster (the write on its own), after the store's first create, which also
// reads Redis' clock once; its claims carry Redis' time; a name held by
// another user still answers Conflict naming it and leaves the loser's other
// claims released; a stale claim is taken over; a user id that exists, or is
// written between the two round trips, is Conflict with nothing written; a
// create sends at most 3 KiB.
func testCreateRoundTrips(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient, wait int) {
	ctx := t.Context()
	prefix := newPrefix()
	client := redisstore.NewClient(opts)
	trips := &tripCounter{}
	client.AddHook(redistest.OnSend(trips.add))
	s := redisstore.New(client, loaded(redisstore.Options{Prefix: prefix, WaitReplicas: wait}))
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	user := func(name, email string) core.User {
		return core.User{ID: core.NewID(), Username: name, Email: email, IsActive: true, CreatedAt: now, UpdatedAt: now}
	}
	claimAt := func(kind, name string) [2]string {
		key, field := redisstore.ClaimBucket(s, kind, name)
		return [2]string{prefix + key, field}
	}
	_, cluster := admin.(*redis.ClusterClient)
	want := 2
	if cluster {
		want = 3
	}

	first := user("first", "")
	trips.reset()
	must(t, s.CreateUser(ctx, &first))
	// Its first reads Redis' clock, on an empty store writes the marker
	// that no old claim key exists (P layout:claims), and checks once for
	// list indexes of the layout before the buckets (indexesReady).
	if n, _ := trips.get(); n != want+3 {
		t.Errorf("the store's first CreateUser made %d sequential round trips, want %d", n, want+3)
	}
	u := user("trips", "trips@example.com")
	trips.reset()
	must(t, s.CreateUser(ctx, &u))
	if n, _ := trips.get(); n != want {
		t.Errorf("CreateUser made %d sequential round trips, want %d", n, want)
	}
	// Its index entries' scripts go as EVAL with their bodies: the username
	// index's edits alone (1.7 kB), not the whole name script (4.4 kB), which
	// Redis hashes twice in a MULTI.
	if b := trips.sent(); b > 3<<10 {
		t.Errorf("CreateUser sent %d bytes of arguments, want at most 3 KiB", b)
	}
	redisNow, err := admin.Time(ctx).Result()
	must(t, err)
	for _, key := range [][2]string{claimAt("username", "trips"), claimAt("email", core.EmailKey(u.Email))} {
		v, err := admin.HGet(ctx, key[0], key[1]).Result()
		must(t, err)
		owner, at, ok := redisstore.ParseClaim(v)
		// The estimate may run ahead of Redis by a round trip.
		if age := redisNow.Sub(at); !ok || owner != u.ID || age < -time.Second || age > time.Minute {
			t.Errorf("claim %s = %q: want owner %s at Redis' time %v", key, v, u.ID, redisNow)
		}
	}
	got, err := s.GetUser(ctx, u.ID)
	must(t, err)
	page, err := s.ListUsers(ctx, core.ListOptions{Count: 10})
	must(t, err)
	if got.Username != "trips" || got.Number != first.Number+1 || len(page.Items) != 2 || page.Items[1].ID != u.ID {
		t.Errorf("the user read back: %+v, listed %d users", got, len(page.Items))
	}

	dup := user("trips2", "TRIPS@example.com")
	err = s.CreateUser(ctx, &dup)
	if core.KindOf(err) != core.Conflict || !strings.Contains(err.Error(), "email") {
		t.Errorf("a create with a taken email: %v, want Conflict naming the email", err)
	}
	if n := admin.HExists(ctx, claimAt("username", "trips2")[0], "trips2").Val(); n {
		t.Errorf("the losing create left its username claim")
	}

	// A claim left by a crash long ago, of an owner that holds nothing, is
	// taken over; one left a moment ago (a create that may be in flight) is
	// not. Both in the claim value's form and in the one before December
	// 2026 (the time in decimal microseconds).
	forms := map[string]func(time.Time) string{
		"milli": func(at time.Time) string { return "." + strconv.FormatInt(at.UnixMilli(), 36) },
		"micro": func(at time.Time) string { return "|" + strconv.FormatInt(at.UnixMicro(), 10) },
	}
	for form, stamp := range forms {
		name := "trips-stale-" + form
		at := claimAt("username", name)
		must(t, admin.HSet(ctx, at[0], at[1], core.NewID()+stamp(redisNow.Add(-time.Hour))).Err())
		v := user(name, "")
		must(t, s.CreateUser(ctx, &v))
		if got, _, _ := redisstore.ParseClaim(admin.HGet(ctx, at[0], at[1]).Val()); got != v.ID {
			t.Errorf("a stale claim (%s) after a create over it is held by %q, want %s", form, got, v.ID)
		}
		name = "trips-fresh-" + form
		at = claimAt("username", name)
		must(t, admin.HSet(ctx, at[0], at[1], core.NewID()+stamp(redisNow.Add(-time.Second))).Err())
		v = user(name, "")
		if err := s.CreateUser(ctx, &v); core.KindOf(err) != core.Conflict {
			t.Errorf("a create over a claim (%s) a second old: %v, want Conflict", form, err)
		}
	}

	// A user id that exists, and on one server one written by someone else
	// right after the create's first round trip: Conflict, nothing of the
	// create left.
	taken := user("taken", "taken@example.com")
	must(t, admin.Set(ctx, redisstore.UserKey(s, taken.ID), "someone else's", 0).Err())
	ids := []core.User{taken}
	if !cluster {
		raced := user("raced", "raced@example.com")
		hook := &afterWatch{fn: func() { must(t, admin.Set(ctx, redisstore.UserKey(s, raced.ID), "someone else's", 0).Err()) }}
		client.AddHook(hook)
		defer func() {
			if !hook.fired.Load() {
				t.Error("no create's pipeline sent WATCH")
			}
		}()
		ids = append(ids, raced)
	}
	for _, x := range ids {
		err := s.CreateUser(ctx, &x)
		if core.KindOf(err) != core.Conflict || !strings.Contains(err.Error(), x.ID) {
			t.Errorf("CreateUser of the id of a user written by another: %v, want Conflict naming the id", err)
		}
		if got := admin.Get(ctx, redisstore.UserKey(s, x.ID)).Val(); got != "someone else's" {
			t.Errorf("the other's record became %q", got)
		}
		for _, key := range [][2]string{claimAt("username", x.Username), claimAt("email", core.EmailKey(x.Email))} {
			if admin.HExists(ctx, key[0], key[1]).Val() {
				t.Errorf("the failed create left its claim %s", key)
			}
		}
		page, err := s.ListUsers(ctx, core.ListOptions{Count: 100})
		must(t, err)
		if slices.ContainsFunc(page.Items, func(u core.User) bool { return u.ID == x.ID }) || page.Total != 4 { // first, trips and the two over stale claims
			t.Errorf("after the failed create: %d users, the id listed", page.Total)
		}
	}
}

// testCreateStorm: many creates at once racing for a few names, on a client
// with a small pool (each create in two round trips holds a connection
// between them, and a contested one needs another): one wins each name, the
// others answer Conflict, none Unavailable.
func testCreateStorm(t *testing.T, opts *redis.UniversalOptions) {
	o := *opts
	o.PoolSize = 4
	client := redisstore.NewClient(&o)
	s := redisstore.New(client, loaded(redisstore.Options{Prefix: newPrefix()}))
	defer s.Close()
	const racers, names = 24, 3
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			now := time.Now().UTC().Truncate(time.Millisecond)
			u := core.User{ID: core.NewID(), Username: fmt.Sprintf("storm%d", i%names), IsActive: true, CreatedAt: now, UpdatedAt: now}
			errs[i] = s.CreateUser(t.Context(), &u)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case core.KindOf(err) != core.Conflict:
			t.Errorf("a racing create: %v, want success or Conflict", err)
		}
	}
	if won != names {
		t.Errorf("%d creates won, want one per name (%d)", won, names)
	}
}

// afterWatch is a hook that runs fn, once, right after a pipeline that sent
// WATCH (a create's first round trip on one server).
type afterWatch struct {
	fn    func()
	fired atomic.Bool
}

func (h *afterWatch) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *afterWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *afterWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "watch" }) && h.fired.CompareAndSwap(false, true) {
			h.fn()
		}
		return err
	}
}

// TestDecodedUsersNotShared: a user read again unchanged comes from the store's
// memo of decoded records, equal to the first read and sharing nothing with it:
// a caller changing its copy (nested properties, raw claims, tags) changes no
// later read.
func TestDecodedUsersNotShared(t *testing.T) {
	m := miniredis.RunT(t)
	s := redisstore.New(redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{m.Addr()}}), redisstore.Options{})
	defer s.Close()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	limit := 3
	u := core.User{
		ID: core.NewID(), Username: "shared", IsActive: true, SessionsLimit: &limit, Tags: []string{"a"},
		Props:      map[string]any{"nested": map[string]any{"list": []any{"x", map[string]any{"y": "z"}}}},
		Identities: []core.Identity{{Provider: "github", Subject: "s", RawClaims: map[string]any{"c": []any{"d"}}, LinkedAt: now}},
		CreatedAt:  now, UpdatedAt: now,
	}
	must(t, s.CreateUser(ctx, &u))
	want, err := s.GetUser(ctx, u.ID)
	must(t, err)
	first, err := s.GetUser(ctx, u.ID) // from the memo
	must(t, err)
	if d := cmp.Diff(want, first); d != "" || first.Stored == "" {
		t.Fatalf("a second read differs (-first +second), or has no stored form:\n%s", d)
	}
	first.Props["nested"].(map[string]any)["list"].([]any)[1].(map[string]any)["y"] = "changed"
	first.Identities[0].RawClaims["c"].([]any)[0] = "changed"
	first.Tags[0] = "changed"
	*first.SessionsLimit = 99
	page, err := s.ListUsers(ctx, core.ListOptions{Count: 10})
	must(t, err)
	for _, got := range []core.User{must2(s.GetUser(ctx, u.ID)), page.Items[0]} {
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("a read after a caller changed its copy (-want +got):\n%s", d)
		}
	}
}

func must2[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// testUpdateStorm: many updates at once, each granting a group and taking a
// new email, on a client with a small pool. An update holds a connection
// under WATCH while it reads the group registry and takes the email's claim
// on others; with more updates than the pool has connections, each holding
// one and waiting for a second, none could go on until its bound ran out.
// Every update must succeed.
func testUpdateStorm(t *testing.T, opts *redis.UniversalOptions) {
	o := *opts
	o.PoolSize = 3
	client := redisstore.NewClient(&o)
	s := redisstore.New(client, loaded(redisstore.Options{Prefix: newPrefix()}))
	defer s.Close()
	ctx := t.Context()
	g := core.Group{ID: core.NewID(), Name: "storm"}
	if err := s.CreateGroup(ctx, &g); err != nil {
		t.Fatal(err)
	}
	const racers = 24
	ids := make([]string, racers)
	for i := range racers {
		now := time.Now().UTC().Truncate(time.Millisecond)
		u := core.User{ID: core.NewID(), Username: fmt.Sprintf("upd%d", i), IsActive: true, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		ids[i] = u.ID
	}
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			_, errs[i] = s.UpdateUser(ctx, ids[i], func(u *core.User) error {
				u.Groups = append(slices.Clone(u.Groups), g.ID)
				u.Email = fmt.Sprintf("upd%d@example.com", i)
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
}
