package core

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// slowCanonical is versionOf's canonical form, the reference.
func slowCanonical(v any) (string, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", false
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return "", false
	}
	b, err = json.Marshal(utcTimes(generic))
	return string(b), err == nil
}

// TestUserVersionOnePass: a user's version computed in one pass is versionOf's,
// byte for byte in the canonical form, whatever the user holds: tricky and
// random strings, strings that are times, times in other zones, numbers of
// every kind a request or a decoding gives, nested properties that are empty
// once canonical, identities. Where the one pass gives up, Version is still
// versionOf's.
func TestUserVersionOnePass(t *testing.T) {
	typical := User{ID: "0b8e6f0e-8a3b-4c55-9d55-5d8f3c1e2a01", Number: 42, Username: "bob", Email: "bob@example.com", IsActive: true,
		Props: map[string]any{"firstname": "Bob", "lastname": "Smith"}, CreatedAt: time.Date(2026, 12, 7, 1, 2, 3, 456e6, time.UTC)}
	typical.UpdatedAt = typical.CreatedAt
	if _, ok := appendUserCanonical(nil, typical); !ok {
		t.Fatal("a typical user is not versioned in one pass")
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	// One goroutine: the race detector has nothing to find here, and made the
	// 20,000 users take 100 s on a loaded CI machine (4 s without it).
	n := 20000
	if testing.Short() || raceOn {
		n = 4000
	}
	for i := range n {
		u := randomUser(rnd)
		if i == 0 {
			u = typical
		}
		fast, ok := appendUserCanonical(nil, u)
		if ok {
			want, wok := slowCanonical(u)
			if !wok || string(fast) != want {
				t.Fatalf("user %#v:\n one pass %s\n versionOf %s (%v)", u, fast, want, wok)
			}
		}
		if got, want := u.Version(), versionOf(u); got != want {
			t.Fatalf("user %#v: Version %q, versionOf %q", u, got, want)
		}
	}
}

var trickyStrings = []string{"", "plain", `q"uote`, `back\slash`, "<b>&amp;</b>", "tab\tnl\n\x00\x1f\x7f", "line\u2028sep\u2029",
	"é日本🙂", "bad\xffutf8\xc3", "\xe2\x80", "2026-12-07T01:02:03+01:00", "2026-12-07T01:02:03.120Z", "2026-12-07T01:02:03Z",
	"2026-12-07", "0001-01-01T00:00:00Z", "2026-12-07T01:02:03.5-07:30", "2026-12-07T01:02:03\xffZ"}

func randomString(rnd *rand.Rand) string {
	if rnd.IntN(3) > 0 {
		return trickyStrings[rnd.IntN(len(trickyStrings))]
	}
	b := make([]byte, rnd.IntN(8))
	for i := range b {
		b[i] = byte(rnd.IntN(256))
	}
	return string(b)
}

func randomTime(rnd *rand.Rand) time.Time {
	t := time.Unix(rnd.Int64N(4e9)-1e9, rnd.Int64N(1e9))
	if rnd.IntN(20) == 0 { // one only versionOf takes
		return []time.Time{t.In(time.FixedZone("", 3600)), t.In(time.FixedZone("odd", 561)), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}[rnd.IntN(3)]
	}
	switch rnd.IntN(4) {
	case 0:
		return time.Time{}
	case 1:
		return t.Truncate(time.Millisecond).UTC()
	}
	return t.UTC()
}

func randomValue(rnd *rand.Rand, depth int) any {
	if rnd.IntN(100) == 0 { // one only versionOf takes, or none
		return []any{[]string{"x"}, float32(1.5), map[string]string{"a": "b"}, struct{}{}, math.NaN(), math.Inf(1), json.Number("1e400"), json.Number("abc"),
			json.Number("01"), map[string]any{"a\xff": 1}}[rnd.IntN(10)]
	}
	n := 11
	if depth > 2 {
		n = 8 // no more maps or lists
	}
	switch rnd.IntN(n) {
	case 0:
		return nil
	case 1:
		return rnd.IntN(2) == 0
	case 2, 3:
		return randomString(rnd)
	case 4:
		return []float64{0, math.Copysign(0, -1), 1.5, 1e21, 1e-7, 123456789.125, -3}[rnd.IntN(7)]
	case 5:
		return json.Number([]string{"", "0", "1.50", "-2", "1e3", "12345678901234567890", "0.1e-9", "-0"}[rnd.IntN(8)])
	case 6:
		return []any{rnd.IntN(1000) - 500, int64(1)<<62 + 1, int64(-7)}[rnd.IntN(3)]
	case 7:
		return map[string]any{}
	case 8, 9:
		return randomMap(rnd, depth+1)
	default:
		if rnd.IntN(6) == 0 {
			return []any(nil)
		}
		l := make([]any, rnd.IntN(3))
		for i := range l {
			l[i] = randomValue(rnd, depth+1)
		}
		return l
	}
}

func randomMap(rnd *rand.Rand, depth int) map[string]any {
	if rnd.IntN(5) == 0 {
		return nil
	}
	m := map[string]any{}
	for range rnd.IntN(4) {
		m[randomString(rnd)] = randomValue(rnd, depth)
	}
	return m
}

func randomStrings(rnd *rand.Rand) []string {
	switch rnd.IntN(3) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	return []string{randomString(rnd), randomString(rnd)}
}

func randomUser(rnd *rand.Rand) User {
	u := User{ID: randomString(rnd), Number: rnd.Int64N(1 << 60), Username: randomString(rnd), Email: randomString(rnd),
		EmailVerified: rnd.IntN(2) == 0, ExternalID: randomString(rnd), RedirectURI: randomString(rnd), IsActive: rnd.IntN(2) == 0,
		Props: randomMap(rnd, 0), ClientID: randomString(rnd), ClientIdentifier: randomString(rnd), SecretPreview: randomString(rnd),
		Groups: randomStrings(rnd), Tags: randomStrings(rnd), ExpiresAt: randomTime(rnd), CreatedAt: randomTime(rnd), UpdatedAt: randomTime(rnd),
		Stored: randomString(rnd)}
	if rnd.IntN(2) == 0 {
		n := rnd.IntN(100) - 10
		u.SessionsLimit = &n
	}
	for range rnd.IntN(3) {
		u.Identities = append(u.Identities, Identity{Provider: randomString(rnd), Subject: randomString(rnd), Email: randomString(rnd),
			EmailVerified: rnd.IntN(2) == 0, Username: randomString(rnd), DisplayName: randomString(rnd), GivenName: randomString(rnd),
			FamilyName: randomString(rnd), AvatarURL: randomString(rnd), RawClaims: randomMap(rnd, 0), LinkedAt: randomTime(rnd)})
	}
	if u.Identities == nil && rnd.IntN(4) == 0 {
		u.Identities = []Identity{}
	}
	return u
}

// BenchmarkUserVersion: a typical user's version (a create's ETag).
func BenchmarkUserVersion(b *testing.B) {
	u := User{ID: "0b8e6f0e-8a3b-4c55-9d55-5d8f3c1e2a01", Number: 42, Username: "bob", Email: "bob@example.com", IsActive: true,
		Props: map[string]any{"firstname": "Bob", "lastname": "Smith"}, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	b.Run("one pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = u.Version()
		}
	})
	b.Run("versionOf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = versionOf(u)
		}
	})
}

// TestRandomUserFillsEveryField: every field of User and of Identity is set by
// some randomUser, so that TestUserVersionOnePass covers a field added to
// either: a field appendUserCanonical leaves out would then fail it, rather
// than leave a user's version (its ETag, which If-Match compares) unchanged
// when only that field changes.
func TestRandomUserFillsEveryField(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	user, identity := map[string]bool{}, map[string]bool{}
	note := func(seen map[string]bool, v reflect.Value) {
		for i := range v.NumField() {
			if !v.Field(i).IsZero() {
				seen[v.Type().Field(i).Name] = true
			}
		}
	}
	for range 200 {
		u := randomUser(rnd)
		note(user, reflect.ValueOf(u))
		for _, id := range u.Identities {
			note(identity, reflect.ValueOf(id))
		}
	}
	for typ, seen := range map[reflect.Type]map[string]bool{reflect.TypeFor[User](): user, reflect.TypeFor[Identity](): identity} {
		for f := range typ.Fields() {
			if !seen[f.Name] {
				t.Errorf("randomUser never sets %s.%s: set it there, and give appendUserCanonical the field if json encodes it", typ.Name(), f.Name)
			}
		}
	}
}
