// Package qloud serves Qloud's Management API under /.q/api/management on
// the admin listener, as its Spring Boot starter (qloud-spring-boot-starter)
// calls it: GET and DELETE /users/{id}, with the application secret (here an
// admin key of scope qloud) bare in Authorization, no scheme. It only
// translates: a user is read and deleted through core.
//
// Wire rules (docs/dialects.md):
//   - a user is {id, provider, providerSubject, name, email, emailVerified,
//     signedUpAt}: provider is the sign-up identity's provider upper-cased,
//     email is left out when unknown, signedUpAt is RFC 3339 UTC with
//     microseconds;
//   - DELETE answers 204 with an empty body;
//   - errors are application/problem+json {title, type, status}, the type a
//     https://qloud.network/ URL.
package qloud

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// Prefix is where the dialect is mounted: the starter's base URL is
// https://DOMAIN/.q/api/management.
const Prefix = "/.q/api/management"

// signedUpFormat is how signedUpAt is written: RFC 3339, UTC, microseconds.
const signedUpFormat = "2006-01-02T15:04:05.000000Z"

type api struct{ svc *core.Service }

// Mount registers the dialect's routes on the admin listener l.
func Mount(l *web.Listener, svc *core.Service) {
	a := &api{svc: svc}
	rs := l.Routes(errorShape)
	g := web.Dialect(core.ScopeQloud)
	rs.Handle(g, "GET", Prefix+"/users/:id", a.getUser)
	rs.Handle(g, "DELETE", Prefix+"/users/:id", a.deleteUser)
}

// userView is a user as Qloud shows it.
type userView struct {
	ID              string `json:"id"`
	Provider        string `json:"provider"`
	ProviderSubject string `json:"providerSubject"`
	Name            string `json:"name"`
	Email           string `json:"email,omitempty"`
	EmailVerified   bool   `json:"emailVerified"`
	SignedUpAt      string `json:"signedUpAt"`
}

func newUserView(u core.User) userView {
	id := u.SignupIdentity()
	return userView{
		ID: u.ID, Provider: strings.ToUpper(id.Provider), ProviderSubject: id.Subject, Name: u.DisplayName(),
		Email: u.Email, EmailVerified: u.EmailVerified, SignedUpAt: u.CreatedAt.UTC().Format(signedUpFormat),
	}
}

// notFound is Qloud's answer for an id that names no user. Only a UUID is
// echoed: anything else in the path is not shown back.
func notFound(id string) error {
	if !core.IsUUID(id) {
		return core.Errorf(core.NotFound, "qloud.user", "User does not exist")
	}
	return core.Errorf(core.NotFound, "qloud.user", "User %s does not exist", id)
}

// user returns the user of the path's id: Qloud's ids are UUIDs, never
// usernames.
func (a *api) user(r *http.Request) (core.User, error) {
	id := web.Param(r, "id")
	if !core.IsUUID(id) {
		return core.User{}, notFound(id)
	}
	u, err := a.svc.ResolveUser(r.Context(), id)
	if core.KindOf(err) == core.NotFound {
		return core.User{}, notFound(id)
	}
	return u, err
}

// getUser handles GET /.q/api/management/users/{id}.
func (a *api) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.user(r)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteJSON(w, http.StatusOK, newUserView(u))
}

// deleteUser handles DELETE /.q/api/management/users/{id}: the user, its
// sessions and keys are gone at once; the same email may sign up again and
// gets a new id.
func (a *api) deleteUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.user(r)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteUser(r.Context(), u.ID); err != nil {
		if core.KindOf(err) == core.NotFound {
			return notFound(u.ID)
		}
		return err
	}
	return web.NoContent(w)
}

// problemTypes name each error kind's type URL.
var problemTypes = map[core.Kind]string{
	core.Malformed: "bad-request", core.Invalid: "invalid", core.Unauthorized: "unauthorized",
	core.Forbidden: "forbidden", core.NotFound: "not-found", core.Conflict: "conflict",
	core.PreconditionFailed: "precondition-failed", core.TooLarge: "too-large",
	core.RateLimited: "too-many-requests", core.Unavailable: "unavailable",
}

type problem struct {
	Title  string `json:"title"`
	Type   string `json:"type"`
	Status int    `json:"status"`
}

// errorShape writes Qloud's problem: {title, type, status}.
func errorShape(w http.ResponseWriter, _ *http.Request, f web.Failure) {
	t := problemTypes[f.Kind]
	if t == "" {
		t = "internal"
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(problem{Title: f.Detail, Type: "https://qloud.network/" + t, Status: f.Status})
}
