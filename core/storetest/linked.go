package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// testAppsByRedirectURI: the apps of one exact redirect URI, across owners and
// in Seq order, follow creates, changes of the URI, app and user deletes.
func testAppsByRedirectURI(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	const cb, other = "https://shop.example/auth/cb", "https://shop.example/other"
	long := "https://long.example/cb?state=" + strings.Repeat("x", 2000)
	u1, u2 := e.createUser("uri1"), e.createUser("uri2")
	app := func(owner, name, uri string) core.App {
		t.Helper()
		a := e.newApp(owner, name)
		a.RedirectURI = uri
		e.must(s.CreateApp(ctx, &a))
		a.OwnerActive = true
		return a
	}
	b1 := app(u2.ID, "B1", cb) // the other owner's first: Seq, not owner, orders them
	a1 := app(u1.ID, "A1", cb)
	a2 := app(u1.ID, "A2", other)
	app(u1.ID, "NoURI", "")
	a4 := app(u2.ID, "Long", long)
	b2 := app(u2.ID, "B2", cb)

	byURI := func(uri string, want ...core.App) {
		t.Helper()
		got, err := s.AppsByRedirectURI(ctx, uri)
		e.must(err)
		diff(t, "AppsByRedirectURI("+uri[:min(len(uri), 40)]+")", want, got)
	}
	byURI(cb, b1, a1, b2)
	byURI(other, a2)
	byURI(long, a4)
	byURI("") // never indexed: an app without a redirect URI allows none
	// Exact, byte for byte.
	byURI(cb + "/")
	byURI("https://SHOP.example/auth/cb")
	byURI(strings.TrimSuffix(long, "x"))

	// A changed URI moves the app; the old one no longer finds it.
	upd := func(a *core.App, f func(*core.App)) {
		t.Helper()
		got, err := s.UpdateApp(ctx, a.ID, func(x *core.App) error { f(x); return nil })
		e.must(err)
		*a = got
	}
	upd(&a1, func(x *core.App) { x.RedirectURI = other })
	byURI(cb, b1, b2)
	byURI(other, a1, a2)
	upd(&a1, func(x *core.App) { x.Name = "A1 renamed" }) // the entry stays
	byURI(other, a1, a2)
	upd(&a2, func(x *core.App) { x.RedirectURI = "" })
	byURI(other, a1)
	byURI("")
	upd(&a2, func(x *core.App) { x.RedirectURI = cb })
	byURI(cb, b1, a2, b2)

	// Deletes take their entries along.
	e.must(s.DeleteApp(ctx, b1.ID))
	byURI(cb, a2, b2)
	e.must(s.DeleteUser(ctx, u1.ID))
	byURI(cb, b2)
	byURI(other)

	// An owner's deactivation shows in OwnerActive, as in every app read.
	_, err := s.UpdateUser(ctx, u2.ID, func(u *core.User) error { u.IsActive = false; return nil })
	e.must(err)
	u2.IsActive = false
	b2.OwnerActive = false
	byURI(cb, b2)

	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, u2)
		replayApp(t, f, a4)
		replayApp(t, f, b2)
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testRedirectURIDoctor: an interrupted app delete leaves a redirect-URI entry
// that readers skip and Doctor removes; an interrupted app create leaves an app
// missing from its set until Doctor adds it.
func testRedirectURIDoctor(t *testing.T, h Harness) {
	if h.Interrupt == nil {
		t.Skip("the harness cannot interrupt writes")
	}
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("redirector")
	gone := e.newApp(u.ID, "Gone")
	gone.RedirectURI = "https://gone.example/cb"
	e.must(s.CreateApp(ctx, &gone))
	h.Interrupt(t, s)
	if err := s.DeleteApp(ctx, gone.ID); err == nil {
		t.Fatal("interrupted DeleteApp succeeded")
	}
	got, err := s.AppsByRedirectURI(ctx, gone.RedirectURI)
	e.must(err)
	diff(t, "AppsByRedirectURI after an interrupted delete", []core.App{}, got)

	half := e.newApp(u.ID, "Half")
	half.RedirectURI = "https://half.example/cb"
	h.Interrupt(t, s)
	if err := s.CreateApp(ctx, &half); err == nil {
		t.Fatal("interrupted CreateApp succeeded")
	}
	e.clock.Advance(2 * StaleAfter)
	r, err := s.Doctor(ctx, true)
	e.must(err)
	if len(r.DanglingIndex) == 0 {
		t.Error("Doctor found nothing after an interrupted delete and create")
	}
	e.doctorClean(s)
	got, err = s.AppsByRedirectURI(ctx, half.RedirectURI)
	e.must(err)
	if len(got) != 1 || got[0].ID != half.ID {
		t.Errorf("after repair AppsByRedirectURI(%s) = %+v, want the half-created app", half.RedirectURI, got)
	}
	// The gone app's entry is removed, not only skipped: the keys are those of
	// a store that only ever held the user and the repaired app.
	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, u)
		h := half
		h.Seq = 0
		e.must(f.CreateApp(ctx, &h))
	})
}

