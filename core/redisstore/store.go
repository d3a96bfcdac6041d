package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// Prefix starts every key, so several deployments can share one Redis; "" means
	// "gh:". It must not contain '{' or '}', which would break the hash tags.
	Prefix string
	// Clock tells the time for claims and their staleness; nil means Redis TIME.
	Clock core.Clock
	// ClaimStaleAfter is the age after which a claim whose owner does not hold the
	// name is free; 0 means one minute (SPEC §5).
	ClaimStaleAfter time.Duration
	// WriteDeadline is the hard limit between a create's claims and its final check;
	// it must stay well under ClaimStaleAfter. 0 means 10 s; a value above half of
	// ClaimStaleAfter is lowered to that half.
	WriteDeadline time.Duration
	// ReadTimeout bounds each read on a request path (a /verify, a GET); when it
	// passes the call answers Unavailable. 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write step (a claim, a MULTI, a script); 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultPrefix          = "gh:"
	DefaultClaimStaleAfter = time.Minute
	DefaultWriteDeadline   = 10 * time.Second
	DefaultReadTimeout     = 500 * time.Millisecond
	DefaultWriteTimeout    = 2 * time.Second
)

// maxTxRetries bounds the WATCH/MULTI retries of one write before it answers Conflict.
const maxTxRetries = 10

// Store is a core.Store on Redis. It is safe for concurrent use.
type Store struct {
	rdb        redis.UniversalClient
	k          keys
	clock      core.Clock
	staleAfter time.Duration
	deadline   time.Duration

	// interrupt makes the next create or delete stop right after its write in the
	// entity's slot, as a crash there would (tests only; see export_test.go).
	interrupt atomic.Bool
}

var _ core.Store = (*Store)(nil)

// CheckPrefix reports whether p can be used as Options.Prefix.
func CheckPrefix(p string) error {
	if strings.ContainsAny(p, "{}") {
		return fmt.Errorf("redisstore: key prefix %q must not contain '{' or '}'", p)
	}
	return nil
}

// New returns a Store on client, which it owns from then on (Close closes it). It
// panics if opt.Prefix fails CheckPrefix: configuration checks it first.
func New(client redis.UniversalClient, opt Options) *Store {
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
	return &Store{
		rdb:        client,
		k:          keys{p: opt.Prefix},
		clock:      opt.Clock,
		staleAfter: opt.ClaimStaleAfter,
		deadline:   opt.WriteDeadline,
	}
}

// Now returns the store's clock: the injected one, else Redis TIME.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	t, err := s.now(ctx)
	if err != nil {
		return time.Time{}, fail("redisstore.Now", err)
	}
	return t, nil
}

func (s *Store) now(ctx context.Context) (time.Time, error) {
	if s.clock != nil {
		return s.clock.Now(), nil
	}
	return s.rdb.Time(ctx).Result()
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return fail("redisstore.Ping", s.rdb.Ping(ctx).Err())
}

// Client returns the store's Redis client, to share it (NewLimiter); the store
// still owns it.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Close closes the Redis client.
func (s *Store) Close() error { return s.rdb.Close() }

// keys builds the key names of the layout in the package comment.
type keys struct{ p string }

func (k keys) user(uid string) string       { return k.p + "u:{" + uid + "}" }
func (k keys) app(uid, appID string) string { return k.user(uid) + ":app:" + appID }
func (k keys) apps(uid string) string       { return k.user(uid) + ":apps" }
func (k keys) appNames(uid string) string   { return k.user(uid) + ":appnames" }
func (k keys) creds(uid string) string      { return k.user(uid) + ":creds" }
func (k keys) consumerCreds(uid, consumer string) string {
	return k.user(uid) + ":cc:" + consumer
}
func (k keys) cred(uid string, typ core.CredentialType, id string) string {
	return k.user(uid) + ":cred:" + string(typ) + ":" + id
}
func (k keys) password(uid string) string { return k.user(uid) + ":pw" }
func (k keys) secret(uid string) string   { return k.user(uid) + ":secret" }
func (k keys) sessions(uid string) string { return k.user(uid) + ":sessions" }
func (k keys) tokens(uid string) string   { return k.user(uid) + ":tokens" }
func (k keys) zsetOf(kind core.SessionKind, uid string) string {
	if kind == core.KindOAuth {
		return k.tokens(uid)
	}
	return k.sessions(uid)
}

