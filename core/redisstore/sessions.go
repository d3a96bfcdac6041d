package redisstore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// pruneBatch is how many of a user's oldest session (or token) zset members a
// CreateSession checks for expired or vanished records: it bounds the work of one
// login whatever the size of the set, and covers the whole set up to the global
// cap of live sessions (100 a user).
const pruneBatch = 200

// setIfUserScript sets KEYS[2] to ARGV[1] if the user record KEYS[1] exists;
// answers 1, or 0 when there is no such user.
var setIfUserScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1`)

// setPasswordScript sets the password KEYS[2] to ARGV[1] and deletes every login
// session (the records named by the zset KEYS[3], under the key prefix ARGV[2],
// and the zset), if the user record KEYS[1] exists; answers 1, or 0 without user.
var setPasswordScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  redis.call('DEL', ARGV[2] .. m)
end
redis.call('DEL', KEYS[3])
return 1`)

// deleteSessionsScript deletes every session and token of a user (the records
// named by the zsets KEYS[2] and KEYS[3], under the key prefix ARGV[1], and the
// zsets), if the user record KEYS[1] exists; answers 1, or 0 without user.
var deleteSessionsScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, 3 do
  for _, m in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    redis.call('DEL', ARGV[1] .. m)
  end
  redis.call('DEL', KEYS[i])
end
return 1`)

// createSessionScript stores a session or token record in its user's slot.
//
//	KEYS[1] user record, KEYS[2] the new record, KEYS[3] the kind's zset
//	ARGV[1] record JSON, ARGV[2] zset member (hex of the hash), ARGV[3] score
//	(CreatedAt, µs), ARGV[4] Redis expiry (Unix ms), ARGV[5] now (µs, the store
//	clock), ARGV[6] limit (0: none), ARGV[7] record key prefix, ARGV[8] prune batch
//
// It answers 0 when the user does not exist and -1 when the record exists.
// First it drops, among the zset's oldest ARGV[8] members, those whose record has
// expired (by its expUs, not by the Redis TTL) or vanished; then it writes the
// record and its member; then it deletes the oldest members beyond the limit and
// their records.
var createSessionScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local now = tonumber(ARGV[5])
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, tonumber(ARGV[8]) - 1)) do
  local v = redis.call('GET', ARGV[7] .. m)
  local live = false
  if v then
    local ok, rec = pcall(cjson.decode, v)
    live = ok and type(rec) == 'table' and type(rec['expUs']) == 'number' and rec['expUs'] > now
  end
  if not live then
    redis.call('DEL', ARGV[7] .. m)
    redis.call('ZREM', KEYS[3], m)
  end
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
local limit = tonumber(ARGV[6])
if limit > 0 then
  local over = redis.call('ZCARD', KEYS[3]) - limit
  if over > 0 then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, over - 1)) do
      redis.call('DEL', ARGV[7] .. m)
    end
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over - 1)
  end
end
return 1`)

// deleteSessionScript deletes the record KEYS[1] and its member ARGV[1] from both
// zsets KEYS[2] and KEYS[3]; answers how many records it deleted.
var deleteSessionScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return n`)

// casKeepTTLScript sets KEYS[1] to ARGV[2], keeping its expiry, only if it still
// holds ARGV[1]: a touch never resurrects a record deleted in the meantime.
var casKeepTTLScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0`)

// hashHex returns the hex part of a "sha256:<hex>" token hash; ok is false when
// hash is not one (64 lower-case hex digits).
func hashHex(hash string) (string, bool) {
	h, ok := strings.CutPrefix(hash, "sha256:")
	if !ok || len(h) != 64 {
		return "", false
	}
	for i := range len(h) {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return h, true
}

// userNotFound is the NotFound of a method given a user id.
func userNotFound(op, uid string) error {
	return core.Errorf(core.NotFound, op, "user %q not found", uid)
}

// SetPassword stores the user's password hash (an argon2id PHC string) and
// deletes every login session of the user (not its OAuth tokens), in one script
// in the user's slot. NotFound if there is no such user. With touch, the user
// record is read under WATCH and the touches run on it: the record, with the
// touched UpdatedAt, and the script go in one MULTI.
func (s *Store) SetPassword(ctx context.Context, userID, phc string, touch ...func(*core.User) error) (err error) {
	const op = "redisstore.SetPassword"
	defer s.replicated(ctx, op, &err)
	defer func() { s.changed(ctx, userID, err) }()
	if !validID(userID) {
		return userNotFound(op, userID)
	}
	keys := []string{s.k.user(userID), s.k.password(userID), s.k.sessions(userID)}
	if len(touch) > 0 {
		return fail(ctx, op, s.setPasswordTouching(ctx, op, userID, keys, phc, touch))
	}
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	n, err := setPasswordScript.Run(ctx, s.rdb, keys, phc, s.k.sessionPrefix(userID)).Int()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return userNotFound(op, userID)
	}
	return nil
}

