package adminapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// credentialRequest is the body of POST /credentials.
type credentialRequest struct {
	ConsumerID string         `json:"consumerId"`
	Type       string         `json:"type"`
	Credential map[string]any `json:"credential"`
}

// createCredential handles POST /credentials; Express Gateway answers 200 with
// the secret, shown this once: a replay (Idempotency-Key) shows the
// credential without it.
func (s *Server) createCredential(w http.ResponseWriter, r *http.Request) error {
	var req credentialRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	nc, err := s.svc.CreateCredential(r.Context(), core.CredentialRequest{ConsumerID: req.ConsumerID, Type: req.Type, Credential: req.Credential})
	if err != nil {
		return err
	}
	replayAs(r, newCredentialView(nc.Credential))
	return web.WriteEntity(w, r, http.StatusOK, nc.Version(), newCreatedCredentialView(nc))
}

// listCredentials handles GET /credentials: every credential, paged like users.
func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request) error {
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.svc.ListCredentials(r.Context(), opt)
	if err != nil {
		return err
	}
	setTotal(w, p.Total)
	return web.WriteJSON(w, http.StatusOK, struct {
		Credentials []credentialView `json:"credentials"`
		NextKey     int64            `json:"nextKey"`
	}{mapSlice(p.Items, newCredentialView), p.NextKey})
}

// consumerCredentials handles GET /credentials/{consumer}: {credentials}.
func (s *Server) consumerCredentials(w http.ResponseWriter, r *http.Request) error {
	creds, err := s.svc.ConsumerCredentials(r.Context(), web.Param(r, "a"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string][]credentialView{"credentials": mapSlice(creds, newCredentialView)})
}

// credentialRef returns the {type}/{id} of a credential route.
func credentialRef(r *http.Request) (core.CredentialType, string) {
	return core.CredentialType(web.Param(r, "a")), web.Param(r, "b")
}

// getCredential handles GET /credentials/{type}/{id}.
func (s *Server) getCredential(w http.ResponseWriter, r *http.Request) error {
	typ, id := credentialRef(r)
	c, err := s.svc.GetCredential(r.Context(), typ, id)
	if err != nil {
		return err
	}
	return web.WriteEntity(w, r, http.StatusOK, c.Version(), newCredentialView(c))
}

// deleteCredential handles DELETE /credentials/{type}/{id} (If-Match: the credential's ETag).
func (s *Server) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	typ, id := credentialRef(r)
	if err := s.svc.DeleteCredential(r.Context(), typ, id, pre); err != nil {
		return err
	}
	return web.NoContent(w)
}

// setCredentialStatus handles PUT /credentials/{type}/{id}/status. Like the
// scope routes below, it honours If-Match with the credential's ETag.
func (s *Server) setCredentialStatus(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	active, err := decodeStatus(w, r)
	if err != nil {
		return err
	}
	typ, id := credentialRef(r)
	changed, err := s.svc.SetCredentialStatus(r.Context(), typ, id, active, pre)
	if err != nil {
		return err
	}
	return statusAnswer(w, active, changed)
}

// scopesRequest is the body of PUT .../scopes and POST /scopes.
type scopesRequest struct {
	Scopes []string `json:"scopes"`
}

// setCredentialScopes handles PUT /credentials/{type}/{id}/scopes; 204 as in
// Express Gateway, with the credential's new ETag.
func (s *Server) setCredentialScopes(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	var req scopesRequest
	if err := web.DecodeJSON(w, r, web.AdminBodyLimit, &req); err != nil {
		return err
	}
	if req.Scopes == nil {
		return core.InvalidFields("adminapi.setCredentialScopes", core.FieldError{Field: "scopes", Detail: "is required (an array, [] to clear)"})
	}
	typ, id := credentialRef(r)
	return changedCredential(w)(s.svc.SetCredentialScopes(r.Context(), typ, id, req.Scopes, pre))
}

// addCredentialScope handles PUT /credentials/{type}/{id}/scopes/{scope}.
func (s *Server) addCredentialScope(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	typ, id := credentialRef(r)
	return changedCredential(w)(s.svc.AddCredentialScope(r.Context(), typ, id, web.Param(r, "c"), pre))
}

// removeCredentialScope handles DELETE /credentials/{type}/{id}/scopes/{scope}.
func (s *Server) removeCredentialScope(w http.ResponseWriter, r *http.Request) error {
	pre, err := web.Preconditions(r)
	if err != nil {
		return err
	}
	typ, id := credentialRef(r)
	return changedCredential(w)(s.svc.RemoveCredentialScope(r.Context(), typ, id, web.Param(r, "c"), pre))
}

// changedCredential answers a credential's scope change: 204 with its new ETag.
func changedCredential(w http.ResponseWriter) func(core.Credential, error) error {
	return func(c core.Credential, err error) error {
		if err != nil {
			return err
		}
		w.Header().Set("ETag", web.ETag(c.Version()))
		return web.NoContent(w)
	}
}
