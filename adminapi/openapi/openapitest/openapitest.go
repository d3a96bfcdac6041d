// Package openapitest checks HTTP traffic against Gatehouse's OpenAPI
// document (package openapi) with a maintained validator
// (pb33f/libopenapi-validator), for tests only: wrapped around a listener's
// handler, it validates every request and every answer that passes through,
// so the document cannot drift from what the handlers do.
//
// The rules, per exchange:
//   - a request to a path or method the document does not describe must be
//     answered 404, 405 or 400 (an unknown route), unless the caller's skip says it
//     is a dialect's route, which the document leaves out;
//   - a request the document refuses (a missing field, a wrong type, no key)
//     must be answered with a 4xx: a 2xx or 5xx there means the document
//     and the handlers disagree;
//   - every answer to a described route must match the document's response
//     for its status (a documented status, its content type, its schema);
//   - an answer that carries an ETag (or Idempotent-Replayed) must be one
//     whose response declares that header.
//
// Undeclared checks the route table beside the traffic: a route that honours
// If-Match or Idempotency-Key must have them declared on its operation, with
// the answers they produce (412; 409 and 422).
//
// CORS preflights are not operations and pass unchecked.
package openapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/julienschmidt/httprouter"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"

	"github.com/gatehouse/gatehouse/adminapi/openapi"
)

// Checker validates exchanges with one listener against its part of the document.
type Checker struct {
	listener string
	v        validator.Validator
	doc      map[string]any // the listener's part of the document, as JSON values
	restOf   []string       // prefixes of paths ending in {path}: the rest of the path, slashes included
	mu       sync.Mutex
}

var (
	checkersMu sync.Mutex
	checkers   = map[string]*Checker{}
)

// For returns the checker of listener ("admin" or "public"), built once per
// test binary: the document's paths on that listener, as the validator sees them.
func For(t testing.TB, listener string) *Checker {
	t.Helper()
	checkersMu.Lock()
	defer checkersMu.Unlock()
	if c, ok := checkers[listener]; ok {
		return c
	}
	c, err := newChecker(listener)
	if err != nil {
		t.Fatalf("openapitest: %v", err)
	}
	checkers[listener] = c
	return c
}

// Paths returns the document's paths and their operations' methods (upper
// case) on listener, for route-coverage tests.
func Paths(listener string) (map[string][]string, error) {
	doc, err := listenerDoc(listener)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for path, item := range doc["paths"].(map[string]any) {
		for k := range item.(map[string]any) {
			if methods[k] {
				out[path] = append(out[path], strings.ToUpper(k))
			}
		}
	}
	return out, nil
}

var methods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

