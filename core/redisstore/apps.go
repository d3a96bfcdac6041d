package redisstore

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// CreateApp stores a, assigning a.Seq. Invalid if the owner does not exist;
// Conflict if the owner has an app of that name, or the id is taken.
func (s *Store) CreateApp(ctx context.Context, a *core.App) (err error) {
	const op = "redisstore.CreateApp"
	defer s.replicated(ctx, op, &err)
	if a == nil || !validID(a.ID) {
		return core.Errorf(core.Invalid, op, "app id is not valid")
	}
	if !validID(a.UserID) {
		return core.Errorf(core.Invalid, op, "user %q not found", a.UserID)
	}
	uid := a.UserID
	appKey, names := s.k.app(uid, a.ID), s.k.appNames(uid)
	ref := appRef(uid, a.ID)
	seq, err := s.create(ctx, create{
		op: op, owner: uid, claims: []claim{s.appClaim(a.ID)}, seq: listApps, number: a.Seq,
		write: func(ctx context.Context, seq int64) error {
			na := *a
			na.Seq = seq
			data, err := encode(op, toAppRecord(na))
			if err != nil {
				return err
			}
			return s.watch(ctx, op, "app", func(ctx context.Context, tx *redis.Tx) error {
				var user, app *redis.IntCmd
				var name *redis.StringCmd
				if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
					user = p.Exists(ctx, s.k.user(uid))
					name = p.HGet(ctx, names, a.Name)
					app = p.Exists(ctx, appKey)
					return nil
				}); err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				switch {
				case user.Val() == 0:
					return core.Errorf(core.Invalid, op, "user %q not found", uid)
				case name.Val() != "":
					return core.Errorf(core.Conflict, op, "app name %q is taken for user %s", a.Name, uid)
				case app.Val() != 0:
					return core.Errorf(core.Conflict, op, "app id %q is taken", a.ID)
				}
				_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, appKey, data, 0)
					p.ZAdd(ctx, s.k.apps(uid), redis.Z{Score: float64(seq), Member: a.ID})
					p.HSet(ctx, names, a.Name, a.ID)
					return nil
				})
				return err
			}, s.k.user(uid), names, appKey)
		},
		index: func(seq int64) []entry {
			es := []entry{
				s.listEntry(listApps, ref, seq),
				{key: s.k.appName(a.Name), member: ref, set: true},
			}
			if a.RedirectURI != "" {
				es = append(es, entry{key: s.k.appRedirect(a.RedirectURI), member: ref, set: true})
			}
			return es
		},
		undo: func(ctx context.Context) bool {
			_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, appKey)
				p.ZRem(ctx, s.k.apps(uid), a.ID)
				p.HDel(ctx, names, a.Name)
				return nil
			})
			return err == nil
		},
	})
	if err != nil {
		return err
	}
	a.Seq = seq
	return nil
}

// appOwner returns the owner of the app from its locator, "" if there is none.
func (s *Store) appOwner(ctx context.Context, appID string) (string, error) {
	if !validID(appID) {
		return "", nil
	}
	v, ok, err := s.claimValue(ctx, s.appClaim(appID))
	if err != nil || !ok {
		return "", err
	}
	return claimOwner(v), nil
}

// appAt names an app by its owner and id.
type appAt struct{ uid, id string }

