package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// readCredScript reads, in the owner's slot, a credential (KEYS[1]), its user
// (KEYS[2]) and, for an app's credential, its app (ARGV[1] .. consumerId): the one
// round trip that /verify needs.
var readCredScript = redis.NewScript(`
local c = redis.call('GET', KEYS[1])
if not c then return false end
local u = redis.call('GET', KEYS[2])
local a = false
local ok, rec = pcall(cjson.decode, c)
if ok and type(rec) == 'table' and rec['consumerKind'] == 'app' and type(rec['consumerId']) == 'string' then
  a = redis.call('GET', ARGV[1] .. rec['consumerId'])
end
return {c, u, a}`)

// credAt names a credential by its owner, type and id.
type credAt struct {
	uid string
	typ core.CredentialType
	id  string
}

// readCredArgs returns the keys and arguments of readCredScript for c.
func (s *Store) readCredArgs(c credAt) ([]string, []any) {
	return []string{s.k.cred(c.uid, c.typ, c.id), s.k.user(c.uid)}, []any{s.k.appPrefix(c.uid)}
}

// credFromScript decodes readCredScript's answer; found is false when the
// credential does not exist.
func (s *Store) credFromScript(op string, at credAt, v any) (core.Credential, bool, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != 3 {
		return core.Credential{}, false, nil
	}
	data, ok := arr[0].(string)
	if !ok {
		return core.Credential{}, false, nil
	}
	key := s.k.cred(at.uid, at.typ, at.id)
	r, err := decode[credRecord](op, key, data)
	if err != nil {
		return core.Credential{}, false, err
	}
	c := r.credential()
	c.OwnerActive = false
	if u, ok := arr[1].(string); ok {
		if ur, err := decode[userRecord](op, s.k.user(at.uid), u); err == nil {
			c.OwnerActive = ur.IsActive
		}
	}
	if c.ConsumerKind == core.ConsumerApp {
		appActive := false
		if a, ok := arr[2].(string); ok {
			if ar, err := decode[appRecord](op, s.k.app(at.uid, c.ConsumerID), a); err == nil {
				appActive = ar.IsActive
			}
		}
		c.OwnerActive = c.OwnerActive && appActive
	}
	return c, true, nil
}