// listenerDoc returns the document with only the paths on listener: a path
// item without servers is on both listeners, one with servers on the
// listeners its servers' descriptions name first ("admin listener ...").
func listenerDoc(listener string) (map[string]any, error) {
	b, err := openapi.JSON()
	if err != nil {
		return nil, fmt.Errorf("the document does not parse: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	paths, _ := doc["paths"].(map[string]any)
	kept := map[string]any{}
	for path, raw := range paths {
		item, _ := raw.(map[string]any)
		servers, has := item["servers"].([]any)
		on := !has
		for _, s := range servers {
			d, _ := s.(map[string]any)["description"].(string)
			if first, _, _ := strings.Cut(d, " "); first == listener {
				on = true
			}
		}
		if on {
			item = maps.Clone(item)
			delete(item, "servers")
			kept[path] = item
		}
	}
	doc["paths"] = kept
	doc["servers"] = []any{map[string]any{"url": "/"}}
	return doc, nil
}

func newChecker(listener string) (*Checker, error) {
	doc, err := listenerDoc(listener)
	if err != nil {
		return nil, err
	}
	return checkerOf(listener, doc)
}

// checkerOf returns a checker of doc, the part of a document on listener.
func checkerOf(listener string, doc map[string]any) (*Checker, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	d, err := libopenapi.NewDocument(b)
	if err != nil {
		return nil, fmt.Errorf("the document: %w", err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		return nil, fmt.Errorf("the validator refuses the document: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("the document is not valid OpenAPI: %s", describe(verrs))
	}
	c := &Checker{listener: listener, v: v, doc: doc}
	for path := range doc["paths"].(map[string]any) {
		if prefix, ok := strings.CutSuffix(path, "/{path}"); ok {
			c.restOf = append(c.restOf, prefix+"/")
		}
	}
	return c, nil
}

// Handler wraps h, the handler of the checker's listener: every exchange
// through it is checked, and a mismatch fails t (with t.Errorf, so the test
// goes on). skip reports the requests the document does not describe on
// purpose (a dialect's routes); nil skips none.
func (c *Checker) Handler(t testing.TB, h http.Handler, skip func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isPreflight(r) || (skip != nil && skip(r)) {
			h.ServeHTTP(w, r)
			return
		}
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		vreq := c.validationRequest(r, body) // before the handler can change r
		rec := &tee{ResponseWriter: w, body: &bytes.Buffer{}}
		h.ServeHTTP(rec, r)
		if msg := c.check(vreq, body, rec); msg != "" {
			t.Errorf("openapi (%s listener): %s %s → %d: %s", c.listener, r.Method, r.URL.Path, rec.statusOr200(), msg)
		}
	})
}

// Wrap wraps the handlers of both listeners of one server, whose routes
// are routes (adminapi.Server.Routes): every exchange through them is
// checked, the routes the document leaves out (a dialect's) excepted.
func Wrap(t testing.TB, routes []openapi.Route, admin, public http.Handler) (http.Handler, http.Handler) {
	t.Helper()
	return For(t, openapi.Admin).Handler(t, admin, undescribed(routes, openapi.Admin)),
		For(t, openapi.Public).Handler(t, public, undescribed(routes, openapi.Public))
}

// undescribed returns whether a request to listener goes to one of the
// routes the document leaves out.
func undescribed(routes []openapi.Route, listener string) func(*http.Request) bool {
	rt := httprouter.New()
	n := 0
	for _, r := range routes {
		if r.Listener == listener && !r.Described {
			rt.Handle(r.Method, r.Path, func(http.ResponseWriter, *http.Request, httprouter.Params) {})
			n++
		}
	}
	return func(r *http.Request) bool {
		if n == 0 {
			return false
		}
		h, _, _ := rt.Lookup(r.Method, r.URL.Path)
		return h != nil
	}
}

// Check validates one exchange already made (a client-side response): ""
// when it matches the document, else what does not.
func (c *Checker) Check(r *http.Request, reqBody []byte, resp *http.Response, respBody []byte) string {
	rec := &tee{ResponseWriter: httptest.NewRecorder(), body: bytes.NewBuffer(respBody), status: resp.StatusCode, header: resp.Header.Clone()}
	return c.check(c.validationRequest(r, reqBody), reqBody, rec)
}

// validationRequest returns a copy of r for the validator: its own body,
// and a path ending in {path} collapsed to one segment.
func (c *Checker) validationRequest(r *http.Request, body []byte) *http.Request {
	v := r.Clone(r.Context())
	v.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) > 0 && v.Header.Get("Content-Type") == "" {
		// The handlers read a body without a Content-Type as JSON.
		v.Header.Set("Content-Type", "application/json")
	}
	for _, p := range c.restOf {
		if rest, ok := strings.CutPrefix(v.URL.Path, p); ok && rest != "" {
			v.URL.Path, v.URL.RawPath = p+"rest", ""
		}
	}
	if v.URL.Path != "/" {
		if trimmed := strings.TrimSuffix(v.URL.Path, "/"); trimmed != v.URL.Path {
			v.URL.Path, v.URL.RawPath = trimmed, "" // both slash forms are served; one is described
		}
	}
	return v
}

func (c *Checker) check(vreq *http.Request, body []byte, rec *tee) string {
	status := rec.statusOr200()
	c.mu.Lock()
	defer c.mu.Unlock()
	ok, errs := c.v.ValidateHttpRequestSync(vreq)
	if !ok && unknownRoute(errs) {
		// The routers answer an unknown path 404, and a method a path does
		// not serve 400 (a malformed request) or 405.
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusBadRequest {
			return ""
		}
		return "the route is not described: " + describe(errs)
	}
	if !ok && (status < 400 || status >= 500) {
		return "the document refuses the request (" + describe(errs) + ") but it was answered " + http.StatusText(status)
	}
	vreq.Body = io.NopCloser(bytes.NewReader(body))
	resp := &http.Response{
		StatusCode: status, Header: rec.headerSnapshot(), Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Request: vreq, ContentLength: int64(rec.body.Len()),
	}
	if vreq.Method == http.MethodHead {
		resp.Body = io.NopCloser(bytes.NewReader(nil)) // HEAD answers carry no body to check
	}
	if ok, errs := c.v.ValidateHttpResponse(vreq, resp); !ok {
		return "the answer does not match the document: " + describe(errs)
	}
	return c.checkHeaders(vreq, status, resp.Header)
}

// declaredOnly are the answer headers an answer may carry only where its
// response declares them: the validator checks the headers a response
// declares, never those it leaves out.
var declaredOnly = []string{"ETag", "Idempotent-Replayed"}

// checkHeaders reports an answer header of declaredOnly that the response
// of the request's operation for status does not declare.
func (c *Checker) checkHeaders(r *http.Request, status int, h http.Header) string {
	var missing []string
	for _, name := range declaredOnly {
		if h.Get(name) == "" {
			continue
		}
		op := operation(c.doc, r.Method, r.URL.Path)
		if !has(c.doc, response(c.doc, op, status), "headers", name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("the answer carries %s, which its response (%d) does not declare", strings.Join(missing, ", "), status)
	}
	return ""
}

// Shape returns a path pattern with its parameters unnamed and without a
// trailing slash: httprouter's /credentials/:a/:b and the document's
// /credentials/{type}/{id} are both /credentials/{}/{}.
func Shape(p string) string {
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") || (strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}")) {
			segs[i] = "{}"
		}
	}
	if out := strings.Join(segs, "/"); out != "" {
		return out
	}
	return "/"
}

