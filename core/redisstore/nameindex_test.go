package redisstore_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// nameIndexPrefixes are the username prefixes the name index tests filter by.
var nameIndexPrefixes = []string{"a", "ann", "ann1", "ANN2", "b", "bob3", "c", "cat39", "d", "dan", "e", "z"}

// testNameIndex writes users enough to split the username index's buckets
// several times, in random order, and checks every prefix filter against a
// model (names, their order and Total, page after page) before and after
// deletions, then that Doctor finds nothing, reports names missing, left over
// or in the wrong bucket and repairs them, and that a store emptied holds no
// key of the index.
func testNameIndex(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	prefix := newPrefix()
	s := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var names []string
	for i := range 480 { // 160 "ann": more than the 100 names a filtered page reads at a time
		names = append(names, []string{"ann", "ann", "bob", "cat", "dan", "Eve"}[i%6]+strconv.Itoa(i))
	}
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	ids := map[string]string{}
	for _, n := range names {
		u := core.User{ID: core.NewID(), Username: n, IsActive: true}
		must(t, s.CreateUser(ctx, &u))
		ids[n] = u.ID
	}
	buckets := nameBucketKeys(t, admin, prefix)
	if len(buckets) < 4 {
		t.Fatalf("%d users in %d name buckets (%q): the test wants splits", len(names), len(buckets), buckets)
	}
	checkPrefixes(ctx, t, s, names)

	// Deletions, emptying whole ranges (every "dan") and thinning the rest.
	var left []string
	for i, n := range names {
		if strings.HasPrefix(n, "dan") || i%3 == 0 {
			must(t, s.DeleteUser(ctx, ids[n]))
			continue
		}
		left = append(left, n)
	}
	checkPrefixes(ctx, t, s, left)
	nameDoctor(ctx, t, s, false, nil)

	// Damage: a name gone, a name whose user is gone, a name in the wrong
	// bucket.
	buckets = nameBucketKeys(t, admin, prefix)
	first, err := admin.ZRange(ctx, prefix+buckets[0], 0, 0).Result()
	must(t, err)
	last, err := admin.ZRange(ctx, prefix+buckets[len(buckets)-1], -1, -1).Result()
	must(t, err)
	must(t, admin.ZRem(ctx, prefix+buckets[0], first[0]).Err())
	must(t, admin.ZAdd(ctx, prefix+buckets[0], redis.Z{Member: "ann0-ghost"}).Err())
	must(t, admin.ZRem(ctx, prefix+buckets[len(buckets)-1], last[0]).Err())
	must(t, admin.ZAdd(ctx, prefix+buckets[0], redis.Z{Member: last[0]}).Err())
	want := []string{ // a name out of its bucket is missing from it too
		"undir missing " + strconv.Quote(first[0]),
		"undir missing " + strconv.Quote(last[0]),
		"the username index holds \"ann0-ghost\"",
		buckets[0] + " holds " + strconv.Quote(last[0]) + ", which belongs in another bucket",
	}
	nameDoctor(ctx, t, s, false, want)
	nameDoctor(ctx, t, s, true, want)
	nameDoctor(ctx, t, s, false, nil)
	checkPrefixes(ctx, t, s, left)

	for _, n := range left {
		must(t, s.DeleteUser(ctx, ids[n]))
	}
	for _, k := range rawKeys(t, admin, prefix) {
		if strings.HasPrefix(k, "{ix}:un") {
			t.Errorf("key %s of the name index left in an emptied store", k)
		}
	}
	checkPrefixes(ctx, t, s, nil)
}

// testNameUpgrade writes users, turns their username index into the single
// P {ix}:unames of the layout before the name buckets ("<UsernameKey>\x00<uid>",
// scores 0) with an earlier upgrade's lock still held for a moment, and starts
// a store on it: its first filter waits for the move and answers as before,
// no old key is left, and Doctor finds nothing.
func testNameUpgrade(t *testing.T, opts *redis.UniversalOptions, admin redis.UniversalClient, fastForward func(time.Duration)) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	prefix := newPrefix()
	s := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	defer s.Close()
	var names []string
	var members []redis.Z
	for i := range 300 {
		u := core.User{ID: core.NewID(), Username: []string{"Ann", "bob", "cat"}[i%3] + strconv.Itoa(i), IsActive: true}
		must(t, s.CreateUser(ctx, &u))
		names = append(names, u.Username)
		members = append(members, redis.Z{Member: strings.ToLower(u.Username) + "\x00" + u.ID})
	}
	// A user deleted whose entry the old index kept: no one's name now.
	members = append(members, redis.Z{Member: "ann-gone\x00" + core.NewID()})
	for _, k := range nameBucketKeys(t, admin, prefix) {
		must(t, admin.Del(ctx, prefix+k).Err())
	}
	must(t, admin.ZAdd(ctx, prefix+"{ix}:unames", members...).Err())
	must(t, admin.Set(ctx, prefix+"{ix}:unames:upgrading", "a dead instance", 300*time.Millisecond).Err())
	if fastForward != nil {
		time.AfterFunc(300*time.Millisecond, func() { fastForward(time.Second) })
	}

	s2 := redisstore.New(redisstore.NewClient(opts), loaded(redisstore.Options{Prefix: prefix}))
	defer s2.Close()
	must(t, s2.UpgradeIndexes(ctx))
	keys := rawKeys(t, admin, prefix)
	for _, k := range []string{"{ix}:unames", "{ix}:unames:upgrading"} {
		if slices.Contains(keys, k) {
			t.Errorf("%s left after the upgrade", k)
		}
	}
	// The name left by a deleted user is counted in Total, as the old index
	// counted it, until Doctor removes it.
	nameDoctor(ctx, t, s2, false, []string{`the username index holds "ann-gone"`})
	nameDoctor(ctx, t, s2, true, []string{`the username index holds "ann-gone"`})
	nameDoctor(ctx, t, s2, false, nil)
	checkPrefixes(ctx, t, s2, names)
}

