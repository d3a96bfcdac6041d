package redisstore

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// expScore is a user's score in P idx:expiring.
func expScore(t time.Time) float64 { return float64(t.UnixMicro()) }

// zfixScript sets member ARGV[1] of the zset KEYS[1] to score ARGV[3] ("" removes
// it) only if its score still is ARGV[2] ("" for no member), and returns 1 if it
// did. Readers that find an entry out of step with its record fix it with this,
// reading the entry before the record, so that an update writing its own entry
// meanwhile is never overwritten with an older value.
var zfixScript = redis.NewScript(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if cur then return 0 end
elseif not cur or tonumber(cur) ~= tonumber(ARGV[2]) then
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1`)

// syncExpiring writes a user's changed ExpiresAt to P idx:expiring, after the
// user's own write. Errors are ignored: the record is written, ExpiredUsers
// skips and fixes entries out of step with their record, and Doctor repairs
// missing ones.
func (s *Store) syncExpiring(ctx context.Context, id string, old, next time.Time) {
	if old.Equal(next) {
		return
	}
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	if next.IsZero() {
		s.rdb.ZRem(ctx, s.k.idx(idxExpiring), id)
		return
	}
	s.rdb.ZAdd(ctx, s.k.idx(idxExpiring), redis.Z{Score: expScore(next), Member: id})
}

// ExpiredUsers returns the ids of users whose ExpiresAt is at or before t, at most
// limit of them (none when limit <= 0), soonest first: one page of P
// idx:expiring, checked against the records in one pipeline. An entry whose user
// is gone or no longer expires is dropped from the index, one whose score is not
// the record's ExpiresAt is corrected (and skipped if that is after t), so that
// leftovers of interrupted or racing writes never fill the page for good. The
// caller still re-reads each user before acting on it.
func (s *Store) ExpiredUsers(ctx context.Context, t time.Time, limit int) ([]string, error) {
	const op = "redisstore.ExpiredUsers"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	if limit <= 0 {
		return []string{}, nil
	}
	zkey := s.k.idx(idxExpiring)
	hi := strconv.FormatInt(t.UnixMicro(), 10)
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, zkey, &redis.ZRangeBy{Min: "-inf", Max: hi, Count: int64(limit)}).Result()
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	var entries []pageEntry
	var keys []string
	var malformed []any // members that name no user: removed as they are
	for _, z := range zs {
		m, _ := z.Member.(string)
		if !validID(m) {
			malformed = append(malformed, m)
			continue
		}
		entries = append(entries, pageEntry{member: m, score: int64(z.Score)})
		keys = append(keys, s.k.user(m))
	}
	vals, oks, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	var due []pageEntry // id and the record's ExpiresAt
	var fixes []zfix
	for i, e := range entries {
		var at time.Time
		if oks[i] {
			r, err := decode[userRecord](op, keys[i], vals[i])
			if err != nil {
				continue // a corrupt record: neither due nor ours to drop
			}
			at = r.ExpiresAt
		}
		if at.IsZero() {
			fixes = append(fixes, zfix{member: e.member, seen: e.score, seenOK: true})
			continue
		}
		if us := at.UnixMicro(); us != e.score {
			fixes = append(fixes, zfix{member: e.member, seen: e.score, seenOK: true, next: us, nextOK: true})
		}
		if !at.After(t) {
			due = append(due, pageEntry{member: e.member, score: at.UnixMicro()})
		}
	}
	// Best effort: a fix that fails is tried again by the next call, or Doctor.
	_ = s.fixIndex(ctx, zkey, fixes, malformed)
	slices.SortStableFunc(due, func(a, b pageEntry) int { return cmp.Compare(a.score, b.score) })
	out := make([]string, len(due))
	for i, d := range due {
		out[i] = d.member
	}
	return out, nil
}

// zfix is one compare-and-set of an index entry's score (see zfixScript).
type zfix struct {
	member         string
	seen, next     int64 // scores, in Unix microseconds
	seenOK, nextOK bool  // false: no entry (seen), remove it (next)
}

// args returns the script's arguments.
func (f zfix) args() []any {
	a := []any{f.member, "", ""}
	if f.seenOK {
		a[1] = strconv.FormatInt(f.seen, 10)
	}
	if f.nextOK {
		a[2] = strconv.FormatInt(f.next, 10)
	}
	return a
}

// fixIndex applies fixes to the zset zkey and removes the malformed members, in
// one pipeline, with a cleanup context (a fix is worth finishing).
func (s *Store) fixIndex(ctx context.Context, zkey string, fixes []zfix, malformed []any) error {
	if len(fixes) == 0 && len(malformed) == 0 {
		return nil
	}
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, f := range fixes {
			zfixScript.Eval(ctx, p, []string{zkey}, f.args()...)
		}
		if len(malformed) > 0 {
			p.ZRem(ctx, zkey, malformed...)
		}
		return nil
	})
	return err
}
