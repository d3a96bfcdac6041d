package core

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"sync"
	"time"
)

// VerifyCacheOptions sizes the verification cache of one process: what /verify
// resolved (the credential or token, its owners' state and the scope registry,
// as the answer they make), kept under a keyed hash of what was presented.
type VerifyCacheOptions struct {
	// Size is the number of verifications kept, least recently used out
	// first; 0 turns the cache off.
	Size int
	// TTL is how long a success is kept; 0 means DefaultVerifyCacheTTL, and
	// more than MaxVerifyCacheTTL is lowered to it.
	TTL time.Duration
	// NegativeTTL is how long a refusal that counts no failure (a deactivated
	// user, app or credential, an expired or revoked token) is kept; 0 means
	// MaxVerifyCacheNegativeTTL, which bounds it too.
	NegativeTTL time.Duration
}

// Bounds and defaults of VerifyCacheOptions. The TTLs bound how long a change
// whose invalidation was lost (Redis failed right after the write) can go
// unseen by another process.
const (
	DefaultVerifyCacheSize    = 100_000
	DefaultVerifyCacheTTL     = 3 * time.Second
	MaxVerifyCacheTTL         = 5 * time.Second
	MaxVerifyCacheNegativeTTL = time.Second
)

// ChangeSink receives what a ChangeFeed reports.
type ChangeSink interface {
	// Changed says that a write may have changed the answer of verifications
	// in userID's slot (the user, its apps, credentials, sessions and tokens);
	// "" says that any answer may have (the scope registry changed).
	Changed(userID string)
	// Following says whether every change is being delivered: false when the
	// feed lost its subscription (changes may be missed from then on), true
	// once it is subscribed again.
	Following(ok bool)
}

// ChangeFeed is implemented by a Store whose write methods report every change
// that affects a verification, in this process at once (synchronously, after
// the write) and in every other process through the store.
type ChangeFeed interface {
	// FollowChanges delivers to sink the changes written by any process until
	// ctx ends, and reports through Following whether it is subscribed. It
	// starts by reporting Following(false) and blocks until ctx ends.
	FollowChanges(ctx context.Context, sink ChangeSink)
}

// cacheKey is the keyed hash of a presented credential.
type cacheKey [sha256.Size]byte

// verdict is one resolved verification: a success (pr) or a refusal that
// counts no failure (err), the user whose slot it was read from, and the
// session to touch on a hit.
type verdict struct {
	key      cacheKey
	pr       Principal
	err      error
	userID   string
	session  string    // the session's or token's hash, "" for a credential
	lastSeen time.Time // the session's lastSeenAt when it was read
	expires  time.Time // at most the credential's, token's or jwt's own expiry
	store    bool      // the outcome may be kept (no failure was counted)
}

// bound lowers v's expiry to t when t is set and earlier.
func (v *verdict) bound(t time.Time) {
	if !t.IsZero() && (v.expires.IsZero() || t.Before(v.expires)) {
		v.expires = t
	}
}

// verifyCache is a bounded LRU of verdicts. It is usable only while its feed
// follows the store's changes: until then, and whenever the subscription is
// lost, it is empty and every verification reads the store.
type verifyCache struct {
	ttl, negTTL time.Duration
	key         []byte // HMAC key, random per process
	macs        sync.Pool

	mu      sync.Mutex
	max     int
	live    bool
	gen     uint64 // bumped by every invalidation: a read older than it is not kept
	lru     list.List
	entries map[cacheKey]*list.Element
	byUser  map[string]map[cacheKey]struct{}
	flights map[cacheKey]*flight // verifications reading the store now
}

// flight is a verification reading the store: identical ones arriving
// meanwhile wait for its verdict rather than read the store too (a popular
// credential's entry expiring, a Basic password not yet remembered: one read
// or one hash instead of one per connection).
type flight struct {
	done    chan struct{}
	v       verdict
	waiters int // c.mu
}

// macBuf is a pooled HMAC with the buffer its input is assembled in.
type macBuf struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

func newVerifyCache(o VerifyCacheOptions) *verifyCache {
	if o.Size <= 0 {
		return nil
	}
	c := &verifyCache{ttl: o.TTL, negTTL: o.NegativeTTL, key: make([]byte, 32), max: o.Size,
		entries: make(map[cacheKey]*list.Element), byUser: make(map[string]map[cacheKey]struct{}), flights: make(map[cacheKey]*flight)}
	if c.ttl <= 0 {
		c.ttl = DefaultVerifyCacheTTL
	}
	c.ttl = min(c.ttl, MaxVerifyCacheTTL)
	if c.negTTL <= 0 {
		c.negTTL = MaxVerifyCacheNegativeTTL
	}
	c.negTTL = min(c.negTTL, MaxVerifyCacheNegativeTTL)
	rand.Read(c.key)
	c.macs.New = func() any { return &macBuf{h: hmac.New(sha256.New, c.key)} }
	return c
}