// operation returns the operation of doc that serves method and path (a
// request path or a route pattern): the path whose template matches with the
// most literal segments. nil when none does.
func operation(doc map[string]any, method, path string) map[string]any {
	want := strings.Split(Shape(path), "/")
	var best map[string]any
	bestLiteral := -1
	paths, _ := doc["paths"].(map[string]any)
	for tmpl, raw := range paths {
		segs := strings.Split(Shape(tmpl), "/")
		if len(segs) != len(want) {
			continue
		}
		literal := 0
		for i, s := range segs {
			switch {
			case s == want[i]:
				if s != "{}" {
					literal++
				}
			case s == "{}" && want[i] != "":
			default:
				literal = -1
			}
			if literal < 0 {
				break
			}
		}
		item, _ := raw.(map[string]any)
		op, _ := item[strings.ToLower(method)].(map[string]any)
		if literal > bestLiteral && op != nil {
			best, bestLiteral = withPathParameters(op, item), literal
		}
	}
	return best
}

// withPathParameters returns op with its path item's parameters added.
func withPathParameters(op, item map[string]any) map[string]any {
	shared, _ := item["parameters"].([]any)
	if len(shared) == 0 {
		return op
	}
	op = maps.Clone(op)
	own, _ := op["parameters"].([]any)
	op["parameters"] = append(append([]any{}, own...), shared...)
	return op
}

// response returns op's response for status (or its default), resolved.
func response(doc, op map[string]any, status int) map[string]any {
	rs, _ := op["responses"].(map[string]any)
	r, ok := rs[fmt.Sprint(status)]
	if !ok {
		r = rs["default"]
	}
	return resolve(doc, r)
}

