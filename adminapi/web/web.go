// Package web is the HTTP plumbing every Gatehouse surface shares: the native
// admin API, the public API and each dialect (adminapi/dialect/NAME). It
// registers routes in both slash forms behind a Guard (admin-key scopes),
// reads and decodes bodies within their limits, finds the client's address
// behind trusted proxies, and wraps each listener with a request id, an
// access log and latency metrics.
//
// It holds the only table from error kind to HTTP status (StatusOf). A
// surface chooses only the body shape of its errors (a Shape): RFC 7807
// problem+json for the native APIs, RFC 6749's JSON for OAuth, and each
// dialect its own.
package web

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/xid"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/core"
)

// Options configures a Site.
type Options struct {
	// Log is the base logger; every error goes through it, and the access
	// lines when AccessLog is nil.
	Log zerolog.Logger
	// AccessLog, when set, receives the access lines (one per request, one
	// line a Write) instead of Log, at Log's level, as JSON with RFC 3339
	// timestamps in UTC: serve gives it a buffered, asynchronous writer, so
	// that a request does not wait for a write syscall.
	AccessLog io.Writer
	// TrustedProxies are the peers whose X-Forwarded-For is believed; nil
	// means loopback only.
	TrustedProxies []netip.Prefix
	// Registry receives the request latency histogram; nil registers nothing.
	Registry prometheus.Registerer
	// Authenticate checks a presented admin key (core.Service.AuthenticateAdmin);
	// guarded routes answer Unavailable without it.
	Authenticate func(ctx context.Context, key string) (core.AdminKey, error)
}

// Site is what the listeners of one server share: the logger, the trusted
// proxies, the admin-key check and the metrics.
type Site struct {
	log       zerolog.Logger
	accessLog zerolog.Logger // the access lines' logger when there is no lines writer
	lines     *lineWriter    // the access lines' writer (Options.AccessLog), or nil
	trusted   []netip.Prefix
	auth      func(ctx context.Context, key string) (core.AdminKey, error)
	latency   *prometheus.HistogramVec
	limited   *prometheus.CounterVec
	date      atomic.Pointer[dateHeader] // the Date header of the current second
}

// dateHeader is a Date header's value and the second it names.
type dateHeader struct {
	sec int64
	v   []string
}

// dateOf returns the Date header's value for an answer at now: formatted
// once a second and shared by the answers in it (net/http formats it for
// every answer it was not set on). Header values are replaced, never
// modified, once set, so sharing the slice is safe, as for noStore.
func (s *Site) dateOf(now time.Time) []string {
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.sec == sec {
		return d.v
	}
	d := &dateHeader{sec: sec, v: []string{now.UTC().Format(http.TimeFormat)}}
	s.date.Store(d)
	return d.v
}

// routeMetrics are a route's latency observers, one per status, found once
// rather than through the histogram's label lookup (hashing and checking
// four label values) at every request.
type routeMetrics struct {
	method string
	codes  sync.Map // status (int) → prometheus.Observer
}

// observer returns the latency observer of a request to this route.
func (m *routeMetrics) observer(latency *prometheus.HistogramVec, listener, route string, status int) prometheus.Observer {
	if o, ok := m.codes.Load(status); ok {
		return o.(prometheus.Observer)
	}
	o := latency.WithLabelValues(listener, m.method, route, statusText(status))
	m.codes.Store(status, o)
	return o
}

// NewSite returns a Site.
func NewSite(opt Options) *Site {
	s := &Site{log: opt.Log, accessLog: opt.Log, trusted: opt.TrustedProxies, auth: opt.Authenticate}
	if opt.AccessLog != nil {
		s.lines = newLineWriter(opt.AccessLog, opt.Log.GetLevel())
	}
	if s.trusted == nil {
		s.trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	s.latency = Register(opt.Registry, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_http_request_duration_seconds",
		Help:    "HTTP requests by listener, method, route pattern and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"listener", "method", "route", "code"}))
	s.limited = Register(opt.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_rate_limited_total",
		Help: "Requests refused by a rate limit (429, or /verify's 401 with Retry-After), by listener and route pattern.",
	}, []string{"listener", "route"}))
	return s
}

// Register registers c on reg (nil: nowhere) and returns it, or the collector
// of the same description already there: servers built on one registry (as
// tests build them) share their metrics. It panics on any other conflict, a
// programming error.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		are, ok := err.(prometheus.AlreadyRegisteredError)
		if !ok {
			panic(err)
		}
		return are.ExistingCollector.(C)
	}
	return c
}

