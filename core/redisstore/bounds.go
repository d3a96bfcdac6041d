package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// bounds are the time limits of a store's (or a Limiter's) calls to Redis:
// Options.ReadTimeout and Options.WriteTimeout. Each is a context deadline
// under the caller's context, so the sooner of the two wins; a client from
// NewClient applies it to the socket, so a stalled Redis frees the caller when
// it passes, and go-redis drops the connection that waited (the next call
// dials a fresh one, which is how the store recovers when Redis does).
type bounds struct {
	read, write time.Duration
	// The causes of the contexts, made once (newBounds): every read of a
	// /verify miss would allocate its own otherwise. Never changed.
	readCause, writeCause *timeoutError
}

func newBounds(read, write time.Duration) bounds {
	return bounds{read: read, write: write, readCause: &timeoutError{d: read}, writeCause: &timeoutError{d: write}}
}

// reading bounds a read: the whole call.
func (b bounds) reading(ctx context.Context) (context.Context, context.CancelFunc) {
	return boundedBy(ctx, b.read, b.readCause)
}

// writing bounds a write that is a single step.
func (b bounds) writing(ctx context.Context) (context.Context, context.CancelFunc) {
	return boundedBy(ctx, b.write, b.writeCause)
}

// step runs one step of a write under the write timeout. Its error says so
// when the timeout passed.
func (b bounds) step(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := b.writing(ctx)
	defer cancel()
	return timedOut(ctx, f(ctx))
}

// stepValue runs f as one step of a write, as bounds.step does, and returns
// its value.
func stepValue[T any](ctx context.Context, b bounds, f func(context.Context) (T, error)) (T, error) {
	var v T
	err := b.step(ctx, func(ctx context.Context) (err error) {
		v, err = f(ctx)
		return err
	})
	return v, err
}

// cleanup returns a context for the clean-up after a failed or finished write
// (releasing claims, rolling back, index entries): bounded by the write
// timeout, but not cancelled with the request, whose work it completes.
func (b bounds) cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return boundedBy(context.WithoutCancel(ctx), b.write, b.writeCause)
}

// bounded returns ctx with a deadline d from now, or the caller's if sooner;
// when d passes first, the context's cause is a *timeoutError naming d.
func bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return boundedBy(ctx, d, nil)
}

// boundedBy is bounded with the cause made already (nil: made now).
func boundedBy(ctx context.Context, d time.Duration, cause *timeoutError) (context.Context, context.CancelFunc) {
	if cause == nil || cause.d != d {
		cause = &timeoutError{d: d}
	}
	return context.WithTimeoutCause(ctx, d, cause)
}

// timeoutError says that Redis did not answer within a bound.
type timeoutError struct {
	d   time.Duration
	err error // what the Redis call returned, if known
}

func (e *timeoutError) msg() string { return "redis did not answer within " + e.d.String() }

func (e *timeoutError) Error() string {
	if e.err == nil {
		return e.msg()
	}
	return e.msg() + ": " + e.err.Error()
}

func (e *timeoutError) Unwrap() error { return e.err }

// timedOut returns err, as a *timeoutError when ctx's own bound passed. Errors
// of the store's own kinds pass as they are: they were decided, not cut short.
func timedOut(ctx context.Context, err error) error {
	if err == nil || !ended(ctx) {
		return err
	}
	if _, ok := errors.AsType[*core.Error](err); ok {
		return err
	}
	if _, ok := errors.AsType[*fnError](err); ok {
		return err
	}
	if _, ok := errors.AsType[*timeoutError](err); ok {
		return err
	}
	if t, ok := context.Cause(ctx).(*timeoutError); ok {
		return &timeoutError{d: t.d, err: err}
	}
	return err
}

// ended reports whether ctx is done or its deadline has passed. A socket
// deadline set from ctx (a client from NewClient) can fire before ctx's own
// timer has run, on a loaded machine; ended then waits for that timer, which
// is due, so that the call reads as cut by its bound, cause included.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	if d, ok := ctx.Deadline(); !ok || time.Now().Before(d) {
		return false
	}
	<-ctx.Done()
	return true
}

// fail wraps a Redis (or context) error of a call with context ctx as
// Unavailable, saying so when a bound passed; *core.Error values and the
// errors of update functions pass through unchanged.
func fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*fnError](err); ok {
		return e.err
	}
	if _, ok := errors.AsType[*core.Error](err); ok {
		return err
	}
	if t, ok := errors.AsType[*timeoutError](timedOut(ctx, err)); ok {
		cause := t.err
		if cause == nil {
			cause = err
		}
		return &core.Error{Kind: core.Unavailable, Op: op, Msg: t.msg(), Err: cause}
	}
	return &core.Error{Kind: core.Unavailable, Op: op, Err: err}
}
