package redisstore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// The users' filter indexes (the username index's name buckets, {ix}:inactive, {ix}:gm:<gid>,
// {ix}:tag:<tag>) follow the user records: a create adds its entries with its
// list entry, an update writes the entries of what it changed after its own
// write, a delete removes them with its clean-up. An entry can so be missing
// or left over after a crash, never wrong for long: ListUsers checks every
// candidate against its record, and Doctor rebuilds them.

// usernameIndexKey is the form usernames are filtered by prefix in.
func usernameIndexKey(s string) string {
	if k, err := core.UsernameKey(s); err == nil {
		return k
	}
	return strings.ToLower(s)
}

// userIndexEntries lists the filter-index entries of a user (numbered n),
// given the group registry.
func (s *Store) userIndexEntries(u core.User, n int64, reg map[string]core.Group) []entry {
	es := []entry{s.nameEntry(usernameIndexKey(u.Username))}
	if !u.IsActive {
		es = append(es, entry{key: s.k.inactive(), member: u.ID, score: float64(n)})
	}
	for _, g := range u.Groups {
		if _, ok := reg[g]; ok {
			es = append(es, entry{key: s.k.groupMembers(g), member: u.ID, score: float64(n)})
		}
	}
	for _, t := range core.EffectiveTags(u, reg) {
		es = append(es, entry{key: s.k.tagUsers(t), member: u.ID, score: float64(n)})
	}
	return es
}

// registry reads P groups.
func (s *Store) groupRegistry(ctx context.Context, op string) (map[string]core.Group, error) {
	m, err := s.rdb.HGetAll(ctx, s.k.groups()).Result()
	if err != nil {
		return nil, err
	}
	return s.decodeGroups(op, m)
}

// checkGroups answers NotFound naming the first of gids missing from reg.
func checkGroups(op string, gids []string, reg map[string]core.Group) error {
	for _, g := range gids {
		if _, ok := reg[g]; !ok {
			return core.Errorf(core.NotFound, op, "group %q not found", g)
		}
	}
	return nil
}

// checkAddedGroups answers NotFound when next lists a group old does not that
// is not in the registry.
func (s *Store) checkAddedGroups(ctx context.Context, op string, old, next []string) error {
	var added []string
	for _, g := range next {
		if !slices.Contains(old, g) {
			added = append(added, g)
		}
	}
	if len(added) == 0 {
		return nil
	}
	vals, err := s.rdb.HMGet(ctx, s.k.groups(), added...).Result()
	if err != nil {
		return err
	}
	for i, v := range vals {
		if v == nil {
			return core.Errorf(core.NotFound, op, "group %q not found", added[i])
		}
	}
	return nil
}

// syncUserIndexes writes the filter-index entries of what an update changed,
// after the user's own write. The order makes a grant racing a group's
// deletion safe: the user's P {ix}:gm entry is written before the registry is
// read, so a deletion that finds no entry removed the group from the registry
// before that read, and this update takes the group off the user again (as
// if the deletion came after); the tags are written next, and checked against
// the registry once more. Errors are ignored like syncExpiring's: ListUsers
// checks records, and Doctor rebuilds the indexes.
func (s *Store) syncUserIndexes(ctx context.Context, old, next core.User) {
	const op = "redisstore.syncUserIndexes"
	groupsChanged := !slices.Equal(old.Groups, next.Groups)
	tagsChanged := groupsChanged || !slices.Equal(old.Tags, next.Tags)
	if old.IsActive == next.IsActive && !tagsChanged {
		return
	}
	cctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	n := float64(next.Number)
	_, _ = s.rdb.Pipelined(cctx, func(p redis.Pipeliner) error {
		switch {
		case old.IsActive && !next.IsActive:
			p.ZAdd(cctx, s.k.inactive(), redis.Z{Score: n, Member: next.ID})
		case !old.IsActive && next.IsActive:
			p.ZRem(cctx, s.k.inactive(), next.ID)
		}
		for _, g := range old.Groups {
			if !slices.Contains(next.Groups, g) {
				p.ZRem(cctx, s.k.groupMembers(g), next.ID)
			}
		}
		for _, g := range next.Groups {
			if !slices.Contains(old.Groups, g) {
				p.ZAdd(cctx, s.k.groupMembers(g), redis.Z{Score: n, Member: next.ID})
			}
		}
		return nil
	})
	if !tagsChanged {
		return
	}
	reg, err := s.groupRegistry(cctx, op)
	if err != nil {
		return
	}
	was, now := core.EffectiveTags(old, reg), core.EffectiveTags(next, reg)
	s.writeTags(cctx, next, n, was, now)
	if reg2, err := s.groupRegistry(cctx, op); err == nil {
		if after := core.EffectiveTags(next, reg2); !slices.Equal(after, now) {
			s.writeTags(cctx, next, n, now, after)
		}
		reg = reg2
	}
	var gone []string
	for _, g := range next.Groups {
		if !hasGroup(reg, g) {
			gone = append(gone, g)
		}
	}
	if len(gone) > 0 {
		_, _ = s.UpdateUser(ctx, next.ID, func(u *core.User) error {
			u.Groups = slices.DeleteFunc(slices.Clone(u.Groups), func(g string) bool { return slices.Contains(gone, g) })
			return nil
		})
	}
}