// readCreds reads credentials with their owners' state, one script call each in
// one pipeline; missing ones are left out.
func (s *Store) readCreds(ctx context.Context, op string, ats []credAt) ([]core.Credential, error) {
	if len(ats) == 0 {
		return []core.Credential{}, nil
	}
	cmds := make([]*redis.Cmd, len(ats))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, at := range ats {
			keys, args := s.readCredArgs(at)
			cmds[i] = readCredScript.Eval(ctx, p, keys, args...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]core.Credential, 0, len(ats))
	for i, cmd := range cmds {
		v, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		c, ok, err := s.credFromScript(op, ats[i], v)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// readCred reads one credential with its owners' state.
func (s *Store) readCred(ctx context.Context, op string, at credAt) (core.Credential, bool, error) {
	keys, args := s.readCredArgs(at)
	v, err := readCredScript.Run(ctx, s.rdb, keys, args...).Result()
	if errors.Is(err, redis.Nil) {
		return core.Credential{}, false, nil
	}
	if err != nil {
		return core.Credential{}, false, err
	}
	return s.credFromScript(op, at, v)
}

// CreateCredential stores c, assigning c.Seq (and c.ID, the consumer's id, for
// basic-auth and oauth2 when empty). Invalid if the consumer does not exist;
// Conflict if the keyId is taken, or if the consumer has an active credential of a
// one-per-consumer type (an inactive one is replaced).
func (s *Store) CreateCredential(ctx context.Context, c *core.Credential) (err error) {
	const op = "redisstore.CreateCredential"
	defer s.replicated(ctx, op, &err)
	if c == nil || !c.Type.Valid() {
		return core.Errorf(core.Invalid, op, "unknown credential type")
	}
	nc := *c
	if !nc.Type.Keyed() && nc.ID == "" {
		nc.ID = nc.ConsumerID
	}
	uid := nc.UserID
	defer func() { s.changed(ctx, uid, err) }()
	switch {
	case !validID(uid) || !validID(nc.ConsumerID):
		return core.Errorf(core.Invalid, op, "consumer %q not found", nc.ConsumerID)
	case !validID(nc.ID):
		return core.Errorf(core.Invalid, op, "credential id is not valid")
	case !nc.Type.Keyed() && nc.ID != nc.ConsumerID:
		return core.Errorf(core.Invalid, op, "a %s credential's id is its consumer's id", nc.Type)
	case nc.ConsumerKind == core.ConsumerUser && nc.ConsumerID != uid:
		return core.Errorf(core.Invalid, op, "consumer %q is not user %q", nc.ConsumerID, uid)
	case nc.ConsumerKind != core.ConsumerUser && nc.ConsumerKind != core.ConsumerApp:
		return core.Errorf(core.Invalid, op, "unknown consumer kind %q", nc.ConsumerKind)
	}
	var claims []claim
	if nc.Type.Keyed() {
		claims = append(claims, s.keyIDClaim(nc.Type, nc.ID))
	}
	key := s.k.cred(uid, nc.Type, nc.ID)
	member := credMember(nc.Type, nc.ID)
	cc := s.k.consumerCreds(uid, nc.ConsumerID)
	consumerKey := s.k.user(uid)
	if nc.ConsumerKind == core.ConsumerApp {
		consumerKey = s.k.app(uid, nc.ConsumerID)
	}
	var data string // the record written, for undo
	seq, err := s.create(ctx, create{
		op: op, owner: uid, claims: claims, seq: listCreds, number: nc.Seq,
		write: func(ctx context.Context, seq int64) error {
			nc := nc
			nc.Seq = seq
			var err error
			if data, err = encode(op, toCredRecord(nc)); err != nil {
				return err
			}
			return s.watch(ctx, op, "credential", func(ctx context.Context, tx *redis.Tx) error {
				var consumer *redis.IntCmd
				var existing *redis.StringCmd
				if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
					consumer = p.Exists(ctx, consumerKey)
					existing = p.Get(ctx, key)
					return nil
				}); err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				if consumer.Val() == 0 {
					return core.Errorf(core.Invalid, op, "consumer %q not found", nc.ConsumerID)
				}
				if old, err := existing.Result(); err == nil {
					if nc.Type.Keyed() {
						return core.Errorf(core.Conflict, op, "%s keyId %q is taken", nc.Type, nc.ID)
					}
					r, err := decode[credRecord](op, key, old)
					if err != nil {
						return err
					}
					if r.IsActive {
						return core.Errorf(core.Conflict, op, "consumer %q already has an active %s credential", nc.ConsumerID, nc.Type)
					}
				}
				_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, key, data, 0)
					p.ZAdd(ctx, s.k.creds(uid), redis.Z{Score: float64(seq), Member: member})
					if nc.ConsumerKind == core.ConsumerApp { // a user's own are creds less its apps' (ownCredsScript)
						p.ZAdd(ctx, cc, redis.Z{Score: float64(seq), Member: member})
					}
					return nil
				})
				return err
			}, key, consumerKey, s.k.user(uid))
		},
		index: func(seq int64) []entry {
			return []entry{s.listEntry(listCreds, credRef(uid, nc.Type, nc.ID), seq)}
		},
		// Only while the record is ours: a one-per-consumer credential may
		// have been replaced meanwhile, and its zset members and index entry
		// are then the replacement's.
		undo: func(ctx context.Context) bool {
			if n, err := cadScript.Run(ctx, s.rdb, []string{key}, data).Int(); err != nil || n != 1 {
				return false
			}
			_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.ZRem(ctx, s.k.creds(uid), member)
				p.ZRem(ctx, cc, member)
				return nil
			})
			return err == nil
		},
	})
	if err != nil {
		return err
	}
	c.ID, c.Seq = nc.ID, seq
	return nil
}

// credNotFound is the NotFound of a credential. It never names the id, which
// comes from a request path or an Authorization header, where a mistyped one
// may carry a secret ("KEYID:SECRET").
func credNotFound(op string, typ core.CredentialType) error {
	return core.Errorf(core.NotFound, op, "%s credential not found", typ)
}

// locateCred finds the user whose slot holds a credential: through the keyId claim
// for keyed types; for the others id is the consumer's, a user id or an app id.
// uid is "" when there is no such credential.
func (s *Store) locateCred(ctx context.Context, typ core.CredentialType, id string) (string, error) {
	if !validID(id) {
		return "", nil
	}
	if typ.Keyed() {
		v, ok, err := s.claimValue(ctx, s.keyIDClaim(typ, id))
		if err != nil || !ok {
			return "", err
		}
		return claimOwner(v), nil
	}
	var user *redis.IntCmd
	var loc claimRead
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		user = p.Exists(ctx, s.k.user(id))
		loc = s.readClaim(ctx, p, s.appClaim(id))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", err
	}
	if user.Val() == 1 {
		return id, nil
	}
	if v, ok, err := loc.value(); err == nil && ok {
		return claimOwner(v), nil
	}
	return "", nil
}