// setPasswordTouching is SetPassword with touches: the user record is read
// under WATCH, touched, and written back with setPasswordScript in one MULTI.
func (s *Store) setPasswordTouching(ctx context.Context, op, userID string, keys []string, phc string, touch []func(*core.User) error) error {
	key := keys[0]
	return s.watch(ctx, op, "user "+strconv.Quote(userID), func(ctx context.Context, tx *redis.Tx) error {
		data, err := tx.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return userNotFound(op, userID)
		}
		if err != nil {
			return err
		}
		r, err := decode[userRecord](op, key, data)
		if err != nil {
			return err
		}
		u := r.user()
		r2, _ := decode[userRecord](op, key, data) // the touches' own copy: maps and pointers not shared
		touched := r2.user()
		for _, t := range touch {
			if err := t(&touched); err != nil {
				return &fnError{err}
			}
		}
		u.UpdatedAt = touched.UpdatedAt
		out, err := encode(op, toUserRecord(u))
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, out, 0)
			setPasswordScript.Eval(ctx, p, keys, phc, s.k.sessionPrefix(userID))
			return nil
		})
		return err
	}, key)
}

// SetUserSecret stores the hash of the user's secret, replacing the old one;
// sessions stay. NotFound if there is no such user.
func (s *Store) SetUserSecret(ctx context.Context, userID, hash string) (err error) {
	const op = "redisstore.SetUserSecret"
	defer s.replicated(ctx, op, &err)
	defer func() { s.changed(ctx, userID, err) }()
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	if !validID(userID) {
		return userNotFound(op, userID)
	}
	n, err := setIfUserScript.Run(ctx, s.rdb, []string{s.k.user(userID), s.k.secret(userID)}, hash).Int()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return userNotFound(op, userID)
	}
	return nil
}

// CreateSession stores a session or token in its user's slot, with a Redis expiry
// at its ExpiresAt (housekeeping only: readers compare ExpiresAt with their
// clock). In the same script it drops expired or vanished members of the kind's
// zset and, for KindSession with limit > 0, deletes the oldest sessions beyond
// limit. NotFound if the user does not exist; Invalid for a malformed session;
// Conflict if a record with that hash exists.
func (s *Store) CreateSession(ctx context.Context, sess core.Session, limit int) (err error) {
	const op = "redisstore.CreateSession"
	defer s.replicated(ctx, op, &err)
	defer func() {
		if limit > 0 { // older sessions may have been evicted
			s.changed(ctx, sess.UserID, err)
		}
	}()
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	hx, ok := hashHex(sess.Hash)
	switch {
	case !validID(sess.UserID):
		return userNotFound(op, sess.UserID)
	case sess.Kind != core.KindSession && sess.Kind != core.KindOAuth:
		return core.Errorf(core.Invalid, op, "unknown session kind %q", sess.Kind)
	case !ok:
		return core.Errorf(core.Invalid, op, "a session's hash must be sha256:<64 hex digits>")
	case sess.ExpiresAt.IsZero():
		return core.Errorf(core.Invalid, op, "a session needs an expiry")
	case sess.ConsumerKind == core.ConsumerApp && !validID(sess.ConsumerID):
		return core.Errorf(core.Invalid, op, "app %q not found", sess.ConsumerID)
	}
	if sess.Kind == core.KindOAuth || limit < 0 {
		limit = 0
	}
	data, err := encode(op, toSessionRecord(sess))
	if err != nil {
		return err
	}
	now, err := s.now(ctx)
	if err != nil {
		return fail(ctx, op, err)
	}
	uid := sess.UserID
	keys := []string{s.k.user(uid), s.k.session(uid, hx), s.k.zsetOf(sess.Kind, uid)}
	expMs := (sess.ExpiresAt.UnixMicro() + 999) / 1000 // never before ExpiresAt
	n, err := createSessionScript.Run(ctx, s.rdb, keys,
		data, hx, sess.CreatedAt.UnixMicro(), expMs, now.UnixMicro(), limit,
		s.k.sessionPrefix(uid), pruneBatch).Int()
	if err != nil {
		return fail(ctx, op, err)
	}
	switch n {
	case 0:
		return userNotFound(op, uid)
	case -1:
		return core.Errorf(core.Conflict, op, "a session with that hash exists")
	}
	return nil
}

// DeleteSession deletes one session or token of the user by its hash (record and
// zset member). NotFound if there is none.
func (s *Store) DeleteSession(ctx context.Context, userID, hash string) (err error) {
	const op = "redisstore.DeleteSession"
	defer s.replicated(ctx, op, &err)
	defer func() { s.changed(ctx, userID, err) }()
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	notFound := core.Errorf(core.NotFound, op, "session not found")
	hx, ok := hashHex(hash)
	if !ok || !validID(userID) {
		return notFound
	}
	keys := []string{s.k.session(userID, hx), s.k.sessions(userID), s.k.tokens(userID)}
	n, err := deleteSessionScript.Run(ctx, s.rdb, keys, hx).Int()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return notFound
	}
	return nil
}

