package adminapi

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/core"
)

// verifyMethods are the methods /verify answers: gateways such as Envoy forward
// the original request's method.
var verifyMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// verify handles /verify and /verify/*: 200 with the consumer's
// headers, 401 with WWW-Authenticate (and Retry-After after too many failures),
// 403 for an inactive consumer or a missing required scope (X-Required-Scopes)
// or permission tag (X-Required-Tags), 503 only when the store cannot answer.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	need := required{scopes: strings.Fields(header(r.Header, "X-Required-Scopes")), tags: strings.Fields(header(r.Header, "X-Required-Tags"))}
	p, ok := presented(r)
	pr, err := checkPresented(r, p, ok, s.svc, s.clientAddr(r), need, w.Header())
	s.metrics.countVerify(p.Kind(), ok, err)
	if err != nil {
		return err
	}
	h := w.Header()
	setConsumer(h, pr)
	h["Cache-Control"] = noStore
	// No body: gateways read the headers, and the answer stays within the
	// eight header entries a small Go map holds (net/http copies the map for
	// every answer), the request id and Date included.
	w.WriteHeader(http.StatusOK)
	return nil
}

// required is what a request needs of its consumer: scopes and effective
// permission tags, all of each.
type required struct {
	scopes, tags []string
}

// checkRequest verifies the credential r presents (see presented) for the
// client at clientAddr, holding every scope and tag need lists. /verify and
// Verifier.Middleware share it, so a gateway in Go and one calling /verify get
// the same answers. On Unauthorized it sets the WWW-Authenticate challenge in
// answer: Basic for a Basic credential, so a browser asks again, else Bearer.
func checkRequest(r *http.Request, svc *core.Service, clientAddr string, need required, answer http.Header) (core.Principal, error) {
	p, ok := presented(r)
	return checkPresented(r, p, ok, svc, clientAddr, need, answer)
}

// checkPresented is checkRequest once the credential is read: p, when ok.
func checkPresented(r *http.Request, p core.Presented, ok bool, svc *core.Service, clientAddr string, need required, answer http.Header) (core.Principal, error) {
	if !ok {
		answer.Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		return core.Principal{}, core.Errorf(core.Unauthorized, "adminapi.verify", "no credentials")
	}
	p.ClientAddr = clientAddr
	p.RequiredScopes, p.RequiredTags = need.scopes, need.tags
	pr, err := svc.Verify(r.Context(), p)
	if err != nil {
		if core.KindOf(err) == core.Unauthorized {
			challenge := `Bearer realm="gatehouse"`
			if p.Scheme == core.SchemeBasic {
				challenge = `Basic realm="gatehouse", charset="UTF-8"`
			}
			answer.Set("WWW-Authenticate", challenge)
		}
		return core.Principal{}, err
	}
	return pr, nil
}

// setConsumer sets X-Consumer-Id, X-Consumer-Username, X-Consumer-Scopes
// (space-separated), X-Consumer-Groups (comma-separated: group names may
// hold spaces, never commas) and X-Consumer-Tags (the effective permission
// tags, space-separated) from pr, replacing any values h had, all five even
// when empty.
func setConsumer(h http.Header, pr core.Principal) {
	// The values share one array: one allocation instead of five on the hot
	// path, with canonical names set directly. Each value is capped so that an
	// Add cannot overwrite the next.
	v := [...]string{pr.ConsumerID, pr.Username, strings.Join(pr.Scopes, " "), strings.Join(pr.Groups, ","), strings.Join(pr.Tags, " ")}
	vals := v[:]
	h["X-Consumer-Id"] = vals[0:1:1]
	h["X-Consumer-Username"] = vals[1:2:2]
	h["X-Consumer-Scopes"] = vals[2:3:3]
	h["X-Consumer-Groups"] = vals[3:4:4]
	h["X-Consumer-Tags"] = vals[4:5:5]
}

// noStore is the Cache-Control value of /verify's answers, shared: headers
// are written, never modified, once set.
var noStore = []string{"no-store"}

// presented returns the first credential of r in /verify's order of
// precedence (docs/verify.md): Authorization Bearer, Basic or apikey; an apikey or x-api-key header; an
// apikey or apiKey query parameter of the request's own URL, then of the original
// one in X-Original-URI or X-Forwarded-Uri. A value that is there but malformed
// is still the one checked (and refused).
func presented(r *http.Request) (core.Presented, bool) {
	if a := strings.TrimSpace(header(r.Header, "Authorization")); a != "" {
		scheme, rest, _ := strings.Cut(a, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToLower(scheme) {
		case "bearer":
			return core.Presented{Scheme: core.SchemeBearer, Secret: rest}, true
		case "basic":
			b, err := base64.StdEncoding.DecodeString(rest)
			if err != nil {
				return core.Presented{Scheme: core.SchemeBasic}, true
			}
			user, pass, _ := strings.Cut(string(b), ":")
			return core.Presented{Scheme: core.SchemeBasic, ID: user, Secret: pass}, true
		case "apikey":
			return apiKey(rest), true
		}
	}
	for _, h := range []string{"Apikey", "X-Api-Key"} {
		if v := header(r.Header, h); v != "" {
			return apiKey(v), true
		}
	}
	if v, ok := queryKey(r.URL.RawQuery); ok {
		return apiKey(v), true
	}
	for _, h := range []string{"X-Original-Uri", "X-Forwarded-Uri"} {
		// The query of a request URI: what follows the first '?' (a path such as
		// //x:y/ does not parse as a URL, and need not).
		if _, query, ok := strings.Cut(header(r.Header, h), "?"); ok {
			query, _, _ = strings.Cut(query, "#")
			if v, ok := queryKey(query); ok {
				return apiKey(v), true
			}
		}
	}
	return core.Presented{}, false
}

// header is h.Get(name) for a canonical name (every name /verify reads):
// without Get's canonicalisation of the name, a visible share of a cached
// verification's time. Incoming requests' header names are canonical.
func header(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// queryKey returns the apikey or apiKey query parameter.
func queryKey(raw string) (string, bool) {
	q, _ := url.ParseQuery(raw) // keep what parses
	for _, name := range []string{"apikey", "apiKey"} {
		if v := q.Get(name); v != "" {
			return v, true
		}
	}
	return "", false
}

// apiKey splits KEYID:KEYSECRET at the first colon.
func apiKey(v string) core.Presented {
	id, secret, _ := strings.Cut(strings.TrimSpace(v), ":")
	return core.Presented{Scheme: core.SchemeAPIKey, ID: id, Secret: secret}
}
