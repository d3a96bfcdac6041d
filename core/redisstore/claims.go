package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// Claim kinds: the unique user names (a client's identifier for its user
// named "<clientID>/<identifier>"), the identities at providers (name
// "<provider>:<subject>"), the keyed credential types, kindClientName for
// client names (lower-cased, owner the client), kindApp for the app locators
// P app:<appid> and kindClientKey for the client key lookups P
// clientkey:<hex> (owner "<clientID>/<keyID>").
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

// casScript sets KEYS[1] to ARGV[2] only if it still holds ARGV[1].
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0`)

// cadScript deletes KEYS[1] only if it still holds ARGV[1].
var cadScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// claim is one unique name to hold while an entity is written.
type claim struct {
	key  string // full key
	kind string // kindUsername, ..., a keyed credential type, or kindApp
	name string // the normalised name, as in the key
	show string // how a Conflict names it: `username "Bob"`
}

// held is a claim taken, with the value written.
type held struct {
	claim
	val string
}

func (s *Store) usernameClaim(key, raw string) claim {
	return claim{key: s.k.claim(kindUsername, key), kind: kindUsername, name: key, show: fmt.Sprintf("username %q", raw)}
}

func (s *Store) emailClaim(key, raw string) claim {
	return claim{key: s.k.claim(kindEmail, key), kind: kindEmail, name: key, show: fmt.Sprintf("email %q", raw)}
}

func (s *Store) externalIDClaim(v string) claim {
	return claim{key: s.k.claim(kindExternalID, v), kind: kindExternalID, name: v, show: fmt.Sprintf("externalId %q", v)}
}

// identityClaim is the claim of an identity at a provider other than "email";
// the provider never contains ':', so the name splits back unambiguously.
func (s *Store) identityClaim(provider, subject string) claim {
	name := identityName(provider, subject)
	return claim{key: s.k.claim(kindIdentity, name), kind: kindIdentity, name: name, show: fmt.Sprintf("%s identity %q", provider, subject)}
}

func (s *Store) keyIDClaim(typ core.CredentialType, keyID string) claim {
	return claim{key: s.k.claim(string(typ), keyID), kind: string(typ), name: keyID, show: fmt.Sprintf("%s keyId %q", typ, keyID)}
}

func (s *Store) appClaim(appID string) claim {
	return claim{key: s.k.appLocator(appID), kind: kindApp, name: appID, show: fmt.Sprintf("app id %q", appID)}
}

// clientIdentifierClaim is the claim of a client's identifier for its user,
// case-sensitive, as given.
func (s *Store) clientIdentifierClaim(clientID, identifier string) claim {
	name := core.ClientIdentifierName(clientID, identifier)
	return claim{key: s.k.claim(kindClientIdentifier, name), kind: kindClientIdentifier, name: name, show: fmt.Sprintf("client identifier %q", identifier)}
}

// clientNameClaim is the claim of a client's name, unique case-insensitively.
func (s *Store) clientNameClaim(name string) claim {
	key := clientNameKey(name)
	return claim{key: s.k.claim(kindClientName, key), kind: kindClientName, name: key, show: fmt.Sprintf("client name %q", name)}
}

// groupNameClaim is the claim of a group's name, unique case-insensitively.
func (s *Store) groupNameClaim(name string) claim {
	key := core.GroupNameKey(name)
	return claim{key: s.k.claim(kindGroupName, key), kind: kindGroupName, name: key, show: fmt.Sprintf("group name %q", name)}
}

// clientKeyClaim is the lookup of a client key by its hash ("sha256:<hex>",
// checked by the caller). Its show never carries the hash.
func (s *Store) clientKeyClaim(hash string) claim {
	h, _ := hashHex(hash)
	return claim{key: s.k.clientKey(h), kind: kindClientKey, name: h, show: "a client key with that hash"}
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

// take claims c with the value val at t0: SET NX, or a compare-and-set over
// a free claim. cur is the value the claim was last seen holding ("" when
// unknown, or none). Conflict names the claim when it is taken.
func (s *Store) take(ctx context.Context, op string, c claim, val, cur string, t0 time.Time) (held, error) {
	for range 5 {
		if cur == "" {
			ok, err := s.rdb.SetNX(ctx, c.key, val, 0).Result()
			if err != nil {
				return held{}, err
			}
			if ok {
				return held{c, val}, nil
			}
			cur, err = s.rdb.Get(ctx, c.key).Result()
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
		n, err := casScript.Run(ctx, s.rdb, []string{c.key}, cur, val).Int()
		if err != nil {
			return held{}, err
		}
		if n == 1 {
			return held{c, val}, nil
		}
		cur = ""
	}
	return held{}, core.Errorf(core.Conflict, op, "%s is taken", c.show)
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

// releaseAll queues the compare-and-delete of each claim on p.
func releaseAll(ctx context.Context, p redis.Pipeliner, hs []held) {
	for _, h := range hs {
		cadScript.Eval(ctx, p, []string{h.key}, h.val)
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
	return &creation{s: s, op: op, owner: owner, t0: time.UnixMicro(t0.UnixMicro())}, nil // as a claim keeps it
}

// claim takes c, remembering it for check and abort.
func (cr *creation) claim(ctx context.Context, c claim) error {
	h, err := cr.s.take(ctx, cr.op, c, claimValue(cr.owner, cr.t0), "", cr.t0)
	if err != nil {
		return err
	}
	cr.held = append(cr.held, h)
	return nil
}

// claimAll takes every claim of a create and INCRs the counter (a full key,
// "" for none), in one pipeline (one write step) on via, with what also
// queues first, and returns the counter's value. Each claim is a plain SET
// NX of the owner and the claim time (claimTime: the store's estimate of
// Redis' clock, or Options.Clock); t0 is the earlier of that time and Redis
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
		_, cr.t0, _ = parseClaim(val) // at, to the microsecond the claim keeps
	}
	sets := make([]*redis.BoolCmd, len(cs))
	var now *redis.TimeCmd
	var incr *redis.IntCmd
	sent := time.Now()
	err := s.bounds.step(ctx, func(ctx context.Context) error {
		_, err := via.Pipelined(ctx, func(p redis.Pipeliner) error {
			if also != nil {
				also(p)
			}
			if s.clock == nil && len(cs) > 0 {
				now = p.Time(ctx)
			}
			for i, c := range cs {
				sets[i] = p.SetNX(ctx, c.key, val, 0)
			}
			if counter != "" {
				incr = p.Incr(ctx, counter)
			}
			return nil
		})
		return err
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
			cr.held = append(cr.held, held{cs[i], val})
		default:
			contested = append(contested, cs[i])
		}
	}
	if err != nil {
		return 0, err
	}
	for _, c := range contested {
		err := s.bounds.step(ctx, func(ctx context.Context) error {
			h, err := s.take(ctx, cr.op, c, val, "", cr.t0)
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
			gets[i] = p.Get(ctx, h.key)
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
