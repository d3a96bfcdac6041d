package redisstore

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// Limiter is a core.Limiter on Redis, shared by every instance on that Redis: the
// generic cell rate algorithm (GCRA), one key per limited thing, P rl:<key>,
// holding its theoretical arrival time and expiring once the key is back to a
// full burst. One script counts (allowEachScript, for Allow and AllowEach); one
// Go function reads without counting (askRate, for ReadAuth's throttles). Time comes from Redis TIME (miniredis:
// its own clock, which the embedded default moves every second).
type Limiter struct {
	rdb    redis.UniversalClient
	k      keys
	bounds bounds
}

var _ core.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter on client with the key prefix of the store ("" is
// DefaultPrefix): ReadAuth's Throttle reads the keys of the Limiter with the
// store's prefix. Each call is bounded by DefaultReadTimeout; Store.Limiter
// returns one with the store's bounds. It does not own client. It panics if
// prefix fails CheckPrefix.
func NewLimiter(client redis.UniversalClient, prefix string) *Limiter {
	return newLimiter(client, Options{Prefix: prefix}.withDefaults())
}

func newLimiter(client redis.UniversalClient, opt Options) *Limiter {
	return &Limiter{
		rdb: client, k: keys{p: opt.Prefix},
		// A Limiter sits on request paths (/verify, logins) and each call is
		// one round trip: it is bounded as a read, counting included.
		bounds: newBounds(opt.ReadTimeout, 0),
	}
}

// Limiter returns the Limiter on the store's client, prefix and read timeout,
// whose keys ReadAuth's Throttle reads.
func (s *Store) Limiter() *Limiter {
	return newLimiter(s.rdb, Options{Prefix: s.k.p, ReadTimeout: s.bounds.read}.withDefaults())
}

// Allow counts n events against key at rate (a burst of rate.Count, refilled
// evenly over rate.Per) and reports whether they fit; when they do not, nothing
// is counted and retryAfter says when they would. n = 0 counts nothing and
// reports whether one more event would fit now, as ReadAuth's Throttle does.
// Invalid for a rate that is not positive or a negative n; Unavailable when
// Redis cannot answer.
func (l *Limiter) Allow(ctx context.Context, key string, rate core.Rate, n int) (bool, time.Duration, error) {
	const op = "redisstore.Limiter.Allow"
	ctx, cancel := l.bounds.reading(ctx)
	defer cancel()
	if rate.Count <= 0 || rate.Per <= 0 || n < 0 {
		return false, 0, core.Errorf(core.Invalid, op, "cannot count %d events at %v", n, rate)
	}
	k := l.k.rate(key)
	if n == 0 {
		var get *redis.StringCmd
		var now *redis.TimeCmd
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			get = p.Get(ctx, k)
			now = p.Time(ctx)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, 0, fail(ctx, op, err)
		}
		if wait := askRate(get, now, rate); wait > 0 {
			return false, wait, nil
		}
		return true, 0, nil
	}
	waits, _, err := l.AllowEach(ctx, []core.Throttle{{Key: key, Rate: rate}}, n)
	if err != nil {
		return false, 0, err
	}
	if waits[0] == 0 {
		return true, 0, nil
	}
	return false, max(waits[0], time.Millisecond), nil
}

// Remaining reports how many events key may still count now at rate,
// reading its state and Redis' clock in one round trip, counting nothing.
func (l *Limiter) Remaining(ctx context.Context, key string, rate core.Rate) (int, error) {
	const op = "redisstore.Limiter.Remaining"
	ctx, cancel := l.bounds.reading(ctx)
	defer cancel()
	if rate.Count <= 0 || rate.Per <= 0 {
		return 0, core.Errorf(core.Invalid, op, "no events fit %v", rate)
	}
	var get *redis.StringCmd
	var now *redis.TimeCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, l.k.rate(key))
		now = p.Time(ctx)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fail(ctx, op, err)
	}
	tat, err := strconv.ParseFloat(get.Val(), 64)
	if err != nil || now.Err() != nil {
		return rate.Count, nil // no state: the whole rate
	}
	t := now.Val()
	at := float64(t.Unix()-rateEpoch) + float64(t.Nanosecond()/1000)/1e6
	interval := rate.Per.Seconds() / float64(rate.Count)
	left := int(math.Floor((at - (max(tat, at) - interval*float64(rate.Count))) / interval))
	return min(max(left, 0), rate.Count), nil
}