// writeTags moves a user's P {ix}:tag entries from the tags was to now.
func (s *Store) writeTags(ctx context.Context, u core.User, n float64, was, now []string) {
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range was {
			if !slices.Contains(now, t) {
				p.ZRem(ctx, s.k.tagUsers(t), u.ID)
			}
		}
		for _, t := range now {
			p.ZAdd(ctx, s.k.tagUsers(t), redis.Z{Score: n, Member: u.ID})
		}
		return nil
	})
}

// listFilter is a users filter with its values normalised.
type listFilter struct {
	core.UserFilter
	prefix string // the username prefix, as usernameIndexKey writes it
	emailK string // the email as EmailKey writes it
}

// matches reports whether a user record satisfies every filter.
func (f listFilter) matches(u core.User, reg map[string]core.Group) bool {
	switch {
	case f.Email != "" && (u.Email == "" || core.EmailKey(u.Email) != f.emailK),
		f.ExternalID != "" && u.ExternalID != f.ExternalID,
		f.Active != nil && u.IsActive != *f.Active,
		f.Group != "" && (!slices.Contains(u.Groups, f.Group) || !hasGroup(reg, f.Group)),
		f.Tag != "" && !slices.Contains(core.EffectiveTags(u, reg), f.Tag),
		f.Username != "" && !strings.HasPrefix(usernameIndexKey(u.Username), f.prefix):
		return false
	}
	return true
}

func hasGroup(reg map[string]core.Group, gid string) bool {
	_, ok := reg[gid]
	return ok
}

// filterCount says how many of the filters are set.
func (f listFilter) count() int {
	n := 0
	for _, set := range []bool{f.Email != "", f.ExternalID != "", f.Active != nil, f.Group != "", f.Tag != "", f.Username != ""} {
		if set {
			n++
		}
	}
	return n
}

// source is the index a filtered users page walks: a zset by Number, the
// username index's name buckets (lex), or the users' bucketed list index
// (list set).
type source struct {
	key  string
	lex  bool
	list string
}

