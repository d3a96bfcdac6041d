package adminapi

import (
	"net/http"
	"net/netip"
	"slices"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	// RequiredScopes must all be held by the consumer (403 otherwise). A
	// client's own X-Required-Scopes header is ignored: in process, the
	// program decides what a route needs, not the caller.
	RequiredScopes []string
	// RequiredTags are effective permission tags the consumer must all hold
	// (403 otherwise); X-Required-Tags of the client is ignored likewise.
	RequiredTags []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// finding the client's address (which the failed-attempt throttle counts
	// by); nil means loopback only, as on Gatehouse's own listeners.
	TrustedProxies []netip.Prefix
}

// Verifier checks each request's credential in process, exactly as Gatehouse's
// /verify endpoint does (the same credentials, precedence, throttle and
// answers), for gateways and services written in Go: they skip the HTTP round
// trip to /verify, and need only a core.Service on the same Redis.
type Verifier struct {
	svc    *core.Service
	site   *web.Site
	scopes []string
	tags   []string
}

// NewVerifier returns a Verifier over svc.
func NewVerifier(svc *core.Service, opt VerifierOptions) *Verifier {
	return &Verifier{
		svc:    svc,
		site:   web.NewSite(web.Options{TrustedProxies: opt.TrustedProxies}),
		scopes: slices.Clone(opt.RequiredScopes),
		tags:   slices.Clone(opt.RequiredTags),
	}
}

// Require returns a copy of v that also requires scopes, for the routes that
// need more than the rest.
func (v *Verifier) Require(scopes ...string) *Verifier {
	c := *v
	c.scopes = append(slices.Clone(v.scopes), scopes...)
	return &c
}

// Middleware checks each request before next sees it. A verified request goes
// on with X-Consumer-Id, X-Consumer-Username, X-Consumer-Scopes
// (space-separated), X-Consumer-Groups (comma-separated) and X-Consumer-Tags
// (space-separated) set from
// Gatehouse's answer, replacing whatever the client sent in those headers. Any
// other is answered as /verify answers it, with an RFC 7807 problem body: 401
// with WWW-Authenticate (and Retry-After after too many failures), 403 for an
// inactive consumer or a missing scope, 503 when the store cannot answer; next
// is not called.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, err := checkRequest(r, v.svc, v.site.ClientAddr(r), required{scopes: v.scopes, tags: v.tags}, w.Header())
		if err != nil {
			web.WriteError(w, r, err, web.Problem)
			return
		}
		r = r.Clone(r.Context())  // the caller's request stays as it was
		setConsumer(r.Header, pr) // replaces the client's own values, all five always set
		next.ServeHTTP(w, r)
	})
}
