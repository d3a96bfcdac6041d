package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// userClaims lists the unique names u holds.
func (s *Store) userClaims(u core.User) ([]claim, error) {
	ukey, err := core.UsernameKey(u.Username)
	if err != nil {
		return nil, err
	}
	cs := []claim{s.usernameClaim(ukey, u.Username)}
	if u.Email != "" {
		cs = append(cs, s.emailClaim(core.EmailKey(u.Email), u.Email))
	}
	if u.ExternalID != "" {
		cs = append(cs, s.externalIDClaim(u.ExternalID))
	}
	if u.ClientID != "" {
		cs = append(cs, s.clientIdentifierClaim(u.ClientID, u.ClientIdentifier))
	}
	for _, id := range u.Identities {
		if id.Provider == emailProvider {
			continue // unique through the email claim
		}
		c := s.identityClaim(id.Provider, id.Subject)
		if !slices.ContainsFunc(cs, c.same) {
			cs = append(cs, c)
		}
	}
	return cs, nil
}

// checkIdentities refuses identities whose claim key would be ambiguous: a
// provider must be set and free of ':', a subject set.
func checkIdentities(op string, ids []core.Identity) error {
	for _, id := range ids {
		if id.Provider == "" || strings.Contains(id.Provider, ":") {
			return core.Errorf(core.Invalid, op, "identity provider %q is not valid", id.Provider)
		}
		if id.Subject == "" {
			return core.Errorf(core.Invalid, op, "identity of provider %q has no subject", id.Provider)
		}
	}
	return nil
}

// checkClientFields refuses a client identifier without a client, or a
// client without an identifier, and a client id that cannot be part of the
// claim name "<clientID>/<identifier>" (which splits at its first '/').
func checkClientFields(op string, u core.User) error {
	switch {
	case u.ClientID == "" && u.ClientIdentifier != "":
		return core.Errorf(core.Invalid, op, "clientIdentifier is set without a clientId")
	case u.ClientID != "" && !validID(u.ClientID):
		return core.Errorf(core.Invalid, op, "clientId %q is not valid", u.ClientID)
	case u.ClientID != "" && u.ClientIdentifier == "":
		return core.Errorf(core.Invalid, op, "clientIdentifier is empty")
	}
	return nil
}

// CreateUser stores u, assigning u.Number unless it is set (an import: then it
// is kept). Conflict names the taken username, email, externalId, client
// identifier, identity or number (or the id).
func (s *Store) CreateUser(ctx context.Context, u *core.User) (err error) {
	const op = "redisstore.CreateUser"
	var fenced bool
	defer s.replicated(ctx, op, &err, &fenced)
	if u == nil || !validID(u.ID) {
		return core.Errorf(core.Invalid, op, "user id is not valid")
	}
	if err := checkIdentities(op, u.Identities); err != nil {
		return err
	}
	if err := checkClientFields(op, *u); err != nil {
		return err
	}
	claims, err := s.userClaims(*u)
	if err != nil {
		return err
	}
	var reg map[string]core.Group
	if len(u.Groups) > 0 || len(u.Tags) > 0 {
		rctx, cancel := s.bounds.reading(ctx)
		reg, err = s.groupRegistry(rctx, op)
		cancel()
		if err != nil {
			return fail(rctx, op, err)
		}
		if err := checkGroups(op, u.Groups, reg); err != nil {
			return err
		}
	}
	c := create{
		op: op, owner: u.ID, claims: claims, seq: listUsers, number: u.Number,
		key: s.k.user(u.ID), taken: fmt.Sprintf("user id %q", u.ID),
		record: func(n int64) (string, error) {
			nu := *u
			nu.Number = n
			return encode(op, toUserRecord(nu))
		},
		index: func(n int64) []entry {
			es := []entry{s.listEntry(listUsers, u.ID, n)}
			if !u.ExpiresAt.IsZero() {
				es = append(es, entry{key: s.k.idx(idxExpiring), member: u.ID, score: expScore(u.ExpiresAt)})
			}
			return append(es, s.userIndexEntries(*u, n, reg)...)
		},
	}
	if len(u.Groups) == 0 {
		c.fenced = &fenced // nothing is written after the create
	}
	n, err := s.create(ctx, c)
	if err != nil {
		return err
	}
	u.Number = n
	if len(u.Groups) > 0 {
		// A group deleted while the user was written leaves it at once.
		s.syncUserIndexes(ctx, core.User{ID: u.ID, Number: n, IsActive: u.IsActive}, *u)
	}
	return nil
}

