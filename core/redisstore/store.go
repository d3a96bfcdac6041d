package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/internal/memo"
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// Prefix starts every key, so several deployments can share one Redis; "" means
	// "gh:". It must not contain '{' or '}', which would break the hash tags.
	Prefix string
	// Clock tells the time for claims and their staleness; nil means Redis TIME.
	Clock core.Clock
	// ClaimStaleAfter is the age after which a claim whose owner does not hold the
	// name is free; 0 means one minute.
	ClaimStaleAfter time.Duration
	// WriteDeadline is the hard limit between a create's claims and its final check;
	// it must stay well under ClaimStaleAfter. 0 means 10 s; a value above half of
	// ClaimStaleAfter is lowered to that half.
	WriteDeadline time.Duration
	// ReadTimeout bounds each read (a /verify, a GET, a lookup, the Limiter): the
	// whole call, whatever its round trips. When it passes the call answers
	// Unavailable. 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds each step of a write (the claim of one name, the
	// MULTI in the entity's slot, its index entries, a script, one page of
	// Doctor) and the clean-up after a failed write. When it passes the write
	// answers Unavailable. 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// WaitReplicas, when above 0, makes every write wait, before it
	// answers, until that many replicas have it (Redis WAIT after a fence;
	// replicated.go); when they do not within WaitTimeout the write answers
	// Unavailable, although the primary may keep it. 0 never sends WAIT (the
	// embedded miniredis does not implement it). New panics when it is set on a
	// Cluster client: configuration checks it first (CheckWait).
	WaitReplicas int
	// WaitTimeout bounds the wait for the replicas; 0 means DefaultWaitTimeout.
	// A value above half of WriteTimeout is lowered to that half, so the wait
	// fits in its write step.
	WaitTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultPrefix          = "gh:"
	DefaultClaimStaleAfter = time.Minute
	DefaultWriteDeadline   = 10 * time.Second
	DefaultReadTimeout     = 500 * time.Millisecond
	DefaultWriteTimeout    = 2 * time.Second
)