// Listener is one listener's routes (the admin or the public one).
type Listener struct {
	site    *Site
	name    string
	router  *httprouter.Router
	origins []string
	routes  []Pattern
}

// Pattern is a route registered on a listener: its method, its httprouter
// path pattern (one entry per slash form), the route group that registered
// it (nil for Raw routes), and the request headers its handler honours.
type Pattern struct {
	Method, Path string
	Group        *Routes
	Honours      []Header
}

// Header is a request header that changes what a write does, which a route
// honours only when it says so at registration (Routes.Handle): If-Match
// (a conditional write, read with Preconditions) or Idempotency-Key (a
// create done once). The route table lists them (Pattern.Honours), so the
// OpenAPI tests check that the document declares each where it is honoured,
// and a handler that reads one on a route that does not say so fails.
type Header string

// The headers a route may honour.
const (
	IfMatch        Header = "If-Match"
	IdempotencyKey Header = "Idempotency-Key"
)

// Honours reports whether the route r matched honours the request header h
// (it said so at registration).
func Honours(r *http.Request, h Header) bool {
	return slices.Contains(infoFrom(r.Context()).honours, h)
}

// Patterns returns every route registered on l, in registration order.
func (l *Listener) Patterns() []Pattern { return slices.Clone(l.routes) }

// Listener returns a new, empty listener called name ("admin", "public"), the
// label of its access-log lines and metrics. Unmatched routes answer 404 and
// wrong methods 405, as problem+json.
func (s *Site) Listener(name string) *Listener {
	l := &Listener{site: s, name: name, router: httprouter.New()}
	r := l.router
	// Both slash forms are registered; a redirect on POST /users/ breaks clients.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	// An unmatched path is not one of ours, but it may be a mistyped one of
	// ours holding a token: it is never echoed or logged.
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, core.Errorf(core.NotFound, "web", "no route %s matches this path", r.Method), Problem)
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, core.Errorf(core.Malformed, "web", "method %s is not allowed here", r.Method), Problem)
	})
	r.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		requestLog(r).Error().Interface("panic", v).Msg("handler panicked")
		WriteError(w, r, core.Errorf(core.Internal, "web", "panic"), Problem)
	}
	return l
}

// ClientAddr returns the client's address of a request to l (Site.ClientAddr).
func (l *Listener) ClientAddr(r *http.Request) string { return l.site.ClientAddr(r) }

// AllowOrigins lets browsers on these origins call the listener (CORS):
// their requests get Access-Control-Allow-Origin, and their preflights an
// answer. Other origins get no CORS header, so browsers keep their pages out.
func (l *Listener) AllowOrigins(origins []string) { l.origins = slices.Clone(origins) }

// HandlerFunc is a handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Routes registers routes on a listener whose errors share one body shape.
type Routes struct {
	l     *Listener
	shape Shape
}

// Routes returns a route group of l whose errors are written in shape.
func (l *Listener) Routes(shape Shape) *Routes { return &Routes{l: l, shape: shape} }

// Handle registers h for method and path, in both slash forms, behind g;
// honours are the request headers h honours (If-Match, Idempotency-Key).
func (rs *Routes) Handle(g Guard, method, path string, h HandlerFunc, honours ...Header) {
	rs.HandleExact(g, method, path, h, honours...)
	if alt, ok := strings.CutSuffix(path, "/"); ok && alt != "" {
		rs.HandleExact(g, method, alt, h, honours...)
	} else if !ok {
		rs.HandleExact(g, method, path+"/", h, honours...)
	}
}

// HandleExact registers h for method and exactly path, behind g. The matched
// pattern, never the raw path, is what the access log records.
func (rs *Routes) HandleExact(g Guard, method, path string, h HandlerFunc, honours ...Header) {
	site, shape := rs.l.site, rs.shape
	honours = slices.Clone(honours)
	rs.l.routes = append(rs.l.routes, Pattern{Method: method, Path: path, Group: rs, Honours: honours})
	metrics := &routeMetrics{method: method}
	rs.l.router.Handler(method, path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		info.route, info.honours, info.metrics = path, honours, metrics
		if !g.open {
			if err := site.authorize(r, g, info); err != nil {
				WriteError(w, r, err, shape)
				return
			}
		}
		if err := h(w, r); err != nil {
			WriteError(w, r, err, shape)
		}
	}))
}