// getUser reads one user record; found is false when there is none.
func (s *Store) getUser(ctx context.Context, op, id string) (userRecord, bool, error) {
	if !validID(id) {
		return userRecord{}, false, nil
	}
	data, err := s.rdb.Get(ctx, s.k.user(id)).Result()
	if errors.Is(err, redis.Nil) {
		return userRecord{}, false, nil
	}
	if err != nil {
		return userRecord{}, false, err
	}
	r, err := s.decodeUser(op, s.k.user(id), data)
	return r, err == nil, err
}

// userMemoSize bounds the memo of decoded user records: at most twice this many
// are kept (a record and its decoding, about a kilobyte for a user with a few
// properties).
const userMemoSize = 4096

// decodeUser decodes the user record data read from key, for a read that gives
// it to its caller unchanged (its raw form set): through the store's memo of
// decoded records, so that a record read again unchanged is not decoded again.
// The memo's key is the record itself, so it is never stale. The record
// returned is the caller's own: its maps and slices are copies.
func (s *Store) decodeUser(op, key, data string) (userRecord, error) {
	if r, ok := s.users.Get(data); ok {
		return r.clone(), nil
	}
	r, err := decode[userRecord](op, key, data)
	if err != nil {
		return r, err
	}
	r.raw = data
	s.users.Put(data, r)
	return r.clone(), nil
}

// GetUser returns the user with that id, or NotFound.
func (s *Store) GetUser(ctx context.Context, id string) (core.User, error) {
	const op = "redisstore.GetUser"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	r, ok, err := s.getUser(ctx, op, id)
	if err != nil {
		return core.User{}, fail(ctx, op, err)
	}
	if !ok {
		return core.User{}, core.Errorf(core.NotFound, op, "user %q not found", id)
	}
	return r.user(), nil
}

// UserByName returns the user holding the name: value is a raw username (keyed
// with core.UsernameKey), a normalised email (keyed with core.EmailKey), an
// external id or a client identifier name (core.ClientIdentifierName, exact). The user must still hold the name, which guards against a claim left
// over by a crash.
func (s *Store) UserByName(ctx context.Context, kind core.NameKind, value string) (core.User, error) {
	const op = "redisstore.UserByName"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	notFound := core.Errorf(core.NotFound, op, "user with %s %q not found", kind, value)
	name, known := userNameKey(kind, value)
	if !known {
		return core.User{}, core.Errorf(core.Invalid, op, "unknown name kind %q", kind)
	}
	if name == "" {
		return core.User{}, notFound
	}
	v, ok, err := s.claimValue(ctx, s.newClaim(string(kind), name, ""))
	if err != nil {
		return core.User{}, fail(ctx, op, err)
	}
	if !ok {
		return core.User{}, notFound
	}
	r, ok, err := s.getUser(ctx, op, claimOwner(v))
	if err != nil {
		return core.User{}, fail(ctx, op, err)
	}
	if !ok || !userHolds(r, string(kind), name) {
		return core.User{}, notFound
	}
	return r.user(), nil
}

// userNameKey returns the claim name of a user name of that kind, "" for a
// value no user can hold; known is false for an unknown kind.
func userNameKey(kind core.NameKind, value string) (name string, known bool) {
	switch kind {
	case core.NameUsername:
		k, err := core.UsernameKey(value)
		if err != nil {
			return "", true
		}
		return k, true
	case core.NameEmail:
		return core.EmailKey(value), true
	case core.NameExternalID, core.NameClientIdentifier:
		return value, true
	}
	return "", false
}

// UserByIdentity returns the user holding an identity at a provider other than
// "email", from its claim; the user's record must still list the identity, which
// guards against a claim left over by a crash. NotFound otherwise.
func (s *Store) UserByIdentity(ctx context.Context, provider, subject string) (core.User, error) {
	const op = "redisstore.UserByIdentity"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	notFound := core.Errorf(core.NotFound, op, "user with %s identity %q not found", provider, subject)
	if provider == emailProvider || checkIdentities(op, []core.Identity{{Provider: provider, Subject: subject}}) != nil {
		return core.User{}, notFound
	}
	c := s.identityClaim(provider, subject)
	v, ok, err := s.claimValue(ctx, c)
	if err != nil {
		return core.User{}, fail(ctx, op, err)
	}
	if !ok {
		return core.User{}, notFound
	}
	r, ok, err := s.getUser(ctx, op, claimOwner(v))
	if err != nil {
		return core.User{}, fail(ctx, op, err)
	}
	if !ok || !userHolds(r, kindIdentity, c.name) {
		return core.User{}, notFound
	}
	return r.user(), nil
}

