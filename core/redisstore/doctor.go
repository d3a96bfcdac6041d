package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
)

// doctorBatch is the SCAN / ZSCAN page size of Doctor.
const doctorBatch = 500

// Doctor finds leftovers of interrupted writes and, with repair, removes them:
//   - stale claims, app locators and client key lookups (owner gone or no
//     longer holding the name, a lookup's key or client gone; older than
//     ClaimStaleAfter), in their buckets (HSCAN) or under old claim keys,
//     removed by compare-and-delete;
//   - claim keys of the layout before claim buckets, reported in
//     DanglingIndex and moved into their buckets (oldClaims); once none is
//     left, repair writes the marker P layout:claims, after which no process
//     reads old claim keys;
//   - list-index, app-name and app redirect-URI entries whose record is gone
//     (or renamed, or has another RedirectURI), and records missing from their
//     list index or sets (a create interrupted after its write, or an app
//     stored before its set existed), reported in DanglingIndex and
//     re-indexed; likewise P
//     idx:expiring entries whose user is gone or has another ExpiresAt (none
//     included), and users with an ExpiresAt missing from it;
//   - credential scope grants whose registration is no longer in the registry,
//     removed by rewriting the credential.
//   - the users' own consumer lists P u:{uid}:cc:<uid> of the layout before
//     December 2026, which nothing reads any more, reported in DanglingIndex
//     and deleted.
//
// It scans every key under the prefix (on every master of a cluster), so it is
// never on a request path. It takes as long as the keyspace needs, but each
// of its steps (a page of the scan and the few pipelines that check it, one
// credential's grants) is bounded by Options.WriteTimeout.
func (s *Store) Doctor(ctx context.Context, repair bool) (core.DoctorReport, error) {
	const op = "redisstore.Doctor"
	var now time.Time
	err := s.bounds.step(ctx, func(ctx context.Context) (err error) {
		now, err = s.now(ctx)
		return err
	})
	if err != nil {
		return core.DoctorReport{}, fail(ctx, op, err)
	}
	d := &doctor{s: s, op: op, repair: repair, now: now}
	if err := s.indexesReady(ctx); err != nil { // the list indexes of the layout before the buckets
		return core.DoctorReport{}, fail(ctx, op, err)
	}
	if err := s.scan(ctx, d.keys); err != nil {
		return core.DoctorReport{}, fail(ctx, op, err)
	}
	for _, idx := range []string{listUsers, listApps, listCreds, listClients} {
		if err := d.index(ctx, idx); err != nil {
			return core.DoctorReport{}, fail(ctx, op, err)
		}
	}
	if err := d.expiringIndex(ctx); err != nil {
		return core.DoctorReport{}, fail(ctx, op, err)
	}
	if err := d.filterIndexes(ctx, d.ixKeys, d.nameBuckets); err != nil {
		return core.DoctorReport{}, fail(ctx, op, err)
	}
	if repair && d.oldLeft.Load() == 0 && s.oldClaims() {
		// Every claim is in its bucket: no process needs to read old keys.
		err := s.bounds.step(ctx, func(ctx context.Context) error {
			return s.rdb.Set(ctx, s.k.layoutClaims(), claimsInBuckets, 0).Err()
		})
		if err != nil {
			return core.DoctorReport{}, fail(ctx, op, err)
		}
		s.layout.bucketsOnly.Store(true)
	}
	r := core.DoctorReport{
		StaleClaims:   d.sorted(d.staleClaims),
		DanglingIndex: d.sorted(d.dangling),
		StaleGrants:   d.sorted(d.staleGrants),
		Repaired:      repair,
	}
	return r, nil
}

// scan calls fn with every page of keys under the prefix, on each master of a
// cluster (concurrently) or on the one server. Each SCAN is a step; fn bounds
// its own.
func (s *Store) scan(ctx context.Context, fn func(context.Context, []string) error) error {
	match := escapeGlob(s.k.p) + "*"
	one := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			var keys []string
			var next uint64
			err := s.bounds.step(ctx, func(ctx context.Context) (err error) {
				keys, next, err = c.Scan(ctx, cursor, match, doctorBatch).Result()
				return err
			})
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				if err := fn(ctx, keys); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	}
	return one(ctx, s.rdb)
}

