package adminapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// createScopes handles POST /scopes {scopes: [...]}: 201, all or none.
func (s *Server) createScopes(w http.ResponseWriter, r *http.Request) error {
	var req scopesRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	scopes, err := s.svc.CreateScopes(r.Context(), req.Scopes)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, map[string][]string{"scopes": scopeNames(scopes)})
}

// listScopes handles GET /scopes: {scopes: [names]} ([] when none; Express Gateway says null).
func (s *Server) listScopes(w http.ResponseWriter, r *http.Request) error {
	scopes, err := s.svc.Scopes(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string][]string{"scopes": scopeNames(scopes)})
}

// getScope handles GET /scopes/{name}: {scope}.
func (s *Server) getScope(w http.ResponseWriter, r *http.Request) error {
	sc, err := s.svc.GetScope(r.Context(), web.Param(r, "name"))
	if err != nil {
		return err
	}
	return web.WriteEntity(w, r, http.StatusOK, sc.Version(), map[string]string{"scope": sc.Name})
}

// putScope handles PUT /scopes/{name}: registers it, 201; Conflict if it exists,
// as in Express Gateway. With If-Match it never writes (core.CreateScope).
func (s *Server) putScope(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	sc, err := s.svc.CreateScope(r.Context(), web.Param(r, "name"), pre)
	if err != nil {
		return err
	}
	return web.WriteEntity(w, r, http.StatusCreated, sc.Version(), map[string]string{"scope": sc.Name})
}

// deleteScope handles DELETE /scopes/{name} (If-Match: the scope's ETag).
func (s *Server) deleteScope(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteScope(r.Context(), web.Param(r, "name"), pre); err != nil {
		return err
	}
	return web.NoContent(w)
}

func scopeNames(scopes []core.Scope) []string {
	return mapSlice(scopes, func(sc core.Scope) string { return sc.Name })
}
