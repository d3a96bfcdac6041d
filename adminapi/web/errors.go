package web

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/core"
)

// statuses maps each error kind to its one HTTP status; the only place that
// does, with KindOfStatus its inverse.
var statuses = map[core.Kind]int{
	core.Internal:           http.StatusInternalServerError,
	core.Malformed:          http.StatusBadRequest,
	core.Invalid:            http.StatusUnprocessableEntity,
	core.Unauthorized:       http.StatusUnauthorized,
	core.Forbidden:          http.StatusForbidden,
	core.NotFound:           http.StatusNotFound,
	core.Conflict:           http.StatusConflict,
	core.PreconditionFailed: http.StatusPreconditionFailed,
	core.TooLarge:           http.StatusRequestEntityTooLarge,
	core.RateLimited:        http.StatusTooManyRequests,
	core.Unavailable:        http.StatusServiceUnavailable,
}

var titles = map[core.Kind]string{
	core.Internal:           "Internal Server Error",
	core.Malformed:          "Malformed Request",
	core.Invalid:            "Validation Failed",
	core.Unauthorized:       "Unauthorized",
	core.Forbidden:          "Forbidden",
	core.NotFound:           "Not Found",
	core.Conflict:           "Conflict",
	core.PreconditionFailed: "Precondition Failed",
	core.TooLarge:           "Payload Too Large",
	core.RateLimited:        "Too Many Requests",
	core.Unavailable:        "Service Unavailable",
}

// StatusOf returns the HTTP status of err's kind.
func StatusOf(err error) int {
	if st, ok := statuses[core.KindOf(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// KindOfStatus returns the kind an HTTP status stands for (Internal when none does).
func KindOfStatus(status int) core.Kind {
	for k, st := range statuses {
		if st == status {
			return k
		}
	}
	return core.Internal
}

// Failure is a failed request as a Shape writes it: everything in it is safe
// to show the client.
type Failure struct {
	Kind      core.Kind
	Status    int
	Title     string            // the status's short title ("Validation Failed")
	Detail    string            // the client-safe message; "internal error" for Internal
	Fields    []core.FieldError // validation failures, with field paths
	RequestID string
	Err       error // the error itself, for shapes that look into it (never to be shown)
}

// Shape writes a Failure's body (and any headers of its own) in one
// surface's error format. WriteError has set the status line's headers
// (Retry-After, WWW-Authenticate) but not the status; the shape calls
// w.WriteHeader(f.Status).
type Shape func(w http.ResponseWriter, r *http.Request, f Failure)

// WriteError answers err in shape and logs it once: at error level for 5xx
// (with the cause), at debug level otherwise. Internal errors say only
// "internal error": their cause may hold anything.
func WriteError(w http.ResponseWriter, r *http.Request, err error, shape Shape) {
	kind := core.KindOf(err)
	f := Failure{Kind: kind, Status: StatusOf(err), Title: titles[kind], Detail: core.MessageOf(err), Fields: core.FieldsOf(err), Err: err}
	switch {
	case kind == core.Internal:
		f.Detail, f.Fields = "internal error", nil
	case f.Detail == "":
		f.Detail = f.Title
	}
	if i, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		f.RequestID = i.id
	}
	LogFailure(r, err)
	if d := core.RetryAfterOf(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds())))) // whole seconds, rounded up
	}
	if f.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	shape(w, r, f)
}

// LogFailure logs a failed request once: at error level for 5xx (with the
// cause), at debug level otherwise. Callers that answer a failure without
// WriteError (a 202 that hides one) use it directly.
func LogFailure(r *http.Request, err error) {
	status := StatusOf(err)
	level := zerolog.DebugLevel
	if status >= 500 {
		level = zerolog.ErrorLevel
	}
	requestLog(r).WithLevel(level).Err(err).Str("kind", core.KindOf(err).String()).Int("status", status).Msg("request failed")
}

// problem is an RFC 7807 problem document.
type problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Errors    []core.FieldError `json:"errors,omitempty"`
	RequestID string            `json:"requestId,omitempty"`
}

// ProblemType is the stable identifier of a kind's problem type.
func ProblemType(k core.Kind) string { return "urn:gatehouse:problem:" + k.String() }

// Problem writes a Failure as RFC 7807 application/problem+json: the shape of
// the native admin and public APIs.
func Problem(w http.ResponseWriter, _ *http.Request, f Failure) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(problem{Type: ProblemType(f.Kind), Title: f.Title, Status: f.Status, Detail: f.Detail, Errors: f.Fields, RequestID: f.RequestID})
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return core.E(core.Internal, "web.WriteJSON", err)
	}
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // a failed write means the client went away
	return nil
}

// jsonType is WriteJSON's Content-Type value, shared: header values are
// replaced, never modified in place, once set.
var jsonType = []string{"application/json"}

// NoContent answers 204.
func NoContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}
