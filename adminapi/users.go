package adminapi

import (
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// statusRequest is the body of PUT .../status: a JSON boolean, nothing else.
type statusRequest struct {
	Status *bool `json:"status"`
}

// decodeStatus reads a status body; a missing or non-boolean status is Invalid
// (Express Gateway deactivates on anything but true).
func decodeStatus(w http.ResponseWriter, r *http.Request) (bool, error) {
	var req statusRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return false, err
	}
	if req.Status == nil {
		return false, core.InvalidFields("adminapi.decodeStatus", core.FieldError{Field: "status", Detail: "is required: true or false"})
	}
	return *req.Status, nil
}

// statusAnswer is Express Gateway's answer to a status change: Activated or
// Deactivated when the own flag changed, Active or Inactive when it already was.
func statusAnswer(w http.ResponseWriter, active, changed bool) error {
	s := map[[2]bool]string{{true, true}: "Activated", {false, true}: "Deactivated", {true, false}: "Active", {false, false}: "Inactive"}
	return web.WriteJSON(w, http.StatusOK, map[string]string{"status": s[[2]bool{active, changed}]})
}

// setTotal sets X-Total-Count.
func setTotal(w http.ResponseWriter, total int64) {
	w.Header().Set("X-Total-Count", strconv.FormatInt(total, 10))
}

// createUser handles POST /users; Express Gateway answers 200.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	f, err := web.DecodeFields(w, r, web.AdminBodyLimit)
	if err != nil {
		return err
	}
	u, err := s.svc.CreateUser(r.Context(), f, core.NativeUsers)
	if err != nil {
		return err
	}
	return s.writeUser(w, r, u)
}

// listUsers handles GET /users: {users, nextKey}, nextKey 0 at the end,
// filtered by email, username (a prefix), externalId, active, group (id,
// number or name) and tag (held effectively), combined.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	if opt.Users, err = userFilter(r); err != nil {
		return err
	}
	p, err := s.svc.ListUsers(r.Context(), opt)
	if err != nil {
		return err
	}
	setTotal(w, p.Total)
	return writeList(w, "users", p.Items, s.users.viewJSON, p.NextKey)
}

// getUser handles GET /users/{id or username}.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.svc.ResolveUser(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	return s.writeUser(w, r, u)
}

// writeUser answers one user, its version as the ETag, its view encoded once
// (from the memo when u is as stored).
func (s *Server) writeUser(w http.ResponseWriter, r *http.Request, u core.User) error {
	out, err := s.users.render(u, true)
	if err != nil {
		return err
	}
	return web.WriteEntityJSON(w, r, http.StatusOK, out.version, out.body)
}

// updateUser handles PUT /users/{id or username}; If-Match as the user's ETag.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	f, err := web.DecodeFields(w, r, web.AdminBodyLimit)
	if err != nil {
		return err
	}
	u, err := s.svc.UpdateUser(r.Context(), web.Param(r, "id"), f, core.NativeUsers, pre)
	if err != nil {
		return err
	}
	return s.writeUser(w, r, u)
}

// deleteUser handles DELETE /users/{id or username}.
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteUser(r.Context(), web.Param(r, "id"), pre); err != nil {
		return err
	}
	return web.NoContent(w)
}

// setUserStatus handles PUT /users/{id or username}/status (If-Match: the user's ETag).
func (s *Server) setUserStatus(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	active, err := decodeStatus(w, r)
	if err != nil {
		return err
	}
	changed, err := s.svc.SetUserStatus(r.Context(), web.Param(r, "id"), active, pre)
	if err != nil {
		return err
	}
	return statusAnswer(w, active, changed)
}

// userFilter reads the filters of GET /users.
func userFilter(r *http.Request) (core.UserFilter, error) {
	q := r.URL.Query()
	f := core.UserFilter{Email: q.Get("email"), Username: q.Get("username"), ExternalID: q.Get("externalId"), Group: q.Get("group"), Tag: q.Get("tag")}
	if v := q.Get("active"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, core.InvalidFields("adminapi.userFilter", core.FieldError{Field: "active", Detail: "must be true or false"})
		}
		f.Active = &b
	}
	return f, nil
}

// listOptions reads the native paging query (start, count) and the optional
// owner filter; unknown parameters (the eg CLI's all=true) are ignored, empty
// ones mean the default.
func listOptions(r *http.Request) (core.ListOptions, error) {
	q := r.URL.Query()
	var opt core.ListOptions
	var errs []core.FieldError
	if v := q.Get("start"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, core.FieldError{Field: "start", Detail: "must be 0 or a nextKey returned earlier"})
		}
		opt.Start = n
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > core.MaxPageSize {
			errs = append(errs, core.FieldError{Field: "count", Detail: "must be an integer between 1 and " + strconv.Itoa(core.MaxPageSize)})
		}
		opt.Count = n
	}
	opt.UserID = q.Get("userId")
	if len(errs) > 0 {
		return opt, core.InvalidFields("adminapi.listOptions", errs...)
	}
	return opt, nil
}
