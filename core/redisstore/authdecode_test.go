package redisstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// leanSeeds are records as Gatehouse writes them (the compact layout and the
// full one written before December 2026), and inputs that the lean decoding
// must leave to encoding/json or read exactly as it does.
func leanSeeds(t testing.TB) []string {
	at := time.Date(2025, 3, 4, 5, 6, 7, 123000000, time.UTC)
	limit := 3
	u := core.User{ID: core.NewID(), Number: 7, Username: "vic", Email: "vic@example.com", IsActive: true, SessionsLimit: &limit,
		Props:      map[string]any{"firstname": "V", "nested": map[string]any{"a": []any{1.5, true, nil, "x"}}},
		Identities: []core.Identity{{Provider: "google", Subject: "1", RawClaims: map[string]any{"k": "v"}}},
		Groups:     []string{core.NewID()}, Tags: []string{"staff", "ünï"}, CreatedAt: at, UpdatedAt: at.Add(time.Second)}
	own := core.Credential{Type: core.KeyAuth, ID: "key-1", Seq: 5, ConsumerID: u.ID, ConsumerKind: core.ConsumerUser,
		UserID: u.ID, IsActive: true, Secret: core.HashSHA256("s"), Scopes: []core.ScopeGrant{{Name: "read", Reg: "r1"}},
		Props: map[string]any{"x": 1}, CreatedAt: at, UpdatedAt: at}
	app := own
	app.ConsumerID, app.ConsumerKind, app.ExpiresAt = core.NewID(), core.ConsumerApp, at.Add(time.Hour)
	app.Scopes = nil
	jwtCred := own
	jwtCred.Type, jwtCred.Secret, jwtCred.Algorithm, jwtCred.IsActive = core.JWT, "enc:abc", "HS256", false
	var out []string
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	type fullUser userRecord // without MarshalJSON: every field, as written before
	type fullCred credRecord
	ur := toUserRecord(u)
	add(ur)
	add(fullUser(ur))
	for _, c := range []core.Credential{own, app, jwtCred} {
		add(toCredRecord(c))
		add(fullCred(toCredRecord(c)))
	}
	return append(out,
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
	for _, data := range seeds[:8] {
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
	}
	// What the lean decoding must not read itself.
	for _, data := range []string{`{"Username":"a"}`, `{"username":"a\u00e9"}`, `{"username":null}`, `{"username":"a","username":"b"}`, `{"\u212a":1}`} {
		var u userAuthRecord
		if leanUser(data, &u) {
			t.Errorf("leanUser read %s", data)
		}
	}
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
		full := userRecord{ID: ur.ID, Username: ur.Username, IsActive: ur.IsActive, Groups: ur.Groups, Tags: ur.Tags}
		if jerr == nil {
			jerr = full.expand(ukey)
		}
		if (err == nil) != (jerr == nil) || err == nil && !reflect.DeepEqual(u, full.user()) {
			t.Fatalf("decodeUser(%q) = %+v, %v; with encoding/json %+v, %v", data, u, err, full.user(), jerr)
		}

		c, err := decodeCredential("op", ckey, data, true)
		cr, jerr := decode[credAuthRecord]("op", ckey, data)
		fullc := credRecord{Type: cr.Type, ID: cr.ID, ConsumerID: cr.ConsumerID, ConsumerKind: cr.ConsumerKind, UserID: cr.UserID,
			IsActive: cr.IsActive, Scopes: cr.Scopes, Secret: cr.Secret, Sha256: cr.Sha256, Algorithm: cr.Algorithm, ExpiresAt: cr.ExpiresAt}
		if jerr == nil {
			jerr = fullc.expand(ckey)
		}
		if (err == nil) != (jerr == nil) || err == nil && !reflect.DeepEqual(c, fullc.credential()) {
			t.Fatalf("decodeCredential(%q) = %+v, %v; with encoding/json %+v, %v", data, c, err, fullc.credential(), jerr)
		}
		if cr.Sha256 != "" {
			// expand's decoding of the digest, against the plain one.
			want, ok := "", false
			if sum, err := base64.RawStdEncoding.DecodeString(cr.Sha256); err == nil && len(sum) == sha256.Size {
				want, ok = "sha256:"+hex.EncodeToString(sum), true
			}
			if got := (credRecord{Sha256: cr.Sha256}); (got.expand(ckey) == nil) != ok || got.Secret != want {
				t.Fatalf("s256 %q: expand gives %q, want %q (%v)", cr.Sha256, got.Secret, want, ok)
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
	user, cred := seeds[0], seeds[2]
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
