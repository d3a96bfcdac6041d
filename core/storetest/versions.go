package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/core"
)

// errStale is what the suite's checks return: a delete or update must stop
// and return it as it is.
var errStale = errors.New("storetest: stale version")

// testVersions: an object's version is the same whether it comes from its
// write or a later read; a delete's check sees the stored object inside the
// delete, and its error stops the delete with nothing removed.
func testVersions(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("vera")
	got, err := s.GetUser(ctx, u.ID)
	e.must(err)
	if got.Version() != u.Version() {
		t.Fatalf("GetUser version %s, CreateUser's %s", got.Version(), u.Version())
	}
	next, err := s.UpdateUser(ctx, u.ID, func(u *core.User) error {
		u.Props["firstname"] = "Vera"
		return nil
	})
	e.must(err)
	got, err = s.GetUser(ctx, u.ID)
	e.must(err)
	if got.Version() != next.Version() || got.Version() == u.Version() {
		t.Fatalf("versions: created %s, updated %s, read after %s", u.Version(), next.Version(), got.Version())
	}
	a := e.createApp(u.ID, "vapp")
	c := e.createCred(core.KeyAuth, "vkey", u.ID, u.ID)
	e.must(s.CreateScopes(ctx, []core.Scope{{Name: "vscope", CreatedAt: e.clock.Now()}}))
	now := e.clock.Now()
	g := core.Group{ID: core.NewID(), Name: "vgroup", Tags: []string{"t"}, CreatedAt: now, UpdatedAt: now}
	e.must(s.CreateGroup(ctx, &g))
	nc, err := s.UpdateCredential(ctx, core.KeyAuth, c.ID, func(c *core.Credential) error {
		c.IsActive = false
		return nil
	})
	e.must(err)
	gc, err := s.GetCredential(ctx, core.KeyAuth, c.ID)
	e.must(err)
	if gc.Version() != nc.Version() {
		t.Errorf("GetCredential version %s, UpdateCredential's %s", gc.Version(), nc.Version())
	}

	// Refused checks: nothing deleted, the check's error returned as it is.
	before := e.keys(s)
	refuse := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, errStale) {
			t.Fatalf("%s with a refusing check: %v, want the check's error", what, err)
		}
	}
	refuse("DeleteUser", s.DeleteUser(ctx, u.ID, func(got core.User) error {
		if got.Version() != next.Version() {
			t.Errorf("DeleteUser's check saw version %s, want the stored %s", got.Version(), next.Version())
		}
		return errStale
	}))
	refuse("DeleteApp", s.DeleteApp(ctx, a.ID, func(got core.App) error {
		if got.ID != a.ID || got.Name != a.Name {
			t.Errorf("DeleteApp's check saw %+v", got)
		}
		return errStale
	}))
	refuse("DeleteCredential", s.DeleteCredential(ctx, core.KeyAuth, c.ID, func(got core.Credential) error {
		if got.ID != c.ID || got.IsActive {
			t.Errorf("DeleteCredential's check saw %+v", got)
		}
		return errStale
	}))
	refuse("DeleteScope", s.DeleteScope(ctx, "vscope", func(got core.Scope) error {
		if got.Name != "vscope" || got.Reg == "" {
			t.Errorf("DeleteScope's check saw %+v", got)
		}
		return errStale
	}))
	refuse("DeleteGroup", s.DeleteGroup(ctx, g.ID, func(got core.Group) error {
		if got.Version() != g.Version() {
			t.Errorf("DeleteGroup's check saw version %s, want the created %s", got.Version(), g.Version())
		}
		return errStale
	}))
	diff(t, "keys after refused deletes", sortedKeys(before), sortedKeys(e.keys(s)))
	e.must(s.DeleteGroup(ctx, g.ID, func(core.Group) error { return nil }))

	// Passing checks delete; a check of a missing object never runs.
	e.must(s.DeleteScope(ctx, "vscope", func(core.Scope) error { return nil }))
	wantKind(t, s.DeleteScope(ctx, "vscope", func(core.Scope) error { return errStale }), core.NotFound, "DeleteScope twice")
	e.must(s.DeleteCredential(ctx, core.KeyAuth, c.ID, func(core.Credential) error { return nil }))
	e.must(s.DeleteApp(ctx, a.ID, func(core.App) error { return nil }))
	e.must(s.DeleteUser(ctx, u.ID, func(core.User) error { return nil }))
	wantKind(t, s.DeleteUser(ctx, u.ID, func(core.User) error { return errStale }), core.NotFound, "DeleteUser twice")
}

// testVersionRace: N writers that each update a user only if it is still at
// the version they read: exactly one wins, whatever the interleaving, because
// the check runs inside the update's transaction.
func testVersionRace(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("race")
	v0 := u.Version()
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.UpdateUser(ctx, u.ID, func(u *core.User) error {
				if u.Version() != v0 {
					return errStale
				}
				u.Props["firstname"] = "writer " + string(rune('a'+i))
				return nil
			})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, errStale), core.KindOf(err) == core.Conflict: // lost, or gave up retrying
		default:
			t.Errorf("a writer failed: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won at one version, want exactly 1", won)
	}
}
