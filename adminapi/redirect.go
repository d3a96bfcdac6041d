package adminapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// flowCookie binds a redirect sign-in to the browser that started it. It
// holds a random value whose hash the flow keeps; it is sent only to the
// provider routes, never to scripts.
const flowCookie = "gatehouse_flow"

// setFlowCookie gives the browser its flow cookie for the flow's lifetime.
// SameSite=Lax: the browser still sends it on the provider's top-level
// redirect back to the callback.
func (s *Server) setFlowCookie(w http.ResponseWriter, r *http.Request, value string) {
	http.SetCookie(w, &http.Cookie{
		Name: flowCookie, Value: value, Path: "/auth/providers/", MaxAge: int(core.FlowTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || strings.HasPrefix(s.svc.PublicURL(), "https://"),
	})
}

// flowCookieOf returns the browser's flow cookie, or "".
func flowCookieOf(r *http.Request) string {
	c, err := r.Cookie(flowCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// failPage answers a browser-facing failure as a page with the status of err.
func failPage(w http.ResponseWriter, r *http.Request, title string, err error) error {
	web.WriteError(w, r, err, web.PageShape(title))
	return nil
}

// startSignIn handles GET /auth/providers/{provider}/start?redirect_uri=URI
// [&state=S][&login_hint=H]: 302 to the provider, with the flow cookie set.
// A redirect URI that is not allowed is a 400 page, never a redirect.
func (s *Server) startSignIn(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	fs, err := s.svc.StartSignIn(r.Context(), core.SignInStart{
		Provider: web.Param(r, "provider"), RedirectURI: q.Get("redirect_uri"), AppState: q.Get("state"),
		LoginHint: q.Get("login_hint"), Browser: flowCookieOf(r), ClientAddr: s.clientAddr(r),
	})
	if err != nil {
		return failPage(w, r, "Sign in", err)
	}
	s.setFlowCookie(w, r, fs.Browser)
	return redirect(w, fs.URL)
}

// redirect answers 302 to location, kept by no cache.
func redirect(w http.ResponseWriter, location string) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusFound)
	return nil
}

// callback handles GET /auth/providers/{provider}/callback, where the
// provider sends the browser back (for sign-ins and integrations alike): 302
// to the app's redirect URI with ?code= (a sign-in), to the integration's
// callback URL (a link), or with ?error= when a genuine flow failed; a 400
// page when the state is not a live flow of this browser.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	loc, err := s.svc.FinishRedirect(r.Context(), core.CallbackRequest{
		Provider: web.Param(r, "provider"), State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"),
		Browser: flowCookieOf(r),
	})
	var ce *core.CallbackError
	if errors.As(err, &ce) {
		web.LogFailure(r, ce.Err)
		return redirect(w, ce.Location)
	}
	if err != nil {
		return failPage(w, r, "Sign in", err)
	}
	return redirect(w, loc)
}

// linkedView is an integration account as the APIs show it: never a token.
type linkedView struct {
	Connector      string   `json:"connector"`
	UserIdentifier string   `json:"userIdentifier"`
	DisplayName    string   `json:"displayName,omitempty"`
	Scopes         []string `json:"scopes"`
	ConnectedAt    string   `json:"connectedAt"`
	UpdatedAt      string   `json:"updatedAt"`
}

func newLinkedView(a core.LinkedAccount) linkedView {
	scopes := a.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return linkedView{Connector: a.Connector, UserIdentifier: a.UserIdentifier, DisplayName: a.DisplayName, Scopes: scopes,
		ConnectedAt: formatTime(a.ConnectedAt), UpdatedAt: formatTime(a.UpdatedAt)}
}

// linkRequest is the body of POST /users/me/integrations/{name}.
type linkRequest struct {
	CallbackURL string `json:"callback_url"`
	State       string `json:"state"`
	LoginHint   string `json:"login_hint"`
}

// startLink handles POST /users/me/integrations/{name} with a session's
// bearer token: {callback_url} → {url}, the service's authorization URL.
func (s *Server) startLink(w http.ResponseWriter, r *http.Request) error {
	u, err := s.sessionUser(r)
	if err != nil {
		return err
	}
	var req linkRequest
	if err := web.DecodeJSON(w, r, web.PublicBodyLimit, &req); err != nil {
		return err
	}
	url, err := s.svc.StartLink(r.Context(), core.LinkStart{
		UserID: u.ID, ClientAddr: s.clientAddr(r), Connector: web.Param(r, "name"), CallbackURL: req.CallbackURL, AppState: req.State, LoginHint: req.LoginHint,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteJSON(w, http.StatusOK, map[string]string{"url": url})
}

// unlinkMine handles DELETE /users/me/integrations/{name}/{userIdentifier}.
func (s *Server) unlinkMine(w http.ResponseWriter, r *http.Request) error {
	u, err := s.sessionUser(r)
	if err != nil {
		return err
	}
	if err := s.svc.Unlink(r.Context(), u.ID, web.Param(r, "name"), web.Param(r, "account")); err != nil {
		return err
	}
	return web.NoContent(w)
}

// sessionUser returns the user of the request's session bearer token.
func (s *Server) sessionUser(r *http.Request) (core.User, error) {
	token, err := bearer(r)
	if err != nil {
		return core.User{}, err
	}
	return s.svc.Me(r.Context(), token)
}

// listLinked handles GET /users/{id}/integrations.
func (s *Server) listLinked(w http.ResponseWriter, r *http.Request) error {
	as, err := s.svc.LinkedAccounts(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string][]linkedView{"integrations": mapSlice(as, newLinkedView)})
}

// linkedTokenView is an integration account's access token, for the
// product's backend.
type linkedTokenView struct {
	AccessToken string   `json:"accessToken"`
	TokenType   string   `json:"tokenType,omitempty"`
	ExpiresAt   string   `json:"expiresAt,omitempty"`
	Scopes      []string `json:"scopes"`
}

// linkedToken handles POST /users/{id}/integrations/{name}/{userIdentifier}/token:
// a usable access token, refreshed when it has expired.
func (s *Server) linkedToken(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.LinkedToken(r.Context(), web.Param(r, "id"), web.Param(r, "name"), web.Param(r, "account"))
	if err != nil {
		return err
	}
	v := linkedTokenView{AccessToken: t.Token, TokenType: t.Type, Scopes: t.Scopes}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if !t.ExpiresAt.IsZero() {
		v.ExpiresAt = formatTime(t.ExpiresAt)
	}
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteJSON(w, http.StatusOK, v)
}

// unlinkUser handles DELETE /users/{id}/integrations/{name}/{userIdentifier}.
func (s *Server) unlinkUser(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.Unlink(r.Context(), web.Param(r, "id"), web.Param(r, "name"), web.Param(r, "account")); err != nil {
		return err
	}
	return web.NoContent(w)
}
