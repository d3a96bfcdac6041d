package adminapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse/adminapi/web"
)

// createApp handles POST /apps; Express Gateway answers 200.
func (s *Server) createApp(w http.ResponseWriter, r *http.Request) error {
	f, err := web.DecodeFields(w, r, web.AdminBodyLimit)
	if err != nil {
		return err
	}
	a, err := s.svc.CreateApp(r.Context(), f)
	if err != nil {
		return err
	}
	return web.WriteEntity(w, r, http.StatusOK, a.Version(), newAppView(a))
}

// listApps handles GET /apps (?userId= for one owner's): {apps, nextKey}.
func (s *Server) listApps(w http.ResponseWriter, r *http.Request) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.svc.ListApps(r.Context(), opt)
	if err != nil {
		return err
	}
	setTotal(w, p.Total)
	return writeList(w, "apps", p.Items, viewJSON(newAppView), p.NextKey)
}

// getApp handles GET /apps/{id or name}.
func (s *Server) getApp(w http.ResponseWriter, r *http.Request) error {
	a, err := s.svc.ResolveApp(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	return web.WriteEntity(w, r, http.StatusOK, a.Version(), newAppView(a))
}

// updateApp handles PUT /apps/{id or name}; If-Match as the app's ETag.
func (s *Server) updateApp(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	f, err := web.DecodeFields(w, r, web.AdminBodyLimit)
	if err != nil {
		return err
	}
	a, err := s.svc.UpdateApp(r.Context(), web.Param(r, "id"), f, pre)
	if err != nil {
		return err
	}
	return web.WriteEntity(w, r, http.StatusOK, a.Version(), newAppView(a))
}

// deleteApp handles DELETE /apps/{id or name}.
func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteApp(r.Context(), web.Param(r, "id"), pre); err != nil {
		return err
	}
	return web.NoContent(w)
}

// setAppStatus handles PUT /apps/{id or name}/status (If-Match: the app's ETag).
func (s *Server) setAppStatus(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	active, err := decodeStatus(w, r)
	if err != nil {
		return err
	}
	changed, err := s.svc.SetAppStatus(r.Context(), web.Param(r, "id"), active, pre)
	if err != nil {
		return err
	}
	return statusAnswer(w, active, changed)
}
