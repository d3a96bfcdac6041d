package adminapi

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/core"
)

// TestOldLayoutRecords: a user and its key written in the Redis layout used
// before December 2026 (every field of the records, the secret as
// "sha256:<hex>", a consumer list P u:{uid}:cc:<uid>), and another written in
// the compact form of the records that came next (no id, type or user id, the
// secret as s256, long field names), are served by the admin API and verified
// by /verify as they were.
func TestOldLayoutRecords(t *testing.T) {
	e := newEnv(t)
	uid, cuid := core.NewID(), core.NewID()
	const keyID, secret = "old-layout-key", "old-layout-secret"
	const ckeyID, csecret = "compact-layout-key", "compact-layout-secret"
	stamp := `"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:07.123Z"`
	slot, cslot := "t:u:{"+uid+"}", "t:u:{"+cuid+"}"
	sum := sha256.Sum256([]byte(csecret))
	for key, val := range map[string]string{
		cslot: `{"number":2,"username":"compacta","isActive":true,"props":{"firstname":"Comp","lastname":"Act"},"createdAt":"2025-03-04T05:06:07.123Z"}`,
		cslot + ":cred:key-auth:" + ckeyID: `{"id":"` + ckeyID + `","seq":2,"isActive":true,"s256":"` +
			base64.RawStdEncoding.EncodeToString(sum[:]) + `","createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:08.123Z"}`,
		"t:claim:username:compacta":  cuid + "|1741064767123000",
		"t:claim:key-auth:" + ckeyID: cuid + "|1741064767123000",
		slot: `{"id":"` + uid + `","number":1,"username":"olden","isActive":true,` +
			`"props":{"firstname":"Old","lastname":"Layout"},` + stamp + `}`,
		slot + ":cred:key-auth:" + keyID: `{"type":"key-auth","id":"` + keyID + `","seq":1,"consumerId":"` + uid +
			`","consumerKind":"user","userId":"` + uid + `","isActive":true,"secret":"` + core.HashSHA256(secret) + `",` + stamp + `}`,
		"t:claim:username:olden":    uid + "|1741064767123000",
		"t:claim:key-auth:" + keyID: uid + "|1741064767123000",
		"t:seq:users":               "2",
		"t:seq:creds":               "2",
	} {
		if err := e.mr.Set(key, val); err != nil {
			t.Fatal(err)
		}
	}
	for _, z := range []struct {
		key, member string
		score       float64
	}{
		{"t:idx:users", uid, 1}, {"t:idx:creds", uid + "/key-auth/" + keyID, 1},
		{slot + ":creds", "key-auth:" + keyID, 1}, {slot + ":cc:" + uid, "key-auth:" + keyID, 1},
		{"t:idx:users", cuid, 2}, {"t:idx:creds", cuid + "/key-auth/" + ckeyID, 2}, {cslot + ":creds", "key-auth:" + ckeyID, 2},
	} {
		if _, err := e.mr.ZAdd(z.key, z.score, z.member); err != nil {
			t.Fatal(err)
		}
	}

	// The lists of the layout before the buckets (one P idx:users and one P
	// idx:creds) are moved at the store's first list and paged as before.
	if w := e.do("GET", "/users", ""); w.Code != 200 || w.Header().Get("X-Total-Count") != "2" || !strings.Contains(w.Body.String(), uid) {
		t.Errorf("GET /users over an old idx:users: %d, total %q, %s", w.Code, w.Header().Get("X-Total-Count"), w.Body)
	}
	if w := e.do("GET", "/credentials", ""); w.Code != 200 || w.Header().Get("X-Total-Count") != "2" || !strings.Contains(w.Body.String(), keyID) {
		t.Errorf("GET /credentials over an old idx:creds: %d, total %q, %s", w.Code, w.Header().Get("X-Total-Count"), w.Body)
	}
	for _, k := range []string{"t:idx:users", "t:idx:creds"} {
		if e.mr.Exists(k) {
			t.Errorf("%s left after the lists were read", k)
		}
	}
	u := e.must(200, "GET", "/users/olden", "")
	if u["id"] != uid || u["firstname"] != "Old" || u["isActive"] != true || u["createdAt"] != "2025-03-04T05:06:07.123Z" {
		t.Errorf("GET /users/olden of an old record: %v", u)
	}
	c := e.must(200, "GET", "/credentials/key-auth/"+keyID, "")
	if c["keyId"] != keyID || c["consumerId"] != uid || c["isActive"] != true {
		t.Errorf("GET /credentials/key-auth/%s of an old record: %v", keyID, c)
	}
	list, _ := e.must(200, "GET", "/credentials/olden", "")["credentials"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["keyId"] != keyID {
		t.Errorf("GET /credentials/olden over the old layout: %v", list)
	}
	w := call(t, e.public, "GET", "/verify", "", "x-api-key", keyID+":"+secret)
	if w.Code != 200 || w.Header().Get("X-Consumer-Id") != uid || w.Header().Get("X-Consumer-Username") != "olden" {
		t.Errorf("/verify with an old key: %d %s, consumer %q", w.Code, w.Body, w.Header().Get("X-Consumer-Id"))
	}
	if w := call(t, e.public, "GET", "/verify", "", "x-api-key", keyID+":wrong"); w.Code != 401 {
		t.Errorf("/verify with an old key's wrong secret: %d %s", w.Code, w.Body)
	}

	cu := e.must(200, "GET", "/users/compacta", "")
	if cu["id"] != cuid || cu["firstname"] != "Comp" || cu["isActive"] != true || cu["createdAt"] != "2025-03-04T05:06:07.123Z" ||
		cu["updatedAt"] != "2025-03-04T05:06:07.123Z" {
		t.Errorf("GET /users/compacta of a compact record: %v", cu)
	}
	cc := e.must(200, "GET", "/credentials/key-auth/"+ckeyID, "")
	if cc["keyId"] != ckeyID || cc["consumerId"] != cuid || cc["isActive"] != true || cc["updatedAt"] != "2025-03-04T05:06:08.123Z" {
		t.Errorf("GET /credentials/key-auth/%s of a compact record: %v", ckeyID, cc)
	}
	w = call(t, e.public, "GET", "/verify", "", "x-api-key", ckeyID+":"+csecret)
	if w.Code != 200 || w.Header().Get("X-Consumer-Id") != cuid || w.Header().Get("X-Consumer-Username") != "compacta" {
		t.Errorf("/verify with a compact key: %d %s, consumer %q", w.Code, w.Body, w.Header().Get("X-Consumer-Id"))
	}
	if w := call(t, e.public, "GET", "/verify", "", "x-api-key", ckeyID+":wrong"); w.Code != 401 {
		t.Errorf("/verify with a compact key's wrong secret: %d %s", w.Code, w.Body)
	}
}
