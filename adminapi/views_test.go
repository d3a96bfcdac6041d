package adminapi

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// TestWriteListAsMarshal: a page of users or apps is written byte for byte as
// json.Marshal writes it, HTML-escaped strings, model properties, an empty page
// and the trailing newline included, so clients see the same bodies as before.
func TestWriteListAsMarshal(t *testing.T) {
	limit := 3
	now := time.Date(2026, 12, 6, 4, 0, 0, 123e6, time.UTC)
	users := []core.User{
		{ID: "u1", Number: 1, Username: "ann", Email: "a<b>&c@example.com", IsActive: true, CreatedAt: now, UpdatedAt: now,
			Props: map[string]any{"zeta": "x\u2028y", "alpha": []any{1.5, "<script>"}, "nested": map[string]any{"b": true, "a": nil}}},
		{ID: "u2", Number: 2, Username: "bob", SessionsLimit: &limit, CreatedAt: now, UpdatedAt: now},
	}
	apps := []core.App{{ID: "a1", Name: "app & co", UserID: "u1", CreatedAt: now, UpdatedAt: now, Props: map[string]any{"tier": "<gold>"}}}
	for _, c := range []struct {
		name string
		got  func(*httptest.ResponseRecorder) error
		want any
	}{
		{"users", func(w *httptest.ResponseRecorder) error {
			return writeList(w, "users", users, viewJSON(newUserView), 42)
		},
			struct {
				Users   []userView `json:"users"`
				NextKey int64      `json:"nextKey"`
			}{mapSlice(users, newUserView), 42}},
		{"no users", func(w *httptest.ResponseRecorder) error {
			return writeList(w, "users", []core.User{}, viewJSON(newUserView), 0)
		},
			struct {
				Users   []userView `json:"users"`
				NextKey int64      `json:"nextKey"`
			}{mapSlice([]core.User{}, newUserView), 0}},
		{"apps", func(w *httptest.ResponseRecorder) error { return writeList(w, "apps", apps, viewJSON(newAppView), 7) },
			struct {
				Apps    []appView `json:"apps"`
				NextKey int64     `json:"nextKey"`
			}{mapSlice(apps, newAppView), 7}},
	} {
		w := httptest.NewRecorder()
		if err := c.got(w); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want, err := json.Marshal(c.want)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Body.String(); got != string(want)+"\n" {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" || w.Code != 200 {
			t.Errorf("%s: %d %q", c.name, w.Code, ct)
		}
	}
}
