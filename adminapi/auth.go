package adminapi

import (
	"maps"
	"net/http"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// loginRequest is the body of POST /auth/tokens.
type loginRequest struct {
	Provider   string `json:"provider"`
	Identifier string `json:"identifier"`
	Secret     string `json:"secret"`
	Code       string `json:"code"`
}

// tokenAnswer is a new session's token, shown once.
type tokenAnswer struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

// login handles POST /auth/tokens: {provider, identifier, secret} or
// {provider, code} (a redirect sign-in's) → {token, expiresAt}.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := web.DecodeJSON(w, r, web.PublicBodyLimit, &req); err != nil {
		return err
	}
	ns, err := s.svc.Login(r.Context(), core.LoginRequest{
		Provider: req.Provider, Identifier: req.Identifier, Secret: req.Secret, Code: req.Code,
		ClientAddr: s.clientAddr(r), UserAgent: r.UserAgent(),
	})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteJSON(w, http.StatusOK, tokenAnswer{Token: ns.Token, ExpiresAt: formatTime(ns.ExpiresAt)})
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, error) {
	if t, ok := web.Bearer(r); ok {
		return t, nil
	}
	return "", core.Errorf(core.Unauthorized, "adminapi.bearer", "a bearer token is required")
}

// logout handles POST /auth/logout: ends the session of the bearer token.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	token, err := bearer(r)
	if err != nil {
		return err
	}
	if err := s.svc.Logout(r.Context(), token); err != nil {
		return err
	}
	return web.NoContent(w)
}

// me handles GET /users/me: the profile of the bearer token's user.
func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	token, err := bearer(r)
	if err != nil {
		return err
	}
	u, err := s.svc.Me(r.Context(), token)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	v := newUserView(u)
	v.props = maps.Clone(v.props)
	if v.props == nil {
		v.props = map[string]any{}
	}
	v.props["identities"] = mapSlice(u.Identities, newIdentityView)
	linked, err := s.svc.LinkedAccounts(r.Context(), u.ID)
	if err != nil {
		return err
	}
	v.props["integrations"] = mapSlice(linked, newLinkedView)
	return web.WriteJSON(w, http.StatusOK, v)
}

// passwordRequest is the body of PUT /users/{id}/password.
type passwordRequest struct {
	Password *string `json:"password"`
}

// setPassword handles PUT /users/{id}/password: sets it and ends every
// session; 204 with the user's new ETag (If-Match: the user's ETag).
func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	var req passwordRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	if req.Password == nil {
		return core.InvalidFields("adminapi.setPassword", core.FieldError{Field: "password", Detail: "is required"})
	}
	u, err := s.svc.SetPassword(r.Context(), web.Param(r, "id"), *req.Password, pre)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", web.ETag(u.Version()))
	return web.NoContent(w)
}

// newSecret handles POST /users/{id}/secret: a new user secret, shown once (a
// replay of its Idempotency-Key answers {}: the secret is not kept).
func (s *Server) newSecret(w http.ResponseWriter, r *http.Request) error {
	secret, err := s.svc.NewUserSecret(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	replayAs(r, struct{}{})
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteJSON(w, http.StatusOK, map[string]string{"secret": secret})
}

// sessionView is a session as the admin API lists it: never its token.
type sessionView struct {
	ID         string `json:"id"`
	Provider   string `json:"provider"`
	CreatedAt  string `json:"createdAt"`
	ExpiresAt  string `json:"expiresAt"`
	LastSeenAt string `json:"lastSeenAt,omitempty"`
	ClientAddr string `json:"clientAddr,omitempty"`
	UserAgent  string `json:"userAgent,omitempty"`
}

func newSessionView(s core.Session) sessionView {
	return sessionView{ID: s.ID, Provider: s.Provider, CreatedAt: formatTime(s.CreatedAt), ExpiresAt: formatTime(s.ExpiresAt),
		LastSeenAt: formatTime(s.LastSeenAt), ClientAddr: s.ClientAddr, UserAgent: s.UserAgent}
}

// listSessions handles GET /users/{id}/sessions.
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	sessions, err := s.svc.Sessions(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string][]sessionView{"sessions": mapSlice(sessions, newSessionView)})
}

// endSessions handles DELETE /users/{id}/sessions: force logout, every session
// and token at once.
func (s *Server) endSessions(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.EndSessions(r.Context(), web.Param(r, "id")); err != nil {
		return err
	}
	return web.NoContent(w)
}

// revokeToken handles DELETE /tokens/{token} (what `eg tokens revoke` calls).
// The access log records the route pattern, never the token.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.RevokeToken(r.Context(), web.Param(r, "token")); err != nil {
		return err
	}
	return web.NoContent(w)
}
