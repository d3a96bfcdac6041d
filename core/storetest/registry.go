package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

func testScopes(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	got, err := s.Scopes(ctx)
	e.must(err)
	diff(t, "empty registry", []core.Scope{}, got)

	b := core.Scope{Name: "b", Reg: "rb", CreatedAt: epoch}
	a := core.Scope{Name: "a", Reg: "ra", CreatedAt: epoch.Add(time.Second)}
	e.must(s.CreateScopes(ctx, []core.Scope{b, a}))
	got, err = s.Scopes(ctx)
	e.must(err)
	diff(t, "Scopes", []core.Scope{a, b}, got)

	// All or none.
	err = s.CreateScopes(ctx, []core.Scope{{Name: "c", Reg: "rc"}, {Name: "b", Reg: "x"}, {Name: "a", Reg: "y"}})
	wantConflict(t, err, "registering taken scopes", "scopes already registered: a, b")
	got, err = s.Scopes(ctx)
	e.must(err)
	diff(t, "Scopes after a refused registration", []core.Scope{a, b}, got)

	e.must(s.DeleteScope(ctx, "a"))
	wantKind(t, s.DeleteScope(ctx, "a"), core.NotFound, "DeleteScope twice")
	again := []core.Scope{{Name: "a", CreatedAt: epoch}} // Reg left for the store to fill
	e.must(s.CreateScopes(ctx, again))
	if again[0].Reg == "" || again[0].Reg == "ra" {
		t.Errorf("re-registration got Reg %q, want a new one", again[0].Reg)
	}
	got, err = s.Scopes(ctx)
	e.must(err)
	diff(t, "Scopes after re-registration", []core.Scope{again[0], b}, got)
}

func testAdminKeys(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	key := func(name string, i int) core.AdminKey {
		return core.AdminKey{
			ID: core.NewID(), Name: name, Scope: core.ScopeAdmin, Prefix: "gtha_" + name,
			Hash: "sha256:" + name, CreatedAt: epoch.Add(time.Duration(i) * time.Second),
		}
	}
	k1, k2, k3 := key("first", 0), key("second", 1), key("third", 2)
	k2.Scope = core.ScopeRead

	ok, err := s.CreateFirstAdminKey(ctx, k1)
	e.must(err)
	if !ok {
		t.Fatal("CreateFirstAdminKey on an empty store did not store the key")
	}
	ok, err = s.CreateFirstAdminKey(ctx, k2)
	e.must(err)
	if ok {
		t.Fatal("CreateFirstAdminKey stored a second key")
	}
	dup := key("first", 5)
	wantConflict(t, s.CreateAdminKey(ctx, dup), "a taken admin key name", "first")
	e.must(s.CreateAdminKey(ctx, k3))
	e.must(s.CreateAdminKey(ctx, k2))

	got, err := s.AdminKeyByHash(ctx, k2.Hash)
	e.must(err)
	diff(t, "AdminKeyByHash", k2, got)
	_, err = s.AdminKeyByHash(ctx, "sha256:nope")
	wantKind(t, err, core.NotFound, "AdminKeyByHash of an unknown hash")
	list, err := s.AdminKeys(ctx)
	e.must(err)
	diff(t, "AdminKeys, oldest first", []core.AdminKey{k1, k2, k3}, list)

	used := epoch.Add(time.Hour + 123456789*time.Nanosecond)
	e.must(s.TouchAdminKey(ctx, k2.ID, used))
	e.must(s.TouchAdminKey(ctx, k2.ID, used.Add(-time.Minute))) // an older use changes nothing
	got, err = s.AdminKeyByHash(ctx, k2.Hash)
	e.must(err)
	if !got.LastUsedAt.Equal(used.Truncate(time.Microsecond)) {
		t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, used)
	}
	list, err = s.AdminKeys(ctx)
	e.must(err)
	if !list[1].LastUsedAt.Equal(got.LastUsedAt) || !list[0].LastUsedAt.IsZero() {
		t.Errorf("AdminKeys LastUsedAt = %v, %v", list[0].LastUsedAt, list[1].LastUsedAt)
	}
	wantKind(t, s.TouchAdminKey(ctx, core.NewID(), used), core.NotFound, "TouchAdminKey of an unknown id")

	e.must(s.DeleteAdminKey(ctx, k1.ID))
	_, err = s.AdminKeyByHash(ctx, k1.Hash)
	wantKind(t, err, core.NotFound, "AdminKeyByHash after DeleteAdminKey")
	wantKind(t, s.DeleteAdminKey(ctx, k1.ID), core.NotFound, "DeleteAdminKey twice")
	e.must(s.CreateAdminKey(ctx, key("first", 9))) // the name is free again
	ok, err = s.CreateFirstAdminKey(ctx, key("fourth", 10))
	e.must(err)
	if ok {
		t.Error("CreateFirstAdminKey stored a key into a store with keys")
	}
}

// testConcurrentFirstAdminKey: ten instances starting on one empty store make
// exactly one key.
func testConcurrentFirstAdminKey(t *testing.T, h Harness) {
	e := newEnv(t, h)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			k := core.AdminKey{ID: core.NewID(), Name: name("boot", i), Scope: core.ScopeAdmin, Hash: name("sha256:boot", i), CreatedAt: epoch}
			ok, err := e.s.CreateFirstAdminKey(e.ctx, k)
			if err != nil {
				t.Errorf("CreateFirstAdminKey: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d concurrent CreateFirstAdminKey calls stored a key, want 1", n)
	}
	list, err := e.s.AdminKeys(e.ctx)
	e.must(err)
	if len(list) != 1 {
		t.Errorf("%d admin keys stored, want 1", len(list))
	}
}

// testClock: the store tells the injected time, or its own without one.
func testClock(t *testing.T, h Harness) {
	e := newEnv(t, h)
	got, err := e.s.Now(e.ctx)
	e.must(err)
	if !got.Equal(epoch) {
		t.Errorf("Now = %v, want the injected %v", got, epoch)
	}
	e.clock.Advance(time.Hour)
	got, err = e.s.Now(e.ctx)
	e.must(err)
	if !got.Equal(epoch.Add(time.Hour)) {
		t.Errorf("Now = %v after Advance, want %v", got, epoch.Add(time.Hour))
	}
	e.must(e.s.Ping(e.ctx))

	own := h.New(t, nil)
	got, err = own.Now(e.ctx)
	e.must(err)
	if d := time.Since(got); d < -time.Minute || d > time.Minute {
		t.Errorf("Now without a clock = %v, %v away from this machine's", got, d)
	}
	u := e.newUser("timely")
	e.must(own.CreateUser(e.ctx, &u))
	g, err := own.GetUser(e.ctx, u.ID)
	e.must(err)
	diff(t, "a user stored on the store's own clock", u, g)
}

// testUnavailable: a cancelled context is Unavailable, and leaves nothing behind.
func testUnavailable(t *testing.T, h Harness) {
	e := newEnv(t, h)
	u := e.createUser("steady")
	before := e.keys(e.s)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	_, err := e.s.GetUser(ctx, u.ID)
	wantKind(t, err, core.Unavailable, "GetUser with a cancelled context")
	v := e.newUser("never")
	wantKind(t, e.s.CreateUser(ctx, &v), core.Unavailable, "CreateUser with a cancelled context")
	_, err = e.s.UpdateUser(ctx, u.ID, func(*core.User) error { return nil })
	wantKind(t, err, core.Unavailable, "UpdateUser with a cancelled context")
	diff(t, "keys after cancelled calls", before, e.keys(e.s))
}
