package adminapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// oauthError is RFC 6749 §5.2's error answer.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// writeOAuth answers the OAuth endpoints: JSON that no cache keeps.
func writeOAuth(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	return web.WriteJSON(w, status, v)
}

// oauthCode carries an RFC 6749 error code decided by a handler (such as
// unsupported_grant_type) that the error's kind alone does not tell.
type oauthCode struct {
	code string
	error
}

func (e oauthCode) Unwrap() error { return e.error }

// oauthShape writes a failure in RFC 6749 §5.2's shape. The status is the
// kind's, as everywhere (so invalid_scope is 422 and unauthorized_client
// 403, where the RFC's own examples use 400); the code names the failure for
// OAuth clients.
func oauthShape(w http.ResponseWriter, r *http.Request, f web.Failure) {
	code := "invalid_request"
	switch f.Kind {
	case core.Unauthorized:
		code = "invalid_client"
		if _, _, basic := r.BasicAuth(); basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
		} else {
			w.Header().Del("WWW-Authenticate")
		}
	case core.Forbidden:
		code = "unauthorized_client"
	case core.Invalid:
		for _, fe := range f.Fields {
			if fe.Field == "scope" {
				code = "invalid_scope"
			}
		}
	case core.Unavailable, core.RateLimited:
		code = "temporarily_unavailable"
	case core.Internal:
		code = "server_error"
	}
	if c, ok := errors.AsType[oauthCode](f.Err); ok {
		code = c.code
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(oauthError{Code: code, Description: f.Detail})
}

// clientAuth reads an OAuth client's form and credentials (RFC 6749 §2.3.1):
// HTTP Basic (form-urlencoded id and secret) or client_id and client_secret in
// the body, not both.
func (s *Server) clientAuth(w http.ResponseWriter, r *http.Request) (url.Values, core.ClientRequest, error) {
	const op = "adminapi.clientAuth"
	b, err := web.ReadBody(w, r, web.PublicBodyLimit)
	if err != nil {
		return nil, core.ClientRequest{}, err
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, core.ClientRequest{}, core.Errorf(core.Malformed, op, "the body must be application/x-www-form-urlencoded")
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, core.ClientRequest{}, core.Errorf(core.Malformed, op, "the body is not a valid form")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, core.ClientRequest{}, core.Errorf(core.Malformed, op, "parameter %s is repeated", k)
		}
	}
	req := core.ClientRequest{ClientAddr: s.clientAddr(r)}
	if user, pass, basic := r.BasicAuth(); basic {
		if form.Has("client_secret") {
			return nil, req, core.Errorf(core.Malformed, op, "use one client authentication method")
		}
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, req, core.Errorf(core.Unauthorized, op, "invalid client")
		}
		req.ClientID, req.ClientSecret = id, secret
	} else {
		req.ClientID, req.ClientSecret = form.Get("client_id"), form.Get("client_secret")
		if req.ClientID == "" {
			return nil, req, core.Errorf(core.Unauthorized, op, "client authentication is required")
		}
	}
	return form, req, nil
}

// tokenGrant handles POST /oauth2/token: the client-credentials grant (RFC 6749 §4.4).
func (s *Server) tokenGrant(w http.ResponseWriter, r *http.Request) error {
	form, req, err := s.clientAuth(w, r)
	if err != nil {
		return err
	}
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		err := core.Errorf(core.Malformed, "adminapi.tokenGrant", "only the client_credentials grant is served")
		if gt == "" {
			return err
		}
		return oauthCode{"unsupported_grant_type", err}
	}
	tok, err := s.svc.ClientCredentials(r.Context(), req, form.Get("scope"))
	if err != nil {
		return err
	}
	return writeOAuth(w, http.StatusOK, struct {
		AccessToken string      `json:"access_token"`
		TokenType   string      `json:"token_type"`
		ExpiresIn   json.Number `json:"expires_in"`
		Scope       string      `json:"scope"`
	}{tok.Token, "Bearer", json.Number(strconv.Itoa(int(tok.ExpiresIn.Seconds()))), strings.Join(tok.Scopes, " ")})
}

// revokeGrant handles POST /oauth2/revoke (RFC 7009): 200 whether or not the
// token was live.
func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request) error {
	form, req, err := s.clientAuth(w, r)
	if err != nil {
		return err
	}
	if form.Get("token") == "" {
		return core.Errorf(core.Malformed, "adminapi.revokeGrant", "token is required")
	}
	if err := s.svc.RevokeClientToken(r.Context(), req, form.Get("token")); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}
