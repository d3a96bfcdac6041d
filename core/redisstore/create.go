package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

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

	// key and record, when record is set, make the write one SET NX of key
	// (the entity's record, numbered n, as record encodes it) and its undo a
	// compare-and-delete of it; write and undo are then left nil. On one
	// server (not a Cluster) the create then runs in two round trips
	// (createAtOnce). taken names the entity in a Conflict when key exists:
	// `user id "..."`.
	key    string
	record func(n int64) (string, error)
	taken  string
	// fenced, when set, lets the create end with the fence and WAIT of
	// Options.WaitReplicas in its final round trip, and is set when it did
	// (replicated then has nothing left to wait for): for a method that
	// writes nothing after its create.
	fenced *bool
}

// entry is one member of a global zset or set that lists an entity.
type entry struct {
	key    string
	member string
	score  float64 // in a zset
	set    bool    // a member of a set (SADD) rather than of a zset (ZADD)
	// counter, for a bucket of a list index (listEntry), is the list's
	// counter, moved by one script with the bucket when the member is added
	// or removed; for the username index (nameEntry), P {ix}:unseq.
	counter string
	// names, for the username index (nameEntry), is the prefix of its
	// buckets' keys: the entry is the name member in the bucket the
	// directory key gives, added and removed by nameEditSource.
	names string
}

// add queues the entry's addition on p.
func (e entry) add(ctx context.Context, p redis.Pipeliner) { p.Do(ctx, e.addArgs()...) }

// addArgs is the command that adds the entry: SADD or ZADD.
func (e entry) addArgs() []any {
	switch {
	case e.set:
		return []any{"SADD", e.key, e.member}
	case e.names != "":
		return []any{"EVAL", nameEditSource, 2, e.key, e.counter, "add", e.names, e.member}
	case e.counter != "":
		return []any{"EVAL", listAddScript, 2, e.key, e.counter, e.score, e.member}
	}
	return []any{"ZADD", e.key, e.score, e.member}
}

// remove queues the entry's removal on p.
func (e entry) remove(ctx context.Context, p redis.Pipeliner) {
	switch {
	case e.set:
		p.SRem(ctx, e.key, e.member)
	case e.names != "":
		p.Do(ctx, "EVAL", nameEditSource, 2, e.key, e.counter, "rem", e.names, e.member)
	case e.counter != "":
		p.Do(ctx, "EVAL", listRemScript, 2, e.key, e.counter, e.member)
	default:
		p.ZRem(ctx, e.key, e.member)
	}
}

// dropEntries removes the entries and then releases the claims hs, in one
// pipeline. The username index holds a name without its owner, so a name's
// entry must be gone before its claim is free: else another user's create of
// the same name could add its entry first and lose it to this removal. One
// server runs a pipeline in order; a Cluster client sends it to the nodes at
// once, so there the entries go first, in a round trip of their own, when one
// of them is a name's.
func (s *Store) dropEntries(ctx context.Context, entries []entry, hs []held) error {
	_, cluster := s.rdb.(*redis.ClusterClient)
	first := cluster && len(hs) > 0 && slices.ContainsFunc(entries, func(e entry) bool { return e.names != "" })
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entries {
			e.remove(ctx, p)
		}
		if !first {
			releaseAll(ctx, p, hs)
		}
		return nil
	})
	if first {
		_, err2 := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			releaseAll(ctx, p, hs)
			return nil
		})
		err = cmp.Or(err, err2)
	}
	return err
}

