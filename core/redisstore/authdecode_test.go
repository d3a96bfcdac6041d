package redisstore

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// leanSeeds are records as Gatehouse writes them (the short form, and the
// earlier ones it still reads: the compact form and the full one written
// before December 2026), and inputs that the lean decoding must leave to
// encoding/json or read exactly as it does. The first 6 are users, the next
// 12 credentials (own, app's, jwt, oauth2, each in the short form, the
// compact and the full one).
func leanSeeds(t testing.TB) []string {
	at := time.Date(2025, 3, 4, 5, 6, 7, 123000000, time.UTC)
	limit := 3
	const uid, gid, appID = "7531e5ff-4dfd-46a9-8743-79ecae26d723", "73a07afd-8664-4383-8dc5-08288fab04e1", "b8cf5e6f-fa44-4c10-8236-343e2055c077"
	u := core.User{ID: uid, Number: 7, Username: "vic", Email: "vic@example.com", IsActive: true, SessionsLimit: &limit,
		Props:      map[string]any{"firstname": "V", "nested": map[string]any{"a": []any{1.5, true, nil, "x"}}},
		Identities: []core.Identity{{Provider: "google", Subject: "1", RawClaims: map[string]any{"k": "v"}}},
		Groups:     []string{gid}, Tags: []string{"staff", "ünï"}, CreatedAt: at, UpdatedAt: at.Add(time.Second)}
	inactive := u
	inactive.IsActive, inactive.UpdatedAt, inactive.Props, inactive.Groups = false, at.Add(time.Microsecond), nil, nil
	own := core.Credential{Type: core.KeyAuth, ID: "key-1", Seq: 5, ConsumerID: u.ID, ConsumerKind: core.ConsumerUser,
		UserID: u.ID, IsActive: true, Secret: core.HashSHA256("s"), Scopes: []core.ScopeGrant{{Name: "read", Reg: "r1"}},
		Props: map[string]any{"x": 1}, CreatedAt: at, UpdatedAt: at}
	app := own
	app.ConsumerID, app.ConsumerKind, app.ExpiresAt = appID, core.ConsumerApp, at.Add(time.Hour)
	app.Scopes = nil
	jwtCred := own
	jwtCred.Type, jwtCred.Secret, jwtCred.Algorithm, jwtCred.IsActive = core.JWT, "enc:abc", "HS256", false
	oauth := own
	oauth.Type, oauth.ID, oauth.ConsumerID, oauth.ConsumerKind, oauth.UpdatedAt = core.OAuth2, appID, appID, core.ConsumerApp, at.Add(time.Minute)
	var out []string
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	add(toUserRecord(u))
	add(toUserRecord(inactive))
	out = append(out,
		// The compact form, and the full one.
		`{"number":7,"username":"vic","email":"vic@example.com","isActive":true,"sessionsLimit":3,"props":{"firstname":"V","nested":{"a":[1.5,true,null,"x"]}},"identities":[{"provider":"google","subject":"1","rawClaims":{"k":"v"}}],"groups":["`+gid+`"],"tags":["staff","ünï"],"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:08.123Z"}`,
		`{"number":7,"username":"vic","email":"vic@example.com","isActive":false,"sessionsLimit":3,"identities":[{"provider":"google","subject":"1","rawClaims":{"k":"v"}}],"tags":["staff","ünï"],"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:07.123001Z"}`,
		`{"id":"`+uid+`","number":7,"username":"vic","email":"vic@example.com","isActive":true,"sessionsLimit":3,"props":{"firstname":"V","nested":{"a":[1.5,true,null,"x"]}},"identities":[{"provider":"google","subject":"1","rawClaims":{"k":"v"}}],"groups":["`+gid+`"],"tags":["staff","ünï"],"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:08.123Z"}`,
		`{"id":"`+uid+`","number":7,"username":"vic","email":"vic@example.com","isActive":false,"sessionsLimit":3,"identities":[{"provider":"google","subject":"1","rawClaims":{"k":"v"}}],"tags":["staff","ünï"],"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:07.123001Z"}`,
	)
	for _, c := range []core.Credential{own, app, jwtCred, oauth} {
		add(toCredRecord(c))
	}
	return append(out,
		// The compact form of own, app, jwtCred and oauth, then the full one.
		`{"id":"key-1","seq":5,"isActive":true,"scopes":[{"name":"read","reg":"r1"}],"s256":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDlK+r4k","props":{"x":1},"createdAt":"2025-03-04T05:06:07.123Z"}`,
		`{"id":"key-1","seq":5,"consumerId":"`+appID+`","consumerKind":"app","isActive":true,"s256":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDlK+r4k","expiresAt":"2025-03-04T06:06:07.123Z","props":{"x":1},"createdAt":"2025-03-04T05:06:07.123Z"}`,
		`{"id":"key-1","seq":5,"isActive":false,"scopes":[{"name":"read","reg":"r1"}],"secret":"enc:abc","algorithm":"HS256","props":{"x":1},"createdAt":"2025-03-04T05:06:07.123Z"}`,
		`{"id":"`+appID+`","seq":5,"consumerId":"`+appID+`","consumerKind":"app","isActive":true,"scopes":[{"name":"read","reg":"r1"}],"s256":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDlK+r4k","props":{"x":1},"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:07:07.123Z"}`,
		`{"type":"key-auth","id":"key-1","seq":5,"consumerId":"`+uid+`","consumerKind":"user","userId":"`+uid+`","isActive":true,"scopes":[{"name":"read","reg":"r1"}],"secret":"sha256:043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf89","props":{"x":1},"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:07.123Z"}`,
		`{"type":"key-auth","id":"key-1","seq":5,"consumerId":"`+appID+`","consumerKind":"app","userId":"`+uid+`","isActive":true,"secret":"sha256:043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf89","expiresAt":"2025-03-04T06:06:07.123Z","props":{"x":1},"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:07.123Z"}`,
		`{"type":"jwt","id":"key-1","seq":5,"consumerId":"`+uid+`","consumerKind":"user","userId":"`+uid+`","isActive":false,"scopes":[{"name":"read","reg":"r1"}],"secret":"enc:abc","algorithm":"HS256","props":{"x":1},"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:06:07.123Z"}`,
		`{"type":"oauth2","id":"`+appID+`","seq":5,"consumerId":"`+appID+`","consumerKind":"app","userId":"`+uid+`","isActive":true,"scopes":[{"name":"read","reg":"r1"}],"secret":"sha256:043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf89","props":{"x":1},"createdAt":"2025-03-04T05:06:07.123Z","updatedAt":"2025-03-04T05:07:07.123Z"}`,
		`{}`, ` { } `, `null`, `[]`, `"x"`, ``, `{`, `{"username":"a"} x`, `{"username":"a",}`,
		`{"username":"a\u00e9"}`, `{"username":"a\"b"}`, `{"Username":"a"}`, `{"USERNAME":"a"}`,
		`{"\u0075sername":"a"}`, `{"i\u017f":1}`, `{"isActive":true,"isactive":false}`,
		`{"username":"a","username":"b"}`, `{"username":null}`, `{"groups":null}`, `{"groups":[]}`,
		`{"groups":["a",null]}`, `{"tags":["a","b"],"isActive":"true"}`, `{"isActive":1}`,
		`{"username":"\xff"}`, `{"props":"\xff"}`, `{"x\xff":1}`, `{"\u212a":1}`,
		`{"number":-0.5e+10,"n2":01}`, `{"number":1.}`, `{"number":-}`, `{"n":1e}`,
		`{"a":[{"b":[[[{}]]]}],"c":"\ud800\u0041\t"}`, `{"c":"\x01"}`, `{"c":"\q"}`, `{"c":"\u12"}`,
		`{"expiresAt":"2026-01-02T03:04:05Z"}`, `{"expiresAt":"2026-01-02T03:04:05.999999999+02:00"}`,
		`{"expiresAt":"2026-01-02T03:04:05"}`, `{"expiresAt":null}`, `{"expiresAt":"2026-01-02T03:04:05\u005a"}`,
		`{"expiresAt":"24:00"}`, `{"expiresAt":1}`,
		`{"scopes":[{"name":"a","reg":"b"},{"reg":"c"}]}`, `{"scopes":[]}`, `{"scopes":null}`,
		`{"scopes":[{"Name":"a"}]}`, `{"scopes":[{"name":"a","name":"b"}]}`, `{"scopes":[{"name":"a","x":[1]}]}`,
		`{"scopes":[1]}`, `{"s256":"abc","secret":"sha256:00"}`, `{"s256":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDlK+r4k"}`,
		`{"s256":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDlK+r4"}`, `{"s256":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDlK+r4k="}`,
		`{"s256":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDl\nK+r4k"}`, `{"s256":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDl\nK+r4"}`,
		`{"s256":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDlK+r4!"}`, "{\t\"id\"\r:\n\"x\" }",
		`{"a":`+deep(100)+`}`, `{"a":`+deep(10)+`}`, `{"a":tru}`, `{"a":nul}`, `{"a":falsey}`,
		// The short form's fields, otherwise.
		`{"a":true}`, `{"a":false,"isActive":true}`, `{"a":null}`, `{"A":false}`, `{"a":false,"a":true}`, `{"a":0}`,
		`{"u":"x","username":"y"}`, `{"U":"x"}`, `{"u":null}`, `{"u":"\u0078"}`, `{"n":1.5}`, `{"c":1e3}`, `{"c":-1,"m":"x"}`,
		`{"h":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDlK+r4k","secret":"enc:x"}`, `{"h":"BDpxh3TFcr2KJa2+sb/NXAJWrhHOz5+cP5JdDlK+r4k","s256":"x"}`,
		`{"h":"abc"}`, `{"H":"abc"}`, `{"h":1}`, `{"p":{"x":1},"props":{"y":2}}`,
	)
}

