package sdk

import (
	"context"
	"errors"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/core"
	pluginv1 "github.com/gatehouse/gatehouse/proto/gatehouse/plugin/v1"
)

// codeOf returns the gRPC code for a kind. The exact kind travels in an
// ErrorDetail; the code is the hint for gRPC clients that do not read it.
func codeOf(k core.Kind) codes.Code {
	switch k {
	case core.Malformed, core.Invalid:
		return codes.InvalidArgument
	case core.Unauthorized:
		return codes.Unauthenticated
	case core.Forbidden:
		return codes.PermissionDenied
	case core.NotFound:
		return codes.NotFound
	case core.Conflict:
		return codes.AlreadyExists
	case core.PreconditionFailed:
		return codes.FailedPrecondition
	case core.TooLarge:
		return codes.OutOfRange
	case core.RateLimited:
		return codes.ResourceExhausted
	case core.Unavailable:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

// kindOf is the inverse of codeOf, for errors without an ErrorDetail: gRPC's
// own (a dead plugin, a cancelled call) or a foreign server's. Unimplemented
// means the plugin does not serve the method, which is NotFound as for
// Unsupported.
func kindOf(c codes.Code) core.Kind {
	switch c {
	case codes.InvalidArgument:
		return core.Invalid
	case codes.Unauthenticated:
		return core.Unauthorized
	case codes.PermissionDenied:
		return core.Forbidden
	case codes.NotFound, codes.Unimplemented:
		return core.NotFound
	case codes.AlreadyExists, codes.Aborted:
		return core.Conflict
	case codes.FailedPrecondition:
		return core.PreconditionFailed
	case codes.OutOfRange:
		return core.TooLarge
	case codes.ResourceExhausted:
		return core.RateLimited
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
		return core.Unavailable
	default:
		return core.Internal
	}
}

// toStatus turns an error into the gRPC status sent across the boundary: its
// kind, client-safe message, fields and retry-after in an ErrorDetail. The
// cause stays on this side of the wire.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	kind := core.KindOf(err)
	d := &pluginv1.ErrorDetail{
		Kind:             uint32(kind),
		Message:          core.MessageOf(err),
		RetryAfterMicros: micros(core.RetryAfterOf(err)),
	}
	for _, f := range core.FieldsOf(err) {
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

// fromStatus turns an error from the other side back into a *core.Error with
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
			return &core.Error{Kind: core.Internal, Err: err}
		}
		st = status.FromContextError(err)
	}
	for _, d := range st.Details() {
		d, ok := d.(*pluginv1.ErrorDetail)
		if !ok || d.Kind == uint32(core.Other) || d.Kind > math.MaxUint8 {
			continue
		}
		e := &core.Error{
			Kind:       core.Kind(d.Kind),
			Msg:        d.Message,
			RetryAfter: time.Duration(d.RetryAfterMicros) * time.Microsecond,
		}
		for _, f := range d.Fields {
			e.Fields = append(e.Fields, core.FieldError{Field: f.Field, Detail: f.Detail})
		}
		return e
	}
	e := &core.Error{Kind: kindOf(st.Code()), Err: err}
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
