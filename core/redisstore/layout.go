package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// The key layout of the package comment, defined once: each shape below is
// both how a key is built (keys) and how one is read back (parseKey), and the
// same goes for the members of the zsets and sets and for claim values.

// keyKind names one key shape of the layout.
type keyKind uint8

const (
	keyUser          keyKind = iota + 1 // P u:{uid}
	keyApp                              // P u:{uid}:app:<appid>
	keyApps                             // P u:{uid}:apps
	keyAppNames                         // P u:{uid}:appnames
	keyCred                             // P u:{uid}:cred:<type>:<id>
	keyCreds                            // P u:{uid}:creds
	keyConsumerCreds                    // P u:{uid}:cc:<consumerId>
	keyPassword                         // P u:{uid}:pw
	keySecret                           // P u:{uid}:secret
	keySession                          // P u:{uid}:sess:<hex>
	keySessions                         // P u:{uid}:sessions
	keyTokens                           // P u:{uid}:tokens
	keyLinked                           // P u:{uid}:linked
	keySeq                              // P seq:<list>
	keyIdx                              // P idx:<list>
	keyAppLocator                       // P app:<appid>
	keyAppName                          // P appname:<name>
	keyAppRedirect                      // P appredirect:<hex>
	keyClaim                            // P claim:<kind>:<name>
	keyScopes                           // P scopes
	keyKV                               // P kv:<namespace>:<key>
	keyAdmin                            // P {adminkeys}:<hash>
	keyRate                             // P rl:<key>
	keyClient                           // P c:{cid}
	keyClientKeys                       // P c:{cid}:keys
	keyClientKey                        // P clientkey:<hex>
	keyGroups                           // P groups
	keyGroupMembers                     // P {ix}:gm:<gid>
	keyTagUsers                         // P {ix}:tag:<tag>
	keyInactive                         // P {ix}:inactive
	keyUsernames                        // P {ix}:unames (the layout before the name buckets)
	keyClaimBucket                      // P cb:<kind>:{<n>}
	keyLayoutClaims                     // P layout:claims
	keyListBucket                       // P {idx:<list>}:<bucket>
	keyListCount                        // P {idx:<list>}:count
	keyListLock                         // P {idx:<list>}:upgrading
	keyNameBucket                       // P {ix}:un:<lbucket>
	keyNameDir                          // P {ix}:undir
	keyNameSeq                          // P {ix}:unseq
	keyNameLock                         // P {ix}:unames:upgrading
	numKeyKinds
)

// keyShapes spells each shape after the prefix: literal text, and fields in
// angle brackets that keyParts holds (see keyParts.set for what each field
// accepts). A field ends where the literal after it first occurs, which is
// why user and client ids never hold '}', and credential types, claim kinds and plugin
// namespaces never hold ':'; the last field runs to the end of the key.
var keyShapes = [numKeyKinds]string{
	keyUser:          "u:{<uid>}",
	keyApp:           "u:{<uid>}:app:<id>",
	keyApps:          "u:{<uid>}:apps",
	keyAppNames:      "u:{<uid>}:appnames",
	keyCred:          "u:{<uid>}:cred:<type>:<id>",
	keyCreds:         "u:{<uid>}:creds",
	keyConsumerCreds: "u:{<uid>}:cc:<id>",
	keyPassword:      "u:{<uid>}:pw",
	keySecret:        "u:{<uid>}:secret",
	keySession:       "u:{<uid>}:sess:<hex>",
	keySessions:      "u:{<uid>}:sessions",
	keyTokens:        "u:{<uid>}:tokens",
	keyLinked:        "u:{<uid>}:linked",
	keySeq:           "seq:<seq>",
	keyIdx:           "idx:<idx>",
	keyAppLocator:    "app:<id>",
	keyAppName:       "appname:<name>",
	keyAppRedirect:   "appredirect:<hex>",
	keyClaim:         "claim:<claim>:<name>",
	keyScopes:        "scopes",
	keyKV:            "kv:<ns>:<name>",
	keyAdmin:         "{adminkeys}:<admin>",
	keyRate:          "rl:<name>",
	keyClient:        "c:{<cid>}",
	keyClientKeys:    "c:{<cid>}:keys",
	keyClientKey:     "clientkey:<hex>",
	keyGroups:        "groups",
	keyGroupMembers:  "{ix}:gm:<id>",
	keyTagUsers:      "{ix}:tag:<name>",
	keyInactive:      "{ix}:inactive",
	keyUsernames:     "{ix}:unames",
	keyClaimBucket:   "cb:<bkind>:{<bucket>}",
	keyLayoutClaims:  "layout:claims",
	keyListBucket:    "{idx:<list>}:<lbucket>",
	keyListCount:     "{idx:<list>}:count",
	keyListLock:      "{idx:<list>}:upgrading",
	keyNameBucket:    "{ix}:un:<lbucket>",
	keyNameDir:       "{ix}:undir",
	keyNameSeq:       "{ix}:unseq",
	keyNameLock:      "{ix}:unames:upgrading",
}