// deep is n nested arrays.
func deep(n int) string {
	s := ""
	for range n {
		s = "[" + s
	}
	for range n {
		s += "]"
	}
	return s
}

// TestLeanReadsWhatIsWritten: the records Gatehouse writes, in either layout,
// are read by the lean decoding (not handed to encoding/json), and as
// encoding/json reads them.
func TestLeanReadsWhatIsWritten(t *testing.T) {
	seeds := leanSeeds(t)
	for i, data := range seeds[:18] {
		var u, uj userAuthRecord
		if !leanUser(data, &u) {
			t.Errorf("leanUser did not read %s", data)
		}
		var c, cj credAuthRecord
		if !leanCredential(data, &c) {
			t.Errorf("leanCredential did not read %s", data)
		}
		if json.Unmarshal([]byte(data), &uj) != nil || json.Unmarshal([]byte(data), &cj) != nil {
			t.Fatalf("encoding/json did not read %s", data)
		}
		if !reflect.DeepEqual(u, uj) || !reflect.DeepEqual(c, cj) {
			t.Errorf("%s:\nlean %+v %+v\njson %+v %+v", data, u, c, uj, cj)
		}
		if i < 6 && u.Username == "" && u.U == "" || i >= 6 && c.Sha256 == "" && c.H == "" && c.Secret == "" {
			t.Errorf("seed %d is not a record of its kind: %s", i, data)
		}
	}
	// What the lean decoding must not read itself.
	for _, data := range []string{`{"Username":"a"}`, `{"username":"a\u00e9"}`, `{"username":null}`, `{"username":"a","username":"b"}`, `{"\u212a":1}`,
		`{"U":"a"}`, `{"a":null}`, `{"u":"a","u":"b"}`} {
		var u userAuthRecord
		if leanUser(data, &u) {
			t.Errorf("leanUser read %s", data)
		}
	}
}

