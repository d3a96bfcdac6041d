package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

func testApps(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u1, u2 := e.createUser("owner1"), e.createUser("owner2")

	a1 := e.newApp(u1.ID, "My App")
	e.must(s.CreateApp(ctx, &a1))
	if a1.Seq <= 0 {
		t.Fatalf("CreateApp assigned Seq %d, want > 0", a1.Seq)
	}
	got, err := s.GetApp(ctx, a1.ID)
	e.must(err)
	want := a1
	want.OwnerActive = true
	diff(t, "GetApp", want, got)

	_, err = s.GetApp(ctx, core.NewID())
	wantKind(t, err, core.NotFound, "GetApp of an unknown id")
	dup := e.newApp(u1.ID, "My App")
	wantConflict(t, s.CreateApp(ctx, &dup), "an owner's second app of one name", "app name", "My App", u1.ID)
	orphan := e.newApp(core.NewID(), "Orphan")
	wantKind(t, s.CreateApp(ctx, &orphan), core.Invalid, "CreateApp for a missing owner")
	sameID := e.newApp(u2.ID, "Other")
	sameID.ID = a1.ID
	wantConflict(t, s.CreateApp(ctx, &sameID), "CreateApp with a taken id")

	// Two owners may share a name; AppsByName returns both in Seq order.
	a2 := e.createApp(u2.ID, "My App")
	if a2.Seq <= a1.Seq {
		t.Errorf("second app's Seq %d, want > %d", a2.Seq, a1.Seq)
	}
	byName, err := s.AppsByName(ctx, "My App")
	e.must(err)
	want2 := a2
	want2.OwnerActive = true
	diff(t, "AppsByName", []core.App{want, want2}, byName)
	byName, err = s.AppsByName(ctx, "my app") // exact, case-sensitive
	e.must(err)
	diff(t, "AppsByName of a case variant", []core.App{}, byName)

	// Rename, with immutable fields restored.
	later := a1.UpdatedAt.Add(time.Hour)
	got, err = s.UpdateApp(ctx, a1.ID, func(a *core.App) error {
		a.Name = "Renamed"
		a.RedirectURI = "https://renamed.example/cb"
		a.Props["description"] = "new"
		a.UpdatedAt = later
		a.ID, a.Seq, a.UserID, a.CreatedAt = core.NewID(), 999, u2.ID, later
		return nil
	})
	e.must(err)
	want.Name, want.RedirectURI, want.UpdatedAt = "Renamed", "https://renamed.example/cb", later
	want.Props = map[string]any{"description": "new"}
	diff(t, "UpdateApp result", want, got)
	got, err = s.GetApp(ctx, a1.ID)
	e.must(err)
	diff(t, "GetApp after UpdateApp", want, got)
	byName, err = s.AppsByName(ctx, "My App")
	e.must(err)
	diff(t, "AppsByName of the old name", []core.App{want2}, byName)
	byName, err = s.AppsByName(ctx, "Renamed")
	e.must(err)
	diff(t, "AppsByName of the new name", []core.App{want}, byName)

	a3 := e.createApp(u1.ID, "My App") // the old name is free for its owner
	_, err = s.UpdateApp(ctx, a3.ID, func(a *core.App) error { a.Name = "Renamed"; return nil })
	wantConflict(t, err, "renaming to a taken name", "Renamed")
	_, err = s.UpdateApp(ctx, core.NewID(), func(*core.App) error { return nil })
	wantKind(t, err, core.NotFound, "UpdateApp of an unknown id")

	e.must(s.DeleteApp(ctx, a1.ID))
	_, err = s.GetApp(ctx, a1.ID)
	wantKind(t, err, core.NotFound, "GetApp after DeleteApp")
	wantKind(t, s.DeleteApp(ctx, a1.ID), core.NotFound, "DeleteApp twice")
	byName, err = s.AppsByName(ctx, "Renamed")
	e.must(err)
	diff(t, "AppsByName after DeleteApp", []core.App{}, byName)

	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, u1)
		replayUser(t, f, u2)
		replayApp(t, f, a2)
		replayApp(t, f, a3)
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testAppsCredsPaging pages apps and credentials, all and per user.
func testAppsCredsPaging(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	ua, ub := e.createUser("pa"), e.createUser("pb")
	var all, ofA, ofB []string
	var creds, credsOfA []string
	addCred := func(c core.Credential, ofUserA bool) {
		creds = append(creds, c.ID)
		if ofUserA {
			credsOfA = append(credsOfA, c.ID)
		}
	}
	addCred(e.createCred(core.KeyAuth, "ka-user", ua.ID, ua.ID), true)
	for i := range 5 {
		a := e.createApp(ua.ID, name("a", i))
		all, ofA = append(all, a.ID), append(ofA, a.ID)
		addCred(e.createCred(core.KeyAuth, "k-"+name("a", i), a.ID, ua.ID), true)
		if i < 4 {
			b := e.createApp(ub.ID, name("b", i))
			all, ofB = append(all, b.ID), append(ofB, b.ID)
			addCred(e.createCred(core.KeyAuth, "k-"+name("b", i), b.ID, ub.ID), false)
		}
	}
	addCred(e.createCred(core.BasicAuth, "", ub.ID, ub.ID), false)
	addCred(e.createCred(core.JWT, "jwt-a", ua.ID, ua.ID), true)

	ids := func(apps []core.App) []string {
		var out []string
		for _, a := range apps {
			out = append(out, a.ID)
		}
		return out
	}
	credIDs := func(cs []core.Credential) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for _, c := range []struct {
		user  string
		count int
		want  []string
	}{{"", 3, all}, {"", 100, all}, {ua.ID, 2, ofA}, {ub.ID, 1, ofB}} {
		got := walk(t, c.count, func(start int64) (core.Page[core.App], error) {
			return s.ListApps(ctx, core.ListOptions{Start: start, Count: c.count, UserID: c.user})
		})
		diff(t, "ListApps of user "+c.user, c.want, ids(got))
		p, err := s.ListApps(ctx, core.ListOptions{Count: 1, UserID: c.user})
		e.must(err)
		if p.Total != int64(len(c.want)) {
			t.Errorf("ListApps(user %q).Total = %d, want %d", c.user, p.Total, len(c.want))
		}
		for _, a := range got {
			if !a.OwnerActive {
				t.Errorf("ListApps: app %s has OwnerActive false", a.Name)
			}
		}
	}
	for _, c := range []struct {
		user  string
		count int
		want  []string
	}{{"", 3, creds}, {"", 1000, creds}, {ua.ID, 2, credsOfA}} {
		got := walk(t, c.count, func(start int64) (core.Page[core.Credential], error) {
			return s.ListCredentials(ctx, core.ListOptions{Start: start, Count: c.count, UserID: c.user})
		})
		diff(t, "ListCredentials of user "+c.user, c.want, credIDs(got))
		p, err := s.ListCredentials(ctx, core.ListOptions{Count: 1, UserID: c.user})
		e.must(err)
		if p.Total != int64(len(c.want)) {
			t.Errorf("ListCredentials(user %q).Total = %d, want %d", c.user, p.Total, len(c.want))
		}
	}
	p, err := s.ListApps(ctx, core.ListOptions{Count: 5, UserID: core.NewID()})
	e.must(err)
	if len(p.Items) != 0 || p.Total != 0 || p.NextKey != 0 {
		t.Errorf("ListApps of an unknown user: %+v, want an empty page", p)
	}
}

