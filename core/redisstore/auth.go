package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// readAuthScript reads what the verification of an OAuth access token needs
// from one user's slot, in one round trip (AuthQuery.OAuthToken; other
// verifications read their keys with one MGET and decode them in Go, which costs
// Redis less than a script decoding JSON).
//
//	KEYS[1] the user record; KEYS[2..] the parts ARGV[2] names, one letter
//	each: c credential, s session or token, p password, x secret, a app
//	ARGV[1] the prefix of the user's app keys ("P u:{uid}:app:")
//	ARGV[2] the letters; ARGV[3] the app id of KEYS 'a', or ""
//
//	ARGV[4] the prefix of the user's oauth2 credential keys
//
// It answers false when the user does not exist, else {user, credential, session,
// password, secret, app, consumer app, token's credential}, each false when
// missing. The consumer app is the app whose credential or token was read (the
// credential's first), taken from the record's consumerId: its key is in the same
// slot, so the script can compute it; it is left out when it is the app of KEYS
// 'a'. The token's credential is the oauth2 credential an OAuth access token was
// issued under (its consumer's), read when no credential was asked for, so that a
// deactivated or deleted credential refuses its tokens at once.
var readAuthScript = redis.NewScript(`
local u = redis.call('GET', KEYS[1])
if not u then return false end
local out = {u, false, false, false, false, false, false, false}
local consumer = nil
local tokenOf = nil
local function inspect(v, session)
  if not v then return end
  local ok, rec = pcall(cjson.decode, v)
  if not ok or type(rec) ~= 'table' or type(rec['consumerId']) ~= 'string' then return end
  if not consumer and rec['consumerKind'] == 'app' then consumer = rec['consumerId'] end
  if session and rec['kind'] == 'oauth2' then tokenOf = rec['consumerId'] end
end
local parts = ARGV[2]
local credRead = false
for i = 1, #parts do
  local p = string.sub(parts, i, i)
  local v = redis.call('GET', KEYS[i + 1])
  if p == 'c' then out[2] = v; credRead = true; inspect(v, false)
  elseif p == 's' then out[3] = v; inspect(v, true)
  elseif p == 'p' then out[4] = v
  elseif p == 'x' then out[5] = v
  elseif p == 'a' then out[6] = v
  end
end
if consumer and consumer ~= ARGV[3] then out[7] = redis.call('GET', ARGV[1] .. consumer) end
if tokenOf and not credRead then out[8] = redis.call('GET', ARGV[4] .. tokenOf) end
return out`)