// Raw registers a plain handler for method and path, with no guard (/metrics).
func (l *Listener) Raw(method, path string, h http.Handler) {
	l.routes = append(l.routes, Pattern{Method: method, Path: path})
	l.router.Handler(method, path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).route = path
		h.ServeHTTP(w, r)
	}))
}

// Param returns a path parameter of r.
func Param(r *http.Request, name string) string {
	return httprouter.ParamsFromContext(r.Context()).ByName(name)
}

// Handler returns the listener as an http.Handler: CORS when origins are
// allowed, inside the access log, the request id and the logger.
func (l *Listener) Handler() http.Handler {
	var h http.Handler = l.router
	if len(l.origins) > 0 {
		h = l.cors(h)
	}
	return l.site.wrap(l.name, h)
}

func (l *Listener) cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(l.origins, origin) {
			h.ServeHTTP(w, r)
			return
		}
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hd.Set("Access-Control-Allow-Methods", "GET, POST")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			hd.Set("Access-Control-Max-Age", "600")
			infoFrom(r.Context()).route = "preflight"
			w.WriteHeader(http.StatusNoContent)
			return
		}
		hd.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
		h.ServeHTTP(w, r)
	})
}

// Guard says who may call a route: no one in particular (Open), or the holder
// of an admin key whose scope opens it. An admin-scoped key opens every
// guarded route; a read key only the native API's GETs; a dialect key only
// its dialect's routes.
type Guard struct {
	open    bool
	native  bool            // read keys may GET and HEAD
	scope   core.AdminScope // a dialect's scope, when set
	headers []string        // further headers that may carry the key
}

// The guards of the native APIs.
var (
	// Open routes need no key: health, public and verification routes.
	Open = Guard{open: true}
	// Native is the native admin API: an admin key, or a read key for GET and HEAD.
	Native = Guard{native: true}
	// AdminOnly routes need an admin-scoped key: key management, doctor.
	AdminOnly = Guard{}
)

// Dialect is the guard of a dialect's routes: an admin key, or a key of the
// dialect's scope. headers are where the dialect's clients send the key
// besides x-api-key and Authorization (publica.la's X-User-Token).
func Dialect(scope core.AdminScope, headers ...string) Guard {
	return Guard{scope: scope, headers: slices.Clone(headers)}
}

// authorize checks the admin key of r against g.
func (s *Site) authorize(r *http.Request, g Guard, info *reqInfo) error {
	const op = "web.authorize"
	if s.auth == nil {
		return core.Errorf(core.Unavailable, op, "admin authentication is not configured")
	}
	k, err := s.auth(r.Context(), presentedKey(r, g.headers))
	if err != nil {
		if core.KindOf(err) == core.Unauthorized {
			requestLog(r).Warn().Str("client", s.ClientAddr(r)).Str("route", info.route).Msg("admin authentication failed")
		}
		return err
	}
	info.keyName, info.keyID = k.Name, k.ID
	switch {
	case k.Scope == core.ScopeAdmin:
		return nil
	case g.native && k.Scope == core.ScopeRead && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		return nil
	case g.scope != "" && k.Scope == g.scope:
		return nil
	}
	return core.Errorf(core.Forbidden, op, "admin key %q (scope %s) may not %s %s", k.Name, k.Scope, r.Method, info.route)
}

// presentedKey returns the admin key of a request: x-api-key, Authorization:
// Bearer K, a raw Authorization: K, then the guard's own headers.
func presentedKey(r *http.Request, more []string) string {
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	if a := strings.TrimSpace(r.Header.Get("Authorization")); a != "" {
		if t, ok := Bearer(r); ok {
			return t
		}
		return a
	}
	for _, h := range more {
		if k := r.Header.Get(h); k != "" {
			return strings.TrimSpace(k)
		}
	}
	return ""
}

// Bearer returns the token of an Authorization: Bearer header (the scheme in
// any letter case), and whether there is one.
func Bearer(r *http.Request) (string, bool) {
	a := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:]), true
	}
	return "", false
}

// ClientAddr returns the client's address: the peer's, or the last untrusted
// hop of X-Forwarded-For when the peer is a trusted proxy.
func (s *Site) ClientAddr(r *http.Request) string {
	i, ok := r.Context().Value(infoKey{}).(*reqInfo)
	if ok && i.client != "" {
		return i.client // the access log asks again after the handler did
	}
	a := s.clientAddr(r)
	if ok {
		i.client = a
	}
	return a
}

func (s *Site) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.isTrusted(peer) {
		return host
	}
	if len(r.Header["X-Forwarded-For"]) == 0 {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.isTrusted(a) {
			return a.String()
		}
		host = a.String()
	}
	return host
}