// GetCredential returns the credential with OwnerActive filled, or NotFound. For
// basic-auth and oauth2, id is the consumer's id (a user id or an app id).
func (s *Store) GetCredential(ctx context.Context, typ core.CredentialType, id string) (core.Credential, error) {
	const op = "redisstore.GetCredential"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	notFound := credNotFound(op, typ)
	if !typ.Valid() || !validID(id) {
		return core.Credential{}, notFound
	}
	if typ.Keyed() {
		uid, err := s.locateCred(ctx, typ, id)
		if err != nil {
			return core.Credential{}, fail(ctx, op, err)
		}
		if !validID(uid) {
			return core.Credential{}, notFound
		}
		c, ok, err := s.readCred(ctx, op, credAt{uid, typ, id})
		if err != nil {
			return core.Credential{}, fail(ctx, op, err)
		}
		if !ok {
			return core.Credential{}, notFound
		}
		return c, nil
	}
	// A user's credential lives in its own slot: try that and the app locator at once.
	at := credAt{id, typ, id}
	var script *redis.Cmd
	var loc claimRead
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		keys, args := s.readCredArgs(at)
		script = readCredScript.Eval(ctx, p, keys, args...)
		loc = s.readClaim(ctx, p, s.appClaim(id))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return core.Credential{}, fail(ctx, op, err)
	}
	if v, err := script.Result(); err == nil {
		c, ok, err := s.credFromScript(op, at, v)
		if err != nil {
			return core.Credential{}, fail(ctx, op, err)
		}
		if ok {
			return c, nil
		}
	}
	v, ok, err := loc.value()
	if err != nil || !ok {
		return core.Credential{}, notFound
	}
	uid := claimOwner(v)
	if !validID(uid) {
		return core.Credential{}, notFound
	}
	c, ok, err := s.readCred(ctx, op, credAt{uid, typ, id})
	if err != nil {
		return core.Credential{}, fail(ctx, op, err)
	}
	if !ok {
		return core.Credential{}, notFound
	}
	return c, nil
}

// UpdateCredential applies fn atomically; changes to Type, ID, Seq, the consumer,
// UserID and CreatedAt are undone. Returns the stored credential, OwnerActive filled.
func (s *Store) UpdateCredential(ctx context.Context, typ core.CredentialType, id string, fn func(*core.Credential) error) (_ core.Credential, err error) {
	const op = "redisstore.UpdateCredential"
	defer s.replicated(ctx, op, &err)
	notFound := credNotFound(op, typ)
	if !typ.Valid() {
		return core.Credential{}, notFound
	}
	uid, err := stepValue(ctx, s.bounds, func(ctx context.Context) (string, error) { return s.locateCred(ctx, typ, id) })
	if err != nil {
		return core.Credential{}, fail(ctx, op, err)
	}
	if !validID(uid) {
		return core.Credential{}, notFound
	}
	defer func() { s.changed(ctx, uid, err) }()
	key := s.k.cred(uid, typ, id)
	var next core.Credential
	err = s.watch(ctx, op, string(typ)+" credential", func(ctx context.Context, tx *redis.Tx) error {
		data, err := tx.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return notFound
		}
		if err != nil {
			return err
		}
		r, err := decode[credRecord](op, key, data)
		if err != nil {
			return err
		}
		old := r.credential()
		r2, _ := decode[credRecord](op, key, data)
		next = r2.credential()
		if err := fn(&next); err != nil {
			return &fnError{err}
		}
		next.Type, next.ID, next.Seq, next.ConsumerID = old.Type, old.ID, old.Seq, old.ConsumerID
		next.ConsumerKind, next.UserID, next.CreatedAt = old.ConsumerKind, old.UserID, old.CreatedAt
		out, err := encode(op, toCredRecord(next))
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, out, 0)
			return nil
		})
		return err
	}, key)
	if err != nil {
		return core.Credential{}, fail(ctx, op, err)
	}
	// OwnerActive as of now, read in the owner's slot (best effort: the write
	// is done).
	_ = s.bounds.step(ctx, func(ctx context.Context) error {
		if c, ok, err := s.readCred(ctx, op, credAt{uid, typ, id}); err == nil && ok {
			next.OwnerActive = c.OwnerActive
		}
		return nil
	})
	return next, nil
}