// DeleteSessions deletes every session and token of the user in one script in
// its slot (force logout). NotFound if there is no such user.
func (s *Store) DeleteSessions(ctx context.Context, userID string) (err error) {
	const op = "redisstore.DeleteSessions"
	defer s.replicated(ctx, op, &err)
	defer func() { s.changed(ctx, userID, err) }()
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	if !validID(userID) {
		return userNotFound(op, userID)
	}
	keys := []string{s.k.user(userID), s.k.sessions(userID), s.k.tokens(userID)}
	n, err := deleteSessionsScript.Run(ctx, s.rdb, keys, s.k.sessionPrefix(userID)).Int()
	if err != nil {
		return fail(ctx, op, err)
	}
	if n == 0 {
		return userNotFound(op, userID)
	}
	return nil
}

// Sessions lists the user's live login sessions (KindSession), newest first:
// those whose ExpiresAt is after the store's clock. An unknown user has none.
func (s *Store) Sessions(ctx context.Context, userID string) ([]core.Session, error) {
	const op = "redisstore.Sessions"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	out := []core.Session{}
	if !validID(userID) {
		return out, nil
	}
	now, err := s.now(ctx)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	members, err := s.rdb.ZRevRange(ctx, s.k.sessions(userID), 0, -1).Result()
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	if len(members) == 0 {
		return out, nil
	}
	keys := make([]string, 0, len(members))
	for _, m := range members {
		if hx, ok := hashHex("sha256:" + m); ok {
			keys = append(keys, s.k.session(userID, hx))
		}
	}
	if len(keys) == 0 {
		return out, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result() // one slot: the user's
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	for i, v := range vals {
		data, ok := v.(string)
		if !ok {
			continue
		}
		r, err := decode[sessionRecord](op, keys[i], data)
		if err != nil {
			return nil, err
		}
		if r.Kind != string(core.KindSession) || !r.ExpiresAt.After(now) {
			continue
		}
		out = append(out, r.session())
	}
	// The zset orders by CreatedAt in µs; keep the order exact.
	slices.SortStableFunc(out, func(a, b core.Session) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// TouchSession records a use of the session at t, if t is after its LastSeenAt
// and the record still exists: a compare-and-set that never resurrects a record
// deleted in the meantime. A session that is gone is not an error.
func (s *Store) TouchSession(ctx context.Context, userID, hash string, t time.Time) error {
	const op = "redisstore.TouchSession"
	ctx, cancel := s.bounds.writing(ctx)
	defer cancel()
	hx, ok := hashHex(hash)
	if !ok || !validID(userID) {
		return nil
	}
	key := s.k.session(userID, hx)
	for range maxTxRetries {
		data, err := s.rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return fail(ctx, op, err)
		}
		r, err := decode[sessionRecord](op, key, data)
		if err != nil {
			return err
		}
		if !t.After(r.LastSeenAt) {
			return nil
		}
		r.LastSeenAt = t.UTC()
		out, err := encode(op, r)
		if err != nil {
			return err
		}
		n, err := casKeepTTLScript.Run(ctx, s.rdb, []string{key}, data, out).Int()
		if err != nil {
			return fail(ctx, op, err)
		}
		if n == 1 {
			return nil
		}
	}
	return core.Errorf(core.Conflict, op, "session is being changed concurrently; try again")
}

// sessionKeysOf reads, inside DeleteUser's WATCH, the record keys named by the
// members of the user's session and token zsets.
func (s *Store) sessionKeysOf(ctx context.Context, tx *redis.Tx, uid string) ([]string, error) {
	var sc, tc *redis.StringSliceCmd
	if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
		sc = p.ZRange(ctx, s.k.sessions(uid), 0, -1)
		tc = p.ZRange(ctx, s.k.tokens(uid), 0, -1)
		return nil
	}); err != nil {
		return nil, err
	}
	var out []string
	for _, m := range slices.Concat(sc.Val(), tc.Val()) {
		if hx, ok := hashHex("sha256:" + m); ok {
			out = append(out, s.k.session(uid, hx))
		}
	}
	return out, nil
}

// appTokens reads, inside DeleteApp's WATCH, the user's tokens whose consumer is
// the app: their record keys and zset members. It reads every token record of the
// user (one MGET in its slot), which is bounded by that user's live tokens.
func (s *Store) appTokens(ctx context.Context, tx *redis.Tx, uid, appID string) (keys []string, members []any, err error) {
	all, err := tx.ZRange(ctx, s.k.tokens(uid), 0, -1).Result()
	if err != nil || len(all) == 0 {
		return nil, nil, err
	}
	var ks []string
	var ms []string
	for _, m := range all {
		if hx, ok := hashHex("sha256:" + m); ok {
			ks = append(ks, s.k.session(uid, hx))
			ms = append(ms, m)
		}
	}
	if len(ks) == 0 {
		return nil, nil, nil
	}
	vals, err := tx.MGet(ctx, ks...).Result()
	if err != nil {
		return nil, nil, err
	}
	for i, v := range vals {
		data, ok := v.(string)
		if !ok {
			members = append(members, ms[i]) // vanished: drop its member too
			continue
		}
		r, err := decode[sessionRecord]("redisstore.DeleteApp", ks[i], data)
		if err != nil || r.ConsumerKind != string(core.ConsumerApp) || r.ConsumerID != appID {
			continue
		}
		keys = append(keys, ks[i])
		members = append(members, ms[i])
	}
	return keys, members, nil
}
