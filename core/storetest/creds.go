package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

func testCredentials(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u1, u2 := e.createUser("c1"), e.createUser("c2")
	app := e.createApp(u1.ID, "app")

	k1 := e.newCred(core.KeyAuth, "k1", u1.ID, u1.ID)
	k1.ExpiresAt = epoch.Add(24 * time.Hour)
	k1.Props = map[string]any{"note": "ci"}
	k1.Scopes = []core.ScopeGrant{{Name: "read", Reg: "r1"}, {Name: "admin", Reg: "a1"}}
	e.must(s.CreateCredential(ctx, &k1))
	if k1.Seq <= 0 {
		t.Fatalf("CreateCredential assigned Seq %d, want > 0", k1.Seq)
	}
	got, err := s.GetCredential(ctx, core.KeyAuth, "k1")
	e.must(err)
	want := k1
	want.OwnerActive = true
	diff(t, "GetCredential", want, got)

	// keyIds are unique per type.
	again := e.newCred(core.KeyAuth, "k1", u2.ID, u2.ID)
	wantConflict(t, s.CreateCredential(ctx, &again), "a taken keyId", `key-auth keyId "k1" is taken`)
	j1 := e.createCred(core.JWT, "k1", u2.ID, u2.ID) // same keyId, other type: fine
	got, err = s.GetCredential(ctx, core.JWT, "k1")
	e.must(err)
	if got.UserID != u2.ID || got.Algorithm != "HS256" || got.Seq != j1.Seq {
		t.Errorf("jwt k1 = %+v", got)
	}

	// The consumer must exist (and an app's owner be the UserID given).
	noUser := e.newCred(core.KeyAuth, "k-none", core.NewID(), "")
	noUser.UserID = noUser.ConsumerID
	wantKind(t, s.CreateCredential(ctx, &noUser), core.Invalid, "a credential of a missing user")
	wrongOwner := e.newCred(core.KeyAuth, "k-wrong", app.ID, u2.ID)
	wantKind(t, s.CreateCredential(ctx, &wrongOwner), core.Invalid, "a credential of another user's app")
	noApp := e.newCred(core.KeyAuth, "k-noapp", core.NewID(), u1.ID)
	wantKind(t, s.CreateCredential(ctx, &noApp), core.Invalid, "a credential of a missing app")
	// Those failures left their keyIds free.
	e.createCred(core.KeyAuth, "k-none", u1.ID, u1.ID)

	// An app's credentials.
	k2 := e.createCred(core.KeyAuth, "k2", app.ID, u1.ID)
	got, err = s.GetCredential(ctx, core.KeyAuth, "k2")
	e.must(err)
	want2 := k2
	want2.OwnerActive = true
	diff(t, "GetCredential of an app's key", want2, got)
	appBasic := e.createCred(core.BasicAuth, "", app.ID, u1.ID)
	got, err = s.GetCredential(ctx, core.BasicAuth, app.ID)
	e.must(err)
	wantAB := appBasic
	wantAB.OwnerActive = true
	diff(t, "GetCredential(basic-auth, app id)", wantAB, got)
	userBasic := e.createCred(core.BasicAuth, "", u1.ID, u1.ID)
	got, err = s.GetCredential(ctx, core.BasicAuth, u1.ID)
	e.must(err)
	if got.Seq != userBasic.Seq || got.ConsumerKind != core.ConsumerUser {
		t.Errorf("GetCredential(basic-auth, user id) = %+v", got)
	}
	oauth := e.createCred(core.OAuth2, "", u1.ID, u1.ID)
	_, err = s.GetCredential(ctx, core.OAuth2, u1.ID)
	e.must(err)
	_, err = s.GetCredential(ctx, core.OAuth2, app.ID)
	wantKind(t, err, core.NotFound, "GetCredential of an app without oauth2")
	_, err = s.GetCredential(ctx, core.BasicAuth, core.NewID())
	wantKind(t, err, core.NotFound, "GetCredential(basic-auth) of an unknown consumer")
	_, err = s.GetCredential(ctx, core.KeyAuth, "nope")
	wantKind(t, err, core.NotFound, "GetCredential of an unknown keyId")

	// ConsumerCredentials: one consumer's own, in Seq order.
	seqs := func(cs []core.Credential) []int64 {
		var out []int64
		for _, c := range cs {
			out = append(out, c.Seq)
		}
		return out
	}
	cs, err := s.ConsumerCredentials(ctx, u1.ID)
	e.must(err)
	kNone, err := s.GetCredential(ctx, core.KeyAuth, "k-none")
	e.must(err)
	diff(t, "ConsumerCredentials(user)", []int64{k1.Seq, kNone.Seq, userBasic.Seq, oauth.Seq}, seqs(cs))
	for _, c := range cs {
		if !c.OwnerActive || c.ConsumerID != u1.ID {
			t.Errorf("ConsumerCredentials(user): %s/%s OwnerActive %v consumer %s", c.Type, c.ID, c.OwnerActive, c.ConsumerID)
		}
	}
	cs, err = s.ConsumerCredentials(ctx, app.ID)
	e.must(err)
	diff(t, "ConsumerCredentials(app)", []int64{k2.Seq, appBasic.Seq}, seqs(cs))
	cs, err = s.ConsumerCredentials(ctx, core.NewID())
	e.must(err)
	diff(t, "ConsumerCredentials(unknown)", []int64(nil), seqs(cs))

	// Update: fn's changes are kept, not those to immutable fields.
	later := epoch.Add(time.Hour)
	got, err = s.UpdateCredential(ctx, core.KeyAuth, "k1", func(c *core.Credential) error {
		c.Scopes = []core.ScopeGrant{{Name: "write", Reg: "w1"}}
		c.IsActive = false
		c.UpdatedAt = later
		c.Type, c.ID, c.Seq, c.ConsumerID, c.ConsumerKind = core.JWT, "other", 999, app.ID, core.ConsumerApp
		c.UserID, c.CreatedAt = u2.ID, later
		return nil
	})
	e.must(err)
	want.Scopes, want.IsActive, want.UpdatedAt = []core.ScopeGrant{{Name: "write", Reg: "w1"}}, false, later
	diff(t, "UpdateCredential result", want, got)
	got, err = s.GetCredential(ctx, core.KeyAuth, "k1")
	e.must(err)
	diff(t, "GetCredential after UpdateCredential", want, got)
	_, err = s.UpdateCredential(ctx, core.KeyAuth, "nope", func(*core.Credential) error { return nil })
	wantKind(t, err, core.NotFound, "UpdateCredential of an unknown keyId")

	// Delete frees the keyId.
	e.must(s.DeleteCredential(ctx, core.KeyAuth, "k1"))
	_, err = s.GetCredential(ctx, core.KeyAuth, "k1")
	wantKind(t, err, core.NotFound, "GetCredential after DeleteCredential")
	wantKind(t, s.DeleteCredential(ctx, core.KeyAuth, "k1"), core.NotFound, "DeleteCredential twice")
	k1b := e.createCred(core.KeyAuth, "k1", u2.ID, u2.ID)
	e.must(s.DeleteCredential(ctx, core.BasicAuth, app.ID))
	_, err = s.GetCredential(ctx, core.BasicAuth, app.ID)
	wantKind(t, err, core.NotFound, "GetCredential(basic-auth) after DeleteCredential")

	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, u1)
		replayUser(t, f, u2)
		replayApp(t, f, app)
		for _, c := range []core.Credential{j1, kNone, k2, userBasic, oauth, k1b} {
			replayCred(t, f, c)
		}
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testOnePerConsumer: one active basic-auth / oauth2 per consumer; an inactive one
// is replaced.
func testOnePerConsumer(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("single")
	for _, typ := range []core.CredentialType{core.BasicAuth, core.OAuth2} {
		first := e.createCred(typ, "", u.ID, u.ID)
		second := e.newCred(typ, "", u.ID, u.ID)
		wantConflict(t, s.CreateCredential(ctx, &second), "a second active "+string(typ))
		_, err := s.UpdateCredential(ctx, typ, u.ID, func(c *core.Credential) error { c.IsActive = false; return nil })
		e.must(err)
		repl := e.newCred(typ, "", u.ID, u.ID)
		repl.Scopes = []core.ScopeGrant{{Name: "new", Reg: "n1"}}
		repl.Secret = "sha256:" + "cd"
		e.must(s.CreateCredential(ctx, &repl))
		if repl.Seq <= first.Seq {
			t.Errorf("replacement %s Seq %d, want > %d", typ, repl.Seq, first.Seq)
		}
		got, err := s.GetCredential(ctx, typ, u.ID)
		e.must(err)
		want := repl
		want.OwnerActive = true
		diff(t, "replaced "+string(typ), want, got)
		cs, err := s.ConsumerCredentials(ctx, u.ID)
		e.must(err)
		n := 0
		for _, c := range cs {
			if c.Type == typ {
				n++
			}
		}
		if n != 1 {
			t.Errorf("ConsumerCredentials lists %d %s credentials, want 1", n, typ)
		}
		all := walk(t, 10, func(start int64) (core.Page[core.Credential], error) {
			return s.ListCredentials(ctx, core.ListOptions{Start: start, Count: 10})
		})
		n = 0
		for _, c := range all {
			if c.Type == typ {
				n++
			}
		}
		if n != 1 {
			t.Errorf("ListCredentials lists %d %s credentials, want 1", n, typ)
		}
	}
}

