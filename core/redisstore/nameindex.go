package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// The username index, which the users' username-prefix filter reads in lex
// order, is kept in name buckets: zsets P {ix}:un:<b> of at most
// nameBucketSize username keys each (UsernameKey, scores 0), each holding the
// names from its lowest name (its "low") up to the next bucket's, and the
// directory P {ix}:undir, a zset (scores 0) of "<low>\x00<b>" (nameDirMember)
// for every bucket, in lex order too: a name's bucket is the directory's
// member with the greatest low at most the name. The first bucket's low is
// always "", so every name has one. A bucket that reaches nameBucketSize names
// is split in two halves, the upper one a new bucket numbered by P {ix}:unseq,
// or, when the name added is its last, that name alone goes to the new bucket:
// names added in order (the upgrade's) so leave their buckets full;
// a bucket emptied is dropped from the directory (the first one's successor
// then takes the low ""), and a store emptied holds none of these keys.
//
// A member is the username key alone, at most 64 bytes for a username of at
// most 64 bytes of UsernameKey, so a bucket is a listpack (zset-max-listpack-
// entries 128, -value 64 by default): 15–20 bytes a user where the single
// skiplist P {ix}:unames of "<UsernameKey>\x00<uid>" cost 150–160. A user's
// id is found through its username's claim (one HGET a name, in one pipeline
// for a batch), and the record read then is checked as before. Two scripts
// of the same functions do every operation on the buckets (nameEditSource
// adds and removes, nameScript does the rest), so each is atomic and the
// buckets are never seen half split; their keys are all in the slot {ix}.
const nameBucketSize = 128

// nameEditSource and nameScriptSource each run one operation on the name
// buckets, add and rem the first, the others the second: KEYS[1] is P {ix}:undir,
// KEYS[2] P {ix}:unseq (KEYS[3], for move, the upgrade's lock P
// {ix}:unames:upgrading), ARGV[1] the operation, ARGV[2] the prefix of the
// buckets' keys (nameBucketPrefix), to which the script adds the bucket's
// number: every bucket is in the slot {ix} of the keys it is given.
//
//	add n...            adds the names, splitting a full bucket (halves, or the last name
//	                    alone when it is the one added); answers how many were new
//	rem n...            removes the names; answers how many were there
//	has n...            answers 1 or 0 for each name: whether its bucket holds it
//	move tok ttl n...   add while KEYS[3] holds tok (renewing it for ttl ms); 0 without writing when not
//	range lo hi count   the names from lo to hi (ZRANGEBYLEX bounds), at most count, then the
//	                    bound to go on from ("" at the end)
//	count lo hi from max
//	                    how many names lie from lo to hi in the buckets after the directory
//	                    member from ("": from lo's bucket, counted too), at most max of
//	                    them, then the member to go on after ("" at the end)
//	place fix b...      the names of buckets b... that are not in their bucket ("<b>\x00<name>"),
//	                    moved to theirs when fix is "1"
//	dir fix             the directory's members whose bucket is gone, removed when fix is "1"
//
// range visits at most count+16 buckets (every bucket but the first from lo
// gives it at least one name, so it visits count+2 unless buckets were
// deleted by hand) and then answers what it has, with the next bucket's low as
// the bound; count reads the sizes of the buckets its range spans, one ZCARD
// for each but the first and last (ZLEXCOUNT), nameCountBuckets a call.
var nameScriptSource = nameFuncs + nameOtherOps

// nameEditSource adds and removes names (ops add and rem): what a create and
// a delete send, as EVAL in a MULTI or a pipeline. It is a script of its own,
// sharing nameScriptSource's functions, because Redis hashes an EVAL's body to
// find its compiled script, twice in a MULTI (when it queues the command and
// when it runs it): a body of 1.7 kB where one script of every operation
// would be 4.4 kB spends about 17 µs less of Redis' CPU on every create
// (measured on redis-server 7.0, docs/performance.md).
var nameEditSource = nameFuncs + nameEditOps

