package redisstore

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// Groups live in one hash, P groups (id → JSON of groupRecord): the registry
// that /verify reads in its one pipeline, as it reads P scopes. A user's
// record lists its groups' ids; P {ix}:gm:<gid> lists a group's members and
// P {ix}:tag:<tag> the users holding a tag effectively (own or a group's).
// Readers take a user's groups from the record and check them against the
// registry, so a group deleted (or a grant racing a deletion) is never seen
// on a user, whatever the index entries still say.

func groupNotFound(op, what string) error {
	return core.Errorf(core.NotFound, op, "group %s not found", what)
}

// CreateGroup stores g with the create protocol: the name claimed
// (case-insensitively), P seq:groups, the record written with HSETNX, then its
// P idx:groups entry.
func (s *Store) CreateGroup(ctx context.Context, g *core.Group) (err error) {
	const op = "redisstore.CreateGroup"
	defer s.replicated(ctx, op, &err)
	switch {
	case g == nil || !validID(g.ID):
		return core.Errorf(core.Invalid, op, "group id is not valid")
	case g.Name == "":
		return core.Errorf(core.Invalid, op, "group name is empty")
	}
	defer func() { s.changed(ctx, "", err) }()
	var data string
	n, err := s.create(ctx, create{
		op: op, owner: g.ID, claims: []claim{s.groupNameClaim(g.Name)}, seq: listGroups, number: g.Number,
		write: func(ctx context.Context, n int64) error {
			ng := *g
			ng.Number = n
			var err error
			if data, err = encode(op, toGroupRecord(ng)); err != nil {
				return err
			}
			ok, err := s.rdb.HSetNX(ctx, s.k.groups(), g.ID, data).Result()
			if err == nil && !ok {
				err = core.Errorf(core.Conflict, op, "group id %q is taken", g.ID)
			}
			return err
		},
		index: func(n int64) []entry {
			return []entry{{key: s.k.idx(listGroups), member: g.ID, score: float64(n)}}
		},
		undo: func(ctx context.Context) bool {
			n, err := hcadScript.Run(ctx, s.rdb, []string{s.k.groups()}, g.ID, data).Int()
			return err == nil && n == 1
		},
	})
	if err != nil {
		return err
	}
	g.Number = n
	return nil
}

// GetGroup returns the group with that id, or NotFound.
func (s *Store) GetGroup(ctx context.Context, id string) (core.Group, error) {
	const op = "redisstore.GetGroup"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	if !validID(id) {
		return core.Group{}, groupNotFound(op, strconv.Quote(id))
	}
	data, err := s.rdb.HGet(ctx, s.k.groups(), id).Result()
	if errors.Is(err, redis.Nil) {
		return core.Group{}, groupNotFound(op, strconv.Quote(id))
	}
	if err != nil {
		return core.Group{}, fail(ctx, op, err)
	}
	r, err := decode[groupRecord](op, s.k.groups(), data)
	if err != nil {
		return core.Group{}, err
	}
	return r.group(), nil
}

// GroupByName returns the group holding the name's claim, if its record still
// carries the name.
func (s *Store) GroupByName(ctx context.Context, name string) (core.Group, error) {
	const op = "redisstore.GroupByName"
	c := s.groupNameClaim(name)
	rctx, cancel := s.bounds.reading(ctx)
	v, ok, err := s.claimValue(rctx, c)
	cancel()
	if err != nil {
		return core.Group{}, fail(rctx, op, err)
	}
	if !ok || name == "" {
		return core.Group{}, groupNotFound(op, strconv.Quote(name))
	}
	g, err := s.GetGroup(ctx, claimOwner(v))
	if err == nil && core.GroupNameKey(g.Name) != c.name {
		err = groupNotFound(op, strconv.Quote(name))
	}
	return g, err
}

// GroupByNumber returns the group with that number, from P idx:groups.
func (s *Store) GroupByNumber(ctx context.Context, n int64) (core.Group, error) {
	const op = "redisstore.GroupByNumber"
	notFound := groupNotFound(op, strconv.FormatInt(n, 10))
	if n <= 0 {
		return core.Group{}, notFound
	}
	rctx, cancel := s.bounds.reading(ctx)
	num := strconv.FormatInt(n, 10)
	ids, err := s.rdb.ZRangeByScore(rctx, s.k.idx(listGroups), &redis.ZRangeBy{Min: num, Max: num, Count: 1}).Result()
	cancel()
	if err != nil {
		return core.Group{}, fail(rctx, op, err)
	}
	if len(ids) == 0 {
		return core.Group{}, notFound
	}
	g, err := s.GetGroup(ctx, ids[0])
	if core.KindOf(err) == core.NotFound || (err == nil && g.Number != n) {
		return core.Group{}, notFound
	}
	return g, err
}

