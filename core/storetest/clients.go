package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// newClient returns a client (not stored) named name.
func (e *env) newClient(name string) core.Client {
	return core.Client{ID: core.NewID(), Name: name, CreatedAt: e.clock.Now()}
}

// createClient stores a client named name and returns it.
func (e *env) createClient(name string) core.Client {
	e.t.Helper()
	c := e.newClient(name)
	e.must(e.s.CreateClient(e.ctx, &c))
	return c
}

// newClientKey returns a key (not stored) of client cid made from secret.
func (e *env) newClientKey(cid, secret string) core.ClientKey {
	sum := sha256.Sum256([]byte(secret))
	return core.ClientKey{
		ID: core.NewID()[:8], ClientID: cid, Hash: "sha256:" + hex.EncodeToString(sum[:]),
		Preview: "sk-client-..." + secret[len(secret)-4:], CreatedAt: e.clock.Now(),
	}
}

// clientUser returns a user (not stored) of client cid with that identifier.
func (e *env) clientUser(name, cid, identifier string) core.User {
	u := e.newUser(name)
	u.ClientID, u.ClientIdentifier, u.SecretPreview = cid, identifier, "sk-user-...1a2B3c4D"
	return u
}

// testClientIdentifiers: a client's identifier for its user is unique within
// the client, case-sensitive, found by UserByName and LocateUser, immutable,
// and freed when the user is deleted.
func testClientIdentifiers(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	c1, c2 := e.createClient("One"), e.createClient("Two")

	alice := e.clientUser("alice1", c1.ID, "alice")
	e.must(s.CreateUser(ctx, &alice))
	got, err := s.GetUser(ctx, alice.ID)
	e.must(err)
	diff(t, "GetUser of a client's user", alice, got)
	other := e.clientUser("alice2", c2.ID, "alice") // the same identifier in another client
	e.must(s.CreateUser(ctx, &other))
	upper := e.clientUser("alice3", c1.ID, "Alice") // a case variant is another identifier
	e.must(s.CreateUser(ctx, &upper))

	before := e.keys(s)
	dup := e.clientUser("alice4", c1.ID, "alice")
	err = s.CreateUser(ctx, &dup)
	wantConflict(t, err, "CreateUser with a taken client identifier", `client identifier "alice"`)
	if strings.Contains(core.MessageOf(err), c1.ID) {
		t.Errorf("Conflict message %q shows the client id", core.MessageOf(err))
	}
	for what, c := range map[string]struct {
		cid, ident, field string
	}{
		"a client without an identifier": {c1.ID, "", "clientIdentifier"},
		"an identifier without a client": {"", "bob", "clientIdentifier"},
		"a client id holding '/'":        {"a/b", "bob", "clientId"},
	} {
		u := e.clientUser("invalid", c.cid, c.ident)
		err := s.CreateUser(ctx, &u)
		wantKind(t, err, core.Invalid, "CreateUser with "+what)
		if !strings.Contains(core.MessageOf(err), c.field) {
			t.Errorf("CreateUser with %s: message %q does not name %s", what, core.MessageOf(err), c.field)
		}
	}
	diff(t, "keys after refused creates", before, e.keys(s))

	find := func(cid, ident string, want *core.User) {
		t.Helper()
		v := core.ClientIdentifierName(cid, ident)
		got, err := s.UserByName(ctx, core.NameClientIdentifier, v)
		uid, lerr := s.LocateUser(ctx, core.NameClientIdentifier, v)
		if want == nil {
			wantKind(t, err, core.NotFound, "UserByName("+v+")")
			wantKind(t, lerr, core.NotFound, "LocateUser("+v+")")
			return
		}
		e.must(err)
		e.must(lerr)
		diff(t, "UserByName("+v+")", *want, got)
		if uid != want.ID {
			t.Errorf("LocateUser(%s) = %q, want %q", v, uid, want.ID)
		}
	}
	find(c1.ID, "alice", &alice)
	find(c2.ID, "alice", &other)
	find(c1.ID, "Alice", &upper)
	find(c1.ID, "ALICE", nil)
	find(c2.ID, "Alice", nil)

	// ClientID and ClientIdentifier are immutable; the preview is not.
	got, err = s.UpdateUser(ctx, alice.ID, func(u *core.User) error {
		u.ClientID, u.ClientIdentifier, u.SecretPreview = c2.ID, "mallory", "sk-user-...9z8Y7x6W"
		return nil
	})
	e.must(err)
	alice.SecretPreview = "sk-user-...9z8Y7x6W"
	diff(t, "UpdateUser changing the client fields", alice, got)
	find(c1.ID, "alice", &alice)
	find(c2.ID, "mallory", nil)

	// Deleting the user frees its identifier in its client.
	e.must(s.DeleteUser(ctx, alice.ID))
	find(c1.ID, "alice", nil)
	e.must(s.CreateUser(ctx, &dup))
	find(c1.ID, "alice", &dup)

	// A claim left by a crashed create blocks while young, then goes stale:
	// Doctor reports and removes it.
	h.LeaveClaim(t, s, Claim{Kind: string(core.NameClientIdentifier), Name: core.ClientIdentifierName(c2.ID, "ghost"), Owner: core.NewID(), At: e.clock.Now()})
	ghost := e.clientUser("ghost", c2.ID, "ghost")
	wantConflict(t, s.CreateUser(ctx, &ghost), "CreateUser over a young claim", `client identifier "ghost"`)
	e.clock.Advance(2 * StaleAfter)
	r, err := s.Doctor(ctx, true)
	e.must(err)
	if len(r.StaleClaims) != 1 || !strings.Contains(r.StaleClaims[0], "clientIdentifier:"+c2.ID+"/ghost") {
		t.Errorf("Doctor StaleClaims = %q, want the left clientIdentifier claim", r.StaleClaims)
	}
	e.doctorClean(s)
	e.sameKeys(s, func(f core.Store) {
		for _, c := range []core.Client{c1, c2} {
			c.Seq = 0
			e.must(f.CreateClient(ctx, &c))
		}
		u := alice // the counter of the users only
		e.must(f.CreateUser(ctx, &u))
		e.must(f.DeleteUser(ctx, u.ID))
		for _, u := range []core.User{other, upper, dup} {
			replayUser(t, f, u)
		}
	})
}