// The lists that have a counter (P seq:<list>) and a list index (P idx:<list>),
// and idxExpiring, the zset of users with an ExpiresAt, scored by it in Unix
// microseconds (exact in a float64 until the year 2255), which has no counter.
const (
	listUsers   = "users"
	listApps    = "apps"
	listCreds   = "creds"
	listClients = "clients"
	listGroups  = "groups"
	idxExpiring = "expiring"
)

// The hashes of the admin keys, all in the {adminkeys} slot.
const (
	adminByID   = "byid"
	adminByHash = "byhash"
	adminNames  = "names"
	adminUsed   = "used"
)

// Member shapes: an app in P {idx:apps}:<b>, P appname:<name> and P
// appredirect:<hex>, a credential in P {idx:creds}:<b>, a credential in its user's
// own zsets, a linked account's field in P u:{uid}:linked and the field there
// naming a connector's selected account, and the owner of a client key's
// lookup P clientkey:<hex>. A selection field starts with ':', which no
// account field does (a connector is never empty), so the two never clash.
var (
	appRefShape       = compileShape("<uid>/<id>")
	credRefShape      = compileShape("<uid>/<tcode>/<id>")
	oldCredRefShape   = compileShape("<uid>/<type>/<id>") // P idx:creds before the buckets: read by the upgrade only
	credMemberShape   = compileShape("<type>:<id>")
	linkedFieldShape  = compileShape("<connector>:<name>")
	selectedShape     = compileShape(":selected:<connector>")
	clientKeyRefShape = compileShape("<cid>/<id>")
)

// keyParts are the fields of a key or member; which are set depends on its
// shape.
type keyParts struct {
	kind keyKind             // the key's shape (zero for a member)
	uid  string              // <uid>: the user whose slot holds the key
	cid  string              // <cid>: the client whose slot holds the key
	typ  core.CredentialType // <type>
	id   string              // <id>: an app, credential or consumer id; <hex>: a token's or redirect URI's SHA-256
	sub  string              // <seq>, <idx>, <claim>, <bkind>, <ns>, <admin>, <connector>: which counter, index, claim kind, namespace, hash or integration
	name string              // <name>: a claim's normalised name, an app name, a plugin's or limiter's key, a linked account's identifier
	n    string              // <bucket>: a claim bucket's number, decimal (claimBucket)
	num  int64               // <lbucket>: a list index's bucket, its numbers >> bucketBits
}