// escapeGlob escapes the glob characters of SCAN MATCH.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// doctor is one Doctor run; keys may be called concurrently.
type doctor struct {
	s      *Store
	op     string
	repair bool
	now    time.Time

	mu                                 sync.Mutex
	staleClaims, dangling, staleGrants []string
	ixKeys                             []string     // the users' filter indexes found by the scan
	nameBuckets                        []int64      // the username index's buckets found by the scan
	oldLeft                            atomic.Int64 // old claim keys found and not removed
}

func (d *doctor) add(list *[]string, format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	*list = append(*list, fmt.Sprintf(format, args...))
}

func (d *doctor) sorted(l []string) []string {
	slices.Sort(l)
	if l == nil {
		return []string{}
	}
	return l
}

// record is a key Doctor checks one by one, with its parts.
type record struct {
	keyParts
	full string
}

// keys checks one SCAN page: claims and locators, app-name and redirect-URI
// sets, and user, app and credential records (then the grants of the
// credentials), each a step. Client records are checked against their list
// index, client key lookups as claims.
func (d *doctor) keys(ctx context.Context, keys []string) error {
	var olds []claim     // claim keys of the layout before claim buckets
	var buckets []string // P cb:<kind>:{<n>}
	var sets, records []record
	var oldLists []string // P u:{uid}:cc:<uid>, a user's own consumer list, no longer kept
	for _, full := range keys {
		p, ok := d.s.k.parseKey(full)
		if !ok {
			continue
		}
		switch p.kind {
		case keyClaim:
			olds = append(olds, d.s.newClaim(p.sub, p.name, ""))
		case keyAppLocator:
			olds = append(olds, d.s.newClaim(kindApp, p.id, ""))
		case keyClientKey:
			olds = append(olds, d.s.newClaim(kindClientKey, p.id, ""))
		case keyClaimBucket:
			buckets = append(buckets, full)
		case keyAppName, keyAppRedirect:
			sets = append(sets, record{p, full})
		case keyUser, keyApp, keyCred, keyClient:
			records = append(records, record{p, full})
		case keyConsumerCreds:
			if p.id == p.uid {
				oldLists = append(oldLists, full)
			}
		case keyGroupMembers, keyTagUsers, keyInactive:
			d.mu.Lock()
			d.ixKeys = append(d.ixKeys, full)
			d.mu.Unlock()
		case keyNameBucket:
			d.mu.Lock()
			d.nameBuckets = append(d.nameBuckets, p.num)
			d.mu.Unlock()
		}
	}
	if err := d.s.bounds.step(ctx, func(ctx context.Context) error { return d.oldClaims(ctx, olds) }); err != nil {
		return err
	}
	if err := d.buckets(ctx, buckets); err != nil {
		return err
	}
	if err := d.s.bounds.step(ctx, func(ctx context.Context) error { return d.oldLists(ctx, oldLists) }); err != nil {
		return err
	}
	for _, set := range sets {
		if err := d.s.bounds.step(ctx, func(ctx context.Context) error { return d.appSet(ctx, set) }); err != nil {
			return err
		}
	}
	var creds []record
	err := d.s.bounds.step(ctx, func(ctx context.Context) (err error) {
		creds, err = d.records(ctx, records)
		return err
	})
	if err != nil {
		return err
	}
	return d.grants(ctx, creds)
}

// oldLists reports, and with repair deletes, the users' own consumer lists
// (P u:{uid}:cc:<uid>) of the layout before December 2026: a user's own
// credentials are now its creds less its apps' (ownCredsScript), so they are
// read by nothing. Repair only once every instance runs a version that no
// longer writes them.
func (d *doctor) oldLists(ctx context.Context, keys []string) error {
	for _, k := range keys {
		d.add(&d.dangling, "%s (a user's own consumer list, no longer kept)", strings.TrimPrefix(k, d.s.k.p))
	}
	if !d.repair || len(keys) == 0 {
		return nil
	}
	_, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
	return err
}

