package storetest

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/core"
)

// listed is one page of a list reduced to what paging is judged on.
type listed struct {
	numbers     []int64
	next, total int64
}

// walkList reads a list page by page from the number from with pages of
// count, and returns the numbers in the order read and the total of every
// page. A page may be short, even empty, as long as its NextKey carries on;
// the walk fails the test when it repeats a cursor or does not end.
func walkList(t *testing.T, what string, from int64, count int, page func(core.ListOptions) (listed, error)) ([]int64, []int64) {
	t.Helper()
	var numbers, totals []int64
	seen := map[int64]bool{}
	for start, i := from, 0; ; i++ {
		if i > 1000 {
			t.Fatalf("%s with count %d: no end after 1000 pages", what, count)
		}
		p, err := page(core.ListOptions{Start: start, Count: count})
		if err != nil {
			t.Fatalf("%s from %d, count %d: %v", what, start, count, err)
		}
		if len(p.numbers) > count {
			t.Fatalf("%s from %d, count %d: %d items", what, start, count, len(p.numbers))
		}
		numbers, totals = append(numbers, p.numbers...), append(totals, p.total)
		if p.next == 0 {
			return numbers, totals
		}
		if p.next <= start || seen[p.next] {
			t.Fatalf("%s from %d, count %d: NextKey %d does not move on", what, start, count, p.next)
		}
		seen[p.next] = true
		start = p.next
	}
}

// checkList walks a list with several page sizes and wants exactly want, in
// order, and every page's total len(want).
func checkList(t *testing.T, what string, want []int64, page func(core.ListOptions) (listed, error)) {
	t.Helper()
	for _, count := range []int{2, 7, 129} {
		got, totals := walkList(t, what, 0, count, page)
		if !slices.Equal(got, want) {
			t.Errorf("%s with pages of %d: %v, want %v", what, count, got, want)
		}
		for _, n := range totals {
			if n != int64(len(want)) {
				t.Errorf("%s with pages of %d: a page's Total %d, want %d", what, count, n, len(want))
				break
			}
		}
	}
	// From cursors a client may hold: every number from a bucket's end to
	// the next bucket's start, where a page reads two partly.
	for _, from := range []int64{100, 110, 115, 117, 120, 125, 127, 128, 133, 200, 999, 4999, 69990} {
		wantFrom := slices.DeleteFunc(slices.Clone(want), func(n int64) bool { return n < from })
		if got, _ := walkList(t, what, from, 7, page); !slices.Equal(got, wantFrom) {
			t.Errorf("%s from %d with pages of 7: %v, want %v", what, from, got, wantFrom)
		}
	}
}