// Groups returns the registry by id.
func (s *Store) Groups(ctx context.Context) (map[string]core.Group, error) {
	const op = "redisstore.Groups"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, s.k.groups()).Result()
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return s.decodeGroups(op, m)
}

// decodeGroups decodes the fields of P groups.
func (s *Store) decodeGroups(op string, m map[string]string) (map[string]core.Group, error) {
	out := make(map[string]core.Group, len(m))
	for id, data := range m {
		r, err := decode[groupRecord](op, s.k.groups()+" "+id, data)
		if err != nil {
			return nil, err
		}
		out[id] = r.group()
	}
	return out, nil
}

// UpdateGroup applies fn under WATCH of P groups; a new name is claimed first
// and the old one released after the write. Tags added reach the members'
// P {ix}:tag entries with one ZUNIONSTORE in the {ix} slot; tags removed are
// taken off each member that no longer holds them otherwise.
func (s *Store) UpdateGroup(ctx context.Context, id string, fn func(*core.Group) error) (_ core.Group, err error) {
	const op = "redisstore.UpdateGroup"
	defer s.replicated(ctx, op, &err)
	if !validID(id) {
		return core.Group{}, groupNotFound(op, strconv.Quote(id))
	}
	defer func() { s.changed(ctx, "", err) }()
	key := s.k.groups()
	var old, next core.Group
	var cr *creation
	var toFree []held
	err = s.watch(ctx, op, "group "+strconv.Quote(id), func(ctx context.Context, tx *redis.Tx) error {
		if cr != nil {
			cr.abort(ctx) // an earlier attempt's claim
		}
		cr, toFree = nil, nil
		data, err := tx.HGet(ctx, key, id).Result()
		if errors.Is(err, redis.Nil) {
			return groupNotFound(op, strconv.Quote(id))
		}
		if err != nil {
			return err
		}
		r, err := decode[groupRecord](op, key, data)
		if err != nil {
			return err
		}
		old = r.group()
		next = r.group()
		next.Tags = slices.Clone(old.Tags)
		if err := fn(&next); err != nil {
			return &fnError{err}
		}
		next.ID, next.Number, next.CreatedAt = old.ID, old.Number, old.CreatedAt
		if next.Name == "" {
			return core.Errorf(core.Invalid, op, "group name is empty")
		}
		if oc, nc := s.groupNameClaim(old.Name), s.groupNameClaim(next.Name); !oc.same(nc) {
			if cr, err = s.begin(ctx, op, id); err != nil {
				return err
			}
			if err := cr.claim(ctx, nc); err != nil {
				return err
			}
			if toFree, err = s.heldByOne(ctx, []claim{oc}, id); err != nil {
				return err
			}
			if err := cr.check(ctx); err != nil {
				return err
			}
		}
		out, err := encode(op, toGroupRecord(next))
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, id, out)
			return nil
		})
		return err
	}, key)
	if err != nil {
		if cr != nil {
			cr.abort(ctx)
		}
		return core.Group{}, fail(ctx, op, err)
	}
	s.release(ctx, toFree)
	if err := s.syncGroupTags(ctx, id, old.Tags, next.Tags); err != nil {
		return next, fail(ctx, op, err)
	}
	return next, nil
}