// TestShortForm: the user and credential records Gatehouse writes are in the
// short form, read back as they were given, and every earlier form of the
// same record reads the same.
func TestShortForm(t *testing.T) {
	seeds := leanSeeds(t)
	const ukey = "gh:u:{7531e5ff-4dfd-46a9-8743-79ecae26d723}"
	users := [][]string{{seeds[0], seeds[2], seeds[4]}, {seeds[1], seeds[3], seeds[5]}}
	for _, forms := range users {
		if strings.Contains(forms[0], `"username"`) || strings.Contains(forms[0], `"isActive"`) || strings.Contains(forms[0], `"createdAt"`) {
			t.Errorf("a user record is not written in the short form: %s", forms[0])
		}
		want, err := decodeUser("op", ukey, forms[0], false)
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range forms[1:] {
			got, err := decodeUser("op", ukey, data, false)
			if err != nil || !reflect.DeepEqual(ignoreStoredUser(got), ignoreStoredUser(want)) {
				t.Errorf("%s reads as\n%+v, %v; its short form as\n%+v", data, got, err, want)
			}
		}
	}
	if u, _ := decodeUser("op", ukey, seeds[1], false); u.IsActive || !u.UpdatedAt.Equal(u.CreatedAt.Add(time.Microsecond)) {
		t.Errorf("an inactive user updated a microsecond after its creation reads as %+v from %s", u, seeds[1])
	}
	keys := []string{ukey + ":cred:key-auth:key-1", ukey + ":cred:key-auth:key-1", ukey + ":cred:jwt:key-1", ukey + ":cred:oauth2:"}
	for i, key := range keys {
		short, compact, full := seeds[6+i], seeds[10+i], seeds[14+i]
		if strings.Contains(short, `"seq"`) || strings.Contains(short, `"isActive"`) || strings.Contains(short, `"createdAt"`) ||
			strings.Contains(short, `"id"`) != (i == 3) {
			t.Errorf("a credential record is not written in the short form: %s", short)
		}
		want, err := decodeCredential("op", key, short, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range []string{compact, full} {
			got, err := decodeCredential("op", key, data, false)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s reads as\n%+v, %v; its short form as\n%+v", data, got, err, want)
			}
		}
	}
	// A time that is not a whole millisecond keeps its long field, and reads as it was.
	at := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)
	for _, c := range []time.Time{at, time.Unix(0, 0).UTC(), {}} {
		data, err := json.Marshal(toUserRecord(core.User{Username: "t", IsActive: true, CreatedAt: c, UpdatedAt: c.Add(time.Millisecond)}))
		if err != nil {
			t.Fatal(err)
		}
		if u, err := decodeUser("op", ukey, string(data), false); err != nil || !u.CreatedAt.Equal(c) || !u.UpdatedAt.Equal(c.Add(time.Millisecond)) || !u.IsActive {
			t.Errorf("created %v: %s reads as %+v, %v", c, data, u, err)
		}
	}
}