// buckets reports the free claims of claim buckets (HSCAN, a page of every
// bucket at once a step), and with repair removes them.
func (d *doctor) buckets(ctx context.Context, keys []string) error {
	cursors := make([]uint64, len(keys))
	for len(keys) > 0 {
		var cs []claim
		var vals []string
		scans := make([]*redis.ScanCmd, len(keys))
		err := d.s.bounds.step(ctx, func(ctx context.Context) error {
			_, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, k := range keys {
					scans[i] = p.HScan(ctx, k, cursors[i], "", doctorBatch)
				}
				return nil
			})
			return err
		})
		if err != nil {
			return err
		}
		var more []string
		var moreCursors []uint64
		for i, k := range keys {
			p, _ := d.s.k.parseKey(k)
			fields, next := scans[i].Val()
			for j := 0; j+1 < len(fields); j += 2 {
				c := d.s.newClaim(p.sub, fields[j], "")
				if c.bucket != k {
					continue // a field in a bucket not its own: no lookup finds it
				}
				cs, vals = append(cs, c), append(vals, fields[j+1])
			}
			if next != 0 {
				more, moreCursors = append(more, k), append(moreCursors, next)
			}
		}
		err = d.s.bounds.step(ctx, func(ctx context.Context) error {
			free, err := d.claims(ctx, cs, vals)
			if err != nil || !d.repair || len(free) == 0 {
				return err
			}
			hs := make([]held, len(free))
			for i, j := range free {
				hs[i] = held{claim: cs[j], val: vals[j]}
			}
			_, err = d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				releaseAll(ctx, p, hs)
				return nil
			})
			return err
		})
		if err != nil {
			return err
		}
		keys, cursors = more, moreCursors
	}
	return nil
}

// oldClaims reports the claim keys of the layout before claim buckets (P
// claim:<kind>:<name>, P app:<appid>, P clientkey:<hex>): a free one as any
// free claim, the others in DanglingIndex. With repair it removes the free
// ones and moves the others into their buckets: HSETNX of the field with
// the key's value, then, once the field holds that value, compare-and-delete
// of the key. A key whose field holds another value is left (d.oldLeft).
func (d *doctor) oldClaims(ctx context.Context, cs []claim) error {
	if len(cs) == 0 {
		return nil
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = d.s.oldKey(c)
	}
	vs, oks, err := d.s.getMany(ctx, keys)
	if err != nil {
		return err
	}
	var found []claim
	var vals []string
	for i, c := range cs {
		if oks[i] {
			found, vals = append(found, c), append(vals, vs[i])
		}
	}
	free, err := d.claims(ctx, found, vals)
	if err != nil {
		return err
	}
	var del []held // old keys to delete: free, or moved
	var move []int
	for i, c := range found {
		if slices.Contains(free, i) {
			del = append(del, held{claim: c, oldVal: vals[i], oldKey: d.s.oldKey(c)})
			continue
		}
		d.add(&d.dangling, "%s (a claim key of the layout before claim buckets; repair moves it into its bucket)", strings.TrimPrefix(d.s.oldKey(c), d.s.k.p))
		move = append(move, i)
	}
	if !d.repair {
		d.oldLeft.Add(int64(len(found)))
		return nil
	}
	if len(move) > 0 {
		sets := make([]*redis.BoolCmd, len(move))
		gets := make([]*redis.StringCmd, len(move))
		_, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range move {
				sets[j] = p.HSetNX(ctx, found[i].bucket, found[i].name, vals[i])
				gets[j] = p.HGet(ctx, found[i].bucket, found[i].name)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for j, i := range move {
			if v, _, err := optional(gets[j]); err == nil && v == vals[i] {
				del = append(del, held{claim: found[i], oldVal: vals[i], oldKey: d.s.oldKey(found[i])})
			} else {
				d.oldLeft.Add(1)
				d.add(&d.dangling, "%s (its bucket holds another claim of the name; left)", strings.TrimPrefix(d.s.oldKey(found[i]), d.s.k.p))
			}
		}
	}
	_, err = d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		releaseAll(ctx, p, del)
		return nil
	})
	return err
}

