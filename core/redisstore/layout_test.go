package redisstore

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// TestKeyLayoutRoundTrip builds a key of every shape of the layout and parses it
// back: same kind, same parts, and only that kind matches it.
func TestKeyLayoutRoundTrip(t *testing.T) {
	k := keys{p: "gh:"}
	hex := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		key  string
		want keyParts
	}{
		{k.user("u1"), keyParts{kind: keyUser, uid: "u1"}},
		{k.app("u1", "a:1"), keyParts{kind: keyApp, uid: "u1", id: "a:1"}},
		{k.apps("u1"), keyParts{kind: keyApps, uid: "u1"}},
		{k.appNames("u1"), keyParts{kind: keyAppNames, uid: "u1"}},
		{k.cred("u1", core.KeyAuth, "key:1"), keyParts{kind: keyCred, uid: "u1", typ: core.KeyAuth, id: "key:1"}},
		{k.cred("u1", core.BasicAuth, "u1"), keyParts{kind: keyCred, uid: "u1", typ: core.BasicAuth, id: "u1"}},
		{k.creds("u1"), keyParts{kind: keyCreds, uid: "u1"}},
		{k.consumerCreds("u1", "a1"), keyParts{kind: keyConsumerCreds, uid: "u1", id: "a1"}},
		{k.password("u1"), keyParts{kind: keyPassword, uid: "u1"}},
		{k.secret("u1"), keyParts{kind: keySecret, uid: "u1"}},
		{k.session("u1", hex), keyParts{kind: keySession, uid: "u1", id: hex}},
		{k.sessions("u1"), keyParts{kind: keySessions, uid: "u1"}},
		{k.tokens("u1"), keyParts{kind: keyTokens, uid: "u1"}},
		{k.linked("u1"), keyParts{kind: keyLinked, uid: "u1"}},
		{k.seq(listUsers), keyParts{kind: keySeq, sub: listUsers}},
		{k.seq(listCreds), keyParts{kind: keySeq, sub: listCreds}},
		{k.idx(listApps), keyParts{kind: keyIdx, sub: listApps}},
		{k.idx(idxExpiring), keyParts{kind: keyIdx, sub: idxExpiring}},
		{k.appLocator("a1"), keyParts{kind: keyAppLocator, id: "a1"}},
		{k.appName("My App: {x}/y"), keyParts{kind: keyAppName, name: "My App: {x}/y"}},
		{k.appRedirect("https://app.example/cb?x={y}"), keyParts{kind: keyAppRedirect, id: redirectHash("https://app.example/cb?x={y}")}},
		{k.claim(kindUsername, "bob"), keyParts{kind: keyClaim, sub: kindUsername, name: "bob"}},
		{k.claim(kindEmail, "b@x.example"), keyParts{kind: keyClaim, sub: kindEmail, name: "b@x.example"}},
		{k.claim(kindExternalID, "e|1"), keyParts{kind: keyClaim, sub: kindExternalID, name: "e|1"}},
		{k.claim(kindIdentity, identityName("google", "g:1{x}")), keyParts{kind: keyClaim, sub: kindIdentity, name: "google:g:1{x}"}},
		{k.claim(string(core.JWT), "kid"), keyParts{kind: keyClaim, sub: string(core.JWT), name: "kid"}},
		{k.scopes(), keyParts{kind: keyScopes}},
		{k.kv("email") + "tok:1", keyParts{kind: keyKV, sub: "email", name: "tok:1"}},
		{k.admin(adminByHash), keyParts{kind: keyAdmin, sub: adminByHash}},
		{k.rate("login:x"), keyParts{kind: keyRate, name: "login:x"}},
		{k.client("c1"), keyParts{kind: keyClient, cid: "c1"}},
		{k.clientKeys("c1"), keyParts{kind: keyClientKeys, cid: "c1"}},
		{k.clientKey(hex), keyParts{kind: keyClientKey, id: hex}},
		{k.seq(listClients), keyParts{kind: keySeq, sub: listClients}},
		{k.idx(listClients), keyParts{kind: keyIdx, sub: listClients}},
		{k.claim(kindClientName, "acme: {x}/y"), keyParts{kind: keyClaim, sub: kindClientName, name: "acme: {x}/y"}},
		{k.claim(kindGroupName, "dev team: {x}"), keyParts{kind: keyClaim, sub: kindGroupName, name: "dev team: {x}"}},
		{k.groups(), keyParts{kind: keyGroups}},
		{k.seq(listGroups), keyParts{kind: keySeq, sub: listGroups}},
		{k.idx(listGroups), keyParts{kind: keyIdx, sub: listGroups}},
		{k.groupMembers("g1"), keyParts{kind: keyGroupMembers, id: "g1"}},
		{k.tagUsers("read:{x}/y"), keyParts{kind: keyTagUsers, name: "read:{x}/y"}},
		{k.inactive(), keyParts{kind: keyInactive}},
		{k.usernames(), keyParts{kind: keyUsernames}},
		{k.nameBucket(17), keyParts{kind: keyNameBucket, num: 17}},
		{k.nameDir(), keyParts{kind: keyNameDir}},
		{k.nameSeq(), keyParts{kind: keyNameSeq}},
		{k.nameLock(), keyParts{kind: keyNameLock}},
		{k.listBucket(listUsers, 0), keyParts{kind: keyListBucket, sub: listUsers}},
		{k.listBucket(listCreds, 1234), keyParts{kind: keyListBucket, sub: listCreds, num: 1234}},
		{k.listCount(listApps), keyParts{kind: keyListCount, sub: listApps}},
		{k.listLock(listUsers), keyParts{kind: keyListLock, sub: listUsers}},
		{k.claim(kindClientIdentifier, core.ClientIdentifierName("c1", "Alice/{x}|y")),
			keyParts{kind: keyClaim, sub: kindClientIdentifier, name: "c1/Alice/{x}|y"}},
		{k.claimBucketKey(kindUsername, "bob"), keyParts{kind: keyClaimBucket, sub: kindUsername, n: claimBucket("bob")}},
		{k.claimBucketKey(kindApp, "a1"), keyParts{kind: keyClaimBucket, sub: kindApp, n: claimBucket("a1")}},
		{k.claimBucketKey(kindClientKey, hex), keyParts{kind: keyClaimBucket, sub: kindClientKey, n: claimBucket(hex)}},
		{k.layoutClaims(), keyParts{kind: keyLayoutClaims}},
	}
	covered := map[keyKind]bool{}
	for _, tc := range tests {
		got, ok := k.parseKey(tc.key)
		if !ok {
			t.Errorf("parseKey(%q) refused a key built by keys", tc.key)
			continue
		}
		if got != tc.want {
			t.Errorf("parseKey(%q) = %+v, want %+v", tc.key, got, tc.want)
		}
		if again := k.build(got.kind, got); again != tc.key {
			t.Errorf("build(parseKey(%q)) = %q", tc.key, again)
		}
		for kind := keyUser; kind < numKeyKinds; kind++ {
			if _, ok := compiledKeys[kind].parse(strings.TrimPrefix(tc.key, k.p)); ok && kind != tc.want.kind {
				t.Errorf("%q also has the shape of %s", tc.key, keyShapes[kind])
			}
		}
		covered[tc.want.kind] = true
	}
	for kind := keyUser; kind < numKeyKinds; kind++ {
		if !covered[kind] {
			t.Errorf("no round trip for the shape %s", keyShapes[kind])
		}
	}
}