// ignoreStoredUser is u without the JSON it was decoded from.
func ignoreStoredUser(u core.User) core.User {
	u.Stored = ""
	return u
}

// FuzzLeanAuthRecords: whatever the input, the lean decoding reads only what
// encoding/json reads without error, and reads it the same; decodeUser and
// decodeCredential, lean, give what decoding with encoding/json gives.
func FuzzLeanAuthRecords(f *testing.F) {
	for _, s := range leanSeeds(f) {
		f.Add(s)
	}
	const ukey, ckey = "gh:u:{0b6f3c52-6a3e-4c8e-9d7e-2f1a9c4b7e10}", "gh:u:{0b6f3c52-6a3e-4c8e-9d7e-2f1a9c4b7e10}:cred:key-auth:k"
	f.Fuzz(func(t *testing.T, data string) {
		leanMatches(t, data, leanUser)
		leanMatches(t, data, leanCredential)

		u, err := decodeUser("op", ukey, data, true)
		ur, jerr := decode[userAuthRecord]("op", ukey, data)
		full := ur.record()
		if jerr == nil {
			jerr = full.expand(ukey)
		}
		if (err == nil) != (jerr == nil) || err == nil && !reflect.DeepEqual(u, full.user()) {
			t.Fatalf("decodeUser(%q) = %+v, %v; with encoding/json %+v, %v", data, u, err, full.user(), jerr)
		}

		c, err := decodeCredential("op", ckey, data, true)
		cr, jerr := decode[credAuthRecord]("op", ckey, data)
		fullc := cr.record()
		if jerr == nil {
			jerr = fullc.expand(ckey)
		}
		if (err == nil) != (jerr == nil) || err == nil && !reflect.DeepEqual(c, fullc.credential()) {
			t.Fatalf("decodeCredential(%q) = %+v, %v; with encoding/json %+v, %v", data, c, err, fullc.credential(), jerr)
		}
		if s256 := cmp.Or(cr.Sha256, cr.H); s256 != "" {
			// expand's decoding of the digest, against the plain one.
			want, ok := "", false
			if sum, err := base64.RawStdEncoding.DecodeString(s256); err == nil && len(sum) == sha256.Size {
				want, ok = "sha256:"+hex.EncodeToString(sum), true
			}
			if got := (credRecord{Sha256: cr.Sha256, H: cr.H}); (got.expand(ckey) == nil) != ok || got.Secret != want {
				t.Fatalf("s256 %q, h %q: expand gives %q, want %q (%v)", cr.Sha256, cr.H, got.Secret, want, ok)
			}
		}
	})
}

// leanMatches fails t when lean reads data but json.Unmarshal does not, or
// reads it otherwise.
func leanMatches[T any](t *testing.T, data string, lean func(string, *T) bool) {
	t.Helper()
	var l, j T
	if !lean(data, &l) {
		return
	}
	if err := json.Unmarshal([]byte(data), &j); err != nil {
		t.Fatalf("lean read %q, encoding/json: %v", data, err)
	}
	if !reflect.DeepEqual(l, j) {
		t.Fatalf("%q:\nlean %#v\njson %#v", data, l, j)
	}
}

// BenchmarkAuthRecords decodes a user's and a key-auth credential's records
// as a verification does (decodeUser, decodeCredential), and with
// encoding/json alone.
func BenchmarkAuthRecords(b *testing.B) {
	seeds := leanSeeds(b)
	const ukey, ckey = "gh:u:{0b6f3c52-6a3e-4c8e-9d7e-2f1a9c4b7e10}", "gh:u:{0b6f3c52-6a3e-4c8e-9d7e-2f1a9c4b7e10}:cred:key-auth:k"
	user, cred := seeds[0], seeds[6]
	b.Run("lean", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeUser("op", ukey, user, true); err != nil {
				b.Fatal(err)
			}
			if _, err := decodeCredential("op", ckey, cred, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decode[userAuthRecord]("op", ukey, user); err != nil {
				b.Fatal(err)
			}
			if _, err := decode[credAuthRecord]("op", ckey, cred); err != nil {
				b.Fatal(err)
			}
		}
	})
}
