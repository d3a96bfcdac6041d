package core

import (
	"net/mail"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// Name limits.
const (
	maxNameLen     = 128 // usernames, key ids, scope, group and app names, in characters
	minPasswordLen = 8
	maxPasswordLen = 256
	maxEmailLen    = 254 // RFC 5321 §4.5.3.1.3, in octets
	maxLocalLen    = 64  // RFC 5321 §4.5.3.1.1, in octets
)

// UsernameKey returns the form under which a username is unique: RFC 8265
// UsernameCaseMapped, so case and width variants collide. The profile is reapplied
// until the result is stable (RFC 8264 §7 asks for idempotence), so the key of a key
// is itself.
func UsernameKey(username string) (string, error) {
	const op = "core.UsernameKey"
	if username == "" {
		return "", InvalidFields(op, FieldError{Field: "username", Detail: "is required"})
	}
	s := username
	for range 4 {
		k, err := precis.UsernameCaseMapped.String(s)
		if err != nil {
			e := InvalidFields(op, FieldError{Field: "username", Detail: "contains characters not allowed in a username"}).(*Error)
			e.Err = err
			return "", e
		}
		if k == s {
			return k, nil
		}
		s = k
	}
	return "", InvalidFields(op, FieldError{Field: "username", Detail: "does not have a stable normalised form"})
}

// ValidateUsername checks a username: valid UTF-8; 1–128 characters after
// UsernameCaseMapped; no '/', ':', whitespace or control characters; never in the
// form of a UUID or of an integer, so that `{id or username}` lookups stay
// unambiguous; and no mix of scripts (see singleScript), so that a username
// cannot pass for another one upstream ("Аda" with a Cyrillic А beside "Ada").
func ValidateUsername(username string) error {
	const op = "core.ValidateUsername"
	bad := func(detail string) error {
		return InvalidFields(op, FieldError{Field: "username", Detail: detail})
	}
	if username == "" {
		return bad("is required")
	}
	if !utf8.ValidString(username) {
		return bad("must be valid UTF-8")
	}
	if d := forbiddenRune(username, "/:", true); d != "" {
		return bad(d)
	}
	key, err := UsernameKey(username)
	if err != nil {
		return err
	}
	if n := utf8.RuneCountInString(key); n < 1 || n > maxNameLen {
		return bad("must be 1 to 128 characters")
	}
	if looksLikeID(username) || looksLikeID(key) {
		return bad("must not be in the form of a UUID or an integer")
	}
	// A username in the form of an email address is checked part by part: a
	// Cyrillic local part at an ASCII domain is one person's address, not a
	// confusable.
	at := strings.LastIndexByte(key, '@')
	for _, part := range []string{key[:max(at, 0)], key[at+1:]} {
		if mixed := scriptMix(part); mixed != nil {
			return bad("must not mix scripts (here " + joinNames(mixed) + ")")
		}
	}
	return nil
}

// The combinations of scripts that UTS #39's "highly restrictive" level
// allows besides a single script: the ways Chinese, Japanese and Korean are
// written, with Latin.
var scriptCombinations = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// scriptMix returns the scripts of s, in order of appearance, when they are
// more than UTS #39's "highly restrictive" level allows: letters all of one
// script, or within one of scriptCombinations. Characters of the Common and
// Inherited scripts (digits, punctuation, symbols, combining marks) belong to
// any script and are not counted. nil when s passes.
func scriptMix(s string) []string {
	var found []string
	for _, r := range s {
		sc := scriptOf(r)
		if sc != "Common" && sc != "Inherited" && sc != "" && !slices.Contains(found, sc) {
			found = append(found, sc)
		}
	}
	if len(found) <= 1 {
		return nil
	}
	for _, allowed := range scriptCombinations {
		if !slices.ContainsFunc(found, func(sc string) bool { return !slices.Contains(allowed, sc) }) {
			return nil
		}
	}
	return found
}

// scriptNames lists the names of unicode.Scripts, the most frequent in names
// first, for scriptOf's search.
var scriptNames = sync.OnceValue(func() []string {
	first := []string{"Latin", "Common", "Inherited", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Bopomofo", "Arabic", "Hebrew"}
	rest := make([]string, 0, len(unicode.Scripts))
	for name := range unicode.Scripts {
		if !slices.Contains(first, name) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(first, rest...)
})

// scriptOf returns the name of r's Unicode script (Script property, as the
// standard library's tables have it), "" for a rune in none.
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return "Common"
	}
	for _, name := range scriptNames() {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	return ""
}

// joinNames joins names as a sentence does: "a", "a and b", "a, b and c".
func joinNames(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// looksLikeID reports whether s could be read as a user id: a UUID in any form that
// uuid.Parse accepts, or an optionally signed decimal integer.
func looksLikeID(s string) bool {
	if _, err := uuid.Parse(s); err == nil {
		return true
	}
	s = strings.TrimLeft(s, "+-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// forbiddenRune returns a message for the first rune of s that is a control
// character, in chars, or (when noSpace) whitespace; "" if there is none.
func forbiddenRune(s, chars string, noSpace bool) string {
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return "must not contain control characters"
		case strings.ContainsRune(chars, r):
			return "must not contain '" + string(r) + "'"
		case noSpace && unicode.IsSpace(r):
			return "must not contain whitespace"
		}
	}
	return ""
}

// NormalizeEmail checks a bare RFC 5322 addr-spec (no display name, no angle
// brackets, no comments) and returns it with the domain lower-cased and IDNA-encoded
// (the Lookup profile) and the local part as given. Domain literals ("[1.2.3.4]")
// are refused.
func NormalizeEmail(email string) (string, error) {
	const op = "core.NormalizeEmail"
	bad := func(detail string) (string, error) {
		return "", InvalidFields(op, FieldError{Field: "email", Detail: detail})
	}
	if email == "" {
		return bad("is required")
	}
	if !utf8.ValidString(email) {
		return bad("must be valid UTF-8")
	}
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return bad("must be an email address")
	}
	local, domain := email[:at], email[at+1:]
	if !validLocalPart(local) {
		return bad("must be a bare email address (local@domain)")
	}
	if len(local) > maxLocalLen {
		return bad("local part must be at most 64 octets")
	}
	// net/mail checks the grammar as a whole; it accepts display names and
	// comments, which validLocalPart and the domain check have already excluded.
	if a, err := mail.ParseAddress(email); err != nil || a.Name != "" {
		return bad("must be a bare email address (local@domain)")
	}
	ascii, err := idna.Lookup.ToASCII(strings.ToLower(domain))
	if err != nil || !validHostname(ascii) {
		return bad("must have a valid domain name")
	}
	out := local + "@" + ascii
	if len(out) > maxEmailLen {
		return bad("must be at most 254 octets")
	}
	return out, nil
}

// validLocalPart reports whether s is an RFC 5322 dot-atom or quoted-string, with
// UTF-8 allowed as RFC 6532 does.
func validLocalPart(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '"' {
		return validQuotedString(s)
	}
	for atom := range strings.SplitSeq(s, ".") {
		if atom == "" {
			return false
		}
		for _, r := range atom {
			if !isAtext(r) {
				return false
			}
		}
	}
	return true
}

func isAtext(r rune) bool {
	switch {
	case r >= utf8.RuneSelf:
		return unicode.IsGraphic(r) && !unicode.IsSpace(r)
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// validQuotedString reports whether s is exactly one quoted-string: printable
// characters and spaces, with '"' and '\' escaped by '\'.
func validQuotedString(s string) bool {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	body := []rune(s[1 : len(s)-1])
	for i := 0; i < len(body); i++ {
		r := body[i]
		switch {
		case r == '\\':
			i++
			if i == len(body) || !(body[i] == ' ' || unicode.IsGraphic(body[i])) {
				return false
			}
		case r == '"':
			return false
		case r == ' ':
		case r >= utf8.RuneSelf && unicode.IsSpace(r):
			return false
		case !unicode.IsGraphic(r):
			return false
		}
	}
	return true
}

// validHostname reports whether s (already IDNA-encoded) has non-empty labels of at
// most 63 octets and at most 253 octets in all.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
	}
	return true
}

// EmailKey returns the form under which a normalised email is unique: lower-cased,
// so that emails are unique case-insensitively.
func EmailKey(normalized string) string {
	return strings.ToLower(normalized)
}

// ValidKeyID reports whether s matches [A-Za-z0-9._~-]{1,128}.
func ValidKeyID(s string) bool {
	if len(s) < 1 || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._~-", c) >= 0) {
			return false
		}
	}
	return true
}

