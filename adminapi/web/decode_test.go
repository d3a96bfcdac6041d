package web

import (
	"testing"

	"github.com/gatehouse/gatehouse/core"
)

// TestDuplicateKeys: an object holding a key twice is Malformed, naming the
// key's path, at any depth; equal keys in different objects are fine.
func TestDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		body, field string // field "" means accepted
	}{
		{`{"isActive":true,"isActive":false}`, "isActive"},
		{`{"a":1,"b":{"c":1,"c":2}}`, "b.c"},
		{`{"a":[{"x":1},{"x":1,"x":2}]}`, "a.1.x"},
		{`{"a":[1,[2,{"y":1,"y":1}]]}`, "a.1.1.y"},
		{`{"credential":{"scopes":["a","a"]}}`, ""}, // values may repeat
		{`{"a":{"k":1},"b":{"k":1}}`, ""},
		{`{"a":{},"b":[],"c":{"d":[{}]}}`, ""},
		{`{"\u0061":1,"a":2}`, "a"}, // an escaped spelling is the same key
	} {
		var v map[string]any
		err := Unmarshal([]byte(tc.body), &v, false)
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.body, err)
			}
			continue
		}
		fs := core.FieldsOf(err)
		if core.KindOf(err) != core.Malformed || len(fs) != 1 || fs[0].Field != tc.field {
			t.Errorf("%s: %v %v, want Malformed on %s", tc.body, core.KindOf(err), fs, tc.field)
		}
	}
}

// TestKeysDistinct: the one-pass look answers true only for bodies it can
// vouch for, and a body it is unsure of is still walked: each duplicate above
// is found through the walk, and these bodies take the short way.
func TestKeysDistinct(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"username":"ada","firstname":"Ada","lastname":"Lovelace","email":"ada@example.com"}`, true},
		{`{ "a" : 1, "b" :{"c": [1, "x:", {"d": "e"}]}}`, true},
		{`{"a":"b:","b":1}`, true},           // "b:" is a value
		{`{"a":1,"a":2}`, false},             // a duplicate
		{`{"a":{"k":1},"b":{"k":1}}`, false}, // one key text in two objects: walked
		{`{"\u0061":1}`, false},              // an escape
		{`{"a":"\"x\":"}`, false},            // an escape in a value
		{"{\"\xff\":1}", false},              // not UTF-8
		{`{"a":1,"b`, false},                 // unterminated
		{`{"a":1,"a"}`, false},               // a key without its colon is still one
		{`["a",{"a":1}]`, true},              // an array's string is a value
	} {
		if got := keysDistinct([]byte(tc.body)); got != tc.want {
			t.Errorf("keysDistinct(%s) = %v, want %v", tc.body, got, tc.want)
		}
	}
}

// FuzzKeysDistinct: whatever the bytes, a body the one-pass look vouches for
// holds no duplicate the token walk would find.
func FuzzKeysDistinct(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"a":1}}`, `{"a":1,"a":2}`, "{\"\xff\":1,\"\xfe\":2}", `{"a":"b:","b":1}`, `[{"x":1},{"y":2}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if keysDistinct(b) {
			if err := duplicateKey(b); err != nil {
				t.Fatalf("keysDistinct(%q) = true, but the walk finds %v", b, err)
			}
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,{"c":2,"c":3}]}}`, `[`, `{"a":1,"a":2}`, `{}`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		err := Unmarshal(b, &v, false)
		if k := core.KindOf(err); err != nil && k != core.Malformed && k != core.Invalid {
			t.Fatalf("kind %v for %q", k, b)
		}
	})
}
