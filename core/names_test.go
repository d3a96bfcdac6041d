package core

import (
	"strings"
	"testing"
)

// checkField fails unless err is an Invalid *Error with one FieldError on field.
func checkField(t *testing.T, err error, field string) {
	t.Helper()
	if KindOf(err) != Invalid {
		t.Fatalf("kind = %v, want invalid (err %v)", KindOf(err), err)
	}
	fs := FieldsOf(err)
	if len(fs) != 1 || fs[0].Field != field {
		t.Fatalf("fields = %+v, want one on %q", fs, field)
	}
}

func TestUsernameKey(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"bob", "bob", false},
		{"Bob", "bob", false},
		{"ＢＯＢ", "bob", false}, // fullwidth
		{"Ünïcødé", "ünïcødé", false},
		{"a b", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := UsernameKey(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("UsernameKey(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	a, _ := UsernameKey("Alice")
	b, _ := UsernameKey("ＡＬＩＣＥ")
	if a != b {
		t.Errorf("case and width variants do not collide: %q vs %q", a, b)
	}
}

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"bob", true},
		{"Bob.Smith_42", true},
		{"bob@example.com", true},
		{"josé", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"a/b", false},
		{"a:b", false},
		{"a b", false},
		{"a\tb", false},
		{"a\x00b", false},
		{"a\u0085b", false},
		{"\xff", false},
		{"123", false},
		{"-7", false},
		{"１２３", false}, // fullwidth digits: an integer once width-mapped
		{"123abc", true},
		{"0e8f1c7a-2d4b-4b1e-9f5a-1c2d3e4f5a6b", false},
		{"0E8F1C7A-2D4B-4B1E-9F5A-1C2D3E4F5A6B", false},
		{"0e8f1c7a2d4b4b1e9f5a1c2d3e4f5a6b", false},
		{"{0e8f1c7a-2d4b-4b1e-9f5a-1c2d3e4f5a6b}", false},
	}
	for _, tt := range tests {
		err := ValidateUsername(tt.in)
		if tt.ok {
			if err != nil {
				t.Errorf("ValidateUsername(%q) = %v, want nil", tt.in, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidateUsername(%q) = nil, want an error", tt.in)
			continue
		}
		checkField(t, err, "username")
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"bob@example.com", "bob@example.com", true},
		{"Bob@Example.COM", "Bob@example.com", true},
		{"first.last+tag@sub.example.org", "first.last+tag@sub.example.org", true},
		{"ü@Bücher.de", "ü@xn--bcher-kva.de", true},
		{`"john doe"@example.com`, `"john doe"@example.com`, true},
		{"a@localhost", "a@localhost", true},
		{"", "", false},
		{"bob", "", false},
		{"Bob <bob@example.com>", "", false},
		{"<bob@example.com>", "", false},
		{"bob@example.com (Bob)", "", false},
		{"(Bob)bob@example.com", "", false},
		{" bob@example.com", "", false},
		{"bob@example.com ", "", false},
		{"bob@example.com\n", "", false},
		{"a..b@example.com", "", false},
		{".a@example.com", "", false},
		{"a.@example.com", "", false},
		{"a b@example.com", "", false},
		{"a@b@example.com", "", false},
		{"a@[127.0.0.1]", "", false},
		{"a@-example.com", "", false},
		{"a@example..com", "", false},
		{"a@example.com.", "", false},
		{"a@ex_ample.com", "", false},
		{"a@", "", false},
		{"@example.com", "", false},
		{"\xff@example.com", "", false},
		{strings.Repeat("a", 65) + "@example.com", "", false},
		{"a@" + strings.Repeat("b", 64) + ".com", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeEmail(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("NormalizeEmail(%q) = %q, want an error", tt.in, got)
			continue
		}
		checkField(t, err, "email")
	}
}

func TestEmailKey(t *testing.T) {
	a, _ := NormalizeEmail("Bob@Example.com")
	b, _ := NormalizeEmail("bob@EXAMPLE.com")
	if a == b {
		t.Fatalf("local parts should be kept as given: %q", a)
	}
	if EmailKey(a) != EmailKey(b) {
		t.Errorf("EmailKey(%q) = %q, EmailKey(%q) = %q: want equal", a, EmailKey(a), b, EmailKey(b))
	}
}

func TestValidKeyID(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"abc", true},
		{"A-z_0.9~", true},
		{strings.Repeat("k", 128), true},
		{strings.Repeat("k", 129), false},
		{"", false},
		{"a b", false},
		{"a/b", false},
		{"a:b", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := ValidKeyID(tt.in); got != tt.ok {
			t.Errorf("ValidKeyID(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
}

func TestValidateNames(t *testing.T) {
	tests := []struct {
		name  string
		fn    func(string) error
		field string
		in    string
		ok    bool
	}{
		{"scope", ValidateScopeName, "scope", "read:users", true},
		{"scope", ValidateScopeName, "scope", "ünicode", true},
		{"scope", ValidateScopeName, "scope", "", false},
		{"scope", ValidateScopeName, "scope", "a/b", false},
		{"scope", ValidateScopeName, "scope", "a,b", false},
		{"scope", ValidateScopeName, "scope", "a b", false},
		{"scope", ValidateScopeName, "scope", "a\u00a0b", false},
		{"scope", ValidateScopeName, "scope", "a\x7fb", false},
		{"scope", ValidateScopeName, "scope", "\xfe", false},
		{"scope", ValidateScopeName, "scope", strings.Repeat("é", 128), true},
		{"scope", ValidateScopeName, "scope", strings.Repeat("é", 129), false},
		{"group", ValidateGroupName, "name", "admins", true},
		{"group", ValidateGroupName, "name", "a,b", false},
		{"group", ValidateGroupName, "name", "Development team", true},
		{"group", ValidateGroupName, "name", " a", false},
		{"app", ValidateAppName, "name", "My App", true},
		{"app", ValidateAppName, "name", "App, v2", true},
		{"app", ValidateAppName, "name", "", false},
		{"app", ValidateAppName, "name", " App", false},
		{"app", ValidateAppName, "name", "App ", false},
		{"app", ValidateAppName, "name", "App\u3000", false},
		{"app", ValidateAppName, "name", "a/b", false},
		{"app", ValidateAppName, "name", "a\nb", false},
		{"app", ValidateAppName, "name", strings.Repeat("x", 129), false},
	}
	for _, tt := range tests {
		err := tt.fn(tt.in)
		if tt.ok {
			if err != nil {
				t.Errorf("%s %q: %v, want nil", tt.name, tt.in, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s %q: nil, want an error", tt.name, tt.in)
			continue
		}
		checkField(t, err, tt.field)
	}
}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"correct horse", "correct horse", true},
		{"12345678", "12345678", true},
		{"pass\u00a0word", "pass word", true}, // non-ASCII space mapped to SPACE
		{"ｐａｓｓｗｏｒｄ", "ｐａｓｓｗｏｒｄ", true},        // OpaqueString keeps width
		{strings.Repeat("p", 256), strings.Repeat("p", 256), true},
		{strings.Repeat("p", 257), "", false},
		{"1234567", "", false},
		{"", "", false},
		{"password\x00", "", false},
		{"\xffpassword", "", false},
	}
	for _, tt := range tests {
		got, err := ValidatePassword(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("ValidatePassword(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidatePassword(%q) = nil error", tt.in)
			continue
		}
		checkField(t, err, "password")
		if tt.in != "" && strings.Contains(err.Error(), tt.in) {
			t.Errorf("error %q echoes the password", err)
		}
	}
}

func TestIsUUID(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"0e8f1c7a-2d4b-4b1e-9f5a-1c2d3e4f5a6b", true},
		{"0E8F1C7A-2D4B-4B1E-9F5A-1C2D3E4F5A6B", true},
		{"0e8f1c7a2d4b4b1e9f5a1c2d3e4f5a6b", false},
		{"0e8f1c7a-2d4b-4b1e-9f5a-1c2d3e4f5a6", false},
		{"0e8f1c7a-2d4b-4b1e-9f5a_1c2d3e4f5a6b", false},
		{"0e8f1c7g-2d4b-4b1e-9f5a-1c2d3e4f5a6b", false},
		{"bob", false},
	}
	for _, tt := range tests {
		if got := IsUUID(tt.in); got != tt.ok {
			t.Errorf("IsUUID(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
	id := NewID()
	if !IsUUID(id) || strings.ToLower(id) != id || id[14] != '4' {
		t.Errorf("NewID() = %q, want a lower-case v4 UUID", id)
	}
	if NewID() == id {
		t.Error("NewID returned the same id twice")
	}
}