// UserByNumber returns the user with that number, or NotFound.
func (s *Store) UserByNumber(ctx context.Context, n int64) (core.User, error) {
	const op = "redisstore.UserByNumber"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	notFound := core.Errorf(core.NotFound, op, "user %d not found", n)
	if n <= 0 {
		return core.User{}, notFound
	}
	id, err := s.numbered(ctx, listUsers, n)
	if err != nil {
		return core.User{}, fail(ctx, op, err)
	}
	if id == "" {
		return core.User{}, notFound
	}
	r, ok, err := s.getUser(ctx, op, id)
	if err != nil {
		return core.User{}, fail(ctx, op, err)
	}
	if !ok || r.Number != n {
		return core.User{}, notFound
	}
	return r.user(), nil
}

// UpdateUser applies fn atomically (fn may run more than once). Changes fn makes
// to ID, Number, Username, ClientID, ClientIdentifier or CreatedAt are undone. A
// new email, externalId or identity is claimed first (Conflict if taken) and the old one released after the
// write. A changed ExpiresAt is written to P idx:expiring after the write.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*core.User) error) (_ core.User, err error) {
	const op = "redisstore.UpdateUser"
	defer s.replicated(ctx, op, &err)
	if !validID(id) {
		return core.User{}, core.Errorf(core.NotFound, op, "user %q not found", id)
	}
	defer func() { s.changed(ctx, id, err) }()
	key := s.k.user(id)
	for range maxTxRetries {
		var (
			cr     *creation
			old    core.User
			next   core.User
			toFree []held // the old names' claims, with the values read while held
		)
		// One attempt is one write step: the claims of new names included.
		err := s.bounds.step(ctx, func(ctx context.Context) error {
			return s.watchHeld(ctx, func(ctx context.Context, tx *redis.Tx) error {
				data, err := tx.Get(ctx, key).Result()
				if errors.Is(err, redis.Nil) {
					return core.Errorf(core.NotFound, op, "user %q not found", id)
				}
				if err != nil {
					return err
				}
				r, err := decode[userRecord](op, key, data)
				if err != nil {
					return err
				}
				old = r.user()
				r2, _ := decode[userRecord](op, key, data) // fn's own copy: maps and pointers not shared
				next = r2.user()
				if err := fn(&next); err != nil {
					return &fnError{err}
				}
				next.ID, next.Number, next.Username, next.CreatedAt = old.ID, old.Number, old.Username, old.CreatedAt
				next.ClientID, next.ClientIdentifier = old.ClientID, old.ClientIdentifier
				if err := checkIdentities(op, next.Identities); err != nil {
					return err
				}
				if err := s.checkAddedGroups(ctx, op, old.Groups, next.Groups); err != nil {
					return err
				}
				oldClaims, _ := s.userClaims(old)
				newClaims, err := s.userClaims(next)
				if err != nil {
					return err
				}
				gone, added := diffClaims(oldClaims, newClaims)
				if len(added) > 0 {
					if cr, err = s.begin(ctx, op, id); err != nil {
						return err
					}
					for _, c := range added {
						if err := cr.claim(ctx, c); err != nil {
							return err
						}
					}
				}
				if len(gone) > 0 {
					if toFree, err = s.heldByOne(ctx, gone, id); err != nil {
						return err
					}
				}
				if cr != nil {
					if err := cr.check(ctx); err != nil {
						return err
					}
				}
				out, err := encode(op, toUserRecord(next))
				if err != nil {
					return err
				}
				_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, key, out, 0)
					return nil
				})
				return err
			}, key)
		})
		if errors.Is(err, redis.TxFailedErr) {
			if cr != nil {
				cr.abort(ctx)
			}
			continue
		}
		if err != nil {
			if cr != nil {
				cr.abort(ctx)
			}
			return core.User{}, fail(ctx, op, err)
		}
		// The record is written: the index follows it whatever happens next.
		s.syncExpiring(ctx, id, old.ExpiresAt, next.ExpiresAt)
		s.syncUserIndexes(ctx, old, next)
		if cr != nil {
			if err := s.bounds.step(ctx, cr.check); err != nil {
				// The claim was lost after all (the write overran its deadline):
				// put the old names back before letting the new ones go.
				if s.restoreNames(ctx, op, id, old, next) {
					cr.abort(ctx)
				}
				return core.User{}, fail(ctx, op, err)
			}
		}
		s.release(ctx, toFree)
		return next, nil
	}
	return core.User{}, core.Errorf(core.Conflict, op, "user %q is being changed concurrently; try again", id)
}

