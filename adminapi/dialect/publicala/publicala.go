// Package publicala serves publica.la's Users API (its integration API) on
// the admin listener, as its PHP client (anibalealvarezs/publica-php) calls
// it: an admin key of scope publicala in X-User-Token, Laravel's shapes for
// answers, pages and errors. It only translates: users are created, updated,
// deactivated and reactivated, and their sessions ended, through core.
//
// Wire rules its clients depend on (docs/dialects.md):
//   - every path answers with and without a trailing slash, never by
//     redirecting (the PHP client follows a 301 and turns a POST into a GET);
//   - requests without a body come with Content-Type: application/json and
//     an empty body: accepted;
//   - booleans as Laravel's boolean rule takes them (true, false, 1, 0, "1",
//     "0") and "true"/"false"; integers as numbers or numeric strings; an
//     empty string is null (Laravel's ConvertEmptyStringsToNull);
//   - a user's id is its integer number, uuid its Gatehouse id; a path's
//     {id} is the number or the external_id;
//   - update answers 204 with an empty body (the client tells 204 from 200
//     by status only);
//   - errors are Laravel's: 422 {message, errors: {field: [reasons]}}, 401
//     {"message": "Unauthenticated."}, 404 {message};
//   - X-RateLimit-Limit and X-RateLimit-Remaining on every answer.
package publicala

import (
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// Prefix is the integration API's root: the client's host is the admin
// listener's base URL.
const Prefix = "/integration-api/v1"

// attr prefixes the user attributes the dialect keeps (core.IsAttribute).
const attr = "publicala:"

// The attributes: what publica.la's clients write that the user model does
// not describe.
const (
	attrAdmin        = attr + "admin"
	attrPlanAdmin    = attr + "plan_admin"
	attrOnlyReadable = attr + "only_sees_readable"
	attrPlan         = attr + "assign_new_plan"
	attrPlanValidTo  = attr + "new_plan_custom_valid_to"
	attrPlanName     = attr + "user_plan_name"
)

// wireKind is how a body field is read.
type wireKind uint8

const (
	wireString wireKind = iota
	wireBool
	wireInt
)

// field is one body field: its core name and how it is read.
type field struct {
	core string
	kind wireKind
	max  int // strings: at most this many characters (0: core's bound)
	min  int // strings: at least this many
}

// fields are the body fields the dialect reads; others are ignored, as
// Laravel ignores input no rule names.
var fields = map[string]field{
	"email":                    {core: "email"},
	"external_id":              {core: "externalId", max: 64},
	"new_password":             {core: "password", min: 8, max: 255},
	"sessions_limit":           {core: "sessionsLimit", kind: wireInt},
	"admin":                    {core: attrAdmin, kind: wireBool},
	"plan_admin":               {core: attrPlanAdmin, kind: wireBool},
	"only_sees_readable":       {core: attrOnlyReadable, kind: wireBool},
	"assign_new_plan":          {core: attrPlan, kind: wireInt},
	"new_plan_custom_valid_to": {core: attrPlanValidTo, max: 10},
	"user_plan_name":           {core: attrPlanName, max: 255},
}

// wireOrder is the seed's order of the fields: errors are listed in it.
var wireOrder = []string{"email", "external_id", "new_password", "sessions_limit", "assign_new_plan",
	"new_plan_custom_valid_to", "admin", "plan_admin", "only_sees_readable", "user_plan_name"}

// wireNames maps core field names back to the body's, for errors.
var wireNames = func() map[string]string {
	m := make(map[string]string, len(fields))
	for w, f := range fields {
		m[f.core] = w
	}
	return m
}()

// policy is what the dialect may write of a user: the username is the email.
var policy = core.UserPolicy{
	Writable: []string{"email", "externalId", "sessionsLimit", attrAdmin, attrPlanAdmin, attrOnlyReadable, attrPlan, attrPlanValidTo, attrPlanName},
	Require:  []string{"email", "externalId"},
	Username: core.UsernameEmail,
}

// withPassword is policy for a create that carries new_password (optional:
// "recommended").
var withPassword = func() core.UserPolicy { p := policy; p.Password = true; return p }()

type api struct {
	svc *core.Service
	l   *web.Listener
}

// Mount registers the dialect's routes on the admin listener l.
func Mount(l *web.Listener, svc *core.Service) {
	a := &api{svc: svc, l: l}
	rs := l.Routes(a.errorShape)
	g := web.Dialect(core.ScopePublicala, "X-User-Token")
	users := Prefix + "/dashboard/users"
	rs.Handle(g, "POST", users, a.counted(a.create))
	rs.Handle(g, "GET", users, a.counted(a.list))
	rs.Handle(g, "PUT", users+"/:id", a.counted(a.update))
	rs.Handle(g, "PUT", "/api/v1/dashboard/users/:id", a.counted(a.update)) // where the PHP client sends it
	rs.Handle(g, "DELETE", users+"/:id", a.counted(a.deactivate))
	rs.Handle(g, "PUT", users+"/:id/re-activate", a.counted(a.reactivate))
	rs.Handle(g, "POST", Prefix+"/users/:id/force-logout", a.counted(a.forceLogout))
	rs.Handle(g, "DELETE", Prefix+"/auth-sessions/users/:id", a.counted(a.forceLogout))
}

// counted counts the call against the admin key's budget and announces it.
func (a *api) counted(h web.HandlerFunc) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		b, err := a.svc.CountCall(r.Context(), "publicala:key:"+web.AdminKeyID(r))
		setBudget(w, b)
		if err != nil {
			return err
		}
		return h(w, r)
	}
}

