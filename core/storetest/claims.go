package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// usernameKey is core.UsernameKey for names known to be valid.
func usernameKey(t *testing.T, name string) string {
	t.Helper()
	k, err := core.UsernameKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testClaims covers claims left by crashed creates: stale ones are taken over,
// fresh ones block, and a claim its owner holds never goes stale.
func testClaims(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	now := e.clock.Now()
	leave := func(kind, name, owner string, at time.Time) {
		t.Helper()
		h.LeaveClaim(t, s, Claim{Kind: kind, Name: name, Owner: owner, At: at})
	}

	// Stale (owner missing, older than the window): taken over.
	leave("username", usernameKey(t, "ghost"), core.NewID(), now.Add(-2*StaleAfter))
	ghost := e.createUser("ghost")
	byName, err := s.UserByName(ctx, core.NameUsername, "Ghost")
	e.must(err)
	if byName.ID != ghost.ID {
		t.Errorf("UserByName(ghost) = %s, want %s", byName.ID, ghost.ID)
	}

	// Fresh (a create may be in flight): blocks until it is stale.
	leave("username", usernameKey(t, "pending"), core.NewID(), now.Add(-10*time.Second))
	leave("email", core.EmailKey("pending2@example.com"), core.NewID(), now)
	leave("externalId", "ext-pending", core.NewID(), now)
	p := e.newUser("pending")
	wantConflict(t, s.CreateUser(ctx, &p), "a fresh username claim", "username")
	p2 := e.newUser("pending2")
	wantConflict(t, s.CreateUser(ctx, &p2), "a fresh email claim", "email")
	p3 := e.newUser("pending3")
	p3.ExternalID = "ext-pending"
	wantConflict(t, s.CreateUser(ctx, &p3), "a fresh externalId claim", "externalId")
	_, err = s.UserByName(ctx, core.NameUsername, "pending")
	wantKind(t, err, core.NotFound, "UserByName of a claimed but unwritten username")

	// A claim whose owner holds the name never goes stale.
	held := e.createUser("holder")
	// A claim whose owner exists but no longer holds the name (its email changed
	// and the release was lost) is free once stale.
	leave("email", core.EmailKey("was@example.com"), held.ID, e.clock.Now())
	w := e.newUser("was")
	wantConflict(t, s.CreateUser(ctx, &w), "a fresh claim of an existing owner", "email")
	_, err = s.UserByName(ctx, core.NameEmail, "was@example.com")
	wantKind(t, err, core.NotFound, "UserByName of a name its claim's owner does not hold")

	// Keyed credentials: the same rules.
	leave("key-auth", "stale-key", core.NewID(), now.Add(-2*StaleAfter))
	e.createCred(core.KeyAuth, "stale-key", held.ID, held.ID)
	leave("jwt", "fresh-key", held.ID, now)
	fresh := e.newCred(core.JWT, "fresh-key", held.ID, held.ID)
	wantConflict(t, s.CreateCredential(ctx, &fresh), "a fresh keyId claim", "fresh-key")

	e.clock.Advance(2 * StaleAfter)
	for _, u := range []*core.User{&p, &p2, &p3, &w} {
		e.must(s.CreateUser(ctx, u))
	}
	e.must(s.CreateCredential(ctx, &fresh))
	dup := e.newUser("holder")
	wantConflict(t, s.CreateUser(ctx, &dup), "an old claim its owner holds", "username")
	dup = e.newUser("other")
	dup.Email = held.Email
	wantConflict(t, s.CreateUser(ctx, &dup), "an old email claim its owner holds", "email")
	dupKey := e.newCred(core.KeyAuth, "stale-key", ghost.ID, ghost.ID)
	wantConflict(t, s.CreateCredential(ctx, &dupKey), "an old keyId claim its owner holds", "stale-key")

	// An update takes over a stale claim too.
	leave("email", core.EmailKey("moved@example.com"), core.NewID(), e.clock.Now().Add(-2*StaleAfter))
	_, err = s.UpdateUser(ctx, ghost.ID, func(u *core.User) error { u.Email = "moved@example.com"; return nil })
	e.must(err)
	leave("email", core.EmailKey("busy@example.com"), core.NewID(), e.clock.Now())
	_, err = s.UpdateUser(ctx, ghost.ID, func(u *core.User) error { u.Email = "busy@example.com"; return nil })
	wantConflict(t, err, "UpdateUser to a freshly claimed email", "email")
	got, err := s.GetUser(ctx, ghost.ID)
	e.must(err)
	if got.Email != "moved@example.com" {
		t.Errorf("email after a refused update: %q", got.Email)
	}
}

// testDoctor plants every kind of leftover, and checks that Doctor reports them,
// repairs them, and finds nothing the second time.
func testDoctor(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	e.must(s.CreateScopes(ctx, []core.Scope{{Name: "read", Reg: "r1", CreatedAt: epoch}, {Name: "write", Reg: "w1", CreatedAt: epoch}}))
	u := e.createUser("patient")
	app := e.createApp(u.ID, "App")
	k := e.newCred(core.KeyAuth, "pk", app.ID, u.ID)
	k.Scopes = []core.ScopeGrant{{Name: "read", Reg: "r1"}, {Name: "write", Reg: "w1"}, {Name: "gone", Reg: "g1"}}
	e.must(s.CreateCredential(ctx, &k))
	k2 := e.newCred(core.KeyAuth, "pk2", u.ID, u.ID)
	k2.Scopes = []core.ScopeGrant{{Name: "read", Reg: "r1"}}
	e.must(s.CreateCredential(ctx, &k2))

	// Leftovers: stale claims, a re-registered scope (its old grants are dead), and
	// with Interrupt a delete and a create stopped after their slot write.
	now := e.clock.Now()
	h.LeaveClaim(t, s, Claim{Kind: "username", Name: usernameKey(t, "ghost"), Owner: core.NewID(), At: now})
	h.LeaveClaim(t, s, Claim{Kind: "email", Name: core.EmailKey("old@example.com"), Owner: u.ID, At: now})
	h.LeaveClaim(t, s, Claim{Kind: "jwt", Name: "lost", Owner: core.NewID(), At: now})
	e.must(s.DeleteScope(ctx, "write"))
	e.must(s.CreateScopes(ctx, []core.Scope{{Name: "write", Reg: "w2", CreatedAt: epoch}}))
	wantStale := []string{"ghost", "old@example.com", "lost"}
	wantDangling := 0
	var interrupted core.User
	if h.Interrupt != nil {
		v := e.createUser("victim")
		va := e.createApp(v.ID, "App")
		e.createCred(core.KeyAuth, "vk", va.ID, v.ID)
		h.Interrupt(t, s)
		if err := s.DeleteUser(ctx, v.ID); err == nil {
			t.Fatal("interrupted DeleteUser succeeded")
		}
		wantStale = append(wantStale, "victim", "vk")
		wantDangling += 4 // idx:users, idx:apps, idx:creds, appname (+ the app locator)
		interrupted = e.newUser("halfway")
		h.Interrupt(t, s)
		if err := s.CreateUser(ctx, &interrupted); err == nil {
			t.Fatal("interrupted CreateUser succeeded")
		}
		wantDangling++ // the user missing from the list index
	}
	e.clock.Advance(2 * StaleAfter)
	h.LeaveClaim(t, s, Claim{Kind: "username", Name: usernameKey(t, "young"), Owner: core.NewID(), At: e.clock.Now()})

	check := func(r core.DoctorReport, repaired bool) {
		t.Helper()
		for _, name := range wantStale {
			if !slices.ContainsFunc(r.StaleClaims, func(l string) bool { return strings.Contains(l, name) }) {
				t.Errorf("Doctor did not report the stale claim of %q: %q", name, r.StaleClaims)
			}
		}
		for _, l := range r.StaleClaims {
			if strings.Contains(l, "young") || strings.Contains(l, "patient") || strings.Contains(l, "halfway") {
				t.Errorf("Doctor reports a claim that is not stale: %q", l)
			}
		}
		if len(r.DanglingIndex) < wantDangling {
			t.Errorf("Doctor reported %d dangling index entries, want at least %d: %q", len(r.DanglingIndex), wantDangling, r.DanglingIndex)
		}
		if h.Interrupt == nil && len(r.DanglingIndex) > 0 {
			t.Errorf("Doctor reports dangling entries where there are none: %q", r.DanglingIndex)
		}
		if len(r.StaleGrants) != 2 || !slices.ContainsFunc(r.StaleGrants, func(l string) bool { return strings.Contains(l, "pk") && strings.Contains(l, "write") }) ||
			!slices.ContainsFunc(r.StaleGrants, func(l string) bool { return strings.Contains(l, "pk") && strings.Contains(l, "gone") }) {
			t.Errorf("Doctor StaleGrants = %q, want pk's write and gone", r.StaleGrants)
		}
		if r.Repaired != repaired {
			t.Errorf("Doctor Repaired = %v, want %v", r.Repaired, repaired)
		}
	}
	r1, err := s.Doctor(ctx, false)
	e.must(err)
	check(r1, false)
	r2, err := s.Doctor(ctx, false)
	e.must(err)
	diff(t, "a second report without repair", r1, r2)
	r3, err := s.Doctor(ctx, true)
	e.must(err)
	check(r3, true)
	e.doctorClean(s)

	got, err := s.GetCredential(ctx, core.KeyAuth, "pk")
	e.must(err)
	diff(t, "grants after repair", []core.ScopeGrant{{Name: "read", Reg: "r1"}}, got.Scopes)
	got, err = s.GetCredential(ctx, core.KeyAuth, "pk2")
	e.must(err)
	diff(t, "live grants after repair", []core.ScopeGrant{{Name: "read", Reg: "r1"}}, got.Scopes)

	// The names are free, the lists whole.
	e.createUser("ghost")
	if h.Interrupt != nil {
		e.createUser("victim")
		page, err := s.ListUsers(ctx, core.ListOptions{Count: 100})
		e.must(err)
		if !slices.ContainsFunc(page.Items, func(x core.User) bool { return x.ID == interrupted.ID }) {
			t.Error("Doctor did not put the half-created user into the list")
		}
	}
	young := e.newUser("young")
	wantConflict(t, s.CreateUser(ctx, &young), "the young claim Doctor left alone", "username")
}

// testInterrupted: a crash right after a slot write leaves nothing a reader can
// trust: a deleted user stays deleted, its names come free once stale.
func testInterrupted(t *testing.T, h Harness) {
	if h.Interrupt == nil {
		t.Skip("the harness cannot interrupt writes")
	}
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("crash")
	app := e.createApp(u.ID, "CrashApp")
	e.createCred(core.KeyAuth, "ck", app.ID, u.ID)
	other := e.createUser("bystander")
	oa := e.createApp(other.ID, "CrashApp")

	h.Interrupt(t, s)
	if err := s.DeleteApp(ctx, app.ID); err == nil {
		t.Fatal("interrupted DeleteApp succeeded")
	}
	_, err := s.GetApp(ctx, app.ID)
	wantKind(t, err, core.NotFound, "GetApp after an interrupted DeleteApp")
	_, err = s.GetCredential(ctx, core.KeyAuth, "ck")
	wantKind(t, err, core.NotFound, "GetCredential after an interrupted DeleteApp")
	byName, err := s.AppsByName(ctx, "CrashApp")
	e.must(err)
	if len(byName) != 1 || byName[0].ID != oa.ID {
		t.Errorf("AppsByName lists %d apps after an interrupted delete, want only the bystander's", len(byName))
	}
	apps, err := s.ListApps(ctx, core.ListOptions{Count: 10})
	e.must(err)
	if len(apps.Items) != 1 {
		t.Errorf("ListApps lists %d apps after an interrupted delete, want 1", len(apps.Items))
	}

	h.Interrupt(t, s)
	if err := s.DeleteUser(ctx, u.ID); err == nil {
		t.Fatal("interrupted DeleteUser succeeded")
	}
	_, err = s.GetUser(ctx, u.ID)
	wantKind(t, err, core.NotFound, "GetUser after an interrupted DeleteUser")
	_, err = s.UserByName(ctx, core.NameUsername, "crash")
	wantKind(t, err, core.NotFound, "UserByName after an interrupted DeleteUser")
	users, err := s.ListUsers(ctx, core.ListOptions{Count: 10})
	e.must(err)
	if len(users.Items) != 1 {
		t.Errorf("ListUsers lists %d users after an interrupted delete, want 1", len(users.Items))
	}
	again := e.newUser("crash")
	wantConflict(t, s.CreateUser(ctx, &again), "a name of an interrupted delete, before it is stale", "username")
	e.clock.Advance(2 * StaleAfter)
	e.must(s.CreateUser(ctx, &again))
	e.createCred(core.KeyAuth, "ck", again.ID, again.ID)

	h.Interrupt(t, s)
	k := e.newCred(core.KeyAuth, "half", again.ID, again.ID)
	if err := s.CreateCredential(ctx, &k); err == nil {
		t.Fatal("interrupted CreateCredential succeeded")
	}
	h.Interrupt(t, s)
	a := e.newApp(again.ID, "HalfApp")
	if err := s.CreateApp(ctx, &a); err == nil {
		t.Fatal("interrupted CreateApp succeeded")
	}
	_, err = s.Doctor(ctx, true)
	e.must(err)
	e.doctorClean(s)
	creds, err := s.ListCredentials(ctx, core.ListOptions{Count: 10, UserID: again.ID})
	e.must(err)
	all, err := s.ListCredentials(ctx, core.ListOptions{Count: 10})
	e.must(err)
	if len(creds.Items) != len(all.Items) || len(all.Items) != 2 {
		t.Errorf("after repair: %d credentials of the user, %d in all; want 2 and 2", len(creds.Items), len(all.Items))
	}
	byName, err = s.AppsByName(ctx, "HalfApp")
	e.must(err)
	if len(byName) != 1 {
		t.Errorf("after repair AppsByName(HalfApp) lists %d apps, want 1", len(byName))
	}
}

// testDeadline: a write that takes longer than the staleness window between its
// claims and its end must not succeed, for another create may have taken its
// claims over meanwhile; it leaves nothing behind.
func testDeadline(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("slowpoke")

	e.clock.SetStep(2 * StaleAfter)
	late := e.newUser("late")
	wantConflict(t, s.CreateUser(ctx, &late), "a create that overran its deadline")
	_, err := s.UpdateUser(ctx, u.ID, func(x *core.User) error { x.Email = "moved@example.com"; return nil })
	wantConflict(t, err, "an email change that overran its deadline")
	k := e.newCred(core.KeyAuth, "slow-key", u.ID, u.ID)
	wantConflict(t, s.CreateCredential(ctx, &k), "a keyed credential create that overran its deadline")
	a := e.newApp(u.ID, "SlowApp")
	wantConflict(t, s.CreateApp(ctx, &a), "an app create that overran its deadline")
	e.clock.SetStep(0)

	got, err := s.GetUser(ctx, u.ID)
	e.must(err)
	if got.Email != u.Email {
		t.Errorf("email after an overrun update: %q, want %q", got.Email, u.Email)
	}
	_, err = s.GetUser(ctx, late.ID)
	wantKind(t, err, core.NotFound, "the user of an overrun create")
	_, err = s.GetApp(ctx, a.ID)
	wantKind(t, err, core.NotFound, "the app of an overrun create")
	_, err = s.GetCredential(ctx, core.KeyAuth, "slow-key")
	wantKind(t, err, core.NotFound, "the credential of an overrun create")
	e.doctorClean(s)
	// Nothing is held: every name can be taken at once.
	e.must(s.CreateUser(ctx, &late))
	e.must(s.CreateCredential(ctx, &k))
	e.must(s.CreateApp(ctx, &a))
	v := e.createUser("moved")
	page, err := s.ListUsers(ctx, core.ListOptions{Count: 10})
	e.must(err)
	if page.Total != 3 || len(page.Items) != 3 {
		t.Errorf("ListUsers after overruns: %d users, Total %d; want 3", len(page.Items), page.Total)
	}
	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, u)
		replayUser(t, f, late)
		replayUser(t, f, v)
		replayCred(t, f, k)
		replayApp(t, f, a)
	})
}

// testOvertaken: a create whose claim another create took over while it was
// writing answers Conflict and leaves no entity.
func testOvertaken(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	now := e.clock.Now()
	rival := core.NewID()
	u := e.newUser("contested")
	calls := 0
	e.clock.SetHook(func() { // from the create's second reading of the clock on
		if calls++; calls >= 2 {
			h.LeaveClaim(t, s, Claim{Kind: "username", Name: usernameKey(t, "contested"), Owner: rival, At: now})
		}
	})
	err := s.CreateUser(ctx, &u)
	e.clock.SetHook(nil)
	wantConflict(t, err, "a create whose claim was taken over", "username")
	_, err = s.GetUser(ctx, u.ID)
	wantKind(t, err, core.NotFound, "the user of an overtaken create")
	_, err = s.UserByName(ctx, core.NameEmail, u.Email)
	wantKind(t, err, core.NotFound, "the email of an overtaken create")
	// The rival's claim is the only thing left, and goes stale as any other.
	e.clock.Advance(2 * StaleAfter)
	e.must(s.CreateUser(ctx, &u))
}
