package adminapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// The response shapes of the native admin API: Express Gateway's field names, with
// model properties at the top level beside the built-ins, and RFC 3339 UTC times.

// timeFormat is RFC 3339 with milliseconds, the precision Gatehouse stores.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

// withProps marshals base (a struct) and adds props as further top-level fields.
func withProps(base any, props map[string]any) ([]byte, error) {
	b, err := json.Marshal(base)
	if err != nil || len(props) == 0 {
		return b, err
	}
	p, err := json.Marshal(props)
	if err != nil {
		return nil, err
	}
	return append(append(b[:len(b)-1], ','), p[1:]...), nil
}

// writeList answers a page of a list, {"NAME":[items],"nextKey":N}, as
// json.Marshal would write it, with each item encoded once (encode gives an
// item's JSON: viewJSON of its view, or a memo's): json.Marshal checks and
// re-compacts what each item's MarshalJSON returns, a tenth of a page of
// users' time.
func writeList[T any](w http.ResponseWriter, name string, items []T, encode func(T) ([]byte, error), nextKey int64) error {
	buf := make([]byte, 0, 256*len(items)+64)
	buf = append(buf, `{"`...)
	buf = append(buf, name...)
	buf = append(buf, `":[`...)
	for i, it := range items {
		if i > 0 {
			buf = append(buf, ',')
		}
		b, err := encode(it)
		if err != nil {
			return core.E(core.Internal, "adminapi.writeList", err)
		}
		buf = append(buf, b...)
	}
	buf = append(buf, `],"nextKey":`...)
	buf = strconv.AppendInt(buf, nextKey, 10)
	buf = append(buf, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf) // a failed write means the client went away
	return nil
}

// viewJSON turns a view constructor into writeList's encode.
func viewJSON[T any, V json.Marshaler](view func(T) V) func(T) ([]byte, error) {
	return func(x T) ([]byte, error) { return view(x).MarshalJSON() }
}

type userBase struct {
	ID            string `json:"id"`
	Number        int64  `json:"number"`
	Username      string `json:"username"`
	Email         string `json:"email,omitempty"`
	RedirectURI   string `json:"redirectUri,omitempty"`
	ExternalID    string `json:"externalId,omitempty"`
	EmailVerified bool   `json:"emailVerified"`
	SessionsLimit *int   `json:"sessionsLimit"`
	IsActive      bool   `json:"isActive"`
	// Groups (ids) and Tags (its own) are left out when empty, so that a user
	// in no group reads exactly as Express Gateway shows it.
	Groups    []string `json:"groups,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	CreatedAt string   `json:"createdAt"`
	UpdatedAt string   `json:"updatedAt"`
}

// userView is a user as the admin API shows it.
type userView struct {
	userBase
	props map[string]any
}

func (v userView) MarshalJSON() ([]byte, error) { return withProps(v.userBase, v.props) }

func newUserView(u core.User) userView {
	return userView{userBase{
		ID: u.ID, Number: u.Number, Username: u.Username, Email: u.Email, RedirectURI: u.RedirectURI,
		ExternalID: u.ExternalID, EmailVerified: u.EmailVerified, SessionsLimit: u.SessionsLimit,
		IsActive: u.IsActive, Groups: u.Groups, Tags: u.Tags,
		CreatedAt: formatTime(u.CreatedAt), UpdatedAt: formatTime(u.UpdatedAt),
	}, u.Props}
}

type appBase struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	UserID      string `json:"userId"`
	RedirectURI string `json:"redirectUri,omitempty"`
	IsActive    bool   `json:"isActive"` // effective: its own flag and its owner's
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
}

// appView is an application as the admin API shows it.
type appView struct {
	appBase
	props map[string]any
}

func (v appView) MarshalJSON() ([]byte, error) { return withProps(v.appBase, v.props) }

func newAppView(a core.App) appView {
	return appView{appBase{
		ID: a.ID, Name: a.Name, UserID: a.UserID, RedirectURI: a.RedirectURI, IsActive: a.Active(),
		CreatedAt: formatTime(a.CreatedAt), UpdatedAt: formatTime(a.UpdatedAt),
	}, a.Props}
}

type credentialBase struct {
	ID         string   `json:"id"`
	Type       string   `json:"type"`
	ConsumerID string   `json:"consumerId"`
	KeyID      string   `json:"keyId,omitempty"`
	KeySecret  string   `json:"keySecret,omitempty"` // at creation only
	Password   string   `json:"password,omitempty"`  // at creation only, when generated
	Secret     string   `json:"secret,omitempty"`    // at creation only, when generated
	Algorithm  string   `json:"algorithm,omitempty"`
	Scopes     []string `json:"scopes"`
	IsActive   bool     `json:"isActive"` // effective: its own flag and its owners'
	ExpiresAt  string   `json:"expiresAt,omitempty"`
	CreatedAt  string   `json:"createdAt"`
	UpdatedAt  string   `json:"updatedAt"`
}

// credentialView is a credential as the admin API shows it: never its stored secret.
type credentialView struct {
	credentialBase
	props map[string]any
}

func (v credentialView) MarshalJSON() ([]byte, error) { return withProps(v.credentialBase, v.props) }

func newCredentialView(c core.Credential) credentialView {
	v := credentialView{credentialBase{
		ID: c.ID, Type: string(c.Type), ConsumerID: c.ConsumerID, Algorithm: c.Algorithm,
		Scopes: make([]string, 0, len(c.Scopes)), IsActive: c.Active(), ExpiresAt: formatTime(c.ExpiresAt),
		CreatedAt: formatTime(c.CreatedAt), UpdatedAt: formatTime(c.UpdatedAt),
	}, c.Props}
	if c.Type.Keyed() {
		v.KeyID = c.ID
	}
	for _, g := range c.Scopes {
		v.Scopes = append(v.Scopes, g.Name)
	}
	return v
}

// newCreatedCredentialView adds the secrets shown once.
func newCreatedCredentialView(nc core.NewCredential) credentialView {
	v := newCredentialView(nc.Credential)
	v.KeySecret, v.Password, v.Secret = nc.KeySecret, nc.Password, nc.Secret
	return v
}

// adminKeyView is an admin key in lists: never the key nor its hash.
type adminKeyView struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Scope      string `json:"scope"`
	Prefix     string `json:"prefix"`
	Key        string `json:"key,omitempty"` // at creation only
	CreatedAt  string `json:"createdAt,omitempty"`
	LastUsedAt string `json:"lastUsedAt,omitempty"`
	// ETag is the key's ETag, for If-Match on its DELETE: a list has no
	// header per item.
	ETag string `json:"etag"`
}

func newAdminKeyView(k core.AdminKey) adminKeyView {
	return adminKeyView{ID: k.ID, Name: k.Name, Scope: string(k.Scope), Prefix: k.Prefix,
		CreatedAt: formatTime(k.CreatedAt), LastUsedAt: formatTime(k.LastUsedAt), ETag: web.ETag(k.Version())}
}

// mapSlice converts a slice with f.
func mapSlice[T, V any](in []T, f func(T) V) []V {
	out := make([]V, len(in))
	for i, x := range in {
		out[i] = f(x)
	}
	return out
}
