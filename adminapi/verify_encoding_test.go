package adminapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestVerifyAnswerEncoding: /verify's hand-written answer is byte for byte
// what json.Marshal (web.WriteJSON) writes, whatever the strings hold:
// quotes, control characters, HTML characters, U+2028, invalid UTF-8, nil
// and empty lists.
func TestVerifyAnswerEncoding(t *testing.T) {
	tricky := []string{"", "plain", `q"uote`, `back\slash`, "<script>&amp;</script>", "tab\tnl\nrc\rbs\bff\f",
		"\x00\x01\x1f\x7f", "line\u2028sep\u2029", "é日本🙂", "bad\xffutf8\xc3", "\xe2\x80", "ünïcödé \"mixed\" <&>"}
	check := func(a verifyAnswer) {
		t.Helper()
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		if got := appendVerifyAnswer(nil, a); !bytes.Equal(got, want) {
			t.Errorf("answer %+v:\n got %s\nwant %s", a, got, want)
		}
	}
	for _, s := range tricky {
		check(verifyAnswer{Kind: s, ConsumerID: s, Username: s, UserID: s, Scopes: []string{s, s}, Groups: []string{s}, Tags: []string{}})
	}
	check(verifyAnswer{Kind: "key-auth", Scopes: nil, Groups: []string{}, Tags: nil})
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rnd.IntN(12))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		s := string(b)
		check(verifyAnswer{Kind: s, ConsumerID: s + "x", Username: "<" + s, UserID: s, Scopes: []string{s}, Groups: []string{s, "g"}, Tags: []string{s}})
	}
}