// ValidateScopeName checks a scope name: 1–128 characters of valid UTF-8, no '/',
// ',', whitespace or control characters. The field is "scope".
func ValidateScopeName(s string) error {
	return validateName("core.ValidateScopeName", "scope", s, "/,", true)
}

// ValidateGroupName checks a group name: 1–128 characters of valid UTF-8, no
// '/', ',' (X-Consumer-Groups separates names with commas) or control
// characters, no leading or trailing whitespace ("Development team" is
// valid). The field is "name".
func ValidateGroupName(s string) error {
	return validateLabel("core.ValidateGroupName", "name", s, "/,")
}

// ValidateAppName checks an app name: 1–128 characters of valid UTF-8, no '/' or
// control characters, no leading or trailing whitespace ("My App" is valid). The
// field is "name".
func ValidateAppName(s string) error {
	return validateLabel("core.ValidateAppName", "name", s, "/")
}

// validateLabel checks a name people write in full ("My App", a client's name,
// its identifier for a user): validateName's rules with inner spaces allowed,
// but no leading or trailing whitespace.
func validateLabel(op, field, s, chars string) error {
	if err := validateName(op, field, s, chars, false); err != nil {
		return err
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return InvalidFields(op, FieldError{Field: field, Detail: "must not start or end with whitespace"})
	}
	return nil
}