func setBudget(w http.ResponseWriter, b core.CallBudget) {
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(b.Limit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(b.Remaining))
}

// success is every answer with a body but the list's.
type success struct {
	Code string `json:"CODE"`
	Data any    `json:"data"`
}

func ok(w http.ResponseWriter, data any) error {
	return web.WriteJSON(w, http.StatusOK, success{Code: "success", Data: data})
}

// laravelError is Laravel's error body.
type laravelError struct {
	Message string              `json:"message"`
	Errors  map[string][]string `json:"errors,omitempty"`
}

// errorShape writes Laravel's error bodies. A request refused before its
// handler ran (no key, a key of another scope) is counted here, per client
// address, so that every answer carries the budget headers.
func (a *api) errorShape(w http.ResponseWriter, r *http.Request, f web.Failure) {
	if w.Header().Get("X-RateLimit-Limit") == "" {
		b, _ := a.svc.CountCall(r.Context(), "publicala:addr:"+a.l.ClientAddr(r))
		setBudget(w, b)
	}
	body := laravelError{Message: f.Detail}
	switch f.Kind {
	case core.Unauthorized:
		body.Message = "Unauthenticated."
	case core.Forbidden:
		body.Message = "This action is unauthorized."
	case core.RateLimited:
		body.Message = "Too Many Attempts."
	case core.Invalid:
		errs := map[string][]string{}
		var first string
		fes := slices.Clone(f.Fields)
		slices.SortStableFunc(fes, func(x, y core.FieldError) int {
			return cmp.Compare(orderOf(wireName(x.Field)), orderOf(wireName(y.Field)))
		})
		for _, fe := range fes {
			name := wireName(fe.Field)
			msg := reason(name, fe.Detail)
			if first == "" {
				first = msg
			}
			errs[name] = append(errs[name], msg)
		}
		if first == "" {
			first = f.Detail
		}
		if n := len(f.Fields) - 1; n == 1 {
			first += " (and 1 more error)"
		} else if n > 1 {
			first += fmt.Sprintf(" (and %d more errors)", n)
		}
		body.Message, body.Errors = first, errs
	}
	_ = web.WriteJSON(w, f.Status, body)
}

// orderOf is a body field's place in wireOrder (unknown ones last).
func orderOf(name string) int {
	if i := slices.Index(wireOrder, name); i >= 0 {
		return i
	}
	return len(wireOrder)
}

// wireName returns the body's name of a core field.
func wireName(coreField string) string {
	if n, ok := wireNames[coreField]; ok {
		return n
	}
	return strings.TrimPrefix(coreField, attr)
}

// reason words a field error as Laravel does: "The external id field is required."
func reason(name, detail string) string {
	words := strings.ReplaceAll(name, "_", " ")
	if detail == "is required" {
		return "The " + words + " field is required."
	}
	return "The " + words + " " + strings.TrimSuffix(detail, ".") + "."
}

// invalid is a 422 naming one body field.
func invalid(op, name, detail string) error {
	return core.InvalidFields(op, core.FieldError{Field: fields[name].core, Detail: detail})
}