// testDerivedState: deactivating a user or an app shows in its apps' and
// credentials' OwnerActive, never in their own flags, and reactivating restores.
func testDerivedState(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("boss")
	app := e.createApp(u.ID, "tool")
	e.createCred(core.KeyAuth, "ku", u.ID, u.ID)
	e.createCred(core.KeyAuth, "ka", app.ID, u.ID)
	e.createCred(core.BasicAuth, "", app.ID, u.ID)

	type state struct{ App, AppOwner, KU, KUOwner, KA, KAOwner, BA, BAOwner bool }
	read := func() state {
		t.Helper()
		a, err := s.GetApp(ctx, app.ID)
		e.must(err)
		ku, err := s.GetCredential(ctx, core.KeyAuth, "ku")
		e.must(err)
		ka, err := s.GetCredential(ctx, core.KeyAuth, "ka")
		e.must(err)
		ba, err := s.GetCredential(ctx, core.BasicAuth, app.ID)
		e.must(err)
		// Lists derive the same state.
		apps, err := s.ListApps(ctx, core.ListOptions{Count: 10, UserID: u.ID})
		e.must(err)
		if len(apps.Items) != 1 || apps.Items[0].OwnerActive != a.OwnerActive {
			t.Errorf("ListApps disagrees with GetApp on OwnerActive: %+v", apps.Items)
		}
		cs, err := s.ConsumerCredentials(ctx, app.ID)
		e.must(err)
		for _, c := range cs {
			if c.OwnerActive != ka.OwnerActive {
				t.Errorf("ConsumerCredentials(app) %s OwnerActive %v, GetCredential says %v", c.ID, c.OwnerActive, ka.OwnerActive)
			}
		}
		return state{a.IsActive, a.OwnerActive, ku.IsActive, ku.OwnerActive, ka.IsActive, ka.OwnerActive, ba.IsActive, ba.OwnerActive}
	}
	setUser := func(active bool) {
		t.Helper()
		_, err := s.UpdateUser(ctx, u.ID, func(x *core.User) error { x.IsActive = active; return nil })
		e.must(err)
	}
	setApp := func(active bool) {
		t.Helper()
		got, err := s.UpdateApp(ctx, app.ID, func(a *core.App) error { a.IsActive = active; return nil })
		e.must(err)
		if got.IsActive != active {
			t.Errorf("UpdateApp returned IsActive %v", got.IsActive)
		}
	}
	all := state{true, true, true, true, true, true, true, true}
	diff(t, "initial state", all, read())
	setUser(false)
	diff(t, "user deactivated", state{true, false, true, false, true, false, true, false}, read())
	got, err := s.UpdateCredential(ctx, core.KeyAuth, "ka", func(c *core.Credential) error { return nil })
	e.must(err)
	if got.OwnerActive {
		t.Error("UpdateCredential of a deactivated user's key reports OwnerActive")
	}
	setUser(true)
	diff(t, "user reactivated", all, read())
	setApp(false)
	diff(t, "app deactivated", state{false, true, true, true, true, false, true, false}, read())
	setUser(false)
	diff(t, "both deactivated", state{false, false, true, false, true, false, true, false}, read())
	setUser(true)
	setApp(true)
	diff(t, "both reactivated", all, read())
}

