// Package expressgateway reads an Express Gateway (1.x) Redis database and
// restores its scopes, users, apps and credentials into Gatehouse through
// core (backup.Restore), so an Express Gateway user moves over in one command.
// It only reads Express Gateway's keys, never writes them.
//
// Express Gateway 1.16's layout, NS its namespace (system.config.yml
// db.redis.namespace, "EG" by default), every record a hash of strings:
//
//	NS-user:<id>                   id, username, email, firstname, lastname, redirectUri, isActive, createdAt, updatedAt, …
//	NS-username:<username>         set of the user's id
//	NS-application:<id>            id, name, userId, redirectUri, isActive, createdAt, updatedAt, …
//	NS-user-applications:<userId>  set of the user's app ids
//	NS-key-auth:<keyId>            keyId, keySecret (in clear), consumerId, isActive, scopes (JSON), createdAt, updatedAt
//	NS-key-auth:<consumerId>       set of the consumer's keyIds (same prefix: a set, not a hash)
//	NS-jwt:<keyId>, NS-jwt:<consumerId>   likewise, keySecret in clear
//	NS-basic-auth:<consumerId>     password (bcrypt), isActive, scopes, createdAt, updatedAt
//	NS-oauth2:<consumerId>         secret (bcrypt), isActive, scopes, createdAt, updatedAt
//	NS-scope                       hash scope → "true": the registry
//	NS-scope-credentials:<scope>   which credentials hold the scope (not needed: credentials list theirs)
//
// Dates are JavaScript's Date strings ("Sun Dec 06 2026 18:35:19 GMT+0000
// (Coordinated Universal Time)").
package expressgateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/backup"
)

// DefaultNamespace is Express Gateway's default key namespace.
const DefaultNamespace = "EG"

// Import restores the Express Gateway database rdb holds under namespace
// into svc's store: scopes first, then each user with its apps and the
// credentials of both, keeping ids and keyIds (numbers are assigned).
// key-auth secrets are hashed on the way in and jwt secrets sealed;
// basic-auth passwords and oauth2 secrets keep their bcrypt hashes. A user
// that cannot be read or restored is reported (Where names its key) and
// the import goes on. Importing again changes nothing.
func Import(ctx context.Context, svc *core.Service, rdb redis.UniversalClient, namespace string, opt backup.Options) (backup.Report, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	r := reader{rdb: rdb, ns: namespace, svc: svc}
	scopes, err := rdb.HKeys(ctx, r.key("scope")).Result()
	if err != nil {
		return backup.Report{}, fmt.Errorf("reading %s: %w", r.key("scope"), err)
	}
	slices.Sort(scopes)
	var cursor uint64
	var batch []string
	scanned := false
	return backup.Restore(ctx, svc, func() (backup.Item, bool, error) {
		if len(scopes) > 0 {
			name := scopes[0]
			scopes = scopes[1:]
			return backup.Item{Where: r.key("scope") + " " + name, Kind: backup.KindScope, Scope: &core.Scope{Name: name}}, true, nil
		}
		for len(batch) == 0 {
			if scanned && cursor == 0 {
				return backup.Item{}, false, nil
			}
			keys, next, err := rdb.Scan(ctx, cursor, r.key("user")+":*", 1000).Result()
			if err != nil {
				return backup.Item{}, false, fmt.Errorf("scanning %s:*: %w", r.key("user"), err)
			}
			cursor, scanned, batch = next, true, keys
		}
		key := batch[0]
		batch = batch[1:]
		it := backup.Item{Where: key, Kind: backup.KindUser}
		d, err := r.user(ctx, strings.TrimPrefix(key, r.key("user")+":"))
		if err != nil {
			it.Err = err
		} else {
			it.User = &d
		}
		return it, true, nil
	}, opt)
}

// reader reads one Express Gateway namespace.
type reader struct {
	rdb redis.UniversalClient
	ns  string
	svc *core.Service
}

// key is "NS-<kind>".
func (r reader) key(kind string) string { return r.ns + "-" + kind }