// set stores v as field f, and reports whether v is valid there.
func (p *keyParts) set(f, v string) bool {
	switch f {
	case "uid":
		p.uid = v
		return validID(v)
	case "cid":
		p.cid = v
		return validID(v)
	case "id":
		p.id = v
		return validID(v)
	case "hex":
		p.id = v
		_, ok := hashHex("sha256:" + v)
		return ok
	case "type":
		p.typ = core.CredentialType(v)
		return p.typ.Valid()
	case "tcode":
		p.typ = typeOfCode(v)
		return p.typ != ""
	case "list":
		p.sub = v
		return bucketedList(v)
	case "lbucket":
		n, err := strconv.ParseInt(v, 10, 64)
		p.num = n
		return err == nil && n >= 0 && strconv.FormatInt(n, 10) == v
	case "seq":
		p.sub = v
		return v == listUsers || v == listApps || v == listCreds || v == listClients || v == listGroups
	case "idx":
		p.sub = v
		return v == listUsers || v == listApps || v == listCreds || v == listClients || v == listGroups || v == idxExpiring
	case "claim":
		p.sub = v
		switch v {
		case kindUsername, kindEmail, kindExternalID, kindIdentity, kindClientIdentifier, kindClientName, kindGroupName,
			string(core.KeyAuth), string(core.JWT):
			return true
		}
		return false
	case "bkind":
		p.sub = v
		switch v {
		case kindUsername, kindEmail, kindExternalID, kindIdentity, kindClientIdentifier, kindClientName, kindGroupName,
			string(core.KeyAuth), string(core.JWT), kindApp, kindClientKey:
			return true
		}
		return false
	case "bucket":
		p.n = v
		n, err := strconv.Atoi(v)
		return err == nil && n >= 0 && n < claimBuckets && strconv.Itoa(n) == v
	case "ns":
		p.sub = v
		return v != ""
	case "connector":
		p.sub = v
		return v != "" && !strings.Contains(v, ":")
	case "admin":
		p.sub = v
		return v == adminByID || v == adminByHash || v == adminNames || v == adminUsed
	case "name":
		p.name = v
		return v != ""
	}
	return false
}

// get returns field f.
func (p keyParts) get(f string) string {
	switch f {
	case "uid":
		return p.uid
	case "cid":
		return p.cid
	case "id", "hex":
		return p.id
	case "type":
		return string(p.typ)
	case "tcode":
		return typeCode(p.typ)
	case "lbucket":
		return strconv.FormatInt(p.num, 10)
	case "seq", "idx", "claim", "bkind", "ns", "admin", "connector", "list":
		return p.sub
	case "bucket":
		return p.n
	case "name":
		return p.name
	}
	panic("redisstore: unknown key field " + f)
}

// segment is a literal or a field of a compiled shape.
type segment struct {
	lit, field string // exactly one is set
}

// shape is a compiled key or member shape.
type shape []segment

// compileShape splits a shape into literals and fields. Two fields never
// follow each other: the literal between them is what ends the first.
func compileShape(s string) shape {
	var out shape
	whole := s
	for s != "" {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			out = append(out, segment{lit: s})
			break
		}
		if i > 0 {
			out = append(out, segment{lit: s[:i]})
		}
		j := strings.IndexByte(s, '>')
		if j < i || (len(out) > 0 && out[len(out)-1].field != "") {
			panic("redisstore: malformed key shape " + s)
		}
		out = append(out, segment{field: s[i+1 : j]})
		s = s[j+1:]
	}
	if len(out) > maxSegments {
		panic("redisstore: key shape " + whole + " has more than 8 segments")
	}
	return out
}

// maxSegments bounds a shape's literals and fields (build's array).
const maxSegments = 8

