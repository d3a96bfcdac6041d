// Package errs holds the error kinds of Gatehouse and its plugins: an error
// carries a kind (what went wrong, for the client), an operation, a message
// safe to show to clients and a cause that is only logged.
//
// It depends on the standard library only, so that a plugin links nothing of
// the server: the server's core re-exports these names (core.Kind is
// errs.Kind, core.Error is errs.Error), and an *errs.Error a plugin returns
// reaches the host with its kind, message, fields and retry-after intact.
package errs

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies an error for clients. Kinds cross HTTP and the plugin
// protocol as their numbers, so the list is append only: a kind keeps its
// value forever.
type Kind uint8

// The error kinds, each answered with one HTTP status by the admin API.
const (
	Other              Kind = iota // not classified here; look further down the chain
	Internal                       // 500: a fault of the server, told to the client as "internal error"
	Malformed                      // 400: the request cannot be read (bad JSON, a bad header)
	Invalid                        // 422: the request is readable but breaks a rule
	Unauthorized                   // 401: no or wrong credentials
	Forbidden                      // 403: credentials that may not do this
	NotFound                       // 404: no such thing, or not supported by this plugin
	Conflict                       // 409: taken, or changed meanwhile
	PreconditionFailed             // 412: the thing is not in the state the operation needs
	TooLarge                       // 413: a body or value over its limit
	RateLimited                    // 429: too many tries; RetryAfter says when to come back
	Unavailable                    // 503: a dependency (store, plugin, mail server) cannot answer now
)

var kindNames = [...]string{
	Other: "other", Internal: "internal", Malformed: "malformed", Invalid: "invalid",
	Unauthorized: "unauthorized", Forbidden: "forbidden", NotFound: "not_found",
	Conflict: "conflict", PreconditionFailed: "precondition_failed", TooLarge: "too_large",
	RateLimited: "rate_limited", Unavailable: "unavailable",
}

// String returns the kind's stable snake_case name, used in problem types and logs.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// FieldError names one field at fault in a request, as a dotted path
// ("credential.scopes.0"), with a message safe to show to the client.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Error is the error type of Gatehouse and its plugins. Msg is safe to show to
// clients and never holds a secret; Err is the cause, logged only (it never
// crosses the plugin protocol).
type Error struct {
	Kind   Kind
	Op     string       // the operation, "redisstore.GetUser"
	Msg    string       // safe for clients
	Fields []FieldError // validation failures, when Kind is Invalid or Malformed
	Err    error        // the cause, for logs
	// RetryAfter tells a rate-limited client when to try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var s string
	if e.Op != "" {
		s = e.Op + ": "
	}
	switch {
	case e.Msg != "" && e.Err != nil:
		s += e.Msg + ": " + e.Err.Error()
	case e.Msg != "":
		s += e.Msg
	case e.Err != nil:
		s += e.Err.Error()
	default:
		s += e.Kind.String()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k whose client message is the formatted text.
func Errorf(k Kind, op, format string, args ...any) error {
	return &Error{Kind: k, Op: op, Msg: fmt.Sprintf(format, args...)}
}

// E wraps err with a kind and an operation; the message stays the cause's.
func E(k Kind, op string, err error) error {
	return &Error{Kind: k, Op: op, Err: err}
}

// InvalidFields returns an Invalid error listing the fields at fault.
func InvalidFields(op string, fields ...FieldError) error {
	var msg string
	switch {
	case len(fields) == 1 && fields[0].Field == "":
		msg = fields[0].Detail
	case len(fields) == 1:
		msg = fields[0].Field + ": " + fields[0].Detail
	default:
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = f.Field
		}
		msg = fmt.Sprintf("%d fields are invalid: %s", len(fields), strings.Join(names, ", "))
	}
	return &Error{Kind: Invalid, Op: op, Msg: msg, Fields: fields}
}

// KindOf returns the first kind other than Other in err's chain; Internal if there
// is none, and Other only for a nil error.
func KindOf(err error) Kind {
	if err == nil {
		return Other
	}
	for err != nil {
		e, ok := errors.AsType[*Error](err)
		if !ok {
			break
		}
		if e.Kind != Other {
			return e.Kind
		}
		err = e.Err
	}
	return Internal
}

// MessageOf returns the first client-safe message in err's chain, or "" if none.
func MessageOf(err error) string {
	for err != nil {
		e, ok := errors.AsType[*Error](err)
		if !ok {
			return ""
		}
		if e.Msg != "" {
			return e.Msg
		}
		err = e.Err
	}
	return ""
}

// FieldsOf returns the field errors of the first *Error in err's chain that has any.
func FieldsOf(err error) []FieldError {
	for err != nil {
		e, ok := errors.AsType[*Error](err)
		if !ok {
			return nil
		}
		if len(e.Fields) > 0 {
			return e.Fields
		}
		err = e.Err
	}
	return nil
}

// RetryAfterOf returns the first RetryAfter set in err's chain, or 0.
func RetryAfterOf(err error) time.Duration {
	for err != nil {
		e, ok := errors.AsType[*Error](err)
		if !ok {
			return 0
		}
		if e.RetryAfter > 0 {
			return e.RetryAfter
		}
		err = e.Err
	}
	return 0
}