func (s *Site) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// reqInfo is one request's state, set by the outer handler and filled in
// while the request is handled; the access log reads it.
type reqInfo struct {
	id      string          // the request id: X-Request-Id and the log lines' req_id
	log     *zerolog.Logger // the site's logger; requestLog adds the id
	route   string          // the matched pattern, never the raw path
	honours []Header        // the request headers the matched route honours
	keyName string          // the admin key that authorised it
	keyID   string
	client  string        // ClientAddr's answer, once asked
	metrics *routeMetrics // the matched route's latency observers
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// Route returns the route pattern r matched ("" before routing or when none did).
func Route(r *http.Request) string { return infoFrom(r.Context()).route }

// requestLog returns the logger of r's lines: the site's, with the request
// id. It is built only when a line is written off the access log (failures,
// panics), so a request that succeeds pays nothing for it.
func requestLog(r *http.Request) *zerolog.Logger {
	if i, ok := r.Context().Value(infoKey{}).(*reqInfo); ok && i.log != nil {
		l := i.log.With().Str("req_id", i.id).Logger()
		return &l
	}
	return zerolog.Ctx(r.Context())
}

// exchange is everything the outer handler allocates for one request, in one
// allocation: the request's context (its parent's, with the request's state
// as infoKey's value), the request's state and the writer that records the
// status and size for the access log.
type exchange struct {
	context.Context // the request's own
	info            reqInfo
	w               recorder
	id              [1]string // X-Request-Id's value
}

// Value is the parent context's, but for infoKey: the request's state
// (what context.WithValue would do, without allocating another context).
func (x *exchange) Value(key any) any {
	if key == (infoKey{}) {
		return &x.info
	}
	return x.Context.Value(key)
}

// recorder is a ResponseWriter that records the status and body size.
type recorder struct {
	http.ResponseWriter
	status int
	size   int
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx answers are not the final status
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.size += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap adds the request id, the access log and metrics around h. It is one
// handler rather than a chain of middlewares because it runs on every
// request, /verify's included: one request copy, one allocation of state,
// and an access line written without building a per-request logger.
func (s *Site) wrap(listener string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		x := &exchange{Context: r.Context(), info: reqInfo{id: xid.NewWithTime(start).String(), log: &s.log}, w: recorder{ResponseWriter: w}}
		x.id[0] = x.info.id
		h := w.Header()
		h["X-Request-Id"] = x.id[:]
		h["Date"] = s.dateOf(start)
		r = r.WithContext(x)
		defer s.access(listener, r, x, start)
		next.ServeHTTP(&x.w, r)
	})
}

// access writes a request's access line (at warn level for 5xx) and records
// its latency.
func (s *Site) access(listener string, r *http.Request, x *exchange, start time.Time) {
	d := time.Since(start)
	status := x.w.status
	if status == 0 { // nothing written: net/http answers 200
		status = http.StatusOK
	}
	route := x.info.route
	if route == "" {
		route = "unmatched"
	}
	if m := x.info.metrics; m != nil && m.method == r.Method {
		m.observer(s.latency, listener, route, status).Observe(d.Seconds())
	} else {
		s.latency.WithLabelValues(listener, r.Method, route, statusText(status)).Observe(d.Seconds())
	}
	if status == http.StatusTooManyRequests || status == http.StatusUnauthorized && x.w.Header()["Retry-After"] != nil {
		s.limited.WithLabelValues(listener, route).Inc()
	}
	a := accessLine{level: zerolog.InfoLevel, reqID: x.info.id, listener: listener, method: r.Method, route: route, status: status,
		size: x.w.size, dur: d, client: s.ClientAddr(r), adminKey: x.info.keyName, adminKeyID: x.info.keyID, at: start.Add(d)}
	if status >= 500 {
		a.level = zerolog.WarnLevel
	}
	if s.lines != nil {
		s.lines.write(&a)
	} else {
		a.log(&s.accessLog)
	}
}

// statusTexts are the metric labels of the usual statuses, made once.
var statusTexts = func() map[int]string {
	m := make(map[int]string)
	for code := 100; code < 600; code++ {
		if http.StatusText(code) != "" {
			m[code] = strconv.Itoa(code)
		}
	}
	return m
}()

// statusText returns status as a metric label.
func statusText(status int) string {
	if t, ok := statusTexts[status]; ok {
		return t
	}
	return strconv.Itoa(status)
}
