package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// testReadAuth: ReadAuth returns the parts a query names, with the owners' state
// derived, the scope registry (none with SkipRegistries), nil for what is
// missing, and NotFound for a missing user.
func testReadAuth(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("verifier")
	app := e.createApp(u.ID, "gateway")
	other := e.createApp(u.ID, "other")
	e.must(s.CreateScopes(ctx, []core.Scope{{Name: "read", Reg: "r1", CreatedAt: epoch}, {Name: "write", Reg: "w1", CreatedAt: epoch}}))
	registry := map[string]string{"read": "r1", "write": "w1"}
	ku := e.newCred(core.KeyAuth, "ku", u.ID, u.ID)
	ku.Scopes = []core.ScopeGrant{{Name: "read", Reg: "r1"}}
	e.must(s.CreateCredential(ctx, &ku))
	ka := e.createCred(core.KeyAuth, "ka", app.ID, u.ID)
	ba := e.createCred(core.BasicAuth, "", app.ID, u.ID)
	e.must(s.SetPassword(ctx, u.ID, testPHC))
	e.must(s.SetUserSecret(ctx, u.ID, core.HashSHA256("secret")))
	sess := e.createSession(newSession(u.ID, epoch, time.Hour), 10)
	tok := e.createSession(newToken(u.ID, app.ID, epoch, time.Hour), 0)

	read := func(q core.AuthQuery) core.AuthRecord {
		t.Helper()
		r, err := s.ReadAuth(ctx, q)
		e.must(err)
		return r
	}
	ref := func(typ core.CredentialType, id string) *core.CredentialRef {
		return &core.CredentialRef{Type: typ, ID: id}
	}
	// state fills the derived flags of copies of the stored values.
	state := func(userActive, appActive bool) (core.User, core.App, core.Credential, core.Credential, core.Credential) {
		uu := u
		uu.IsActive = userActive
		a := app
		a.IsActive, a.OwnerActive = appActive, userActive
		cu, ca, cb := ku, ka, ba
		cu.OwnerActive = userActive
		ca.OwnerActive, cb.OwnerActive = userActive && appActive, userActive && appActive
		return uu, a, cu, ca, cb
	}
	check := func(what string, userActive, appActive bool) {
		t.Helper()
		uu, a, cu, ca, cb := state(userActive, appActive)
		diff(t, what+": a user's key with password and secret",
			core.AuthRecord{User: uu, Credential: &cu, PasswordHash: testPHC, SecretHash: core.HashSHA256("secret"), Scopes: registry},
			read(core.AuthQuery{UserID: u.ID, Credential: ref(core.KeyAuth, "ku"), Password: true, Secret: true}))
		diff(t, what+": an app's key, its app derived from the record",
			core.AuthRecord{User: uu, Credential: &ca, App: &a, Scopes: registry},
			read(core.AuthQuery{UserID: u.ID, Credential: ref(core.KeyAuth, "ka")}))
		// ConsumerApp only saves a round trip: the record is the same with
		// the right app named, another, or one for a user's own credential.
		for _, hint := range []string{app.ID, other.ID} {
			diff(t, what+": an app's key, an app named as its consumer",
				core.AuthRecord{User: uu, Credential: &ca, App: &a, Scopes: registry},
				read(core.AuthQuery{UserID: u.ID, Credential: ref(core.KeyAuth, "ka"), ConsumerApp: hint}))
			diff(t, what+": a user's key, an app named as its consumer",
				core.AuthRecord{User: uu, Credential: &cu, Scopes: registry},
				read(core.AuthQuery{UserID: u.ID, Credential: ref(core.KeyAuth, "ku"), ConsumerApp: hint}))
		}
		diff(t, what+": an app's basic-auth, its app named",
			core.AuthRecord{User: uu, Credential: &cb, App: &a, Scopes: registry},
			read(core.AuthQuery{UserID: u.ID, Credential: ref(core.BasicAuth, app.ID), AppID: app.ID}))
		diff(t, what+": an app's token, its app derived from the record",
			core.AuthRecord{User: uu, Session: &tok, App: &a, Scopes: registry},
			read(core.AuthQuery{UserID: u.ID, SessionHash: tok.Hash}))
		diff(t, what+": an app's token, read as one",
			core.AuthRecord{User: uu, Session: &tok, App: &a, Scopes: registry},
			read(core.AuthQuery{UserID: u.ID, SessionHash: tok.Hash, OAuthToken: true}))
		diff(t, what+": a login session",
			core.AuthRecord{User: uu, Session: &sess, Scopes: registry},
			read(core.AuthQuery{UserID: u.ID, SessionHash: sess.Hash}))
	}
	check("all active", true, true)
	// Lean: the same record, with only what a verification reads of the user
	// and the credential.
	lu := core.User{ID: u.ID, Username: u.Username, IsActive: true, Groups: u.Groups, Tags: u.Tags}
	lc := core.Credential{Type: ku.Type, ID: ku.ID, ConsumerID: ku.ConsumerID, ConsumerKind: ku.ConsumerKind, UserID: ku.UserID,
		IsActive: ku.IsActive, Scopes: ku.Scopes, Secret: ku.Secret, Algorithm: ku.Algorithm, ExpiresAt: ku.ExpiresAt, OwnerActive: true}
	diff(t, "Lean", core.AuthRecord{User: lu, Credential: &lc, Scopes: registry},
		read(core.AuthQuery{UserID: u.ID, Credential: ref(core.KeyAuth, "ku"), Lean: true}))
	// Without the registries: the same record, Scopes and Groups nil.
	cu := ku
	cu.OwnerActive = true
	diff(t, "SkipRegistries", core.AuthRecord{User: u, Credential: &cu, PasswordHash: testPHC},
		read(core.AuthQuery{UserID: u.ID, Credential: ref(core.KeyAuth, "ku"), Password: true, SkipRegistries: true}))
	setApp := func(active bool) {
		t.Helper()
		_, err := s.UpdateApp(ctx, app.ID, func(a *core.App) error { a.IsActive = active; return nil })
		e.must(err)
	}
	setUser := func(active bool) {
		t.Helper()
		_, err := s.UpdateUser(ctx, u.ID, func(x *core.User) error { x.IsActive = active; return nil })
		e.must(err)
	}
	setApp(false)
	check("app deactivated", true, false)
	setUser(false)
	check("both deactivated", false, false)
	setApp(true)
	check("user deactivated", false, true)
	setUser(true)
	check("both reactivated", true, true)

	// Missing parts are nil, not errors; a missing user is NotFound.
	bare := e.createUser("bare")
	e.createCred(core.KeyAuth, "kother", bare.ID, bare.ID)
	got := read(core.AuthQuery{
		UserID: bare.ID, Credential: ref(core.KeyAuth, "nope"), SessionHash: core.HashSHA256("nope"),
		Password: true, Secret: true, AppID: core.NewID(),
	})
	diff(t, "missing parts", core.AuthRecord{User: bare, Scopes: registry}, got)
	got = read(core.AuthQuery{UserID: bare.ID, Credential: ref(core.KeyAuth, "ku"), SessionHash: sess.Hash, AppID: app.ID})
	diff(t, "another user's credential, session and app", core.AuthRecord{User: bare, Scopes: registry}, got)
	_, err := s.ReadAuth(ctx, core.AuthQuery{UserID: core.NewID(), Credential: ref(core.KeyAuth, "ku")})
	wantKind(t, err, core.NotFound, "ReadAuth of a missing user")
	e.must(s.DeleteScope(ctx, "write"))
	if got := read(core.AuthQuery{UserID: u.ID}).Scopes; len(got) != 1 || got["read"] != "r1" {
		t.Errorf("registry after DeleteScope = %v", got)
	}
}

