package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/core"
)

// Body limits: the admin listener's bodies (operators, scripts, dialect
// clients) and the public one's (anyone on the internet).
const (
	AdminBodyLimit  = 1 << 20
	PublicBodyLimit = 64 << 10
)

// ReadBody reads a request body of at most limit bytes: TooLarge beyond it,
// Malformed when it is not valid UTF-8 (encoding/json would silently replace it).
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	const op = "web.ReadBody"
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, core.Errorf(core.TooLarge, op, "request body is larger than %d bytes", limit)
		}
		return nil, core.Errorf(core.Malformed, op, "request body could not be read")
	}
	if !utf8.Valid(b) {
		return nil, core.Errorf(core.Malformed, op, "request body is not valid UTF-8")
	}
	return b, nil
}

// DecodeFields reads a JSON object body into core.Fields, numbers kept exact
// (json.Number).
func DecodeFields(w http.ResponseWriter, r *http.Request, limit int64) (core.Fields, error) {
	b, err := ReadBody(w, r, limit)
	if err != nil {
		return nil, err
	}
	return ParseFields(b)
}

// ParseFields decodes one JSON object into core.Fields.
func ParseFields(b []byte) (core.Fields, error) {
	var f map[string]any
	if err := Unmarshal(b, &f, false); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, core.Errorf(core.Malformed, "web.ParseFields", "request body must be a JSON object")
	}
	return core.Fields(f), nil
}

// DecodeJSON reads a JSON body into the struct v, refusing unknown fields.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	b, err := ReadBody(w, r, limit)
	if err != nil {
		return err
	}
	return Unmarshal(b, v, true)
}

// Unmarshal decodes exactly one JSON value into v: Malformed for bad JSON or
// an object holding one key twice (a last-one-wins reading would let
// `"isActive":true,"isActive":false` mean what a reviewer does not see),
// Invalid naming the field for a wrong type or, when strict, an unknown field.
func Unmarshal(b []byte, v any, strict bool) error {
	const op = "web.Unmarshal"
	if len(bytes.TrimSpace(b)) == 0 {
		return core.Errorf(core.Malformed, op, "request body must be a JSON object")
	}
	if err := checkDuplicates(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	if err == nil {
		return nil
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return core.Errorf(core.Malformed, op, "request body must be a JSON object")
		}
		return core.InvalidFields(op, core.FieldError{Field: te.Field, Detail: "must be " + jsonKind(te.Type.Kind().String())})
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return core.InvalidFields(op, core.FieldError{Field: name, Detail: "unknown property"})
	}
	return &core.Error{Kind: core.Malformed, Op: op, Msg: "request body is not valid JSON", Err: err}
}

// checkDuplicates answers Malformed, naming the dotted path of the first key
// that appears twice in one object of the JSON text b. Syntax errors are left
// to the decoder that follows. Most bodies name every key once (keysDistinct
// tells in one pass over the bytes); the others are walked token by token
// (duplicateKey), which costs a create about a twentieth of its CPU.
func checkDuplicates(b []byte) error {
	if keysDistinct(b) {
		return nil
	}
	return duplicateKey(b)
}

// keysDistinct reports that no object of b holds a key twice, when it can
// tell in one pass: b has no backslash, so every string runs from a quote to
// the next one, and no key text appears twice in b, in any object (a key
// being a string right after an object's '{' or a ',' in it, as the decoder
// reads one). It answers false when unsure: an escape, a key text seen twice
// (maybe in two objects), a key that is not valid UTF-8 (the decoder reads
// every invalid byte as U+FFFD, so two different texts may be one key), an
// unterminated string, more keys than it compares or nesting deeper than it
// follows.
func keysDistinct(b []byte) bool {
	if bytes.IndexByte(b, '\\') >= 0 {
		return false
	}
	var keys [32][]byte
	n := 0
	var objects uint64 // bit d: the value open at depth d is an object
	depth := 0
	var prev byte // the last byte outside strings and white space
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[':
			if depth == 64 {
				return false
			}
			objects &^= 1 << depth
			if c == '{' {
				objects |= 1 << depth
			}
			depth++
		case '}', ']':
			depth = max(depth-1, 0)
		case '"':
			end := bytes.IndexByte(b[i+1:], '"')
			if end < 0 {
				return false
			}
			text := b[i+1 : i+1+end]
			i += 1 + end // the closing quote
			if depth == 0 || objects&(1<<(depth-1)) == 0 || prev != '{' && prev != ',' {
				break // a value
			}
			if n == len(keys) || !utf8.Valid(text) {
				return false
			}
			for _, k := range keys[:n] {
				if bytes.Equal(k, text) {
					return false
				}
			}
			keys[n] = text
			n++
		}
		prev = c
	}
	return true
}

// duplicateKey walks the JSON text token by token and answers Malformed,
// naming the dotted path of the first key that appears twice in one object.
func duplicateKey(b []byte) error {
	type frame struct {
		object bool
		seen   map[string]bool
		key    string // the current key (objects) or index (arrays), for paths
		index  int
		expect bool // objects: the next token is a key
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	path := func(last string) string {
		parts := make([]string, 0, len(stack))
		for _, f := range stack[:len(stack)-1] {
			parts = append(parts, f.key)
		}
		return strings.Join(append(parts, last), ".")
	}
	// value is called after each complete value inside the top frame.
	value := func() {
		if len(stack) == 0 {
			return
		}
		top := stack[len(stack)-1]
		if top.object {
			top.expect = true
		} else {
			top.index++
			top.key = strconv.Itoa(top.index)
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF, or a syntax error the decoder reports
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				value()
				continue
			}
			key, _ := tok.(string)
			if top.seen[key] {
				field := path(key)
				return &core.Error{Kind: core.Malformed, Op: "web.Unmarshal",
					Msg:    "request body holds key " + strconv.Quote(field) + " more than once",
					Fields: []core.FieldError{{Field: field, Detail: "appears more than once"}}}
			}
			top.seen[key] = true
			top.key = key
			top.expect = false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, expect: true})
		case '[':
			stack = append(stack, &frame{key: "0"})
		case ']', '}':
			stack = stack[:len(stack)-1]
			value()
		default:
			value()
		}
	}
}

// jsonKind names a Go kind as JSON calls it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	}
	return "of another type"
}
