package storetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

func testUsersCRUD(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s

	limit := 5
	u := e.newUser("Alice")
	u.ExternalID = "ext-alice"
	u.EmailVerified = true
	u.SessionsLimit = &limit
	u.Props = map[string]any{"firstname": "Alice", "age": float64(30), "tags": []any{"a", "b"}}
	e.must(s.CreateUser(ctx, &u))
	if u.Number <= 0 {
		t.Fatalf("CreateUser assigned Number %d, want > 0", u.Number)
	}
	got, err := s.GetUser(ctx, u.ID)
	e.must(err)
	diff(t, "GetUser", u, got)

	for _, c := range []struct {
		kind  core.NameKind
		value string
	}{
		{core.NameUsername, "Alice"},
		{core.NameUsername, "ALICE"}, // unique case-insensitively
		{core.NameEmail, "Alice@example.com"},
		{core.NameEmail, "alice@example.com"},
		{core.NameExternalID, "ext-alice"},
	} {
		got, err := s.UserByName(ctx, c.kind, c.value)
		if err != nil {
			t.Fatalf("UserByName(%s, %q): %v", c.kind, c.value, err)
		}
		diff(t, "UserByName "+string(c.kind), u, got)
	}
	got, err = s.UserByNumber(ctx, u.Number)
	e.must(err)
	diff(t, "UserByNumber", u, got)

	_, err = s.GetUser(ctx, core.NewID())
	wantKind(t, err, core.NotFound, "GetUser of an unknown id")
	_, err = s.UserByNumber(ctx, u.Number+100)
	wantKind(t, err, core.NotFound, "UserByNumber of an unknown number")
	for _, kind := range []core.NameKind{core.NameUsername, core.NameEmail, core.NameExternalID} {
		_, err = s.UserByName(ctx, kind, "nobody")
		wantKind(t, err, core.NotFound, "UserByName of an unknown "+string(kind))
	}

	u2 := e.createUser("bob")
	if u2.Number <= u.Number {
		t.Errorf("second user's Number %d, want > %d", u2.Number, u.Number)
	}

	// Update: fn's changes are stored, but not those to immutable fields.
	later := u.UpdatedAt.Add(time.Hour)
	updated, err := s.UpdateUser(ctx, u.ID, func(x *core.User) error {
		x.RedirectURI = "https://alice.example/cb"
		x.Props["firstname"] = "Alicia"
		x.IsActive = false
		x.UpdatedAt = later
		x.ID, x.Number, x.Username, x.CreatedAt = core.NewID(), 999, "mallory", later
		return nil
	})
	e.must(err)
	want := u
	want.RedirectURI = "https://alice.example/cb"
	want.Props = map[string]any{"firstname": "Alicia", "age": float64(30), "tags": []any{"a", "b"}}
	want.IsActive = false
	want.UpdatedAt = later
	diff(t, "UpdateUser result", want, updated)
	got, err = s.GetUser(ctx, u.ID)
	e.must(err)
	diff(t, "GetUser after UpdateUser", want, got)
	if _, err := s.UserByName(ctx, core.NameUsername, "mallory"); core.KindOf(err) != core.NotFound {
		t.Errorf("a username changed by fn was claimed: %v", err)
	}

	errFn := errors.New("fn refuses")
	_, err = s.UpdateUser(ctx, u.ID, func(*core.User) error { return errFn })
	if !errors.Is(err, errFn) {
		t.Errorf("UpdateUser returned %v, want fn's error", err)
	}
	_, err = s.UpdateUser(ctx, core.NewID(), func(*core.User) error { return nil })
	wantKind(t, err, core.NotFound, "UpdateUser of an unknown id")

	// The id is unique too.
	dup := e.newUser("carol")
	dup.ID = u2.ID
	wantConflict(t, s.CreateUser(ctx, &dup), "CreateUser with a taken id")

	e.must(s.DeleteUser(ctx, u.ID))
	_, err = s.GetUser(ctx, u.ID)
	wantKind(t, err, core.NotFound, "GetUser after DeleteUser")
	_, err = s.UserByName(ctx, core.NameUsername, "alice")
	wantKind(t, err, core.NotFound, "UserByName after DeleteUser")
	_, err = s.UserByNumber(ctx, u.Number)
	wantKind(t, err, core.NotFound, "UserByNumber after DeleteUser")
	wantKind(t, s.DeleteUser(ctx, u.ID), core.NotFound, "DeleteUser twice")

	page, err := s.ListUsers(ctx, core.ListOptions{Count: 10})
	e.must(err)
	diff(t, "ListUsers", core.Page[core.User]{Items: []core.User{u2}, Total: 1}, page)

	e.sameKeys(s, func(f core.Store) { replayUser(t, f, u2) })
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

func testUsersUnique(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u := e.newUser("Bob")
	u.ExternalID = "ext-1"
	e.must(s.CreateUser(ctx, &u))
	before := e.keys(s)

	c := e.newUser("BOB") // a case variant of the username
	wantConflict(t, s.CreateUser(ctx, &c), "taken username", "username", "BOB")
	c = e.newUser("carol")
	c.Email = "BOB@example.com"
	wantConflict(t, s.CreateUser(ctx, &c), "taken email", "email")
	c = e.newUser("carol")
	c.ExternalID = "ext-1"
	wantConflict(t, s.CreateUser(ctx, &c), "taken externalId", "externalId", "ext-1")

	// A failed create leaves nothing behind: not a key, not a name.
	diff(t, "keys after failed creates", before, e.keys(s))
	c = e.newUser("carol")
	c.ExternalID = "ext-2"
	e.must(s.CreateUser(ctx, &c))
	page, err := s.ListUsers(ctx, core.ListOptions{Count: 10})
	e.must(err)
	if page.Total != 2 || len(page.Items) != 2 {
		t.Errorf("ListUsers after failed creates: %d users (Total %d), want 2", len(page.Items), page.Total)
	}
	// A user without email or externalId holds no such name.
	d := e.newUser("dave")
	d.Email = ""
	e.must(s.CreateUser(ctx, &d))
	d2 := e.newUser("dave2")
	d2.Email = ""
	e.must(s.CreateUser(ctx, &d2))
}

// testConcurrentCreate races 20 creates for one username (or email, or identity):
// exactly one wins and the losers leave nothing behind.
func testConcurrentCreate(t *testing.T, h Harness, what string) {
	e := newEnv(t, h)
	const n = 20
	users := make([]core.User, n)
	for i := range users {
		users[i] = e.newUser(name("racer", i))
		switch what {
		case "username":
			users[i].Username = "racer"
		case "email":
			users[i].Email = "racer@example.com"
		case "identity":
			users[i].Identities = []core.Identity{{Provider: "github", Subject: "racer", LinkedAt: epoch}}
		}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range users {
		wg.Go(func() {
			<-start
			errs[i] = e.s.CreateUser(e.ctx, &users[i])
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch core.KindOf(err) {
		case core.Other:
			if winner >= 0 {
				t.Fatalf("users %d and %d both created with one %s", winner, i, what)
			}
			winner = i
		case core.Conflict:
		default:
			t.Errorf("create %d: %v, want success or Conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no create of %d succeeded", n)
	}
	got, err := e.s.GetUser(e.ctx, users[winner].ID)
	e.must(err)
	diff(t, "winner", users[winner], got)
	e.sameKeys(e.s, func(f core.Store) { replayUser(t, f, users[winner]) })
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(e.s)
}

func testNameChange(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	u1, u2 := e.createUser("one"), e.createUser("two")
	setEmail := func(email string) func(*core.User) error {
		return func(u *core.User) error { u.Email = email; return nil }
	}

	// A new email is claimed and the old one freed.
	got, err := s.UpdateUser(ctx, u1.ID, setEmail("new@example.com"))
	e.must(err)
	if got.Email != "new@example.com" {
		t.Errorf("UpdateUser stored email %q", got.Email)
	}
	_, err = s.UserByName(ctx, core.NameEmail, "one@example.com")
	wantKind(t, err, core.NotFound, "UserByName of the old email")
	byNew, err := s.UserByName(ctx, core.NameEmail, "new@example.com")
	e.must(err)
	if byNew.ID != u1.ID {
		t.Errorf("new email names %s, want %s", byNew.ID, u1.ID)
	}
	u3 := e.newUser("three")
	u3.Email = "one@example.com"
	e.must(s.CreateUser(ctx, &u3)) // the old email is free

	// A taken email is Conflict, and nothing changes.
	_, err = s.UpdateUser(ctx, u1.ID, setEmail("TWO@example.com"))
	wantConflict(t, err, "UpdateUser to a taken email", "email")
	got, err = s.GetUser(ctx, u1.ID)
	e.must(err)
	if got.Email != "new@example.com" {
		t.Errorf("email after a refused change: %q, want new@example.com", got.Email)
	}
	for email, id := range map[string]string{"two@example.com": u2.ID, "new@example.com": u1.ID} {
		byName, err := s.UserByName(ctx, core.NameEmail, email)
		e.must(err)
		if byName.ID != id {
			t.Errorf("%s names %s, want %s", email, byName.ID, id)
		}
	}

	// A case-only change keeps the claim; clearing the email frees it.
	_, err = s.UpdateUser(ctx, u1.ID, setEmail("NEW@example.com"))
	e.must(err)
	_, err = s.UserByName(ctx, core.NameEmail, "new@example.com")
	e.must(err)
	_, err = s.UpdateUser(ctx, u1.ID, setEmail(""))
	e.must(err)
	u4 := e.newUser("four")
	u4.Email = "new@example.com"
	e.must(s.CreateUser(ctx, &u4))

	// externalId follows the same rules.
	setExt := func(v string) func(*core.User) error {
		return func(u *core.User) error { u.ExternalID = v; return nil }
	}
	_, err = s.UpdateUser(ctx, u1.ID, setExt("x1"))
	e.must(err)
	_, err = s.UpdateUser(ctx, u2.ID, setExt("x1"))
	wantConflict(t, err, "UpdateUser to a taken externalId", "externalId")
	_, err = s.UpdateUser(ctx, u1.ID, setExt("x2"))
	e.must(err)
	_, err = s.UpdateUser(ctx, u2.ID, setExt("x1"))
	e.must(err)
	byExt, err := s.UserByName(ctx, core.NameExternalID, "x1")
	e.must(err)
	if byExt.ID != u2.ID {
		t.Errorf("externalId x1 names %s, want %s", byExt.ID, u2.ID)
	}

	final := map[string]core.User{}
	for _, id := range []string{u1.ID, u2.ID, u3.ID, u4.ID} {
		u, err := s.GetUser(ctx, id)
		e.must(err)
		final[id] = u
	}
	e.sameKeys(s, func(f core.Store) {
		for _, id := range []string{u1.ID, u2.ID, u3.ID, u4.ID} {
			replayUser(t, f, final[id])
		}
	})
	e.clock.Advance(2 * StaleAfter)
	e.doctorClean(s)
}

// testConcurrentUpdate checks that updates are atomic: none is lost.
func testConcurrentUpdate(t *testing.T, h Harness) {
	e := newEnv(t, h)
	u := e.createUser("counter")
	const n = 10
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range n {
		wg.Go(func() {
			_, err := e.s.UpdateUser(e.ctx, u.ID, func(x *core.User) error {
				c, _ := x.Props["n"].(float64)
				x.Props["n"] = c + 1
				return nil
			})
			switch core.KindOf(err) {
			case core.Other:
				ok.Add(1)
			case core.Conflict: // too many retries: allowed, and must change nothing
			default:
				t.Errorf("UpdateUser: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := e.s.GetUser(e.ctx, u.ID)
	e.must(err)
	// A lost update is not allowed: the counter is exactly the successes.
	if c, _ := got.Props["n"].(float64); int64(c) != ok.Load() || c < 1 {
		t.Fatalf("counter = %v after %d successful concurrent increments", got.Props["n"], ok.Load())
	}
	// Sequential increments on top are all kept.
	for range 3 {
		_, err := e.s.UpdateUser(e.ctx, u.ID, func(x *core.User) error {
			c, _ := x.Props["n"].(float64)
			x.Props["n"] = c + 1
			return nil
		})
		e.must(err)
	}
	got2, err := e.s.GetUser(e.ctx, u.ID)
	e.must(err)
	if got2.Props["n"].(float64) != got.Props["n"].(float64)+3 {
		t.Errorf("counter = %v after 3 more increments of %v", got2.Props["n"], got.Props["n"])
	}
}

// testUsersPaging walks the users seven at a time while others are created and
// deleted: every user present for the whole walk is seen exactly once, in order.
func testUsersPaging(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	const n = 30
	var base []core.User
	for i := range n {
		base = append(base, e.createUser(name("user", i)))
	}
	doomed := map[string]bool{base[3].ID: true, base[17].ID: true, base[29].ID: true}

	stop := make(chan struct{})
	churnDone := make(chan struct{})
	go func() { // create and delete other users throughout the walk
		defer close(churnDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			u := e.newUser(name("churn", i))
			if err := s.CreateUser(ctx, &u); err != nil {
				t.Errorf("churn create: %v", err)
				return
			}
			if err := s.DeleteUser(ctx, u.ID); err != nil {
				t.Errorf("churn delete: %v", err)
				return
			}
		}
	}()
	var kept []string // users created during the walk and left in place
	var seen []core.User
	var start int64
	for page := 0; ; page++ {
		p, err := s.ListUsers(ctx, core.ListOptions{Start: start, Count: 7})
		e.must(err)
		if len(p.Items) > 7 {
			t.Fatalf("page of %d users, want at most 7", len(p.Items))
		}
		seen = append(seen, p.Items...)
		// Between pages: delete a user not yet walked, add one.
		switch page {
		case 0:
			e.must(s.DeleteUser(ctx, base[17].ID))
		case 1:
			e.must(s.DeleteUser(ctx, base[29].ID))
			e.must(s.DeleteUser(ctx, base[3].ID)) // already walked
		}
		kept = append(kept, e.createUser(name("late", page)).ID)
		if p.NextKey == 0 {
			break
		}
		if p.NextKey <= start {
			t.Fatalf("NextKey %d does not move past %d", p.NextKey, start)
		}
		start = p.NextKey
	}
	close(stop)
	<-churnDone

	count := map[string]int{}
	var last int64
	for _, u := range seen {
		count[u.ID]++
		if u.Number <= last {
			t.Errorf("user %s (Number %d) listed after Number %d", u.Username, u.Number, last)
		}
		last = u.Number
	}
	for id, c := range count {
		if c > 1 {
			t.Errorf("user %s listed %d times", id, c)
		}
	}
	for _, u := range base {
		if !doomed[u.ID] && count[u.ID] != 1 {
			t.Errorf("user %s (Number %d) listed %d times, want once", u.Username, u.Number, count[u.ID])
		}
	}

	for _, id := range kept {
		e.must(s.DeleteUser(ctx, id))
	}
	all, err := s.ListUsers(ctx, core.ListOptions{Count: core.MaxPageSize})
	e.must(err)
	left := n - len(doomed)
	if all.NextKey != 0 || all.Total != int64(left) || len(all.Items) != left {
		t.Errorf("after the walk: %d users, Total %d, NextKey %d; want %d, %d, 0", len(all.Items), all.Total, all.NextKey, left, left)
	}
	var want []string
	for _, u := range base {
		if !doomed[u.ID] {
			want = append(want, u.ID)
		}
	}
	var got []string
	for _, u := range all.Items {
		got = append(got, u.ID)
	}
	diff(t, "users after the walk, in Number order", want, got)
	exact := walk(t, 4, func(start int64) (core.Page[core.User], error) {
		return s.ListUsers(ctx, core.ListOptions{Start: start, Count: 4})
	})
	if len(exact) != left {
		t.Errorf("walking by 4 gave %d users, want %d", len(exact), left)
	}
}