func validateName(op, field, s, chars string, noSpace bool) error {
	bad := func(detail string) error {
		return InvalidFields(op, FieldError{Field: field, Detail: detail})
	}
	switch {
	case s == "":
		return bad("is required")
	case !utf8.ValidString(s):
		return bad("must be valid UTF-8")
	case utf8.RuneCountInString(s) > maxNameLen:
		return bad("must be 1 to 128 characters")
	}
	if d := forbiddenRune(s, chars, noSpace); d != "" {
		return bad(d)
	}
	return nil
}

// ValidatePassword applies RFC 8265 OpaqueString and checks that the result has 8 to
// 256 characters; it returns the prepared password. There are no composition rules.
// The field is "password"; messages never include the password.
func ValidatePassword(pw string) (string, error) {
	const op = "core.ValidatePassword"
	bad := func(detail string) (string, error) {
		return "", InvalidFields(op, FieldError{Field: "password", Detail: detail})
	}
	if !utf8.ValidString(pw) {
		return bad("must be valid UTF-8")
	}
	// Refuse absurd inputs before the PRECIS work.
	if len(pw) > 4*maxPasswordLen*utf8.UTFMax {
		return bad("must be 8 to 256 characters")
	}
	prepared, err := precis.OpaqueString.String(pw)
	if err != nil {
		if pw == "" {
			return bad("must be 8 to 256 characters")
		}
		return bad("contains characters not allowed in a password")
	}
	if n := utf8.RuneCountInString(prepared); n < minPasswordLen || n > maxPasswordLen {
		return bad("must be 8 to 256 characters")
	}
	return prepared, nil
}

// IsUUID reports whether s is a UUID in the canonical 8-4-4-4-12 hexadecimal form
// (either case).
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// NewID returns a new random (version 4) UUID in canonical lower-case form.
func NewID() string {
	return uuid.NewString()
}