// withDefaults returns opt with its zero values replaced by the defaults. It
// panics if opt.Prefix fails CheckPrefix.
func (opt Options) withDefaults() Options {
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if err := CheckPrefix(opt.Prefix); err != nil {
		panic(err)
	}
	if opt.ClaimStaleAfter <= 0 {
		opt.ClaimStaleAfter = DefaultClaimStaleAfter
	}
	if opt.WriteDeadline <= 0 {
		opt.WriteDeadline = DefaultWriteDeadline
	}
	opt.WriteDeadline = min(opt.WriteDeadline, opt.ClaimStaleAfter/2)
	if opt.ReadTimeout <= 0 {
		opt.ReadTimeout = DefaultReadTimeout
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	if opt.WaitTimeout <= 0 {
		opt.WaitTimeout = DefaultWaitTimeout
	}
	opt.WaitTimeout = min(opt.WaitTimeout, opt.WriteTimeout/2)
	return opt
}

// maxTxRetries bounds the WATCH/MULTI retries of one write before it answers Conflict.
const maxTxRetries = 10

// Store is a core.Store on Redis. It is safe for concurrent use.
type Store struct {
	rdb        redis.UniversalClient
	k          keys
	clock      core.Clock
	staleAfter time.Duration
	deadline   time.Duration
	bounds     bounds

	holders      chan struct{} // the operations holding a connection under WATCH at once (hold, atOnceLimit)
	atOnce       bool          // one server (not a Cluster): a user's create may take two round trips (createAtOnce)
	redisClock   redisClock    // the claims' clock (claimTime)
	layout       claimLayout   // whether old claim keys may still exist (oldClaims)
	waitReplicas int           // Options.WaitReplicas
	waitTimeout  time.Duration // Options.WaitTimeout

	origin  string // this store's name in the change feed, random
	sinksMu sync.Mutex
	sinks   []core.ChangeSink // this process' followers of the change feed (changes.go)

	// interrupt makes the next create or delete stop right after its write in the
	// entity's slot, as a crash there would (tests only; see export_test.go).
	interrupt atomic.Bool

	// mgets sends the verifications' reads, together under load (mgets.go).
	mgets mgets
	// users keeps decoded user records by their JSON (decodeUser).
	users *memo.Memo[userRecord]
	// upgrade is the move of the list indexes into buckets (listindex.go).
	upgrade indexUpgrade
}

var _ core.Store = (*Store)(nil)

// CheckPrefix reports whether p can be used as Options.Prefix.
func CheckPrefix(p string) error {
	if strings.ContainsAny(p, "{}") {
		return fmt.Errorf("redisstore: key prefix %q must not contain '{' or '}'", p)
	}
	return nil
}

// CheckWait reports whether opt.WaitReplicas can be used on client: not on a
// Redis Cluster, where WAIT would go to an arbitrary node (replicated.go).
func CheckWait(client redis.UniversalClient, opt Options) error {
	if _, ok := client.(*redis.ClusterClient); ok && opt.WaitReplicas > 0 {
		return errors.New("redisstore: waiting for replicas (WAIT) is not supported on a Redis Cluster")
	}
	if opt.WaitReplicas < 0 {
		return fmt.Errorf("redisstore: WaitReplicas %d is negative", opt.WaitReplicas)
	}
	return nil
}

// New returns a Store on client, which it owns from then on (Close closes it). It
// panics if opt.Prefix fails CheckPrefix or opt fails CheckWait: configuration
// checks them first.
//
// The store bounds its calls with context deadlines (Options.ReadTimeout and
// WriteTimeout), which cut a call to a stalled Redis short only on a client
// that honours them: one from NewClient does.
func New(client redis.UniversalClient, opt Options) *Store {
	opt = opt.withDefaults()
	if err := CheckWait(client, opt); err != nil {
		panic(err)
	}
	var holders chan struct{}
	var atOnce bool
	switch c := client.(type) {
	case *redis.Client: // one server, Sentinel's included
		holders, atOnce = make(chan struct{}, atOnceLimit(c.Options().PoolSize)), true
	case *redis.ClusterClient: // PoolSize is per node: the bound holds on every node
		holders = make(chan struct{}, atOnceLimit(c.Options().PoolSize))
	}
	return &Store{
		rdb:          client,
		holders:      holders,
		atOnce:       atOnce,
		k:            keys{p: opt.Prefix},
		clock:        opt.Clock,
		staleAfter:   opt.ClaimStaleAfter,
		deadline:     opt.WriteDeadline,
		bounds:       newBounds(opt.ReadTimeout, opt.WriteTimeout),
		waitReplicas: opt.WaitReplicas,
		waitTimeout:  opt.WaitTimeout,
		origin:       core.NewID(),
		users:        memo.New[userRecord](userMemoSize),
		mgets:        mgets{together: atOnce},
	}
}

// Now returns the store's clock: the injected one, else Redis TIME (a read).
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	t, err := s.now(ctx)
	if err != nil {
		return time.Time{}, fail(ctx, "redisstore.Now", err)
	}
	return t, nil
}

func (s *Store) now(ctx context.Context) (time.Time, error) {
	if s.clock != nil {
		return s.clock.Now(), nil
	}
	return s.rdb.Time(ctx).Result()
}

// Ping reports whether Redis answers within the read timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	return fail(ctx, "redisstore.Ping", s.rdb.Ping(ctx).Err())
}

// Close closes the Redis client.
func (s *Store) Close() error { return s.rdb.Close() }

// fnError carries an error returned by a caller's update function, so that it is
// returned to the caller as it is rather than as a Redis failure.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Unwrap() error { return e.err }

// runChecks runs a write's checks (core.Store's check arguments) on what it
// read inside its transaction; the first error is the caller's, returned as it is.
func runChecks[T any](v T, checks []func(T) error) error {
	for _, c := range checks {
		if err := c(v); err != nil {
			return &fnError{err}
		}
	}
	return nil
}

// corrupt reports a stored record that does not decode.
func corrupt(op, key string, err error) error {
	return &core.Error{Kind: core.Internal, Op: op, Msg: "stored record " + key + " is corrupt", Err: err}
}

// interrupted reports, once, whether a test asked the next write to stop here.
func (s *Store) interrupted() bool { return s.interrupt.CompareAndSwap(true, false) }

// errInterrupted is what an interrupted write returns.
var errInterrupted = errors.New("redisstore: write interrupted by test hook")

// holding marks the context of an operation that holds a place in
// Store.holders.
type holding struct{}

