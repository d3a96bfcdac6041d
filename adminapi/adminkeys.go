package adminapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// adminKeyRequest is the body of POST /admin-keys.
type adminKeyRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// createAdminKey handles POST /admin-keys: 201 with the key, shown this once
// (a replay of its Idempotency-Key answers it without the key), and its ETag.
func (s *Server) createAdminKey(w http.ResponseWriter, r *http.Request) error {
	var req adminKeyRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	k, plain, err := s.svc.CreateAdminKey(r.Context(), req.Name, core.AdminScope(req.Scope))
	if err != nil {
		return err
	}
	v := newAdminKeyView(k)
	replayAs(r, v)
	v.Key = plain
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteEntity(w, r, http.StatusCreated, k.Version(), v)
}

// listAdminKeys handles GET /admin-keys: names, prefixes and scopes, never keys.
func (s *Server) listAdminKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.svc.AdminKeys(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string][]adminKeyView{"adminKeys": mapSlice(keys, newAdminKeyView)})
}

// revokeAdminKey handles DELETE /admin-keys/{id} (If-Match: the key's ETag).
func (s *Server) revokeAdminKey(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	if err := s.svc.RevokeAdminKey(r.Context(), web.Param(r, "id"), pre); err != nil {
		return err
	}
	return web.NoContent(w)
}

// doctor handles GET /doctor: what leftovers exist, changing nothing.
func (s *Server) doctor(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.svc.Doctor(r.Context(), false)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, rep)
}

// doctorRepair handles POST /doctor/repair: removes the leftovers it finds.
func (s *Server) doctorRepair(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.svc.Doctor(r.Context(), true)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, rep)
}
