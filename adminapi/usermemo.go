package adminapi

import (
	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/internal/memo"
)

// userMemoSize bounds userMemo: at most twice this many users' renderings are
// kept (each its stored record and its view, under a kilobyte for a user with
// a few properties: a few megabytes at most), in two generations (memo.Memo).
const userMemoSize = 4096

// userMemo keeps, for a user's exact stored form (core.User.Stored), its view's
// JSON and its version, so that a user read again unchanged skips both
// encodings: GET /users/{id} and each item of GET /users. It is correct by
// construction, its key being the record itself: a changed user is another
// key. A user view carries no secret (the record holds none: passwords and
// secrets are kept apart, and the secret's preview is not in the view).
type userMemo struct{ m *memo.Memo[userRender] }

// userRender is one user's rendering: its view's JSON and a newline (an
// answer's body as it is written, shared: only ever read), and its version
// ("" until a read that needs it computes it).
type userRender struct {
	body    []byte
	version string
}

// view is the view's JSON, without the body's newline.
func (r userRender) view() []byte { return r.body[:len(r.body)-1] }

func newUserMemo() *userMemo { return &userMemo{memo.New[userRender](userMemoSize)} }

// render returns u's view as JSON and, when withVersion, its version: from the
// memo when u is as stored, else computed (and kept when u has a stored form).
func (m *userMemo) render(u core.User, withVersion bool) (userRender, error) {
	if u.Stored == "" {
		return renderUser(u, withVersion)
	}
	if r, ok := m.m.Get(u.Stored); ok && (r.version != "" || !withVersion) {
		return r, nil
	}
	r, err := renderUser(u, withVersion)
	if err == nil {
		m.m.Put(u.Stored, r)
	}
	return r, err
}

// renderUser computes a user's rendering.
func renderUser(u core.User, withVersion bool) (userRender, error) {
	b, err := newUserView(u).MarshalJSON()
	if err != nil {
		return userRender{}, core.E(core.Internal, "adminapi.renderUser", err)
	}
	r := userRender{body: append(b, '\n')}
	if withVersion {
		r.version = u.Version()
	}
	return r, nil
}

// viewJSON returns the JSON of a user's view, for writeList.
func (m *userMemo) viewJSON(u core.User) ([]byte, error) {
	r, err := m.render(u, false)
	if err != nil {
		return nil, err
	}
	return r.view(), nil
}