// rateEpoch is the epoch of the stored arrival times, in Unix seconds:
// 2017-01-01, as github.com/go-redis/redis_rate, which wrote this state
// before, so that keys written by earlier versions keep their meaning.
const rateEpoch = 1483228800

// askRate answers how long until one more event fits the rate, 0 if it fits now,
// from a GET of the key (the theoretical arrival time, in seconds since
// rateEpoch) and Redis TIME: allowEachScript's decision with n = 0,
// computed in Go so that it can join a pipeline (ReadAuth's Throttle). A missing
// or unreadable state fits.
func askRate(get *redis.StringCmd, now *redis.TimeCmd, rate core.Rate) time.Duration {
	if rate.Count <= 0 || rate.Per <= 0 || now.Err() != nil {
		return 0
	}
	v, err := get.Result()
	if err != nil {
		return 0
	}
	tat, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	t := now.Val()
	at := float64(t.Unix()-rateEpoch) + float64(t.Nanosecond()/1000)/1e6
	interval := rate.Per.Seconds() / float64(rate.Count)
	diff := at - (max(tat, at) - interval*float64(rate.Count))
	if diff/interval >= 1 {
		return 0
	}
	return max(time.Duration((interval-diff)*float64(time.Second)), time.Millisecond)
}

// allowEachScript counts ARGV[3] events against one key, KEYS[1], at ARGV[1]
// events per ARGV[2] seconds: the same generic cell rate algorithm and the same
// state that askRate reads (the theoretical arrival time, in seconds since
// rateEpoch), for one key per call so that AllowEach pipelines several. When
// the events fit it counts them and answers 0, or minus the microseconds until
// one more event would fit when the count used the rate up; else it counts
// nothing and answers the microseconds until they would fit.
var allowEachScript = redis.NewScript(`
local t = redis.call('TIME')
local now = (tonumber(t[1]) - ` + strconv.Itoa(rateEpoch) + `) + tonumber(t[2]) / 1000000
local count, period, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local interval = period / count
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then tat = now end
local later = tat + n * interval
local wait = later - now - count * interval
if wait > 0 then return math.max(1, math.ceil(wait * 1000000)) end
redis.call('SET', KEYS[1], string.format('%.6f', later), 'EX', math.max(1, math.ceil(later - now)))
local over = later + interval - now - count * interval
if over > 0 then return -math.max(1, math.ceil(over * 1000000)) end
return 0`)

// AllowEach counts n events against each throttle in one round trip: a
// pipeline of one allowEachScript per key (each key is its own slot, so on a
// Cluster the scripts go to their nodes concurrently). A key whose rate the
// events do not fit counts nothing and answers how long until they would; the
// others count them. over says, for each, how long until one more event fits
// after this call. Invalid for a rate that is not positive or n < 1;
// Unavailable when Redis cannot answer.
func (l *Limiter) AllowEach(ctx context.Context, ts []core.Throttle, n int) (wait, over []time.Duration, err error) {
	const op = "redisstore.Limiter.AllowEach"
	ctx, cancel := l.bounds.reading(ctx)
	defer cancel()
	for _, t := range ts {
		if t.Rate.Count <= 0 || t.Rate.Per <= 0 || n < 1 {
			return nil, nil, core.Errorf(core.Invalid, op, "cannot count %d events at %v", n, t.Rate)
		}
	}
	args := func(t core.Throttle) []any {
		return []any{t.Rate.Count, strconv.FormatFloat(t.Rate.Per.Seconds(), 'f', -1, 64), n}
	}
	cmds := make([]*redis.Cmd, len(ts))
	_, _ = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { // errors are each command's, read below
		for i, t := range ts {
			cmds[i] = allowEachScript.EvalSha(ctx, p, []string{l.k.rate(t.Key)}, args(t)...)
		}
		return nil
	})
	wait, over = make([]time.Duration, len(ts)), make([]time.Duration, len(ts))
	for i, t := range ts {
		if isNoScript(cmds[i].Err()) {
			// First use on this server: that script did not run, so running it
			// now counts once.
			cmds[i] = allowEachScript.Eval(ctx, l.rdb, []string{l.k.rate(t.Key)}, args(t)...)
		}
		us, err := cmds[i].Int64()
		if err != nil {
			return nil, nil, fail(ctx, op, err)
		}
		if us > 0 {
			wait[i] = time.Duration(us) * time.Microsecond
		}
		over[i] = time.Duration(max(us, -us)) * time.Microsecond
	}
	return wait, over, nil
}
