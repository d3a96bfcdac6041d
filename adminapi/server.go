// Package adminapi serves Gatehouse over HTTP: the native admin API (Express
// Gateway compatible), the public API (logins, sign-ups, OAuth tokens, /verify)
// and the health endpoints, and mounts each dialect (adminapi/dialect/NAME).
// Handlers decode, call core.Service, and encode; the plumbing they share —
// routes, guards, body decoding, errors and the access log — is package web.
package adminapi

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/adminapi/dialect/gaio"
	"github.com/gatehouse/gatehouse/adminapi/dialect/glconnectors"
	"github.com/gatehouse/gatehouse/adminapi/dialect/publicala"
	"github.com/gatehouse/gatehouse/adminapi/dialect/qloud"
	"github.com/gatehouse/gatehouse/adminapi/openapi"
	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// Options configures a Server.
type Options struct {
	// Log is the base logger; every error goes through it, and the access
	// lines when AccessLog is nil.
	Log zerolog.Logger
	// AccessLog, when set, receives the access lines (one per request, one
	// JSON line a Write) instead of Log, at Log's level (serve gives it a
	// buffered, asynchronous writer).
	AccessLog io.Writer
	// TrustedProxies are the peers whose X-Forwarded-For is believed; nil
	// means loopback only.
	TrustedProxies []netip.Prefix
	// Registry receives the HTTP metrics and is served at /metrics; nil makes one.
	Registry *prometheus.Registry
	// AllowedOrigins may call the public API from a browser (CORS); none by default.
	AllowedOrigins []string
	// Plugins reports the plugins for GET /plugins and /readyz; nil: none.
	Plugins PluginStatuser
	// MetricsRequireKey puts /metrics behind an admin key (scope admin or
	// read), like the native admin API; false leaves it open to anyone who
	// reaches the admin listener.
	MetricsRequireKey bool
}

// Server holds the routes of both listeners.
type Server struct {
	svc     *core.Service
	site    *web.Site
	plugins PluginStatuser
	admin   *web.Listener
	public  *web.Listener
	reg     *prometheus.Registry
	metrics *metrics
	// metricsKey: /metrics needs an admin key (Options.MetricsRequireKey).
	metricsKey bool
	native     []*web.Routes // the route groups of the native APIs (not of a dialect)
	users      *userMemo     // users' views and versions by their stored form
}

// New returns a Server over svc with every route registered.
func New(svc *core.Service, opt Options) *Server {
	s := &Server{svc: svc, plugins: opt.Plugins, reg: opt.Registry, metricsKey: opt.MetricsRequireKey, users: newUserMemo()}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(s.reg)
	s.site = web.NewSite(web.Options{Log: opt.Log, AccessLog: opt.AccessLog, TrustedProxies: opt.TrustedProxies, Registry: s.reg, Authenticate: svc.AuthenticateAdmin})
	s.admin = s.site.Listener("admin")
	s.public = s.site.Listener("public")
	s.public.AllowOrigins(opt.AllowedOrigins)
	s.adminRoutes()
	s.publicRoutes()
	glconnectors.Mount(s.public, svc)
	qloud.Mount(s.admin, svc)
	gaio.Mount(s.admin, svc)
	publicala.Mount(s.admin, svc)
	return s
}

// Admin returns the admin listener's handler.
func (s *Server) Admin() http.Handler { return s.admin.Handler() }

// Public returns the public listener's handler, with CORS for the allowed origins.
func (s *Server) Public() http.Handler { return s.public.Handler() }

// clientAddr returns the client's address behind the trusted proxies.
func (s *Server) clientAddr(r *http.Request) string { return s.site.ClientAddr(r) }

