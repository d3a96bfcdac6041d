package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// The list indexes of users, apps and credentials are kept in buckets: the
// entity numbered n is a member of the zset P {idx:<list>}:<n >> bucketBits>,
// scored by n, and P {idx:<list>}:count counts the members of all the
// buckets. A bucket holds at most bucketSize members, so with members of at
// most 64 bytes (a uid; a credential's "<uid>/<letter>/<keyId>") Redis keeps
// it as a listpack (zset-max-listpack-entries 128, -value 64 by default),
// about 40–75 bytes a member instead of a skiplist's dict entry, node and
// string (130–170). Every bucket and the counter share the slot {idx:<list>},
// as the single P idx:<list> zset did, so that one script adds or removes a
// member and moves the counter only when the member was added or removed: the
// counter is exact whatever the retries, races and rollbacks.
const (
	bucketBits = 7
	bucketSize = 1 << bucketBits
)

// listPageRounds bounds the round trips of one page of a bucketed list: a
// page that has not filled after them (buckets emptied by deletions) ends
// short, its NextKey the first number of the first bucket it did not read.
const listPageRounds = 4

// bucketedList reports whether list's index is bucketed; the others (clients,
// groups) keep their single zset P idx:<list>.
func bucketedList(list string) bool {
	return list == listUsers || list == listApps || list == listCreds
}

// bucketedLists are the lists whose index is bucketed, in the order the
// upgrade moves them.
var bucketedLists = []string{listUsers, listApps, listCreds}

// bucketOf is the bucket of number n.
func bucketOf(n int64) int64 { return max(n, 0) >> bucketBits }

// listAddScript adds ARGV[2] scored ARGV[1] to the bucket KEYS[1] and counts it
// in KEYS[2] if it was not there; listRemScript removes ARGV[1] and uncounts
// it if it was, deleting the counter at 0 (a store emptied holds no key of
// its lists). Sent as EVAL (in a pipeline or a MULTI, where EVALSHA's
// NOSCRIPT could not be retried); Redis caches the compiled script.
const (
	listAddScript = `if redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) == 1 then redis.call('INCR', KEYS[2]) end return 1`
	listRemScript = `if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 and redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end return 1`
)

// listEntry is the entry of the entity numbered n, member m, in list's index:
// its bucket and counter for a bucketed list, else P idx:<list>.
func (s *Store) listEntry(list, m string, n int64) entry {
	if !bucketedList(list) {
		return entry{key: s.k.idx(list), member: m, score: float64(n)}
	}
	return entry{key: s.k.listBucket(list, bucketOf(n)), member: m, score: float64(n), counter: s.k.listCount(list)}
}

// numbered returns the member of list's index numbered n ("" if none).
func (s *Store) numbered(ctx context.Context, list string, n int64) (string, error) {
	key := s.k.idx(list)
	if bucketedList(list) {
		if err := s.indexesReady(ctx); err != nil {
			return "", err
		}
		key = s.k.listBucket(list, bucketOf(n))
	}
	num := strconv.FormatInt(n, 10)
	ms, err := s.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: num, Max: num, Count: 1}).Result()
	if err != nil || len(ms) == 0 {
		return "", err
	}
	return ms[0], nil
}

// listSize is the exact number of members of list's index: its counter.
func (s *Store) listSize(ctx context.Context, p redis.Cmdable, list string) *redis.StringCmd {
	return p.Get(ctx, s.k.listCount(list))
}