// testLinkedAccounts: put, replace, list, get and delete a user's integration
// accounts, with the errors of each, and their removal with the user.
func testLinkedAccounts(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u, v := e.createUser("linker"), e.createUser("bystander")
	const sealed1 = "aesgcm:k1:Zm9vYmFy+/==:9c1f" // an opaque blob, kept byte for byte
	const sealed2 = "aesgcm:k2:YmF6cXV4+/==:77aa"

	t1 := epoch.Add(time.Hour)
	e.clock.Set(t1)
	gh := core.LinkedAccount{
		Connector: "github", UserIdentifier: "octo:cat", DisplayName: "Octo Cat",
		Scopes: []string{"read:user", "repo"}, Tokens: sealed1, ExpiresAt: t1.Add(8 * time.Hour),
	}
	got, err := s.PutLinkedAccount(ctx, u.ID, gh)
	e.must(err)
	if got.ID == "" {
		t.Fatal("PutLinkedAccount of a new account without an ID gave it none")
	}
	ghID := got.ID
	want := gh
	want.ID = ghID                            // a new UUID
	want.ConnectedAt, want.UpdatedAt = t1, t1 // from the store's clock
	want.Selected = true                      // its connector's first
	diff(t, "PutLinkedAccount of a new account", want, got)
	got, err = s.LinkedAccount(ctx, u.ID, "github", "octo:cat")
	e.must(err)
	diff(t, "LinkedAccount", want, got)

	// A replacement keeps ID and ConnectedAt, whatever the caller sends, and
	// moves UpdatedAt; the tokens are the new blob.
	t2 := t1.Add(time.Hour)
	e.clock.Set(t2)
	again := gh
	again.Tokens, again.Scopes, again.DisplayName = sealed2, []string{"read:user"}, "Octo"
	again.ConnectedAt = t2.Add(time.Minute)
	again.ID = core.NewID()
	got, err = s.PutLinkedAccount(ctx, u.ID, again)
	e.must(err)
	want = again
	want.ID, want.Selected = ghID, true // not the caller's
	want.ConnectedAt, want.UpdatedAt = t1, t2
	diff(t, "PutLinkedAccount replacing an account", want, got)
	refreshed := again
	refreshed.UpdatedAt = t2.Add(time.Minute) // a caller's own UpdatedAt is kept
	got, err = s.PutLinkedAccount(ctx, u.ID, refreshed)
	e.must(err)
	want.UpdatedAt = refreshed.UpdatedAt
	diff(t, "PutLinkedAccount with an UpdatedAt", want, got)
	ghStored := want

	// A new account with a ConnectedAt keeps it, and its ID; list order is
	// ConnectedAt, then connector, then identifier. The first account of a
	// connector is selected, the others not.
	early := core.LinkedAccount{ID: core.NewID(), Connector: "google", UserIdentifier: "a@example.com", Tokens: sealed1, ConnectedAt: epoch, UpdatedAt: epoch}
	tieB := core.LinkedAccount{ID: core.NewID(), Connector: "google", UserIdentifier: "b@example.com", ConnectedAt: t1, UpdatedAt: t1, Selected: true}
	tieA := core.LinkedAccount{ID: core.NewID(), Connector: "gitlab", UserIdentifier: "z", ConnectedAt: t1, UpdatedAt: t1, Selected: true}
	for _, a := range []core.LinkedAccount{tieB, early, tieA} {
		put := a
		put.Selected = !a.Selected // the caller's Selected is ignored
		got, err := s.PutLinkedAccount(ctx, u.ID, put)
		e.must(err)
		diff(t, "PutLinkedAccount with its times", a, got)
	}
	vs := core.LinkedAccount{ID: core.NewID(), Connector: "github", UserIdentifier: "octo:cat", Tokens: sealed2, ConnectedAt: epoch, UpdatedAt: epoch, Selected: true}
	_, err = s.PutLinkedAccount(ctx, v.ID, vs) // the same account at another user: its own
	e.must(err)
	list, err := s.LinkedAccounts(ctx, u.ID)
	e.must(err)
	diff(t, "LinkedAccounts", []core.LinkedAccount{early, ghStored, tieA, tieB}, list)

	// NotFound names the account, never the tokens. Deleting the selected
	// account selects the remaining one.
	e.must(s.DeleteLinkedAccount(ctx, u.ID, "google", "b@example.com"))
	early.Selected = true
	got, err = s.LinkedAccount(ctx, u.ID, "google", "a@example.com")
	e.must(err)
	diff(t, "LinkedAccount left after its connector's selected one was deleted", early, got)
	lookup := func(uid, connector, ident string) error {
		_, err := s.LinkedAccount(ctx, uid, connector, ident)
		return err
	}
	for _, c := range []struct {
		what  string
		err   error
		ident string
	}{
		{"DeleteLinkedAccount twice", s.DeleteLinkedAccount(ctx, u.ID, "google", "b@example.com"), "b@example.com"},
		{"DeleteLinkedAccount of another identifier", s.DeleteLinkedAccount(ctx, u.ID, "github", "octo"), "octo"},
		{"DeleteLinkedAccount of an unknown user", s.DeleteLinkedAccount(ctx, core.NewID(), "github", "octo:cat"), "octo:cat"},
		{"LinkedAccount after its delete", lookup(u.ID, "google", "b@example.com"), "b@example.com"},
		{"LinkedAccount of an unknown user", lookup(core.NewID(), "github", "octo:cat"), "octo:cat"},
		{"LinkedAccount of another connector", lookup(u.ID, "gitlab", "octo:cat"), "octo:cat"},
	} {
		wantKind(t, c.err, core.NotFound, c.what)
		if msg := core.MessageOf(c.err); !strings.Contains(msg, c.ident) {
			t.Errorf("%s: message %q does not name the account %q", c.what, msg, c.ident)
		}
		if strings.Contains(c.err.Error(), "aesgcm") {
			t.Errorf("%s: error %q carries a token blob", c.what, c.err)
		}
	}
	list, err = s.LinkedAccounts(ctx, core.NewID())
	e.must(err)
	diff(t, "LinkedAccounts of an unknown user", []core.LinkedAccount{}, list)

	// Refused writes change nothing.
	before := e.keys(s)
	for what, c := range map[string]struct {
		uid  string
		a    core.LinkedAccount
		kind core.Kind
	}{
		"an empty connector":         {u.ID, core.LinkedAccount{UserIdentifier: "x", Tokens: sealed1}, core.Invalid},
		"a connector holding ':'":    {u.ID, core.LinkedAccount{Connector: "git:hub", UserIdentifier: "x", Tokens: sealed1}, core.Invalid},
		"an empty userIdentifier":    {u.ID, core.LinkedAccount{Connector: "github", Tokens: sealed1}, core.Invalid},
		"an unknown user":            {core.NewID(), core.LinkedAccount{Connector: "github", UserIdentifier: "x", Tokens: sealed1}, core.NotFound},
		"a user id no user can have": {"", core.LinkedAccount{Connector: "github", UserIdentifier: "x", Tokens: sealed1}, core.NotFound},
	} {
		_, err := s.PutLinkedAccount(ctx, c.uid, c.a)
		wantKind(t, err, c.kind, "PutLinkedAccount with "+what)
		if strings.Contains(err.Error(), sealed1) {
			t.Errorf("PutLinkedAccount with %s: error %q carries the tokens", what, err)
		}
	}
	for _, f := range []string{"connector", "userIdentifier"} {
		a := core.LinkedAccount{Connector: "github", UserIdentifier: "x"}
		if f == "connector" {
			a.Connector = ""
		} else {
			a.UserIdentifier = ""
		}
		_, err := s.PutLinkedAccount(ctx, u.ID, a)
		if !strings.Contains(core.MessageOf(err), f) {
			t.Errorf("PutLinkedAccount without a %s: message %q does not name the field", f, core.MessageOf(err))
		}
	}
	diff(t, "keys after refused PutLinkedAccount", before, e.keys(s))

	// Deleting the user deletes its accounts, and only its.
	e.must(s.DeleteUser(ctx, u.ID))
	list, err = s.LinkedAccounts(ctx, u.ID)
	e.must(err)
	diff(t, "LinkedAccounts of a deleted user", []core.LinkedAccount{}, list)
	list, err = s.LinkedAccounts(ctx, v.ID)
	e.must(err)
	diff(t, "LinkedAccounts of the other user", []core.LinkedAccount{vs}, list)
	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, v)
		if _, err := f.PutLinkedAccount(ctx, v.ID, vs); err != nil {
			t.Fatal(err)
		}
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testLinkedAccountsDeleteRace races PutLinkedAccount against DeleteUser: the
// put either lands before the delete (which removes it) or answers NotFound;
// no account outlives its user.
func testLinkedAccountsDeleteRace(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	const rounds = 30
	for i := range rounds {
		u := e.createUser(name("racer", i))
		_, err := s.PutLinkedAccount(ctx, u.ID, core.LinkedAccount{Connector: "github", UserIdentifier: "first", Tokens: "aesgcm:k1:x"})
		e.must(err)
		var putErr, delErr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, putErr = s.PutLinkedAccount(ctx, u.ID, core.LinkedAccount{Connector: "google", UserIdentifier: name("g", i), Tokens: "aesgcm:k1:y"})
		})
		wg.Go(func() {
			<-start
			delErr = s.DeleteUser(ctx, u.ID)
		})
		close(start)
		waitBounded(t, &wg, 30*time.Second)
		e.must(delErr)
		if putErr != nil && core.KindOf(putErr) != core.NotFound {
			t.Fatalf("round %d: PutLinkedAccount racing DeleteUser: %v, want success or NotFound", i, putErr)
		}
		list, err := s.LinkedAccounts(ctx, u.ID)
		e.must(err)
		if len(list) != 0 {
			t.Fatalf("round %d: %d linked accounts outlived their user", i, len(list))
		}
	}
	// The same race, in the worst order for a store: the user is deleted while
	// the put that found it is between its read and its write (a store that
	// reads its clock there to stamp the account runs the delete then).
	u := e.createUser("racer-last")
	var once sync.Once
	var delErr error
	e.clock.SetHook(func() { once.Do(func() { delErr = s.DeleteUser(ctx, u.ID) }) })
	_, err := s.PutLinkedAccount(ctx, u.ID, core.LinkedAccount{Connector: "github", UserIdentifier: "late"})
	e.clock.SetHook(nil)
	once.Do(func() { delErr = s.DeleteUser(ctx, u.ID) }) // a store that never read the clock
	e.must(delErr)
	if err != nil && core.KindOf(err) != core.NotFound {
		t.Fatalf("PutLinkedAccount while its user is deleted: %v, want success or NotFound", err)
	}
	list, err := s.LinkedAccounts(ctx, u.ID)
	e.must(err)
	if len(list) != 0 {
		t.Fatalf("%d linked accounts outlived their user", len(list))
	}
	e.sameKeys(s, func(f core.Store) {
		// The counter of the users created and deleted is all that is left.
		w := e.newUser("racer0")
		if err := f.CreateUser(ctx, &w); err != nil {
			t.Fatal(err)
		}
		if err := f.DeleteUser(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// testLinkedUnavailable: the linked-account and redirect-URI calls answer
// Unavailable when the store cannot be reached in time (a cancelled context).
func testLinkedUnavailable(t *testing.T, h Harness) {
	e := newEnv(t, h)
	u := e.createUser("unreachable")
	_, err := e.s.PutLinkedAccount(e.ctx, u.ID, core.LinkedAccount{Connector: "github", UserIdentifier: "x"})
	e.must(err)
	before := e.keys(e.s)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	_, err = e.s.PutLinkedAccount(ctx, u.ID, core.LinkedAccount{Connector: "github", UserIdentifier: "y"})
	wantKind(t, err, core.Unavailable, "PutLinkedAccount with a cancelled context")
	_, err = e.s.LinkedAccounts(ctx, u.ID)
	wantKind(t, err, core.Unavailable, "LinkedAccounts with a cancelled context")
	_, err = e.s.LinkedAccount(ctx, u.ID, "github", "x")
	wantKind(t, err, core.Unavailable, "LinkedAccount with a cancelled context")
	wantKind(t, e.s.DeleteLinkedAccount(ctx, u.ID, "github", "x"), core.Unavailable, "DeleteLinkedAccount with a cancelled context")
	_, err = e.s.AppsByRedirectURI(ctx, "https://app.example/cb")
	wantKind(t, err, core.Unavailable, "AppsByRedirectURI with a cancelled context")
	diff(t, "keys after cancelled calls", before, e.keys(e.s))
}

// waitBounded waits for wg, failing the test if that takes longer than d.
func waitBounded(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("goroutines still running after %v", d)
	}
}
