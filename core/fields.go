package core

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Fields is a decoded JSON object of a request (numbers as json.Number), as the
// native admin API and the dialect adapters hand it to the services. The services
// own the rules for every field name: which are built-in, read-only, or left to the
// model schema.
type Fields map[string]any

// checker reads typed fields out of a Fields value, taking each field it reads (so
// what is left over belongs to the model) and collecting every problem at once.
type checker struct {
	prefix string // "credential." for nested objects
	errs   []FieldError
}

func (c *checker) fail(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: c.prefix + field, Detail: fmt.Sprintf(format, args...)})
}

// failed reports whether a problem was recorded for field.
func (c *checker) failed(field string) bool {
	return slices.ContainsFunc(c.errs, func(e FieldError) bool { return e.Field == c.prefix+field })
}

// err returns the collected problems as one Invalid error, or nil.
func (c *checker) err(op string) error {
	if len(c.errs) == 0 {
		return nil
	}
	return InvalidFields(op, c.errs...)
}

// addErr merges the field errors of err (or err's message under field) into c.
func (c *checker) addErr(field string, err error) {
	if err == nil {
		return
	}
	if fs := FieldsOf(err); len(fs) > 0 {
		for _, f := range fs {
			name := f.Field
			if name == "" {
				name = field
			}
			c.errs = append(c.errs, FieldError{Field: c.prefix + name, Detail: f.Detail})
		}
		return
	}
	msg := MessageOf(err)
	if msg == "" {
		msg = "is invalid"
	}
	c.errs = append(c.errs, FieldError{Field: c.prefix + field, Detail: msg})
}

// take removes name from f and reports its value; present is false when absent,
// and a JSON null is reported as present with a nil value.
func take(f Fields, name string) (v any, present bool) {
	v, present = f[name]
	delete(f, name)
	return v, present
}

// str takes a string field. null reports null=true.
func (c *checker) str(f Fields, name string) (s string, present, null bool) {
	v, present := take(f, name)
	if !present {
		return "", false, false
	}
	if v == nil {
		return "", true, true
	}
	s, ok := v.(string)
	if !ok {
		c.fail(name, "must be a string")
		return "", false, false
	}
	return s, true, false
}

// boolean takes a boolean field; null is refused.
func (c *checker) boolean(f Fields, name string) (b, present bool) {
	v, present := take(f, name)
	if !present {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		c.fail(name, "must be a boolean")
		return false, false
	}
	return b, true
}

// integer takes an integer field within [lo, hi]; null reports null=true.
func (c *checker) integer(f Fields, name string, lo, hi int64) (n int64, present, null bool) {
	v, present := take(f, name)
	if !present {
		return 0, false, false
	}
	if v == nil {
		return 0, true, true
	}
	n, ok := asInt(v)
	if !ok {
		c.fail(name, "must be an integer")
		return 0, false, false
	}
	if n < lo || n > hi {
		c.fail(name, "must be between %d and %d", lo, hi)
		return 0, false, false
	}
	return n, true, false
}

// stringList takes a field holding a string or an array of strings (Express
// Gateway's scopes accept both).
func (c *checker) stringList(f Fields, name string) (list []string, present bool) {
	v, present := take(f, name)
	if !present || v == nil {
		return nil, present
	}
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		list = make([]string, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				c.fail(name+"."+strconv.Itoa(i), "must be a string")
				continue
			}
			list = append(list, s)
		}
		return list, true
	}
	c.fail(name, "must be a string or an array of strings")
	return nil, false
}

// timestamp takes an RFC 3339 timestamp field; null reports null=true.
func (c *checker) timestamp(f Fields, name string) (t time.Time, present, null bool) {
	s, present, null := c.str(f, name)
	if !present || null {
		return time.Time{}, present, null
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		c.fail(name, "must be an RFC 3339 timestamp")
		return time.Time{}, false, false
	}
	return t.UTC(), true, false
}

// readOnly takes a field the client may not set: accepted only when it equals the
// stored value (so GET → edit → PUT works), refused otherwise; on create, where
// there is no stored value, any value is refused.
func (c *checker) readOnly(f Fields, name string, stored any, exists bool) {
	v, present := take(f, name)
	if !present {
		return
	}
	if exists && sameValue(v, stored) {
		return
	}
	c.fail(name, "is read-only")
}

// sameValue compares a request value with a stored one of Go type string, bool,
// int64, *int, time.Time or nil.
func sameValue(v, stored any) bool {
	switch s := stored.(type) {
	case nil:
		return v == nil
	case string:
		x, ok := v.(string)
		return ok && x == s
	case bool:
		x, ok := v.(bool)
		return ok && x == s
	case int64:
		x, ok := asInt(v)
		return ok && x == s
	case *int:
		if s == nil {
			return v == nil
		}
		x, ok := asInt(v)
		return ok && x == int64(*s)
	case time.Time:
		x, ok := v.(string)
		if !ok {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, x)
		return err == nil && t.Equal(s)
	}
	return false
}

// asInt converts a JSON number to an int64 when it is integral.
func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64()
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

// cloneFields returns a shallow copy of f, so the checker can take fields without
// changing the caller's value.
func cloneFields(f Fields) Fields {
	if f == nil {
		return Fields{}
	}
	return maps.Clone(f)
}

// maxURILen bounds redirect URIs, in bytes (what browsers and proxies reliably carry).
const maxURILen = 2048

// validURI reports whether s is an absolute URI with a scheme, of at most
// maxURILen bytes, as redirect URIs must be.
func validURI(s string) bool {
	if len(s) > maxURILen {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && !strings.ContainsAny(s, " \t\r\n")
}

// printable reports whether s is valid UTF-8 made of graphic characters and spaces.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return false
		}
	}
	return true
}
