package errs

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestKindValues pins every kind's number and name: kinds cross the plugin
// protocol as numbers, so a plugin built against an older SDK must keep
// meaning the same kind. New kinds go at the end.
func TestKindValues(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		num  uint8
		name string
	}{
		{Other, 0, "other"}, {Internal, 1, "internal"}, {Malformed, 2, "malformed"}, {Invalid, 3, "invalid"},
		{Unauthorized, 4, "unauthorized"}, {Forbidden, 5, "forbidden"}, {NotFound, 6, "not_found"},
		{Conflict, 7, "conflict"}, {PreconditionFailed, 8, "precondition_failed"}, {TooLarge, 9, "too_large"},
		{RateLimited, 10, "rate_limited"}, {Unavailable, 11, "unavailable"},
	} {
		if uint8(tc.kind) != tc.num || tc.kind.String() != tc.name {
			t.Errorf("kind %s = %d, want %s = %d", tc.kind, uint8(tc.kind), tc.name, tc.num)
		}
	}
	if got := Kind(200).String(); got != "kind(200)" {
		t.Errorf("an unknown kind's name = %q", got)
	}
}

// TestChain: the accessors read the outermost value set along the chain, so
// an operation that wraps an error keeps the cause's kind and message unless
// it says otherwise; an error with no kind is Internal.
func TestChain(t *testing.T) {
	cause := errors.New("dial tcp: the secret cause")
	inner := &Error{Kind: RateLimited, Op: "inner", Msg: "slow down", RetryAfter: 2 * time.Second,
		Fields: []FieldError{{Field: "a", Detail: "bad"}}, Err: cause}
	outer := fmt.Errorf("wrapped: %w", &Error{Op: "outer", Err: inner})
	if KindOf(outer) != RateLimited || MessageOf(outer) != "slow down" || RetryAfterOf(outer) != 2*time.Second ||
		len(FieldsOf(outer)) != 1 || !errors.Is(outer, cause) {
		t.Errorf("through the chain: kind %s, message %q, retry %v, fields %v",
			KindOf(outer), MessageOf(outer), RetryAfterOf(outer), FieldsOf(outer))
	}
	if k := KindOf(&Error{Kind: NotFound, Err: inner}); k != NotFound {
		t.Errorf("the outer kind = %s, want not_found", k)
	}
	if KindOf(cause) != Internal || MessageOf(cause) != "" || KindOf(E(Other, "op", cause)) != Internal {
		t.Error("an error without a kind is not Internal, or has a client message")
	}
	if KindOf(nil) != Other || RetryAfterOf(nil) != 0 || FieldsOf(nil) != nil {
		t.Error("nil has a kind, a retry-after or fields")
	}
	if got := inner.Error(); got != "inner: slow down: dial tcp: the secret cause" {
		t.Errorf("Error() = %q", got) // the cause is for logs, so Error() has it
	}
	if got := (&Error{Kind: Conflict}).Error(); got != "conflict" {
		t.Errorf("a bare error's text = %q", got)
	}
	if err := Errorf(Invalid, "op", "%d apples", 3); KindOf(err) != Invalid || MessageOf(err) != "3 apples" {
		t.Errorf("Errorf = %v", err)
	}
}

func TestInvalidFields(t *testing.T) {
	for _, tc := range []struct {
		fields []FieldError
		msg    string
	}{
		{[]FieldError{{Field: "email", Detail: "must be a valid email"}}, "email: must be a valid email"},
		{[]FieldError{{Detail: "the body must be an object"}}, "the body must be an object"},
		{[]FieldError{{Field: "a", Detail: "x"}, {Field: "b.0", Detail: "y"}}, "2 fields are invalid: a, b.0"},
	} {
		err := InvalidFields("op", tc.fields...)
		if KindOf(err) != Invalid || MessageOf(err) != tc.msg || len(FieldsOf(err)) != len(tc.fields) {
			t.Errorf("InvalidFields(%v) = %v (kind %s, fields %v), want message %q", tc.fields, err, KindOf(err), FieldsOf(err), tc.msg)
		}
	}
}
