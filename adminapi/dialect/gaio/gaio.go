// Package gaio serves the Gaio User Manager API (the seed document "Gaio User
// Manager API") under /api/auth/manager on the admin listener, as Gaio's
// front end and backend call it. It only translates: users and groups are
// addressed by their integer numbers, and every operation is a core one.
//
// Wire rules (docs/dialects.md):
//   - the key is an admin key of scope gaio in Authorization: Bearer (an admin
//     key works too);
//   - lists are bare JSON arrays, 50 items a page, pages numbered from 1
//     (/users is page 1), [] past the end;
//   - mutations answer {"status":"done"}, create-user the user, create-group
//     {groupId, name};
//   - errors are {"errors": true, "message": m} with the real status: 400
//     malformed, 401, 403, 404, 409 (message "userExists" for a taken email,
//     "groupExists" for a taken group name), 422 (the message names the field);
//   - paths answer with and without a trailing slash, never by redirecting.
package gaio

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// Prefix is where the dialect is mounted on the admin listener.
const Prefix = "/api/auth/manager"

// PageSize is the number of users or groups of a list page.
const PageSize = 50

// policy is what the dialect may write of a user: its name (kept as the
// model's firstname and lastname), its email (also its username), its
// groups and a password.
var policy = core.UserPolicy{
	Writable: []string{"email", "firstname", "lastname", "groups"},
	Require:  []string{"email"},
	Username: core.UsernameEmail,
	Password: true,
}

type api struct{ svc *core.Service }

// Mount registers the dialect's routes on the admin listener l.
func Mount(l *web.Listener, svc *core.Service) {
	a := &api{svc: svc}
	rs := l.Routes(errorShape)
	g := web.Dialect(core.ScopeGaio)
	rs.Handle(g, "GET", Prefix+"/users", a.listUsers)
	rs.Handle(g, "GET", Prefix+"/users/:page", a.listUsers)
	rs.Handle(g, "GET", Prefix+"/user/:userId", a.getUser)
	rs.Handle(g, "POST", Prefix+"/create-user", a.createUser)
	rs.Handle(g, "POST", Prefix+"/status", a.setStatus)
	rs.Handle(g, "POST", Prefix+"/update", a.update)
	rs.Handle(g, "POST", Prefix+"/update-password", a.updatePassword)
	rs.Handle(g, "DELETE", Prefix+"/delete", a.deleteUser)
	rs.Handle(g, "POST", Prefix+"/create-group", a.createGroup)
	rs.Handle(g, "DELETE", Prefix+"/delete-group", a.deleteGroup)
	rs.Handle(g, "GET", Prefix+"/groups", a.listGroups)
	rs.Handle(g, "GET", Prefix+"/groups/:page", a.listGroups)
	rs.Handle(g, "POST", Prefix+"/group/grant", a.editGroups(true))
	rs.Handle(g, "POST", Prefix+"/group/revoke", a.editGroups(false))
	rs.Handle(g, "POST", Prefix+"/tag/grant", a.editTags(true))
	rs.Handle(g, "POST", Prefix+"/tag/revoke", a.editTags(false))
}

// errorBody is every error's body.
type errorBody struct {
	Errors  bool   `json:"errors"`
	Message string `json:"message"`
}

// errorShape writes {"errors": true, "message": m}; a field error's message
// names the field ("email: must be a valid address").
func errorShape(w http.ResponseWriter, _ *http.Request, f web.Failure) {
	msg := f.Detail
	if len(f.Fields) > 0 {
		parts := make([]string, len(f.Fields))
		for i, fe := range f.Fields {
			parts[i] = fe.Field + ": " + fe.Detail
		}
		msg = strings.Join(parts, "; ")
	}
	_ = web.WriteJSON(w, f.Status, errorBody{Errors: true, Message: msg})
}

var done = map[string]string{"status": "done"}

// userView is a user as Gaio shows it.
type userView struct {
	UserID int64    `json:"userId"`
	Name   string   `json:"name"`
	Email  string   `json:"email"`
	Status string   `json:"status"`
	Groups []string `json:"groups"`
}

func newUserView(u core.User, groups map[string]core.Group) userView {
	status := "active"
	if !u.IsActive {
		status = "inactive"
	}
	return userView{UserID: u.Number, Name: nameOf(u), Email: u.Email, Status: status, Groups: core.GroupNames(u, groups)}
}

// nameOf joins the model's firstname and lastname back into Gaio's name.
func nameOf(u core.User) string {
	first, _ := u.Props["firstname"].(string)
	last, _ := u.Props["lastname"].(string)
	if first == "" || last == "" {
		return first + last
	}
	return first + " " + last
}

// splitName keeps a Gaio name as firstname (all before its last space) and
// lastname (after it); a name without a space is a firstname alone.
func splitName(f core.Fields, name string) {
	if i := strings.LastIndexByte(name, ' '); i > 0 && i < len(name)-1 {
		f["firstname"], f["lastname"] = name[:i], name[i+1:]
		return
	}
	f["firstname"] = name
}