// listFiltered serves a filtered users page: it walks the most selective
// index from the cursor in batches, keeps the users whose records match every
// filter, and stops after one more than the page. Email and externalId are
// unique lookups. Total is the source's size when one filter is set (an index
// count, O(1)), else the count of matches over the whole source.
func (s *Store) listFiltered(ctx context.Context, opt core.ListOptions) (core.Page[core.User], error) {
	const op = "redisstore.ListUsers"
	f := listFilter{UserFilter: opt.Users}
	f.prefix = usernameIndexKey(f.Username)
	f.emailK = core.EmailKey(f.Email)
	out := core.Page[core.User]{Items: []core.User{}}
	reg, err := s.groupRegistry(ctx, op)
	if err != nil {
		return out, err
	}
	if f.Group != "" && !hasGroup(reg, f.Group) {
		return out, nil
	}
	n := pageCount(opt.Count)

	// Unique lookups: at most one candidate.
	if f.Email != "" || f.ExternalID != "" {
		kind, v := core.NameEmail, f.emailK
		if f.Email == "" {
			kind, v = core.NameExternalID, f.ExternalID
		}
		uid, ok, err := s.claimValue(ctx, s.newClaim(string(kind), v, ""))
		if err != nil || !ok {
			return out, err
		}
		r, ok, err := s.getUser(ctx, op, claimOwner(uid))
		if err != nil || !ok {
			return out, err
		}
		if u := r.user(); f.matches(u, reg) && u.Number >= opt.Start {
			out.Items, out.Total = append(out.Items, u), 1
		}
		return out, nil
	}

	src := source{list: listUsers}
	switch {
	case f.Group != "":
		src = source{key: s.k.groupMembers(f.Group)}
	case f.Tag != "":
		src = source{key: s.k.tagUsers(f.Tag)}
	case f.Active != nil && !*f.Active:
		src = source{key: s.k.inactive()}
	case f.Username != "":
		src = source{lex: true}
	}
	lo := "-inf"
	if src.lex {
		lo = "[" + f.prefix
	}
	if opt.Start > 0 {
		if !src.lex {
			lo = strconv.FormatInt(opt.Start, 10)
		} else {
			id, err := s.numbered(ctx, listUsers, opt.Start)
			if err != nil {
				return out, err
			}
			var r userRecord
			ok := false
			if id != "" {
				r, ok, err = s.getUser(ctx, op, id)
				if err != nil {
					return out, err
				}
			}
			if !ok {
				return out, core.InvalidFields(op, core.FieldError{Field: "start", Detail: "the user this cursor names is gone: start the list again"})
			}
			lo = "[" + usernameIndexKey(r.Username)
		}
	}
	total, counting := int64(0), f.count() > 1
	if !counting {
		if total, err = s.sourceSize(ctx, src, f); err != nil {
			return out, err
		}
	}
	for batch := max(n+1, 100); ; {
		members, next, more, err := s.walk(ctx, src, lo, f.prefix, batch)
		if err != nil {
			return out, err
		}
		keys := make([]string, len(members))
		for i, m := range members {
			keys[i] = s.k.user(m)
		}
		vals, oks, err := s.getMany(ctx, keys)
		if err != nil {
			return out, err
		}
		for i := range members {
			if !oks[i] {
				continue
			}
			r, err := decode[userRecord](op, keys[i], vals[i])
			if err != nil {
				return out, err
			}
			u := r.user()
			if !f.matches(u, reg) {
				continue
			}
			switch {
			case len(out.Items) < n:
				out.Items = append(out.Items, u)
			case out.NextKey == 0:
				out.NextKey = u.Number
			}
			if counting {
				total++
			}
		}
		if !more || (out.NextKey != 0 && !counting) {
			break
		}
		lo = next
	}
	out.Total = total
	return out, nil
}

// walk reads up to count members of a source from the bound lo, and returns
// the user ids, the bound to continue from (exclusive of what was read), and
// whether the source may hold more.
func (s *Store) walk(ctx context.Context, src source, lo, prefix string, count int) (uids []string, next string, more bool, err error) {
	if src.list != "" {
		start, _ := strconv.ParseInt(lo, 10, 64) // "-inf": 0
		es, n, _, err := s.pageList(ctx, src.list, core.ListOptions{Start: start, Count: count})
		if err != nil {
			return nil, "", false, err
		}
		for _, e := range es {
			if validID(e.member) {
				uids = append(uids, e.member)
			}
		}
		return uids, strconv.FormatInt(n, 10), n != 0, nil
	}
	if src.lex {
		if err := s.indexesReady(ctx); err != nil {
			return nil, "", false, err
		}
		names, next, err := s.nameRange(ctx, lo, "["+prefix+"\xff", count)
		if err != nil {
			return nil, "", false, err
		}
		uids, err := s.usernameOwners(ctx, names)
		return uids, next, next != "", err
	}
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, src.key, &redis.ZRangeBy{Min: lo, Max: "+inf", Count: int64(count)}).Result()
	if err != nil || len(zs) == 0 {
		return nil, "", false, err
	}
	for _, z := range zs {
		if m, ok := z.Member.(string); ok && validID(m) {
			uids = append(uids, m)
		}
	}
	return uids, "(" + strconv.FormatInt(int64(zs[len(zs)-1].Score), 10), len(zs) == count, nil
}

// sourceSize counts the users one filter selects from its index alone.
func (s *Store) sourceSize(ctx context.Context, src source, f listFilter) (int64, error) {
	if src.lex {
		if err := s.indexesReady(ctx); err != nil {
			return 0, err
		}
		return s.nameCount(ctx, "["+f.prefix, "["+f.prefix+"\xff")
	}
	if src.list != "" {
		if err := s.indexesReady(ctx); err != nil {
			return 0, err
		}
		var all *redis.StringCmd
		var off *redis.IntCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			all = s.listSize(ctx, p, src.list)
			if f.Active != nil && *f.Active {
				off = p.ZCard(ctx, s.k.inactive())
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return 0, err
		}
		n, err := countOf(all)
		if off != nil {
			n -= off.Val()
		}
		return max(n, 0), err
	}
	return s.rdb.ZCard(ctx, src.key).Result()
}

// ignoreNil turns redis.Nil into no error.
func ignoreNil(err error) error {
	if err == redis.Nil {
		return nil
	}
	return err
}