// nameFuncs are the functions of both name scripts: find, num, low, add, drop
// and rem.
var nameFuncs = `
local dir, seq, op, pre = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local function find(name)
  local r = redis.call('ZREVRANGEBYLEX', dir, '(' .. name .. '\1', '-', 'LIMIT', 0, 1)
  if #r == 0 then r = redis.call('ZRANGE', dir, 0, 0) end
  return r[1]
end
local function num(m) return string.match(m, '%z(%d+)$') end
local function low(m) return string.match(m, '^(.*)%z') end
local function add(name)
  local m = find(name)
  if not m then
    m = '\0' .. redis.call('INCR', seq)
    redis.call('ZADD', dir, 0, m)
  end
  local key = pre .. num(m)
  local added = redis.call('ZADD', key, 0, name)
  local n = redis.call('ZCARD', key)
  if n >= ` + strconv.Itoa(nameBucketSize) + ` then
    local at = math.floor(n / 2)
    if redis.call('ZRANK', key, name) == n - 1 then at = n - 1 end
    local upper = redis.call('ZRANGE', key, at, -1)
    local b = redis.call('INCR', seq)
    local args = {}
    for i, u in ipairs(upper) do args[2*i-1] = 0 args[2*i] = u end
    redis.call('ZADD', pre .. b, unpack(args))
    redis.call('ZREMRANGEBYRANK', key, at, -1)
    redis.call('ZADD', dir, 0, upper[1] .. '\0' .. b)
  end
  return added
end
local function drop(m)
  redis.call('ZREM', dir, m)
  if low(m) == '' then
    local first = redis.call('ZRANGE', dir, 0, 0)[1]
    if first then
      redis.call('ZREM', dir, first)
      redis.call('ZADD', dir, 0, '\0' .. num(first))
    end
  end
  if redis.call('EXISTS', dir) == 0 then redis.call('DEL', seq) end
end
local function rem(name)
  local m = find(name)
  if not m then return 0 end
  local key = pre .. num(m)
  local n = redis.call('ZREM', key, name)
  if n == 1 and redis.call('EXISTS', key) == 0 then drop(m) end
  return n
end
`

// nameEditOps is nameEditSource's dispatch on ARGV[1]: add or rem over
// ARGV[3:].
const nameEditOps = `if op == 'add' or op == 'rem' then
  local f, n = add, 0
  if op == 'rem' then f = rem end
  for i = 3, #ARGV do n = n + f(ARGV[i]) end
  return n
end
return redis.error_reply('nameEditSource: unknown operation ' .. op)`

// nameOtherOps is nameScriptSource's dispatch on ARGV[1]: every operation
// but add and rem.
const nameOtherOps = `if op == 'has' then
  local out = {}
  for i = 3, #ARGV do
    local m = find(ARGV[i])
    out[#out+1] = (m and redis.call('ZSCORE', pre .. num(m), ARGV[i])) and 1 or 0
  end
  return out
elseif op == 'move' then
  if redis.call('GET', KEYS[3]) ~= ARGV[3] then return 0 end
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  for i = 5, #ARGV do add(ARGV[i]) end
  return 1
elseif op == 'range' then
  local lo, hi, count = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local top = '(' .. string.sub(hi, 2) .. '\1'
  local m, out, visits = find(string.sub(lo, 2)), {}, 0
  while m do
    local got = redis.call('ZRANGEBYLEX', pre .. num(m), lo, hi, 'LIMIT', 0, count - #out)
    for _, n in ipairs(got) do out[#out+1] = n end
    if #out >= count then
      out[#out+1] = '(' .. out[#out]
      return out
    end
    visits = visits + 1
    m = redis.call('ZRANGEBYLEX', dir, '(' .. m, top, 'LIMIT', 0, 1)[1]
    if m and visits >= count + 16 then
      out[#out+1] = '[' .. low(m)
      return out
    end
  end
  out[#out+1] = ''
  return out
elseif op == 'count' then
  local lo, hi, from, max = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
  local n = 0
  if from == '' then
    from = find(string.sub(lo, 2))
    if not from then return {0, ''} end
    n = redis.call('ZLEXCOUNT', pre .. num(from), lo, hi)
  end
  local rest = redis.call('ZRANGEBYLEX', dir, '(' .. from, '(' .. string.sub(hi, 2) .. '\1', 'LIMIT', 0, max)
  if #rest > 0 then n = n + redis.call('ZLEXCOUNT', pre .. num(rest[#rest]), lo, hi) end
  for i = 1, #rest - 1 do n = n + redis.call('ZCARD', pre .. num(rest[i])) end
  if #rest < max then return {n, ''} end
  return {n, rest[#rest]}
elseif op == 'place' then
  local fix, out = ARGV[3] == '1', {}
  for i = 4, #ARGV do
    local b, key = ARGV[i], pre .. ARGV[i]
    local ends = redis.call('ZRANGE', key, 0, 0)
    local last = redis.call('ZRANGE', key, -1, -1)[1]
    local mf, ml = ends[1] and find(ends[1]), last and find(last)
    if ends[1] and not (mf and ml and num(mf) == b and num(ml) == b) then
      for _, name in ipairs(redis.call('ZRANGE', key, 0, -1)) do
        local m = find(name)
        if not m or num(m) ~= b then
          out[#out+1] = b .. '\0' .. name
          if fix then
            redis.call('ZREM', key, name)
            add(name)
          end
        end
      end
    end
  end
  return out
elseif op == 'dir' then
  local fix, out = ARGV[3] == '1', {}
  for _, m in ipairs(redis.call('ZRANGE', dir, 0, -1)) do
    if redis.call('EXISTS', pre .. num(m)) == 0 then
      out[#out+1] = m
      if fix then drop(m) end
    end
  end
  return out
end
return redis.error_reply('nameScript: unknown operation ' .. op)`