// readApps reads apps and their owners' records in one pipeline (each app with its
// owner in one slot), filling OwnerActive; missing apps are left out.
func (s *Store) readApps(ctx context.Context, op string, refs []appAt) ([]core.App, error) {
	keys := make([]string, 0, 2*len(refs))
	for _, r := range refs {
		keys = append(keys, s.k.app(r.uid, r.id), s.k.user(r.uid))
	}
	vals, oks, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]core.App, 0, len(refs))
	for i := range refs {
		if !oks[2*i] {
			continue
		}
		ar, err := decode[appRecord](op, keys[2*i], vals[2*i])
		if err != nil {
			return nil, err
		}
		a := ar.app()
		if oks[2*i+1] {
			if ur, err := decode[userRecord](op, keys[2*i+1], vals[2*i+1]); err == nil {
				a.OwnerActive = ur.IsActive
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// GetApp returns the app with that id, OwnerActive filled, or NotFound.
func (s *Store) GetApp(ctx context.Context, id string) (core.App, error) {
	const op = "redisstore.GetApp"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	uid, err := s.appOwner(ctx, id)
	if err != nil {
		return core.App{}, fail(ctx, op, err)
	}
	if uid != "" && validID(uid) {
		apps, err := s.readApps(ctx, op, []appAt{{uid, id}})
		if err != nil {
			return core.App{}, fail(ctx, op, err)
		}
		if len(apps) == 1 {
			return apps[0], nil
		}
	}
	return core.App{}, core.Errorf(core.NotFound, op, "app %q not found", id)
}

// AppsByName returns every app of that exact name, across owners, in Seq order.
func (s *Store) AppsByName(ctx context.Context, name string) ([]core.App, error) {
	return s.appsInSet(ctx, "redisstore.AppsByName", s.k.appName(name), func(a core.App) bool { return a.Name == name })
}

// AppsByRedirectURI returns every app whose RedirectURI is exactly uri, across
// owners, in Seq order, from the set P appredirect:<hex>; no app is indexed
// under the empty URI.
func (s *Store) AppsByRedirectURI(ctx context.Context, uri string) ([]core.App, error) {
	if uri == "" {
		return []core.App{}, nil
	}
	return s.appsInSet(ctx, "redisstore.AppsByRedirectURI", s.k.appRedirect(uri), func(a core.App) bool { return a.RedirectURI == uri })
}

// appsInSet reads the apps of the set of app refs key that match (an entry
// whose app is gone or no longer matches is a leftover that Doctor removes),
// in Seq order.
func (s *Store) appsInSet(ctx context.Context, op, key string, match func(core.App) bool) ([]core.App, error) {
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	members, err := s.rdb.SMembers(ctx, key).Result()
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	var refs []appAt
	for _, m := range members {
		if at, ok := parseAppRef(m); ok {
			refs = append(refs, at)
		}
	}
	apps, err := s.readApps(ctx, op, refs)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	apps = slices.DeleteFunc(apps, func(a core.App) bool { return !match(a) })
	slices.SortFunc(apps, func(a, b core.App) int { return cmp.Compare(a.Seq, b.Seq) })
	return apps, nil
}

// UpdateApp applies fn atomically; changes to ID, Seq, UserID and CreatedAt are
// undone. A rename is Conflict when the owner has another app of that name. A
// changed name or RedirectURI moves the app's entry between sets after the
// write.
func (s *Store) UpdateApp(ctx context.Context, id string, fn func(*core.App) error) (_ core.App, err error) {
	const op = "redisstore.UpdateApp"
	defer s.replicated(ctx, op, &err)
	notFound := core.Errorf(core.NotFound, op, "app %q not found", id)
	uid, err := stepValue(ctx, s.bounds, func(ctx context.Context) (string, error) { return s.appOwner(ctx, id) })
	if err != nil {
		return core.App{}, fail(ctx, op, err)
	}
	if uid == "" || !validID(uid) {
		return core.App{}, notFound
	}
	defer func() { s.changed(ctx, uid, err) }()
	key, names := s.k.app(uid, id), s.k.appNames(uid)
	var old, next core.App
	err = s.watch(ctx, op, "app "+id, func(ctx context.Context, tx *redis.Tx) error {
		var appCmd, userCmd *redis.StringCmd
		if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			appCmd = p.Get(ctx, key)
			userCmd = p.Get(ctx, s.k.user(uid))
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		data, err := appCmd.Result()
		if errors.Is(err, redis.Nil) {
			return notFound
		}
		r, err := decode[appRecord](op, key, data)
		if err != nil {
			return err
		}
		old = r.app()
		r2, _ := decode[appRecord](op, key, data)
		next = r2.app()
		if err := fn(&next); err != nil {
			return &fnError{err}
		}
		next.ID, next.Seq, next.UserID, next.CreatedAt = old.ID, old.Seq, old.UserID, old.CreatedAt
		next.OwnerActive = false
		if u, err := userCmd.Result(); err == nil {
			if ur, err := decode[userRecord](op, s.k.user(uid), u); err == nil {
				next.OwnerActive = ur.IsActive
			}
		}
		if next.Name != old.Name {
			holder, err := tx.HGet(ctx, names, next.Name).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			if holder != "" && holder != id {
				return core.Errorf(core.Conflict, op, "app name %q is taken for user %s", next.Name, uid)
			}
		}
		out, err := encode(op, toAppRecord(next))
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, out, 0)
			if next.Name != old.Name {
				p.HDel(ctx, names, old.Name)
				p.HSet(ctx, names, next.Name, id)
			}
			return nil
		})
		return err
	}, key, names)
	if err != nil {
		return core.App{}, fail(ctx, op, err)
	}
	if next.Name != old.Name || next.RedirectURI != old.RedirectURI {
		ref := appRef(uid, id)
		err := s.bounds.step(ctx, func(ctx context.Context) error {
			_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				if next.Name != old.Name {
					p.SAdd(ctx, s.k.appName(next.Name), ref)
					p.SRem(ctx, s.k.appName(old.Name), ref)
				}
				if next.RedirectURI != old.RedirectURI {
					if next.RedirectURI != "" {
						p.SAdd(ctx, s.k.appRedirect(next.RedirectURI), ref)
					}
					if old.RedirectURI != "" {
						p.SRem(ctx, s.k.appRedirect(old.RedirectURI), ref)
					}
				}
				return nil
			})
			return err
		})
		if err != nil {
			return core.App{}, fail(ctx, op, err)
		}
	}
	return next, nil
}