// adminRoutes registers the admin listener's routes.
func (s *Server) adminRoutes() {
	a := s.routes(s.admin, web.Problem)
	metrics := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	if s.metricsKey {
		a.Handle(web.Native, "GET", "/metrics", func(w http.ResponseWriter, r *http.Request) error {
			metrics.ServeHTTP(w, r)
			return nil
		})
	} else {
		s.admin.Raw(http.MethodGet, "/metrics", metrics)
	}
	s.healthRoutes(a)
	native, admin := web.Native, web.AdminOnly
	ifMatch, idempotencyKey := web.IfMatch, web.IdempotencyKey

	a.Handle(native, "POST", "/users", s.idempotent(s.createUser), idempotencyKey)
	a.Handle(native, "GET", "/users", s.listUsers)
	a.Handle(native, "GET", "/users/:id", s.getUser)
	a.Handle(native, "PUT", "/users/:id", s.updateUser, ifMatch)
	a.Handle(native, "DELETE", "/users/:id", s.deleteUser, ifMatch)
	a.Handle(native, "PUT", "/users/:id/status", s.setUserStatus, ifMatch)
	a.Handle(native, "GET", "/users/:id/groups", s.userGroups)
	a.Handle(native, "PUT", "/users/:id/groups", s.editUserGroups(http.MethodPut), ifMatch)
	a.Handle(native, "POST", "/users/:id/groups", s.editUserGroups(http.MethodPost), ifMatch)
	a.Handle(native, "DELETE", "/users/:id/groups/:group", s.editUserGroups(http.MethodDelete), ifMatch)
	a.Handle(native, "GET", "/users/:id/tags", s.userTags)
	a.Handle(native, "PUT", "/users/:id/tags", s.setUserTags, ifMatch)
	a.Handle(native, "PUT", "/users/:id/tags/:tag", s.editUserTag(true), ifMatch)
	a.Handle(native, "DELETE", "/users/:id/tags/:tag", s.editUserTag(false), ifMatch)

	a.Handle(native, "POST", "/groups", s.idempotent(s.createGroup), idempotencyKey)
	a.Handle(native, "GET", "/groups", s.listGroups)
	a.Handle(native, "GET", "/groups/:id", s.getGroup)
	a.Handle(native, "PUT", "/groups/:id", s.updateGroup, ifMatch)
	a.Handle(native, "DELETE", "/groups/:id", s.deleteGroup, ifMatch)
	a.Handle(native, "GET", "/groups/:id/tags", s.groupTags)
	a.Handle(native, "PUT", "/groups/:id/tags", s.setGroupTags, ifMatch)
	a.Handle(native, "PUT", "/groups/:id/tags/:tag", s.editGroupTag(true), ifMatch)
	a.Handle(native, "DELETE", "/groups/:id/tags/:tag", s.editGroupTag(false), ifMatch)

	a.Handle(native, "POST", "/apps", s.idempotent(s.createApp), idempotencyKey)
	a.Handle(native, "GET", "/apps", s.listApps)
	a.Handle(native, "GET", "/apps/:id", s.getApp)
	a.Handle(native, "PUT", "/apps/:id", s.updateApp, ifMatch)
	a.Handle(native, "DELETE", "/apps/:id", s.deleteApp, ifMatch)
	a.Handle(native, "PUT", "/apps/:id/status", s.setAppStatus, ifMatch)

	// Shared parameter names per position: httprouter cannot hold two.
	a.Handle(native, "POST", "/credentials", s.idempotent(s.createCredential), idempotencyKey)
	a.Handle(native, "GET", "/credentials", s.listCredentials)
	a.Handle(native, "GET", "/credentials/:a", s.consumerCredentials)
	a.Handle(native, "GET", "/credentials/:a/:b", s.getCredential)
	a.Handle(native, "DELETE", "/credentials/:a/:b", s.deleteCredential, ifMatch)
	a.Handle(native, "PUT", "/credentials/:a/:b/status", s.setCredentialStatus, ifMatch)
	a.Handle(native, "PUT", "/credentials/:a/:b/scopes", s.setCredentialScopes, ifMatch)
	a.Handle(native, "PUT", "/credentials/:a/:b/scopes/:c", s.addCredentialScope, ifMatch)
	a.Handle(native, "DELETE", "/credentials/:a/:b/scopes/:c", s.removeCredentialScope, ifMatch)

	a.Handle(native, "POST", "/scopes", s.idempotent(s.createScopes), idempotencyKey)
	a.Handle(native, "GET", "/scopes", s.listScopes)
	a.Handle(native, "GET", "/scopes/:name", s.getScope)
	a.Handle(native, "PUT", "/scopes/:name", s.putScope, ifMatch)
	a.Handle(native, "DELETE", "/scopes/:name", s.deleteScope, ifMatch)

	a.Handle(native, "PUT", "/users/:id/password", s.setPassword, ifMatch)
	a.Handle(native, "POST", "/users/:id/secret", s.idempotent(s.newSecret), idempotencyKey)
	a.Handle(native, "GET", "/users/:id/sessions", s.listSessions)
	a.Handle(native, "GET", "/users/:id/identities", s.listIdentities)
	a.Handle(native, "GET", "/users/:id/integrations", s.listLinked)
	a.Handle(native, "POST", "/users/:id/integrations/:name/:account/token", s.linkedToken)
	a.Handle(native, "DELETE", "/users/:id/integrations/:name/:account", s.unlinkUser)
	a.Handle(native, "DELETE", "/users/:id/sessions", s.endSessions)
	a.Handle(native, "DELETE", "/tokens/:token", s.revokeToken)

	a.Handle(native, "POST", "/clients", s.idempotent(s.createClient), idempotencyKey)
	a.Handle(native, "GET", "/clients", s.listClients)
	a.Handle(native, "GET", "/clients/:id", s.getClient)
	a.Handle(native, "DELETE", "/clients/:id", s.deleteClient, ifMatch)
	a.Handle(native, "POST", "/clients/:id/keys", s.idempotent(s.newClientKey), idempotencyKey)
	a.Handle(native, "DELETE", "/clients/:id/keys/:keyId", s.revokeClientKey, ifMatch)

	a.Handle(admin, "POST", "/admin-keys", s.idempotent(s.createAdminKey), idempotencyKey)
	a.Handle(admin, "GET", "/admin-keys", s.listAdminKeys)
	a.Handle(admin, "DELETE", "/admin-keys/:id", s.revokeAdminKey, ifMatch)
	a.Handle(native, "GET", "/plugins", s.listPlugins)
	a.Handle(admin, "GET", "/doctor", s.doctor)
	a.Handle(admin, "POST", "/doctor/repair", s.doctorRepair)
}