// testDeleteUser: a deleted user's apps, credentials and names are gone, and its
// names are free again.
func testDeleteUser(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	keep := e.createUser("keeper")
	keepApp := e.createApp(keep.ID, "Shared")
	keepCred := e.createCred(core.KeyAuth, "keep", keep.ID, keep.ID)

	build := func() (core.User, []core.App, []core.Credential) {
		u := e.newUser("victim")
		u.ExternalID = "ext-victim"
		e.must(s.CreateUser(ctx, &u))
		a1, a2 := e.createApp(u.ID, "Shared"), e.createApp(u.ID, "Solo")
		cs := []core.Credential{
			e.createCred(core.KeyAuth, "vk", u.ID, u.ID),
			e.createCred(core.JWT, "vj", u.ID, u.ID),
			e.createCred(core.BasicAuth, "", u.ID, u.ID),
			e.createCred(core.KeyAuth, "vak", a1.ID, u.ID),
			e.createCred(core.OAuth2, "", a2.ID, u.ID),
		}
		return u, []core.App{a1, a2}, cs
	}
	before := e.keys(s)
	u, apps, cs := build()
	e.must(s.DeleteUser(ctx, u.ID))
	diff(t, "raw keys after DeleteUser", before, e.keys(s))

	for _, a := range apps {
		_, err := s.GetApp(ctx, a.ID)
		wantKind(t, err, core.NotFound, "GetApp of a deleted user's app")
	}
	for _, c := range cs {
		_, err := s.GetCredential(ctx, c.Type, c.ID)
		wantKind(t, err, core.NotFound, "GetCredential of a deleted user's "+string(c.Type))
	}
	byName, err := s.AppsByName(ctx, "Shared")
	e.must(err)
	want := keepApp
	want.OwnerActive = true
	diff(t, "AppsByName after DeleteUser", []core.App{want}, byName)
	for _, kind := range []core.NameKind{core.NameUsername, core.NameEmail, core.NameExternalID} {
		v := map[core.NameKind]string{core.NameUsername: "victim", core.NameEmail: "victim@example.com", core.NameExternalID: "ext-victim"}[kind]
		_, err := s.UserByName(ctx, kind, v)
		wantKind(t, err, core.NotFound, "UserByName of a deleted user's "+string(kind))
	}
	appsPage, err := s.ListApps(ctx, core.ListOptions{Count: 100})
	e.must(err)
	credsPage, err := s.ListCredentials(ctx, core.ListOptions{Count: 100})
	e.must(err)
	if len(appsPage.Items) != 1 || appsPage.Total != 1 || len(credsPage.Items) != 1 || credsPage.Total != 1 {
		t.Errorf("after DeleteUser: %d apps (Total %d), %d credentials (Total %d); want 1 of each",
			len(appsPage.Items), appsPage.Total, len(credsPage.Items), credsPage.Total)
	}

	// Every name is free again: the same user can be created anew.
	u2, _, _ := build()
	if u2.ID == u.ID {
		t.Fatal("the new user reused the id")
	}
	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, keep)
		replayApp(t, f, keepApp)
		replayCred(t, f, keepCred)
		replayUser(t, f, u2)
		apps, err := s.ListApps(ctx, core.ListOptions{Count: 100, UserID: u2.ID})
		e.must(err)
		for _, a := range apps.Items {
			replayApp(t, f, a)
		}
		creds, err := s.ListCredentials(ctx, core.ListOptions{Count: 100, UserID: u2.ID})
		e.must(err)
		for _, c := range creds.Items {
			replayCred(t, f, c)
		}
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testDeleteApp: a deleted app's credentials go with it and their keyIds are free.
func testDeleteApp(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("appowner")
	own := e.createCred(core.KeyAuth, "own", u.ID, u.ID)
	app := e.createApp(u.ID, "Doomed")
	e.createCred(core.KeyAuth, "ak", app.ID, u.ID)
	e.createCred(core.BasicAuth, "", app.ID, u.ID)
	e.must(s.DeleteApp(ctx, app.ID))
	_, err := s.GetCredential(ctx, core.KeyAuth, "ak")
	wantKind(t, err, core.NotFound, "an app's key after DeleteApp")
	_, err = s.GetCredential(ctx, core.BasicAuth, app.ID)
	wantKind(t, err, core.NotFound, "an app's basic-auth after DeleteApp")
	got, err := s.GetCredential(ctx, core.KeyAuth, "own")
	e.must(err)
	if got.Seq != own.Seq {
		t.Errorf("the user's own key changed: %+v", got)
	}
	ak := e.createCred(core.KeyAuth, "ak", u.ID, u.ID) // the keyId is free
	again := e.createApp(u.ID, "Doomed")               // and so is the name
	page, err := s.ListCredentials(ctx, core.ListOptions{Count: 10, UserID: u.ID})
	e.must(err)
	if page.Total != 2 || len(page.Items) != 2 {
		t.Errorf("ListCredentials of the owner: %d items, Total %d; want 2", len(page.Items), page.Total)
	}
	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, u)
		replayCred(t, f, own)
		replayApp(t, f, again)
		replayCred(t, f, ak)
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}
