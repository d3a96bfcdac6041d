package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// replayedHeaders are the headers of a first answer that its replays repeat.
var replayedHeaders = []string{"Content-Type", "ETag", "Location"}

// idempotent makes a create route honour an Idempotency-Key header
// (core.ClaimIdempotency): the first request runs h and its successful answer
// is recorded; a retry with the same method, path and body gets that answer
// again, with Idempotent-Replayed: true, and a body without the secrets the
// first one showed (h says what to record with replayAs). Without the header,
// h runs as it is. The route must say it honours Idempotency-Key
// (web.IdempotencyKey at registration), or it answers Internal.
func (s *Server) idempotent(h web.HandlerFunc) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !web.Honours(r, web.IdempotencyKey) {
			return core.Errorf(core.Internal, "adminapi.idempotent", "route %s takes Idempotency-Key but does not say it honours it", web.Route(r))
		}
		key, sent := r.Header["Idempotency-Key"]
		if !sent {
			return h(w, r)
		}
		body, err := web.ReadBody(w, r, web.AdminBodyLimit)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		request := core.HashSHA256(r.Method + " " + strings.TrimSuffix(r.URL.Path, "/") + "\n" + string(body))
		first, claim, err := s.svc.ClaimIdempotency(r.Context(), web.AdminKeyID(r), strings.Join(key, ","), request)
		if err != nil {
			return err
		}
		if first != nil {
			for name, v := range first.Header {
				w.Header().Set(name, v)
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(first.Status)
			_, _ = w.Write(first.Body)
			return nil
		}
		call := &idempotentCall{ResponseWriter: w}
		err = h(call, r.WithContext(context.WithValue(r.Context(), replayKey{}, call)))
		if err != nil || call.status < 200 || call.status > 299 {
			claim.Release(r.Context())
			return err
		}
		a := core.IdempotentAnswer{Status: call.status, Header: map[string]string{}, Body: call.body.Bytes()}
		if call.replay != nil {
			a.Body = call.replay
		}
		for _, name := range replayedHeaders {
			if v := w.Header().Get(name); v != "" {
				a.Header[name] = v
			}
		}
		// The answer is sent whatever happens here: a lost record means a
		// retry runs again (and meets the Conflict of a taken name).
		if _, err := claim.Complete(context.WithoutCancel(r.Context()), a); err != nil {
			web.LogFailure(r, err)
		}
		return nil
	}
}

// idempotentCall records the answer of an idempotent request while passing it on.
type idempotentCall struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	replay []byte // what replays show instead of body, when the handler said
}

func (c *idempotentCall) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *idempotentCall) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *idempotentCall) Unwrap() http.ResponseWriter { return c.ResponseWriter }

type replayKey struct{}

// replayAs sets what replays of an idempotent request show instead of its
// answer's body: the answer without its secrets, shown once only.
func replayAs(r *http.Request, view any) {
	c, ok := r.Context().Value(replayKey{}).(*idempotentCall)
	if !ok {
		return
	}
	b, err := json.Marshal(view)
	if err != nil {
		c.replay = []byte("{}\n")
		return
	}
	c.replay = append(b, '\n')
}
