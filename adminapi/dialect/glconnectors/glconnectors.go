// Package glconnectors serves the GL Connectors API under /gl/ on the public
// listener, as its official clients call it: the Python SDK
// (gl_connectors_sdk) and the CLI (glcon). It only translates: a client key
// (x-api-key, any letter case) names the client (tenant), a user's bearer
// token its user, and every operation is a core one.
//
// Wire rules its clients depend on (docs/dialects.md):
//   - every answer is JSON with status 200 on success, in the envelope
//     {"data": ..., "meta": null} (the SDK accepts exactly 200), but for the
//     connector catalog, which is a bare object (the CLI lists its keys) or a
//     bare array (/connectors/names);
//   - every error is {"message": m, "error": {"message": m, "code": c}} with
//     the real status (the SDK reads message, the CLI error.message); the
//     three routes of one integration also carry
//     data: {"success": false, "error": m, "message": m}, since the SDK and
//     the CLI read only data there;
//   - ids are UUIDs; expires_at is ISO 8601 UTC without an offset, with
//     microseconds;
//   - paths answer with and without a trailing slash, never by redirecting.
package glconnectors

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// Prefix is where the dialect is mounted on the public listener: its
// clients take a base URL, https://host/gl.
const Prefix = "/gl"

// expiresFormat is how the dialect writes a token's expiry.
const expiresFormat = "2006-01-02T15:04:05.000000"

// api is the dialect's handlers over a core service.
type api struct {
	svc *core.Service
	l   *web.Listener
}

// Mount registers the dialect's routes on the public listener l.
func Mount(l *web.Listener, svc *core.Service) {
	a := &api{svc: svc, l: l}
	rs := l.Routes(errorShape)
	for _, path := range []string{"/users", "/clients/register-user"} {
		rs.Handle(web.Open, "POST", Prefix+path, a.register)
	}
	for _, path := range []string{"/auth/tokens", "/clients/oauth-token"} {
		rs.Handle(web.Open, "POST", Prefix+path, a.token)
	}
	for _, path := range []string{"/users/me", "/clients/user"} {
		rs.Handle(web.Open, "GET", Prefix+path, a.me)
	}
	rs.Handle(web.Open, "GET", Prefix+"/connectors", a.connectors)
	rs.Handle(web.Open, "GET", Prefix+"/connectors/:name", a.connectorNames)
	rs.Handle(web.Open, "GET", Prefix+"/connectors/:name/integration-exists", a.exists)
	rs.Handle(web.Open, "POST", Prefix+"/connectors/:name/integrations", a.integrate)
	rs.Handle(web.Open, "GET", Prefix+"/connectors/:name/success-authorize-callback", a.successPage)
	one := l.Routes(integrationErrorShape)
	one.Handle(web.Open, "GET", Prefix+"/connectors/:name/integrations/:ident", a.integration)
	one.Handle(web.Open, "POST", Prefix+"/connectors/:name/integrations/:ident", a.selectIntegration)
	one.Handle(web.Open, "DELETE", Prefix+"/connectors/:name/integrations/:ident", a.removeIntegration)
}

// envelope is every success's body but the catalog's.
type envelope struct {
	Data any `json:"data"`
	Meta any `json:"meta"`
}

func ok(w http.ResponseWriter, data any) error {
	return web.WriteJSON(w, http.StatusOK, envelope{Data: data})
}

// codes name the error kinds in the error object.
var codes = map[core.Kind]string{
	core.Malformed: "BAD_REQUEST", core.Invalid: "VALIDATION_ERROR", core.Unauthorized: "UNAUTHORIZED",
	core.Forbidden: "FORBIDDEN", core.NotFound: "NOT_FOUND", core.Conflict: "CONFLICT",
	core.PreconditionFailed: "PRECONDITION_FAILED", core.TooLarge: "PAYLOAD_TOO_LARGE",
	core.RateLimited: "RATE_LIMITED", core.Unavailable: "SERVICE_UNAVAILABLE",
}

type errorObject struct {
	Message string `json:"message"`
	Code    string `json:"code"`
}

type errorBody struct {
	Message string         `json:"message"`
	Error   errorObject    `json:"error"`
	Data    *failedOutcome `json:"data,omitempty"`
	Fields  []fieldProblem `json:"errors,omitempty"`
}

type fieldProblem struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// failedOutcome is data of an integration route that failed.
type failedOutcome struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