// readBody reads a JSON object body; an empty one reads as {}.
func readBody(w http.ResponseWriter, r *http.Request) (core.Fields, error) {
	b, err := web.ReadBody(w, r, web.AdminBodyLimit)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(b)) == "" {
		return core.Fields{}, nil
	}
	return web.ParseFields(b)
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// translate turns a body into core fields: PHP's values read as Laravel's
// rules read them. required lists body fields that must be present and not
// null. It returns every field at fault.
func translate(in core.Fields, required ...string) (core.Fields, error) {
	const op = "publicala.translate"
	out := core.Fields{}
	var bad []core.FieldError
	fail := func(name, detail string) {
		bad = append(bad, core.FieldError{Field: fields[name].core, Detail: detail})
	}
	for name, v := range in {
		f, known := fields[name]
		if !known {
			continue
		}
		if s, isStr := v.(string); isStr && s == "" {
			v = nil // Laravel's ConvertEmptyStringsToNull
		}
		if v == nil {
			out[f.core] = nil
			continue
		}
		switch f.kind {
		case wireBool:
			b, ok := laravelBool(v)
			if !ok {
				fail(name, "field must be true or false")
				continue
			}
			out[f.core] = b
		case wireInt:
			n, ok := laravelInt(v)
			if !ok {
				fail(name, "must be an integer")
				continue
			}
			if f.core == attrPlan && n < 1 {
				fail(name, "must be at least 1")
				continue
			}
			out[f.core] = json.Number(strconv.FormatInt(n, 10))
		default:
			s, ok := v.(string)
			if !ok {
				fail(name, "must be a string")
				continue
			}
			n := len([]rune(s))
			switch {
			case f.max > 0 && n > f.max:
				fail(name, fmt.Sprintf("may not be greater than %d characters", f.max))
				continue
			case n < f.min:
				fail(name, fmt.Sprintf("must be at least %d characters", f.min))
				continue
			case f.core == attrPlanValidTo && !validDate(s):
				fail(name, "does not match the format Y-m-d")
				continue
			}
			out[f.core] = s
		}
	}
	for _, name := range required {
		if v, present := in[name]; !present || v == nil || v == "" {
			fail(name, "is required")
		}
	}
	if len(bad) > 0 {
		return nil, core.InvalidFields(op, bad...)
	}
	return out, nil
}

func validDate(s string) bool {
	if !dateRE.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// laravelBool reads a boolean as Laravel's boolean rule accepts it, and
// "true"/"false".
func laravelBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case json.Number:
		switch x.String() {
		case "1":
			return true, true
		case "0":
			return false, true
		}
	case string:
		switch strings.ToLower(x) {
		case "1", "true":
			return true, true
		case "0", "false":
			return false, true
		}
	}
	return false, false
}

