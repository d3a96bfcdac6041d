package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// identity returns an identity at provider with little more than its subject.
func identity(provider, subject string) core.Identity {
	return core.Identity{Provider: provider, Subject: subject, LinkedAt: epoch}
}

// wantUserByIdentity fails unless (provider, subject) names want.
func (e *env) wantUserByIdentity(provider, subject string, want core.User) {
	e.t.Helper()
	got, err := e.s.UserByIdentity(e.ctx, provider, subject)
	if err != nil {
		e.t.Fatalf("UserByIdentity(%s, %s): %v", provider, subject, err)
	}
	diff(e.t, "UserByIdentity("+provider+", "+subject+")", want, got)
}

// wantNoUserByIdentity fails unless (provider, subject) is NotFound.
func (e *env) wantNoUserByIdentity(provider, subject, what string) {
	e.t.Helper()
	_, err := e.s.UserByIdentity(e.ctx, provider, subject)
	wantKind(e.t, err, core.NotFound, what)
}

// testIdentities: identities round-trip with their raw claims; an identity at a
// provider other than "email" belongs to one user at a time, and is free again
// once its user is deleted; "email" identities are unique through the email.
func testIdentities(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	linked := e.clock.Now()
	u := e.newUser("ida")
	u.EmailVerified = true
	u.Identities = []core.Identity{
		{
			Provider: "google", Subject: "g-123", Email: "ida@example.com", EmailVerified: true,
			DisplayName: "Ida L", GivenName: "Ida", FamilyName: "Lovelace", AvatarURL: "https://img.example/ida.png",
			RawClaims: map[string]any{
				"sub": "g-123", "email_verified": true, "iat": float64(1_700_000_000), "hd": nil,
				"groups": []any{"a", "b"}, "address": map[string]any{"country": "UK"},
			},
			LinkedAt: linked,
		},
		{Provider: "github", Subject: "42", Username: "ida-gh", LinkedAt: linked.Add(time.Minute)},
	}
	e.must(s.CreateUser(ctx, &u))
	got, err := s.GetUser(ctx, u.ID)
	e.must(err)
	diff(t, "GetUser with identities", u, got)
	if len(got.Identities) == 0 || got.Identities[0].Provider != "google" {
		t.Errorf("first identity = %+v; want the google one", got.Identities)
	}
	e.wantUserByIdentity("google", "g-123", u)
	e.wantUserByIdentity("github", "42", u)
	e.wantNoUserByIdentity("google", "g-999", "UserByIdentity of an unknown subject")
	e.wantNoUserByIdentity("gitlab", "g-123", "UserByIdentity of a subject at another provider")
	e.wantNoUserByIdentity("", "g-123", "UserByIdentity without a provider")
	e.wantNoUserByIdentity("google", "", "UserByIdentity without a subject")
	e.wantNoUserByIdentity("goo:gle", "g-123", "UserByIdentity of a provider with ':'")

	// One (provider, subject) per store: Conflict names it, and a failed create
	// leaves nothing behind.
	before := e.keys(s)
	v := e.newUser("vic")
	v.Identities = []core.Identity{identity("google", "g-123")}
	wantConflict(t, s.CreateUser(ctx, &v), "a taken identity", "google", "g-123")
	v.Identities = []core.Identity{identity("gitlab", "new"), identity("github", "42")}
	wantConflict(t, s.CreateUser(ctx, &v), "a taken second identity", "github", "42")
	diff(t, "keys after failed creates", before, e.keys(s))
	e.wantNoUserByIdentity("gitlab", "new", "the identity of a failed create")
	// The same subject at another provider is another identity.
	v.Identities = []core.Identity{identity("gitlab", "g-123"), identity("gitlab", "new")}
	e.must(s.CreateUser(ctx, &v))
	e.wantUserByIdentity("gitlab", "g-123", v)
	e.wantUserByIdentity("google", "g-123", u)

	// Malformed identities are refused before anything is claimed.
	for _, bad := range []core.Identity{identity("", "x"), identity("goo:gle", "x"), identity("google", "")} {
		b := e.newUser("bad")
		b.Identities = []core.Identity{bad}
		wantKind(t, s.CreateUser(ctx, &b), core.Invalid, "CreateUser with identity "+bad.Provider+"/"+bad.Subject)
	}

	// "email" identities hold no identity name of their own: the email is the
	// unique name.
	m := e.newUser("mail")
	m.Identities = []core.Identity{{Provider: "email", Subject: m.Email, Email: m.Email, LinkedAt: linked}}
	e.must(s.CreateUser(ctx, &m))
	e.wantNoUserByIdentity("email", m.Email, `UserByIdentity("email", …)`)
	for _, k := range e.keys(s) {
		if strings.Contains(k, "claim:identity:email:") {
			t.Errorf("an email identity was claimed: raw key %q", k)
		}
	}
	m2 := e.newUser("mail2")
	m2.Email = m.Email
	m2.Identities = m.Identities
	wantConflict(t, s.CreateUser(ctx, &m2), "a second email sign-up of one address", "email")

	// Deleting the user frees its identities.
	e.must(s.DeleteUser(ctx, u.ID))
	e.wantNoUserByIdentity("google", "g-123", "UserByIdentity after DeleteUser")
	e.wantNoUserByIdentity("github", "42", "UserByIdentity of the second identity after DeleteUser")
	w := e.newUser("wes")
	w.Identities = []core.Identity{identity("google", "g-123"), identity("github", "42")}
	e.must(s.CreateUser(ctx, &w))
	e.wantUserByIdentity("google", "g-123", w)

	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, v)
		replayUser(t, f, m)
		replayUser(t, f, w)
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testIdentitiesUpdate: linking an identity claims it (Conflict if another user
// holds it, and nothing changes), unlinking frees it, other changes to an
// identity keep it.
func testIdentitiesUpdate(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.newUser("una")
	u.Identities = []core.Identity{identity("google", "una")}
	e.must(s.CreateUser(ctx, &u))
	v := e.newUser("val")
	v.Identities = []core.Identity{identity("github", "val")}
	e.must(s.CreateUser(ctx, &v))
	link := func(ids ...core.Identity) func(*core.User) error {
		return func(x *core.User) error { x.Identities = append(x.Identities, ids...); return nil }
	}

	_, err := s.UpdateUser(ctx, u.ID, link(identity("gitlab", "una"), identity("github", "val")))
	wantConflict(t, err, "linking an identity another user holds", "github", "val")
	got, err := s.GetUser(ctx, u.ID)
	e.must(err)
	diff(t, "identities after a refused link", u.Identities, got.Identities)
	e.wantNoUserByIdentity("gitlab", "una", "the other identity of a refused link")
	e.wantUserByIdentity("github", "val", v)

	u, err = s.UpdateUser(ctx, u.ID, link(identity("gitlab", "una")))
	e.must(err)
	e.wantUserByIdentity("gitlab", "una", u)
	e.wantUserByIdentity("google", "una", u)

	// New claims and profile of a linked identity: no name changes.
	u, err = s.UpdateUser(ctx, u.ID, func(x *core.User) error {
		x.Identities[0].RawClaims = map[string]any{"name": "Una", "n": float64(2)}
		x.Identities[0].DisplayName = "Una"
		return nil
	})
	e.must(err)
	e.wantUserByIdentity("google", "una", u)
	diff(t, "updated raw claims", map[string]any{"name": "Una", "n": float64(2)}, u.Identities[0].RawClaims)

	// Unlinking frees the identity for another user.
	u, err = s.UpdateUser(ctx, u.ID, func(x *core.User) error {
		x.Identities = slices.DeleteFunc(x.Identities, func(i core.Identity) bool { return i.Provider == "gitlab" })
		return nil
	})
	e.must(err)
	e.wantNoUserByIdentity("gitlab", "una", "UserByIdentity of an unlinked identity")
	v, err = s.UpdateUser(ctx, v.ID, link(identity("gitlab", "una")))
	e.must(err)
	e.wantUserByIdentity("gitlab", "una", v)

	// A link that overruns its deadline is undone.
	e.clock.SetStep(2 * StaleAfter)
	_, err = s.UpdateUser(ctx, u.ID, link(identity("bitbucket", "una")))
	e.clock.SetStep(0)
	wantConflict(t, err, "a link that overran its deadline")
	got, err = s.GetUser(ctx, u.ID)
	e.must(err)
	diff(t, "identities after an overrun link", u.Identities, got.Identities)
	e.wantNoUserByIdentity("bitbucket", "una", "the identity of an overrun link")

	// Malformed identities are refused by an update too.
	_, err = s.UpdateUser(ctx, v.ID, link(identity("a:b", "c")))
	wantKind(t, err, core.Invalid, "UpdateUser with a provider holding ':'")

	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, u)
		replayUser(t, f, v)
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testIdentityClaims: identity claims left by crashes follow the rules of every
// other claim: stale ones are taken over (by a create or an update) and reported
// by Doctor, fresh ones block, a claim its owner's record lists never goes stale.
func testIdentityClaims(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	now := e.clock.Now()
	leave := func(name, owner string, at time.Time) {
		t.Helper()
		h.LeaveClaim(t, s, Claim{Kind: "identity", Name: name, Owner: owner, At: at})
	}

	leave("google:stale", core.NewID(), now.Add(-2*StaleAfter))
	st := e.newUser("stale")
	st.Identities = []core.Identity{identity("google", "stale")}
	e.must(s.CreateUser(ctx, &st))
	e.wantUserByIdentity("google", "stale", st)

	leave("google:fresh", core.NewID(), now)
	fr := e.newUser("fresh")
	fr.Identities = []core.Identity{identity("google", "fresh")}
	wantConflict(t, s.CreateUser(ctx, &fr), "a fresh identity claim", "google", "fresh")
	e.wantNoUserByIdentity("google", "fresh", "UserByIdentity of a claimed but unwritten identity")

	// An unlink whose release was lost: the owner exists but no longer lists it.
	holder := e.createUser("holder")
	leave("github:lost", holder.ID, now)
	e.wantNoUserByIdentity("github", "lost", "UserByIdentity of an identity its claim's owner does not list")

	e.clock.Advance(2 * StaleAfter)
	r, err := s.Doctor(ctx, false)
	e.must(err)
	for _, name := range []string{"google:fresh", "github:lost"} {
		if !slices.ContainsFunc(r.StaleClaims, func(l string) bool { return strings.Contains(l, name) }) {
			t.Errorf("Doctor did not report the stale identity claim %s: %q", name, r.StaleClaims)
		}
	}
	if slices.ContainsFunc(r.StaleClaims, func(l string) bool { return strings.Contains(l, "google:stale") }) {
		t.Errorf("Doctor reports a claim its owner holds: %q", r.StaleClaims)
	}
	e.must(s.CreateUser(ctx, &fr))
	_, err = s.UpdateUser(ctx, holder.ID, func(x *core.User) error {
		x.Identities = []core.Identity{identity("github", "lost")}
		return nil
	})
	e.must(err)
	dup := e.newUser("dup")
	dup.Identities = []core.Identity{identity("google", "stale")}
	wantConflict(t, s.CreateUser(ctx, &dup), "an old identity claim its owner holds", "google", "stale")
	e.doctorClean(s)
}

// testExpiring: ExpiredUsers lists the users due at a time, soonest first, up to
// a limit, and follows creates, updates and deletes.
func testExpiring(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	at := func(d time.Duration) time.Time { return epoch.Add(d) }
	create := func(name string, exp time.Time) core.User {
		t.Helper()
		u := e.newUser(name)
		u.ExpiresAt = exp
		u.Identities = []core.Identity{{Provider: "email", Subject: u.Email, Email: u.Email, LinkedAt: epoch}}
		e.must(s.CreateUser(ctx, &u))
		return u
	}
	expired := func(t0 time.Time, limit int) []string {
		t.Helper()
		ids, err := s.ExpiredUsers(ctx, t0, limit)
		e.must(err)
		return ids
	}
	a := create("a", at(time.Hour))
	b := create("b", at(30*time.Minute))
	c := create("c", at(2*time.Hour))
	d := create("d", time.Time{})
	x := create("x", at(3*time.Hour))
	got, err := s.GetUser(ctx, a.ID)
	e.must(err)
	diff(t, "GetUser of an expiring user", a, got)

	diff(t, "ExpiredUsers before any is due", []string{}, expired(at(0), 10))
	diff(t, "ExpiredUsers at a's ExpiresAt", []string{b.ID, a.ID}, expired(at(time.Hour), 10))
	diff(t, "ExpiredUsers just before it", []string{b.ID}, expired(at(time.Hour-time.Microsecond), 10))
	diff(t, "ExpiredUsers with limit 1", []string{b.ID}, expired(at(time.Hour), 1))
	diff(t, "ExpiredUsers of all", []string{b.ID, a.ID, c.ID, x.ID}, expired(at(5*time.Hour), 10))
	diff(t, "ExpiredUsers with limit 0", []string{}, expired(at(5*time.Hour), 0))

	set := func(id string, exp time.Time) core.User {
		t.Helper()
		u, err := s.UpdateUser(ctx, id, func(u *core.User) error { u.ExpiresAt = exp; return nil })
		e.must(err)
		return u
	}
	a = set(a.ID, time.Time{}) // verified
	c = set(c.ID, at(10*time.Minute))
	d = set(d.ID, at(4*time.Hour))
	b, err = s.UpdateUser(ctx, b.ID, func(u *core.User) error { u.RedirectURI = "https://b.example/cb"; return nil })
	e.must(err)
	e.must(s.DeleteUser(ctx, x.ID))
	diff(t, "ExpiredUsers after updates and a delete", []string{c.ID, b.ID, d.ID}, expired(at(5*time.Hour), 10))
	diff(t, "ExpiredUsers at the moved ExpiresAt", []string{c.ID}, expired(at(20*time.Minute), 10))
	got, err = s.GetUser(ctx, a.ID)
	e.must(err)
	if !got.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt after clearing it: %v", got.ExpiresAt)
	}

	e.sameKeys(s, func(f core.Store) {
		for _, u := range []core.User{a, b, c, d} {
			replayUser(t, f, u)
		}
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testExpiringDoctor: writes interrupted after the user's own write leave the
// expiring index out of step; ExpiredUsers never returns a user that is gone,
// and Doctor reports and repairs both directions.
func testExpiringDoctor(t *testing.T, h Harness) {
	if h.Interrupt == nil {
		t.Skip("the harness cannot interrupt writes")
	}
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	later := epoch.Add(5 * time.Hour)
	gone := e.newUser("gone")
	gone.ExpiresAt = epoch.Add(time.Hour)
	e.must(s.CreateUser(ctx, &gone))
	h.Interrupt(t, s)
	if err := s.DeleteUser(ctx, gone.ID); err == nil {
		t.Fatal("interrupted DeleteUser succeeded")
	}
	half := e.newUser("half")
	half.ExpiresAt = epoch.Add(2 * time.Hour)
	h.Interrupt(t, s)
	if err := s.CreateUser(ctx, &half); err == nil {
		t.Fatal("interrupted CreateUser succeeded")
	}
	e.clock.Advance(2 * StaleAfter)

	r, err := s.Doctor(ctx, false)
	e.must(err)
	for _, id := range []string{gone.ID, half.ID} {
		if !slices.ContainsFunc(r.DanglingIndex, func(l string) bool { return strings.Contains(l, "expiring") && strings.Contains(l, id) }) {
			t.Errorf("Doctor did not report the expiring entry of %s: %q", id, r.DanglingIndex)
		}
	}
	ids, err := s.ExpiredUsers(ctx, later, 10)
	e.must(err)
	if slices.Contains(ids, gone.ID) {
		t.Errorf("ExpiredUsers returns a deleted user: %q", ids)
	}
	_, err = s.Doctor(ctx, true)
	e.must(err)
	e.doctorClean(s)
	ids, err = s.ExpiredUsers(ctx, later, 10)
	e.must(err)
	diff(t, "ExpiredUsers after repair", []string{half.ID}, ids)
}