// testLocate: Locate* answer the slot from one claim or locator, NotFound once it
// is gone; a located slot that went stale reads as a missing credential.
func testLocate(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	first, second := e.newUser("First"), e.createUser("second")
	first.ExternalID = "ext-first"
	e.must(s.CreateUser(ctx, &first))
	app := e.createApp(first.ID, "located")
	e.createCred(core.KeyAuth, "moving", first.ID, first.ID)
	e.createCred(core.JWT, "jk", app.ID, first.ID)

	locate := func(what string, want string, got string, err error) {
		t.Helper()
		e.must(err)
		if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	uid, err := s.LocateCredential(ctx, core.KeyAuth, "moving")
	locate("LocateCredential(key-auth)", first.ID, uid, err)
	uid, err = s.LocateCredential(ctx, core.JWT, "jk")
	locate("LocateCredential(jwt) of an app's key", first.ID, uid, err)
	uid, err = s.LocateApp(ctx, app.ID)
	locate("LocateApp", first.ID, uid, err)
	for _, c := range []struct {
		kind  core.NameKind
		value string
	}{
		{core.NameUsername, "First"}, {core.NameUsername, usernameKey(t, "FIRST")},
		{core.NameEmail, "First@example.com"}, {core.NameEmail, core.EmailKey("first@example.com")},
		{core.NameExternalID, "ext-first"},
	} {
		uid, err = s.LocateUser(ctx, c.kind, c.value)
		locate("LocateUser("+string(c.kind)+", "+c.value+")", first.ID, uid, err)
	}
	_, err = s.LocateCredential(ctx, core.KeyAuth, "jk")
	wantKind(t, err, core.NotFound, "LocateCredential of a keyId of another type")
	_, err = s.LocateApp(ctx, core.NewID())
	wantKind(t, err, core.NotFound, "LocateApp of an unknown app")
	_, err = s.LocateUser(ctx, core.NameUsername, "nobody")
	wantKind(t, err, core.NotFound, "LocateUser of an unknown username")

	// The keyId moves to another user: the old slot reads as a missing credential,
	// and locating again finds the new one.
	e.must(s.DeleteCredential(ctx, core.KeyAuth, "moving"))
	_, err = s.LocateCredential(ctx, core.KeyAuth, "moving")
	wantKind(t, err, core.NotFound, "LocateCredential after DeleteCredential")
	e.createCred(core.KeyAuth, "moving", second.ID, second.ID)
	stale, err := s.ReadAuth(ctx, core.AuthQuery{UserID: first.ID, Credential: &core.CredentialRef{Type: core.KeyAuth, ID: "moving"}})
	e.must(err)
	if stale.Credential != nil || stale.User.ID != first.ID {
		t.Errorf("ReadAuth in a stale slot = credential %+v, user %s; want no credential, user %s", stale.Credential, stale.User.ID, first.ID)
	}
	uid, err = s.LocateCredential(ctx, core.KeyAuth, "moving")
	locate("LocateCredential after the keyId moved", second.ID, uid, err)
	moved, err := s.ReadAuth(ctx, core.AuthQuery{UserID: uid, Credential: &core.CredentialRef{Type: core.KeyAuth, ID: "moving"}})
	e.must(err)
	if moved.Credential == nil || moved.Credential.UserID != second.ID || !moved.Credential.OwnerActive {
		t.Errorf("ReadAuth in the new slot = %+v", moved.Credential)
	}

	// After deletes, NotFound.
	e.must(s.DeleteApp(ctx, app.ID))
	_, err = s.LocateApp(ctx, app.ID)
	wantKind(t, err, core.NotFound, "LocateApp after DeleteApp")
	_, err = s.LocateCredential(ctx, core.JWT, "jk")
	wantKind(t, err, core.NotFound, "LocateCredential of a deleted app's key")
	e.must(s.DeleteUser(ctx, first.ID))
	for _, c := range []struct {
		kind  core.NameKind
		value string
	}{{core.NameUsername, "First"}, {core.NameEmail, "First@example.com"}, {core.NameExternalID, "ext-first"}} {
		_, err = s.LocateUser(ctx, c.kind, c.value)
		wantKind(t, err, core.NotFound, "LocateUser("+string(c.kind)+") after DeleteUser")
	}
}
