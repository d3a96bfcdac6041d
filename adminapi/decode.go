package adminapi

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

// Body limits (SPEC §6).
const (
	adminBodyLimit  = 1 << 20
	publicBodyLimit = 64 << 10
)

// readBody reads a request body of at most limit bytes: TooLarge beyond it,
// Malformed when it is not valid UTF-8 (encoding/json would silently replace it).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	const op = "adminapi.readBody"
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

// decodeFields decodes a JSON object body into core.Fields, numbers kept exact.
func decodeFields(w http.ResponseWriter, r *http.Request, limit int64) (core.Fields, error) {
	b, err := readBody(w, r, limit)
	if err != nil {
		return nil, err
	}
	return parseFields(b)
}

// parseFields decodes one JSON object.
func parseFields(b []byte) (core.Fields, error) {
	var f map[string]any
	if err := unmarshal(b, &f, false); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, core.Errorf(core.Malformed, "adminapi.parseFields", "request body must be a JSON object")
	}
	return core.Fields(f), nil
}

// decodeJSON decodes a JSON body into the struct v, refusing unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	b, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	return unmarshal(b, v, true)
}

// unmarshal decodes exactly one JSON value into v: Malformed for bad JSON, Invalid
// naming the field for a wrong type or (strict) an unknown field.
func unmarshal(b []byte, v any, strict bool) error {
	const op = "adminapi.decode"
	if len(bytes.TrimSpace(b)) == 0 {
		return core.Errorf(core.Malformed, op, "request body must be a JSON object")
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

// listOptions reads the paging query (start, count) and the optional owner filter;
// unknown parameters (the eg CLI's all=true) are ignored, empty ones mean the default.
func listOptions(r *http.Request) (core.ListOptions, error) {
	q := r.URL.Query()
	var opt core.ListOptions
	var errs []core.FieldError
	if v := q.Get("start"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, core.FieldError{Field: "start", Detail: "must be 0 or a nextKey returned earlier"})
		}
		opt.Start = n
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > core.MaxPageSize {
			errs = append(errs, core.FieldError{Field: "count", Detail: "must be an integer between 1 and " + strconv.Itoa(core.MaxPageSize)})
		}
		opt.Count = n
	}
	opt.UserID = q.Get("userId")
	if len(errs) > 0 {
		return opt, core.InvalidFields("adminapi.listOptions", errs...)
	}
	return opt, nil
}
