package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// testPHC is a password hash as the store keeps it (an argon2id PHC string).
const testPHC = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

// newSession returns a login session (not stored) of user uid, created at at and
// expiring ttl later.
func newSession(uid string, at time.Time, ttl time.Duration) core.Session {
	return core.Session{
		ID: core.NewID(), Hash: core.HashSHA256(core.NewSecret("gths_", 32)), Kind: core.KindSession,
		UserID: uid, ConsumerID: uid, ConsumerKind: core.ConsumerUser, Provider: "email",
		CreatedAt: at, ExpiresAt: at.Add(ttl), ClientAddr: "192.0.2.7", UserAgent: "storetest/1",
	}
}

// newToken returns an OAuth access token (not stored) of the consumer: a user
// when consumerID is uid, else an app of user uid.
func newToken(uid, consumerID string, at time.Time, ttl time.Duration) core.Session {
	kind := core.ConsumerUser
	if consumerID != uid {
		kind = core.ConsumerApp
	}
	return core.Session{
		ID: core.NewID(), Hash: core.HashSHA256(core.NewSecret("gtho_", 32)), Kind: core.KindOAuth,
		UserID: uid, ConsumerID: consumerID, ConsumerKind: kind, Provider: "client_credentials",
		Scopes:    []core.ScopeGrant{{Name: "read", Reg: "r1"}},
		CreatedAt: at, ExpiresAt: at.Add(ttl),
	}
}

// createSession stores sess with limit and returns it.
func (e *env) createSession(sess core.Session, limit int) core.Session {
	e.t.Helper()
	e.must(e.s.CreateSession(e.ctx, sess, limit))
	return sess
}

// sessions returns Sessions(uid).
func (e *env) sessions(uid string) []core.Session {
	e.t.Helper()
	got, err := e.s.Sessions(e.ctx, uid)
	e.must(err)
	return got
}

// readSession returns what ReadAuth finds of one session or token, nil if none.
func (e *env) readSession(uid, hash string) *core.Session {
	e.t.Helper()
	r, err := e.s.ReadAuth(e.ctx, core.AuthQuery{UserID: uid, SessionHash: hash})
	e.must(err)
	return r.Session
}

// testSessions: create, list (newest first, sessions only), touch, delete one,
// delete all; a password change ends sessions but not tokens; a new secret ends
// nothing; a deleted session is never resurrected by a touch.
func testSessions(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u, other := e.createUser("sessioned"), e.createUser("bystander")
	s1 := e.createSession(newSession(u.ID, epoch, 24*time.Hour), 10)
	s2 := e.createSession(newSession(u.ID, epoch.Add(time.Second), 24*time.Hour), 10)
	tok := e.createSession(newToken(u.ID, u.ID, epoch, time.Hour), 10)
	o1 := e.createSession(newSession(other.ID, epoch, time.Hour), 10)
	diff(t, "Sessions, newest first, without tokens", []core.Session{s2, s1}, e.sessions(u.ID))
	diff(t, "ReadAuth of a token", &tok, e.readSession(u.ID, tok.Hash))
	diff(t, "Sessions of an unknown user", []core.Session{}, e.sessions(core.NewID()))

	wantKind(t, s.CreateSession(ctx, newSession(core.NewID(), epoch, time.Hour), 10), core.NotFound, "CreateSession of a missing user")
	bad := newSession(u.ID, epoch, time.Hour)
	bad.Hash = "plain-token"
	wantKind(t, s.CreateSession(ctx, bad, 10), core.Invalid, "CreateSession with a malformed hash")

	// Touch: lastSeenAt moves forward only.
	seen := epoch.Add(5*time.Minute + 123*time.Nanosecond)
	e.must(s.TouchSession(ctx, u.ID, s1.Hash, seen))
	e.must(s.TouchSession(ctx, u.ID, s1.Hash, seen.Add(-time.Minute)))
	s1.LastSeenAt = seen
	diff(t, "Sessions after a touch", []core.Session{s2, s1}, e.sessions(u.ID))

	// Delete one: gone for good, and a late touch does not bring it back.
	e.must(s.DeleteSession(ctx, u.ID, s1.Hash))
	wantKind(t, s.DeleteSession(ctx, u.ID, s1.Hash), core.NotFound, "DeleteSession twice")
	wantKind(t, s.DeleteSession(ctx, other.ID, s2.Hash), core.NotFound, "DeleteSession of another user's session")
	e.must(s.TouchSession(ctx, u.ID, s1.Hash, seen.Add(time.Hour)))
	e.must(s.TouchSession(ctx, u.ID, core.HashSHA256("never"), seen))
	if got := e.readSession(u.ID, s1.Hash); got != nil {
		t.Errorf("a touch resurrected a deleted session: %+v", got)
	}
	wantKind(t, s.DeleteSession(ctx, u.ID, s1.Hash), core.NotFound, "DeleteSession after a late touch")
	diff(t, "Sessions after DeleteSession", []core.Session{s2}, e.sessions(u.ID))

	// A password ends every login session, not the tokens.
	e.must(s.SetPassword(ctx, u.ID, testPHC))
	diff(t, "Sessions after SetPassword", []core.Session{}, e.sessions(u.ID))
	if e.readSession(u.ID, s2.Hash) != nil {
		t.Error("a session survived SetPassword")
	}
	diff(t, "a token after SetPassword", &tok, e.readSession(u.ID, tok.Hash))
	diff(t, "another user's sessions after SetPassword", []core.Session{o1}, e.sessions(other.ID))
	wantKind(t, s.SetPassword(ctx, core.NewID(), testPHC), core.NotFound, "SetPassword of a missing user")

	// A new secret replaces the old one and ends nothing.
	s3 := e.createSession(newSession(u.ID, epoch.Add(time.Minute), time.Hour), 10)
	e.must(s.SetUserSecret(ctx, u.ID, core.HashSHA256("first")))
	e.must(s.SetUserSecret(ctx, u.ID, core.HashSHA256("second")))
	diff(t, "Sessions after SetUserSecret", []core.Session{s3}, e.sessions(u.ID))
	wantKind(t, s.SetUserSecret(ctx, core.NewID(), core.HashSHA256("x")), core.NotFound, "SetUserSecret of a missing user")
	r, err := s.ReadAuth(ctx, core.AuthQuery{UserID: u.ID, Password: true, Secret: true})
	e.must(err)
	if r.PasswordHash != testPHC || r.SecretHash != core.HashSHA256("second") {
		t.Errorf("ReadAuth password %q, secret %q", r.PasswordHash, r.SecretHash)
	}

	// Force logout: every session and token, and nothing else.
	e.must(s.DeleteSessions(ctx, u.ID))
	diff(t, "Sessions after DeleteSessions", []core.Session{}, e.sessions(u.ID))
	if e.readSession(u.ID, tok.Hash) != nil {
		t.Error("a token survived DeleteSessions")
	}
	wantKind(t, s.DeleteSessions(ctx, core.NewID()), core.NotFound, "DeleteSessions of a missing user")
	e.must(s.DeleteSession(ctx, other.ID, o1.Hash))
	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, u)
		replayUser(t, f, other)
		if err := f.SetPassword(ctx, u.ID, testPHC); err != nil {
			t.Fatal(err)
		}
		if err := f.SetUserSecret(ctx, u.ID, core.HashSHA256("second")); err != nil {
			t.Fatal(err)
		}
	})
}