// has reports whether obj's map field holds key (case-insensitively, as header names compare).
func has(doc, obj map[string]any, field, key string) bool {
	m, _ := obj[field].(map[string]any)
	for k := range m {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// resolve follows a local $ref ("#/components/..."); anything else is returned as it is.
func resolve(doc map[string]any, v any) map[string]any {
	m, _ := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		next, _ := cur.(map[string]any)
		cur = next[part]
	}
	out, _ := cur.(map[string]any)
	return out
}

// honoured are the request headers a route may honour, with the answers
// each produces, which its operation must declare beside the parameter.
var honoured = map[string][]string{
	"If-Match":        {"412"},
	"Idempotency-Key": {"409", "422"},
}

// Undeclared returns what the document fails to declare about the routes on
// listener (adminapi.Server.Routes) that honour If-Match or Idempotency-Key:
// the header as a parameter of the route's operation, and each answer the
// header produces. None when the document is true to the routes.
func Undeclared(routes []openapi.Route, listener string) ([]string, error) {
	doc, err := listenerDoc(listener)
	if err != nil {
		return nil, err
	}
	return undeclared(doc, routes, listener), nil
}

func undeclared(doc map[string]any, routes []openapi.Route, listener string) []string {
	var out []string
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + Shape(rt.Path)
		if rt.Listener != listener || !rt.Described || len(rt.Honours) == 0 || seen[key] {
			continue
		}
		seen[key] = true
		op := operation(doc, rt.Method, rt.Path)
		if op == nil {
			out = append(out, fmt.Sprintf("%s %s honours %s but is not described", rt.Method, rt.Path, strings.Join(rt.Honours, ", ")))
			continue
		}
		for _, h := range rt.Honours {
			statuses, known := honoured[h]
			if !known {
				out = append(out, fmt.Sprintf("%s %s honours %s, which this check does not know", rt.Method, rt.Path, h))
				continue
			}
			if !hasHeaderParameter(doc, op, h) {
				out = append(out, fmt.Sprintf("%s %s honours %s, which its operation does not declare as a parameter", rt.Method, rt.Path, h))
			}
			for _, st := range statuses {
				if rs, _ := op["responses"].(map[string]any); rs[st] == nil {
					out = append(out, fmt.Sprintf("%s %s honours %s, but its operation does not declare the %s it answers", rt.Method, rt.Path, h, st))
				}
			}
		}
	}
	return out
}

// hasHeaderParameter reports whether op declares the request header name.
func hasHeaderParameter(doc, op map[string]any, name string) bool {
	params, _ := op["parameters"].([]any)
	for _, raw := range params {
		p := resolve(doc, raw)
		if n, _ := p["name"].(string); p["in"] == "header" && strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// unknownRoute reports whether errs say the path or method is not in the document.
func unknownRoute(errs []*verrors.ValidationError) bool {
	for _, e := range errs {
		if e.ValidationType == helpers.PathValidation &&
			(e.ValidationSubType == helpers.ValidationMissing || e.ValidationSubType == helpers.ValidationMissingOperation) {
			return true
		}
	}
	return false
}

// describe lists the validator's findings on one line each.
func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n\t%s", e.Message)
		if e.Reason != "" && e.Reason != e.Message {
			fmt.Fprintf(&b, " (%s)", e.Reason)
		}
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n\t\t%s", f.Error())
		}
	}
	return b.String()
}

// isPreflight reports whether r is a CORS preflight, which the CORS layer
// answers before any route.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// tee passes an answer on to the client and keeps a copy to check.
type tee struct {
	http.ResponseWriter
	body   *bytes.Buffer
	status int
	header http.Header // the headers as sent with the status line
}

func (w *tee) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		w.header = w.ResponseWriter.Header().Clone()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *tee) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *tee) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *tee) statusOr200() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *tee) headerSnapshot() http.Header {
	if w.header != nil {
		return w.header
	}
	return w.ResponseWriter.Header().Clone()
}
