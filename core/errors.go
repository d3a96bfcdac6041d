package core

import (
	"time"

	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// The error kinds and the error type are the plugin SDK's errs package,
// re-exported under the names core has always used: the kinds cross the plugin
// protocol, so plugins and the core must share them, and errs depends on the
// standard library only, so a plugin links nothing of core. Because these are
// aliases, an *errs.Error a plugin returns is a *core.Error.

// Kind classifies an error for clients; see errs.Kind. Append only: kinds
// cross HTTP and gRPC as their numbers.
type Kind = errs.Kind

// The error kinds; adminapi answers each with one HTTP status.
const (
	Other              = errs.Other
	Internal           = errs.Internal
	Malformed          = errs.Malformed
	Invalid            = errs.Invalid
	Unauthorized       = errs.Unauthorized
	Forbidden          = errs.Forbidden
	NotFound           = errs.NotFound
	Conflict           = errs.Conflict
	PreconditionFailed = errs.PreconditionFailed
	TooLarge           = errs.TooLarge
	RateLimited        = errs.RateLimited
	Unavailable        = errs.Unavailable
)

// FieldError names one field at fault in a request; see errs.FieldError.
type FieldError = errs.FieldError

// Error is the error type of Gatehouse; see errs.Error. Msg is safe to show
// to clients and never holds a secret; Err is the cause, logged only.
type Error = errs.Error

// Errorf returns an *Error of kind k whose client message is the formatted text.
func Errorf(k Kind, op, format string, args ...any) error {
	return errs.Errorf(k, op, format, args...)
}

// E wraps err with a kind and an operation; the message stays the cause's.
func E(k Kind, op string, err error) error { return errs.E(k, op, err) }

// InvalidFields returns an Invalid error listing the fields at fault.
func InvalidFields(op string, fields ...FieldError) error { return errs.InvalidFields(op, fields...) }

// KindOf returns the first kind other than Other in err's chain; Internal if
// there is none, and Other only for a nil error.
func KindOf(err error) Kind { return errs.KindOf(err) }

// MessageOf returns the first client-safe message in err's chain, or "" if none.
func MessageOf(err error) string { return errs.MessageOf(err) }

// FieldsOf returns the field errors of the first *Error in err's chain that has any.
func FieldsOf(err error) []FieldError { return errs.FieldsOf(err) }

// RetryAfterOf returns the first RetryAfter set in err's chain, or 0.
func RetryAfterOf(err error) time.Duration { return errs.RetryAfterOf(err) }