// user reads a user with its apps and every credential of both.
func (r reader) user(ctx context.Context, id string) (core.UserData, error) {
	h, err := r.rdb.HGetAll(ctx, r.key("user")+":"+id).Result()
	if err != nil {
		return core.UserData{}, err
	}
	if len(h) == 0 {
		return core.UserData{}, core.Errorf(core.NotFound, "expressgateway.user", "%s:%s is gone", r.key("user"), id)
	}
	u := core.User{ID: h["id"], Username: h["username"], RedirectURI: h["redirectUri"], IsActive: h["isActive"] != "false"}
	if u.ID == "" {
		u.ID = id
	}
	if e := h["email"]; e != "" {
		u.Email = e
		if n, err := core.NormalizeEmail(e); err == nil {
			u.Email = n
		}
	}
	u.CreatedAt, u.UpdatedAt = jsDate(h["createdAt"]), jsDate(h["updatedAt"])
	u.Props = props(h, "id", "username", "email", "redirectUri", "isActive", "createdAt", "updatedAt")
	d := core.UserData{User: u}

	appIDs, err := r.rdb.SMembers(ctx, r.key("user-applications")+":"+id).Result()
	if err != nil {
		return core.UserData{}, err
	}
	slices.Sort(appIDs)
	consumers := []string{u.ID}
	for _, aid := range appIDs {
		h, err := r.rdb.HGetAll(ctx, r.key("application")+":"+aid).Result()
		if err != nil {
			return core.UserData{}, err
		}
		if len(h) == 0 {
			continue // a dangling member: Express Gateway skips it too
		}
		a := core.App{
			ID: h["id"], Name: h["name"], UserID: u.ID, RedirectURI: h["redirectUri"], IsActive: h["isActive"] != "false",
			CreatedAt: jsDate(h["createdAt"]), UpdatedAt: jsDate(h["updatedAt"]),
			Props: props(h, "id", "name", "userId", "redirectUri", "isActive", "createdAt", "updatedAt"),
		}
		if a.ID == "" {
			a.ID = aid
		}
		d.Apps = append(d.Apps, a)
		consumers = append(consumers, a.ID)
	}
	for i, cid := range consumers {
		kind := core.ConsumerUser
		if i > 0 {
			kind = core.ConsumerApp
		}
		cs, err := r.credentials(ctx, cid, kind, u.ID)
		if err != nil {
			return core.UserData{}, err
		}
		d.Credentials = append(d.Credentials, cs...)
	}
	return d, nil
}

// credentials reads every credential of one consumer, in the order
// core.CredentialTypes lists the types (keyed ones by keyId).
func (r reader) credentials(ctx context.Context, consumer string, kind core.ConsumerKind, uid string) ([]core.Credential, error) {
	var out []core.Credential
	for _, typ := range core.CredentialTypes {
		ids := []string{consumer}
		if typ.Keyed() {
			var err error
			if ids, err = r.rdb.SMembers(ctx, r.key(string(typ))+":"+consumer).Result(); err != nil {
				return nil, err
			}
			slices.Sort(ids)
		}
		for _, id := range ids {
			h, err := r.rdb.HGetAll(ctx, r.key(string(typ))+":"+id).Result()
			if err != nil {
				return nil, err
			}
			if len(h) == 0 || typ.Keyed() && h["consumerId"] != consumer {
				continue
			}
			c, err := r.credential(ctx, typ, id, h)
			if err != nil {
				return nil, err
			}
			c.ConsumerID, c.ConsumerKind, c.UserID = consumer, kind, uid
			out = append(out, c)
		}
	}
	return out, nil
}

// credential translates one credential hash; its secret goes into the form
// Gatehouse stores.
func (r reader) credential(ctx context.Context, typ core.CredentialType, id string, h map[string]string) (core.Credential, error) {
	c := core.Credential{
		Type: typ, ID: id, IsActive: h["isActive"] != "false",
		CreatedAt: jsDate(h["createdAt"]), UpdatedAt: jsDate(h["updatedAt"]),
	}
	if s := h["scopes"]; s != "" {
		var names []string
		if err := json.Unmarshal([]byte(s), &names); err != nil {
			var one string // Express Gateway accepts one scope as a string
			if json.Unmarshal([]byte(s), &one) != nil {
				return core.Credential{}, fmt.Errorf("%s credential %s: scopes %q are not a JSON list", typ, id, s)
			}
			names = []string{one}
		}
		for _, n := range names {
			c.Scopes = append(c.Scopes, core.ScopeGrant{Name: n})
		}
	}
	var err error
	skip := []string{"id", "keyId", "keySecret", "consumerId", "isActive", "scopes", "createdAt", "updatedAt", "password", "secret", "passwordKey", "autoGeneratePassword"}
	switch typ {
	case core.KeyAuth, core.JWT:
		if h["keySecret"] == "" {
			return core.Credential{}, fmt.Errorf("%s credential %s has no keySecret", typ, id)
		}
		if c.Secret, err = r.svc.StoredSecret(ctx, typ, id, h["keySecret"]); err != nil {
			return core.Credential{}, err
		}
		if typ == core.JWT {
			c.Algorithm = "HS256"
			skip = append(skip, "algorithm")
		}
	case core.BasicAuth:
		c.Secret = h["password"] // bcrypt
	case core.OAuth2:
		c.Secret = h["secret"] // bcrypt
	}
	c.Props = props(h, skip...)
	return c, nil
}

// props returns the fields of h not named in skip, or nil.
func props(h map[string]string, skip ...string) map[string]any {
	var out map[string]any
	for k, v := range h {
		if slices.Contains(skip, k) {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[k] = v
	}
	return out
}

// jsLayout is JavaScript's Date.prototype.toString, without the zone's name.
const jsLayout = "Mon Jan 02 2006 15:04:05 GMT-0700"

// jsDate parses a date Express Gateway stored (String(new Date()), or an ISO
// string); an unreadable one is the Unix epoch, so a second import of the
// same record compares equal.
func jsDate(s string) time.Time {
	if i := strings.Index(s, " ("); i > 0 {
		s = s[:i]
	}
	for _, layout := range []string{jsLayout, time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Millisecond)
		}
	}
	return time.Unix(0, 0).UTC()
}
