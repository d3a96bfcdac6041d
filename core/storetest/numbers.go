package storetest

import (
	"testing"

	"github.com/gatehouse/gatehouse/core"
)

// testKeptNumbers: a create given a number (an import) keeps it, refuses one
// another entity holds, and later creates number above it, so numbers stay
// unique and are never reused.
func testKeptNumbers(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s

	u := e.newUser("kept")
	u.Number = 500
	e.must(s.CreateUser(ctx, &u))
	if u.Number != 500 {
		t.Fatalf("CreateUser with Number 500 stored %d", u.Number)
	}
	got, err := s.UserByNumber(ctx, 500)
	e.must(err)
	diff(t, "UserByNumber(500)", u, got)
	next := e.createUser("next")
	if next.Number != 501 {
		t.Errorf("a create after an imported 500 got Number %d, want 501", next.Number)
	}
	low := e.newUser("low")
	low.Number = 7 // below the counter, free: kept
	e.must(s.CreateUser(ctx, &low))
	if low.Number != 7 {
		t.Errorf("CreateUser with a free Number 7 stored %d", low.Number)
	}
	dup := e.newUser("dup")
	dup.Number = 500
	wantConflict(t, s.CreateUser(ctx, &dup), "CreateUser with a taken Number", "500")
	if _, err := s.GetUser(ctx, dup.ID); core.KindOf(err) != core.NotFound {
		t.Errorf("the refused user was stored: %v", err)
	}
	page, err := s.ListUsers(ctx, core.ListOptions{Count: 10})
	e.must(err)
	var numbers []int64
	for _, x := range page.Items {
		numbers = append(numbers, x.Number)
	}
	diff(t, "numbers in list order", []int64{7, 500, 501}, numbers)

	a := e.newApp(u.ID, "Kept")
	a.Seq = 40
	e.must(s.CreateApp(ctx, &a))
	if a.Seq != 40 {
		t.Errorf("CreateApp with Seq 40 stored %d", a.Seq)
	}
	if b := e.createApp(u.ID, "After"); b.Seq != 41 {
		t.Errorf("an app created after an imported 40 got Seq %d, want 41", b.Seq)
	}
	dupApp := e.newApp(next.ID, "Dup")
	dupApp.Seq = 40
	wantConflict(t, s.CreateApp(ctx, &dupApp), "CreateApp with a taken Seq", "40")

	c := e.newCred(core.KeyAuth, "kept-key", u.ID, u.ID)
	c.Seq = 90
	e.must(s.CreateCredential(ctx, &c))
	if c.Seq != 90 {
		t.Errorf("CreateCredential with Seq 90 stored %d", c.Seq)
	}
	if d := e.createCred(core.KeyAuth, "after-key", u.ID, u.ID); d.Seq != 91 {
		t.Errorf("a credential created after an imported 90 got Seq %d, want 91", d.Seq)
	}
	dupCred := e.newCred(core.KeyAuth, "dup-key", u.ID, u.ID)
	dupCred.Seq = 90
	wantConflict(t, s.CreateCredential(ctx, &dupCred), "CreateCredential with a taken Seq", "90")
	if _, err := s.LocateCredential(ctx, core.KeyAuth, "dup-key"); core.KindOf(err) != core.NotFound {
		t.Errorf("the refused credential's keyId is claimed: %v", err)
	}

	cl := e.newClient("Kept Client")
	cl.Seq = 12
	e.must(s.CreateClient(ctx, &cl))
	if cl.Seq != 12 {
		t.Errorf("CreateClient with Seq 12 stored %d", cl.Seq)
	}
	if d := e.createClient("After Client"); d.Seq != 13 {
		t.Errorf("a client created after an imported 12 got Seq %d, want 13", d.Seq)
	}
	g := core.Group{ID: core.NewID(), Name: "Kept group", Number: 30, CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	e.must(s.CreateGroup(ctx, &g))
	if g.Number != 30 {
		t.Errorf("CreateGroup with Number 30 stored %d", g.Number)
	}
	g2 := core.Group{ID: core.NewID(), Name: "After group", CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	e.must(s.CreateGroup(ctx, &g2))
	if g2.Number != 31 {
		t.Errorf("a group created after an imported 30 got Number %d, want 31", g2.Number)
	}
	dupGroup := core.Group{ID: core.NewID(), Name: "Dup group", Number: 30, CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	wantConflict(t, s.CreateGroup(ctx, &dupGroup), "CreateGroup with a taken Number", "30")
	e.doctorClean(s)
}