// restoreNames undoes the name changes of an update whose new claims were lost,
// if the record still carries them. It reports whether it did.
func (s *Store) restoreNames(ctx context.Context, op, id string, old, next core.User) bool {
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	key := s.k.user(id)
	err := s.watch(ctx, op, "user", func(ctx context.Context, tx *redis.Tx) error {
		data, err := tx.Get(ctx, key).Result()
		if err != nil {
			return err
		}
		r, err := decode[userRecord](op, key, data)
		if err != nil {
			return err
		}
		if r.Email != next.Email || r.ExternalID != next.ExternalID || !sameIdentityKeys(identities(r.Identities), next.Identities) {
			return errors.New("changed since")
		}
		r.Email, r.ExternalID, r.Identities = old.Email, old.ExternalID, toIdentityRecords(old.Identities)
		out, err := encode(op, r)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, out, 0)
			return nil
		})
		return err
	}, key)
	return err == nil
}

// sameIdentityKeys reports whether a and b list the same (provider, subject)
// pairs, in order.
func sameIdentityKeys(a, b []core.Identity) bool {
	return slices.EqualFunc(a, b, func(x, y core.Identity) bool {
		return x.Provider == y.Provider && x.Subject == y.Subject
	})
}

// diffClaims returns the claims of old missing from next and those of next
// missing from old, comparing normalised names.
func diffClaims(old, next []claim) (gone, added []claim) {
	in := func(c claim, cs []claim) bool {
		for _, d := range cs {
			if d.same(c) {
				return true
			}
		}
		return false
	}
	for _, c := range old {
		if !in(c, next) {
			gone = append(gone, c)
		}
	}
	for _, c := range next {
		if !in(c, old) {
			added = append(added, c)
		}
	}
	return gone, added
}

// DeleteUser deletes the user, its apps, credentials, password, secret, sessions,
// tokens and linked accounts in one MULTI in its slot, then its index entries
// (P idx:expiring included), app locators, app name and redirect-URI entries
// and claims (identities included).
func (s *Store) DeleteUser(ctx context.Context, id string, check ...func(core.User) error) (err error) {
	const op = "redisstore.DeleteUser"
	defer s.replicated(ctx, op, &err)
	if !validID(id) {
		return core.Errorf(core.NotFound, op, "user %q not found", id)
	}
	if err := s.bounds.step(ctx, s.indexesReady); err != nil { // a write step: the move of old list indexes goes on beyond it
		return fail(ctx, op, err)
	}
	defer func() { s.changed(ctx, id, err) }()
	var after cleanup
	err = s.watch(ctx, op, "user "+strconv.Quote(id), func(ctx context.Context, tx *redis.Tx) error {
		after = cleanup{}
		data, err := tx.Get(ctx, s.k.user(id)).Result()
		if errors.Is(err, redis.Nil) {
			return core.Errorf(core.NotFound, op, "user %q not found", id)
		}
		if err != nil {
			return err
		}
		r, err := decode[userRecord](op, s.k.user(id), data)
		if err != nil {
			return err
		}
		if err := runChecks(r.user(), check); err != nil {
			return err
		}
		var appsCmd, credsCmd *redis.ZSliceCmd
		if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			appsCmd = p.ZRangeWithScores(ctx, s.k.apps(id), 0, -1)
			credsCmd = p.ZRangeWithScores(ctx, s.k.creds(id), 0, -1)
			return nil
		}); err != nil {
			return err
		}
		appIDs, appSeqs := zMembers(appsCmd.Val())
		members, credSeqs := zMembers(credsCmd.Val())
		sessions, err := s.sessionKeysOf(ctx, tx, id)
		if err != nil {
			return err
		}
		del := []string{ // consumerCreds(id, id): the layout before December 2026's
			s.k.user(id), s.k.apps(id), s.k.appNames(id), s.k.creds(id), s.k.consumerCreds(id, id),
			s.k.password(id), s.k.secret(id), s.k.sessions(id), s.k.tokens(id), s.k.linked(id),
		}
		del = append(del, sessions...)
		after.entries = append(after.entries, s.listEntry(listUsers, id, r.Number))
		after.zrem(s.k.idx(idxExpiring), id)
		u := r.user()
		reg, err := s.groupRegistry(ctx, op)
		if err != nil {
			return err
		}
		after.entries = append(after.entries, s.userIndexEntries(u, u.Number, reg)...)
		for _, g := range u.Groups {
			after.zrem(s.k.groupMembers(g), id) // a group's entry even when it is gone
		}
		if len(appIDs) > 0 {
			appKeys := make([]string, len(appIDs))
			for i, a := range appIDs {
				appKeys[i] = s.k.app(id, a)
			}
			// Watch the apps too: a rename between here and the MULTI would
			// leave its new name's entry behind.
			if err := tx.Watch(ctx, appKeys...).Err(); err != nil {
				return err
			}
			recs, err := tx.MGet(ctx, appKeys...).Result()
			if err != nil {
				return err
			}
			for i, a := range appIDs {
				del = append(del, appKeys[i], s.k.consumerCreds(id, a))
				after.entries = append(after.entries, s.listEntry(listApps, appRef(id, a), appSeqs[i]))
				after.claims = append(after.claims, s.appClaim(a))
				if str, ok := recs[i].(string); ok {
					if ar, err := decode[appRecord](op, appKeys[i], str); err == nil {
						after.srem(s.k.appName(ar.Name), appRef(id, a))
						if ar.RedirectURI != "" {
							after.srem(s.k.appRedirect(ar.RedirectURI), appRef(id, a))
						}
					}
				}
			}
		}
		for i, m := range members {
			typ, cid, ok := parseCredMember(m)
			if !ok {
				continue
			}
			del = append(del, s.k.cred(id, typ, cid))
			after.entries = append(after.entries, s.listEntry(listCreds, credRef(id, typ, cid), credSeqs[i]))
			if typ.Keyed() {
				after.claims = append(after.claims, s.keyIDClaim(typ, cid))
			}
		}
		if cs, err := s.userClaims(r.user()); err == nil {
			after.claims = append(after.claims, cs...)
		}
		if err := after.readClaims(ctx, s, id); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, del...)
			return nil
		})
		return err
	}, s.k.user(id), s.k.apps(id), s.k.creds(id), s.k.sessions(id), s.k.tokens(id))
	if err != nil {
		return fail(ctx, op, err)
	}
	if s.interrupted() {
		return errInterrupted
	}
	return fail(ctx, op, after.run(ctx, s))
}