// ReadAuth reads what a verification needs, in one round trip for what q
// names: one pipeline of an MGET of the user's record and the parts q names
// (one slot: the user's), HGETALL of the scope and group registries (unless
// q.SkipRegistries) and, with Throttles, GET of each one's Limiter key (under
// the store's prefix) and TIME, from which RetryAfter is computed as
// Limiter.Allow with n = 0 would (the longest wait). On a Redis Cluster the
// commands go to their nodes concurrently. With q.OAuthToken the slot is read by
// readAuthScript instead (EVALSHA; EVAL only when the server does not have the
// script yet), which follows the token's record to its credential and app.
//
// The user is always read; the credential, session, password, secret and app only
// when q names them; for an OAuth access token, the oauth2 credential it was
// issued under comes as Credential. App is q.AppID's, else the consumer app of the
// credential or token read. An app's credential whose app is neither q.AppID nor
// q.ConsumerApp costs a second round trip, in the same slot, for its app (so does
// a token's credential and app without q.OAuthToken). Credential.OwnerActive is the user's flag and, for an app's
// credential, its app's; App.OwnerActive is the user's flag. Records are returned
// as stored: the caller compares a credential's or session's ExpiresAt with its
// clock. NotFound if the user does not exist; a credential, session or app that
// does not exist in the user's slot is nil (a located slot that went stale reads
// as nil, so the caller can locate again).
func (s *Store) ReadAuth(ctx context.Context, q core.AuthQuery) (core.AuthRecord, error) {
	const op = "redisstore.ReadAuth"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	uid := q.UserID
	if !validID(uid) {
		return core.AuthRecord{}, userNotFound(op, uid)
	}
	// The parts, in the order of readAuthScript's answer.
	const (
		partUser = iota
		partCred
		partSession
		partPassword
		partSecret
		partApp
		partConsumerApp
		partTokenCred
		parts
	)
	var (
		keys         = make([]string, 0, parts)
		at           = make([]int, 0, parts) // keys[i] is part at[i]
		letters      = make([]byte, 0, parts)
		credKey      string
		sessKey      string
		appID, hint  string
		credAsked    bool
		scriptLetter = [parts]byte{partCred: 'c', partSession: 's', partPassword: 'p', partSecret: 'x', partApp: 'a'}
	)
	add := func(part int, key string) {
		keys, at = append(keys, key), append(at, part)
		if part != partUser {
			letters = append(letters, scriptLetter[part])
		}
	}
	add(partUser, s.k.user(uid))
	if c := q.Credential; c != nil && c.Type.Valid() && validID(c.ID) {
		credKey, credAsked = s.k.cred(uid, c.Type, c.ID), true
		add(partCred, credKey)
	}
	if hx, ok := hashHex(q.SessionHash); ok {
		sessKey = s.k.session(uid, hx)
		add(partSession, sessKey)
	}
	if q.Password {
		add(partPassword, s.k.password(uid))
	}
	if q.Secret {
		add(partSecret, s.k.secret(uid))
	}
	if validID(q.AppID) {
		appID = q.AppID
		add(partApp, s.k.app(uid, appID))
	}
	script := q.OAuthToken
	if validID(q.ConsumerApp) && q.ConsumerApp != appID && !script {
		hint = q.ConsumerApp
		add(partConsumerApp, s.k.app(uid, hint))
	}

	var args []any // the script's
	if script {
		args = []any{s.k.appPrefix(uid), string(letters), appID, s.k.credPrefix(uid, core.OAuth2)}
	}
	var c authCmds
	var err error
	var alone []any // the MGET's values, sent alone
	if !script && q.SkipRegistries && len(q.Throttles) == 0 {
		// The MGET alone (the caller has the registries and the throttles):
		// sent as a command, without a pipeline's bookkeeping, or with
		// other verifications' under load (mgets).
		alone, err = s.mget(ctx, keys)
	} else {
		c, err = s.authPipeline(ctx, q, keys, args, script)
	}
	slot, mget, reg, groups, rl, now := c.slot, c.mget, c.reg, c.groups, c.rl, c.now
	noScript := slot != nil && isNoScript(slot.Err())
	if err != nil && !errors.Is(err, redis.Nil) && !noScript {
		return core.AuthRecord{}, fail(ctx, op, err)
	}
	if noScript {
		// First use on this server (or after SCRIPT FLUSH / a failover): send the
		// body once; later calls find it cached.
		slot = readAuthScript.Eval(ctx, s.rdb, keys, args...)
	}
	if reg != nil {
		if err := reg.Err(); err != nil {
			return core.AuthRecord{}, fail(ctx, op, err)
		}
	}
	for _, get := range rl {
		if err := get.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return core.AuthRecord{}, fail(ctx, op, err)
		}
	}
	if now != nil {
		if err := now.Err(); err != nil {
			return core.AuthRecord{}, fail(ctx, op, err)
		}
	}
	var arr [parts]any // string when read and present
	if script {
		v, err := slot.Result()
		if errors.Is(err, redis.Nil) {
			return core.AuthRecord{}, userNotFound(op, uid)
		}
		if err != nil {
			return core.AuthRecord{}, fail(ctx, op, err)
		}
		got, ok := v.([]any)
		if !ok || len(got) != parts {
			return core.AuthRecord{}, &core.Error{Kind: core.Internal, Op: op, Msg: "unexpected answer from Redis"}
		}
		copy(arr[:], got)
	} else {
		got := alone
		if mget != nil {
			if got, err = mget.Result(); err != nil {
				return core.AuthRecord{}, fail(ctx, op, err)
			}
		}
		if len(got) != len(keys) {
			return core.AuthRecord{}, &core.Error{Kind: core.Internal, Op: op, Msg: "unexpected answer from Redis"}
		}
		for i, v := range got {
			arr[at[i]] = v
		}
	}
	str := func(i int) (string, bool) { v, ok := arr[i].(string); return v, ok }

	var out core.AuthRecord
	data, ok := str(partUser)
	if !ok {
		return core.AuthRecord{}, userNotFound(op, uid)
	}
	out.User, err = decodeUser(op, keys[0], data, q.Lean) // keys[0]: the user's
	if err != nil {
		return core.AuthRecord{}, err
	}
	out.PasswordHash, _ = str(partPassword)
	out.SecretHash, _ = str(partSecret)

	// The credential, then the session or token: the first app consumer is the
	// app read with them (as readAuthScript decides); a token's oauth2
	// credential is read when no credential was asked for.
	var cred *core.Credential
	consumerApp := ""
	if data, ok := str(partCred); ok {
		c, err := decodeCredential(op, credKey, data, q.Lean)
		if err != nil {
			return core.AuthRecord{}, err
		}
		if c.ConsumerKind == core.ConsumerApp {
			consumerApp = c.ConsumerID
		}
		cred = &c
	}
	tokenOf := ""
	if data, ok := str(partSession); ok {
		sr, err := decode[sessionRecord](op, sessKey, data)
		if err != nil {
			return core.AuthRecord{}, err
		}
		sess := sr.session()
		if sess.ConsumerKind == core.ConsumerApp && consumerApp == "" {
			consumerApp = sess.ConsumerID
		}
		if sess.Kind == core.KindOAuth && !credAsked && validID(sess.ConsumerID) {
			tokenOf = sess.ConsumerID
		}
		out.Session = &sess
	}
	if !script {
		// What the records name and the first read did not hold.
		if consumerApp != hint {
			arr[partConsumerApp] = nil // not the app the credential or token names
		}
		var more []string
		var moreAt []int
		if validID(consumerApp) && consumerApp != appID && consumerApp != hint {
			more, moreAt = append(more, s.k.app(uid, consumerApp)), append(moreAt, partConsumerApp)
		}
		if tokenOf != "" {
			more, moreAt = append(more, s.k.cred(uid, core.OAuth2, tokenOf)), append(moreAt, partTokenCred)
		}
		if len(more) > 0 {
			got, err := s.rdb.MGet(ctx, more...).Result() // one slot: the user's
			if err != nil {
				return core.AuthRecord{}, fail(ctx, op, err)
			}
			for i, v := range got {
				arr[moreAt[i]] = v
			}
		}
	}
	if data, ok := str(partTokenCred); ok && cred == nil {
		c, err := decodeCredential(op, s.k.credPrefix(uid, core.OAuth2), data, q.Lean) // the key's slot gives what the record leaves out
		if err != nil {
			return core.AuthRecord{}, err
		}
		if c.ConsumerKind == core.ConsumerApp && consumerApp == "" {
			consumerApp = c.ConsumerID
		}
		cred = &c
	}
	// The apps read, by id, with their owner's state: q.AppID's and the consumer's.
	apps := map[string]*core.App{}
	for _, a := range [...]struct {
		part int
		id   string
	}{{partApp, appID}, {partConsumerApp, consumerApp}} {
		data, ok := str(a.part)
		if !ok {
			continue
		}
		ar, err := decode[appRecord](op, s.k.app(uid, a.id), data)
		if err != nil {
			return core.AuthRecord{}, err
		}
		app := ar.app()
		app.OwnerActive = out.User.IsActive
		apps[app.ID] = &app
	}
	if cred != nil {
		cred.OwnerActive = out.User.IsActive
		if cred.ConsumerKind == core.ConsumerApp {
			a := apps[cred.ConsumerID]
			cred.OwnerActive = cred.OwnerActive && a != nil && a.IsActive
		}
		out.Credential = cred
	}
	switch {
	case appID != "":
		out.App = apps[appID]
	case consumerApp != "":
		out.App = apps[consumerApp]
	}

	for i, t := range q.Throttles {
		out.RetryAfter = max(out.RetryAfter, askRate(rl[i], now, t.Rate))
	}

	if reg == nil { // q.SkipRegistries
		return out, nil
	}
	out.Scopes = make(map[string]string, len(reg.Val()))
	for name, data := range reg.Val() {
		r, err := decode[scopeRecord](op, s.k.scopes()+" "+name, data)
		if err != nil {
			return core.AuthRecord{}, err
		}
		out.Scopes[name] = r.Reg
	}
	if len(out.User.Groups) > 0 {
		if out.Groups, err = s.decodeGroups(op, groups.Val()); err != nil {
			return core.AuthRecord{}, err
		}
	}
	return out, nil
}