// DeleteApp deletes the app, its credentials and its OAuth tokens in one MULTI in
// the owner's slot, then its index entries, name and redirect-URI entries,
// locator and keyId claims.
func (s *Store) DeleteApp(ctx context.Context, id string, check ...func(core.App) error) (err error) {
	const op = "redisstore.DeleteApp"
	defer s.replicated(ctx, op, &err)
	notFound := core.Errorf(core.NotFound, op, "app %q not found", id)
	uid, err := stepValue(ctx, s.bounds, func(ctx context.Context) (string, error) { return s.appOwner(ctx, id) })
	if err != nil {
		return fail(ctx, op, err)
	}
	if uid == "" || !validID(uid) {
		return notFound
	}
	if err := s.writeReady(ctx); err != nil {
		return fail(ctx, op, err)
	}
	defer func() { s.changed(ctx, uid, err) }()
	key, cc := s.k.app(uid, id), s.k.consumerCreds(uid, id)
	var after cleanup
	err = s.watch(ctx, op, "app "+id, func(ctx context.Context, tx *redis.Tx) error {
		after = cleanup{}
		var appCmd *redis.StringCmd
		var credsCmd *redis.ZSliceCmd
		if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			appCmd = p.Get(ctx, key)
			credsCmd = p.ZRangeWithScores(ctx, cc, 0, -1)
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		data, err := appCmd.Result()
		if errors.Is(err, redis.Nil) {
			return notFound
		}
		r, err := decode[appRecord](op, key, data)
		if err != nil {
			return err
		}
		if err := runChecks(r.app(), check); err != nil {
			return err
		}
		tokenKeys, tokenMembers, err := s.appTokens(ctx, tx, uid, id)
		if err != nil {
			return err
		}
		del := append([]string{key, cc}, tokenKeys...)
		var members []any
		ms, seqs := zMembers(credsCmd.Val())
		for i, m := range ms {
			typ, cid, ok := parseCredMember(m)
			if !ok {
				continue
			}
			del = append(del, s.k.cred(uid, typ, cid))
			members = append(members, m)
			after.entries = append(after.entries, s.listEntry(listCreds, credRef(uid, typ, cid), seqs[i]))
			if typ.Keyed() {
				after.claims = append(after.claims, s.keyIDClaim(typ, cid))
			}
		}
		ref := appRef(uid, id)
		after.entries = append(after.entries, s.listEntry(listApps, ref, r.Seq))
		after.srem(s.k.appName(r.Name), ref)
		if r.RedirectURI != "" {
			after.srem(s.k.appRedirect(r.RedirectURI), ref)
		}
		after.claims = append(after.claims, s.appClaim(id))
		if err := after.readClaims(ctx, s, uid); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, del...)
			p.ZRem(ctx, s.k.apps(uid), id)
			p.HDel(ctx, s.k.appNames(uid), r.Name)
			if len(members) > 0 {
				p.ZRem(ctx, s.k.creds(uid), members...)
			}
			if len(tokenMembers) > 0 {
				p.ZRem(ctx, s.k.tokens(uid), tokenMembers...)
			}
			return nil
		})
		return err
	}, key, cc, s.k.tokens(uid))
	if err != nil {
		return fail(ctx, op, err)
	}
	if s.interrupted() {
		return errInterrupted
	}
	return fail(ctx, op, after.run(ctx, s))
}

// ListApps returns one page of apps in Seq order, one owner's when opt.UserID is set.
func (s *Store) ListApps(ctx context.Context, opt core.ListOptions) (core.Page[core.App], error) {
	const op = "redisstore.ListApps"
	ctx, cancel := s.bounds.reading(ctx)
	defer cancel()
	var entries []pageEntry
	var next, total int64
	var err error
	if opt.UserID != "" {
		if !validID(opt.UserID) {
			return core.Page[core.App]{Items: []core.App{}}, nil
		}
		entries, next, total, err = s.page(ctx, s.k.apps(opt.UserID), opt)
	} else {
		entries, next, total, err = s.pageList(ctx, listApps, opt)
	}
	if err != nil {
		return core.Page[core.App]{}, fail(ctx, op, err)
	}
	refs := make([]appAt, 0, len(entries))
	for _, e := range entries {
		if opt.UserID != "" {
			refs = append(refs, appAt{opt.UserID, e.member})
		} else if at, ok := parseAppRef(e.member); ok {
			refs = append(refs, at)
		}
	}
	apps, err := s.readApps(ctx, op, refs)
	if err != nil {
		return core.Page[core.App]{}, fail(ctx, op, err)
	}
	return core.Page[core.App]{Items: apps, NextKey: next, Total: total}, nil
}
