package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/core"
)

// Conditional requests (RFC 9110 §13): an object's answer carries its version
// as a strong ETag; writes honour If-Match, reads If-None-Match.

// ETag returns the entity tag of a version: the version quoted.
func ETag(version string) string { return `"` + version + `"` }

// Preconditions reads the If-Match header of a write into a core.Precondition
// (the zero one when there is none). A header that is not "*" or a list of
// entity tags is Malformed. Weak tags are kept marked, so that they never
// match: If-Match compares strongly. A route that did not say it honours
// If-Match (Routes.Handle) gets Internal: the document would not declare it.
func Preconditions(r *http.Request) (core.Precondition, error) {
	if !Honours(r, IfMatch) {
		return core.Precondition{}, core.Errorf(core.Internal, "web.Preconditions", "route %s reads If-Match but does not say it honours it", Route(r))
	}
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return core.Precondition{}, nil
	}
	tags, ok := parseTags(strings.Join(vals, ","))
	if !ok {
		const detail = `must be * or a list of entity tags ("...")`
		return core.Precondition{}, &core.Error{Kind: core.Malformed, Op: "web.Preconditions", Msg: "If-Match: " + detail,
			Fields: []core.FieldError{{Field: "If-Match", Detail: detail}}}
	}
	return core.Precondition{IfMatch: tags}, nil
}

// parseTags splits an If-Match or If-None-Match value: "*", or entity tags
// ("v" or W/"v") separated by commas. Tags come back without quotes, weak
// ones as W/v.
func parseTags(v string) ([]string, bool) {
	v = strings.TrimSpace(v)
	if v == "*" {
		return []string{"*"}, true
	}
	var tags []string
	for v != "" {
		weak := strings.HasPrefix(v, "W/")
		if weak {
			v = v[2:]
		}
		if !strings.HasPrefix(v, `"`) {
			return nil, false
		}
		end := strings.IndexByte(v[1:], '"')
		if end < 0 {
			return nil, false
		}
		tag := v[1 : 1+end]
		if weak {
			tag = "W/" + tag
		}
		tags = append(tags, tag)
		v = strings.TrimSpace(v[2+end:])
		if v == "" {
			break
		}
		if v[0] != ',' {
			return nil, false
		}
		v = strings.TrimSpace(strings.TrimLeft(v, ", \t"))
	}
	return tags, len(tags) > 0
}

// WriteEntity answers one object (its view) with status and its version as
// the ETag. A GET or HEAD whose If-None-Match names that version (weakly
// compared) or is "*" gets 304 Not Modified and no body.
func WriteEntity(w http.ResponseWriter, r *http.Request, status int, version string, view any) error {
	b, err := json.Marshal(view)
	if err != nil {
		return core.E(core.Internal, "web.WriteEntity", err)
	}
	return WriteEntityJSON(w, r, status, version, append(b, '\n'))
}

// WriteEntityJSON is WriteEntity with the view already encoded: body is its
// JSON as json.Marshal writes it and a newline, as WriteJSON ends a body. It
// is only read, so it may be shared (a memoised answer). The headers are set
// without canonicalising their names or allocating their values but the
// ETag's: a user read (GET /users/{id}) is a hot path.
func WriteEntityJSON(w http.ResponseWriter, r *http.Request, status int, version string, body []byte) error {
	h := w.Header()
	h["Etag"] = []string{ETag(version)}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && noneMatch(r, version) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h["Content-Type"] = jsonType
	w.WriteHeader(status)
	_, _ = w.Write(body) // a failed write means the client went away
	return nil
}

// noneMatch reports whether r's If-None-Match names version or is "*".
func noneMatch(r *http.Request, version string) bool {
	vals := r.Header.Values("If-None-Match")
	if len(vals) == 0 {
		return false
	}
	tags, ok := parseTags(strings.Join(vals, ","))
	if !ok {
		return false // an unreadable condition is ignored: the full answer is never wrong
	}
	for _, t := range tags {
		if t == "*" || strings.TrimPrefix(t, "W/") == version {
			return true
		}
	}
	return false
}

// AdminKeyID returns the id of the admin key that authorised r ("" on open routes).
func AdminKeyID(r *http.Request) string { return infoFrom(r.Context()).keyID }