func body(f web.Failure) errorBody {
	code := codes[f.Kind]
	if code == "" {
		code = "INTERNAL_ERROR"
	}
	b := errorBody{Message: f.Detail, Error: errorObject{Message: f.Detail, Code: code}}
	for _, fe := range f.Fields {
		b.Fields = append(b.Fields, fieldProblem(fe))
	}
	return b
}

// errorShape writes the dialect's error body.
func errorShape(w http.ResponseWriter, _ *http.Request, f web.Failure) {
	_ = web.WriteJSON(w, f.Status, body(f))
}

// integrationErrorShape adds data.success false for the routes of one
// integration, whose clients read only data.
func integrationErrorShape(w http.ResponseWriter, _ *http.Request, f web.Failure) {
	b := body(f)
	b.Data = &failedOutcome{Error: f.Detail, Message: f.Detail}
	_ = web.WriteJSON(w, f.Status, b)
}

// client authenticates the request's client key: x-api-key in any letter
// case (Go's header lookup folds it).
func (a *api) client(r *http.Request) (core.Client, error) {
	return a.svc.AuthenticateClient(r.Context(), r.Header.Get("X-Api-Key"))
}

// user authenticates the client key and the user's bearer token, which must
// be one of the client's users.
func (a *api) user(r *http.Request) (core.Client, core.User, error) {
	c, err := a.client(r)
	if err != nil {
		return core.Client{}, core.User{}, err
	}
	token, found := web.Bearer(r)
	if !found {
		return core.Client{}, core.User{}, core.Errorf(core.Unauthorized, "glconnectors.user", "a bearer token is required")
	}
	u, err := a.svc.ClientSessionUser(r.Context(), c, token)
	return c, u, err
}

// identifierRequest is the body of register and token.
type identifierRequest struct {
	Identifier string `json:"identifier"`
	Secret     string `json:"secret"`
}

// identified authenticates the client key and reads the {identifier[,
// secret]} body of register and token.
func (a *api) identified(w http.ResponseWriter, r *http.Request) (core.Client, identifierRequest, error) {
	var req identifierRequest
	c, err := a.client(r)
	if err == nil {
		err = decode(w, r, &req)
	}
	return c, req, err
}

// decode reads a JSON body leniently (the clients may send more than the
// fields used); an empty body reads as {}.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := web.ReadBody(w, r, web.PublicBodyLimit)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return web.Unmarshal(b, v, false)
}

// userView is a user as the dialect shows it.
type userView struct {
	ID            string            `json:"id"`
	ClientID      string            `json:"client_id"`
	Identifier    string            `json:"identifier"`
	Secret        *string           `json:"secret"`
	SecretPreview string            `json:"secret_preview"`
	IsActive      bool              `json:"is_active"`
	Integrations  []integrationView `json:"integrations"`
}

// integrationView is one of a user's integrations in its profile.
type integrationView struct {
	ID             string `json:"id"`
	ClientID       string `json:"client_id"`
	UserID         string `json:"user_id"`
	Connector      string `json:"connector"`
	UserIdentifier string `json:"user_identifier"`
	Selected       bool   `json:"selected"`
}

func newUserView(u core.User, accounts []core.LinkedAccount) userView {
	v := userView{ID: u.ID, ClientID: u.ClientID, Identifier: u.ClientIdentifier, SecretPreview: u.SecretPreview,
		IsActive: u.IsActive, Integrations: []integrationView{}}
	for _, acct := range accounts {
		v.Integrations = append(v.Integrations, integrationView{ID: acct.ID, ClientID: u.ClientID, UserID: u.ID,
			Connector: acct.Connector, UserIdentifier: acct.UserIdentifier, Selected: acct.Selected})
	}
	return v
}

// register handles POST /gl/users and /gl/clients/register-user:
// {identifier} → the user with its secret, shown once.
func (a *api) register(w http.ResponseWriter, r *http.Request) error {
	c, req, err := a.identified(w, r)
	if err != nil {
		return err
	}
	cu, err := a.svc.RegisterClientUser(r.Context(), c, req.Identifier)
	if err != nil {
		return err
	}
	v := newUserView(cu.User, nil)
	v.Secret = &cu.Secret
	w.Header().Set("Cache-Control", "no-store")
	return ok(w, v)
}

// tokenView is a new token.
type tokenView struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresAt string `json:"expires_at"`
	IsRevoked bool   `json:"is_revoked"`
	UserID    string `json:"user_id"`
	ClientID  string `json:"client_id"`
}