// authCmds are the commands of ReadAuth's first round trip.
type authCmds struct {
	slot        *redis.Cmd      // readAuthScript
	mget        *redis.SliceCmd // or the slot's keys
	reg, groups *redis.MapStringStringCmd
	rl          []*redis.StringCmd // the throttles
	now         *redis.TimeCmd
}

// authPipeline sends ReadAuth's first round trip as a pipeline: the slot's
// script or MGET, the registries unless q.SkipRegistries, and the throttles
// with TIME. (Its own function: the commands the pipeline's closure sets are
// allocated only when there is one.)
func (s *Store) authPipeline(ctx context.Context, q core.AuthQuery, keys []string, args []any, script bool) (authCmds, error) {
	var c authCmds
	c.rl = make([]*redis.StringCmd, len(q.Throttles))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if script {
			c.slot = readAuthScript.EvalSha(ctx, p, keys, args...)
		} else {
			c.mget = p.MGet(ctx, keys...)
		}
		if !q.SkipRegistries {
			c.reg = p.HGetAll(ctx, s.k.scopes())
			c.groups = p.HGetAll(ctx, s.k.groups())
		}
		for i, t := range q.Throttles {
			c.rl[i] = p.Get(ctx, s.k.rate(t.Key))
		}
		if len(q.Throttles) > 0 {
			c.now = p.Time(ctx)
		}
		return nil
	})
	return c, err
}

