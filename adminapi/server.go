// Package adminapi serves Gatehouse over HTTP: the native admin API (Express Gateway
// compatible), the public API and the health endpoints. Handlers decode, call
// core.Service, and encode; every error leaves as RFC 7807 problem+json.
package adminapi

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/gatehouse/gatehouse/core"
)

// Options configures a Server.
type Options struct {
	// Log is the base logger; every request line and error goes through it.
	Log zerolog.Logger
	// TrustedProxies are the peers whose X-Forwarded-For is believed (SPEC §6);
	// nil means loopback only.
	TrustedProxies []netip.Prefix
	// Registry receives the HTTP metrics and is served at /metrics; nil makes one.
	Registry *prometheus.Registry
	// AllowedOrigins may call the public API from a browser (CORS); none by default.
	AllowedOrigins []string
	// Plugins reports the plugins for GET /plugins and /readyz; nil: none.
	Plugins PluginStatuser
}

// Server holds the routers of both listeners.
type Server struct {
	svc     *core.Service
	log     zerolog.Logger
	trusted []netip.Prefix
	origins []string
	plugins PluginStatuser
	admin   *httprouter.Router
	public  *httprouter.Router
	reg     *prometheus.Registry
	latency *prometheus.HistogramVec
}

// New returns a Server over svc with every route registered.
func New(svc *core.Service, opt Options) *Server {
	s := &Server{svc: svc, log: opt.Log, trusted: opt.TrustedProxies, origins: opt.AllowedOrigins, plugins: opt.Plugins, reg: opt.Registry}
	if s.trusted == nil {
		s.trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_http_request_duration_seconds",
		Help:    "HTTP requests by listener, method, route pattern and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"listener", "method", "route", "code"})
	_ = s.reg.Register(s.latency) // a second Server on one registry shares the collector
	s.admin = newRouter()
	s.public = newRouter()
	s.adminRoutes()
	s.publicRoutes()
	return s
}

func newRouter() *httprouter.Router {
	r := httprouter.New()
	// Both slash forms are registered; a redirect on POST /users/ breaks clients.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, core.Errorf(core.NotFound, "adminapi", "no route %s %s", r.Method, routePath(r)))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &core.Error{Kind: core.Malformed, Op: "adminapi", Msg: "method " + r.Method + " not allowed here"})
	})
	r.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		hlog.FromRequest(r).Error().Interface("panic", v).Msg("handler panicked")
		writeError(w, r, core.Errorf(core.Internal, "adminapi", "panic"))
	}
	return r
}

// routePath is what an unmatched request may log and echo: its path only if the
// path cannot hold a secret (no route matched, so it is not one of ours).
func routePath(r *http.Request) string {
	if len(r.URL.Path) > 64 {
		return r.URL.Path[:64] + "…"
	}
	return r.URL.Path
}

// Admin returns the admin listener's handler.
func (s *Server) Admin() http.Handler { return s.wrap("admin", s.admin) }

// Public returns the public listener's handler, with CORS for the allowed origins.
func (s *Server) Public() http.Handler { return s.wrap("public", s.cors(s.public)) }

// cors lets the configured origins call the public API from a browser (SPEC §6):
// their requests get Access-Control-Allow-Origin, and their preflights an answer.
// Other origins get no CORS header, so browsers keep their pages out.
func (s *Server) cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(s.origins, origin) {
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

// guard says who may call a route.
type guard uint8

const (
	open     guard = iota // no key: health and public routes
	native                // the native admin API: an admin key, or a read key for GET
	adminKey              // admin-scoped keys only: key management, doctor
)

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers h for method and path on rt, in both slash forms, behind g.
func (s *Server) handle(rt *httprouter.Router, g guard, method, path string, h handlerFunc) {
	s.handleExact(rt, g, method, path, h)
	if alt, ok := strings.CutSuffix(path, "/"); ok && alt != "" {
		s.handleExact(rt, g, method, alt, h)
	} else if !ok {
		s.handleExact(rt, g, method, path+"/", h)
	}
}

// handleExact registers h for method and exactly path on rt, behind g; handle()
// records the matched pattern for the access log.
func (s *Server) handleExact(rt *httprouter.Router, g guard, method, path string, h handlerFunc) {
	hh := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		info.route = path
		if g != open {
			if err := s.authorize(r, g, info); err != nil {
				writeError(w, r, err)
				return
			}
		}
		if err := h(w, r); err != nil {
			writeError(w, r, err)
		}
	})
	rt.Handler(method, path, hh)
}

