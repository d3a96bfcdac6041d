package sdk

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// NotServed reports whether err is the answer of a plugin process to a call
// of a service it does not serve at all: a binary that serves only an
// identity provider answers Unimplemented to the Integration service (Serve
// registers only the services given). A host uses it to tell which kinds a
// binary serves. An error a served method returns, NotFound for a method
// outside the plugin's capabilities included, is not NotServed.
func NotServed(err error) bool {
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.NotFound || e.Err == nil {
		return false
	}
	st, ok := status.FromError(e.Err)
	return ok && st.Code() == codes.Unimplemented
}
