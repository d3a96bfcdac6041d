package redisstore

import (
	"strings"
	"time"
	"unicode/utf8"
)

// A verification's lean decoding of the user's and the credential's records
// (userAuthRecord, credAuthRecord): encoding/json's reflection was a tenth of
// a /verify miss's CPU. leanUser and leanCredential read the form Gatehouse
// writes (compact, keys spelled as the struct tags, strings without escapes)
// and answer false for anything else: a key spelled otherwise that
// encoding/json would match (it matches keys case-insensitively), an escape,
// a null, a repeated key, a value of another type, a syntax error, deep
// nesting. decodeUser and decodeCredential then decode with encoding/json, so
// every record reads exactly as json.Unmarshal reads it
// (FuzzLeanAuthRecords compares the two).

// leanMaxDepth is how deep the values skipped may nest before the lean
// decoding gives up (encoding/json allows 10,000 levels).
const leanMaxDepth = 64

// leanScan reads JSON from s at i.
type leanScan struct {
	s string
	i int
}

func (d *leanScan) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips whitespace and reports whether the next byte is c, consuming it
// when it is.
func (d *leanScan) next(c byte) bool {
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// plainString reads a string without escapes (after whitespace): its
// contents, shared with s. False for anything else, and for a string that is
// not valid UTF-8 (encoding/json replaces its bad bytes).
func (d *leanScan) plainString() (string, bool) {
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			v := d.s[start:j]
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			d.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// key reads an object member's name and its colon. known lists the names
// the struct has: a name that equals one of them ignoring ASCII case, but is
// spelled otherwise, answers false (encoding/json would match it), as does a
// name that is not plain ASCII (it folds some other letters too).
func (d *leanScan) key(known []string) (string, bool) {
	k, ok := d.plainString()
	if !ok || !d.next(':') {
		return "", false
	}
	for i := 0; i < len(k); i++ {
		if k[i] >= utf8.RuneSelf {
			return "", false
		}
	}
	for _, n := range known {
		if len(k) == len(n) && k != n && strings.EqualFold(k, n) {
			return "", false
		}
	}
	return k, true
}

// bool reads true or false.
func (d *leanScan) bool() (bool, bool) {
	d.ws()
	switch {
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += 4
		return true, true
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += 5
		return false, true
	}
	return false, false
}

// flag reads true or false into a *bool, as encoding/json does (not null,
// which leaves the lean decoding).
func (d *leanScan) flag() (*bool, bool) {
	v, ok := d.bool()
	if !ok {
		return nil, false
	}
	return &v, true
}

// strings reads an array of plain strings: never nil, as encoding/json
// decodes [] into a nil slice.
func (d *leanScan) strings() ([]string, bool) {
	if !d.next('[') {
		return nil, false
	}
	out := []string{}
	if d.next(']') {
		return out, true
	}
	for {
		v, ok := d.plainString()
		if !ok {
			return nil, false
		}
		out = append(out, strings.Clone(v))
		if d.next(']') {
			return out, true
		}
		if !d.next(',') {
			return nil, false
		}
	}
}

// time reads a string as time.Time's UnmarshalJSON does (it reads the
// quoted bytes as they are, unescaped).
func (d *leanScan) time() (time.Time, bool) {
	d.ws()
	start := d.i
	if _, ok := d.plainString(); !ok {
		return time.Time{}, false
	}
	var t time.Time
	if t.UnmarshalJSON([]byte(d.s[start:d.i])) != nil {
		return time.Time{}, false
	}
	return t, true
}

// skip reads any valid JSON value, nested at most depth levels deep.
func (d *leanScan) skip(depth int) bool {
	d.ws()
	if d.i >= len(d.s) || depth <= 0 {
		return false
	}
	switch c := d.s[d.i]; {
	case c == '"':
		return d.skipString()
	case c == '{':
		d.i++
		if d.next('}') {
			return true
		}
		for {
			d.ws()
			if !d.skipString() || !d.next(':') || !d.skip(depth-1) {
				return false
			}
			if d.next('}') {
				return true
			}
			if !d.next(',') {
				return false
			}
		}
	case c == '[':
		d.i++
		if d.next(']') {
			return true
		}
		for {
			if !d.skip(depth - 1) {
				return false
			}
			if d.next(']') {
				return true
			}
			if !d.next(',') {
				return false
			}
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.skipNumber()
	}
	return false
}

func (d *leanScan) literal(l string) bool {
	if !strings.HasPrefix(d.s[d.i:], l) {
		return false
	}
	d.i += len(l)
	return true
}

// skipString reads a string with any valid escapes; its bytes need not be
// valid UTF-8 (encoding/json accepts them).
func (d *leanScan) skipString() bool {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return false
	}
	for j := d.i + 1; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			d.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(d.s) {
				return false
			}
			switch d.s[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(d.s) {
					return false
				}
				for _, h := range []byte(d.s[j+1 : j+5]) {
					if !isHex(h) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// skipNumber reads a number as JSON's grammar has it.
func (d *leanScan) skipNumber() bool {
	s, i := d.s, d.i
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	d.i = i
	return true
}

// object reads an object, calling member for each name (after its colon);
// member reads the value and answers whether it could. A name repeated
// answers false (seen holds a bit per name of known).
func (d *leanScan) object(known []string, member func(k int) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	var seen uint32
	for {
		k, ok := d.key(known)
		if !ok {
			return false
		}
		idx := -1
		for i, n := range known {
			if k == n {
				idx = i
				break
			}
		}
		if idx < 0 {
			if !d.skip(leanMaxDepth) {
				return false
			}
		} else {
			if seen&(1<<idx) != 0 || !member(idx) {
				return false
			}
			seen |= 1 << idx
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

// end reports whether only whitespace is left.
func (d *leanScan) end() bool {
	d.ws()
	return d.i == len(d.s)
}

// The names of the members the lean records read, in the order of the
// switches below.
var (
	userAuthNames = []string{"id", "username", "isActive", "groups", "tags", "u", "a"}
	credAuthNames = []string{"type", "id", "consumerId", "consumerKind", "userId", "isActive", "scopes", "secret", "s256", "algorithm", "expiresAt", "a", "h"}
	grantNames    = []string{"name", "reg"}
)

// leanUser decodes data into r as json.Unmarshal would, or answers false.
func leanUser(data string, r *userAuthRecord) bool {
	d := leanScan{s: data}
	var ok bool
	return d.object(userAuthNames, func(k int) bool {
		switch k {
		case 0, 1, 5:
			// Kept by the verification cache (a copy, not the whole record).
			var v string
			v, ok = d.plainString()
			switch k {
			case 0:
				r.ID = strings.Clone(v)
			case 1:
				r.Username = strings.Clone(v)
			default:
				r.U = strings.Clone(v)
			}
		case 2:
			r.IsActive, ok = d.bool()
		case 3:
			r.Groups, ok = d.strings()
		case 4:
			r.Tags, ok = d.strings()
		case 6:
			r.A, ok = d.flag()
		}
		return ok
	}) && d.end()
}

// leanCredential decodes data into r as json.Unmarshal would, or answers false.
func leanCredential(data string, r *credAuthRecord) bool {
	d := leanScan{s: data}
	var ok bool
	return d.object(credAuthNames, func(k int) bool {
		switch k {
		case 0:
			r.Type, ok = d.plainString()
		case 1:
			r.ID, ok = d.plainString()
		case 2:
			r.ConsumerID, ok = d.plainString()
		case 3:
			r.ConsumerKind, ok = d.plainString()
		case 4:
			r.UserID, ok = d.plainString()
		case 5:
			r.IsActive, ok = d.bool()
		case 6:
			r.Scopes, ok = d.grants()
		case 7:
			r.Secret, ok = d.plainString()
		case 8:
			r.Sha256, ok = d.plainString()
		case 9:
			r.Algorithm, ok = d.plainString()
		case 10:
			r.ExpiresAt, ok = d.time()
		case 11:
			r.A, ok = d.flag()
		case 12:
			r.H, ok = d.plainString()
		}
		return ok
	}) && d.end()
}

// grants reads an array of grantRecords: never nil, as for strings.
func (d *leanScan) grants() ([]grantRecord, bool) {
	if !d.next('[') {
		return nil, false
	}
	out := []grantRecord{}
	if d.next(']') {
		return out, true
	}
	for {
		var g grantRecord
		var ok bool
		if !d.object(grantNames, func(k int) bool {
			var v string
			v, ok = d.plainString()
			if k == 0 {
				g.Name = strings.Clone(v) // kept by the verification cache, as the username
			} else {
				g.Reg = v
			}
			return ok
		}) {
			return nil, false
		}
		out = append(out, g)
		if d.next(']') {
			return out, true
		}
		if !d.next(',') {
			return nil, false
		}
	}
}
