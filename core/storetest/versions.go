package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

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

// testVersionChecks: the checks of DeleteAdminKey, DeleteClient and
// DeleteClientKey, and SetPassword's touch, see the stored object inside the
// write; a refusing one writes nothing. SetPassword's touch writes the
// UpdatedAt it sets with the password, and nothing else it changes.
func testVersionChecks(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	k := core.AdminKey{ID: core.NewID(), Name: "vkey", Scope: core.ScopeAdmin, Prefix: "gtha_abcdef",
		Hash: core.HashSHA256("gtha_vkey"), CreatedAt: e.clock.Now()}
	e.must(s.CreateAdminKey(ctx, k))
	c := e.createClient("Vclient")
	ck := e.newClientKey(c.ID, "sk-client-vvvv")
	e.must(s.CreateClientKey(ctx, ck))
	client := core.ClientWithKeys{Client: c, Keys: []core.ClientKey{ck}}
	u := e.createUser("pat")

	before := e.keys(s)
	refuse := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, errStale) {
			t.Fatalf("%s with a refusing check: %v, want the check's error", what, err)
		}
	}
	seen := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s's check saw version %s, want the stored %s", what, got, want)
		}
	}
	refuse("DeleteAdminKey", s.DeleteAdminKey(ctx, k.ID, func(got core.AdminKey) error {
		seen("DeleteAdminKey", got.Version(), k.Version())
		return errStale
	}))
	refuse("DeleteClient", s.DeleteClient(ctx, c.ID, func(got core.ClientWithKeys) error {
		seen("DeleteClient", got.Version(), client.Version())
		return errStale
	}))
	refuse("DeleteClientKey", s.DeleteClientKey(ctx, c.ID, ck.ID, func(got core.ClientWithKeys) error {
		seen("DeleteClientKey", got.Version(), client.Version())
		return errStale
	}))
	refuse("SetPassword", s.SetPassword(ctx, u.ID, testPHC, func(got *core.User) error {
		seen("SetPassword", got.Version(), u.Version())
		return errStale
	}))
	diff(t, "keys after refused writes", before, e.keys(s))

	later := u.UpdatedAt.Add(time.Second)
	e.must(s.SetPassword(ctx, u.ID, testPHC, func(got *core.User) error {
		got.UpdatedAt = later
		got.Props["firstname"] = "ignored"
		return nil
	}))
	got, err := s.GetUser(ctx, u.ID)
	e.must(err)
	if !got.UpdatedAt.Equal(later) || got.Props["firstname"] == "ignored" {
		t.Errorf("after a touching SetPassword: updatedAt %v (want %v), firstname %v", got.UpdatedAt, later, got.Props["firstname"])
	}
	rec, err := s.ReadAuth(ctx, core.AuthQuery{UserID: u.ID, Password: true})
	e.must(err)
	if rec.PasswordHash != testPHC {
		t.Errorf("a touching SetPassword stored password %q", rec.PasswordHash)
	}
	wantKind(t, s.SetPassword(ctx, core.NewID(), testPHC, func(*core.User) error { return errStale }), core.NotFound, "a touching SetPassword of a missing user")

	pass := func(core.ClientWithKeys) error { return nil }
	e.must(s.DeleteClientKey(ctx, c.ID, ck.ID, pass))
	e.must(s.DeleteClient(ctx, c.ID, pass))
	wantKind(t, s.DeleteClient(ctx, c.ID, func(core.ClientWithKeys) error { return errStale }), core.NotFound, "DeleteClient twice")
	e.must(s.DeleteAdminKey(ctx, k.ID, func(core.AdminKey) error { return nil }))
	wantKind(t, s.DeleteAdminKey(ctx, k.ID, func(core.AdminKey) error { return errStale }), core.NotFound, "DeleteAdminKey twice")
}
