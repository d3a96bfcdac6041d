package adminapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// clientKeyView is a client key as the admin API shows it: Key only when it
// is made.
type clientKeyView struct {
	ID        string `json:"id"`
	Preview   string `json:"preview"`
	Key       string `json:"key,omitempty"`
	CreatedAt string `json:"createdAt"`
}

func newClientKeyView(k core.ClientKey) clientKeyView {
	return clientKeyView{ID: k.ID, Preview: k.Preview, CreatedAt: formatTime(k.CreatedAt)}
}

// clientView is a client (a GL Connectors tenant).
type clientView struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	CreatedAt string          `json:"createdAt"`
	Keys      []clientKeyView `json:"keys,omitempty"`
	// Key is the first key, when the client is made.
	Key string `json:"key,omitempty"`
}

func newClientView(c core.Client) clientView {
	return clientView{ID: c.ID, Name: c.Name, CreatedAt: formatTime(c.CreatedAt)}
}

// createClient handles POST /clients {name} → 201 with its first key, shown
// once (a replay of its Idempotency-Key answers it without the key), and the
// client's ETag.
func (s *Server) createClient(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	c, k, err := s.svc.CreateClient(r.Context(), req.Name)
	if err != nil {
		return err
	}
	v := newClientView(c)
	v.Keys = []clientKeyView{newClientKeyView(k.ClientKey)}
	replayAs(r, v)
	v.Key = k.Key
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteEntity(w, r, http.StatusCreated, core.ClientWithKeys{Client: c, Keys: []core.ClientKey{k.ClientKey}}.Version(), v)
}

// listClients handles GET /clients (start, count): one page.
func (s *Server) listClients(w http.ResponseWriter, r *http.Request) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.svc.ListClients(r.Context(), opt)
	if err != nil {
		return err
	}
	setTotal(w, p.Total)
	return web.WriteJSON(w, http.StatusOK, struct {
		Clients []clientView `json:"clients"`
		NextKey int64        `json:"nextKey"`
	}{mapSlice(p.Items, newClientView), p.NextKey})
}

// getClient handles GET /clients/{id}: the client with its keys (never a
// key), and its ETag, the version of both.
func (s *Server) getClient(w http.ResponseWriter, r *http.Request) error {
	c, keys, err := s.svc.GetClient(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	v := newClientView(c)
	v.Keys = mapSlice(keys, newClientKeyView)
	return web.WriteEntity(w, r, http.StatusOK, core.ClientWithKeys{Client: c, Keys: keys}.Version(), v)
}

// newClientKey handles POST /clients/{id}/keys: another key, shown once (a
// replay of its Idempotency-Key answers it without the key).
func (s *Server) newClientKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.svc.NewClientKey(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	v := newClientKeyView(k.ClientKey)
	replayAs(r, v)
	v.Key = k.Key
	w.Header().Set("Cache-Control", "no-store")
	return web.WriteJSON(w, http.StatusCreated, v)
}

// revokeClientKey handles DELETE /clients/{id}/keys/{keyId} (If-Match: the
// client's ETag).
func (s *Server) revokeClientKey(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	if err := s.svc.RevokeClientKey(r.Context(), web.Param(r, "id"), web.Param(r, "keyId"), pre); err != nil {
		return err
	}
	return web.NoContent(w)
}

// deleteClient handles DELETE /clients/{id}: the client and its keys; its
// users stay (If-Match: the client's ETag).
func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteClient(r.Context(), web.Param(r, "id"), pre); err != nil {
		return err
	}
	return web.NoContent(w)
}
