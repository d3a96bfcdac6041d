package adminapi

import (
	"encoding/json"
	"net/http"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// groupView is a group as the admin API shows it.
type groupView struct {
	ID        string   `json:"id"`
	Number    int64    `json:"number"`
	Name      string   `json:"name"`
	Tags      []string `json:"tags"`
	CreatedAt string   `json:"createdAt"`
	UpdatedAt string   `json:"updatedAt"`
}

func (v groupView) MarshalJSON() ([]byte, error) {
	type plain groupView
	return json.Marshal(plain(v))
}

func newGroupView(g core.Group) groupView {
	tags := g.Tags
	if tags == nil {
		tags = []string{}
	}
	return groupView{ID: g.ID, Number: g.Number, Name: g.Name, Tags: tags, CreatedAt: formatTime(g.CreatedAt), UpdatedAt: formatTime(g.UpdatedAt)}
}

// groupRequest is the body of POST /groups and PUT /groups/{id}.
type groupRequest struct {
	Name *string   `json:"name"`
	Tags *[]string `json:"tags"`
}

// createGroup handles POST /groups {name, tags?}; 200 like the other creates.
func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) error {
	var req groupRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return core.InvalidFields("adminapi.createGroup", core.FieldError{Field: "name", Detail: "is required"})
	}
	var tags []string
	if req.Tags != nil {
		tags = *req.Tags
	}
	g, err := s.svc.CreateGroup(r.Context(), *req.Name, tags)
	if err != nil {
		return err
	}
	return web.WriteEntity(w, r, http.StatusOK, g.Version(), newGroupView(g))
}

// listGroups handles GET /groups (start, count): {groups, nextKey}.
func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.svc.ListGroups(r.Context(), opt)
	if err != nil {
		return err
	}
	setTotal(w, p.Total)
	return writeList(w, "groups", p.Items, viewJSON(newGroupView), p.NextKey)
}

// getGroup handles GET /groups/{id, number or name}.
func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.svc.ResolveGroup(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	return web.WriteEntity(w, r, http.StatusOK, g.Version(), newGroupView(g))
}

// updateGroup handles PUT /groups/{id} {name?, tags?}: a rename, a new set of
// tags, or both, in one write (If-Match: the group's ETag).
func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	var req groupRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	g, err := s.svc.UpdateGroup(r.Context(), web.Param(r, "id"), req.Name, req.Tags, pre)
	if err != nil {
		return err
	}
	return web.WriteEntity(w, r, http.StatusOK, g.Version(), newGroupView(g))
}

// deleteGroup handles DELETE /groups/{id}: 204; its users leave it.
func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteGroup(r.Context(), web.Param(r, "id"), pre); err != nil {
		return err
	}
	return web.NoContent(w)
}

// tagsRequest is the body that sets tags.
type tagsRequest struct {
	Tags *[]string `json:"tags"`
}

func decodeTags(w http.ResponseWriter, r *http.Request) ([]string, error) {
	var req tagsRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return nil, err
	}
	if req.Tags == nil {
		return nil, core.InvalidFields("adminapi.decodeTags", core.FieldError{Field: "tags", Detail: "is required: an array of tags"})
	}
	return *req.Tags, nil
}

// groupTags handles GET /groups/{id}/tags: {tags}.
func (s *Server) groupTags(w http.ResponseWriter, r *http.Request) error {
	g, err := s.svc.ResolveGroup(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string][]string{"tags": newGroupView(g).Tags})
}

// setGroupTags handles PUT /groups/{id}/tags {tags}: replaces them. It and
// the one-tag routes honour If-Match with the group's ETag, and answer its new one.
func (s *Server) setGroupTags(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	tags, err := decodeTags(w, r)
	if err != nil {
		return err
	}
	return groupTagsAnswer(w)(s.svc.SetGroupTags(r.Context(), web.Param(r, "id"), tags, pre))
}

// editGroupTag handles PUT and DELETE /groups/{id}/tags/{tag}: one tag added
// or removed.
func (s *Server) editGroupTag(grant bool) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pre, err := web.Preconditions(r)
		if err != nil {
			return err
		}
		edit := s.svc.RevokeGroupTags
		if grant {
			edit = s.svc.GrantGroupTags
		}
		return groupTagsAnswer(w)(edit(r.Context(), web.Param(r, "id"), []string{web.Param(r, "tag")}, pre))
	}
}

