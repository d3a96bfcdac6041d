package core

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/jsonenc"
)

// A user's version is computed on every write that answers it (a create, an
// update) and every first read of a user: versionOf's three passes of
// encoding/json (marshal, decode into generic values, marshal again) were
// about a sixth of a create's CPU. appendUserCanonical writes the same bytes
// in one pass, without reflection: the user's fields under their Go names in
// sorted order, strings as json.Marshal escapes them once read back (invalid
// UTF-8 as U+FFFD, RFC 3339 times in UTC: utcString), numbers as float64
// (numbers as JSON reads them back), null, [] and {} left out of objects.
// For anything it does not know (a property of another type than JSON
// decoding or a request's fields give, a time json.Marshal refuses or writes
// with a zone) it reports false and Version takes versionOf's way, so the
// version is the same whichever way computes it (a test compares them).

// appendUserCanonical appends versionOf's canonical form of u; ok false when
// u holds something only versionOf handles.
func appendUserCanonical(b []byte, u User) ([]byte, bool) {
	var ok bool
	o := object{b: append(b, '{')}
	o.str("ClientID", u.ClientID)
	o.str("ClientIdentifier", u.ClientIdentifier)
	ok = o.time("CreatedAt", u.CreatedAt)
	o.str("Email", u.Email)
	o.boolean("EmailVerified", u.EmailVerified)
	ok = o.time("ExpiresAt", u.ExpiresAt) && ok
	o.str("ExternalID", u.ExternalID)
	o.strs("Groups", u.Groups)
	o.str("ID", u.ID)
	if len(u.Identities) > 0 {
		o.key("Identities")
		o.b = append(o.b, '[')
		for i, id := range u.Identities {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			if o.b, ok = appendIdentityCanonical(o.b, id, ok); !ok {
				return b, false
			}
		}
		o.b = append(o.b, ']')
	}
	o.boolean("IsActive", u.IsActive)
	o.key("Number")
	o.b, ok = appendCanonicalValue(o.b, u.Number, ok)
	o.value("Props", u.Props, &ok)
	o.str("RedirectURI", u.RedirectURI)
	o.str("SecretPreview", u.SecretPreview)
	if u.SessionsLimit != nil {
		o.key("SessionsLimit")
		o.b, ok = appendCanonicalValue(o.b, *u.SessionsLimit, ok)
	}
	o.strs("Tags", u.Tags)
	ok = o.time("UpdatedAt", u.UpdatedAt) && ok
	o.str("Username", u.Username)
	return append(o.b, '}'), ok
}

// appendIdentityCanonical appends an identity's canonical form (keeping ok
// false once it is).
func appendIdentityCanonical(b []byte, id Identity, ok bool) ([]byte, bool) {
	o := object{b: append(b, '{')}
	o.str("AvatarURL", id.AvatarURL)
	o.str("DisplayName", id.DisplayName)
	o.str("Email", id.Email)
	o.boolean("EmailVerified", id.EmailVerified)
	o.str("FamilyName", id.FamilyName)
	o.str("GivenName", id.GivenName)
	ok = o.time("LinkedAt", id.LinkedAt) && ok
	o.str("Provider", id.Provider)
	o.value("RawClaims", id.RawClaims, &ok)
	o.str("Subject", id.Subject)
	o.str("Username", id.Username)
	return append(o.b, '}'), ok
}

// object writes one canonical JSON object's members, in the order given
// (the callers give them sorted).
type object struct{ b []byte }

// key starts a member.
func (o *object) key(k string) {
	if o.b[len(o.b)-1] != '{' {
		o.b = append(o.b, ',')
	}
	o.b = jsonenc.AppendString(o.b, k) // keys are not times: utcTimes leaves them
	o.b = append(o.b, ':')
}

func (o *object) str(k, v string) {
	o.key(k)
	o.b = appendCanonicalString(o.b, v)
}

func (o *object) boolean(k string, v bool) {
	o.key(k)
	o.b = appendBool(o.b, v)
}

// strs writes a list of strings, left out when empty.
func (o *object) strs(k string, v []string) {
	if len(v) == 0 {
		return
	}
	o.key(k)
	o.b = append(o.b, '[')
	for i, s := range v {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendCanonicalString(o.b, s)
	}
	o.b = append(o.b, ']')
}

// time writes t as json.Marshal writes it, read back in UTC; false for a time
// outside what the one pass covers.
func (o *object) time(k string, t time.Time) bool {
	// json.Marshal refuses years outside 0–9999, and writes a zone's offset
	// to the minute (a historical offset in seconds would move the instant
	// read back): only times at offset zero are written here.
	if _, offset := t.Zone(); offset != 0 || t.Year() < 0 || t.Year() > 9999 {
		return false
	}
	o.key(k)
	o.b = append(o.b, '"')
	o.b = t.UTC().AppendFormat(o.b, time.RFC3339Nano)
	o.b = append(o.b, '"')
	return true
}

// value writes a JSON value (a map of properties, claims), left out when it
// is null, [] or {} once canonical.
func (o *object) value(k string, v any, ok *bool) {
	mark := len(o.b)
	o.key(k)
	start := len(o.b)
	o.b, *ok = appendCanonicalValue(o.b, v, *ok)
	if emptyJSON(o.b[start:]) {
		o.b = o.b[:mark]
	}
}

// emptyJSON reports whether a canonical value is one utcTimes leaves out.
func emptyJSON(b []byte) bool {
	s := string(b)
	return s == "null" || s == "[]" || s == "{}"
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// appendCanonicalString appends s as it reads after a JSON round trip
// (invalid UTF-8 as U+FFFD) and utcString, then escaped as json.Marshal
// escapes it.
func appendCanonicalString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = jsonReplacement(s)
	}
	return jsonenc.AppendString(b, utcString(s))
}

// jsonReplacement replaces each byte of s that is not valid UTF-8 with
// U+FFFD, as json.Marshal does (strings.ToValidUTF8 would replace a run of
// them with one).
func jsonReplacement(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.WriteString(s[i : i+size])
		}
		i += size
	}
	return sb.String()
}

// appendCanonicalValue appends v, a value as JSON decoding or a request's
// fields give it (nil, bool, string, float64, json.Number, int, map[string]any,
// []any), in canonical form; ok false (kept false once it is) for any
// other type or a value json.Marshal or json.Unmarshal refuses.
func appendCanonicalValue(b []byte, v any, ok bool) ([]byte, bool) {
	if !ok {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return appendBool(b, x), true
	case string:
		return appendCanonicalString(b, x), true
	case float64:
		return jsonenc.AppendFloat(b, x)
	case int:
		return jsonenc.AppendFloat(b, float64(x))
	case int64:
		return jsonenc.AppendFloat(b, float64(x))
	case json.Number:
		s := string(x)
		if s == "" {
			s = "0" // json.Marshal writes the zero Number as 0
		}
		if !jsonenc.ValidNumber(s) {
			return b, false
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return b, false // out of float64's range: json.Unmarshal refuses it
		}
		return jsonenc.AppendFloat(b, f)
	case map[string]any:
		if x == nil {
			return append(b, "null"...), true
		}
		o := object{b: append(b, '{')}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if !utf8.ValidString(k) {
				return b, false // two keys may read back as one
			}
			o.value(k, x[k], &ok)
			if !ok {
				return b, false
			}
		}
		return append(o.b, '}'), true
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendCanonicalValue(b, e, true); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	return b, false
}
