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