// token handles POST /gl/auth/tokens and /gl/clients/oauth-token:
// {identifier, secret} → a session token; older ones stay alive.
func (a *api) token(w http.ResponseWriter, r *http.Request) error {
	c, req, err := a.identified(w, r)
	if err != nil {
		return err
	}
	ns, err := a.svc.ClientLogin(r.Context(), c, core.LoginRequest{
		Identifier: req.Identifier, Secret: req.Secret, ClientAddr: a.l.ClientAddr(r), UserAgent: r.UserAgent(),
	})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return ok(w, tokenView{Token: ns.Token, TokenType: "Bearer", ExpiresAt: ns.ExpiresAt.UTC().Format(expiresFormat),
		UserID: ns.UserID, ClientID: c.ID})
}

// me handles GET /gl/users/me and /gl/clients/user.
func (a *api) me(w http.ResponseWriter, r *http.Request) error {
	_, u, err := a.user(r)
	if err != nil {
		return err
	}
	accounts, err := a.svc.LinkedAccounts(r.Context(), u.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return ok(w, newUserView(u, accounts))
}

// connectors handles GET /gl/connectors: a bare object keyed by connector
// name. The CLI sends its client key as a bearer token; the SDK asks
// ?modules=NAME with no key at all (Gatehouse runs no connector actions, so
// each connector's actions are {}).
func (a *api) connectors(w http.ResponseWriter, r *http.Request) error {
	if token, found := web.Bearer(r); found && strings.HasPrefix(token, core.PrefixClientKey) {
		if _, err := a.svc.AuthenticateClient(r.Context(), token); err != nil {
			return err
		}
	}
	names := a.svc.Connectors()
	if modules := r.URL.Query().Get("modules"); modules != "" {
		want := strings.Split(modules, ",")
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !slices.Contains(want, n) })
	}
	out := make(map[string]map[string]any, len(names))
	for _, n := range names {
		out[n] = map[string]any{}
	}
	return web.WriteJSON(w, http.StatusOK, out)
}

// connectorNames handles GET /gl/connectors/names: a bare array of names.
// (The router holds /connectors/:name for the routes below it.)
func (a *api) connectorNames(w http.ResponseWriter, r *http.Request) error {
	if web.Param(r, "name") != "names" {
		return core.Errorf(core.NotFound, "glconnectors.connector", "no route GET matches this path")
	}
	names := a.svc.Connectors()
	if names == nil {
		names = []string{}
	}
	return web.WriteJSON(w, http.StatusOK, names)
}

// connector checks that the path names a connector.
func (a *api) connector(r *http.Request) (string, error) {
	name := web.Param(r, "name")
	if !slices.Contains(a.svc.Connectors(), name) {
		return "", core.Errorf(core.NotFound, "glconnectors.connector", "connector %q not found", name)
	}
	return name, nil
}

// exists handles GET /gl/connectors/{name}/integration-exists.
func (a *api) exists(w http.ResponseWriter, r *http.Request) error {
	_, u, err := a.user(r)
	if err != nil {
		return err
	}
	name, err := a.connector(r)
	if err != nil {
		return err
	}
	accounts, err := a.svc.LinkedAccounts(r.Context(), u.ID)
	if err != nil {
		return err
	}
	has := false
	for _, acct := range accounts {
		has = has || acct.Connector == name
	}
	return ok(w, map[string]bool{"has_integration": has})
}

// integrateRequest is the body of POST /gl/connectors/{name}/integrations.
type integrateRequest struct {
	CallbackURL   string         `json:"callback_url"`
	LoginHint     string         `json:"login_hint"` // Gatehouse's: which account the service should offer
	AuthType      string         `json:"auth_type"`
	Configuration map[string]any `json:"configuration"`
}

// successPath is the dialect's own page that a link returns to.
func successPath(connector string) string {
	return Prefix + "/connectors/" + connector + "/success-authorize-callback"
}