// testLinkedSelection: one selected account per connector: the first is
// selected, SelectLinkedAccount moves the selection, deleting the selected
// one selects the newest remaining (ConnectedAt, then identifier) or none,
// and other connectors are never touched.
func testLinkedSelection(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.createUser("selector")
	at := func(i int) time.Time { return epoch.Add(time.Duration(i) * time.Hour) }
	put := func(connector, ident string, i int) core.LinkedAccount {
		t.Helper()
		a, err := s.PutLinkedAccount(ctx, u.ID, core.LinkedAccount{Connector: connector, UserIdentifier: ident, ConnectedAt: at(i), UpdatedAt: at(i)})
		e.must(err)
		return a
	}
	// selected lists, per account, whether it is selected, and checks that
	// LinkedAccount agrees with LinkedAccounts.
	selected := func(what string, want map[string]bool) {
		t.Helper()
		list, err := s.LinkedAccounts(ctx, u.ID)
		e.must(err)
		got := map[string]bool{}
		for _, a := range list {
			got[a.Connector+"/"+a.UserIdentifier] = a.Selected
			one, err := s.LinkedAccount(ctx, u.ID, a.Connector, a.UserIdentifier)
			e.must(err)
			diff(t, what+": LinkedAccount", a, one)
		}
		diff(t, what+": selected accounts", want, got)
	}
	a := put("github", "a", 1)
	if !a.Selected {
		t.Error("the first github account is not selected")
	}
	if b := put("github", "b", 2); b.Selected {
		t.Error("the second github account is selected")
	}
	put("google", "g", 3)
	selected("after three puts", map[string]bool{"github/a": true, "github/b": false, "google/g": true})

	e.must(s.SelectLinkedAccount(ctx, u.ID, "github", "b"))
	selected("after selecting b", map[string]bool{"github/a": false, "github/b": true, "google/g": true})
	wantKind(t, s.SelectLinkedAccount(ctx, u.ID, "github", "nobody"), core.NotFound, "SelectLinkedAccount of a missing account")
	wantKind(t, s.SelectLinkedAccount(ctx, u.ID, "gitlab", "b"), core.NotFound, "SelectLinkedAccount of another connector")
	wantKind(t, s.SelectLinkedAccount(ctx, core.NewID(), "github", "b"), core.NotFound, "SelectLinkedAccount of an unknown user")

	// Replacing keeps the ID and the selection, either way.
	again := put("github", "a", 9)
	if again.ID != a.ID || again.Selected {
		t.Errorf("replaced account: ID %q (want %q), selected %v (want false)", again.ID, a.ID, again.Selected)
	}
	if b := put("github", "b", 9); !b.Selected {
		t.Error("replacing the selected account unselected it")
	}

	// The selected one deleted: the newest remaining is selected.
	put("github", "c", 4)
	e.must(s.DeleteLinkedAccount(ctx, u.ID, "github", "b"))
	selected("after deleting the selected b", map[string]bool{"github/a": false, "github/c": true, "google/g": true})
	// The selection made by the delete stays: a newer account does not take it.
	put("github", "d", 8)
	selected("after a newer account", map[string]bool{"github/a": false, "github/c": true, "github/d": false, "google/g": true})
	e.must(s.DeleteLinkedAccount(ctx, u.ID, "github", "a")) // not selected: nothing moves
	selected("after deleting a", map[string]bool{"github/c": true, "github/d": false, "google/g": true})
	e.must(s.DeleteLinkedAccount(ctx, u.ID, "github", "c"))
	selected("after deleting the selected c", map[string]bool{"github/d": true, "google/g": true})
	e.must(s.DeleteLinkedAccount(ctx, u.ID, "github", "d"))
	selected("after deleting the last github account", map[string]bool{"google/g": true})

	// Again from none: the first is selected; a tie on ConnectedAt goes to
	// the greatest identifier.
	put("github", "e", 5)
	put("github", "m", 6)
	put("github", "n", 6)
	put("github", "l", 6)
	selected("a fresh github", map[string]bool{"github/e": true, "github/m": false, "github/n": false, "github/l": false, "google/g": true})
	e.must(s.DeleteLinkedAccount(ctx, u.ID, "github", "e"))
	selected("after a tie", map[string]bool{"github/m": false, "github/n": true, "github/l": false, "google/g": true})
	e.must(s.DeleteLinkedAccount(ctx, u.ID, "google", "g"))
	selected("after deleting google", map[string]bool{"github/m": false, "github/n": true, "github/l": false})

	e.sameKeys(s, func(f core.Store) {
		replayUser(t, f, u)
		_, err := f.PutLinkedAccount(ctx, u.ID, core.LinkedAccount{Connector: "github", UserIdentifier: "n"})
		e.must(err)
	})
}

