package redisstore

import (
	"context"
	"errors"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// filterIndexes checks the groups and the users' filter indexes against the
// records, and with repair rebuilds them:
//   - P idx:groups against the registry P groups (entries of groups gone,
//     groups missing from it);
//   - every user's entries in the username index, {ix}:inactive, {ix}:gm:<gid> and
//     {ix}:tag:<tag> (missing ones are added), and group ids on a user
//     whose group is gone (removed from the record);
//   - the username index's buckets (namePlaces: names out of their bucket
//     moved, the directory's members of buckets gone removed);
//   - every entry of those indexes that its user's record does not call for
//     (removed): a name whose claim's owner's record is gone or has another
//     username.
//
// The users are walked through their list index, so it runs after the list
// index is repaired.
func (d *doctor) filterIndexes(ctx context.Context, ixKeys []string, nameBuckets []int64) error {
	var reg map[string]core.Group
	err := d.s.bounds.step(ctx, func(ctx context.Context) (err error) {
		reg, err = d.s.groupRegistry(ctx, d.op)
		return err
	})
	if err != nil {
		return err
	}
	if err := d.groupIndex(ctx, reg); err != nil {
		return err
	}
	want := map[string]bool{} // "<key>\x00<member>" of every entry the records call for
	err = d.listBuckets(ctx, listUsers, func(ctx context.Context, _ int64, kvs [][]redis.Z) error {
		var keys []string
		for _, zs := range kvs {
			for _, z := range zs {
				if m, _ := z.Member.(string); validID(m) {
					keys = append(keys, d.s.k.user(m))
				}
			}
		}
		vals, oks, err := d.s.getMany(ctx, keys)
		if err != nil {
			return err
		}
		var es []entry
		for i := range keys {
			if !oks[i] {
				continue
			}
			r, err := decode[userRecord](d.op, keys[i], vals[i])
			if err != nil {
				continue
			}
			u := r.user()
			var gone []string
			for _, g := range u.Groups {
				if !hasGroup(reg, g) {
					gone = append(gone, g)
				}
			}
			if len(gone) > 0 {
				d.add(&d.dangling, "user %s lists deleted groups %v", u.ID, gone)
				if d.repair {
					if _, err := d.s.UpdateUser(ctx, u.ID, func(u *core.User) error {
						u.Groups = slices.DeleteFunc(slices.Clone(u.Groups), func(g string) bool { return slices.Contains(gone, g) })
						return nil
					}); err != nil && core.KindOf(err) != core.NotFound {
						return err
					}
				}
			}
			for _, e := range d.s.userIndexEntries(u, u.Number, reg) {
				d.mu.Lock()
				want[e.key+"\x00"+e.member] = true
				d.mu.Unlock()
				es = append(es, e)
			}
		}
		return d.entriesPresent(ctx, es)
	})
	if err != nil {
		return err
	}
	if err := d.namePlaces(ctx, nameBuckets); err != nil {
		return err
	}
	dir := d.s.k.nameDir()
	for _, b := range nameBuckets {
		err := d.zscan(ctx, d.s.k.nameBucket(b), func(ctx context.Context, kv []string) error {
			var extra []string
			for i := 0; i+1 < len(kv); i += 2 {
				if !want[dir+"\x00"+kv[i]] {
					extra = append(extra, kv[i])
				}
			}
			extra, err := d.stillExtraNames(ctx, extra)
			if err != nil {
				return err
			}
			for _, m := range extra {
				d.add(&d.dangling, "the username index holds %q", m)
			}
			if d.repair && len(extra) > 0 {
				_, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					for _, m := range extra {
						d.s.nameEntry(m).remove(ctx, p)
					}
					return nil
				})
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, key := range ixKeys {
		err := d.zscan(ctx, key, func(ctx context.Context, kv []string) error {
			var extra []string
			for i := 0; i+1 < len(kv); i += 2 {
				if !want[key+"\x00"+kv[i]] {
					extra = append(extra, kv[i])
				}
			}
			extra, err := d.stillExtra(ctx, key, extra, reg)
			if err != nil {
				return err
			}
			for _, m := range extra {
				d.add(&d.dangling, "%s holds %q", key[len(d.s.k.p):], m)
			}
			if d.repair && len(extra) > 0 {
				return d.s.rdb.ZRem(ctx, key, toAny(extra)...).Err()
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// stillExtra returns the members of an index key that their user's record,
// read now, does not call for (a user written since the walk keeps its entries).
func (d *doctor) stillExtra(ctx context.Context, key string, members []string, reg map[string]core.Group) ([]string, error) {
	if len(members) == 0 {
		return nil, nil
	}
	keys := make([]string, len(members))
	for i, m := range members {
		if validID(m) {
			keys[i] = d.s.k.user(m)
		}
	}
	vals, oks, err := d.getSome(ctx, keys)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, m := range members {
		called := false
		if oks[i] {
			if r, err := decode[userRecord](d.op, keys[i], vals[i]); err == nil {
				u := r.user()
				called = slices.ContainsFunc(d.s.userIndexEntries(u, u.Number, reg), func(e entry) bool { return e.key == key && e.member == m })
			}
		}
		if !called {
			out = append(out, m)
		}
	}
	return out, nil
}

// stillExtraNames returns the names of the username index that no user's
// record calls for, read now: the owner of the name's claim is gone or has
// another username (a user written since the walk keeps its name).
func (d *doctor) stillExtraNames(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	keys := make([]string, len(names))
	for i, n := range names {
		v, ok, err := d.s.claimValue(ctx, d.s.newClaim(kindUsername, n, ""))
		if err != nil {
			return nil, err
		}
		if uid := claimOwner(v); ok && validID(uid) {
			keys[i] = d.s.k.user(uid)
		}
	}
	vals, oks, err := d.getSome(ctx, keys)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, n := range names {
		called := false
		if oks[i] {
			if r, err := decode[userRecord](d.op, keys[i], vals[i]); err == nil {
				called = usernameIndexKey(r.Username) == n
			}
		}
		if !called {
			out = append(out, n)
		}
	}
	return out, nil
}

// entriesPresent reports the index entries missing among es, and adds them
// with repair.
func (d *doctor) entriesPresent(ctx context.Context, es []entry) error {
	if len(es) == 0 {
		return nil
	}
	present := make([]bool, len(es))
	cmds := make([]*redis.FloatCmd, len(es))
	var names []string // the username index's entries, checked by nameScript
	var at []int
	_, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range es {
			if e.names != "" {
				names, at = append(names, e.member), append(at, i)
				continue
			}
			cmds[i] = p.ZScore(ctx, e.key, e.member)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for i, c := range cmds {
		present[i] = c == nil || !errors.Is(c.Err(), redis.Nil)
	}
	if len(names) > 0 {
		has, err := d.s.namesPresent(ctx, names)
		if err != nil {
			return err
		}
		for j, i := range at {
			present[i] = has[j]
		}
	}
	var missing []entry
	for i, e := range es {
		if !present[i] {
			d.add(&d.dangling, "%s missing %q", e.key[len(d.s.k.p):], e.member)
			missing = append(missing, e)
		}
	}
	if !d.repair || len(missing) == 0 {
		return nil
	}
	_, err = d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range missing {
			e.add(ctx, p)
		}
		return nil
	})
	return err
}

// groupIndex checks P idx:groups against the registry.
func (d *doctor) groupIndex(ctx context.Context, reg map[string]core.Group) error {
	zkey := d.s.k.idx(listGroups)
	var es []entry
	for id, g := range reg {
		es = append(es, entry{key: zkey, member: id, score: float64(g.Number)})
	}
	if err := d.s.bounds.step(ctx, func(ctx context.Context) error { return d.entriesPresent(ctx, es) }); err != nil {
		return err
	}
	return d.zscan(ctx, zkey, func(ctx context.Context, kv []string) error {
		var gone []any
		for i := 0; i+1 < len(kv); i += 2 {
			if !hasGroup(reg, kv[i]) {
				d.add(&d.dangling, "idx:%s %s", listGroups, kv[i])
				gone = append(gone, kv[i])
			}
		}
		if d.repair && len(gone) > 0 {
			// A create may have written its record meanwhile: only those
			// still missing from the registry go.
			vals, err := d.s.rdb.HMGet(ctx, d.s.k.groups(), toStrings(gone)...).Result()
			if err != nil {
				return err
			}
			var rem []any
			for i, v := range vals {
				if v == nil {
					rem = append(rem, gone[i])
				}
			}
			if len(rem) > 0 {
				return d.s.rdb.ZRem(ctx, zkey, rem...).Err()
			}
		}
		return nil
	})
}

func toStrings(vs []any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i], _ = v.(string)
	}
	return out
}