// create runs the create protocol of the package comment ("Writes") and returns
// the entity's number, in three sequential round trips when nothing is
// contested:
//
//  1. one pipeline: each claim taken with HSETNX, stamped with the store's
//     clock (claimAll), Redis TIME, and the INCR of the counter: a number
//     burnt by a failure is never reused. A claim found taken is then taken
//     over if it is free (claimFree), one claim at a time, else Conflict
//     names it;
//  2. the write in the owner's slot;
//  3. one pipeline: the index entries, then the final check: the claims still
//     hold our value and less than Options.WriteDeadline has passed since t0,
//     else Conflict.
//
// An entity written by one SET NX (c.record), on one server, takes two
// (createAtOnce): 2 and 3 in one MULTI.
//
// A failure before the write releases the claims; a failure after it undoes
// the write, removes the entries and releases the claims, under one clean-up
// bound. Each numbered item is one write step, bounded by Options.WriteTimeout
// (and so is each contested claim). The test hook (InterruptNext) stops a
// create right after its write, as a crash there would; a create it is set
// for takes the three steps, which have that point.
func (s *Store) create(ctx context.Context, c create) (int64, error) {
	if err := s.writeReady(ctx); err != nil {
		return 0, fail(ctx, c.op, err)
	}
	if c.record != nil {
		if s.atOnce && !s.interrupt.Load() {
			// As many creates hold a connection as the pool can spare (hold);
			// the others take three round trips.
			if hctx, release, ok := s.tryHold(ctx); ok {
				defer release()
				return s.createAtOnce(hctx, c)
			}
		}
		c.write, c.undo = s.recordWrite(c)
	}
	cr := &creation{s: s, op: c.op, owner: c.owner}
	n, err := cr.claimAll(ctx, s.rdb, c.claims, s.counter(c), nil)
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

// counter is the counter a create INCRs: none for an import, which keeps its
// number, or for an entity without one.
func (s *Store) counter(c create) string {
	if c.seq != "" && c.number <= 0 {
		return s.k.seq(c.seq)
	}
	return ""
}

// recordWrite returns the write and undo of a create by record: SET NX of
// c.key, and the compare-and-delete of what it wrote.
func (s *Store) recordWrite(c create) (write func(context.Context, int64) error, undo func(context.Context) bool) {
	var data string
	write = func(ctx context.Context, n int64) error {
		var err error
		if data, err = c.record(n); err != nil {
			return err
		}
		ok, err := s.rdb.SetNX(ctx, c.key, data, 0).Result()
		if err == nil && !ok {
			err = core.Errorf(core.Conflict, c.op, "%s is taken", c.taken)
		}
		return err
	}
	return write, func(ctx context.Context) bool { return s.undoRecord(ctx, c.key, data) }
}

// undoRecord deletes key if it still holds data, and reports whether it did.
func (s *Store) undoRecord(ctx context.Context, key, data string) bool {
	n, err := cadScript.Run(ctx, s.rdb, []string{key}, data).Int()
	return err == nil && n == 1
}

// atOnceLimit bounds the creates in createAtOnce at once on a client whose
// pool holds poolSize connections: each holds one connection from its first
// round trip to its second, and on a contested path needs a second one (a
// claim taken over, a release, an undo). Leaving a quarter of the pool to
// others, the holders can never wait on each other for all of it; a create
// beyond the bound takes three round trips.
func atOnceLimit(poolSize int) int { return max(1, poolSize*3/4) }

// createAtOnce runs the create protocol in two round trips, on one
// connection, for an entity written by one SET NX on one server:
//
//  1. one pipeline: WATCH and EXISTS of the entity's key, then claimAll's
//     claims, TIME and INCR. The key existing is Conflict;
//  2. one pipeline: MULTI, the SET NX, the index entries, TIME and the
//     claims' HGET (the final check, as finish makes it), EXEC; then, when
//     c.fenced is set and the store waits for replicas, the fence and WAIT.
//
// The MULTI runs whole or not at all, and only if nobody wrote the key since
// step 1 (WATCH), so the entries are never added for an entity another
// create wrote; a server runs it in order, so the check still follows the
// write it vouches for. A failed check is rolled back as create's.
func (s *Store) createAtOnce(ctx context.Context, c create) (n int64, err error) {
	cr := &creation{s: s, op: c.op, owner: c.owner}
	var data string
	var entries []entry
	err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		var exists *redis.IntCmd
		watching := true // until EXEC: a WATCH left on a pooled connection would fail another's MULTI
		defer func() {
			if watching {
				ctx, cancel := s.bounds.cleanup(ctx)
				defer cancel()
				_ = tx.Unwatch(ctx).Err()
			}
		}()
		n, err = cr.claimAll(ctx, tx, c.claims, s.counter(c), func(p redis.Pipeliner) {
			p.Do(ctx, "WATCH", c.key)
			exists = p.Exists(ctx, c.key)
		})
		if err == nil && exists.Val() != 0 {
			err = core.Errorf(core.Conflict, c.op, "%s is taken", c.taken)
		}
		if err == nil && c.number > 0 {
			n = c.number
			err = s.bounds.step(ctx, func(ctx context.Context) error { return s.keepNumber(ctx, c.op, c.seq, n) })
		}
		if err == nil {
			data, err = c.record(n)
		}
		if err != nil {
			cr.abort(ctx)
			return err
		}
		if c.index != nil {
			entries = c.index(n)
		}
		var written bool
		var acks *redis.Cmd
		err = s.bounds.step(ctx, func(ctx context.Context) error {
			var err error
			written, acks, err = cr.finishAtOnce(ctx, tx, c, data, entries, &watching)
			return err
		})
		switch {
		case err == nil && acks != nil:
			*c.fenced = true
			err = s.acknowledged(ctx, c.op, acks)
		case err == nil:
		case written:
			c.undo = func(ctx context.Context) bool { return s.undoRecord(ctx, c.key, data) }
			s.rollback(ctx, c, entries, cr)
		default:
			cr.abort(ctx)
		}
		return err
	})
	if err != nil {
		return 0, fail(ctx, c.op, err)
	}
	return n, nil
}

