package storetest

import (
	"slices"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/core"
)

// createGroup stores a group named name with tags.
func (e *env) createGroup(name string, tags ...string) core.Group {
	e.t.Helper()
	now := e.clock.Now()
	g := core.Group{ID: core.NewID(), Name: name, Tags: tags, CreatedAt: now, UpdatedAt: now}
	e.must(e.s.CreateGroup(e.ctx, &g))
	return g
}

// setGroups replaces a user's groups and own tags.
func (e *env) setGroups(uid string, groups, tags []string) core.User {
	e.t.Helper()
	u, err := e.s.UpdateUser(e.ctx, uid, func(u *core.User) error {
		u.Groups, u.Tags = groups, tags
		return nil
	})
	e.must(err)
	return u
}

// usernames lists the usernames of a filtered users page walk.
func (e *env) filtered(f core.UserFilter, count int) (names []string, total int64) {
	e.t.Helper()
	var start int64
	for range 1000 {
		p, err := e.s.ListUsers(e.ctx, core.ListOptions{Start: start, Count: count, Users: f})
		e.must(err)
		if len(p.Items) > count {
			e.t.Fatalf("page of %d, want at most %d", len(p.Items), count)
		}
		if start == 0 {
			total = p.Total
		} else if p.Total != total {
			e.t.Errorf("Total %d on a later page, %d on the first", p.Total, total)
		}
		for _, u := range p.Items {
			names = append(names, u.Username)
		}
		if p.NextKey == 0 {
			return names, total
		}
		start = p.NextKey
	}
	e.t.Fatal("paging does not end")
	return nil, 0
}

func testGroups(t *testing.T, h Harness) {
	e := newEnv(t, h)
	dev := e.createGroup("Development team", "deploy")
	g2 := core.Group{ID: core.NewID(), Name: "development TEAM"}
	wantConflict(t, e.s.CreateGroup(e.ctx, &g2), "same name in another case", "group name")
	ops := e.createGroup("Ops", "deploy", "pager")
	if dev.Number <= 0 || ops.Number <= dev.Number {
		t.Errorf("numbers %d, %d: want positive and increasing", dev.Number, ops.Number)
	}
	for _, get := range []func() (core.Group, error){
		func() (core.Group, error) { return e.s.GetGroup(e.ctx, dev.ID) },
		func() (core.Group, error) { return e.s.GroupByName(e.ctx, "DEVELOPMENT team") },
		func() (core.Group, error) { return e.s.GroupByNumber(e.ctx, dev.Number) },
	} {
		g, err := get()
		e.must(err)
		diff(t, "group read back", dev, g)
	}
	_, err := e.s.GroupByName(e.ctx, "nobody")
	wantKind(t, err, core.NotFound, "unknown group name")
	_, err = e.s.GroupByNumber(e.ctx, 999)
	wantKind(t, err, core.NotFound, "unknown group number")

	// Rename: the old name is free again, a taken one is Conflict.
	_, err = e.s.UpdateGroup(e.ctx, dev.ID, func(g *core.Group) error { g.Name = "ops"; return nil })
	wantConflict(t, err, "rename onto another group's name", "group name")
	dev, err = e.s.UpdateGroup(e.ctx, dev.ID, func(g *core.Group) error { g.Name = "Developers"; return nil })
	e.must(err)
	_, err = e.s.GroupByName(e.ctx, "Development team")
	wantKind(t, err, core.NotFound, "old name after a rename")
	again := e.createGroup("Development team")

	all := walk(t, 2, func(start int64) (core.Page[core.Group], error) {
		return e.s.ListGroups(e.ctx, core.ListOptions{Start: start, Count: 2})
	})
	var names []string
	for _, g := range all {
		names = append(names, g.Name)
	}
	diff(t, "groups in number order", []string{"Developers", "Ops", "Development team"}, names)

	e.must(e.s.DeleteGroup(e.ctx, again.ID))
	wantKind(t, e.s.DeleteGroup(e.ctx, again.ID), core.NotFound, "deleting twice")
	reg, err := e.s.Groups(e.ctx)
	e.must(err)
	if len(reg) != 2 || reg[ops.ID].Name != "Ops" {
		t.Errorf("registry %v, want Developers and Ops", reg)
	}
	e.doctorClean(e.s)
}