// testClients: create, read, list, delete clients, with case-insensitive
// names; their keys created, listed, looked up by hash and revoked; a
// deleted client's keys stop resolving and its name is free; its users stay.
func testClients(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	acme := e.createClient("Acme")
	if acme.Seq <= 0 {
		t.Errorf("CreateClient assigned Seq %d", acme.Seq)
	}
	got, err := s.GetClient(ctx, acme.ID)
	e.must(err)
	diff(t, "GetClient", acme, got)
	_, err = s.GetClient(ctx, core.NewID())
	wantKind(t, err, core.NotFound, "GetClient of an unknown id")

	before := e.keys(s)
	dup := e.newClient("ACME")
	wantConflict(t, s.CreateClient(ctx, &dup), "CreateClient with a case variant of a taken name", `client name "ACME"`)
	sameID := e.newClient("Fresh")
	sameID.ID = acme.ID
	wantConflict(t, s.CreateClient(ctx, &sameID), "CreateClient with a taken id", acme.ID)
	for what, c := range map[string]core.Client{
		"an empty name":       {ID: core.NewID()},
		"an id holding '/'":   {ID: "a/b", Name: "Slash"},
		"an empty id":         {Name: "NoID"},
		"an id holding space": {ID: "a b", Name: "Space"},
	} {
		wantKind(t, s.CreateClient(ctx, &c), core.Invalid, "CreateClient with "+what)
	}
	diff(t, "keys after refused CreateClient", before, e.keys(s))

	// Paging in Seq order.
	all := []core.Client{acme}
	for i := range 6 {
		all = append(all, e.createClient(name("client", i)))
	}
	for _, n := range []int{1, 2, 5, 100} {
		got := walk(t, n, func(start int64) (core.Page[core.Client], error) {
			return s.ListClients(ctx, core.ListOptions{Start: start, Count: n})
		})
		diff(t, "ListClients walked by "+name("", n), all, got)
	}
	p, err := s.ListClients(ctx, core.ListOptions{})
	e.must(err)
	if p.Total != int64(len(all)) {
		t.Errorf("ListClients Total = %d, want %d", p.Total, len(all))
	}

	// Keys.
	k1 := e.newClientKey(acme.ID, "sk-client-first-0000aaaa")
	e.clock.Advance(time.Second)
	k2 := e.newClientKey(acme.ID, "sk-client-second-0000bbbb")
	ko := e.newClientKey(all[1].ID, "sk-client-other-0000cccc")
	for _, k := range []core.ClientKey{k2, k1, ko} {
		e.must(s.CreateClientKey(ctx, k))
	}
	keys, err := s.ClientKeys(ctx, acme.ID)
	e.must(err)
	diff(t, "ClientKeys, oldest first", []core.ClientKey{k1, k2}, keys)
	keys, err = s.ClientKeys(ctx, core.NewID())
	e.must(err)
	diff(t, "ClientKeys of an unknown client", []core.ClientKey{}, keys)
	lookup := func(k core.ClientKey, c *core.Client) {
		t.Helper()
		gc, gk, err := s.ClientByKeyHash(ctx, k.Hash)
		if c == nil {
			wantKind(t, err, core.NotFound, "ClientByKeyHash of a key that should not resolve")
			if strings.Contains(err.Error(), strings.TrimPrefix(k.Hash, "sha256:")) {
				t.Errorf("NotFound %q shows the hash", err)
			}
			return
		}
		e.must(err)
		diff(t, "ClientByKeyHash client", *c, gc)
		diff(t, "ClientByKeyHash key", k, gk)
	}
	lookup(k1, &acme)
	lookup(k2, &acme)
	lookup(ko, &all[1])
	lookup(e.newClientKey(acme.ID, "sk-client-never-0000dddd"), nil)
	_, _, err = s.ClientByKeyHash(ctx, "sha256:nothex")
	wantKind(t, err, core.NotFound, "ClientByKeyHash of a malformed hash")

	before = e.keys(s)
	sameHash := e.newClientKey(acme.ID, "sk-client-first-0000aaaa")
	err = s.CreateClientKey(ctx, sameHash)
	wantKind(t, err, core.Conflict, "CreateClientKey with a taken hash")
	if strings.Contains(err.Error(), strings.TrimPrefix(k1.Hash, "sha256:")) {
		t.Errorf("Conflict %q shows the hash", err)
	}
	sameKeyID := e.newClientKey(acme.ID, "sk-client-third-0000eeee")
	sameKeyID.ID = k1.ID
	wantConflict(t, s.CreateClientKey(ctx, sameKeyID), "CreateClientKey with a taken id", k1.ID)
	orphan := e.newClientKey(core.NewID(), "sk-client-orphan-0000ffff")
	wantKind(t, s.CreateClientKey(ctx, orphan), core.NotFound, "CreateClientKey of an unknown client")
	badHash := e.newClientKey(acme.ID, "sk-client-bad-00001111")
	badHash.Hash = "sha256:XYZ"
	wantKind(t, s.CreateClientKey(ctx, badHash), core.Invalid, "CreateClientKey with a malformed hash")
	diff(t, "keys after refused CreateClientKey", before, e.keys(s))

	// Revocation.
	e.must(s.DeleteClientKey(ctx, acme.ID, k1.ID))
	lookup(k1, nil)
	lookup(k2, &acme)
	wantKind(t, s.DeleteClientKey(ctx, acme.ID, k1.ID), core.NotFound, "DeleteClientKey twice")
	wantKind(t, s.DeleteClientKey(ctx, all[1].ID, k2.ID), core.NotFound, "DeleteClientKey through another client")
	keys, err = s.ClientKeys(ctx, acme.ID)
	e.must(err)
	diff(t, "ClientKeys after a revocation", []core.ClientKey{k2}, keys)

	// DeleteClient: its keys stop resolving, its name is free, its users stay.
	member := e.clientUser("member", acme.ID, "member")
	e.must(s.CreateUser(ctx, &member))
	e.must(s.DeleteClient(ctx, acme.ID))
	lookup(k2, nil)
	lookup(ko, &all[1])
	_, err = s.GetClient(ctx, acme.ID)
	wantKind(t, err, core.NotFound, "GetClient of a deleted client")
	wantKind(t, s.DeleteClient(ctx, acme.ID), core.NotFound, "DeleteClient twice")
	keys, err = s.ClientKeys(ctx, acme.ID)
	e.must(err)
	diff(t, "ClientKeys of a deleted client", []core.ClientKey{}, keys)
	gu, err := s.GetUser(ctx, member.ID)
	e.must(err)
	diff(t, "the deleted client's user", member, gu)
	all = all[1:]
	p, err = s.ListClients(ctx, core.ListOptions{})
	e.must(err)
	diff(t, "ListClients after a delete", all, p.Items)
	again := e.newClient("acme")
	e.must(s.CreateClient(ctx, &again))
	all = append(all, again)

	e.sameKeys(s, func(f core.Store) {
		c := acme
		e.must(f.CreateClient(ctx, &c))
		e.must(f.DeleteClient(ctx, acme.ID))
		for _, c := range all {
			c.Seq = 0
			e.must(f.CreateClient(ctx, &c))
		}
		e.must(f.CreateClientKey(ctx, ko))
		replayUser(t, f, member)
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testConcurrentClients: clients created at once under one name (in several
// cases) — exactly one wins, the others are Conflict.
func testConcurrentClients(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	names := []string{"Race", "race", "RACE", "rAcE", "Race", "race", "RaCe", "racE"}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, n := range names {
		c := e.newClient(n)
		wg.Go(func() {
			<-start
			errs[i] = s.CreateClient(ctx, &c)
		})
	}
	close(start)
	waitBounded(t, &wg, 30*time.Second)
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case core.KindOf(err) == core.Conflict:
		default:
			t.Errorf("CreateClient %q: %v, want success or Conflict", names[i], err)
		}
	}
	p, err := s.ListClients(ctx, core.ListOptions{})
	e.must(err)
	if wins != 1 || len(p.Items) != 1 {
		t.Fatalf("%d creates won and %d clients are listed, want exactly one", wins, len(p.Items))
	}
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testClientsDoctor: a client delete interrupted after its slot write already
// makes its keys stop resolving; the index entry, name claim and key lookups
// it leaves are skipped by readers, reported and removed by Doctor. A create
// interrupted after its write leaves a client missing from the list until
// Doctor adds it.
func testClientsDoctor(t *testing.T, h Harness) {
	if h.Interrupt == nil {
		t.Skip("the harness cannot interrupt writes")
	}
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	gone := e.createClient("Gone")
	k1 := e.newClientKey(gone.ID, "sk-client-gone-0000aaaa")
	k2 := e.newClientKey(gone.ID, "sk-client-gone-0000bbbb")
	e.must(s.CreateClientKey(ctx, k1))
	e.must(s.CreateClientKey(ctx, k2))
	h.Interrupt(t, s)
	if err := s.DeleteClient(ctx, gone.ID); err == nil {
		t.Fatal("interrupted DeleteClient succeeded")
	}
	for _, k := range []core.ClientKey{k1, k2} {
		_, _, err := s.ClientByKeyHash(ctx, k.Hash)
		wantKind(t, err, core.NotFound, "ClientByKeyHash after an interrupted DeleteClient")
	}
	p, err := s.ListClients(ctx, core.ListOptions{})
	e.must(err)
	diff(t, "ListClients after an interrupted DeleteClient", []core.Client{}, p.Items)

	half := e.newClient("Half")
	h.Interrupt(t, s)
	if err := s.CreateClient(ctx, &half); err == nil {
		t.Fatal("interrupted CreateClient succeeded")
	}

	e.clock.Advance(2 * StaleAfter)
	r, err := s.Doctor(ctx, false)
	e.must(err)
	if len(r.StaleClaims) != 1 || !strings.Contains(r.StaleClaims[0], "clientName:gone") {
		t.Errorf("Doctor StaleClaims = %q, want the deleted client's name", r.StaleClaims)
	}
	// The deleted client's index entry, its two key lookups, and the half
	// created client missing from the index.
	if len(r.DanglingIndex) != 4 {
		t.Errorf("Doctor DanglingIndex = %q, want 4 entries", r.DanglingIndex)
	}
	for _, d := range r.DanglingIndex {
		if strings.Contains(d, strings.TrimPrefix(k1.Hash, "sha256:")) || strings.Contains(d, strings.TrimPrefix(k2.Hash, "sha256:")) {
			t.Errorf("Doctor report %q shows a whole key hash", d)
		}
	}
	_, err = s.Doctor(ctx, true)
	e.must(err)
	e.doctorClean(s)
	p, err = s.ListClients(ctx, core.ListOptions{})
	e.must(err)
	if len(p.Items) != 1 || p.Items[0].ID != half.ID {
		t.Errorf("after repair ListClients = %+v, want the half-created client", p.Items)
	}
	again := e.newClient("GONE")
	e.must(s.CreateClient(ctx, &again))
	e.sameKeys(s, func(f core.Store) {
		c := gone
		e.must(f.CreateClient(ctx, &c))
		e.must(f.DeleteClient(ctx, gone.ID))
		for _, c := range []core.Client{p.Items[0], again} {
			c.Seq = 0
			e.must(f.CreateClient(ctx, &c))
		}
	})
}