// finishAtOnce is createAtOnce's second round trip: the MULTI of the write,
// the entries and the final check, and the fence and WAIT when c.fenced is
// set and the store waits for replicas (acks, WAIT's reply, for the caller
// to judge: it does not undo a write). written is false only when the MULTI
// certainly wrote nothing (the key was written since it was watched:
// Conflict); otherwise an error is rolled back. watching becomes false once
// EXEC answered, which ends the WATCH.
func (cr *creation) finishAtOnce(ctx context.Context, tx *redis.Tx, c create, data string, entries []entry, watching *bool) (written bool, acks *redis.Cmd, err error) {
	s := cr.s
	var at time.Time // the check's time, when the store has its own clock
	if s.clock != nil {
		at = s.clock.Now()
	}
	var exec *redis.Cmd
	sent := time.Now()
	// The pipeline's own error is its first command's to fail, maybe WAIT's:
	// EXEC's reply alone says what was written.
	_, _ = tx.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Do(ctx, "MULTI")
		p.Do(ctx, "SET", c.key, data, "NX")
		for _, e := range entries {
			e.add(ctx, p)
		}
		if s.clock == nil {
			p.Do(ctx, "TIME")
		}
		for _, h := range cr.held {
			p.Do(ctx, "HGET", h.bucket, h.name)
		}
		exec = p.Do(ctx, "EXEC")
		if c.fenced != nil && s.waitReplicas > 0 {
			p.Publish(ctx, s.k.fence(), s.origin)
			acks = p.Do(ctx, "WAIT", s.waitReplicas, s.waitTimeout.Milliseconds())
		}
		return nil
	})
	replies, err := exec.Slice()
	if err == nil || errors.Is(err, redis.Nil) || redis.IsExecAbortError(err) {
		*watching = false
	}
	if errors.Is(err, redis.Nil) { // EXEC refused: the key was written since WATCH
		return false, nil, core.Errorf(core.Conflict, c.op, "%s is taken", c.taken)
	}
	if err != nil {
		return true, nil, err
	}
	want := 1 + len(entries) + len(cr.held)
	if s.clock == nil {
		want++
	}
	if len(replies) != want {
		return true, nil, fmt.Errorf("redisstore: EXEC answered %d replies for %d commands", len(replies), want)
	}
	for _, r := range replies {
		if rerr, ok := r.(error); ok {
			return true, nil, rerr
		}
	}
	if replies[0] == nil {
		return true, nil, core.Errorf(core.Conflict, c.op, "%s is taken", c.taken)
	}
	gets := replies[1+len(entries):]
	if s.clock == nil {
		if at, err = timeReply(gets[0]); err != nil {
			return true, nil, err
		}
		s.learnClock(sent, at)
		gets = gets[1:]
	}
	return true, acks, cr.judge(at, func(i int) (string, error) {
		v, _ := gets[i].(string) // nil: the claim is gone
		return v, nil
	})
}