func testGroupMembers(t *testing.T, h Harness) {
	e := newEnv(t, h)
	dev := e.createGroup("Development team", "deploy")
	ops := e.createGroup("Ops", "pager")
	alice := e.createUser("alice")
	bob := e.createUser("bob")
	carol := e.createUser("carol")
	e.createUser("alfred")

	_, err := e.s.UpdateUser(e.ctx, alice.ID, func(u *core.User) error { u.Groups = []string{core.NewID()}; return nil })
	wantKind(t, err, core.NotFound, "granting a group that does not exist")

	e.setGroups(alice.ID, []string{dev.ID}, []string{"admin"})
	e.setGroups(bob.ID, []string{dev.ID, ops.ID}, nil)
	e.setGroups(carol.ID, nil, []string{"deploy"})
	_, err = e.s.UpdateUser(e.ctx, bob.ID, func(u *core.User) error { u.IsActive = false; return nil })
	e.must(err)

	no := false
	for _, c := range []struct {
		what      string
		f         core.UserFilter
		want      []string
		wantTotal int64
	}{
		{"group", core.UserFilter{Group: dev.ID}, []string{"alice", "bob"}, 2},
		{"tag own or through a group", core.UserFilter{Tag: "deploy"}, []string{"alice", "bob", "carol"}, 3},
		{"tag own only", core.UserFilter{Tag: "admin"}, []string{"alice"}, 1},
		{"inactive", core.UserFilter{Active: &no}, []string{"bob"}, 1},
		{"username prefix, case-insensitive", core.UserFilter{Username: "AL"}, []string{"alfred", "alice"}, 2},
		{"email", core.UserFilter{Email: "carol@example.com"}, []string{"carol"}, 1},
		{"tag and group", core.UserFilter{Tag: "pager", Group: dev.ID}, []string{"bob"}, 1},
		{"tag and inactive", core.UserFilter{Tag: "deploy", Active: &no}, []string{"bob"}, 1},
		{"prefix and tag", core.UserFilter{Username: "a", Tag: "deploy"}, []string{"alice"}, 1},
		{"no match", core.UserFilter{Tag: "nothing"}, nil, 0},
	} {
		got, total := e.filtered(c.f, 1)
		diff(t, c.what, c.want, got)
		if total != c.wantTotal {
			t.Errorf("%s: Total %d, want %d", c.what, total, c.wantTotal)
		}
	}

	// A group's new tag reaches its members; a removed one leaves them.
	_, err = e.s.UpdateGroup(e.ctx, ops.ID, func(g *core.Group) error { g.Tags = []string{"oncall"}; return nil })
	e.must(err)
	got, _ := e.filtered(core.UserFilter{Tag: "oncall"}, 10)
	diff(t, "members holding a group's new tag", []string{"bob"}, got)
	got, _ = e.filtered(core.UserFilter{Tag: "pager"}, 10)
	diff(t, "members holding a group's removed tag", []string(nil), got)

	// ReadAuth brings the registry for the user's groups.
	rec, err := e.s.ReadAuth(e.ctx, core.AuthQuery{UserID: bob.ID})
	e.must(err)
	diff(t, "effective tags from ReadAuth", []string{"deploy", "oncall"}, core.EffectiveTags(rec.User, rec.Groups))

	// Deleting a group takes it off its users and their tags.
	e.must(e.s.DeleteGroup(e.ctx, dev.ID))
	for _, id := range []string{alice.ID, bob.ID} {
		u, err := e.s.GetUser(e.ctx, id)
		e.must(err)
		if slices.Contains(u.Groups, dev.ID) {
			t.Errorf("%s still lists a deleted group", u.Username)
		}
	}
	got, _ = e.filtered(core.UserFilter{Tag: "deploy"}, 10)
	diff(t, "tag holders after the group's deletion", []string{"carol"}, got)
	e.doctorClean(e.s)

	// Deleting users empties the indexes.
	for _, u := range []string{alice.ID, bob.ID, carol.ID} {
		e.must(e.s.DeleteUser(e.ctx, u))
	}
	got, total := e.filtered(core.UserFilter{Username: "a"}, 10)
	diff(t, "prefix after deletes", []string{"alfred"}, got)
	if total != 1 {
		t.Errorf("Total %d after deletes, want 1", total)
	}
	e.doctorClean(e.s)
}

// testGroupDeleteRace grants a group to users while it is deleted: afterwards
// no user lists it, and nothing is left for Doctor.
func testGroupDeleteRace(t *testing.T, h Harness) {
	e := newEnv(t, h)
	const n = 16
	users := make([]core.User, n)
	for i := range users {
		users[i] = e.createUser(name("u", i))
	}
	for round := range 3 {
		g := e.createGroup(name("race", round), "t")
		var wg sync.WaitGroup
		for i := range users {
			wg.Go(func() {
				_, err := e.s.UpdateUser(e.ctx, users[i].ID, func(u *core.User) error {
					u.Groups = append(slices.Clone(u.Groups), g.ID)
					return nil
				})
				if err != nil && core.KindOf(err) != core.NotFound {
					t.Errorf("grant: %v", err)
				}
			})
		}
		wg.Go(func() {
			if err := e.s.DeleteGroup(e.ctx, g.ID); err != nil {
				t.Errorf("delete: %v", err)
			}
		})
		wg.Wait()
		for _, u := range users {
			got, err := e.s.GetUser(e.ctx, u.ID)
			e.must(err)
			if slices.Contains(got.Groups, g.ID) {
				t.Fatalf("round %d: %s lists the deleted group", round, u.Username)
			}
		}
		if got, total := e.filtered(core.UserFilter{Tag: "t"}, 100); len(got) != 0 || total != 0 {
			t.Fatalf("round %d: tag holders %v (total %d) after the group's deletion", round, got, total)
		}
	}
	e.doctorClean(e.s)
}
