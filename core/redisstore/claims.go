package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// Claim kinds: the unique user names (a client's identifier for its user
// named "<clientID>/<identifier>"), the identities at providers (name
// "<provider>:<subject>"), the keyed credential types, kindClientName for
// client names (lower-cased, owner the client), kindApp for the app locators
// (name the app id) and kindClientKey for the client key lookups (name the
// hex of the key's SHA-256, owner "<clientID>/<keyID>"). Each kind has its
// claim buckets P cb:<kind>:{<n>}.
const (
	kindUsername         = string(core.NameUsername)
	kindEmail            = string(core.NameEmail)
	kindExternalID       = string(core.NameExternalID)
	kindClientIdentifier = string(core.NameClientIdentifier)
	kindIdentity         = "identity"
	kindClientName       = "clientName"
	kindGroupName        = "groupName"
	kindApp              = "app"
	kindClientKey        = "clientKey"
)

// emailProvider names the identities that are unique through the user's email
// claim instead of an identity claim of their own.
const emailProvider = "email"

// hcasScript sets field ARGV[1] of hash KEYS[1] to ARGV[3] only if it still
// holds ARGV[2].
var hcasScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0`)

// cadScript deletes KEYS[1] only if it still holds ARGV[1].
var cadScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// claim is one unique name to hold while an entity is written: the field
// name of the hash bucket P cb:<kind>:{<n>} (claimBucketKey). The key that
// held it in the layout before claim buckets, only ever read and deleted
// now, is oldKey's.
type claim struct {
	bucket string // P cb:<kind>:{<n>}
	kind   string // kindUsername, ..., a keyed credential type, kindApp or kindClientKey
	name   string // the normalised name: the field
	show   string // how a Conflict names it: `username "Bob"`
}

// newClaim is the one place that says where a claim of kind and name lives
// (with oldKey, where it lived before claim buckets).
func (s *Store) newClaim(kind, name, show string) claim {
	return claim{bucket: s.k.claimBucketKey(kind, name), kind: kind, name: name, show: show}
}

// oldKey is the key of c in the layout before claim buckets: P
// claim:<kind>:<name>, P app:<appid> or P clientkey:<hex> (oldClaims).
func (s *Store) oldKey(c claim) string {
	switch c.kind {
	case kindApp:
		return s.k.appLocator(c.name)
	case kindClientKey:
		return s.k.clientKey(c.name)
	}
	return s.k.claim(c.kind, c.name)
}

// same reports whether c and d claim one name.
func (c claim) same(d claim) bool { return c.kind == d.kind && c.name == d.name }

// held is a claim taken or owned: val is the value its bucket field holds
// for us ("" for none), oldVal that of its old key oldKey ("" for none).
type held struct {
	claim
	val    string
	oldVal string
	oldKey string
}

func (s *Store) usernameClaim(key, raw string) claim {
	return s.newClaim(kindUsername, key, fmt.Sprintf("username %q", raw))
}

func (s *Store) emailClaim(key, raw string) claim {
	return s.newClaim(kindEmail, key, fmt.Sprintf("email %q", raw))
}

func (s *Store) externalIDClaim(v string) claim {
	return s.newClaim(kindExternalID, v, fmt.Sprintf("externalId %q", v))
}

// identityClaim is the claim of an identity at a provider other than "email";
// the provider never contains ':', so the name splits back unambiguously.
func (s *Store) identityClaim(provider, subject string) claim {
	return s.newClaim(kindIdentity, identityName(provider, subject), fmt.Sprintf("%s identity %q", provider, subject))
}

func (s *Store) keyIDClaim(typ core.CredentialType, keyID string) claim {
	return s.newClaim(string(typ), keyID, fmt.Sprintf("%s keyId %q", typ, keyID))
}

func (s *Store) appClaim(appID string) claim {
	return s.newClaim(kindApp, appID, fmt.Sprintf("app id %q", appID))
}

// clientIdentifierClaim is the claim of a client's identifier for its user,
// case-sensitive, as given.
func (s *Store) clientIdentifierClaim(clientID, identifier string) claim {
	return s.newClaim(kindClientIdentifier, core.ClientIdentifierName(clientID, identifier), fmt.Sprintf("client identifier %q", identifier))
}

// clientNameClaim is the claim of a client's name, unique case-insensitively.
func (s *Store) clientNameClaim(name string) claim {
	return s.newClaim(kindClientName, clientNameKey(name), fmt.Sprintf("client name %q", name))
}

// groupNameClaim is the claim of a group's name, unique case-insensitively.
func (s *Store) groupNameClaim(name string) claim {
	return s.newClaim(kindGroupName, core.GroupNameKey(name), fmt.Sprintf("group name %q", name))
}

// clientKeyClaim is the lookup of a client key by its hash ("sha256:<hex>",
// checked by the caller). Its show never carries the hash.
func (s *Store) clientKeyClaim(hash string) claim {
	h, _ := hashHex(hash)
	return s.newClaim(kindClientKey, h, "a client key with that hash")
}

// Claim keys of the layout before claim buckets (P claim:<kind>:<name>, P
// app:<appid>, P clientkey:<hex>, each a key of its own) may still exist in
// a store written by an earlier version. No version writes them any more
// (every instance is upgraded at once), so while they may exist: a lookup
// reads the bucket's field and the old key in one pipeline, the bucket's
// value first; a take reads the old key in its first pipeline and answers
// Conflict when the old key holds the name for an owner that still holds it
// (claimFree); a release deletes both where they hold the owner's value.
// Doctor's repair moves every old key into its bucket and then writes the
// marker P layout:claims = "buckets"; so does the first process to find an
// empty store (no P seq:users, seq:clients or seq:groups). A process reads
// the marker with its first lookup or take, and again at most every
// layoutRecheck while it has not seen it, in the same pipeline as that
// lookup or take; once it has, it reads no old key again.
type claimLayout struct {
	bucketsOnly atomic.Bool  // the marker was seen: no old claim key is left
	checked     atomic.Int64 // when the marker was last read (Unix ns; 0: never)
}

// layoutRecheck is how often a process that has not seen the marker reads it
// again.
const layoutRecheck = time.Minute

// oldClaims reports whether claim keys of the old layout may still exist.
func (s *Store) oldClaims() bool { return !s.layout.bucketsOnly.Load() }

// probeLayout queues the read of the marker on p when it is due (never once
// it was seen) and returns what to call with the pipeline's replies, or nil.
func (s *Store) probeLayout(ctx context.Context, p redis.Pipeliner) func(context.Context) {
	if !s.oldClaims() {
		return nil
	}
	now, last := time.Now().UnixNano(), s.layout.checked.Load()
	if last != 0 && now-last < int64(layoutRecheck) || !s.layout.checked.CompareAndSwap(last, now) {
		return nil
	}
	marker := p.Get(ctx, s.k.layoutClaims())
	seqs := []*redis.IntCmd{p.Exists(ctx, s.k.seq(listUsers)), p.Exists(ctx, s.k.seq(listClients)), p.Exists(ctx, s.k.seq(listGroups))}
	return func(ctx context.Context) {
		v, err := marker.Result()
		switch {
		case err == nil && v == claimsInBuckets:
			s.layout.bucketsOnly.Store(true)
			return
		case err != nil && !errors.Is(err, redis.Nil):
			s.layout.checked.Store(0) // try again with the next
			return
		}
		for _, e := range seqs {
			if e.Val() != 0 || e.Err() != nil {
				return
			}
		}
		// An empty store: nothing was ever written under the old layout.
		if s.rdb.Set(ctx, s.k.layoutClaims(), claimsInBuckets, 0).Err() == nil {
			s.layout.bucketsOnly.Store(true)
		}
	}
}

// readLayout reads the marker now (tests, Doctor).
func (s *Store) readLayout(ctx context.Context) error {
	s.layout.checked.Store(0)
	var apply func(context.Context)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		apply = s.probeLayout(ctx, p)
		if apply == nil {
			p.Ping(ctx) // a pipeline needs a command
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if apply != nil {
		apply(ctx)
	}
	return nil
}

// claimRead is the read of a claim queued on a pipeline: its bucket field
// and, while old claim keys may exist, its old key.
type claimRead struct{ field, old *redis.StringCmd }

// readClaim queues the read of c on p.
func (s *Store) readClaim(ctx context.Context, p redis.Pipeliner, c claim) claimRead {
	r := claimRead{field: p.HGet(ctx, c.bucket, c.name)}
	if s.oldClaims() {
		r.old = p.Get(ctx, s.oldKey(c))
	}
	return r
}

// values returns the bucket field's value and the old key's, "" for a
// missing one.
func (r claimRead) values() (val, oldVal string, err error) {
	val, _, err = optional(r.field)
	if err != nil || r.old == nil {
		return val, "", err
	}
	oldVal, _, err = optional(r.old)
	return val, oldVal, err
}

// value returns the claim's value, the bucket's before the old key's; ok is
// false when there is none.
func (r claimRead) value() (string, bool, error) {
	val, oldVal, err := r.values()
	v := cmp.Or(val, oldVal)
	return v, v != "", err
}

// claimValue reads one claim's value: one HGET once no old claim key is
// left, else one pipeline.
func (s *Store) claimValue(ctx context.Context, c claim) (string, bool, error) {
	if !s.oldClaims() {
		return optional(s.rdb.HGet(ctx, c.bucket, c.name))
	}
	var r claimRead
	var apply func(context.Context)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		apply = s.probeLayout(ctx, p)
		r = s.readClaim(ctx, p, c)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", false, err
	}
	if apply != nil {
		apply(ctx)
	}
	return r.value()
}

// heldBy reads the claims cs in one pipeline and returns those that owners[i]
// holds, in its bucket field, its old key or both, with the values read: what
// a release of names the owner gives up frees.
func (s *Store) heldBy(ctx context.Context, cs []claim, owners []string) ([]held, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	reads := make([]claimRead, len(cs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range cs {
			reads[i] = s.readClaim(ctx, p, c)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var out []held
	for i, c := range cs {
		val, oldVal, err := reads[i].values()
		if err != nil {
			return nil, err
		}
		h := held{claim: c}
		if val != "" && claimOwner(val) == owners[i] {
			h.val = val
		}
		if oldVal != "" && claimOwner(oldVal) == owners[i] {
			h.oldVal, h.oldKey = oldVal, s.oldKey(c)
		}
		if h.val != "" || h.oldVal != "" {
			out = append(out, h)
		}
	}
	return out, nil
}

// heldByOne is heldBy with one owner for every claim.
func (s *Store) heldByOne(ctx context.Context, cs []claim, owner string) ([]held, error) {
	owners := make([]string, len(cs))
	for i := range owners {
		owners[i] = owner
	}
	return s.heldBy(ctx, cs, owners)
}

// holds reports, for each claim, whether its owner exists and still holds the
// name: the user record carries the username, email, externalId, identity or
// client identifier, the client record the name, or the credential, app or
// client key record exists in the owner's slot (a client key's within a
// client that exists, under that hash). One pipeline.
func (s *Store) holds(ctx context.Context, cs []claim, owners []string) ([]bool, error) {
	out := make([]bool, len(cs))
	checks := make([]func() (bool, error), len(cs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range cs {
			o := owners[i]
			if c.kind == kindClientKey {
				cid, keyID, ok := parseClientKeyRef(o)
				if !ok {
					continue
				}
				client := p.Exists(ctx, s.k.client(cid))
				key := p.HGet(ctx, s.k.clientKeys(cid), keyID)
				checks[i] = func() (bool, error) {
					data, ok, err := optional(key)
					if err != nil || !ok || client.Val() != 1 {
						return false, cmp.Or(err, client.Err())
					}
					r, err := decode[clientKeyRecord]("redisstore.holds", s.k.clientKeys(cid), data)
					return err == nil && r.Hash == "sha256:"+c.name, nil
				}
				continue
			}
			if !validID(o) {
				continue
			}
			switch c.kind {
			case kindUsername, kindEmail, kindExternalID, kindIdentity, kindClientIdentifier:
				user := p.Get(ctx, s.k.user(o))
				checks[i] = func() (bool, error) {
					data, ok, err := optional(user)
					if err != nil || !ok {
						return false, err
					}
					r, err := decode[userRecord]("redisstore.holds", s.k.user(o), data)
					return err == nil && userHolds(r, c.kind, c.name), nil // a corrupt owner holds nothing
				}
			case kindClientName:
				client := p.Get(ctx, s.k.client(o))
				checks[i] = func() (bool, error) {
					data, ok, err := optional(client)
					if err != nil || !ok {
						return false, err
					}
					r, err := decode[clientRecord]("redisstore.holds", s.k.client(o), data)
					return err == nil && clientNameKey(r.Name) == c.name, nil
				}
			case kindGroupName:
				group := p.HGet(ctx, s.k.groups(), o)
				checks[i] = func() (bool, error) {
					data, ok, err := optional(group)
					if err != nil || !ok {
						return false, err
					}
					r, err := decode[groupRecord]("redisstore.holds", s.k.groups(), data)
					return err == nil && core.GroupNameKey(r.Name) == c.name, nil
				}
			case kindApp:
				checks[i] = exists(p.Exists(ctx, s.k.app(o, c.name)))
			default:
				checks[i] = exists(p.Exists(ctx, s.k.cred(o, core.CredentialType(c.kind), c.name)))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, check := range checks {
		if check == nil {
			continue
		}
		if out[i], err = check(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// optional reads a string reply that may be missing (ok false).
func optional(c *redis.StringCmd) (string, bool, error) {
	v, err := c.Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, err
}

// exists reads an EXISTS reply of one key.
func exists(c *redis.IntCmd) func() (bool, error) {
	return func() (bool, error) {
		n, err := c.Result()
		return n == 1, err
	}
}

// userHolds reports whether the user record carries the normalised name.
func userHolds(r userRecord, kind, name string) bool {
	switch kind {
	case kindUsername:
		k, err := core.UsernameKey(r.Username)
		return err == nil && k == name
	case kindEmail:
		return r.Email != "" && core.EmailKey(r.Email) == name
	case kindExternalID:
		return r.ExternalID != "" && r.ExternalID == name
	case kindClientIdentifier:
		return r.ClientID != "" && core.ClientIdentifierName(r.ClientID, r.ClientIdentifier) == name
	case kindIdentity:
		for _, id := range r.Identities {
			if id.Provider != emailProvider && identityName(id.Provider, id.Subject) == name {
				return true
			}
		}
	}
	return false
}

// claimFree reports whether a claim holding value is free at now: older than the
// staleness window and not held by its owner.
func (s *Store) claimFree(ctx context.Context, c claim, value string, now time.Time) (bool, error) {
	owner, at, ok := parseClaim(value)
	if ok && now.Sub(at) < s.staleAfter {
		return false, nil
	}
	h, err := s.holds(ctx, []claim{c}, []string{owner})
	if err != nil {
		return false, err
	}
	return !h[0], nil
}

// take claims c with the value val at t0: HSETNX, or a compare-and-set over
// a free claim. While old claim keys may exist, the first pipeline also reads
// c's, and a name an old key holds for an owner that still holds it is
// Conflict (oldFree). Conflict names the claim when it is taken.
func (s *Store) take(ctx context.Context, op string, c claim, val string, t0 time.Time) (held, error) {
	taken := core.Errorf(core.Conflict, op, "%s is taken", c.show)
	var set *redis.BoolCmd
	var old *redis.StringCmd
	var apply func(context.Context)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		apply = s.probeLayout(ctx, p)
		set = p.HSetNX(ctx, c.bucket, c.name, val)
		if s.oldClaims() {
			old = p.Get(ctx, s.oldKey(c))
		}
		return nil
	})
	if set.Val() { // ours, whatever else failed: released below on any error
		h := held{claim: c, val: val}
		err = cmp.Or(ignoreNil(err), s.oldFree(ctx, c, old, t0, taken))
		if err != nil {
			s.release(ctx, []held{h})
			return held{}, err
		}
		if apply != nil {
			apply(ctx)
		}
		return h, nil
	}
	if err = cmp.Or(ignoreNil(err), s.oldFree(ctx, c, old, t0, taken)); err != nil {
		return held{}, err
	}
	if apply != nil {
		apply(ctx)
	}
	cur := ""
	for range 5 {
		if cur == "" {
			ok, err := s.rdb.HSetNX(ctx, c.bucket, c.name, val).Result()
			if err != nil {
				return held{}, err
			}
			if ok {
				return held{claim: c, val: val}, nil
			}
			cur, err = s.rdb.HGet(ctx, c.bucket, c.name).Result()
			if errors.Is(err, redis.Nil) {
				cur = ""
				continue
			}
			if err != nil {
				return held{}, err
			}
		}
		free, err := s.claimFree(ctx, c, cur, t0)
		if err != nil {
			return held{}, err
		}
		if !free {
			break
		}
		n, err := hcasScript.Run(ctx, s.rdb, []string{c.bucket}, c.name, cur, val).Int()
		if err != nil {
			return held{}, err
		}
		if n == 1 {
			return held{claim: c, val: val}, nil
		}
		cur = ""
	}
	return held{}, taken
}

// oldFree answers taken when c's old key, read by old (nil when not read),
// holds the name for an owner that still holds it or for a create that may
// still be in flight (claimFree at t0). No version writes old keys, so one
// found missing or free stays so.
func (s *Store) oldFree(ctx context.Context, c claim, old *redis.StringCmd, t0 time.Time, taken error) error {
	if old == nil {
		return nil
	}
	v, ok, err := optional(old)
	if err != nil || !ok {
		return err
	}
	free, err := s.claimFree(ctx, c, v, t0)
	if err != nil {
		return err
	}
	if !free {
		return taken
	}
	return nil
}

// release deletes each claim that still holds the value it was taken with. Errors
// are ignored: a claim left behind goes stale and Doctor removes it.
func (s *Store) release(ctx context.Context, hs []held) {
	if len(hs) == 0 {
		return
	}
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		releaseAll(ctx, p, hs)
		return nil
	})
}

// releaseAll queues the compare-and-delete of each claim on p: of its bucket
// field and of its old key, each where it holds the value held.
func releaseAll(ctx context.Context, p redis.Pipeliner, hs []held) {
	for _, h := range hs {
		if h.val != "" {
			hcadScript.Eval(ctx, p, []string{h.bucket}, h.name, h.val)
		}
		if h.oldVal != "" {
			cadScript.Eval(ctx, p, []string{h.oldKey}, h.oldVal)
		}
	}
}

// creation tracks the claims of one create, update or rename, for its final check
// and its rollback.
type creation struct {
	s     *Store
	op    string
	owner string
	t0    time.Time
	held  []held
}

// begin starts a write that claims names for owner, taking t0 from the
// claims' clock (claimTime).
func (s *Store) begin(ctx context.Context, op, owner string) (*creation, error) {
	t0, err := s.claimTime(ctx)
	if err != nil {
		return nil, err
	}
	return &creation{s: s, op: op, owner: owner, t0: claimStamp(t0)}, nil // as a claim keeps it
}

// claim takes c, remembering it for check and abort.
func (cr *creation) claim(ctx context.Context, c claim) error {
	h, err := cr.s.take(ctx, cr.op, c, claimValue(cr.owner, cr.t0), cr.t0)
	if err != nil {
		return err
	}
	cr.held = append(cr.held, h)
	return nil
}

// claimAll takes every claim of a create and INCRs the counter (a full key,
// "" for none), in one pipeline (one write step) on via, with what also
// queues first, and returns the counter's value. Each claim is a plain
// HSETNX of its bucket's field, its value the owner and the claim time
// (claimTime: the store's estimate of Redis' clock, or Options.Clock); while
// old claim keys may exist the pipeline also reads each claim's (oldFree); t0 is the earlier of that time and Redis
// TIME read in the same pipeline, so an estimate that runs late can only make
// the create miss its deadline, never make its claims look older than they
// are to a create that finds them (claimFree). A claim found taken is then
// taken over, one at a time, if it is free; else Conflict names the first
// such claim, and the claims taken so far stay in cr.held for abort.
func (cr *creation) claimAll(ctx context.Context, via redis.Cmdable, cs []claim, counter string, also func(redis.Pipeliner)) (int64, error) {
	s := cr.s
	if len(cs) == 0 && counter == "" && also == nil {
		return 0, nil
	}
	var val string
	if len(cs) > 0 {
		at, err := s.claimTime(ctx)
		if err != nil {
			return 0, err
		}
		val = claimValue(cr.owner, at)
		cr.t0 = claimStamp(at) // at, to the millisecond the claim keeps
	}
	sets := make([]*redis.BoolCmd, len(cs))
	var olds []*redis.StringCmd // while old claim keys may exist
	var now *redis.TimeCmd
	var incr *redis.IntCmd
	var apply func(context.Context)
	sent := time.Now()
	err := s.bounds.step(ctx, func(ctx context.Context) error {
		_, err := via.Pipelined(ctx, func(p redis.Pipeliner) error {
			if also != nil {
				also(p)
			}
			if len(cs) > 0 {
				apply = s.probeLayout(ctx, p)
			}
			if s.clock == nil && len(cs) > 0 {
				now = p.Time(ctx)
			}
			if s.oldClaims() {
				olds = make([]*redis.StringCmd, len(cs))
			}
			for i, c := range cs {
				sets[i] = p.HSetNX(ctx, c.bucket, c.name, val)
				if olds != nil {
					olds[i] = p.Get(ctx, s.oldKey(c))
				}
			}
			if counter != "" {
				incr = p.Incr(ctx, counter)
			}
			return nil
		})
		return ignoreNil(err)
	})
	if now != nil && now.Err() == nil {
		t := now.Val()
		s.learnClock(sent, t)
		if t.Before(cr.t0) {
			cr.t0 = t
		}
	}
	var contested []claim
	for i, set := range sets {
		ok, serr := set.Result()
		switch {
		case serr != nil:
			err = cmp.Or(err, serr) // the claims taken are still kept in cr.held for abort
		case ok:
			cr.held = append(cr.held, held{claim: cs[i], val: val})
		default:
			contested = append(contested, cs[i])
		}
	}
	if err != nil {
		return 0, err
	}
	if apply != nil {
		apply(ctx)
	}
	for i, c := range cs {
		if olds == nil {
			break
		}
		err := s.bounds.step(ctx, func(ctx context.Context) error {
			return s.oldFree(ctx, c, olds[i], cr.t0, core.Errorf(core.Conflict, cr.op, "%s is taken", c.show))
		})
		if err != nil {
			return 0, err
		}
	}
	for _, c := range contested {
		err := s.bounds.step(ctx, func(ctx context.Context) error {
			h, err := s.take(ctx, cr.op, c, val, cr.t0)
			if err == nil {
				cr.held = append(cr.held, h)
			}
			return err
		})
		if err != nil {
			return 0, err
		}
	}
	if incr == nil {
		return 0, nil
	}
	return incr.Val(), nil
}

// check reports Conflict unless every claim still holds our value and the write
// is within its deadline. Without claims there is nothing to check.
func (cr *creation) check(ctx context.Context) error { return cr.finish(ctx, nil) }

// finish adds a create's index entries and makes its final check (check's),
// in one pipeline: the check follows the entity's write, which is what it
// vouches for.
func (cr *creation) finish(ctx context.Context, entries []entry) error {
	s := cr.s
	if len(entries) == 0 && len(cr.held) == 0 {
		return nil
	}
	var at time.Time // the check's time: read before the claims are
	var now *redis.TimeCmd
	if s.clock != nil && len(cr.held) > 0 {
		at = s.clock.Now()
	}
	gets := make([]*redis.StringCmd, len(cr.held))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entries {
			e.add(ctx, p)
		}
		if len(cr.held) > 0 && s.clock == nil {
			now = p.Time(ctx)
		}
		for i, h := range cr.held {
			gets[i] = p.HGet(ctx, h.bucket, h.name)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if len(cr.held) == 0 {
		return nil
	}
	if now != nil {
		if at, err = now.Result(); err != nil {
			return err
		}
	}
	return cr.judge(at, func(i int) (string, error) {
		v, err := gets[i].Result()
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		return v, err
	})
}

// judge is the final check on what it read: the check's time at, and the
// value of each held claim (get(i), "" when it is gone). Conflict unless
// every claim still holds our value and less than Options.WriteDeadline has
// passed since t0.
func (cr *creation) judge(at time.Time, get func(i int) (string, error)) error {
	if at.Sub(cr.t0) >= cr.s.deadline {
		return core.Errorf(core.Conflict, cr.op, "the write took longer than %v; try again", cr.s.deadline)
	}
	for i, h := range cr.held {
		v, err := get(i)
		if err != nil {
			return err
		}
		if v != h.val {
			return core.Errorf(core.Conflict, cr.op, "%s is taken", h.show)
		}
	}
	return nil
}

// abort releases every claim taken.
func (cr *creation) abort(ctx context.Context) {
	cr.s.release(ctx, cr.held)
	cr.held = nil
}
