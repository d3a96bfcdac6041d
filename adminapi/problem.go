package adminapi

import (
	"encoding/json"
	"net/http"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/gatehouse/gatehouse/core"
)

// problem is an RFC 7807 problem document.
type problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Errors    []core.FieldError `json:"errors,omitempty"`
	RequestID string            `json:"requestId,omitempty"`
}

// statuses maps each error kind to its one HTTP status (SPEC §9); the only place
// that does, with fromStatus its inverse.
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

// statusOf returns the HTTP status of err's kind.
func statusOf(err error) int {
	if st, ok := statuses[core.KindOf(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// fromStatus returns the kind an HTTP status stands for (Internal when none does).
func fromStatus(status int) core.Kind {
	for k, st := range statuses {
		if st == status {
			return k
		}
	}
	return core.Internal
}

// problemType is the stable identifier of a kind's problem type.
func problemType(k core.Kind) string { return "urn:gatehouse:problem:" + k.String() }

// writeError answers err as problem+json and logs it once: at error level for
// 5xx (with the cause), at debug level otherwise. Internal errors say only
// "internal error": their cause may hold anything.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	kind := core.KindOf(err)
	status := statusOf(err)
	p := problem{Type: problemType(kind), Title: titles[kind], Status: status, Detail: core.MessageOf(err), Errors: core.FieldsOf(err)}
	switch {
	case kind == core.Internal:
		p.Detail, p.Errors = "internal error", nil
	case p.Detail == "":
		p.Detail = p.Title
	}
	if id, ok := hlog.IDFromRequest(r); ok {
		p.RequestID = id.String()
	}
	logFailure(r, err, status)
	retryAfter(w, err)
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// logFailure logs a failed request once: at error level for 5xx (with the
// cause), at debug level otherwise.
func logFailure(r *http.Request, err error, status int) {
	level := zerolog.DebugLevel
	if status >= 500 {
		level = zerolog.ErrorLevel
	}
	hlog.FromRequest(r).WithLevel(level).Err(err).Str("kind", core.KindOf(err).String()).Int("status", status).Msg("request failed")
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return core.E(core.Internal, "adminapi.writeJSON", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // a failed write means the client went away
	return nil
}

// noContent answers 204.
func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}
