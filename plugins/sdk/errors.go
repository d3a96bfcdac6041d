package sdk

import (
	"context"
	"errors"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
	pluginv1 "github.com/gatehouse/gatehouse/proto/gatehouse/plugin/v1"
)

// codeOf returns the gRPC code for a kind. The exact kind travels in an
// ErrorDetail; the code is the hint for gRPC clients that do not read it.
func codeOf(k errs.Kind) codes.Code {
	switch k {
	case errs.Malformed, errs.Invalid:
		return codes.InvalidArgument
	case errs.Unauthorized:
		return codes.Unauthenticated
	case errs.Forbidden:
		return codes.PermissionDenied
	case errs.NotFound:
		return codes.NotFound
	case errs.Conflict:
		return codes.AlreadyExists
	case errs.PreconditionFailed:
		return codes.FailedPrecondition
	case errs.TooLarge:
		return codes.OutOfRange
	case errs.RateLimited:
		return codes.ResourceExhausted
	case errs.Unavailable:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

// kindOf is the inverse of codeOf, for errors without an ErrorDetail: gRPC's
// own (a dead plugin, a cancelled call) or a foreign server's. Unimplemented
// means the plugin does not serve the method, which is NotFound as for
// Unsupported.
func kindOf(c codes.Code) errs.Kind {
	switch c {
	case codes.InvalidArgument:
		return errs.Invalid
	case codes.Unauthenticated:
		return errs.Unauthorized
	case codes.PermissionDenied:
		return errs.Forbidden
	case codes.NotFound, codes.Unimplemented:
		return errs.NotFound
	case codes.AlreadyExists, codes.Aborted:
		return errs.Conflict
	case codes.FailedPrecondition:
		return errs.PreconditionFailed
	case codes.OutOfRange:
		return errs.TooLarge
	case codes.ResourceExhausted:
		return errs.RateLimited
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
		return errs.Unavailable
	default:
		return errs.Internal
	}
}

// toStatus turns an error into the gRPC status sent across the boundary: its
// kind, client-safe message, fields and retry-after in an ErrorDetail. The
// cause stays on this side of the wire.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	kind := errs.KindOf(err)
	d := &pluginv1.ErrorDetail{
		Kind:             uint32(kind),
		Message:          errs.MessageOf(err),
		RetryAfterMicros: micros(errs.RetryAfterOf(err)),
	}
	for _, f := range errs.FieldsOf(err) {
		d.Fields = append(d.Fields, &pluginv1.FieldError{Field: f.Field, Detail: f.Detail})
	}
	msg := d.Message
	if msg == "" {
		msg = kind.String()
	}
	st, e := status.New(codeOf(kind), msg).WithDetails(d)
	if e != nil { // only for an unregistered detail type
		return status.Error(codeOf(kind), msg)
	}
	return st.Err()
}

// fromStatus turns an error from the other side back into a *errs.Error with
// the kind and message toStatus sent. A status without an ErrorDetail gets its
// code's kind and no message; a cancelled call or an expired deadline is
// Unavailable.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return &errs.Error{Kind: errs.Internal, Err: err}
		}
		st = status.FromContextError(err)
	}
	for _, d := range st.Details() {
		d, ok := d.(*pluginv1.ErrorDetail)
		if !ok || d.Kind == uint32(errs.Other) || d.Kind > math.MaxUint8 {
			continue
		}
		e := &errs.Error{
			Kind:       errs.Kind(d.Kind),
			Msg:        d.Message,
			RetryAfter: time.Duration(d.RetryAfterMicros) * time.Microsecond,
		}
		for _, f := range d.Fields {
			e.Fields = append(e.Fields, errs.FieldError{Field: f.Field, Detail: f.Detail})
		}
		return e
	}
	e := &errs.Error{Kind: kindOf(st.Code()), Err: err}
	switch st.Code() {
	case codes.Canceled:
		e.Msg = "the call was cancelled"
	case codes.DeadlineExceeded:
		e.Msg = "the call timed out"
	}
	return e
}

// answer returns v, or toStatus(err) if err is not nil: the last line of every
// gRPC method that the SDK serves.
func answer[T any](v T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, toStatus(err)
	}
	return v, nil
}

// micros converts a duration to the wire's microseconds, rounding up so that a
// short positive TTL never becomes 0, which means no expiry.
func micros(d time.Duration) int64 {
	if d <= 0 {
		return d.Microseconds()
	}
	return int64((d + time.Microsecond - 1) / time.Microsecond)
}
