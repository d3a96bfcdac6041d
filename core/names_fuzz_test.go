package core

import (
	"testing"
	"unicode/utf8"
)

// FuzzNames runs every name check on arbitrary input: none may panic, UsernameKey is
// idempotent, and what the validators accept keeps their documented shape.
func FuzzNames(f *testing.F) {
	for _, s := range []string{
		"bob", "ＢＯＢ", "Ünïcødé", "a b", "", "\xff", "bob@example.com", "ü@Bücher.de",
		`"john doe"@example.com`, "0e8f1c7a-2d4b-4b1e-9f5a-1c2d3e4f5a6b", "123", "My App",
		"\u0130", "ß", "ǅ", "ﬀ", "\u0345", "a\u200db",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := UsernameKey(s); err == nil {
			k2, err := UsernameKey(k)
			if err != nil || k2 != k {
				t.Fatalf("UsernameKey not idempotent: %q -> %q -> %q, %v", s, k, k2, err)
			}
		}
		if ValidateUsername(s) == nil && (!utf8.ValidString(s) || IsUUID(s)) {
			t.Fatalf("ValidateUsername accepted %q", s)
		}
		if e, err := NormalizeEmail(s); err == nil {
			e2, err := NormalizeEmail(e)
			if err != nil || e2 != e {
				t.Fatalf("NormalizeEmail not idempotent: %q -> %q -> %q, %v", s, e, e2, err)
			}
		}
		if p, err := ValidatePassword(s); err == nil {
			if n := utf8.RuneCountInString(p); n < 8 || n > 256 {
				t.Fatalf("ValidatePassword(%q) = %q: %d characters", s, p, n)
			}
		}
		_ = ValidKeyID(s)
		_ = ValidateScopeName(s)
		_ = ValidateGroupName(s)
		_ = ValidateAppName(s)
		_ = EmailKey(s)
	})
}
