package redisstore

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// create describes one create for Store.create: what the entity claims, which
// counter numbers it, how it is written in its owner's slot, how the global
// keys list it, and how its write is undone.
type create struct {
	op     string
	owner  string  // the owner the claims carry: the user or client whose slot holds the entity (a client key: "<cid>/<keyID>")
	claims []claim // unique names, taken in order before anything is written
	seq    string  // the counter that numbers the entity, P seq:<seq>; "" for an entity without a number (n is 0)
	// number, when > 0, is the entity's number as the caller gave it (an
	// import): it is kept instead of taking the next one, refused (Conflict)
	// when P idx:<seq> lists another entity under it, and the counter is
	// raised to at least it, so later creates number above it.
	number int64
	// write stores the entity's own keys, numbered n, in the owner's slot in one
	// atomic command (SET NX, or a WATCH and MULTI that checks its
	// preconditions, through Store.watch). A precondition that fails is a
	// *core.Error (Invalid, Conflict): nothing was written.
	write func(ctx context.Context, n int64) error
	// index lists the entries of global keys that list the entity numbered n:
	// list indexes, name sets, P idx:expiring (nil: none).
	index func(n int64) []entry
	// undo removes what write stored if it is still as written, and reports
	// whether it did: only then are the index entries removed too, since an
	// entry that another write now owns must stay.
	undo func(ctx context.Context) bool
}

// entry is one member of a global zset or set that lists an entity.
type entry struct {
	key    string
	member string
	score  float64 // in a zset
	set    bool    // a member of a set (SADD) rather than of a zset (ZADD)
}

// add queues the entry's addition on p.
func (e entry) add(ctx context.Context, p redis.Pipeliner) {
	if e.set {
		p.SAdd(ctx, e.key, e.member)
	} else {
		p.ZAdd(ctx, e.key, redis.Z{Score: e.score, Member: e.member})
	}
}

// remove queues the entry's removal on p.
func (e entry) remove(ctx context.Context, p redis.Pipeliner) {
	if e.set {
		p.SRem(ctx, e.key, e.member)
	} else {
		p.ZRem(ctx, e.key, e.member)
	}
}

// create runs the create protocol of the package comment ("Writes") and returns
// the entity's number, in three sequential round trips when nothing is
// contested:
//
//  1. one pipeline: each claim taken with SET NX at the store's clock (a
//     script reading Redis TIME, so the claim's time is Redis'), and the INCR
//     of the counter: a number burnt by a failure is never reused. t0 is the
//     earliest of the claims' times. A claim found taken is then taken over
//     if it is free (claimFree), one claim at a time, else Conflict names it;
//  2. the write in the owner's slot;
//  3. one pipeline: the index entries, then the final check: the claims still
//     hold our value and less than Options.WriteDeadline has passed since t0,
//     else Conflict.
//
// A failure before the write releases the claims; a failure after it undoes
// the write, removes the entries and releases the claims, under one clean-up
// bound. Each numbered item is one write step, bounded by Options.WriteTimeout
// (and so is each contested claim). The test hook (InterruptNext) stops a
// create right after its write, as a crash there would.
func (s *Store) create(ctx context.Context, c create) (int64, error) {
	cr := &creation{s: s, op: c.op, owner: c.owner}
	counter := "" // the counter to INCR: none for an import, which keeps its number
	if c.seq != "" && c.number <= 0 {
		counter = s.k.seq(c.seq)
	}
	n, err := cr.claimAll(ctx, c.claims, counter)
	if err == nil && c.seq != "" && c.number > 0 {
		n = c.number
		err = s.bounds.step(ctx, func(ctx context.Context) error { return s.keepNumber(ctx, c.op, c.seq, n) })
	}
	if err == nil {
		err = s.bounds.step(ctx, func(ctx context.Context) error { return c.write(ctx, n) })
	}
	if err != nil {
		cr.abort(ctx)
		return 0, fail(ctx, c.op, err)
	}
	if s.interrupted() {
		return 0, errInterrupted
	}
	var entries []entry
	if c.index != nil {
		entries = c.index(n)
	}
	err = s.bounds.step(ctx, func(ctx context.Context) error { return cr.finish(ctx, entries) })
	if err != nil {
		s.rollback(ctx, c, entries, cr)
		return 0, fail(ctx, c.op, err)
	}
	return n, nil
}

// rollback undoes a create whose write succeeded: the write, then (if undone)
// its index entries together with the release of its claims, in one pipeline.
// Errors are ignored: what is left behind is skipped by readers, goes stale
// (claims) and is removed by Doctor.
func (s *Store) rollback(ctx context.Context, c create, entries []entry, cr *creation) {
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	undone := c.undo(ctx)
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if undone {
			for _, e := range entries {
				e.remove(ctx, p)
			}
		}
		releaseAll(ctx, p, cr.held)
		return nil
	})
	cr.held = nil
}

// raiseScript sets the counter KEYS[1] to ARGV[1] unless it is already at
// least that.
var raiseScript = redis.NewScript(`
local n = tonumber(ARGV[1])
if (tonumber(redis.call('GET', KEYS[1]) or '0') or 0) < n then
  redis.call('SET', KEYS[1], n)
end
return 1`)

// keepNumber makes n, a number the caller chose, the entity's: Conflict when
// the list index of seq already holds an entity under n, else the counter is
// raised to at least n. Two imports racing for one number are not told apart
// (imports run one at a time); a number burnt by a failed create is free.
func (s *Store) keepNumber(ctx context.Context, op, seq string, n int64) error {
	score := strconv.FormatInt(n, 10)
	taken, err := s.rdb.ZRangeByScore(ctx, s.k.idx(seq), &redis.ZRangeBy{Min: score, Max: score, Count: 1}).Result()
	if err != nil {
		return err
	}
	if len(taken) > 0 {
		return core.Errorf(core.Conflict, op, "%s number %d is taken", strings.TrimSuffix(seq, "s"), n)
	}
	return raiseScript.Run(ctx, s.rdb, []string{s.k.seq(seq)}, n).Err()
}