// keyOf is the keyed hash of what was presented: the scheme, the name and the
// secret (the secret is never kept in clear). The client address is not part
// of it: a success does not depend on it.
func (c *verifyCache) keyOf(p Presented) cacheKey {
	m := c.macs.Get().(*macBuf)
	m.in = append(append(append(append(append(m.in[:0], p.Scheme...), 0), p.ID...), 0), p.Secret...)
	m.h.Reset()
	m.h.Write(m.in)
	k := cacheKey(m.h.Sum(m.sum[:0]))
	clear(m.in) // the secret does not outlive the request in the pool either
	c.macs.Put(m)
	return k
}

// get returns the verdict under k when the cache is live and it has not
// expired at now.
func (c *verifyCache) get(k cacheKey, now time.Time) (*verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok || !c.live {
		return nil, false
	}
	v := el.Value.(*verdict)
	if !now.Before(v.expires) {
		c.remove(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return v, true
}

// begin is called before a verification reads the store: the generation it
// returns lets put refuse what an invalidation arriving meanwhile made stale.
func (c *verifyCache) begin() (gen uint64, live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.live
}

// join returns the flight of a verification of k in progress (leader
// false), or starts one (leader true): the leader must land it.
func (c *verifyCache) join(k cacheKey) (f *flight, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.flights[k]; ok {
		f.waiters++
		return f, false
	}
	f = &flight{done: make(chan struct{})}
	c.flights[k] = f
	return f, true
}

// land gives the waiters of f the leader's verdict v.
func (c *verifyCache) land(k cacheKey, f *flight, v *verdict) {
	f.v = *v
	c.mu.Lock()
	if c.flights[k] == f { // an invalidation may have let a newer one start
		delete(c.flights, k)
	}
	c.mu.Unlock()
	close(f.done)
}

// put keeps v under k unless an invalidation came since begin returned gen.
func (c *verifyCache) put(k cacheKey, v verdict, now time.Time, gen uint64) {
	if v.err == nil {
		v.bound(now.Add(c.ttl))
	} else {
		v.bound(now.Add(c.negTTL))
	}
	if v.userID == "" || !now.Before(v.expires) {
		return
	}
	v.key = k
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || gen != c.gen {
		return
	}
	if el, ok := c.entries[k]; ok {
		c.remove(el)
	}
	for c.lru.Len() >= c.max {
		c.remove(c.lru.Back())
	}
	c.entries[k] = c.lru.PushFront(&v)
	u := c.byUser[v.userID]
	if u == nil {
		u = make(map[cacheKey]struct{})
		c.byUser[v.userID] = u
	}
	u[k] = struct{}{}
}

// remove drops one entry; c.mu is held.
func (c *verifyCache) remove(el *list.Element) {
	v := c.lru.Remove(el).(*verdict)
	delete(c.entries, v.key)
	if u := c.byUser[v.userID]; u != nil {
		delete(u, v.key)
		if len(u) == 0 {
			delete(c.byUser, v.userID)
		}
	}
}

// Changed forgets the verdicts read from userID's slot, or all of them for "".
func (c *verifyCache) Changed(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	// A verification starting after this change must not wait for a read
	// that began before it: the flights in progress take no more waiters.
	clear(c.flights)
	if userID == "" {
		c.reset()
		return
	}
	for k := range c.byUser[userID] {
		c.remove(c.entries[k])
	}
}

// Following empties the cache and makes it usable (ok) or not: changes
// written while the subscription was down were missed, so nothing read
// before can be trusted.
func (c *verifyCache) Following(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = ok
	clear(c.flights)
	c.reset()
}

// reset empties the cache; c.mu is held.
func (c *verifyCache) reset() {
	c.lru.Init()
	clear(c.entries)
	clear(c.byUser)
}

// VerifyCacheLive reports whether the verification cache is in use: on, and
// its change feed subscribed (readiness checks and tests wait for it).
func (s *Service) VerifyCacheLive() bool {
	if s.vcache == nil {
		return false
	}
	_, live := s.vcache.begin()
	return live
}

// FollowChanges keeps the verification cache, the copy of the scope and
// group registries and, when the store is a ThrottleFeed too, the set of
// failure throttles over their rate in step with every process until ctx
// ends: each is used only while the store's change feed is subscribed. It returns
// at once when the store has no change feed (both then stay unused); with the
// cache off it still follows, for the registries' copy.
func (s *Service) FollowChanges(ctx context.Context) {
	feed, ok := s.store.(ChangeFeed)
	if !ok {
		return
	}
	sinks := &changeSinks{sinks: []ChangeSink{s.regs}}
	if s.vcache != nil {
		sinks.sinks = append(sinks.sinks, s.vcache)
	}
	if _, ok := s.store.(ThrottleFeed); ok {
		sinks.sinks = append(sinks.sinks, s.over)
	}
	feed.FollowChanges(ctx, sinks)
}