// userAuthRecord is the part of a userRecord a verification reads
// (AuthQuery.Lean): decoding the rest (properties, identities, times) was a
// good part of a verification's time.
type userAuthRecord struct {
	ID       string   `json:"id,omitempty"`
	Username string   `json:"username,omitempty"`
	IsActive bool     `json:"isActive,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	U        string   `json:"u,omitempty"`
	A        *bool    `json:"a,omitempty"`
}

// defaults is userRecord's.
func (r *userAuthRecord) defaults() { r.IsActive = true }

// record is the userRecord of r's fields, to expand.
func (r userAuthRecord) record() userRecord {
	return userRecord{ID: r.ID, Username: r.Username, IsActive: r.IsActive, Groups: r.Groups, Tags: r.Tags, U: r.U, A: r.A}
}

// credAuthRecord is the part of a credRecord a verification reads.
type credAuthRecord struct {
	Type         string        `json:"type,omitempty"`
	ID           string        `json:"id,omitempty"`
	ConsumerID   string        `json:"consumerId,omitempty"`
	ConsumerKind string        `json:"consumerKind,omitempty"`
	UserID       string        `json:"userId,omitempty"`
	IsActive     bool          `json:"isActive,omitempty"`
	Scopes       []grantRecord `json:"scopes,omitempty"`
	Secret       string        `json:"secret,omitempty"`
	Sha256       string        `json:"s256,omitempty"`
	Algorithm    string        `json:"algorithm,omitempty"`
	ExpiresAt    time.Time     `json:"expiresAt,omitzero"`
	A            *bool         `json:"a,omitempty"`
	H            string        `json:"h,omitempty"`
}

// defaults is credRecord's.
func (r *credAuthRecord) defaults() { r.IsActive = true }

// record is the credRecord of r's fields, to expand.
func (r credAuthRecord) record() credRecord {
	return credRecord{Type: r.Type, ID: r.ID, ConsumerID: r.ConsumerID, ConsumerKind: r.ConsumerKind, UserID: r.UserID,
		IsActive: r.IsActive, Scopes: r.Scopes, Secret: r.Secret, Sha256: r.Sha256, Algorithm: r.Algorithm, ExpiresAt: r.ExpiresAt,
		A: r.A, H: r.H}
}

// decodeUser decodes a user record, only userAuthRecord's fields when lean
// (leanUser's way when it can).
func decodeUser(op, key, data string, lean bool) (core.User, error) {
	if !lean {
		r, err := decode[userRecord](op, key, data)
		return r.user(), err
	}
	var r userAuthRecord
	var err error
	if r.defaults(); !leanUser(data, &r) {
		r, err = decode[userAuthRecord](op, key, data)
	}
	full := r.record()
	if err == nil {
		if err = full.expand(key); err != nil {
			err = corrupt(op, key, err)
		}
	}
	return full.user(), err
}

// decodeCredential decodes a credential record, only credAuthRecord's fields
// when lean (leanCredential's way when it can).
func decodeCredential(op, key, data string, lean bool) (core.Credential, error) {
	if !lean {
		r, err := decode[credRecord](op, key, data)
		return r.credential(), err
	}
	var r credAuthRecord
	var err error
	if r.defaults(); !leanCredential(data, &r) {
		r, err = decode[credAuthRecord](op, key, data)
	}
	full := r.record()
	if err == nil {
		if err = full.expand(key); err != nil {
			err = corrupt(op, key, err)
		}
	}
	return full.credential(), err
}

// isNoScript reports whether err says that the server does not have the script.
func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

// locate reads a claim or locator and returns its owner; NotFound when it is
// missing or names no valid owner.
func (s *Store) locate(ctx context.Context, op string, c claim, what string) (string, error) {
	v, ok, err := s.claimValue(ctx, c)
	if err != nil {
		return "", fail(ctx, op, err)
	}
	if !ok {
		return "", core.Errorf(core.NotFound, op, "%s not found", what)
	}
	owner := claimOwner(v)
	if !validID(owner) {
		return "", core.Errorf(core.NotFound, op, "%s not found", what)
	}
	return owner, nil
}

// LocateCredential returns the user whose slot holds a keyed credential (key-auth,
// jwt), from its keyId claim: one HGET (with the old claim key's GET in one
// pipeline while old claim keys may exist). The claim may belong to a create in flight
// or left by a crash; ReadAuth's record is the truth. NotFound if there is no
// claim; Invalid for a type without keyIds.
func (s *Store) LocateCredential(ctx context.Context, typ core.CredentialType, keyID string) (string, error) {
	const op = "redisstore.LocateCredential"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	if !typ.Valid() || !typ.Keyed() {
		return "", core.Errorf(core.Invalid, op, "%q credentials have no keyId to locate", typ)
	}
	if !validID(keyID) {
		return "", credNotFound(op, typ)
	}
	return s.locate(ctx, op, s.keyIDClaim(typ, keyID), string(typ)+" credential")
}

// LocateApp returns the owner of an app from its locator: one HGET (claimValue). NotFound if
// there is none.
func (s *Store) LocateApp(ctx context.Context, appID string) (string, error) {
	const op = "redisstore.LocateApp"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	if !validID(appID) {
		return "", core.Errorf(core.NotFound, op, "app not found")
	}
	// The id is not named: it comes from an Authorization header.
	return s.locate(ctx, op, s.appClaim(appID), "app")
}

// LocateUser returns the id of the user holding a unique name, from its claim
// only: one HGET (claimValue). value is normalised as UserByName does (core.UsernameKey for
// usernames, core.EmailKey for emails; externalIds and client identifier names
// as given), so a normalised value works as well.
// NotFound if there is no claim.
func (s *Store) LocateUser(ctx context.Context, kind core.NameKind, value string) (string, error) {
	const op = "redisstore.LocateUser"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	notFound := core.Errorf(core.NotFound, op, "user with %s %q not found", kind, value)
	name, known := userNameKey(kind, value)
	if !known {
		return "", core.Errorf(core.Invalid, op, "unknown name kind %q", kind)
	}
	if name == "" {
		return "", notFound
	}
	uid, err := s.locate(ctx, op, s.newClaim(string(kind), name, ""), "user with "+string(kind)+" "+strconv.Quote(value))
	if err != nil {
		return "", err
	}
	return uid, nil
}
