package adminapi

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core"
)

// staticPlugins is a plugin host that reports fixed statuses.
type staticPlugins []core.PluginStatus

func (p staticPlugins) Status() []core.PluginStatus { return p }

// TestListPlugins: GET /plugins shows the kinds each plugin serves as a
// list, [] for an entry without kind that has not started yet.
func TestListPlugins(t *testing.T) {
	e := newEnv(t)
	started := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	plugins := staticPlugins{
		{Name: "google", Kinds: []string{core.KindIdentityProvider, core.KindIntegration}, Builtin: "google", Version: "1.0.0",
			State: core.PluginRunning, Healthy: true, PID: 42, StartedAt: started},
		{Name: "ldap", Path: "gatehouse-plugin-ldap", State: core.PluginStarting},
	}
	h := New(e.svc, Options{Plugins: plugins}).Admin()
	req := httptest.NewRequest("GET", "/plugins", nil)
	req.Header.Set("x-api-key", testAdminKey)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var got map[string][]map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != 200 || err != nil {
		t.Fatalf("GET /plugins: %d %s (%v)", w.Code, w.Body, err)
	}
	want := map[string][]map[string]any{"plugins": {
		{"name": "google", "kinds": []any{"identity_provider", "integration"}, "builtin": "google", "version": "1.0.0",
			"state": "running", "healthy": true, "pid": 42.0, "restarts": 0.0, "startedAt": "2026-12-06T10:00:00.000Z"},
		{"name": "ldap", "kinds": []any{}, "path": "gatehouse-plugin-ldap", "state": "starting", "healthy": false, "restarts": 0.0},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /plugins (-want +got)\n%s", diff)
	}
}