// claims reports the claims and locators cs, holding vals, that are free:
// older than the window and not held by their owner. It returns their indexes.
func (d *doctor) claims(ctx context.Context, cs []claim, vals []string) ([]int, error) {
	var old []claim
	var owners, values []string
	var at []int
	for i, c := range cs {
		owner, t, ok := parseClaim(vals[i])
		if ok && d.now.Sub(t) < d.s.staleAfter {
			continue
		}
		old = append(old, c)
		owners = append(owners, owner)
		values = append(values, vals[i])
		at = append(at, i)
	}
	if len(old) == 0 {
		return nil, nil
	}
	holding, err := d.s.holds(ctx, old, owners)
	if err != nil {
		return nil, err
	}
	var free []int
	for i, c := range old {
		if holding[i] {
			continue
		}
		age := "unknown age"
		if _, t, ok := parseClaim(values[i]); ok {
			age = d.now.Sub(t).Round(time.Second).String() + " old"
		}
		switch c.kind {
		case kindApp:
			d.add(&d.dangling, "app:%s (owner %s, app gone, %s)", c.name, owners[i], age)
		case kindClientKey:
			// The hash is shortened: enough to tell lookups apart.
			d.add(&d.dangling, "clientkey:%s… (key %s, key or client gone, %s)", c.name[:12], owners[i], age)
		default:
			d.add(&d.staleClaims, "%s:%s (owner %s, %s)", c.kind, c.name, owners[i], age)
		}
		free = append(free, at[i])
	}
	return free, nil
}

// appSet reports the entries of one app-name or redirect-URI set whose app
// is gone or has another name or RedirectURI.
func (d *doctor) appSet(ctx context.Context, set record) error {
	members, err := d.s.rdb.SMembers(ctx, set.full).Result()
	if err != nil {
		return err
	}
	keys := make([]string, len(members)) // "" for a malformed member
	for i, m := range members {
		if at, ok := parseAppRef(m); ok {
			keys[i] = d.s.k.app(at.uid, at.id)
		}
	}
	vals, oks, err := d.getSome(ctx, keys)
	if err != nil {
		return err
	}
	var gone []any
	for i, m := range members {
		if oks[i] {
			if r, err := decode[appRecord](d.op, keys[i], vals[i]); err == nil && d.inSet(set, r) {
				continue
			}
		}
		if set.kind == keyAppRedirect {
			d.add(&d.dangling, "appredirect:%s %s", set.id, m)
		} else {
			d.add(&d.dangling, "appname:%s %s", set.name, m)
		}
		gone = append(gone, m)
	}
	if d.repair && len(gone) > 0 {
		return d.s.rdb.SRem(ctx, set.full, gone...).Err()
	}
	return nil
}

// inSet reports whether app r belongs in the app-name or redirect-URI set.
func (d *doctor) inSet(set record, r appRecord) bool {
	if set.kind == keyAppRedirect {
		return r.RedirectURI != "" && redirectHash(r.RedirectURI) == set.id
	}
	return r.Name == set.name
}

// getSome is getMany that skips empty keys.
func (d *doctor) getSome(ctx context.Context, keys []string) ([]string, []bool, error) {
	var sub []string
	var pos []int
	for i, k := range keys {
		if k != "" {
			sub = append(sub, k)
			pos = append(pos, i)
		}
	}
	v, o, err := d.s.getMany(ctx, sub)
	if err != nil {
		return nil, nil, err
	}
	vals, oks := make([]string, len(keys)), make([]bool, len(keys))
	for j, i := range pos {
		vals[i], oks[i] = v[j], o[j]
	}
	return vals, oks, nil
}