// laravelInt reads an integer given as a number or a numeric string.
func laravelInt(v any) (int64, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// user finds the path's user by number or external_id. Deactivated users
// are found only when withDeactivated (Laravel's soft deletes: they are
// gone but for re-activation).
func (a *api) user(r *http.Request, withDeactivated bool) (core.User, error) {
	id := web.Param(r, "id")
	u, err := a.svc.UserByName(r.Context(), core.NameExternalID, id)
	if n, perr := strconv.ParseInt(id, 10, 64); core.KindOf(err) == core.NotFound && perr == nil {
		u, err = a.svc.UserByNumber(r.Context(), n)
	}
	if err == nil && !u.IsActive && !withDeactivated {
		err = core.Errorf(core.NotFound, "publicala.user", "user deactivated")
	}
	if core.KindOf(err) == core.NotFound {
		return core.User{}, core.Errorf(core.NotFound, "publicala.user", "No query results for model [App\\User] %s", url.PathEscape(id))
	}
	return u, err
}

// stamp is a timestamp as the create answer shows it.
type stamp struct {
	Timestamp int64  `json:"timestamp"`
	Date      string `json:"date"`
	Timezone  string `json:"timezone"`
}

func newStamp(t time.Time) stamp {
	t = t.UTC()
	return stamp{Timestamp: t.Unix(), Date: t.Format(time.DateTime), Timezone: "UTC"}
}

// userView is a user in a create answer.
type userView struct {
	ID               int64  `json:"id"`
	Email            string `json:"email"`
	UUID             string `json:"uuid"`
	Picture          string `json:"picture"`
	Admin            bool   `json:"admin"`
	PlanAdmin        bool   `json:"plan_admin"`
	OnlySeesReadable bool   `json:"only_sees_readable"`
	SessionsLimit    *int   `json:"sessions_limit"`
	CreatedAt        stamp  `json:"created_at"`
	UpdatedAt        stamp  `json:"updated_at"`
	DeletedAt        *stamp `json:"deleted_at"`
}

func flag(u core.User, name string) bool { b, _ := u.Props[name].(bool); return b }

// deletedAt is when a deactivated user was deactivated: its last change.
func deletedAt(u core.User) *time.Time {
	if u.IsActive {
		return nil
	}
	t := u.UpdatedAt
	return &t
}

// picture is the user's Gravatar, as publica.la shows it.
func picture(email string) string {
	sum := md5.Sum([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "https://www.gravatar.com/avatar/" + hex.EncodeToString(sum[:]) + "?s=160&d=mm&r=g"
}

func newUserView(u core.User) userView {
	v := userView{
		ID: u.Number, Email: u.Email, UUID: u.ID, Picture: picture(u.Email),
		Admin: flag(u, attrAdmin), PlanAdmin: flag(u, attrPlanAdmin), OnlySeesReadable: flag(u, attrOnlyReadable),
		SessionsLimit: u.SessionsLimit, CreatedAt: newStamp(u.CreatedAt), UpdatedAt: newStamp(u.UpdatedAt),
	}
	if t := deletedAt(u); t != nil {
		s := newStamp(*t)
		v.DeletedAt = &s
	}
	return v
}

// create handles POST /integration-api/v1/dashboard/users.
func (a *api) create(w http.ResponseWriter, r *http.Request) error {
	in, err := readBody(w, r)
	if err != nil {
		return err
	}
	f, err := translate(in, "email", "external_id")
	if err != nil {
		return err
	}
	pol := policy
	if _, ok := f["password"]; ok {
		pol = withPassword
	}
	u, err := a.svc.CreateUser(r.Context(), f, pol)
	if core.KindOf(err) == core.Conflict {
		return a.taken(r, f, err)
	}
	if err != nil {
		return err
	}
	return ok(w, newUserView(u))
}

// taken words a Conflict as Laravel's unique rule: the field whose value
// another user holds ("The email has already been taken.").
func (a *api) taken(r *http.Request, f core.Fields, err error) error {
	const op = "publicala.taken"
	email, _ := f["email"].(string)
	if _, lerr := a.svc.UserByName(r.Context(), core.NameEmail, email); lerr == nil {
		return invalid(op, "email", "has already been taken")
	}
	if x, _ := f["externalId"].(string); x != "" {
		if _, lerr := a.svc.UserByName(r.Context(), core.NameExternalID, x); lerr == nil {
			return invalid(op, "external_id", "has already been taken")
		}
	}
	return err
}

// update handles PUT .../dashboard/users/{id} (and /api/v1/dashboard/users/{id}):
// 204, empty. A new_password is set after the other fields, and ends the
// user's sessions.
func (a *api) update(w http.ResponseWriter, r *http.Request) error {
	u, err := a.user(r, false)
	if err != nil {
		return err
	}
	in, err := readBody(w, r)
	if err != nil {
		return err
	}
	f, err := translate(in, "email", "external_id", "only_sees_readable")
	if err != nil {
		return err
	}
	password, hasPassword := f["password"].(string)
	delete(f, "password")
	if hasPassword {
		if _, err := core.ValidatePassword(password); err != nil {
			return invalid("publicala.update", "new_password", "is not a valid password")
		}
	}
	if _, err := a.svc.UpdateUser(r.Context(), u.ID, f, policy); err != nil {
		if core.KindOf(err) == core.Conflict {
			return a.taken(r, f, err)
		}
		return err
	}
	if hasPassword {
		if _, err := a.svc.SetPassword(r.Context(), u.ID, password); err != nil {
			return err
		}
	}
	return web.NoContent(w)
}

// deactivate handles DELETE .../dashboard/users/{id}: logins, sessions and
// keys are refused from now on; deleted_at is set.
func (a *api) deactivate(w http.ResponseWriter, r *http.Request) error {
	u, err := a.user(r, false)
	if err != nil {
		return err
	}
	if _, err := a.svc.SetUserStatus(r.Context(), u.ID, false); err != nil {
		return err
	}
	return ok(w, []any{})
}

// reactivate handles PUT .../dashboard/users/{id}/re-activate.
func (a *api) reactivate(w http.ResponseWriter, r *http.Request) error {
	u, err := a.user(r, true)
	if err != nil {
		return err
	}
	if _, err := a.svc.SetUserStatus(r.Context(), u.ID, true); err != nil {
		return err
	}
	return ok(w, 1)
}

// forceLogout handles POST /integration-api/v1/users/{id}/force-logout and
// DELETE /integration-api/v1/auth-sessions/users/{id}: every session of the
// user ends.
func (a *api) forceLogout(w http.ResponseWriter, r *http.Request) error {
	u, err := a.user(r, true)
	if err != nil {
		return err
	}
	if err := a.svc.EndSessions(r.Context(), u.ID); err != nil {
		return err
	}
	return ok(w, []any{})
}