// TestKeyLayoutRefuses: keys of no shape, or with a part that could not have
// been written (an invalid id, type, hash, list or claim kind), do not parse.
func TestKeyLayoutRefuses(t *testing.T) {
	k := keys{p: "gh:"}
	for _, key := range []string{
		"", "gh:", "other:u:{u1}", "u:{u1}", "gh:nothing", "gh:u:{}", "gh:u:{u 1}", "gh:u:{u1",
		"gh:u:{u1}x", "gh:u:{u1}:", "gh:u:{u1}:apps:x", "gh:u:{u1}:app:", "gh:u:{u1}:app:a/b",
		"gh:u:{u1}:cred:nope:k", "gh:u:{u1}:cred:key-auth:", "gh:u:{u1}:cred:key-auth",
		"gh:u:{u1}:sess:abc", "gh:u:{u1}:sess:" + strings.Repeat("A", 64), "gh:u:{a}b}",
		"gh:seq:expiring", "gh:seq:", "gh:idx:nope", "gh:app:", "gh:app:a|b", "gh:appname:",
		"gh:claim:app:a1", "gh:claim:nope:x", "gh:claim:username:", "gh:claim:username",
		"gh:u:{u1}:linked:x", "gh:appredirect:", "gh:appredirect:abc", "gh:appredirect:" + strings.Repeat("A", 64),
		"gh:scopes:x", "gh:kv::k", "gh:kv:ns:", "gh:kv:ns", "gh:{adminkeys}:nope", "gh:rl:",
		"gh:c:{}", "gh:c:{c 1}", "gh:c:{c1}x", "gh:c:{c1}:keys:x", "gh:c:{c1}:nope", "gh:clientkey:",
		"gh:clientkey:abc", "gh:clientkey:" + strings.Repeat("A", 64), "gh:claim:clientKey:x", "gh:claim:clientName:",
		"gh:cb:username:{}", "gh:cb:username:{65536}", "gh:cb:username:{01}", "gh:cb:username:{-1}", "gh:cb:nope:{1}",
		"gh:cb:username:{1}x", "gh:cb::{1}", "gh:layout:claims:x",
		"gh:{idx:users}:", "gh:{idx:users}:-1", "gh:{idx:users}:01", "gh:{idx:users}:x", "gh:{idx:clients}:0",
		"gh:{idx:expiring}:count", "gh:{idx:}:0", "gh:{idx:users}:counts",
	} {
		if p, ok := k.parseKey(key); ok {
			t.Errorf("parseKey(%q) = %+v, want it refused", key, p)
		}
	}
}