// nameScript is nameScriptSource, run with EVALSHA where a NOSCRIPT can be
// retried (entry.add sends nameEditSource as EVAL: in a pipeline or a MULTI it
// cannot).
var nameScript = redis.NewScript(nameScriptSource)

// nameKeys are the name scripts' KEYS.
func (s *Store) nameKeys() []string { return []string{s.k.nameDir(), s.k.nameSeq()} }

// nameEntry is a user's entry in the username index: its username key, added
// and removed by nameEditSource (entry.addArgs).
func (s *Store) nameEntry(ukey string) entry {
	return entry{key: s.k.nameDir(), counter: s.k.nameSeq(), member: ukey, names: s.k.nameBucketPrefix()}
}

// nameRange reads up to count username keys from lo to hi (ZRANGEBYLEX
// bounds, hi inclusive: "[<prefix>\xff"), in order, and the bound to read on
// from ("" when there is nothing more).
func (s *Store) nameRange(ctx context.Context, lo, hi string, count int) ([]string, string, error) {
	vs, err := nameScript.Run(ctx, s.rdb, s.nameKeys(), "range", s.k.nameBucketPrefix(), lo, hi, count).StringSlice()
	if err != nil {
		return nil, "", err
	}
	if len(vs) == 0 {
		return nil, "", fmt.Errorf("redisstore: the name index's range answered nothing")
	}
	return vs[:len(vs)-1], vs[len(vs)-1], nil
}

// nameCountBuckets bounds the buckets one call of nameScript's count reads
// (about 4 ms of Redis' time on a loaded 2-core machine), so that counting a
// prefix shared by a million users (15 000 buckets) never holds Redis for
// long: it takes one round trip per nameCountBuckets buckets instead.
const nameCountBuckets = 512

// nameCount counts the username keys from lo to hi.
func (s *Store) nameCount(ctx context.Context, lo, hi string) (int64, error) {
	return s.nameCountBy(ctx, lo, hi, nameCountBuckets)
}

// nameCountBy is nameCount reading per buckets a call.
func (s *Store) nameCountBy(ctx context.Context, lo, hi string, per int) (int64, error) {
	var total int64
	for from := ""; ; {
		vs, err := nameScript.Run(ctx, s.rdb, s.nameKeys(), "count", s.k.nameBucketPrefix(), lo, hi, from, per).Slice()
		if err != nil {
			return 0, err
		}
		if len(vs) != 2 {
			return 0, fmt.Errorf("redisstore: the name index's count answered %v", vs)
		}
		n, ok := vs[0].(int64)
		next, ok2 := vs[1].(string)
		if !ok || !ok2 {
			return 0, fmt.Errorf("redisstore: the name index's count answered %v", vs)
		}
		total += n
		if next == "" {
			return total, nil
		}
		from = next
	}
}