// authorize checks the admin key of r against g (SPEC §3.1): admin does
// everything, read only GETs of the native API, a dialect key only its dialect.
func (s *Server) authorize(r *http.Request, g guard, info *reqInfo) error {
	const op = "adminapi.authorize"
	k, err := s.svc.AuthenticateAdmin(r.Context(), presentedKey(r))
	if err != nil {
		if core.KindOf(err) == core.Unauthorized {
			hlog.FromRequest(r).Warn().Str("client", s.clientAddr(r)).Str("route", info.route).Msg("admin authentication failed")
		}
		return err
	}
	info.keyName, info.keyID = k.Name, k.ID
	switch {
	case k.Scope == core.ScopeAdmin:
		return nil
	case g == native && k.Scope == core.ScopeRead && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		return nil
	}
	return core.Errorf(core.Forbidden, op, "admin key %q (scope %s) may not %s %s", k.Name, k.Scope, r.Method, info.route)
}

// presentedKey returns the admin key of a request: x-api-key, Authorization:
// Bearer K, or a raw Authorization: K.
func presentedKey(r *http.Request) string {
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	a := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return a
}

// clientAddr returns the client's address: the peer's, or the last untrusted hop
// of X-Forwarded-For when the peer is a trusted proxy (SPEC §6).
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.isTrusted(peer) {
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

func (s *Server) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// reqInfo is filled in while a request is handled and read by the access log.
type reqInfo struct {
	route   string // the matched pattern, never the raw path
	keyName string // the admin key that authorised it
	keyID   string
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// wrap adds the logger, the request id, the access log and metrics around h.
func (s *Server) wrap(listener string, h http.Handler) http.Handler {
	access := hlog.AccessHandler(func(r *http.Request, status, size int, d time.Duration) {
		info := infoFrom(r.Context())
		route := info.route
		if route == "" {
			route = "unmatched"
		}
		s.latency.WithLabelValues(listener, r.Method, route, strconv.Itoa(status)).Observe(d.Seconds())
		ev := hlog.FromRequest(r).Info()
		if status >= 500 {
			ev = hlog.FromRequest(r).Warn()
		}
		ev = ev.Str("listener", listener).Str("method", r.Method).Str("route", route).Int("status", status).
			Int("size", size).Dur("dur", d).Str("client", s.clientAddr(r))
		if info.keyName != "" {
			ev = ev.Str("admin_key", info.keyName).Str("admin_key_id", info.keyID)
		}
		ev.Msg("request")
	})(h)
	withInfo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		access.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), infoKey{}, &reqInfo{})))
	})
	return hlog.NewHandler(s.log)(hlog.RequestIDHandler("req_id", "X-Request-Id")(withInfo))
}