// TestClaimBucket: a name's bucket is fixed (stored data finds its claims by
// recomputing it), and names spread over the buckets.
func TestClaimBucket(t *testing.T) {
	for name, want := range map[string]string{"": "8997", "bob": "2644", "seed-2000": "11617"} {
		if got := claimBucket(name); got != want {
			t.Errorf("claimBucket(%q) = %s, want %s: the bucket of a stored claim must never change", name, got, want)
		}
	}
	seen := map[string]bool{}
	for i := range 1000 {
		seen[claimBucket("user-"+strconv.Itoa(i))] = true
	}
	if len(seen) < 990 {
		t.Errorf("1000 names fell into %d buckets of %d", len(seen), claimBuckets)
	}
}

// TestMemberLayout: zset and set members and claim values read back as built,
// and malformed ones are refused.
func TestMemberLayout(t *testing.T) {
	if at, ok := parseAppRef(appRef("u1", "a:1")); !ok || at != (appAt{"u1", "a:1"}) {
		t.Errorf("parseAppRef(appRef) = %+v, %v", at, ok)
	}
	for _, typ := range []core.CredentialType{core.KeyAuth, core.BasicAuth, core.OAuth2, core.JWT} {
		if at, ok := parseCredRef(credRef("u1", typ, "k:1")); !ok || at != (credAt{"u1", typ, "k:1"}) {
			t.Errorf("parseCredRef(credRef(%s)) = %+v, %v", typ, at, ok)
		}
	}
	// A seeded user's key: 36 + 22 characters, within a listpack's 64 bytes.
	if m := credRef(core.NewID(), core.KeyAuth, core.NewSecret("", 16)); len(m) > 64 {
		t.Errorf("credRef of a key-auth key = %q, %d bytes, more than 64", m, len(m))
	}
	if at, ok := parseOldCredRef("u1/key-auth/k:1"); !ok || at != (credAt{"u1", core.KeyAuth, "k:1"}) {
		t.Errorf("parseOldCredRef = %+v, %v", at, ok)
	}
	if typ, id, ok := parseCredMember(credMember(core.OAuth2, "a1")); !ok || typ != core.OAuth2 || id != "a1" {
		t.Errorf("parseCredMember(credMember) = %v, %q, %v", typ, id, ok)
	}
	if c, id, ok := parseLinkedField(linkedField("github", "octo:cat")); !ok || c != "github" || id != "octo:cat" {
		t.Errorf("parseLinkedField(linkedField) = %q, %q, %v", c, id, ok)
	}
	for _, f := range []string{"", "github", "github:", ":octo"} {
		if _, _, ok := parseLinkedField(f); ok {
			t.Errorf("parseLinkedField(%q) accepted", f)
		}
	}
	// A selection field never reads as an account field, nor the reverse,
	// whatever the connector and identifier.
	for _, c := range []string{"github", "sel", "selected"} {
		f := selectedField(c)
		if got, ok := parseSelectedField(f); !ok || got != c {
			t.Errorf("parseSelectedField(selectedField(%q)) = %q, %v", c, got, ok)
		}
		if _, _, ok := parseLinkedField(f); ok {
			t.Errorf("selectedField(%q) = %q parses as an account field", c, f)
		}
		for _, id := range []string{"selected:" + c, c, ":x"} {
			if _, ok := parseSelectedField(linkedField(c, id)); ok {
				t.Errorf("linkedField(%q, %q) parses as a selection field", c, id)
			}
		}
	}
	for _, f := range []string{"", ":selected:", ":selected:a:b", "selected:github", "::selected:github"} {
		if c, ok := parseSelectedField(f); ok {
			t.Errorf("parseSelectedField(%q) = %q, accepted", f, c)
		}
	}
	if cid, id, ok := parseClientKeyRef(clientKeyRef("c1", "k:1")); !ok || cid != "c1" || id != "k:1" {
		t.Errorf("parseClientKeyRef(clientKeyRef) = %q, %q, %v", cid, id, ok)
	}
	for _, m := range []string{"", "c1", "c1/", "/k1", "c1/k1/x", "c 1/k1", "c1/k|1"} {
		if _, _, ok := parseClientKeyRef(m); ok {
			t.Errorf("parseClientKeyRef(%q) accepted", m)
		}
	}
	if owner, _, ok := parseClaim(claimValue(clientKeyRef("c1", "k1"), time.Now())); !ok || owner != "c1/k1" {
		t.Errorf("a client key lookup's value reads back as %q (%v)", owner, ok)
	}
	if a, b := redirectHash("https://a.example/cb"), redirectHash("https://a.example/cb/"); a == b || len(a) != 64 {
		t.Errorf("redirectHash gives %q and %q for two URIs", a, b)
	}
	for _, m := range []string{"", "u1", "u1/", "/a1", "u1/a1/x", "u 1/a1"} {
		if _, ok := parseAppRef(m); ok {
			t.Errorf("parseAppRef(%q) accepted", m)
		}
	}
	for _, m := range []string{"", "u1/k", "u1/nope/k", "u1/k/", "u1/k/k/x", "u1/key-auth/k", "u1//k"} {
		if _, ok := parseCredRef(m); ok {
			t.Errorf("parseCredRef(%q) accepted", m)
		}
	}
	for _, m := range []string{"", "key-auth", "key-auth:", "nope:k", ":k"} {
		if _, _, ok := parseCredMember(m); ok {
			t.Errorf("parseCredMember(%q) accepted", m)
		}
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 6_007_008, time.UTC)
	v := claimValue("u.1", at)
	owner, got, ok := parseClaim(v)
	if !ok || owner != "u.1" || !got.Equal(claimStamp(at)) || !claimStamp(at).Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("parseClaim(claimValue) = %q, %v, %v; want u.1 at %v", owner, got, ok, claimStamp(at))
	}
	if uid := core.NewID(); len(claimValue(uid, at)) != len(uid)+9 {
		t.Errorf("a claim value of a uid is %q: want its 8-character stamp", claimValue(uid, at))
	}
	// The form before December 2026: the time in decimal microseconds.
	owner, got, ok = parseClaim("u.1|1893553445006007")
	if !ok || owner != "u.1" || !got.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("parseClaim of an old value = %q, %v, %v", owner, got, ok)
	}
	for _, v := range []string{"u1", "u1|", "u1|x", "u1.", "u1.X!", "u1.0abc", "u1|1.5"} {
		if owner, _, ok := parseClaim(v); ok || owner != "u1" {
			t.Errorf("parseClaim(%q) = %q, ok %v; want owner u1, not ok", v, owner, ok)
		}
	}
}