// countOf reads a counter's GET: 0 when missing.
func countOf(c *redis.StringCmd) (int64, error) {
	v, err := c.Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// pageList reads one page of a bucketed list index: the entries from
// opt.Start (less opt.Offset skipped), the next cursor (0 at the end) and the
// index's size from its counter. The first round trip reads the counter, the
// list's number counter (its last bucket) and ceil((count+1)/128)+1 buckets
// from the cursor's, which cover the page when they are full, each with a
// LIMIT of what it would then have to give plus a slack of an eighth of the
// page (at least 1), so that a page of a dense store reads about what it
// returns, and one with a few holes still one round trip. A page still short goes on where it stopped, reading 4, then 8, then
// 16 buckets in one round trip each (listPageRounds in all), so a page costs
// O(page) whatever the store's size, and then ends short, its cursor the
// first number it did not read.
func (s *Store) pageList(ctx context.Context, list string, opt core.ListOptions) ([]pageEntry, int64, int64, error) {
	if err := s.indexesReady(ctx); err != nil {
		return nil, 0, 0, err
	}
	n := pageCount(opt.Count)
	pos := max(opt.Start, 0) // the first number not yet read
	b := bucketOf(pos)
	skip := max(opt.Offset, 0) // members of bucket b from pos to skip
	var total, last int64
	read := false // total and last are known
	if skip > 0 {
		var err error
		if b, skip, total, last, err = s.skipList(ctx, list, pos, skip); err != nil {
			return nil, 0, 0, err
		}
		read = true
	}
	out := make([]pageEntry, 0, n+1)
	slack := int64(n/8 + 8)
	for round := 0; ; round++ {
		need := int64(n + 1 - len(out))
		// The buckets of this round and each one's LIMIT.
		var limits []int64
		if round == 0 {
			// Always as many buckets for a page size, wherever the page starts
			// in its bucket, so that a page costs the same commands at any
			// size; one the page does not need when the buckets before are
			// full is read with LIMIT 1.
			covered := int64(0) // the numbers the buckets before can hold
			for i := range (need+bucketSize-1)/bucketSize + 1 {
				limits = append(limits, min(need, max(need-covered+slack, 1)))
				if i == 0 { // from pos, less what is skipped
					covered += max((b+1)<<bucketBits-max(pos, b<<bucketBits)-skip, 0)
				} else {
					covered += bucketSize
				}
			}
		} else {
			limits = make([]int64, 2<<round) // 4, 8, 16
			for i := range limits {
				limits[i] = need
			}
		}
		zs := make([]*redis.ZSliceCmd, len(limits))
		var cnt, seq *redis.StringCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			if !read {
				cnt, seq = s.listSize(ctx, p, list), p.Get(ctx, s.k.seq(list))
			}
			for i := range zs {
				lo, off := "-inf", int64(0)
				if i == 0 {
					lo, off = strconv.FormatInt(pos, 10), skip
				}
				zs[i] = p.ZRangeByScoreWithScores(ctx, s.k.listBucket(list, b+int64(i)), &redis.ZRangeBy{Min: lo, Max: "+inf", Offset: off, Count: limits[i]})
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, 0, 0, err
		}
		if !read {
			if total, err = countOf(cnt); err != nil {
				return nil, 0, 0, err
			}
			top, err := countOf(seq)
			if err != nil {
				return nil, 0, 0, err
			}
			last, read = bucketOf(top), true
		}
		// In bucket order, up to the first bucket that may have had more
		// than its LIMIT: what follows it is not known to come next.
		next := b + int64(len(zs)) // where the next round starts, its first number's bucket
		nextPos := next << bucketBits
		for i, c := range zs {
			got := c.Val()
			for _, z := range got {
				m, _ := z.Member.(string)
				out = append(out, pageEntry{member: m, score: int64(z.Score)})
			}
			if int64(len(got)) == limits[i] {
				next, nextPos = b+int64(i), int64(got[len(got)-1].Score)+1
				break
			}
		}
		if len(out) > n {
			return out[:n], out[n].score, total, nil
		}
		b, pos, skip = next, nextPos, 0
		if bucketOf(pos) != b { // the truncated bucket's last number was its last
			b = bucketOf(pos)
		}
		if b > last {
			return out, 0, total, nil
		}
		if round+1 >= listPageRounds {
			return out, pos, total, nil
		}
	}
}

// skipList finds where a page that skips skip members from start begins: the
// bucket and the members to skip in it, counting the members of buckets by
// ZCOUNT, 64 buckets a round trip (an offset costs O(offset / 128)). It also
// returns the list's size and last bucket.
func (s *Store) skipList(ctx context.Context, list string, start, skip int64) (b, rest, total, last int64, err error) {
	b = bucketOf(start)
	lo := strconv.FormatInt(start, 10)
	const per = 64
	for first := true; ; first = false {
		var cnt, seq *redis.StringCmd
		cs := make([]*redis.IntCmd, per)
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			if first {
				cnt, seq = s.listSize(ctx, p, list), p.Get(ctx, s.k.seq(list))
			}
			for i := range cs {
				cs[i] = p.ZCount(ctx, s.k.listBucket(list, b+int64(i)), lo, "+inf")
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return 0, 0, 0, 0, err
		}
		if first {
			if total, err = countOf(cnt); err != nil {
				return 0, 0, 0, 0, err
			}
			top, err := countOf(seq)
			if err != nil {
				return 0, 0, 0, 0, err
			}
			last = bucketOf(top)
		}
		for _, c := range cs {
			if c.Val() > skip {
				return b, skip, total, last, nil
			}
			skip -= c.Val()
			b++
			if b > last {
				return b, 0, total, last, nil
			}
		}
	}
}

// indexUpgrade is the state of a store's upgrade of the list indexes from the
// layout before the buckets: done once no P idx:<list> of a bucketed list is
// left; running is closed when the attempt under way ends.
type indexUpgrade struct {
	done    atomic.Bool
	mu      sync.Mutex
	running chan struct{}
	err     error
}

// upgradeTimeout bounds one attempt of the upgrade, which goes on in the
// background however soon the call that started it gives up waiting.
const upgradeTimeout = 10 * time.Minute

// indexesReady returns once the list indexes and the username index are in
// buckets: the first call of a store checks (one round trip) and, when a P
// idx:<list> or P {ix}:unames of the layout before is left, moves it into
// buckets (upgradeIndexes) in the background
// while callers wait, each within its own deadline. Every method that reads or
// writes a bucketed index calls it first, so no instance of this version
// reads or writes a bucket while an old index is being moved.
func (s *Store) indexesReady(ctx context.Context) error {
	if s.upgrade.done.Load() {
		return nil
	}
	u := &s.upgrade
	u.mu.Lock()
	if u.done.Load() {
		u.mu.Unlock()
		return nil
	}
	ch := u.running
	if ch == nil {
		ch = make(chan struct{})
		u.running = ch
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), upgradeTimeout)
			err := s.upgradeIndexes(ctx)
			cancel()
			u.mu.Lock()
			u.err = err
			if err == nil {
				u.done.Store(true)
			}
			u.running = nil
			u.mu.Unlock()
			close(ch)
		}()
	}
	u.mu.Unlock()
	select {
	case <-ch:
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.done.Load() {
			return nil
		}
		return fmt.Errorf("redisstore: upgrading the list indexes: %w", u.err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeReady is indexesReady for a write, within one write step (the move of
// old list indexes goes on beyond it); once the indexes are in buckets it
// returns at once, with no step's timer.
func (s *Store) writeReady(ctx context.Context) error {
	if s.upgrade.done.Load() {
		return nil
	}
	return s.bounds.step(ctx, s.indexesReady)
}

// UpgradeIndexes moves the list indexes P idx:users, P idx:apps and P
// idx:creds of the layout before the buckets into buckets, and the username
// index P {ix}:unames into name buckets, if any is left,
// and returns when none is (at once when this store has seen none): what the
// first use of a store does by itself, which gatehouse serve and doctor call
// at start under a generous deadline.
func (s *Store) UpgradeIndexes(ctx context.Context) error {
	return fail(ctx, "redisstore.UpgradeIndexes", s.indexesReady(ctx))
}

// upgradeBatch is how many members one step of the upgrade moves.
const upgradeBatch = 512

// upgradeLockTTL is how long an upgrader's lock lasts without its renewal
// (each batch renews it): an instance that died holding it blocks the others
// that long.
const upgradeLockTTL = 10 * time.Second

// upgradeMoveScript adds members to buckets while KEYS[1], the lock, holds
// ARGV[1], the upgrader's token: ARGV[2..] are score, member pairs and
// KEYS[3..] their buckets; each member not already there counts in KEYS[2].
// It renews the lock. It answers 0, writing nothing, when the lock is not the
// caller's (it expired and another instance took over).
var upgradeMoveScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local added = 0
for i = 3, #KEYS do
  added = added + redis.call('ZADD', KEYS[i], ARGV[2*i-3], ARGV[2*i-2])
end
if added > 0 then redis.call('INCRBY', KEYS[2], added) end
return 1`)

// upgradeIndexes moves each old list index into buckets, and then the old
// username index P {ix}:unames into name buckets (upgradeNames). The lists are moved
// one at a time, each under a lock in its buckets' slot that only one
// instance holds: it copies the old zset in score order, batch by batch (its
// members re-spelled: a credential's type becomes its letter), with a script
// that writes only while the lock is still its own, then deletes the old zset
// and releases the lock. An instance that finds the lock taken waits for it.
// A crash midway leaves the old zset whole and the buckets partly written: the
// next attempt copies again from the start, adding only what is missing (the
// counter counts only members added). No instance of this version touches a
// bucket before the old zset is gone (indexesReady), and no older one runs
// beside it (docs/scale.md: upgrade every instance at once), so nothing is
// removed from a bucket that a copy could bring back.
func (s *Store) upgradeIndexes(ctx context.Context) error {
	for {
		olds := make([]*redis.IntCmd, len(bucketedLists))
		var names *redis.IntCmd
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, l := range bucketedLists {
				olds[i] = p.Exists(ctx, s.k.idx(l))
			}
			names = p.Exists(ctx, s.k.usernames())
			return nil
		}); err != nil {
			return err
		}
		list := ""
		for i, c := range olds {
			if c.Val() > 0 {
				list = bucketedLists[i]
				break
			}
		}
		if list == "" {
			if names.Val() == 0 {
				return nil
			}
			if err := s.upgradeNames(ctx); err != nil {
				return err
			}
			continue
		}
		if err := s.upgradeList(ctx, list); err != nil {
			return err
		}
	}
}

// upgradeList moves the old index of list, under its lock; it returns nil
// also when another instance holds the lock, once that lock is gone.
func (s *Store) upgradeList(ctx context.Context, list string) error {
	lock, token := s.k.listLock(list), core.NewID()
	ok, err := s.rdb.SetNX(ctx, lock, token, upgradeLockTTL).Result()
	if err != nil {
		return err
	}
	if !ok { // another instance moves it: wait for its lock to go
		return waitLock(ctx, s.rdb, lock)
	}
	defer func() {
		ctx, cancel := s.bounds.cleanup(context.WithoutCancel(ctx))
		defer cancel()
		_ = cadScript.Run(ctx, s.rdb, []string{lock}, token).Err()
	}()
	old := s.k.idx(list)
	lo := "-inf"
	for {
		zs, err := s.rdb.ZRangeByScoreWithScores(ctx, old, &redis.ZRangeBy{Min: lo, Max: "+inf", Count: upgradeBatch}).Result()
		if err != nil {
			return err
		}
		if len(zs) == 0 {
			break
		}
		keys := []string{lock, s.k.listCount(list)}
		args := []any{token, upgradeLockTTL.Milliseconds()}
		for _, z := range zs {
			m, _ := z.Member.(string)
			if list == listCreds {
				at, ok := parseOldCredRef(m)
				if !ok {
					continue // malformed: an entry no reader could use
				}
				m = credRef(at.uid, at.typ, at.id)
			}
			keys = append(keys, s.k.listBucket(list, bucketOf(int64(z.Score))))
			args = append(args, z.Score, m)
		}
		if len(keys) > 2 {
			mine, err := upgradeMoveScript.Run(ctx, s.rdb, keys, args...).Int()
			if err != nil {
				return err
			}
			if mine != 1 {
				return fmt.Errorf("redisstore: the upgrade of idx:%s lost its lock", list)
			}
		}
		if len(zs) < upgradeBatch {
			break
		}
		// Members sharing the last score are re-read from it: the script adds
		// each only once.
		lo = strconv.FormatInt(int64(zs[len(zs)-1].Score), 10)
		if zs[0].Score == zs[len(zs)-1].Score {
			lo = "(" + lo
		}
	}
	return s.rdb.Del(ctx, old).Err()
}

// doctorBuckets is how many buckets one step of Doctor reads.
const doctorBuckets = 64

// listBuckets calls fn with the buckets of list's index, doctorBuckets at a time:
// kv holds the member, score pairs of bucket first+i in kvs[i]. The buckets
// are those up to the list's counter's (P seq:<list>), which no number
// exceeds. Each page (its reads and fn) is one step.
func (d *doctor) listBuckets(ctx context.Context, list string, fn func(ctx context.Context, first int64, kvs [][]redis.Z) error) error {
	var last int64
	err := d.s.bounds.step(ctx, func(ctx context.Context) error {
		top, err := countOf(d.s.rdb.Get(ctx, d.s.k.seq(list)))
		last = bucketOf(top)
		return err
	})
	if err != nil {
		return err
	}
	for first := int64(0); first <= last; first += doctorBuckets {
		err := d.s.bounds.step(ctx, func(ctx context.Context) error {
			cmds := make([]*redis.ZSliceCmd, min(doctorBuckets, last-first+1))
			if _, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := range cmds {
					cmds[i] = p.ZRangeWithScores(ctx, d.s.k.listBucket(list, first+int64(i)), 0, -1)
				}
				return nil
			}); err != nil {
				return err
			}
			kvs := make([][]redis.Z, len(cmds))
			for i, c := range cmds {
				kvs[i] = c.Val()
			}
			return fn(ctx, first, kvs)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// listIndex checks a bucketed list index: members whose record is gone, or
// that sit in a bucket other than their number's, are reported and, with
// repair, removed (a misplaced one whose record exists is added to its
// bucket, and so is a removed one whose record appeared meanwhile); then the
// counter is checked against the buckets' sizes (recount).
func (d *doctor) listIndex(ctx context.Context, list string) error {
	err := d.listBuckets(ctx, list, func(ctx context.Context, first int64, kvs [][]redis.Z) error {
		type found struct {
			e     entry // as it is: its bucket
			score int64
			key   string // its record's key
		}
		var fs []found
		for i, zs := range kvs {
			for _, z := range zs {
				m, _ := z.Member.(string)
				e := entry{key: d.s.k.listBucket(list, first+int64(i)), member: m, score: z.Score, counter: d.s.k.listCount(list)}
				fs = append(fs, found{e, int64(z.Score), d.recordKey(list, m)})
			}
		}
		keys := make([]string, len(fs))
		for i, f := range fs {
			keys[i] = f.key
		}
		exists, err := d.existMany(ctx, keys)
		if err != nil {
			return err
		}
		var bad []found
		for i, f := range fs {
			misplaced := f.e.key != d.s.listEntry(list, f.e.member, f.score).key
			switch {
			case !exists[i]:
				d.add(&d.dangling, "idx:%s %s", list, f.e.member)
			case misplaced:
				d.add(&d.dangling, "idx:%s %s in the bucket of another number than %d", list, f.e.member, f.score)
			default:
				continue
			}
			bad = append(bad, f)
		}
		if !d.repair || len(bad) == 0 {
			return nil
		}
		if _, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, f := range bad {
				f.e.remove(ctx, p)
			}
			return nil
		}); err != nil {
			return err
		}
		// A create may have written its record and entry in between: put back
		// the entries whose record exists now, in their number's bucket.
		again := make([]string, len(bad))
		for i, f := range bad {
			again[i] = f.key
		}
		now, err := d.existMany(ctx, again)
		if err != nil {
			return err
		}
		_, err = d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, f := range bad {
				if now[i] {
					d.s.listEntry(list, f.e.member, f.score).add(ctx, p)
				}
			}
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	return d.s.bounds.step(ctx, func(ctx context.Context) error { return d.recount(ctx, list) })
}

// recountScript counts the members of the buckets KEYS[2..] and compares the
// sum with the counter KEYS[1], which it sets to it when ARGV[1] is "1"; it
// answers {counter, sum}. One script, so no write lands between the count and
// the set.
var recountScript = redis.NewScript(`
local n = 0
for i = 2, #KEYS do n = n + redis.call('ZCARD', KEYS[i]) end
local c = tonumber(redis.call('GET', KEYS[1]) or '0') or -1
if c ~= n and ARGV[1] == '1' then redis.call('SET', KEYS[1], n) end
return {c, n}`)

// recount checks list's counter against its buckets, and with repair sets it.
func (d *doctor) recount(ctx context.Context, list string) error {
	top, err := countOf(d.s.rdb.Get(ctx, d.s.k.seq(list)))
	if err != nil {
		return err
	}
	keys := []string{d.s.k.listCount(list)}
	for b := int64(0); b <= bucketOf(top); b++ {
		keys = append(keys, d.s.k.listBucket(list, b))
	}
	flag := "0"
	if d.repair {
		flag = "1"
	}
	v, err := recountScript.Run(ctx, d.s.rdb, keys, flag).Int64Slice()
	if err != nil {
		return err
	}
	if len(v) == 2 && v[0] != v[1] {
		d.add(&d.dangling, "idx:%s count %d, its buckets hold %d", list, v[0], v[1])
	}
	return nil
}
