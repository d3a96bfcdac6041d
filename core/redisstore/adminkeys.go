package redisstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// The admin key hashes, all in the {adminkeys} slot: KEYS[1] byid, KEYS[2] byhash,
// KEYS[3] names, KEYS[4] used.

// createAdminKeyScript stores ARGV (id, hash, name, record) unless the name, id or
// hash is taken, answering which one; ARGV[5] = "1" stores only into an empty store.
var createAdminKeyScript = redis.NewScript(`
if ARGV[5] == '1' and redis.call('HLEN', KEYS[1]) > 0 then return 'notfirst' end
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return 'name' end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'id' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'hash' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
return 'ok'`)

// adminKeyByHashScript answers the record of the key with hash ARGV[1] and its last use.
var adminKeyByHashScript = redis.NewScript(`
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
local rec = redis.call('HGET', KEYS[1], id)
if not rec then return false end
return {rec, redis.call('HGET', KEYS[4], id)}`)

// deleteAdminKeyScript deletes the key with id ARGV[1], its hash ARGV[2] and name
// ARGV[3] entries and its last use, if the record is still ARGV[4].
var deleteAdminKeyScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[4] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
if redis.call('HGET', KEYS[3], ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[3], ARGV[3]) end
redis.call('HDEL', KEYS[4], ARGV[1])
return 1`)

// touchAdminKeyScript records a use ARGV[2] of key ARGV[1] if it exists and the use
// is later than the one recorded.
var touchAdminKeyScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[4], ARGV[1], ARGV[2]) end
return 1`)

func (s *Store) adminKeys() []string {
	return []string{s.k.admin(adminByID), s.k.admin(adminByHash), s.k.admin(adminNames), s.k.admin(adminUsed)}
}

// createAdminKey runs createAdminKeyScript; first restricts it to an empty store.
func (s *Store) createAdminKey(ctx context.Context, op string, k core.AdminKey, first bool) (string, error) {
	if k.ID == "" || k.Name == "" || k.Hash == "" {
		return "", core.Errorf(core.Invalid, op, "an admin key needs an id, a name and a hash")
	}
	data, err := encode(op, toAdminKeyRecord(k))
	if err != nil {
		return "", err
	}
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	f := "0"
	if first {
		f = "1"
	}
	res, err := createAdminKeyScript.Run(ctx, s.rdb, s.adminKeys(), k.ID, k.Hash, k.Name, data, f).Text()
	if err != nil {
		return "", fail(ctx, op, err)
	}
	switch res {
	case "name":
		return res, core.Errorf(core.Conflict, op, "admin key name %q is taken", k.Name)
	case "id":
		return res, core.Errorf(core.Conflict, op, "admin key id %q is taken", k.ID)
	case "hash":
		return res, core.Errorf(core.Conflict, op, "an admin key with that hash exists")
	}
	return res, nil
}

// CreateAdminKey stores k. Conflict if its name (or id) is taken.
func (s *Store) CreateAdminKey(ctx context.Context, k core.AdminKey) (err error) {
	const op = "redisstore.CreateAdminKey"
	defer s.replicated(ctx, op, &err)
	_, err = s.createAdminKey(ctx, op, k, false)
	return err
}

// CreateFirstAdminKey stores k only if the store holds no admin key at all, in one
// script, and reports whether it did.
func (s *Store) CreateFirstAdminKey(ctx context.Context, k core.AdminKey) (_ bool, err error) {
	const op = "redisstore.CreateFirstAdminKey"
	defer s.replicated(ctx, op, &err)
	res, err := s.createAdminKey(ctx, op, k, true)
	if err != nil {
		return false, err
	}
	return res == "ok", nil
}

// AdminKeyByHash returns the key with that hash, or NotFound.
func (s *Store) AdminKeyByHash(ctx context.Context, hash string) (core.AdminKey, error) {
	const op = "redisstore.AdminKeyByHash"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	v, err := adminKeyByHashScript.Run(ctx, s.rdb, s.adminKeys(), hash).Slice()
	if errors.Is(err, redis.Nil) || (err == nil && len(v) == 0) {
		return core.AdminKey{}, core.Errorf(core.NotFound, op, "admin key not found")
	}
	if err != nil {
		return core.AdminKey{}, fail(ctx, op, err)
	}
	data, _ := v[0].(string)
	r, err := decode[adminKeyRecord](op, s.k.admin(adminByID), data)
	if err != nil {
		return core.AdminKey{}, err
	}
	k := r.adminKey()
	if len(v) > 1 {
		if used, ok := v[1].(string); ok {
			k.LastUsedAt = parseMicros(used)
		}
	}
	return k, nil
}

// AdminKeys lists every admin key, oldest first.
func (s *Store) AdminKeys(ctx context.Context) ([]core.AdminKey, error) {
	const op = "redisstore.AdminKeys"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	var byID, used *redis.MapStringStringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		byID = p.HGetAll(ctx, s.k.admin(adminByID))
		used = p.HGetAll(ctx, s.k.admin(adminUsed))
		return nil
	})
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	out := make([]core.AdminKey, 0, len(byID.Val()))
	for id, data := range byID.Val() {
		r, err := decode[adminKeyRecord](op, s.k.admin(adminByID)+" "+id, data)
		if err != nil {
			return nil, err
		}
		k := r.adminKey()
		if u, ok := used.Val()[id]; ok {
			k.LastUsedAt = parseMicros(u)
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b core.AdminKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteAdminKey revokes a key by id. NotFound if there is none. The checks
// run on the record read, and the script deletes only that record: check and
// delete are one step.
func (s *Store) DeleteAdminKey(ctx context.Context, id string, check ...func(core.AdminKey) error) (err error) {
	const op = "redisstore.DeleteAdminKey"
	defer s.replicated(ctx, op, &err)
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	for range maxTxRetries {
		data, err := s.rdb.HGet(ctx, s.k.admin(adminByID), id).Result()
		if errors.Is(err, redis.Nil) {
			return adminKeyNotFound(op)
		}
		if err != nil {
			return fail(ctx, op, err)
		}
		r, err := decode[adminKeyRecord](op, s.k.admin(adminByID)+" "+id, data)
		if err != nil {
			return err
		}
		if err := runChecks(r.adminKey(), check); err != nil {
			return fail(ctx, op, err)
		}
		n, err := deleteAdminKeyScript.Run(ctx, s.rdb, s.adminKeys(), id, r.Hash, r.Name, data).Int()
		if err != nil {
			return fail(ctx, op, err)
		}
		if n == 1 {
			return nil
		}
	}
	return core.Errorf(core.Conflict, op, "admin key is being changed concurrently; try again")
}

// TouchAdminKey records a use of the key at t (kept only if later than the last
// one). NotFound if there is no such key.
func (s *Store) TouchAdminKey(ctx context.Context, id string, t time.Time) error {
	const op = "redisstore.TouchAdminKey"
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	n, err := touchAdminKeyScript.Run(ctx, s.rdb, s.adminKeys(), id, t.UnixMicro()).Int()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return adminKeyNotFound(op)
	}
	return nil
}

// adminKeyNotFound is the NotFound of an admin key id. It never names the id,
// which comes from a request path, where an admin key pasted by mistake would
// be its secret.
func adminKeyNotFound(op string) error { return core.Errorf(core.NotFound, op, "admin key not found") }

// parseMicros reads a time stored as Unix microseconds; zero if malformed.
func parseMicros(s string) time.Time {
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil || us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