// nameBucketKeys lists the buckets of the name index under prefix (without
// it), in their numbers' order.
func nameBucketKeys(t *testing.T, admin redis.UniversalClient, prefix string) []string {
	t.Helper()
	var out []string
	for _, k := range rawKeys(t, admin, prefix) {
		if strings.HasPrefix(k, "{ix}:un:") {
			out = append(out, k)
		}
	}
	num := func(k string) int { n, _ := strconv.Atoi(strings.TrimPrefix(k, "{ix}:un:")); return n }
	slices.SortFunc(out, func(a, b string) int { return num(a) - num(b) })
	return out
}

// checkPrefixes lists the users of every prefix of nameIndexPrefixes, 7 a
// page, and compares them with the names that have it, in UsernameKey order
// (lower case, for these names), and each page's Total with their number.
func checkPrefixes(ctx context.Context, t *testing.T, s *redisstore.Store, names []string) {
	t.Helper()
	// Every name (the empty prefix, which no filter sends), however few
	// buckets the count reads a call.
	for _, per := range []int{1, 2, 5, 512} {
		if n, err := redisstore.CountNames(ctx, s, "", per); err != nil || n != int64(len(names)) {
			t.Errorf("every name counted %d buckets a call: %d, %v; want %d", per, n, err, len(names))
		}
	}
	for _, p := range nameIndexPrefixes {
		var want []string
		for _, n := range names {
			if strings.HasPrefix(strings.ToLower(n), strings.ToLower(p)) {
				want = append(want, n)
			}
		}
		slices.SortFunc(want, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
		var got []string
		for start, pages := int64(0), 0; ; pages++ {
			page, err := s.ListUsers(ctx, core.ListOptions{Start: start, Count: 7, Users: core.UserFilter{Username: p}})
			must(t, err)
			if page.Total != int64(len(want)) {
				t.Errorf("prefix %q, page %d: Total %d, want %d", p, pages, page.Total, len(want))
			}
			for _, u := range page.Items {
				got = append(got, u.Username)
			}
			if start = page.NextKey; start == 0 || pages > 100 {
				break
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("users of prefix %q (-want +got):\n%s", p, d)
		}
		// The count, however few buckets it reads a call.
		for _, per := range []int{1, 2, 5} {
			if n, err := redisstore.CountNames(ctx, s, p, per); err != nil || n != int64(len(want)) {
				t.Errorf("prefix %q counted %d buckets a call: %d, %v; want %d", p, per, n, err, len(want))
			}
		}
		// With a second filter a page walks the whole prefix, 100 names at
		// a time, to count its matches.
		active := true
		page, err := s.ListUsers(ctx, core.ListOptions{Count: 7, Users: core.UserFilter{Username: p, Active: &active}})
		must(t, err)
		got = got[:0]
		for _, u := range page.Items {
			got = append(got, u.Username)
		}
		if d := cmp.Diff(want[:min(7, len(want))], got, cmpopts.EquateEmpty()); d != "" || page.Total != int64(len(want)) {
			t.Errorf("active users of prefix %q: Total %d, want %d (-want +got):\n%s", p, page.Total, len(want), d)
		}
	}
}

// nameDoctor runs Doctor and compares what it reports of the username index
// (its DanglingIndex entries that name it, each without its key prefix) with
// want, in any order.
func nameDoctor(ctx context.Context, t *testing.T, s *redisstore.Store, repair bool, want []string) {
	t.Helper()
	rep, err := s.Doctor(ctx, repair)
	must(t, err)
	var got []string
	for _, e := range rep.DanglingIndex {
		if strings.Contains(e, "{ix}:un") || strings.Contains(e, "username index") {
			got = append(got, strings.TrimPrefix(e, "{ix}:"))
		}
	}
	for i, w := range want {
		want[i] = strings.TrimPrefix(w, "{ix}:")
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Doctor(repair %v) on the username index (-want +got):\n%s\nall: %q", repair, d, rep.DanglingIndex)
	}
}