// page reads a list's page number: absent is 1.
func page(r *http.Request) (int64, error) {
	p := web.Param(r, "page")
	if p == "" {
		return 1, nil
	}
	n, err := strconv.ParseInt(p, 10, 64)
	if err != nil || n < 1 {
		return 0, core.InvalidFields("gaio.page", core.FieldError{Field: "page", Detail: "must be a page number from 1"})
	}
	return n, nil
}

func (a *api) listUsers(w http.ResponseWriter, r *http.Request) error {
	n, err := page(r)
	if err != nil {
		return err
	}
	p, err := a.svc.ListUsers(r.Context(), core.ListOptions{Count: PageSize, Offset: (n - 1) * PageSize})
	if err != nil {
		return err
	}
	reg, err := a.svc.Groups(r.Context())
	if err != nil {
		return err
	}
	out := make([]userView, len(p.Items))
	for i, u := range p.Items {
		out[i] = newUserView(u, reg)
	}
	return web.WriteJSON(w, http.StatusOK, out)
}

// user finds a user by its number (a JSON number or a path segment).
func (a *api) user(r *http.Request, n int64) (core.User, error) {
	return a.svc.UserByNumber(r.Context(), n)
}

func (a *api) writeUser(w http.ResponseWriter, r *http.Request, u core.User) error {
	reg, err := a.svc.Groups(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, newUserView(u, reg))
}

func (a *api) getUser(w http.ResponseWriter, r *http.Request) error {
	n, err := strconv.ParseInt(web.Param(r, "userId"), 10, 64)
	if err != nil {
		return core.Errorf(core.NotFound, "gaio.getUser", "user not found")
	}
	u, err := a.user(r, n)
	if err != nil {
		return err
	}
	return a.writeUser(w, r, u)
}

// number is a userId or groupId: an integer.
type number = *int64

func required(op, field string, n number) (int64, error) {
	if n == nil {
		return 0, core.InvalidFields(op, core.FieldError{Field: field, Detail: "is required: an integer"})
	}
	return *n, nil
}

type createUserRequest struct {
	Name     *string  `json:"name"`
	Email    *string  `json:"email"`
	Password *string  `json:"password"`
	Groups   []string `json:"groups"`
}

func (a *api) createUser(w http.ResponseWriter, r *http.Request) error {
	const op = "gaio.createUser"
	var req createUserRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	f := core.Fields{}
	if req.Name == nil || strings.TrimSpace(*req.Name) == "" {
		return core.InvalidFields(op, core.FieldError{Field: "name", Detail: "is required"})
	}
	splitName(f, *req.Name)
	if req.Email != nil {
		f["email"] = *req.Email
	}
	if req.Password != nil {
		f["password"] = *req.Password
	}
	if req.Groups != nil {
		gs := make([]any, len(req.Groups))
		for i, g := range req.Groups {
			gs[i] = g
		}
		f["groups"] = gs
	}
	u, err := a.svc.CreateUser(r.Context(), f, policy)
	if core.KindOf(err) == core.Conflict {
		// The email (which is also the username) is taken: the only names
		// a create-user claims.
		return core.Errorf(core.Conflict, op, "userExists")
	}
	if err != nil {
		return err
	}
	return a.writeUser(w, r, u)
}

type statusRequest struct {
	UserID number  `json:"userId"`
	Status *string `json:"status"`
}

func (a *api) setStatus(w http.ResponseWriter, r *http.Request) error {
	const op = "gaio.setStatus"
	var req statusRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	n, err := required(op, "userId", req.UserID)
	if err != nil {
		return err
	}
	var active bool
	switch {
	case req.Status != nil && *req.Status == "active":
		active = true
	case req.Status != nil && *req.Status == "inactive":
	default:
		return core.InvalidFields(op, core.FieldError{Field: "status", Detail: `must be "active" or "inactive"`})
	}
	u, err := a.user(r, n)
	if err != nil {
		return err
	}
	if _, err := a.svc.SetUserStatus(r.Context(), u.ID, active); err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, done)
}

type updateRequest struct {
	UserID number  `json:"userId"`
	Name   *string `json:"name"`
	Email  *string `json:"email"`
}

func (a *api) update(w http.ResponseWriter, r *http.Request) error {
	const op = "gaio.update"
	var req updateRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	n, err := required(op, "userId", req.UserID)
	if err != nil {
		return err
	}
	u, err := a.user(r, n)
	if err != nil {
		return err
	}
	f := core.Fields{}
	if req.Name != nil {
		if strings.TrimSpace(*req.Name) == "" {
			return core.InvalidFields(op, core.FieldError{Field: "name", Detail: "must not be empty"})
		}
		f["lastname"] = nil
		splitName(f, *req.Name)
	}
	if req.Email != nil {
		f["email"] = *req.Email
	}
	_, err = a.svc.UpdateUser(r.Context(), u.ID, f, policy)
	if core.KindOf(err) == core.Conflict && req.Email != nil {
		return core.Errorf(core.Conflict, op, "userExists") // the email is another user's
	}
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, done)
}

type passwordRequest struct {
	UserID   number  `json:"userId"`
	Password *string `json:"password"`
}