// testListPaging: the global lists of users, apps and credentials page in
// number order across stretches of numbers far apart (an import keeps its
// number: a store may index them in buckets of numbers), before and after
// deletions that empty whole stretches, with exact totals, and a page read
// by offset (Gaio's numbered pages) is the same slice of the list.
func testListPaging(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	numbers := []int64{1, 2, 3, 126, 127, 128, 129, 130, 131, 132, 133, 255, 256, 300, 1000, 1001, 5000, 70000, 70001, 200000}
	users := map[int64]core.User{}
	for _, n := range numbers {
		u := e.newUser("p" + strconv.FormatInt(n, 10))
		u.Number = n
		e.must(s.CreateUser(ctx, &u))
		users[n] = u
	}
	owner := users[1].ID
	for _, n := range numbers {
		a := e.newApp(owner, "app "+strconv.FormatInt(n, 10))
		a.Seq = n
		e.must(s.CreateApp(ctx, &a))
		c := e.newCred(core.KeyAuth, "pk-"+strconv.FormatInt(n, 10), users[n].ID, users[n].ID)
		c.Seq = n
		e.must(s.CreateCredential(ctx, &c))
	}
	userPage := func(opt core.ListOptions) (listed, error) {
		p, err := s.ListUsers(ctx, opt)
		out := listed{next: p.NextKey, total: p.Total}
		for _, u := range p.Items {
			out.numbers = append(out.numbers, u.Number)
		}
		return out, err
	}
	appPage := func(opt core.ListOptions) (listed, error) {
		p, err := s.ListApps(ctx, opt)
		out := listed{next: p.NextKey, total: p.Total}
		for _, a := range p.Items {
			out.numbers = append(out.numbers, a.Seq)
		}
		return out, err
	}
	credPage := func(opt core.ListOptions) (listed, error) {
		p, err := s.ListCredentials(ctx, opt)
		out := listed{next: p.NextKey, total: p.Total}
		for _, c := range p.Items {
			out.numbers = append(out.numbers, c.Seq)
		}
		return out, err
	}
	check := func(when string, want []int64) {
		t.Helper()
		checkList(t, "users "+when, want, userPage)
		checkList(t, "apps "+when, want, appPage)
		checkList(t, "credentials "+when, want, credPage)
		for _, off := range []int{0, 1, 4, 5, len(want) - 1, len(want), len(want) + 3} {
			p, err := s.ListUsers(ctx, core.ListOptions{Count: 3, Offset: int64(off)})
			e.must(err)
			var got []int64
			for _, u := range p.Items {
				got = append(got, u.Number)
			}
			wantPage := want[min(off, len(want)):min(off+3, len(want))]
			if !slices.Equal(got, wantPage) || p.Total != int64(len(want)) {
				t.Errorf("users %s at offset %d: %v (Total %d), want %v (Total %d)", when, off, got, p.Total, wantPage, len(want))
			}
		}
	}
	check("as created", numbers)

	// Deletions empty the stretches 126..133 and 255..300 and leave 1000 alone
	// in its own.
	gone := []int64{126, 127, 128, 129, 130, 131, 132, 133, 255, 256, 300, 1001}
	for _, n := range gone {
		e.must(s.DeleteUser(ctx, users[n].ID))
	}
	var left []int64
	for _, n := range numbers {
		if !slices.Contains(gone, n) {
			left = append(left, n)
		}
	}
	// The apps all belong to user 1: delete theirs one by one, and the
	// deleted users' credentials went with them.
	apps, err := s.ListApps(ctx, core.ListOptions{Count: 100})
	e.must(err)
	for _, a := range apps.Items {
		if slices.Contains(gone, a.Seq) {
			e.must(s.DeleteApp(ctx, a.ID))
		}
	}
	checkList(t, "users after deletions", left, userPage)
	checkList(t, "apps after deletions", left, appPage)
	checkList(t, "credentials after deletions", left, credPage)
	e.must(s.DeleteCredential(ctx, core.KeyAuth, "pk-5000"))
	checkList(t, "credentials after one more deletion", slices.DeleteFunc(slices.Clone(left), func(n int64) bool { return n == 5000 }), credPage)
	if u, err := s.UserByNumber(ctx, 70001); err != nil || u.ID != users[70001].ID {
		t.Errorf("UserByNumber(70001) = %q, %v", u.ID, err)
	}
	if _, err := s.UserByNumber(ctx, 128); core.KindOf(err) != core.NotFound {
		t.Errorf("UserByNumber(128) of a deleted user: %v", err)
	}
}

// testListConcurrency: creates and deletes of users with their keys racing
// leave the lists and their totals exactly the users and keys that remain.
func testListConcurrency(t *testing.T, h Harness) {
	e := newEnv(t, h)
	ctx, s := e.ctx, e.s
	const workers, each = 4, 12
	var mu sync.Mutex
	kept := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("race-%d-%d", w, i)
				u := e.newUser(name)
				if err := s.CreateUser(ctx, &u); err != nil {
					errs <- err
					return
				}
				c := e.newCred(core.KeyAuth, "rk-"+name, u.ID, u.ID)
				if err := s.CreateCredential(ctx, &c); err != nil {
					errs <- err
					return
				}
				if i%3 == 1 {
					if err := s.DeleteUser(ctx, u.ID); err != nil {
						errs <- err
						return
					}
					continue
				}
				mu.Lock()
				kept[u.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var ids []string
	for start := int64(0); ; {
		p, err := s.ListUsers(ctx, core.ListOptions{Start: start, Count: 5})
		e.must(err)
		if p.Total != int64(len(kept)) {
			t.Errorf("ListUsers Total %d after racing creates and deletes, want %d", p.Total, len(kept))
		}
		for _, u := range p.Items {
			ids = append(ids, u.ID)
		}
		if start = p.NextKey; start == 0 {
			break
		}
	}
	slices.Sort(ids)
	var want []string
	for id := range kept {
		want = append(want, id)
	}
	slices.Sort(want)
	diff(t, "the users listed after racing creates and deletes", want, ids)
	creds, err := s.ListCredentials(ctx, core.ListOptions{Count: 1000})
	e.must(err)
	if creds.Total != int64(len(kept)) || len(creds.Items) != len(kept) {
		t.Errorf("ListCredentials after racing creates and deletes: %d items, Total %d, want %d", len(creds.Items), creds.Total, len(kept))
	}
}