// timeReply reads a TIME reply inside EXEC's: seconds and microseconds.
func timeReply(v any) (time.Time, error) {
	parts, ok := v.([]any)
	if ok && len(parts) == 2 {
		sec, err1 := strconv.ParseInt(fmt.Sprint(parts[0]), 10, 64)
		usec, err2 := strconv.ParseInt(fmt.Sprint(parts[1]), 10, 64)
		if err1 == nil && err2 == nil {
			return time.Unix(sec, usec*1000), nil
		}
	}
	return time.Time{}, fmt.Errorf("redisstore: unexpected TIME reply %v", v)
}

// The claims' clock. A claim records when it was taken, on the store's clock:
// Options.Clock, else Redis'. Rather than a script reading Redis TIME as each
// claim is written, a claim carries the process' estimate of Redis' clock:
// the local clock plus the offset measured by the last TIME reply (every
// create reads one in each of its pipelines, learnClock), taken from when
// that pipeline was sent, so that the estimate runs ahead of Redis by at most
// a round trip rather than behind. Safety does not rest on the estimate
// (claimAll's t0 is the earlier of it and Redis TIME); only a process that
// has never read Redis' clock reads it first, once.

// redisClock is the store's estimate of Redis' clock: its offset from the
// local clock, once known.
type redisClock struct {
	offset atomic.Int64 // nanoseconds, Redis' clock minus the local one
	known  atomic.Bool
}

// claimTime is the time a claim taken now records.
func (s *Store) claimTime(ctx context.Context) (time.Time, error) {
	if s.clock != nil {
		return s.clock.Now(), nil
	}
	if !s.redisClock.known.Load() { // a process's first claim: one TIME, a write step of its own
		sent := time.Now()
		t, err := stepValue(ctx, s.bounds, func(ctx context.Context) (time.Time, error) { return s.rdb.Time(ctx).Result() })
		if err != nil {
			return time.Time{}, err
		}
		s.learnClock(sent, t)
	}
	return time.Now().Add(time.Duration(s.redisClock.offset.Load())), nil
}

// learnClock records Redis' clock read as t by a command sent at sent.
func (s *Store) learnClock(sent, t time.Time) {
	s.redisClock.offset.Store(int64(t.Sub(sent)))
	s.redisClock.known.Store(true)
}

// rollback undoes a create whose write succeeded: the write, then (if undone)
// its index entries together with the release of its claims, in one pipeline.
// Errors are ignored: what is left behind is skipped by readers, goes stale
// (claims) and is removed by Doctor.
func (s *Store) rollback(ctx context.Context, c create, entries []entry, cr *creation) {
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	if !c.undo(ctx) {
		entries = nil
	}
	_ = s.dropEntries(ctx, entries, cr.held)
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
	taken, err := s.numbered(ctx, seq, n)
	if err != nil {
		return err
	}
	if taken != "" {
		return core.Errorf(core.Conflict, op, "%s number %d is taken", strings.TrimSuffix(seq, "s"), n)
	}
	return raiseScript.Run(ctx, s.rdb, []string{s.k.seq(seq)}, n).Err()
}
