package jsonenc

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// TestAppendString: byte for byte what json.Marshal writes, whatever the
// string holds: quotes, control characters, HTML characters, U+2028, invalid
// UTF-8.
func TestAppendString(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("%q:\n got %s\nwant x%s", s, got, want)
		}
	}
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "<script>&amp;</script>", "tab\tnl\nrc\rbs\bff\f",
		"\x00\x01\x1f\x7f", "line\u2028sep\u2029", "é日本🙂", "bad\xffutf8\xc3", "\xe2\x80", "ünïcödé \"mixed\" <&>"} {
		check(s)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		b := make([]byte, rnd.IntN(12))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		check(string(b))
	}
}

// TestAppendFloat: byte for byte what json.Marshal writes for a float64, at
// both exponent cut-offs and at random; NaN and the infinities refused.
func TestAppendFloat(t *testing.T) {
	check := func(f float64) {
		t.Helper()
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := AppendFloat(nil, f)
		if !ok || string(got) != string(want) {
			t.Errorf("%v: got %s (%v), want %s", f, got, ok, want)
		}
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789012345678, 1.5e300, -2.5e-300,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 53, 1<<53 + 1, 30, 1.1} {
		check(f)
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		check(math.Float64frombits(rnd.Uint64()&^(0x7ff<<52) | uint64(rnd.IntN(0x7ff))<<52))
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, ok := AppendFloat(nil, f); ok {
			t.Errorf("%v accepted", f)
		}
	}
}

// TestValidNumber: exactly the literals json.Marshal accepts as a json.Number.
func TestValidNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-12", "1.5", "0.25", "1e9", "1E+9", "1e-09", "-1.25e-3", "10", "123456789012345678901234567890",
		"", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x10", "Inf", "NaN", "1_000", "1.5.5", " 1", "1 ", "--1", "1e5.5"} {
		_, err := json.Marshal(json.Number(s))
		if want := err == nil && s != ""; ValidNumber(s) != want {
			t.Errorf("ValidNumber(%q) = %v, json.Marshal accepts it: %v", s, !want, want)
		}
	}
}