// publicRoutes registers the public listener's routes.
func (s *Server) publicRoutes() {
	p := s.routes(s.public, web.Problem)
	open := web.Open
	s.healthRoutes(p)
	p.Handle(open, "POST", "/auth/tokens", counted(s.metrics.logins, s.login))
	p.Handle(open, "POST", "/auth/logout", s.logout)
	p.Handle(open, "GET", "/users/me", s.me)
	p.Handle(open, "POST", "/auth/providers/:provider/signup", counted(s.metrics.signups, s.signup))
	p.Handle(open, "GET", "/auth/providers/:provider/verify", s.verifyPage)
	p.Handle(open, "POST", "/auth/providers/:provider/verify", s.confirmEmail)
	p.Handle(open, "POST", "/auth/providers/:provider/resend", s.mailAsk(s.svc.ResendVerification))
	p.Handle(open, "POST", "/auth/providers/:provider/password-reset", s.mailAsk(s.svc.RequestPasswordReset))
	p.Handle(open, "GET", "/auth/providers/:provider/password-reset", s.resetPage)
	p.Handle(open, "POST", "/auth/providers/:provider/password-reset/confirm", s.confirmReset)
	p.Handle(open, "GET", "/auth/providers/:provider/start", s.startSignIn)
	p.Handle(open, "GET", "/auth/providers/:provider/callback", s.callback)
	p.Handle(open, "POST", "/users/me/integrations/:name", s.startLink)
	p.Handle(open, "DELETE", "/users/me/integrations/:name/:account", s.unlinkMine)
	o := s.routes(s.public, oauthShape)
	o.Handle(open, "POST", "/oauth2/token", s.tokenGrant)
	o.Handle(open, "POST", "/oauth2/revoke", s.revokeGrant)
	for _, m := range verifyMethods {
		p.HandleExact(open, m, "/verify", s.verify)
		p.HandleExact(open, m, "/verify/*path", s.verify)
	}
}

// routes returns a route group of the native APIs on l, whose errors are
// written in shape. Its routes are the ones the OpenAPI document describes.
func (s *Server) routes(l *web.Listener, shape web.Shape) *web.Routes {
	rs := l.Routes(shape)
	s.native = append(s.native, rs)
	return rs
}

// Routes returns every route of both listeners, in registration order, each
// marked with whether the OpenAPI document describes it (a dialect's is not)
// and the request headers it honours (If-Match, Idempotency-Key).
func (s *Server) Routes() []openapi.Route {
	var out []openapi.Route
	for _, l := range []struct {
		name string
		l    *web.Listener
	}{{openapi.Admin, s.admin}, {openapi.Public, s.public}} {
		for _, p := range l.l.Patterns() {
			described := p.Group == nil || slices.Contains(s.native, p.Group)
			rt := openapi.Route{Listener: l.name, Method: p.Method, Path: p.Path, Described: described}
			for _, h := range p.Honours {
				rt.Honours = append(rt.Honours, string(h))
			}
			out = append(out, rt)
		}
	}
	return out
}

// openAPI handles GET /openapi.json: the document of both APIs
// (adminapi/openapi/gatehouse.yaml), open to anyone on both listeners.
func openAPI(w http.ResponseWriter, r *http.Request) error {
	b, err := openapi.JSON()
	if err != nil {
		return core.E(core.Internal, "adminapi.openAPI", err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b) // a failed write means the client went away
	return nil
}

// healthRoutes registers /healthz (the process is up), /readyz (the store
// answers and every plugin runs) and /openapi.json, open to anyone.
func (s *Server) healthRoutes(rs *web.Routes) {
	rs.Handle(web.Open, "GET", "/openapi.json", openAPI)
	rs.Handle(web.Open, "GET", "/healthz", func(w http.ResponseWriter, r *http.Request) error {
		return web.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	rs.Handle(web.Open, "GET", "/readyz", func(w http.ResponseWriter, r *http.Request) error {
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
		return web.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