// records checks that user, app and credential records are in their list index
// (and apps in their name and redirect-URI sets), and returns the credentials with grants, for
// grants to check.
func (d *doctor) records(ctx context.Context, shs []record) ([]record, error) {
	if len(shs) == 0 {
		return nil, nil
	}
	keys := make([]string, len(shs))
	for i, sh := range shs {
		keys[i] = sh.full
	}
	vals, oks, err := d.s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	type listed struct {
		idx, member string
		score       int64
		name        string // apps: the name set to check
		redirect    string // apps: the redirect-URI set to check, if any
	}
	var entries []listed
	var creds []record
	var expiring []pageEntry // users with an ExpiresAt: uid, Unix microseconds
	for i, sh := range shs {
		if !oks[i] {
			continue
		}
		switch sh.kind {
		case keyUser:
			r, err := decode[userRecord](d.op, sh.full, vals[i])
			if err != nil || r.ID != sh.uid {
				continue
			}
			entries = append(entries, listed{idx: listUsers, member: sh.uid, score: r.Number})
			if !r.ExpiresAt.IsZero() {
				expiring = append(expiring, pageEntry{member: sh.uid, score: r.ExpiresAt.UnixMicro()})
			}
		case keyApp:
			r, err := decode[appRecord](d.op, sh.full, vals[i])
			if err != nil {
				continue
			}
			entries = append(entries, listed{idx: listApps, member: appRef(sh.uid, sh.id), score: r.Seq, name: r.Name, redirect: r.RedirectURI})
		case keyClient:
			r, err := decode[clientRecord](d.op, sh.full, vals[i])
			if err != nil || r.ID != sh.cid {
				continue
			}
			entries = append(entries, listed{idx: listClients, member: sh.cid, score: r.Seq})
		case keyCred:
			r, err := decode[credRecord](d.op, sh.full, vals[i])
			if err != nil {
				continue
			}
			entries = append(entries, listed{idx: listCreds, member: credRef(sh.uid, sh.typ, sh.id), score: r.Seq})
			if len(r.Scopes) > 0 {
				creds = append(creds, sh)
			}
		}
	}
	scores := make([]*redis.FloatCmd, len(entries))
	inSet := make([]*redis.BoolCmd, len(entries))
	inRedirect := make([]*redis.BoolCmd, len(entries))
	_, err = d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range entries {
			scores[i] = p.ZScore(ctx, d.s.listEntry(e.idx, e.member, e.score).key, e.member)
			if e.name != "" {
				inSet[i] = p.SIsMember(ctx, d.s.k.appName(e.name), e.member)
			}
			if e.redirect != "" {
				inRedirect[i] = p.SIsMember(ctx, d.s.k.appRedirect(e.redirect), e.member)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var fix []func(redis.Pipeliner)
	for i, e := range entries {
		if errors.Is(scores[i].Err(), redis.Nil) {
			d.add(&d.dangling, "idx:%s missing %s", e.idx, e.member)
			fix = append(fix, func(p redis.Pipeliner) { d.s.listEntry(e.idx, e.member, e.score).add(ctx, p) })
		}
		if inSet[i] != nil && inSet[i].Err() == nil && !inSet[i].Val() {
			d.add(&d.dangling, "appname:%s missing %s", e.name, e.member)
			fix = append(fix, func(p redis.Pipeliner) { p.SAdd(ctx, d.s.k.appName(e.name), e.member) })
		}
		if inRedirect[i] != nil && inRedirect[i].Err() == nil && !inRedirect[i].Val() {
			d.add(&d.dangling, "appredirect:%s missing %s (%q)", redirectHash(e.redirect), e.member, e.redirect)
			fix = append(fix, func(p redis.Pipeliner) { p.SAdd(ctx, d.s.k.appRedirect(e.redirect), e.member) })
		}
	}
	if d.repair && len(fix) > 0 {
		if _, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, f := range fix {
				f(p)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if err := d.expiringRecords(ctx, expiring); err != nil {
		return nil, err
	}
	return creds, nil
}

// expiringRecords checks that users with an ExpiresAt are in P idx:expiring
// under it. A user out of step is read again after its entry (an update may be
// between its write and its entry) and, if still out of step, reported and
// fixed with a compare-and-set of the entry's score.
func (d *doctor) expiringRecords(ctx context.Context, users []pageEntry) error {
	if len(users) == 0 {
		return nil
	}
	zkey := d.s.k.idx(idxExpiring)
	scores := make([]*redis.FloatCmd, len(users))
	_, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range users {
			scores[i] = p.ZScore(ctx, zkey, u.member)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	var odd []pageEntry
	var seen []zfix
	for i, u := range users {
		f := zfix{member: u.member}
		switch err := scores[i].Err(); {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return err
		default:
			f.seen, f.seenOK = int64(scores[i].Val()), true
		}
		if !f.seenOK || f.seen != u.score {
			odd = append(odd, u)
			seen = append(seen, f)
		}
	}
	if len(odd) == 0 {
		return nil
	}
	keys := make([]string, len(odd))
	for i, u := range odd {
		keys[i] = d.s.k.user(u.member)
	}
	vals, oks, err := d.s.getMany(ctx, keys)
	if err != nil {
		return err
	}
	var fixes []zfix
	for i, u := range odd {
		if !oks[i] {
			continue // deleted meanwhile
		}
		r, err := decode[userRecord](d.op, keys[i], vals[i])
		if err != nil || r.ExpiresAt.IsZero() || r.ExpiresAt.UnixMicro() != u.score {
			continue // changed meanwhile: the update writes its own entry
		}
		f := seen[i]
		if f.seenOK {
			d.add(&d.dangling, "idx:expiring %s at %s, user expires at %s", u.member, microTime(f.seen), microTime(u.score))
		} else {
			d.add(&d.dangling, "idx:expiring missing %s", u.member)
		}
		f.next, f.nextOK = u.score, true
		fixes = append(fixes, f)
	}
	if d.repair {
		return d.s.fixIndex(ctx, zkey, fixes, nil)
	}
	return nil
}

// microTime formats Unix microseconds for a report.
func microTime(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339Nano) }

// expiringIndex reports entries of P idx:expiring whose user is gone or no
// longer expires, and removes them with a compare-and-set of their score (an
// update that sets an ExpiresAt meanwhile writes its own entry). Entries whose
// user expires at another time are the business of expiringRecords.
func (d *doctor) expiringIndex(ctx context.Context) error {
	zkey := d.s.k.idx(idxExpiring)
	return d.zscan(ctx, zkey, func(ctx context.Context, kv []string) error {
		var entries []pageEntry
		var keys []string
		var malformed []any
		for i := 0; i+1 < len(kv); i += 2 {
			m := kv[i]
			if !validID(m) {
				d.add(&d.dangling, "idx:expiring %q (not a user id)", m)
				malformed = append(malformed, m)
				continue
			}
			score, err := strconv.ParseFloat(kv[i+1], 64)
			if err != nil {
				return fmt.Errorf("idx:expiring score %q: %w", kv[i+1], err)
			}
			entries = append(entries, pageEntry{member: m, score: int64(score)})
			keys = append(keys, d.s.k.user(m))
		}
		vals, oks, err := d.s.getMany(ctx, keys)
		if err != nil {
			return err
		}
		var fixes []zfix
		for i, e := range entries {
			why := "user gone"
			if oks[i] {
				r, err := decode[userRecord](d.op, keys[i], vals[i])
				if err != nil || !r.ExpiresAt.IsZero() {
					continue
				}
				why = "user does not expire"
			}
			d.add(&d.dangling, "idx:expiring %s (%s)", e.member, why)
			fixes = append(fixes, zfix{member: e.member, seen: e.score, seenOK: true})
		}
		if d.repair {
			if err := d.s.fixIndex(ctx, zkey, fixes, malformed); err != nil {
				return err
			}
		}
		return nil
	})
}

// grants reports and removes credential grants whose registration is gone. The
// registry is read again under the credential's WATCH, so a scope registered
// meanwhile is never taken for dead.
func (d *doctor) grants(ctx context.Context, creds []record) error {
	for _, sh := range creds {
		err := d.s.watch(ctx, d.op, "credential", func(ctx context.Context, tx *redis.Tx) error {
			data, err := tx.Get(ctx, sh.full).Result()
			if errors.Is(err, redis.Nil) {
				return nil
			}
			if err != nil {
				return err
			}
			r, err := decode[credRecord](d.op, sh.full, data)
			if err != nil || len(r.Scopes) == 0 {
				return nil
			}
			names := make([]string, len(r.Scopes))
			for i, g := range r.Scopes {
				names[i] = g.Name
			}
			regs, err := d.s.rdb.HMGet(ctx, d.s.k.scopes(), names...).Result()
			if err != nil {
				return err
			}
			var keep []grantRecord
			var dead []string
			for i, g := range r.Scopes {
				if data, ok := regs[i].(string); ok {
					if sr, err := decode[scopeRecord](d.op, d.s.k.scopes(), data); err == nil && sr.Reg == g.Reg {
						keep = append(keep, g)
						continue
					}
				}
				dead = append(dead, g.Name)
			}
			if len(dead) == 0 {
				return nil
			}
			for _, n := range dead {
				d.add(&d.staleGrants, "%s/%s: scope %s", sh.typ, sh.id, n)
			}
			if !d.repair {
				return nil
			}
			r.Scopes = keep
			out, err := encode(d.op, r)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, sh.full, out, 0)
				return nil
			})
			return err
		}, sh.full)
		if err != nil {
			return err
		}
	}
	return nil
}

// zscan calls fn with every page of the zset zkey, as member, score pairs; each
// page (its ZSCAN and fn) is one step.
func (d *doctor) zscan(ctx context.Context, zkey string, fn func(context.Context, []string) error) error {
	var cursor uint64
	for {
		var next uint64
		err := d.s.bounds.step(ctx, func(ctx context.Context) error {
			kv, n, err := d.s.rdb.ZScan(ctx, zkey, cursor, "", doctorBatch).Result()
			if err != nil {
				return err
			}
			next = n
			return fn(ctx, kv)
		})
		if err != nil || next == 0 {
			return err
		}
		cursor = next
	}
}

// index reports entries of a list index whose record is gone, and removes them
// (re-adding any whose record appeared meanwhile).
func (d *doctor) index(ctx context.Context, which string) error {
	if bucketedList(which) {
		return d.listIndex(ctx, which)
	}
	zkey := d.s.k.idx(which)
	return d.zscan(ctx, zkey, func(ctx context.Context, kv []string) error {
		var members []string
		var scores []string
		var keys []string
		for i := 0; i+1 < len(kv); i += 2 {
			members = append(members, kv[i])
			scores = append(scores, kv[i+1])
			keys = append(keys, d.recordKey(which, kv[i]))
		}
		exists, err := d.existMany(ctx, keys)
		if err != nil {
			return err
		}
		var gone []int
		for i, m := range members {
			if !exists[i] {
				d.add(&d.dangling, "idx:%s %s", which, m)
				gone = append(gone, i)
			}
		}
		if d.repair && len(gone) > 0 {
			rem := make([]any, len(gone))
			for j, i := range gone {
				rem[j] = members[i]
			}
			if err := d.s.rdb.ZRem(ctx, zkey, rem...).Err(); err != nil {
				return err
			}
			// A create may have written its record and entry in between: put back
			// the entries whose record exists now.
			again := make([]string, len(gone))
			for j, i := range gone {
				again[j] = keys[i]
			}
			now, err := d.existMany(ctx, again)
			if err != nil {
				return err
			}
			for j, i := range gone {
				if now[j] {
					var score float64
					fmt.Sscan(scores[i], &score)
					d.s.rdb.ZAdd(ctx, zkey, redis.Z{Score: score, Member: members[i]})
				}
			}
		}
		return nil
	})
}

// recordKey returns the record key an index member points to, "" if malformed.
func (d *doctor) recordKey(which, member string) string {
	switch which {
	case listUsers:
		if validID(member) {
			return d.s.k.user(member)
		}
	case listApps:
		if at, ok := parseAppRef(member); ok {
			return d.s.k.app(at.uid, at.id)
		}
	case listCreds:
		if at, ok := parseCredRef(member); ok {
			return d.s.k.cred(at.uid, at.typ, at.id)
		}
	case listClients:
		if validID(member) {
			return d.s.k.client(member)
		}
	}
	return ""
}

// existMany reports which keys exist, in one pipeline; "" never exists.
func (d *doctor) existMany(ctx context.Context, keys []string) ([]bool, error) {
	out := make([]bool, len(keys))
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := d.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			if k != "" {
				cmds[i] = p.Exists(ctx, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, c := range cmds {
		out[i] = c != nil && c.Val() == 1
	}
	return out, nil
}