// cleanup is the work a delete does outside the entity's slot after its MULTI:
// index and name-set removals, and the release of the claims it read while the
// entity still held them.
type cleanup struct {
	entries []entry
	claims  []claim
	held    []held
}

// zMembers splits a ZRANGE WITHSCORES reply into its members and their scores.
func zMembers(zs []redis.Z) ([]string, []int64) {
	ms, ns := make([]string, len(zs)), make([]int64, len(zs))
	for i, z := range zs {
		ms[i], _ = z.Member.(string)
		ns[i] = int64(z.Score)
	}
	return ms, ns
}

func (c *cleanup) zrem(key, member string) {
	c.entries = append(c.entries, entry{key: key, member: member})
}
func (c *cleanup) srem(key, member string) {
	c.entries = append(c.entries, entry{key: key, member: member, set: true})
}

// readClaims reads the current values of c.claims and keeps those owned by owner.
func (c *cleanup) readClaims(ctx context.Context, s *Store, owner string) error {
	var err error
	c.held, err = s.heldByOne(ctx, c.claims, owner)
	return err
}

// run does the cleanup in one pipeline (two on a Cluster: dropEntries).
func (c *cleanup) run(ctx context.Context, s *Store) error {
	ctx, cancel := s.bounds.cleanup(ctx)
	defer cancel()
	return timedOut(ctx, s.dropEntries(ctx, c.entries, c.held))
}

// ListUsers returns one page of users in Number order.
func (s *Store) ListUsers(ctx context.Context, opt core.ListOptions) (core.Page[core.User], error) {
	const op = "redisstore.ListUsers"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	if !opt.Users.IsZero() {
		p, err := s.listFiltered(ctx, opt)
		return p, fail(ctx, op, err)
	}
	entries, next, total, err := s.pageList(ctx, listUsers, opt)
	if err != nil {
		return core.Page[core.User]{}, fail(ctx, op, err)
	}
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = s.k.user(e.member)
	}
	vals, oks, err := s.getMany(ctx, keys)
	if err != nil {
		return core.Page[core.User]{}, fail(ctx, op, err)
	}
	out := core.Page[core.User]{Items: []core.User{}, NextKey: next, Total: total}
	for i := range entries {
		if !oks[i] {
			continue
		}
		r, err := s.decodeUser(op, keys[i], vals[i])
		if err != nil {
			return core.Page[core.User]{}, err
		}
		out.Items = append(out.Items, r.user())
	}
	return out, nil
}
