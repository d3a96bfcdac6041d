package core

import (
	"testing"
	"time"
)

// TestCheckPasswordRemembers: a successful argon2 comparison at /verify is
// remembered for Policy.RememberSuccess, only for that password and that stored
// hash; failures are never remembered.
func TestCheckPasswordRemembers(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hashes := 0
	h := NewHasher(TestArgon2, 1)
	h.inSlot = func() { hashes++ }
	s := &Service{verifyHasher: h, passed: newBoundedCache(10), passKey: []byte("k"), policy: DefaultPolicy(), now: func() time.Time { return now }}
	phc, err := h.Hash(t.Context(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := h.Hash(t.Context(), "correct horse")
	hashes = 0
	check := func(phc, pw string, want bool, wantHashes int) {
		t.Helper()
		ok, err := s.checkPassword(t.Context(), phc, pw)
		if err != nil || ok != want || hashes != wantHashes {
			t.Fatalf("checkPassword(%q) = %v, %v after %d hashes; want %v after %d", pw, ok, err, hashes, want, wantHashes)
		}
	}
	check(phc, "correct horse", true, 1)
	check(phc, "correct horse", true, 1) // remembered: no hash
	check(phc, "wrong horse!", false, 2)
	check(phc, "wrong horse!", false, 3)   // failures are not remembered
	check(other, "correct horse", true, 4) // another stored hash (a new password): hashed again
	now = now.Add(s.policy.RememberSuccess)
	check(phc, "correct horse", true, 5) // forgotten after RememberSuccess
}

// TestTokenRouting: a token carries its user's id, and nothing else parses as one.
func TestTokenRouting(t *testing.T) {
	id := NewID()
	tok := NewToken(PrefixSession, id)
	if got, ok := TokenUser(PrefixSession, tok); !ok || got != id {
		t.Fatalf("TokenUser = %q, %v; want %q", got, ok, id)
	}
	if _, ok := TokenUser(PrefixOAuth, tok); ok {
		t.Errorf("a session token parsed as an OAuth token")
	}
	for _, bad := range []string{"", PrefixSession, PrefixSession + "short", PrefixSession + "~~~~~~~~~~~~~~~~~~~~~~" + tok[27:], tok + "x"} {
		if _, ok := TokenUser(PrefixSession, bad); ok {
			t.Errorf("TokenUser(%q) accepted", bad)
		}
	}
	if a, b := NewToken(PrefixSession, id), NewToken(PrefixSession, id); a == b || len(a) != len(b) {
		t.Errorf("tokens repeat or vary in length: %d %d", len(a), len(b))
	}
}