// groupTagsAnswer answers a group's tags after a change, with its new ETag.
func groupTagsAnswer(w http.ResponseWriter) func(core.Group, error) error {
	return func(g core.Group, err error) error {
		if err != nil {
			return err
		}
		w.Header().Set("ETag", web.ETag(g.Version()))
		return web.WriteJSON(w, http.StatusOK, map[string][]string{"tags": newGroupView(g).Tags})
	}
}

// userGroupsView lists a user's groups.
type userGroupsView struct {
	Groups []groupView `json:"groups"`
}

func (s *Server) writeUserGroups(w http.ResponseWriter, r *http.Request, u core.User) error {
	w.Header().Set("ETag", web.ETag(u.Version()))
	gs, err := s.svc.UserGroups(r.Context(), u)
	if err != nil {
		return err
	}
	v := userGroupsView{Groups: make([]groupView, len(gs))}
	for i, g := range gs {
		v.Groups[i] = newGroupView(g)
	}
	return web.WriteJSON(w, http.StatusOK, v)
}

// userGroups handles GET /users/{id}/groups: {groups: [group]}, by name.
func (s *Server) userGroups(w http.ResponseWriter, r *http.Request) error {
	u, err := s.svc.ResolveUser(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	return s.writeUserGroups(w, r, u)
}

// groupsRequest names groups by id, number or name.
type groupsRequest struct {
	Groups *[]string `json:"groups"`
}

// editUserGroups handles PUT /users/{id}/groups {groups} (replace), POST
// (grant: added to those the user has) and, with the group in the path,
// DELETE /users/{id}/groups/{group} (revoke).
func (s *Server) editUserGroups(method string) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx, ref := r.Context(), web.Param(r, "id")
		pre, err := web.Preconditions(r)
		if err != nil {
			return err
		}
		var refs []string
		if method == http.MethodDelete {
			refs = []string{web.Param(r, "group")}
		} else {
			var req groupsRequest
			if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
				return err
			}
			if req.Groups == nil {
				return core.InvalidFields("adminapi.editUserGroups", core.FieldError{Field: "groups", Detail: "is required: an array of group ids, numbers or names"})
			}
			refs = *req.Groups
		}
		var u core.User
		switch method {
		case http.MethodPut:
			u, err = s.svc.SetGroups(ctx, ref, refs, pre)
		case http.MethodPost:
			u, err = s.svc.GrantGroups(ctx, ref, refs, pre)
		default:
			u, err = s.svc.RevokeGroups(ctx, ref, refs, pre)
		}
		if err != nil {
			return err
		}
		return s.writeUserGroups(w, r, u)
	}
}

// userTagsView is a user's own and effective permission tags.
type userTagsView struct {
	Tags          []string `json:"tags"`
	EffectiveTags []string `json:"effectiveTags"`
}

func (s *Server) writeUserTags(w http.ResponseWriter, r *http.Request, u core.User) error {
	w.Header().Set("ETag", web.ETag(u.Version()))
	reg, err := s.svc.Groups(r.Context())
	if err != nil {
		return err
	}
	v := userTagsView{Tags: u.Tags, EffectiveTags: core.EffectiveTags(u, reg)}
	if v.Tags == nil {
		v.Tags = []string{}
	}
	if v.EffectiveTags == nil {
		v.EffectiveTags = []string{}
	}
	return web.WriteJSON(w, http.StatusOK, v)
}

// userTags handles GET /users/{id}/tags: {tags, effectiveTags}.
func (s *Server) userTags(w http.ResponseWriter, r *http.Request) error {
	u, err := s.svc.ResolveUser(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	return s.writeUserTags(w, r, u)
}

// setUserTags handles PUT /users/{id}/tags {tags}: replaces the user's own.
func (s *Server) setUserTags(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	tags, err := decodeTags(w, r)
	if err != nil {
		return err
	}
	u, err := s.svc.SetUserTags(r.Context(), web.Param(r, "id"), tags, pre)
	if err != nil {
		return err
	}
	return s.writeUserTags(w, r, u)
}

// editUserTag handles PUT and DELETE /users/{id}/tags/{tag}.
func (s *Server) editUserTag(grant bool) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pre, err := web.Preconditions(r)
		if err != nil {
			return err
		}
		edit := s.svc.RevokeUserTags
		if grant {
			edit = s.svc.GrantUserTags
		}
		u, err := edit(r.Context(), web.Param(r, "id"), []string{web.Param(r, "tag")}, pre)
		if err != nil {
			return err
		}
		return s.writeUserTags(w, r, u)
	}
}