// testSessionsLimit: the oldest sessions beyond the limit are evicted, even under
// concurrent logins; tokens have no limit.
func testSessionsLimit(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("limited")
	s1 := e.createSession(newSession(u.ID, epoch, time.Hour), 2)
	s2 := e.createSession(newSession(u.ID, epoch.Add(time.Second), time.Hour), 2)
	s3 := e.createSession(newSession(u.ID, epoch.Add(2*time.Second), time.Hour), 2)
	diff(t, "Sessions beyond the limit", []core.Session{s3, s2}, e.sessions(u.ID))
	if e.readSession(u.ID, s1.Hash) != nil {
		t.Error("the evicted session can still be read")
	}
	wantKind(t, s.DeleteSession(ctx, u.ID, s1.Hash), core.NotFound, "DeleteSession of an evicted session")
	// A lower limit evicts down to it; no limit keeps all.
	s4 := e.createSession(newSession(u.ID, epoch.Add(3*time.Second), time.Hour), 1)
	diff(t, "Sessions after a lower limit", []core.Session{s4}, e.sessions(u.ID))
	s5 := e.createSession(newSession(u.ID, epoch.Add(4*time.Second), time.Hour), 0)
	s6 := e.createSession(newSession(u.ID, epoch.Add(5*time.Second), time.Hour), 0)
	diff(t, "Sessions without a limit", []core.Session{s6, s5, s4}, e.sessions(u.ID))

	// Tokens: no limit, and they do not count against sessions.
	var toks []core.Session
	for i := range 3 {
		toks = append(toks, e.createSession(newToken(u.ID, u.ID, epoch.Add(time.Duration(i)*time.Second), time.Hour), 1))
	}
	for _, tok := range toks {
		if e.readSession(u.ID, tok.Hash) == nil {
			t.Error("a token was evicted by a limit")
		}
	}
	diff(t, "Sessions after tokens", []core.Session{s6, s5, s4}, e.sessions(u.ID))

	// Ten concurrent logins with a limit of 3 leave the 3 newest.
	c := e.createUser("crowded")
	var wg sync.WaitGroup
	all := make([]core.Session, 10)
	for i := range all {
		all[i] = newSession(c.ID, epoch.Add(time.Duration(i)*time.Second), time.Hour)
		wg.Go(func() {
			if err := s.CreateSession(ctx, all[i], 3); err != nil {
				t.Errorf("concurrent CreateSession: %v", err)
			}
		})
	}
	wg.Wait()
	diff(t, "Sessions after concurrent logins", []core.Session{all[9], all[8], all[7]}, e.sessions(c.ID))
}

