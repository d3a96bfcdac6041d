package adminapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// PluginStatuser reports the plugins' states (the plugin host).
type PluginStatuser interface {
	Status() []core.PluginStatus
}

// pluginView is a plugin as GET /plugins lists it.
type pluginView struct {
	Name      string   `json:"name"`
	Kinds     []string `json:"kinds"` // never null: [] before the first start of an entry without kind
	Builtin   string   `json:"builtin,omitempty"`
	Path      string   `json:"path,omitempty"`
	Version   string   `json:"version,omitempty"`
	State     string   `json:"state"`
	Healthy   bool     `json:"healthy"`
	PID       int      `json:"pid,omitempty"`
	Restarts  int      `json:"restarts"`
	LastError string   `json:"lastError,omitempty"`
	StartedAt string   `json:"startedAt,omitempty"`
}

func newPluginView(s core.PluginStatus) pluginView {
	kinds := s.Kinds
	if kinds == nil {
		kinds = []string{}
	}
	return pluginView{Name: s.Name, Kinds: kinds, Builtin: s.Builtin, Path: s.Path, Version: s.Version, State: string(s.State),
		Healthy: s.Healthy, PID: s.PID, Restarts: s.Restarts, LastError: s.LastError, StartedAt: formatTime(s.StartedAt)}
}

// pluginStatus returns every plugin's view (none without a plugin host).
func (s *Server) pluginStatus() []pluginView {
	if s.plugins == nil {
		return []pluginView{}
	}
	return mapSlice(s.plugins.Status(), newPluginView)
}

// listPlugins handles GET /plugins: each plugin's version, state, health and restarts.
func (s *Server) listPlugins(w http.ResponseWriter, r *http.Request) error {
	return web.WriteJSON(w, http.StatusOK, map[string][]pluginView{"plugins": s.pluginStatus()})
}
