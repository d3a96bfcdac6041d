package publicala

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/core"
)

// Paging of the list, as the PHP client and the docs use it.
const (
	defaultPerPage = 10
	maxPerPage     = 100
)

// isoFormat is how a list item writes its timestamps (Laravel's JSON dates).
const isoFormat = "2006-01-02T15:04:05.000000Z"

// listItem is a user in a list page, with the fields the seed shows; those
// Gatehouse has nothing for are empty.
type listItem struct {
	ID                                int64   `json:"id"`
	UUID                              string  `json:"uuid"`
	Admin                             bool    `json:"admin"`
	PlanAdmin                         bool    `json:"plan_admin"`
	Email                             string  `json:"email"`
	SessionsLimit                     *int    `json:"sessions_limit"`
	OnlySeesReadable                  int     `json:"only_sees_readable"`
	Picture                           string  `json:"picture"`
	CreatedAt                         string  `json:"created_at"`
	UpdatedAt                         string  `json:"updated_at"`
	DeletedAt                         *string `json:"deleted_at"`
	PurchasedIssuesWithCancelledCount int     `json:"purchased_issues_with_cancelled_count"`
	UserPlansCount                    int     `json:"user_plans_count"`
	CanBeEdited                       bool    `json:"can_be_edited"`
	CreatedAtDateString               string  `json:"created_at_date_string"`
	Impersonate                       *string `json:"impersonate"`
	Sessions                          *int    `json:"sessions"`
	IPRanges                          []any   `json:"ip_ranges"`
	Referrers                         []any   `json:"referrers"`
	PurchasedIssuesWithCancelled      []any   `json:"purchased_issues_with_cancelled"`
	UserPlans                         []any   `json:"user_plans"`
}

func newListItem(u core.User) listItem {
	v := newUserView(u)
	it := listItem{
		ID: v.ID, UUID: v.UUID, Admin: v.Admin, PlanAdmin: v.PlanAdmin, Email: v.Email, SessionsLimit: v.SessionsLimit,
		Picture: v.Picture, CreatedAt: u.CreatedAt.UTC().Format(isoFormat), UpdatedAt: u.UpdatedAt.UTC().Format(isoFormat),
		CanBeEdited: true, CreatedAtDateString: u.CreatedAt.UTC().Format("2006-01-02"),
		IPRanges: []any{}, Referrers: []any{}, PurchasedIssuesWithCancelled: []any{}, UserPlans: []any{},
	}
	if v.OnlySeesReadable {
		it.OnlySeesReadable = 1
	}
	if t := deletedAt(u); t != nil {
		s := t.UTC().Format(isoFormat)
		it.DeletedAt = &s
	}
	return it
}

// paginator is Laravel's LengthAwarePaginator as JSON.
type paginator struct {
	CurrentPage  int        `json:"current_page"`
	Data         []listItem `json:"data"`
	FirstPageURL string     `json:"first_page_url"`
	From         *int       `json:"from"`
	LastPage     int        `json:"last_page"`
	LastPageURL  string     `json:"last_page_url"`
	NextPageURL  *string    `json:"next_page_url"`
	Path         string     `json:"path"`
	PerPage      int        `json:"per_page"`
	PrevPageURL  *string    `json:"prev_page_url"`
	To           *int       `json:"to"`
	Total        int64      `json:"total"`
}

// list handles GET .../dashboard/users: page, per_page, query
// (deactivated, admins or an email) and email. Deactivated users are listed
// only under query=deactivated (Laravel's soft deletes).
func (a *api) list(w http.ResponseWriter, r *http.Request) error {
	const op = "publicala.list"
	q := r.URL.Query()
	page := 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		page = n
	}
	perPage := defaultPerPage
	if s := q.Get("per_page"); s != "" {
		n, ok := laravelInt(s)
		if !ok || n < 1 || n > maxPerPage {
			return core.InvalidFields(op, core.FieldError{Field: "per_page", Detail: "must be an integer between 1 and 100"})
		}
		perPage = int(n)
	}
	var users []core.User
	var total int64
	email := q.Get("email")
	query := q.Get("query")
	if email == "" && query != "deactivated" && query != "admins" {
		email = query
	}
	switch {
	case email != "":
		u, err := a.svc.UserByName(r.Context(), core.NameEmail, email)
		if err != nil && core.KindOf(err) != core.NotFound {
			return err
		}
		if err == nil && u.IsActive {
			total = 1
			if page == 1 {
				users = []core.User{u}
			}
		}
	default:
		// Laravel's soft deletes: deactivated users only under query=deactivated.
		active := query != "deactivated"
		var keep func(core.User) bool
		if query == "admins" {
			keep = func(u core.User) bool { return flag(u, attrAdmin) } // no index: a scan of the active users
		}
		var err error
		if users, total, err = a.svc.UsersAt(r.Context(), core.UserFilter{Active: &active}, keep, (page-1)*perPage, perPage); err != nil {
			return err
		}
	}
	return ok(w, map[string]any{"paginator": newPaginator(r, users, total, page, perPage)})
}

func newPaginator(r *http.Request, users []core.User, total int64, page, perPage int) paginator {
	path := basePath(r)
	at := func(n int) string { return path + "?page=" + strconv.Itoa(n) }
	last := max(1, int((total+int64(perPage)-1)/int64(perPage)))
	p := paginator{CurrentPage: page, Data: make([]listItem, 0, len(users)), FirstPageURL: at(1), LastPage: last,
		LastPageURL: at(last), Path: path, PerPage: perPage, Total: total}
	for _, u := range users {
		p.Data = append(p.Data, newListItem(u))
	}
	if len(users) > 0 {
		from, to := (page-1)*perPage+1, (page-1)*perPage+len(users)
		p.From, p.To = &from, &to
	}
	if page < last {
		next := at(page + 1)
		p.NextPageURL = &next
	}
	if page > 1 {
		prev := at(page - 1)
		p.PrevPageURL = &prev
	}
	return p
}

// basePath is the list's URL without its query: the request's scheme (https
// behind a proxy that says so), host and path, as Laravel's url()->current().
func basePath(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: strings.TrimSuffix(r.URL.Path, "/")}
	return u.String()
}