// testSessionsExpiry: an expired session is not listed, and the next login drops
// it before counting the limit.
func testSessionsExpiry(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("expiring")
	// The expired one is not the oldest, so only dropping it first keeps long
	// within a limit of 2 below.
	long := e.createSession(newSession(u.ID, epoch, 24*time.Hour), 2)
	short := e.createSession(newSession(u.ID, epoch.Add(time.Minute), time.Hour), 2)
	diff(t, "Sessions before expiry", []core.Session{short, long}, e.sessions(u.ID))
	e.clock.Set(epoch.Add(2 * time.Hour))
	diff(t, "Sessions after one expired", []core.Session{long}, e.sessions(u.ID))
	next := e.createSession(newSession(u.ID, epoch.Add(2*time.Hour), 24*time.Hour), 2)
	diff(t, "Sessions after the next login", []core.Session{next, long}, e.sessions(u.ID))
	wantKind(t, s.DeleteSession(ctx, u.ID, short.Hash), core.NotFound, "DeleteSession of a session dropped on expiry")
	// Expired tokens go the same way at the next token.
	tok := e.createSession(newToken(u.ID, u.ID, epoch.Add(2*time.Hour), time.Minute), 0)
	e.clock.Set(epoch.Add(3 * time.Hour))
	e.createSession(newToken(u.ID, u.ID, epoch.Add(3*time.Hour), time.Minute), 0)
	wantKind(t, s.DeleteSession(ctx, u.ID, tok.Hash), core.NotFound, "DeleteSession of a token dropped on expiry")
}

// testSessionsDelete: deleting a user leaves none of its sessions, tokens,
// password or secret behind; deleting an app deletes its tokens only.
func testSessionsDelete(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	keep := e.createUser("stays")
	keepApp := e.createApp(keep.ID, "kept")
	keepSess := e.createSession(newSession(keep.ID, epoch, time.Hour), 10)
	keepTok := e.createSession(newToken(keep.ID, keepApp.ID, epoch, time.Hour), 0)
	before := e.keys(s)

	u := e.createUser("leaving")
	app, app2 := e.createApp(u.ID, "gone"), e.createApp(u.ID, "staying")
	e.must(s.SetPassword(ctx, u.ID, testPHC))
	e.must(s.SetUserSecret(ctx, u.ID, core.HashSHA256("s")))
	e.createSession(newSession(u.ID, epoch, time.Hour), 10)
	e.createSession(newSession(u.ID, epoch.Add(time.Second), time.Hour), 10)
	own := e.createSession(newToken(u.ID, u.ID, epoch, time.Hour), 0)
	appTok := e.createSession(newToken(u.ID, app.ID, epoch, time.Hour), 0)
	app2Tok := e.createSession(newToken(u.ID, app2.ID, epoch, time.Hour), 0)

	// DeleteApp takes the app's tokens, not the user's nor another app's.
	e.must(s.DeleteApp(ctx, app.ID))
	if e.readSession(u.ID, appTok.Hash) != nil {
		t.Error("a deleted app's token can still be read")
	}
	wantKind(t, s.DeleteSession(ctx, u.ID, appTok.Hash), core.NotFound, "DeleteSession of a deleted app's token")
	for _, tok := range []core.Session{own, app2Tok} {
		if e.readSession(u.ID, tok.Hash) == nil {
			t.Errorf("DeleteApp deleted the token of %s", tok.ConsumerID)
		}
	}

	e.must(s.DeleteUser(ctx, u.ID))
	diff(t, "raw keys after DeleteUser", before, e.keys(s))
	_, err := s.ReadAuth(ctx, core.AuthQuery{UserID: u.ID, SessionHash: own.Hash, Password: true})
	wantKind(t, err, core.NotFound, "ReadAuth of a deleted user")
	wantKind(t, s.CreateSession(ctx, newSession(u.ID, epoch, time.Hour), 10), core.NotFound, "CreateSession of a deleted user")
	diff(t, "the other user's sessions", []core.Session{keepSess}, e.sessions(keep.ID))
	diff(t, "the other user's token", &keepTok, e.readSession(keep.ID, keepTok.Hash))
}

// testTouchRace: touches racing with deletes never bring a session back.
func testTouchRace(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("racer")
	var all []core.Session
	for i := range 20 {
		all = append(all, e.createSession(newSession(u.ID, epoch.Add(time.Duration(i)*time.Second), time.Hour), 0))
	}
	var wg sync.WaitGroup
	for _, sess := range all {
		wg.Go(func() {
			for i := range 5 {
				if err := s.TouchSession(ctx, u.ID, sess.Hash, epoch.Add(time.Duration(i+1)*time.Minute)); err != nil {
					t.Errorf("TouchSession: %v", err)
				}
			}
		})
		wg.Go(func() {
			if err := s.DeleteSession(ctx, u.ID, sess.Hash); err != nil {
				t.Errorf("DeleteSession: %v", err)
			}
		})
	}
	wg.Wait()
	for _, sess := range all {
		if got := e.readSession(u.ID, sess.Hash); got != nil {
			t.Errorf("a touch resurrected session %s", got.ID)
		}
	}
	diff(t, "Sessions after deletes and touches", []core.Session{}, e.sessions(u.ID))
}