// integrate handles POST /gl/connectors/{name}/integrations: {callback_url}
// → {url}, where the user authorizes the link; or {auth_type: "custom",
// configuration} → the configuration stored as an integration.
func (a *api) integrate(w http.ResponseWriter, r *http.Request) error {
	_, u, err := a.user(r)
	if err != nil {
		return err
	}
	name, err := a.connector(r)
	if err != nil {
		return err
	}
	var req integrateRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.AuthType == "custom" {
		if _, err := a.svc.ConfigureIntegration(r.Context(), u.ID, name, req.Configuration); err != nil {
			return err
		}
		return ok(w, map[string]any{"success": true, "message": "Plugin configuration saved."})
	}
	if req.AuthType != "" && req.AuthType != "oauth2" {
		return core.Errorf(core.Malformed, "glconnectors.integrate", "auth_type must be \"custom\" or left out")
	}
	authURL, err := a.svc.StartLink(r.Context(), core.LinkStart{
		UserID: u.ID, ClientAddr: a.l.ClientAddr(r), Connector: name, CallbackURL: req.CallbackURL, LoginHint: req.LoginHint,
		OwnPage: a.ownPage(r, name, req.CallbackURL),
	})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return ok(w, map[string]string{"url": authURL})
}

// ownPage returns callback when it is this dialect's own success page for
// the connector (the CLI's callback), at the public URL's host or at the
// host the request came to; "" otherwise.
func (a *api) ownPage(r *http.Request, connector, callback string) string {
	u, err := url.Parse(callback)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" ||
		strings.TrimSuffix(u.Path, "/") != successPath(connector) {
		return ""
	}
	public, _ := url.Parse(a.svc.PublicURL())
	if (public != nil && u.Host == public.Host) || u.Host == r.Host {
		return callback
	}
	return ""
}

// successPage handles GET /gl/connectors/{name}/success-authorize-callback,
// where a link started with the CLI's callback ends.
func (a *api) successPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" || q.Get("user_identifier") == "" {
		return web.WritePage(w, http.StatusBadRequest, web.Page{Title: "Not connected", Error: true,
			Message: "The " + web.Param(r, "name") + " account was not connected (" + e + "). You may close this window and try again."})
	}
	return web.WritePage(w, http.StatusOK, web.Page{Title: "Connected",
		Message: "Your " + q.Get("connector") + " account " + q.Get("user_identifier") + " is connected. You may close this window."})
}

// account authenticates and returns the user and the path's connector and
// account identifier.
func (a *api) account(r *http.Request) (core.User, string, string, error) {
	_, u, err := a.user(r)
	if err != nil {
		return core.User{}, "", "", err
	}
	name, err := a.connector(r)
	if err != nil {
		return core.User{}, "", "", err
	}
	return u, name, web.Param(r, "ident"), nil
}

// integrationDetail is one integration's details, its credentials included:
// the client acts on the user's behalf with them.
type integrationDetail struct {
	Connector      string   `json:"connector"`
	UserIdentifier string   `json:"user_identifier"`
	AuthString     string   `json:"auth_string"`
	AuthScopes     []string `json:"auth_scopes"`
	Selected       bool     `json:"selected"`
}

// integration handles GET /gl/connectors/{name}/integrations/{ident}: the
// account with a usable access token (refreshed when it expired), or the
// configuration it was given.
func (a *api) integration(w http.ResponseWriter, r *http.Request) error {
	u, name, ident, err := a.account(r)
	if err != nil {
		return err
	}
	t, err := a.svc.LinkedToken(r.Context(), u.ID, name, ident)
	if err != nil {
		return err
	}
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	w.Header().Set("Cache-Control", "no-store")
	return ok(w, integrationDetail{Connector: name, UserIdentifier: ident, AuthString: t.Token, AuthScopes: scopes, Selected: t.Selected})
}

// success is the data of a select or remove that worked.
var success = map[string]bool{"success": true}

// selectIntegration handles POST /gl/connectors/{name}/integrations/{ident}
// (no body, or {"selected": true}): the account becomes its connector's
// selected one.
func (a *api) selectIntegration(w http.ResponseWriter, r *http.Request) error {
	u, name, ident, err := a.account(r)
	if err != nil {
		return err
	}
	var req struct {
		Selected *bool `json:"selected"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Selected != nil && !*req.Selected {
		return core.Errorf(core.Malformed, "glconnectors.select", "selected can only be true: select another account instead")
	}
	if err := a.svc.SelectLinked(r.Context(), u.ID, name, ident); err != nil {
		return err
	}
	return ok(w, success)
}

// removeIntegration handles DELETE /gl/connectors/{name}/integrations/{ident}:
// revoked at the service where it can, and removed.
func (a *api) removeIntegration(w http.ResponseWriter, r *http.Request) error {
	u, name, ident, err := a.account(r)
	if err != nil {
		return err
	}
	if err := a.svc.Unlink(r.Context(), u.ID, name, ident); err != nil {
		return err
	}
	return ok(w, success)
}