func (a *api) updatePassword(w http.ResponseWriter, r *http.Request) error {
	const op = "gaio.updatePassword"
	var req passwordRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	n, err := required(op, "userId", req.UserID)
	if err != nil {
		return err
	}
	if req.Password == nil {
		return core.InvalidFields(op, core.FieldError{Field: "password", Detail: "is required"})
	}
	u, err := a.user(r, n)
	if err != nil {
		return err
	}
	if _, err := a.svc.SetPassword(r.Context(), u.ID, *req.Password); err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, done)
}

type userRef struct {
	UserID number `json:"userId"`
}

func (a *api) deleteUser(w http.ResponseWriter, r *http.Request) error {
	var req userRef
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	n, err := required("gaio.deleteUser", "userId", req.UserID)
	if err != nil {
		return err
	}
	u, err := a.user(r, n)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteUser(r.Context(), u.ID); err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, done)
}

// groupView is a group as Gaio shows it.
type groupView struct {
	GroupID int64  `json:"groupId"`
	Name    string `json:"name"`
}

func (a *api) createGroup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name *string `json:"name"`
	}
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return core.InvalidFields("gaio.createGroup", core.FieldError{Field: "name", Detail: "is required"})
	}
	g, err := a.svc.CreateGroup(r.Context(), *req.Name, nil)
	if core.KindOf(err) == core.Conflict {
		return core.Errorf(core.Conflict, "gaio.createGroup", "groupExists")
	}
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, groupView{GroupID: g.Number, Name: g.Name})
}

// groupRef names a group by number for core.
func groupRef(n int64) string { return strconv.FormatInt(n, 10) }

func (a *api) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		GroupID number `json:"groupId"`
	}
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	n, err := required("gaio.deleteGroup", "groupId", req.GroupID)
	if err != nil {
		return err
	}
	if _, err := a.svc.GroupByNumber(r.Context(), n); err != nil {
		return err
	}
	if err := a.svc.DeleteGroup(r.Context(), groupRef(n)); err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, done)
}

func (a *api) listGroups(w http.ResponseWriter, r *http.Request) error {
	n, err := page(r)
	if err != nil {
		return err
	}
	p, err := a.svc.ListGroups(r.Context(), core.ListOptions{Count: PageSize, Offset: (n - 1) * PageSize})
	if err != nil {
		return err
	}
	out := make([]groupView, len(p.Items))
	for i, g := range p.Items {
		out[i] = groupView{GroupID: g.Number, Name: g.Name}
	}
	return web.WriteJSON(w, http.StatusOK, out)
}

type groupsRequest struct {
	UserID   number  `json:"userId"`
	GroupIDs []int64 `json:"groupIds"`
}

func (a *api) editGroups(grant bool) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		const op = "gaio.editGroups"
		var req groupsRequest
		if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
			return err
		}
		n, err := required(op, "userId", req.UserID)
		if err != nil {
			return err
		}
		if req.GroupIDs == nil {
			return core.InvalidFields(op, core.FieldError{Field: "groupIds", Detail: "is required: an array of group ids"})
		}
		u, err := a.user(r, n)
		if err != nil {
			return err
		}
		refs := make([]string, len(req.GroupIDs))
		for i, g := range req.GroupIDs {
			refs[i] = groupRef(g)
			if g < 1 {
				return core.Errorf(core.NotFound, op, "group %d not found", g)
			}
		}
		edit := a.svc.RevokeGroups
		if grant {
			edit = a.svc.GrantGroups
		}
		if _, err := edit(r.Context(), u.ID, refs); err != nil {
			return err
		}
		return web.WriteJSON(w, http.StatusOK, done)
	}
}

type tagsRequest struct {
	UserID  number    `json:"userId"`
	GroupID number    `json:"groupId"`
	Tags    *[]string `json:"tags"`
}

func (a *api) editTags(grant bool) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		const op = "gaio.editTags"
		var req tagsRequest
		if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
			return err
		}
		if req.Tags == nil {
			return core.InvalidFields(op, core.FieldError{Field: "tags", Detail: "is required: an array of tags"})
		}
		switch {
		case (req.UserID == nil) == (req.GroupID == nil):
			return core.InvalidFields(op, core.FieldError{Field: "userId", Detail: "exactly one of userId and groupId is required"})
		case req.UserID != nil:
			u, err := a.user(r, *req.UserID)
			if err != nil {
				return err
			}
			edit := a.svc.RevokeUserTags
			if grant {
				edit = a.svc.GrantUserTags
			}
			if _, err := edit(r.Context(), u.ID, *req.Tags); err != nil {
				return err
			}
		default:
			if _, err := a.svc.GroupByNumber(r.Context(), *req.GroupID); err != nil {
				return err
			}
			edit := a.svc.RevokeGroupTags
			if grant {
				edit = a.svc.GrantGroupTags
			}
			if _, err := edit(r.Context(), groupRef(*req.GroupID), *req.Tags); err != nil {
				return err
			}
		}
		return web.WriteJSON(w, http.StatusOK, done)
	}
}