// usernameOwners reads the claims of the username keys names in one pipeline
// and returns their owners' ids, in order, leaving out the names no one
// claims: the users that the username index's names stand for.
func (s *Store) usernameOwners(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	reads := make([]claimRead, len(names))
	var apply func(context.Context)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		apply = s.probeLayout(ctx, p)
		for i, n := range names {
			reads[i] = s.readClaim(ctx, p, s.newClaim(kindUsername, n, ""))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	if apply != nil {
		apply(ctx)
	}
	uids := make([]string, 0, len(names))
	for _, r := range reads {
		v, ok, err := r.value()
		if err != nil {
			return nil, err
		}
		if uid := claimOwner(v); ok && validID(uid) {
			uids = append(uids, uid)
		}
	}
	return uids, nil
}

// upgradeNames moves P {ix}:unames of the layout before the name buckets
// into them, the way upgradeList moves a list index: under the lock P
// {ix}:unames:upgrading, in lex order, upgradeBatch members at a time, each
// batch added (its uid dropped) by nameScript's move, which writes only while
// the lock is still its own; then it deletes the old zset. It returns nil
// also when another instance holds the lock, once that lock is gone. Every
// reader and writer of the buckets waits for it (indexesReady), so no name
// removed from a bucket can be brought back by a copy; a crash midway leaves
// the old zset whole, and the next attempt adds what is missing.
func (s *Store) upgradeNames(ctx context.Context) error {
	lock, token := s.k.nameLock(), core.NewID()
	ok, err := s.rdb.SetNX(ctx, lock, token, upgradeLockTTL).Result()
	if err != nil {
		return err
	}
	if !ok {
		return waitLock(ctx, s.rdb, lock)
	}
	defer func() {
		ctx, cancel := s.bounds.cleanup(context.WithoutCancel(ctx))
		defer cancel()
		_ = cadScript.Run(ctx, s.rdb, []string{lock}, token).Err()
	}()
	old := s.k.usernames()
	keys := append(s.nameKeys(), lock)
	for lo := "-"; ; {
		ms, err := s.rdb.ZRangeByLex(ctx, old, &redis.ZRangeBy{Min: lo, Max: "+", Count: upgradeBatch}).Result()
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			break
		}
		args := []any{"move", s.k.nameBucketPrefix(), token, upgradeLockTTL.Milliseconds()}
		for _, m := range ms {
			if ukey, _, ok := parseOldUsernameMember(m); ok && ukey != "" {
				args = append(args, ukey)
			}
		}
		mine, err := nameScript.Run(ctx, s.rdb, keys, args...).Int()
		if err != nil {
			return err
		}
		if mine != 1 {
			return fmt.Errorf("redisstore: the upgrade of {ix}:unames lost its lock")
		}
		if len(ms) < upgradeBatch {
			break
		}
		lo = "(" + ms[len(ms)-1]
	}
	return s.rdb.Del(ctx, old).Err()
}

// waitLock waits until the key lock is gone (another instance's upgrade).
func waitLock(ctx context.Context, rdb redis.Cmdable, lock string) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		n, err := rdb.Exists(ctx, lock).Result()
		if err != nil || n == 0 {
			return err
		}
	}
}

// namesPresent reports, for each username key, whether the name index holds
// it.
func (s *Store) namesPresent(ctx context.Context, names []string) ([]bool, error) {
	args := []any{"has", s.k.nameBucketPrefix()}
	for _, n := range names {
		args = append(args, n)
	}
	vs, err := nameScript.Run(ctx, s.rdb, s.nameKeys(), args...).Int64Slice()
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(names))
	for i := range out {
		out[i] = i < len(vs) && vs[i] == 1
	}
	return out, nil
}

// namePlaces checks the name buckets the scan found (their numbers in bs):
// names in a bucket other than their own, and directory members whose
// bucket is gone, are reported and, with repair, moved or removed.
func (d *doctor) namePlaces(ctx context.Context, bs []int64) error {
	fix := "0"
	if d.repair {
		fix = "1"
	}
	for len(bs) > 0 {
		page := bs[:min(len(bs), doctorBuckets)]
		bs = bs[len(page):]
		args := []any{"place", d.s.k.nameBucketPrefix(), fix}
		for _, b := range page {
			args = append(args, b)
		}
		err := d.s.bounds.step(ctx, func(ctx context.Context) error {
			vs, err := nameScript.Run(ctx, d.s.rdb, d.s.nameKeys(), args...).StringSlice()
			for _, v := range vs {
				b, name, _ := strings.Cut(v, "\x00")
				d.add(&d.dangling, "{ix}:un:%s holds %q, which belongs in another bucket", b, name)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return d.s.bounds.step(ctx, func(ctx context.Context) error {
		vs, err := nameScript.Run(ctx, d.s.rdb, d.s.nameKeys(), "dir", d.s.k.nameBucketPrefix(), fix).StringSlice()
		for _, v := range vs {
			low, b, _ := parseNameDirMember(v)
			d.add(&d.dangling, "{ix}:undir names bucket %d (from %q), which is gone", b, low)
		}
		return err
	})
}