// testConcurrentNames races creates for one app name of one owner, one keyId, and
// one consumer's basic-auth: each time exactly one wins and nothing is left over.
func testConcurrentNames(t *testing.T, h Harness) {
	e := newEnv(t, h)
	u := e.createUser("racer")
	const n = 10
	race := func(what string, create func(i int) error) int {
		t.Helper()
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = create(i)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch core.KindOf(err) {
			case core.Other:
				if winner >= 0 {
					t.Fatalf("%s: creates %d and %d both succeeded", what, winner, i)
				}
				winner = i
			case core.Conflict:
			default:
				t.Errorf("%s: create %d: %v", what, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no create succeeded", what)
		}
		return winner
	}
	apps := make([]core.App, n)
	for i := range apps {
		apps[i] = e.newApp(u.ID, "Contested")
	}
	app := apps[race("app name", func(i int) error { return e.s.CreateApp(e.ctx, &apps[i]) })]
	keys := make([]core.Credential, n)
	for i := range keys {
		keys[i] = e.newCred(core.KeyAuth, "contested", u.ID, u.ID)
	}
	key := keys[race("keyId", func(i int) error { return e.s.CreateCredential(e.ctx, &keys[i]) })]
	basics := make([]core.Credential, n)
	for i := range basics {
		basics[i] = e.newCred(core.BasicAuth, "", app.ID, u.ID)
	}
	basic := basics[race("basic-auth", func(i int) error { return e.s.CreateCredential(e.ctx, &basics[i]) })]
	e.sameKeys(e.s, func(f core.Store) {
		replayUser(t, f, u)
		replayApp(t, f, app)
		replayCred(t, f, key)
		replayCred(t, f, basic)
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(e.s)
}