// sessionPrefix starts the keys of a user's session and token records; the rest
// is the hex of the token's SHA-256.
func (k keys) sessionPrefix(uid string) string    { return k.user(uid) + ":sess:" }
func (k keys) session(uid, hexHash string) string { return k.sessionPrefix(uid) + hexHash }

func (k keys) seq(what string) string         { return k.p + "seq:" + what }
func (k keys) idx(what string) string         { return k.p + "idx:" + what }
func (k keys) appLocator(appID string) string { return k.p + "app:" + appID }
func (k keys) appName(name string) string     { return k.p + "appname:" + name }
func (k keys) claim(kind, name string) string { return k.p + "claim:" + kind + ":" + name }
func (k keys) scopes() string                 { return k.p + "scopes" }
func (k keys) kv(namespace string) string     { return k.p + "kv:" + namespace + ":" }
func (k keys) admin(what string) string       { return k.p + "{adminkeys}:" + what }

// credMember is a credential's member in the user's own zsets.
func credMember(typ core.CredentialType, id string) string { return string(typ) + ":" + id }

// appRef is an app's member in the global indexes and name sets.
func appRef(uid, appID string) string { return uid + "/" + appID }

// credRef is a credential's member in idx:creds.
func credRef(uid string, typ core.CredentialType, id string) string {
	return uid + "/" + string(typ) + "/" + id
}

// validID reports whether id can be part of keys and members: not empty, and free
// of the characters the layout uses as delimiters.
func validID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "{}/| \t\r\n")
}

// fail wraps a Redis (or context) error as Unavailable; *core.Error values pass
// through unchanged.
func fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*fnError](err); ok {
		return e.err
	}
	if _, ok := errors.AsType[*core.Error](err); ok {
		return err
	}
	return &core.Error{Kind: core.Unavailable, Op: op, Err: err}
}

// fnError carries an error returned by a caller's update function, so that it is
// returned to the caller as it is rather than as a Redis failure.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Unwrap() error { return e.err }

// corrupt reports a stored record that does not decode.
func corrupt(op, key string, err error) error {
	return &core.Error{Kind: core.Internal, Op: op, Msg: "stored record " + key + " is corrupt", Err: err}
}

// cleanupContext returns a context for releasing claims and rolling back after a
// failure: still bounded, but not cancelled with the request that failed.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// interrupted reports, once, whether a test asked the next write to stop here.
func (s *Store) interrupted() bool { return s.interrupt.CompareAndSwap(true, false) }

// errInterrupted is what an interrupted write returns.
var errInterrupted = errors.New("redisstore: write interrupted by test hook")

// watch runs fn under WATCH keys (all in one slot), retrying when a watched key
// changed, and answers Conflict after maxTxRetries.
func (s *Store) watch(ctx context.Context, op, what string, fn func(*redis.Tx) error, keys ...string) error {
	for range maxTxRetries {
		err := s.rdb.Watch(ctx, fn, keys...)
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
		zr = p.ZRangeByScoreWithScores(ctx, zkey, &redis.ZRangeBy{Min: lo, Max: "+inf", Count: int64(n) + 1})
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

// getMany reads keys in one pipeline; a missing key gives "" and ok false.
func (s *Store) getMany(ctx context.Context, keys []string) ([]string, []bool, error) {
	vals := make([]string, len(keys))
	oks := make([]bool, len(keys))
	if len(keys) == 0 {
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