// adminRoutes registers the admin listener's routes.
func (s *Server) adminRoutes() {
	a := s.admin
	s.healthRoutes(a)
	a.Handler(http.MethodGet, "/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))

	s.handle(a, native, "POST", "/users", s.createUser)
	s.handle(a, native, "GET", "/users", s.listUsers)
	s.handle(a, native, "GET", "/users/:id", s.getUser)
	s.handle(a, native, "PUT", "/users/:id", s.updateUser)
	s.handle(a, native, "DELETE", "/users/:id", s.deleteUser)
	s.handle(a, native, "PUT", "/users/:id/status", s.setUserStatus)

	s.handle(a, native, "POST", "/apps", s.createApp)
	s.handle(a, native, "GET", "/apps", s.listApps)
	s.handle(a, native, "GET", "/apps/:id", s.getApp)
	s.handle(a, native, "PUT", "/apps/:id", s.updateApp)
	s.handle(a, native, "DELETE", "/apps/:id", s.deleteApp)
	s.handle(a, native, "PUT", "/apps/:id/status", s.setAppStatus)

	// Shared parameter names per position: httprouter cannot hold two (SPEC §9).
	s.handle(a, native, "POST", "/credentials", s.createCredential)
	s.handle(a, native, "GET", "/credentials", s.listCredentials)
	s.handle(a, native, "GET", "/credentials/:a", s.consumerCredentials)
	s.handle(a, native, "GET", "/credentials/:a/:b", s.getCredential)
	s.handle(a, native, "DELETE", "/credentials/:a/:b", s.deleteCredential)
	s.handle(a, native, "PUT", "/credentials/:a/:b/status", s.setCredentialStatus)
	s.handle(a, native, "PUT", "/credentials/:a/:b/scopes", s.setCredentialScopes)
	s.handle(a, native, "PUT", "/credentials/:a/:b/scopes/:c", s.addCredentialScope)
	s.handle(a, native, "DELETE", "/credentials/:a/:b/scopes/:c", s.removeCredentialScope)

	s.handle(a, native, "POST", "/scopes", s.createScopes)
	s.handle(a, native, "GET", "/scopes", s.listScopes)
	s.handle(a, native, "GET", "/scopes/:name", s.getScope)
	s.handle(a, native, "PUT", "/scopes/:name", s.putScope)
	s.handle(a, native, "DELETE", "/scopes/:name", s.deleteScope)

	s.handle(a, native, "PUT", "/users/:id/password", s.setPassword)
	s.handle(a, native, "POST", "/users/:id/secret", s.newSecret)
	s.handle(a, native, "GET", "/users/:id/sessions", s.listSessions)
	s.handle(a, native, "GET", "/users/:id/identities", s.listIdentities)
	s.handle(a, native, "DELETE", "/users/:id/sessions", s.endSessions)
	s.handle(a, native, "DELETE", "/tokens/:token", s.revokeToken)

	s.handle(a, adminKey, "POST", "/admin-keys", s.createAdminKey)
	s.handle(a, adminKey, "GET", "/admin-keys", s.listAdminKeys)
	s.handle(a, adminKey, "DELETE", "/admin-keys/:id", s.revokeAdminKey)
	s.handle(a, native, "GET", "/plugins", s.listPlugins)
	s.handle(a, adminKey, "GET", "/doctor", s.doctor)
	s.handle(a, adminKey, "POST", "/doctor/repair", s.doctorRepair)
}

// publicRoutes registers the public listener's routes.
func (s *Server) publicRoutes() {
	p := s.public
	s.healthRoutes(p)
	s.handle(p, open, "POST", "/auth/tokens", s.login)
	s.handle(p, open, "POST", "/auth/logout", s.logout)
	s.handle(p, open, "GET", "/users/me", s.me)
	s.handle(p, open, "POST", "/auth/providers/:provider/signup", s.signup)
	s.handle(p, open, "GET", "/auth/providers/:provider/verify", s.verifyPage)
	s.handle(p, open, "POST", "/auth/providers/:provider/verify", s.confirmEmail)
	s.handle(p, open, "POST", "/auth/providers/:provider/resend", s.mailAsk(s.svc.ResendVerification))
	s.handle(p, open, "POST", "/auth/providers/:provider/password-reset", s.mailAsk(s.svc.RequestPasswordReset))
	s.handle(p, open, "GET", "/auth/providers/:provider/password-reset", s.resetPage)
	s.handle(p, open, "POST", "/auth/providers/:provider/password-reset/confirm", s.confirmReset)
	s.handle(p, open, "POST", "/oauth2/token", s.oauthHandler(s.tokenGrant))
	s.handle(p, open, "POST", "/oauth2/revoke", s.oauthHandler(s.revokeGrant))
	for _, m := range verifyMethods {
		s.handleExact(p, open, m, "/verify", s.verify)
		s.handleExact(p, open, m, "/verify/*path", s.verify)
	}
}

// healthRoutes registers /healthz (the process is up) and /readyz (the store
// answers and every plugin runs), open to anyone.
func (s *Server) healthRoutes(rt *httprouter.Router) {
	s.handle(rt, open, "GET", "/healthz", func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.handle(rt, open, "GET", "/readyz", func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.svc.Ping(ctx); err != nil {
			return core.E(core.Unavailable, "adminapi.readyz", err)
		}
		for _, p := range s.pluginStatus() {
			if p.State != "running" || !p.Healthy {
				return core.Errorf(core.Unavailable, "adminapi.readyz", "plugin %s is %s", p.Name, p.State)
			}
		}
		return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// param returns a path parameter of r.
func param(r *http.Request, name string) string {
	return httprouter.ParamsFromContext(r.Context()).ByName(name)
}
