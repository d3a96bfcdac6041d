package redisstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// hcadScript deletes field ARGV[1] of hash KEYS[1] only if it still holds ARGV[2].
var hcadScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0`)

// clientNameKey is the claim name of a client name: names are plain text, so
// lower-casing is all their case-insensitive uniqueness needs.
func clientNameKey(name string) string { return strings.ToLower(name) }

// clientNotFound names the client id, which is never a secret.
func clientNotFound(op, id string) error {
	return core.Errorf(core.NotFound, op, "client %q not found", id)
}

// CreateClient stores c, assigning c.Seq, with the create protocol: the name
// claimed (case-insensitively), P seq:clients, the record written with SET
// NX, then its P idx:clients entry. Invalid for an id no key can hold or an
// empty name; Conflict if the name (or the id) is taken.
func (s *Store) CreateClient(ctx context.Context, c *core.Client) (err error) {
	const op = "redisstore.CreateClient"
	defer s.replicated(ctx, op, &err)
	switch {
	case c == nil || !validID(c.ID):
		return core.Errorf(core.Invalid, op, "client id is not valid")
	case c.Name == "":
		return core.Errorf(core.Invalid, op, "client name is empty")
	}
	key := s.k.client(c.ID)
	var data string // the record written, for undo
	n, err := s.create(ctx, create{
		op: op, owner: c.ID, claims: []claim{s.clientNameClaim(c.Name)}, seq: listClients, number: c.Seq,
		write: func(ctx context.Context, n int64) error {
			nc := *c
			nc.Seq = n
			var err error
			if data, err = encode(op, toClientRecord(nc)); err != nil {
				return err
			}
			ok, err := s.rdb.SetNX(ctx, key, data, 0).Result()
			if err == nil && !ok {
				err = core.Errorf(core.Conflict, op, "client id %q is taken", c.ID)
			}
			return err
		},
		index: func(n int64) []entry {
			return []entry{{key: s.k.idx(listClients), member: c.ID, score: float64(n)}}
		},
		undo: func(ctx context.Context) bool {
			n, err := cadScript.Run(ctx, s.rdb, []string{key}, data).Int()
			return err == nil && n == 1
		},
	})
	if err != nil {
		return err
	}
	c.Seq = n
	return nil
}

// getClient reads one client record; found is false when there is none.
func (s *Store) getClient(ctx context.Context, op, id string) (clientRecord, bool, error) {
	if !validID(id) {
		return clientRecord{}, false, nil
	}
	data, err := s.rdb.Get(ctx, s.k.client(id)).Result()
	if errors.Is(err, redis.Nil) {
		return clientRecord{}, false, nil
	}
	if err != nil {
		return clientRecord{}, false, err
	}
	r, err := decode[clientRecord](op, s.k.client(id), data)
	return r, err == nil, err
}

// GetClient returns the client with that id, or NotFound.
func (s *Store) GetClient(ctx context.Context, id string) (core.Client, error) {
	const op = "redisstore.GetClient"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	r, ok, err := s.getClient(ctx, op, id)
	if err != nil {
		return core.Client{}, fail(ctx, op, err)
	}
	if !ok {
		return core.Client{}, clientNotFound(op, id)
	}
	return r.client(), nil
}

// ListClients returns one page of clients in Seq order, from P idx:clients;
// an entry whose client is gone is skipped (Doctor removes it).
func (s *Store) ListClients(ctx context.Context, opt core.ListOptions) (core.Page[core.Client], error) {
	const op = "redisstore.ListClients"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	entries, next, total, err := s.page(ctx, s.k.idx(listClients), opt)
	if err != nil {
		return core.Page[core.Client]{}, fail(ctx, op, err)
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		if validID(e.member) {
			keys = append(keys, s.k.client(e.member))
		}
	}
	vals, oks, err := s.getMany(ctx, keys)
	if err != nil {
		return core.Page[core.Client]{}, fail(ctx, op, err)
	}
	out := core.Page[core.Client]{Items: []core.Client{}, NextKey: next, Total: total}
	for i := range keys {
		if !oks[i] {
			continue
		}
		r, err := decode[clientRecord](op, keys[i], vals[i])
		if err != nil {
			return core.Page[core.Client]{}, err
		}
		out.Items = append(out.Items, r.client())
	}
	return out, nil
}

// DeleteClient deletes the client record and its keys in one MULTI in its
// slot, then its P idx:clients entry, its name claim and its keys' hash
// lookups. Its keys stop resolving with the MULTI: ClientByKeyHash reads the
// records, so lookups a failed clean-up leaves behind resolve to nothing.
// The client's users are not touched. The checks run on the client and its
// keys as read under WATCH.
func (s *Store) DeleteClient(ctx context.Context, id string, check ...func(core.ClientWithKeys) error) (err error) {
	const op = "redisstore.DeleteClient"
	defer s.replicated(ctx, op, &err)
	if !validID(id) {
		return clientNotFound(op, id)
	}
	key, kkey := s.k.client(id), s.k.clientKeys(id)
	var after cleanup
	err = s.watch(ctx, op, "client "+id, func(ctx context.Context, tx *redis.Tx) error {
		after = cleanup{}
		r, fields, err := s.readClient(ctx, op, tx, id)
		if err != nil {
			return err
		}
		if len(check) > 0 {
			if err := clientChecks(op, kkey, r, fields, check); err != nil {
				return err
			}
		}
		after.zrem(s.k.idx(listClients), id)
		after.claims = append(after.claims, s.clientNameClaim(r.Name))
		if err := after.readClaims(ctx, s, id); err != nil {
			return err
		}
		lookups, err := s.keyLookups(ctx, op, id, fields)
		if err != nil {
			return err
		}
		after.held = append(after.held, lookups...)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, key, kkey)
			return nil
		})
		return err
	}, key, kkey)
	if err != nil {
		return fail(ctx, op, err)
	}
	if s.interrupted() {
		return errInterrupted
	}
	return fail(ctx, op, after.run(ctx, s))
}

// keyLookups reads the hash lookups of a client's keys (fields of P
// c:{cid}:keys) and returns those that still name their key, with the values
// read, for a compare-and-delete.
func (s *Store) keyLookups(ctx context.Context, op, cid string, fields map[string]string) ([]held, error) {
	var cs []claim
	var owners []string
	for keyID, data := range fields {
		r, err := decode[clientKeyRecord](op, s.k.clientKeys(cid), data)
		if err != nil {
			continue // a corrupt key has no lookup to find
		}
		if _, ok := hashHex(r.Hash); !ok {
			continue
		}
		cs = append(cs, s.clientKeyClaim(r.Hash))
		owners = append(owners, clientKeyRef(cid, keyID))
	}
	return s.heldBy(ctx, cs, owners)
}

// CreateClientKey stores a key of a client with the create protocol: its hash
// lookup (claim kind clientKey) is claimed first (owner "<cid>/<keyID>"), then the
// key is written into P c:{cid}:keys under WATCH of the client record. Invalid
// for a malformed id or hash; NotFound without the client; Conflict on a
// taken hash or id.
func (s *Store) CreateClientKey(ctx context.Context, k core.ClientKey) (err error) {
	const op = "redisstore.CreateClientKey"
	defer s.replicated(ctx, op, &err)
	switch {
	case !validID(k.ID):
		return core.Errorf(core.Invalid, op, "client key id is not valid")
	case !validHash(k.Hash):
		return core.Errorf(core.Invalid, op, `client key hash is not "sha256:" and 64 lower-case hex digits`)
	case !validID(k.ClientID):
		return clientNotFound(op, k.ClientID)
	}
	cid := k.ClientID
	ckey, kkey := s.k.client(cid), s.k.clientKeys(cid)
	data, err := encode(op, toClientKeyRecord(k))
	if err != nil {
		return err
	}
	_, err = s.create(ctx, create{
		op: op, owner: clientKeyRef(cid, k.ID), claims: []claim{s.clientKeyClaim(k.Hash)},
		write: func(ctx context.Context, _ int64) error {
			return s.watch(ctx, op, "client "+cid, func(ctx context.Context, tx *redis.Tx) error {
				var client *redis.IntCmd
				var taken *redis.BoolCmd
				if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
					client = p.Exists(ctx, ckey)
					taken = p.HExists(ctx, kkey, k.ID)
					return nil
				}); err != nil {
					return err
				}
				switch {
				case client.Val() == 0:
					return clientNotFound(op, cid)
				case taken.Val():
					return core.Errorf(core.Conflict, op, "client key id %q is taken", k.ID)
				}
				_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.HSet(ctx, kkey, k.ID, data)
					return nil
				})
				return err
			}, ckey, kkey)
		},
		undo: func(ctx context.Context) bool {
			n, err := hcadScript.Run(ctx, s.rdb, []string{kkey}, k.ID, data).Int()
			return err == nil && n == 1
		},
	})
	return err
}

// validHash reports whether h is "sha256:" and 64 lower-case hex digits.
func validHash(h string) bool {
	_, ok := hashHex(h)
	return ok
}

// decodeClientKeys decodes the fields of P c:{cid}:keys (key kkey), oldest
// first (by CreatedAt, then id).
func decodeClientKeys(op, kkey string, fields map[string]string) ([]core.ClientKey, error) {
	out := []core.ClientKey{}
	for _, data := range fields {
		r, err := decode[clientKeyRecord](op, kkey, data)
		if err != nil {
			return nil, err
		}
		out = append(out, r.clientKey())
	}
	slices.SortFunc(out, func(a, b core.ClientKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// ClientKeys lists a client's keys, oldest first (by CreatedAt, then id); an
// unknown client has none.
func (s *Store) ClientKeys(ctx context.Context, clientID string) ([]core.ClientKey, error) {
	const op = "redisstore.ClientKeys"
	out := []core.ClientKey{}
	if !validID(clientID) {
		return out, nil
	}
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	kkey := s.k.clientKeys(clientID)
	all, err := s.rdb.HGetAll(ctx, kkey).Result()
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return decodeClientKeys(op, kkey, all)
}

// ClientByKeyHash returns the client holding the key of that hash, and the
// key: one GET of the lookup, then the client record and the key in one
// pipeline on the client's slot. The records decide: a lookup whose key or
// client is gone (a clean-up cut short) is NotFound.
func (s *Store) ClientByKeyHash(ctx context.Context, hash string) (core.Client, core.ClientKey, error) {
	const op = "redisstore.ClientByKeyHash"
	// Never names the hash: it stands for the key, a secret.
	notFound := core.Errorf(core.NotFound, op, "client key not found")
	if !validHash(hash) {
		return core.Client{}, core.ClientKey{}, notFound
	}
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	v, found, err := s.claimValue(ctx, s.clientKeyClaim(hash))
	if err != nil {
		return core.Client{}, core.ClientKey{}, fail(ctx, op, err)
	}
	if !found {
		return core.Client{}, core.ClientKey{}, notFound
	}
	cid, keyID, ok := parseClientKeyRef(claimOwner(v))
	if !ok {
		return core.Client{}, core.ClientKey{}, notFound
	}
	var rec, key *redis.StringCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.Get(ctx, s.k.client(cid))
		key = p.HGet(ctx, s.k.clientKeys(cid), keyID)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return core.Client{}, core.ClientKey{}, fail(ctx, op, err)
	}
	cdata, cok, err := optional(rec)
	if err != nil {
		return core.Client{}, core.ClientKey{}, fail(ctx, op, err)
	}
	kdata, kok, err := optional(key)
	if err != nil {
		return core.Client{}, core.ClientKey{}, fail(ctx, op, err)
	}
	if !cok || !kok {
		return core.Client{}, core.ClientKey{}, notFound
	}
	cr, err := decode[clientRecord](op, s.k.client(cid), cdata)
	if err != nil {
		return core.Client{}, core.ClientKey{}, err
	}
	kr, err := decode[clientKeyRecord](op, s.k.clientKeys(cid), kdata)
	if err != nil {
		return core.Client{}, core.ClientKey{}, err
	}
	if kr.Hash != hash || kr.ClientID != cid {
		return core.Client{}, core.ClientKey{}, notFound
	}
	return cr.client(), kr.clientKey(), nil
}

// DeleteClientKey revokes one key of a client: one HDEL under WATCH in the
// client's slot, then the compare-and-delete of its hash lookup (which, if a
// failure leaves it, resolves to nothing: the key record is gone). NotFound
// if there is no such key. The checks run on the client and its keys as read
// under WATCH.
func (s *Store) DeleteClientKey(ctx context.Context, clientID, keyID string, check ...func(core.ClientWithKeys) error) (err error) {
	const op = "redisstore.DeleteClientKey"
	defer s.replicated(ctx, op, &err)
	// The key id comes from a request path: named, as it is no secret.
	notFound := core.Errorf(core.NotFound, op, "client %q has no key %q", clientID, keyID)
	if !validID(clientID) || !validID(keyID) {
		return notFound
	}
	ckey, kkey := s.k.client(clientID), s.k.clientKeys(clientID)
	var lookups []held
	err = s.watch(ctx, op, "client "+clientID, func(ctx context.Context, tx *redis.Tx) error {
		data, err := tx.HGet(ctx, kkey, keyID).Result()
		if errors.Is(err, redis.Nil) {
			return notFound
		}
		if err != nil {
			return err
		}
		if len(check) > 0 {
			if err := s.checkClient(ctx, op, tx, clientID, check); err != nil {
				return err
			}
		}
		if lookups, err = s.keyLookups(ctx, op, clientID, map[string]string{keyID: data}); err != nil {
			return err
		}
		var del *redis.IntCmd
		if _, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			del = p.HDel(ctx, kkey, keyID)
			return nil
		}); err != nil {
			return err
		}
		if del.Val() == 0 { // another revocation won (WATCH alone is not trusted here: miniredis's HDEL does not trip it)
			return notFound
		}
		return nil
	}, ckey, kkey)
	if err != nil {
		return fail(ctx, op, err)
	}
	c := cleanup{held: lookups}
	return fail(ctx, op, c.run(ctx, s))
}

// readClient reads client cid's record and its keys' fields (P c:{cid}:keys)
// in one pipeline under tx's WATCH. NotFound without the client.
func (s *Store) readClient(ctx context.Context, op string, tx *redis.Tx, cid string) (clientRecord, map[string]string, error) {
	key, kkey := s.k.client(cid), s.k.clientKeys(cid)
	var rec *redis.StringCmd
	var all *redis.MapStringStringCmd
	if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.Get(ctx, key)
		all = p.HGetAll(ctx, kkey)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return clientRecord{}, nil, err
	}
	data, ok, err := optional(rec)
	if err != nil {
		return clientRecord{}, nil, err
	}
	if !ok {
		return clientRecord{}, nil, clientNotFound(op, cid)
	}
	r, err := decode[clientRecord](op, key, data)
	if err != nil {
		return clientRecord{}, nil, err
	}
	return r, all.Val(), nil
}

// checkClient runs checks on client cid with its keys, read under tx's WATCH.
// NotFound without the client.
func (s *Store) checkClient(ctx context.Context, op string, tx *redis.Tx, cid string, checks []func(core.ClientWithKeys) error) error {
	r, fields, err := s.readClient(ctx, op, tx, cid)
	if err != nil {
		return err
	}
	return clientChecks(op, s.k.clientKeys(cid), r, fields, checks)
}

// clientChecks runs checks on a client record and its keys' fields as read.
func clientChecks(op, kkey string, r clientRecord, fields map[string]string, checks []func(core.ClientWithKeys) error) error {
	keys, err := decodeClientKeys(op, kkey, fields)
	if err != nil {
		return err
	}
	return runChecks(core.ClientWithKeys{Client: r.client(), Keys: keys}, checks)
}