// build writes the shape with p's fields after prefix. Fields are not checked:
// an empty last field gives the prefix of every key of that shape.
func (sh shape) build(prefix string, p keyParts) string {
	var parts [maxSegments]string // one allocation: the key's
	n := len(prefix)
	for i, seg := range sh {
		parts[i] = seg.lit
		if seg.field != "" {
			parts[i] = p.get(seg.field)
		}
		n += len(parts[i])
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(prefix)
	for _, v := range parts[:len(sh)] {
		b.WriteString(v)
	}
	return b.String()
}

// parse reads s back into fields; ok is false unless s has the shape and every
// field is valid.
func (sh shape) parse(s string) (keyParts, bool) {
	var p keyParts
	for i, seg := range sh {
		if seg.field == "" {
			rest, ok := strings.CutPrefix(s, seg.lit)
			if !ok {
				return keyParts{}, false
			}
			s = rest
			continue
		}
		v := s
		if i+1 < len(sh) {
			end := strings.Index(s, sh[i+1].lit)
			if end < 0 {
				return keyParts{}, false
			}
			v = s[:end]
		}
		if !p.set(seg.field, v) {
			return keyParts{}, false
		}
		s = s[len(v):]
	}
	if s != "" {
		return keyParts{}, false
	}
	return p, true
}

// compiledKeys are keyShapes compiled.
var compiledKeys = func() [numKeyKinds]shape {
	var out [numKeyKinds]shape
	for k := keyUser; k < numKeyKinds; k++ {
		out[k] = compileShape(keyShapes[k])
	}
	return out
}()

// keys builds the key names of the layout under prefix p.
type keys struct{ p string }

// build returns the key of that kind with p's fields.
func (k keys) build(kind keyKind, p keyParts) string { return compiledKeys[kind].build(k.p, p) }

// parseKey reads a full key (prefix included) back into its kind and fields;
// ok is false for a key of another prefix or of no shape of the layout.
func (k keys) parseKey(full string) (keyParts, bool) {
	rest, ok := strings.CutPrefix(full, k.p)
	if !ok {
		return keyParts{}, false
	}
	for kind := keyUser; kind < numKeyKinds; kind++ {
		if p, ok := compiledKeys[kind].parse(rest); ok {
			p.kind = kind
			return p, true
		}
	}
	return keyParts{}, false
}

func (k keys) user(uid string) string { return k.build(keyUser, keyParts{uid: uid}) }
func (k keys) app(uid, appID string) string {
	return k.build(keyApp, keyParts{uid: uid, id: appID})
}
func (k keys) apps(uid string) string     { return k.build(keyApps, keyParts{uid: uid}) }
func (k keys) appNames(uid string) string { return k.build(keyAppNames, keyParts{uid: uid}) }
func (k keys) cred(uid string, typ core.CredentialType, id string) string {
	return k.build(keyCred, keyParts{uid: uid, typ: typ, id: id})
}
func (k keys) creds(uid string) string { return k.build(keyCreds, keyParts{uid: uid}) }
func (k keys) consumerCreds(uid, consumer string) string {
	return k.build(keyConsumerCreds, keyParts{uid: uid, id: consumer})
}
func (k keys) password(uid string) string { return k.build(keyPassword, keyParts{uid: uid}) }
func (k keys) secret(uid string) string   { return k.build(keySecret, keyParts{uid: uid}) }
func (k keys) session(uid, hexHash string) string {
	return k.build(keySession, keyParts{uid: uid, id: hexHash})
}
func (k keys) sessions(uid string) string { return k.build(keySessions, keyParts{uid: uid}) }
func (k keys) tokens(uid string) string   { return k.build(keyTokens, keyParts{uid: uid}) }
func (k keys) linked(uid string) string   { return k.build(keyLinked, keyParts{uid: uid}) }
func (k keys) zsetOf(kind core.SessionKind, uid string) string {
	if kind == core.KindOAuth {
		return k.tokens(uid)
	}
	return k.sessions(uid)
}

// appPrefix starts the keys of a user's apps, for scripts that add the app id.
func (k keys) appPrefix(uid string) string { return k.app(uid, "") }

// credPrefix starts the keys of a user's credentials of one type, for scripts
// that add the credential id.
func (k keys) credPrefix(uid string, typ core.CredentialType) string { return k.cred(uid, typ, "") }

// sessionPrefix starts the keys of a user's session and token records; the rest
// is the hex of the token's SHA-256.
func (k keys) sessionPrefix(uid string) string { return k.session(uid, "") }

func (k keys) seq(list string) string { return k.build(keySeq, keyParts{sub: list}) }

// listBucket is bucket b of a bucketed list index (bucketedList), listCount
// its counter and listLock the lock of its upgrade from P idx:<list>: all in
// one slot, {idx:<list>}, so that one script changes a bucket and the counter.
func (k keys) listBucket(list string, b int64) string {
	return k.build(keyListBucket, keyParts{sub: list, num: b})
}
func (k keys) listCount(list string) string { return k.build(keyListCount, keyParts{sub: list}) }
func (k keys) listLock(list string) string  { return k.build(keyListLock, keyParts{sub: list}) }

func (k keys) idx(list string) string         { return k.build(keyIdx, keyParts{sub: list}) }
func (k keys) appLocator(appID string) string { return k.build(keyAppLocator, keyParts{id: appID}) }
func (k keys) appName(name string) string     { return k.build(keyAppName, keyParts{name: name}) }

// appRedirect is the set of the apps whose RedirectURI is uri, keyed by the
// URI's SHA-256 since a URI may be longer than a key should be.
func (k keys) appRedirect(uri string) string {
	return k.build(keyAppRedirect, keyParts{id: redirectHash(uri)})
}

// claim is the key of a claim in the layout before claim buckets (P
// claim:<kind>:<name>), which is only read and deleted now (claims.go).
func (k keys) claim(kind, name string) string {
	return k.build(keyClaim, keyParts{sub: kind, name: name})
}

// claimBuckets is the number of buckets of each claim kind. It is part of
// the stored layout: a claim is found by recomputing its bucket, so it can
// never change for stored data.
const claimBuckets = 1 << 16

// claimBucket is the bucket of a claim's normalised name: the low 16 bits of
// the name's 64-bit FNV-1a hash (hash/fnv's New64a), as a decimal number
// 0–65535.
func claimBucket(name string) string {
	h := uint64(fnvOffset64)
	for i := range len(name) {
		h ^= uint64(name[i])
		h *= fnvPrime64
	}
	return strconv.FormatUint(h%claimBuckets, 10)
}

// The 64-bit FNV-1a parameters (as hash/fnv's New64a, without its
// allocation).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// claimBucketKey is the hash P cb:<kind>:{<n>} that holds the claims of that
// kind whose names fall in bucket n (claimBucket), field the name, value the
// claim value. Each bucket is a slot of its own.
func (k keys) claimBucketKey(kind, name string) string {
	return k.build(keyClaimBucket, keyParts{sub: kind, n: claimBucket(name)})
}

// layoutClaims is the marker P layout:claims, "buckets" once no claim key of
// the layout before claim buckets is left (claims.go).
func (k keys) layoutClaims() string { return k.build(keyLayoutClaims, keyParts{}) }

// claimsInBuckets is the value of P layout:claims once every claim is in its
// bucket.
const claimsInBuckets = "buckets"

func (k keys) scopes() string { return k.build(keyScopes, keyParts{}) }

// kv is the prefix of a plugin namespace's keys; the rest is the plugin's key.
func (k keys) kv(namespace string) string { return k.build(keyKV, keyParts{sub: namespace}) }
func (k keys) admin(hash string) string   { return k.build(keyAdmin, keyParts{sub: hash}) }
func (k keys) rate(key string) string     { return k.build(keyRate, keyParts{name: key}) }

func (k keys) groups() string { return k.build(keyGroups, keyParts{}) }

// groupMembers is the zset of a group's members (uid by Number), tagUsers the
// zset of the users holding a tag effectively, inactive that of the users
// whose own flag is off, and the name buckets (nameBucket, nameDir, nameSeq)
// the users' username keys in lex order: the indexes of the users' filters, in
// one slot ({ix}) so that one script can combine them.
func (k keys) groupMembers(gid string) string {
	return k.build(keyGroupMembers, keyParts{id: gid})
}
func (k keys) tagUsers(tag string) string { return k.build(keyTagUsers, keyParts{name: tag}) }
func (k keys) inactive() string           { return k.build(keyInactive, keyParts{}) }

// usernames is the single zset P {ix}:unames of the layout before the name
// buckets, "<UsernameKey>\x00<uid>" of every user, scores 0: only moved into
// the name buckets (nameindex.go) and deleted now.
func (k keys) usernames() string { return k.build(keyUsernames, keyParts{}) }

// nameBucket is bucket b of the username index, nameDir its directory,
// nameSeq the counter that numbers new buckets and nameLock the lock of the
// move of P {ix}:unames into them (nameindex.go).
func (k keys) nameBucket(b int64) string { return k.build(keyNameBucket, keyParts{num: b}) }
func (k keys) nameDir() string           { return k.build(keyNameDir, keyParts{}) }
func (k keys) nameSeq() string           { return k.build(keyNameSeq, keyParts{}) }
func (k keys) nameLock() string          { return k.build(keyNameLock, keyParts{}) }

// nameBucketPrefix starts the keys of the name buckets, for the scripts that
// add the bucket's number.
func (k keys) nameBucketPrefix() string { return strings.TrimSuffix(k.nameBucket(0), "0") }

// parseNameDirMember reads a member of P {ix}:undir: "<low>\x00<b>", the
// lowest name bucket b may hold (no UsernameKey holds a NUL) and its number,
// as the name scripts write it.
func parseNameDirMember(m string) (low string, b int64, ok bool) {
	i := strings.LastIndexByte(m, 0)
	if i < 0 {
		return "", 0, false
	}
	b, err := strconv.ParseInt(m[i+1:], 10, 64)
	return m[:i], b, err == nil && b > 0 && strconv.FormatInt(b, 10) == m[i+1:]
}

// parseOldUsernameMember reads a member of P {ix}:unames,
// "<UsernameKey>\x00<uid>".
func parseOldUsernameMember(m string) (ukey, uid string, ok bool) {
	ukey, uid, ok = strings.Cut(m, "\x00")
	return ukey, uid, ok && validID(uid)
}

func (k keys) client(cid string) string     { return k.build(keyClient, keyParts{cid: cid}) }
func (k keys) clientKeys(cid string) string { return k.build(keyClientKeys, keyParts{cid: cid}) }

// clientKey is the lookup of a client key by hash, keyed by the hex of the
// key's SHA-256 (hexHash; the "sha256:" prefix dropped).
func (k keys) clientKey(hexHash string) string {
	return k.build(keyClientKey, keyParts{id: hexHash})
}

// credMember is a credential's member in the user's own zsets.
func credMember(typ core.CredentialType, id string) string {
	return credMemberShape.build("", keyParts{typ: typ, id: id})
}

// parseCredMember reads a credMember back.
func parseCredMember(m string) (core.CredentialType, string, bool) {
	p, ok := credMemberShape.parse(m)
	return p.typ, p.id, ok
}

// appRef is an app's member in the global indexes and name sets.
func appRef(uid, appID string) string { return appRefShape.build("", keyParts{uid: uid, id: appID}) }

// parseAppRef reads an appRef back.
func parseAppRef(m string) (appAt, bool) {
	p, ok := appRefShape.parse(m)
	return appAt{p.uid, p.id}, ok
}

// redirectHash is the hex SHA-256 of a redirect URI, which names its set.
func redirectHash(uri string) string {
	sum := sha256.Sum256([]byte(uri))
	return hex.EncodeToString(sum[:])
}

// linkedField is a linked account's field in its user's P u:{uid}:linked hash.
// The connector never holds ':', so the field splits back at its first ':'.
func linkedField(connector, userIdentifier string) string {
	return linkedFieldShape.build("", keyParts{sub: connector, name: userIdentifier})
}

// parseLinkedField reads a linkedField back.
func parseLinkedField(f string) (connector, userIdentifier string, ok bool) {
	p, ok := linkedFieldShape.parse(f)
	return p.sub, p.name, ok
}

// selectedField is the field of a user's P u:{uid}:linked hash whose value
// is the userIdentifier of the connector's selected account.
func selectedField(connector string) string {
	return selectedShape.build("", keyParts{sub: connector})
}

// parseSelectedField reads a selectedField back.
func parseSelectedField(f string) (connector string, ok bool) {
	p, ok := selectedShape.parse(f)
	return p.sub, ok
}

// clientKeyRef names a client key by its client and id: the owner its hash
// lookup carries.
func clientKeyRef(cid, keyID string) string {
	return clientKeyRefShape.build("", keyParts{cid: cid, id: keyID})
}

// parseClientKeyRef reads a clientKeyRef back.
func parseClientKeyRef(m string) (cid, keyID string, ok bool) {
	p, ok := clientKeyRefShape.parse(m)
	return p.cid, p.id, ok
}

// credRef is a credential's member in the P {idx:creds}:<bucket> zsets: its
// type as one letter (typeCode), so that a key-auth credential's member, with
// a 36-character uid and a 22-character keyId, is 61 bytes and its bucket
// stays a listpack (at most 64 bytes a member by Redis' defaults).
func credRef(uid string, typ core.CredentialType, id string) string {
	return credRefShape.build("", keyParts{uid: uid, typ: typ, id: id})
}

// parseCredRef reads a credRef back.
func parseCredRef(m string) (credAt, bool) {
	p, ok := credRefShape.parse(m)
	return credAt{p.uid, p.typ, p.id}, ok
}

// parseOldCredRef reads a member of P idx:creds in the layout before the
// buckets, "<uid>/<type>/<id>".
func parseOldCredRef(m string) (credAt, bool) {
	p, ok := oldCredRefShape.parse(m)
	return credAt{p.uid, p.typ, p.id}, ok
}

// typeCodes spells each credential type in one letter in credRef.
var typeCodes = map[core.CredentialType]string{core.KeyAuth: "k", core.BasicAuth: "b", core.OAuth2: "o", core.JWT: "j"}

// typeCode is typ's letter ("" for an unknown type, which no valid member holds).
func typeCode(typ core.CredentialType) string { return typeCodes[typ] }

// typeOfCode reads a typeCode back; "" for no type's.
func typeOfCode(c string) core.CredentialType {
	for t, code := range typeCodes {
		if code == c {
			return t
		}
	}
	return ""
}

// identityName is the claim name of an identity: "<provider>:<subject>". The
// provider never contains ':', so the name splits back at its first ':'.
func identityName(provider, subject string) string { return provider + ":" + subject }

// claimValue is the value of a claim or locator: "<owner>.<ms>", the claim
// time in Unix milliseconds in base 36 (8 characters from 1973 to 2059), 45
// bytes for a uid. A value of the form before December 2026, "<owner>|<µs>"
// (the time in decimal Unix microseconds, 53 bytes), still reads
// (parseClaim): no owner holds '|', and no base-36 stamp holds '.'.
func claimValue(owner string, t time.Time) string {
	return owner + "." + strconv.FormatInt(t.UnixMilli(), 36)
}

// claimStamp is t as a claim value keeps it: to the millisecond.
func claimStamp(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()) }

// parseClaim splits a claim value of either form; ok is false for a
// malformed one, whose owner is then everything before the last '|' or '.'
// (or the whole value).
func parseClaim(v string) (owner string, at time.Time, ok bool) {
	if i := strings.LastIndexByte(v, '|'); i >= 0 {
		us, err := strconv.ParseInt(v[i+1:], 10, 64)
		if err != nil {
			return v[:i], time.Time{}, false
		}
		return v[:i], time.UnixMicro(us), true
	}
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return v, time.Time{}, false
	}
	ms, err := strconv.ParseInt(v[i+1:], 36, 64)
	if err != nil || v[i+1:] != strconv.FormatInt(ms, 36) {
		return v[:i], time.Time{}, false
	}
	return v[:i], time.UnixMilli(ms), true
}

// claimOwner returns the owner part of a claim or locator value.
func claimOwner(v string) string {
	owner, _, _ := parseClaim(v)
	return owner
}

// validID reports whether id can be part of keys and members: not empty, and free
// of the characters the layout uses as delimiters.
func validID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "{}/| \t\r\n")
}