// hold waits, within ctx, for a place among the operations that hold a pooled
// connection under WATCH (at most atOnceLimit of the pool at once), and
// returns ctx marked as holding one and the place's release. Such an
// operation may need a second connection before it lets its first go (a
// claim, a registry read, a release): without the bound, as many of them as
// the pool has connections would each hold one and wait for another until
// their bound ran out. An operation already holding a place passes.
func (s *Store) hold(ctx context.Context) (context.Context, func(), error) {
	if s.holders == nil || ctx.Value(holding{}) != nil {
		return ctx, func() {}, nil
	}
	select {
	case s.holders <- struct{}{}:
		return context.WithValue(ctx, holding{}, true), func() { <-s.holders }, nil
	case <-ctx.Done():
		return ctx, nil, context.Cause(ctx)
	}
}

// tryHold is hold without waiting: ok is false when every place is taken.
func (s *Store) tryHold(ctx context.Context) (_ context.Context, release func(), ok bool) {
	if s.holders == nil || ctx.Value(holding{}) != nil {
		return ctx, func() {}, true
	}
	select {
	case s.holders <- struct{}{}:
		return context.WithValue(ctx, holding{}, true), func() { <-s.holders }, true
	default:
		return ctx, nil, false
	}
}

// watchHeld is s.rdb.Watch with a place among the holders (hold).
func (s *Store) watchHeld(ctx context.Context, fn func(context.Context, *redis.Tx) error, keys ...string) error {
	ctx, release, err := s.hold(ctx)
	if err != nil {
		return err
	}
	defer release()
	return s.rdb.Watch(ctx, func(tx *redis.Tx) error { return fn(ctx, tx) }, keys...)
}

// watch runs fn under WATCH keys (all in one slot), retrying when a watched key
// changed, and answers Conflict after maxTxRetries.
// Each attempt is one write step, and fn runs with that step's context.
func (s *Store) watch(ctx context.Context, op, what string, fn func(context.Context, *redis.Tx) error, keys ...string) error {
	for range maxTxRetries {
		err := s.bounds.step(ctx, func(ctx context.Context) error { return s.watchHeld(ctx, fn, keys...) })
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return err
	}
	return core.Errorf(core.Conflict, op, "%s is being changed concurrently; try again", what)
}

// count clamps a page size.
func pageCount(n int) int {
	switch {
	case n <= 0:
		return core.DefaultPageSize
	case n > core.MaxPageSize:
		return core.MaxPageSize
	}
	return n
}

// pageEntry is one member of an index with its score.
type pageEntry struct {
	member string
	score  int64
}

// page reads one page of the sorted-set index zkey: the entries from opt.Start, the
// next cursor (0 at the end) and the index's size.
func (s *Store) page(ctx context.Context, zkey string, opt core.ListOptions) ([]pageEntry, int64, int64, error) {
	n := pageCount(opt.Count)
	lo := "-inf"
	if opt.Start > 0 {
		lo = strconv.FormatInt(opt.Start, 10)
	}
	var zr *redis.ZSliceCmd
	var zc *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		zr = p.ZRangeByScoreWithScores(ctx, zkey, &redis.ZRangeBy{Min: lo, Max: "+inf", Offset: max(opt.Offset, 0), Count: int64(n) + 1})
		zc = p.ZCard(ctx, zkey)
		return nil
	})
	if err != nil {
		return nil, 0, 0, err
	}
	zs := zr.Val()
	var next int64
	if len(zs) > n {
		next = int64(zs[n].Score)
		zs = zs[:n]
	}
	out := make([]pageEntry, len(zs))
	for i, z := range zs {
		m, _ := z.Member.(string)
		out[i] = pageEntry{member: m, score: int64(z.Score)}
	}
	return out, next, zc.Val(), nil
}

// getMany reads keys in one round trip; a missing key gives "" and ok false.
// On one server (or a Sentinel-managed one) that is one MGET, which costs both
// sides much less than a GET per key (and reads a key holding another type as
// missing); on a Cluster, whose keys' slots differ, a pipeline of GETs.
func (s *Store) getMany(ctx context.Context, keys []string) ([]string, []bool, error) {
	vals := make([]string, len(keys))
	oks := make([]bool, len(keys))
	if len(keys) == 0 {
		return vals, oks, nil
	}
	if _, cluster := s.rdb.(*redis.ClusterClient); !cluster {
		vs, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, nil, err
		}
		for i, v := range vs {
			vals[i], oks[i] = v.(string)
		}
		return vals, oks, nil
	}
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	for i, c := range cmds {
		v, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, nil, err
		default:
			vals[i], oks[i] = v, true
		}
	}
	return vals, oks, nil
}