// syncGroupTags brings the members' P {ix}:tag entries in line with a
// group's tags changing from old to next.
func (s *Store) syncGroupTags(ctx context.Context, gid string, old, next []string) error {
	var added, removed []string
	for _, t := range next {
		if !slices.Contains(old, t) {
			added = append(added, t)
		}
	}
	for _, t := range old {
		if !slices.Contains(next, t) {
			removed = append(removed, t)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return nil
	}
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	gm := s.k.groupMembers(gid)
	if len(added) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, t := range added {
				p.ZUnionStore(ctx, s.k.tagUsers(t), &redis.ZStore{Keys: []string{s.k.tagUsers(t), gm}, Aggregate: "MAX"})
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if len(removed) == 0 {
		return nil
	}
	members, err := s.rdb.ZRange(ctx, gm, 0, -1).Result()
	if err != nil {
		return err
	}
	return s.dropTags(ctx, members, removed)
}

// dropTags removes the P {ix}:tag entries of tags from those of users that no
// longer hold them effectively, reading their records and the registry.
func (s *Store) dropTags(ctx context.Context, uids, tags []string) error {
	const op = "redisstore.dropTags"
	if len(uids) == 0 || len(tags) == 0 {
		return nil
	}
	regData, err := s.rdb.HGetAll(ctx, s.k.groups()).Result()
	if err != nil {
		return err
	}
	reg, err := s.decodeGroups(op, regData)
	if err != nil {
		return err
	}
	for batch := range slices.Chunk(uids, 500) {
		keys := make([]string, len(batch))
		for i, uid := range batch {
			keys[i] = s.k.user(uid)
		}
		vals, oks, err := s.getMany(ctx, keys)
		if err != nil {
			return err
		}
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, uid := range batch {
				var have []string
				if oks[i] {
					if r, err := decode[userRecord](op, keys[i], vals[i]); err == nil {
						have = core.EffectiveTags(r.user(), reg)
					}
				}
				for _, t := range tags {
					if !slices.Contains(have, t) {
						p.ZRem(ctx, s.k.tagUsers(t), uid)
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// DeleteGroup removes the group from the registry (readers stop seeing it on
// any user then), frees its name and P idx:groups entry, then takes it off
// each member's record and its tags off the members' P {ix}:tag entries, and
// deletes P {ix}:gm:<gid>. A grant racing the deletion finds the group gone
// after its own write and undoes itself (UpdateUser); what a crash leaves is
// invisible to readers and removed by Doctor.
func (s *Store) DeleteGroup(ctx context.Context, id string, check ...func(core.Group) error) (err error) {
	const op = "redisstore.DeleteGroup"
	defer s.replicated(ctx, op, &err)
	if !validID(id) {
		return groupNotFound(op, strconv.Quote(id))
	}
	defer func() { s.changed(ctx, "", err) }()
	key := s.k.groups()
	var old core.Group
	var after cleanup
	err = s.watch(ctx, op, "group "+strconv.Quote(id), func(ctx context.Context, tx *redis.Tx) error {
		after = cleanup{}
		data, err := tx.HGet(ctx, key, id).Result()
		if errors.Is(err, redis.Nil) {
			return groupNotFound(op, strconv.Quote(id))
		}
		if err != nil {
			return err
		}
		r, err := decode[groupRecord](op, key, data)
		if err != nil {
			return err
		}
		old = r.group()
		if err := runChecks(old, check); err != nil {
			return err
		}
		after.zrem(s.k.idx(listGroups), id)
		after.claims = append(after.claims, s.groupNameClaim(old.Name))
		if err := after.readClaims(ctx, s, id); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HDel(ctx, key, id)
			return nil
		})
		return err
	}, key)
	if err != nil {
		return fail(ctx, op, err)
	}
	if err := after.run(ctx, s); err != nil {
		return fail(ctx, op, err)
	}
	return fail(ctx, op, s.sweepGroup(ctx, id, old.Tags))
}

// sweepGroup takes a deleted group off its members' records and indexes.
func (s *Store) sweepGroup(ctx context.Context, gid string, tags []string) error {
	gm := s.k.groupMembers(gid)
	for {
		rctx, cancel := s.bounds.cleanup(ctx)
		members, err := s.rdb.ZRange(rctx, gm, 0, 499).Result()
		cancel()
		if err != nil {
			return err
		}
		if len(members) == 0 {
			return nil
		}
		for _, uid := range members {
			_, err := s.UpdateUser(ctx, uid, func(u *core.User) error {
				if !slices.Contains(u.Groups, gid) {
					return errUnchanged
				}
				u.Groups = slices.DeleteFunc(slices.Clone(u.Groups), func(g string) bool { return g == gid })
				return nil
			})
			if err != nil && !errors.Is(err, errUnchanged) && core.KindOf(err) != core.NotFound {
				return err
			}
		}
		cctx, cancel := s.bounds.cleanup(ctx)
		err = s.dropTags(cctx, members, tags)
		if err == nil {
			err = s.rdb.ZRem(cctx, gm, toAny(members)...).Err()
		}
		cancel()
		if err != nil {
			return err
		}
	}
}

// errUnchanged stops an update that has nothing to change.
var errUnchanged = errors.New("unchanged")

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// ListGroups returns one page of groups in Number order, from P idx:groups.
func (s *Store) ListGroups(ctx context.Context, opt core.ListOptions) (core.Page[core.Group], error) {
	const op = "redisstore.ListGroups"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	entries, next, total, err := s.page(ctx, s.k.idx(listGroups), opt)
	if err != nil {
		return core.Page[core.Group]{}, fail(ctx, op, err)
	}
	out := core.Page[core.Group]{Items: []core.Group{}, NextKey: next, Total: total}
	if len(entries) == 0 {
		return out, nil
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.member
	}
	vals, err := s.rdb.HMGet(ctx, s.k.groups(), ids...).Result()
	if err != nil {
		return core.Page[core.Group]{}, fail(ctx, op, err)
	}
	for _, v := range vals {
		data, ok := v.(string)
		if !ok {
			continue
		}
		r, err := decode[groupRecord](op, s.k.groups(), data)
		if err != nil {
			return core.Page[core.Group]{}, err
		}
		out.Items = append(out.Items, r.group())
	}
	return out, nil
}