// DeleteCredential deletes the credential and frees its keyId. NotFound if none.
func (s *Store) DeleteCredential(ctx context.Context, typ core.CredentialType, id string, check ...func(core.Credential) error) (err error) {
	const op = "redisstore.DeleteCredential"
	defer s.replicated(ctx, op, &err)
	notFound := credNotFound(op, typ)
	if !typ.Valid() {
		return notFound
	}
	uid, err := stepValue(ctx, s.bounds, func(ctx context.Context) (string, error) { return s.locateCred(ctx, typ, id) })
	if err != nil {
		return fail(ctx, op, err)
	}
	if !validID(uid) {
		return notFound
	}
	if err := s.writeReady(ctx); err != nil {
		return fail(ctx, op, err)
	}
	defer func() { s.changed(ctx, uid, err) }()
	key := s.k.cred(uid, typ, id)
	var after cleanup
	err = s.watch(ctx, op, string(typ)+" credential", func(ctx context.Context, tx *redis.Tx) error {
		after = cleanup{}
		data, err := tx.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return notFound
		}
		if err != nil {
			return err
		}
		r, err := decode[credRecord](op, key, data)
		if err != nil {
			return err
		}
		if err := runChecks(r.credential(), check); err != nil {
			return err
		}
		after.entries = append(after.entries, s.listEntry(listCreds, credRef(uid, typ, id), r.Seq))
		if typ.Keyed() {
			after.claims = append(after.claims, s.keyIDClaim(typ, id))
			if err := after.readClaims(ctx, s, uid); err != nil {
				return err
			}
		}
		member := credMember(typ, id)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, key)
			p.ZRem(ctx, s.k.creds(uid), member)
			p.ZRem(ctx, s.k.consumerCreds(uid, r.ConsumerID), member)
			return nil
		})
		return err
	}, key)
	if err != nil {
		return fail(ctx, op, err)
	}
	if s.interrupted() {
		return errInterrupted
	}
	return fail(ctx, op, after.run(ctx, s))
}

// ownCredsScript lists a user's own credentials, in seq order: the members of
// its slot's P u:{uid}:creds (KEYS[1]) that are in no consumer list of its
// apps (KEYS[2], P u:{uid}:apps; ARGV[1] .. appid, P u:{uid}:cc:<appid>). A
// user has no consumer list of its own: it would repeat creds for nearly every
// user (one key, about 184 bytes, each). A list of the layout before December
// 2026, P u:{uid}:cc:<uid>, is not read (it holds the same members) and
// Doctor removes it.
var ownCredsScript = redis.NewScript(`
local all = redis.call('ZRANGE', KEYS[1], 0, -1)
local apps = redis.call('ZRANGE', KEYS[2], 0, -1)
if #apps == 0 then return all end
local theirs = {}
for _, a in ipairs(apps) do
  for _, m in ipairs(redis.call('ZRANGE', ARGV[1] .. a, 0, -1)) do theirs[m] = true end
end
local out = {}
for _, m in ipairs(all) do
  if not theirs[m] then out[#out + 1] = m end
end
return out`)

// ConsumerCredentials returns one consumer's own credentials (a user's, not its
// apps'), in Seq order. An unknown consumer has none.
func (s *Store) ConsumerCredentials(ctx context.Context, consumerID string) ([]core.Credential, error) {
	const op = "redisstore.ConsumerCredentials"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	uid, err := s.locateCred(ctx, core.BasicAuth, consumerID) // a consumer's slot, as for basic-auth
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	if !validID(uid) {
		return []core.Credential{}, nil
	}
	var members []string
	if uid == consumerID { // a user
		members, err = ownCredsScript.Run(ctx, s.rdb, []string{s.k.creds(uid), s.k.apps(uid)}, s.k.consumerCreds(uid, "")).StringSlice()
	} else {
		members, err = s.rdb.ZRange(ctx, s.k.consumerCreds(uid, consumerID), 0, -1).Result()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail(ctx, op, err)
	}
	ats := make([]credAt, 0, len(members))
	for _, m := range members {
		if typ, id, ok := parseCredMember(m); ok {
			ats = append(ats, credAt{uid, typ, id})
		}
	}
	cs, err := s.readCreds(ctx, op, ats)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	out := cs[:0]
	for _, c := range cs {
		if c.ConsumerID == consumerID {
			out = append(out, c)
		}
	}
	return out, nil
}

// ListCredentials returns one page of credentials in Seq order: all of them, or one
// user's and its apps' when opt.UserID is set.
func (s *Store) ListCredentials(ctx context.Context, opt core.ListOptions) (core.Page[core.Credential], error) {
	const op = "redisstore.ListCredentials"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	var entries []pageEntry
	var next, total int64
	var err error
	if opt.UserID != "" {
		if !validID(opt.UserID) {
			return core.Page[core.Credential]{Items: []core.Credential{}}, nil
		}
		entries, next, total, err = s.page(ctx, s.k.creds(opt.UserID), opt)
	} else {
		entries, next, total, err = s.pageList(ctx, listCreds, opt)
	}
	if err != nil {
		return core.Page[core.Credential]{}, fail(ctx, op, err)
	}
	ats := make([]credAt, 0, len(entries))
	for _, e := range entries {
		if opt.UserID != "" {
			if typ, id, ok := parseCredMember(e.member); ok {
				ats = append(ats, credAt{opt.UserID, typ, id})
			}
		} else if at, ok := parseCredRef(e.member); ok {
			ats = append(ats, at)
		}
	}
	cs, err := s.readCreds(ctx, op, ats)
	if err != nil {
		return core.Page[core.Credential]{}, fail(ctx, op, err)
	}
	return core.Page[core.Credential]{Items: cs, NextKey: next, Total: total}, nil
}
