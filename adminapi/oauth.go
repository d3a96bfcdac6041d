package adminapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
	return writeJSON(w, status, v)
}

// oauthFail answers err in RFC 6749's shape and logs it like writeError.
func oauthFail(w http.ResponseWriter, r *http.Request, err error, basic bool) {
	status, code := http.StatusBadRequest, "invalid_request"
	switch core.KindOf(err) {
	case core.Unauthorized:
		status, code = http.StatusUnauthorized, "invalid_client"
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
		}
	case core.Forbidden:
		code = "unauthorized_client"
	case core.Invalid:
		for _, f := range core.FieldsOf(err) {
			if f.Field == "scope" {
				code = "invalid_scope"
			}
		}
	case core.Unavailable:
		status, code = http.StatusServiceUnavailable, "temporarily_unavailable"
	case core.Malformed, core.TooLarge:
	default:
		status, code = http.StatusInternalServerError, "server_error"
	}
	retryAfter(w, err)
	logFailure(r, err, status)
	desc := core.MessageOf(err)
	if status >= 500 && code == "server_error" {
		desc = "internal error"
	}
	_ = writeOAuth(w, status, oauthError{Code: code, Description: desc})
}

// oauthHandler adapts an OAuth handler: its errors leave in RFC 6749's shape.
func (s *Server) oauthHandler(h func(w http.ResponseWriter, r *http.Request) (basic bool, err error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if basic, err := h(w, r); err != nil {
			oauthFail(w, r, err, basic)
		}
		return nil
	}
}

// clientAuth reads an OAuth client's form and credentials (RFC 6749 §2.3.1):
// HTTP Basic (form-urlencoded id and secret) or client_id and client_secret in
// the body, not both.
func (s *Server) clientAuth(w http.ResponseWriter, r *http.Request) (url.Values, core.ClientRequest, bool, error) {
	const op = "adminapi.clientAuth"
	b, err := readBody(w, r, publicBodyLimit)
	if err != nil {
		return nil, core.ClientRequest{}, false, err
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, core.ClientRequest{}, false, core.Errorf(core.Malformed, op, "the body must be application/x-www-form-urlencoded")
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, core.ClientRequest{}, false, core.Errorf(core.Malformed, op, "the body is not a valid form")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, core.ClientRequest{}, false, core.Errorf(core.Malformed, op, "parameter %s is repeated", k)
		}
	}
	req := core.ClientRequest{ClientAddr: s.clientAddr(r)}
	user, pass, basic := r.BasicAuth()
	if basic {
		if form.Has("client_secret") {
			return nil, req, true, core.Errorf(core.Malformed, op, "use one client authentication method")
		}
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, req, true, core.Errorf(core.Unauthorized, op, "invalid client")
		}
		req.ClientID, req.ClientSecret = id, secret
	} else {
		req.ClientID, req.ClientSecret = form.Get("client_id"), form.Get("client_secret")
		if req.ClientID == "" {
			return nil, req, false, core.Errorf(core.Unauthorized, op, "client authentication is required")
		}
	}
	return form, req, basic, nil
}

// tokenGrant handles POST /oauth2/token: the client-credentials grant (RFC 6749 §4.4).
func (s *Server) tokenGrant(w http.ResponseWriter, r *http.Request) (bool, error) {
	form, req, basic, err := s.clientAuth(w, r)
	if err != nil {
		return basic, err
	}
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		w.Header().Set("Cache-Control", "no-store")
		code := "unsupported_grant_type"
		if gt == "" {
			code = "invalid_request"
		}
		return basic, writeOAuth(w, http.StatusBadRequest, oauthError{Code: code, Description: "only the client_credentials grant is served"})
	}
	tok, err := s.svc.ClientCredentials(r.Context(), req, form.Get("scope"))
	if err != nil {
		return basic, err
	}
	return basic, writeOAuth(w, http.StatusOK, struct {
		AccessToken string      `json:"access_token"`
		TokenType   string      `json:"token_type"`
		ExpiresIn   json.Number `json:"expires_in"`
		Scope       string      `json:"scope"`
	}{tok.Token, "Bearer", json.Number(strconv.Itoa(int(tok.ExpiresIn.Seconds()))), strings.Join(tok.Scopes, " ")})
}

// revokeGrant handles POST /oauth2/revoke (RFC 7009): 200 whether or not the
// token was live.
func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request) (bool, error) {
	form, req, basic, err := s.clientAuth(w, r)
	if err != nil {
		return basic, err
	}
	if form.Get("token") == "" {
		return basic, core.Errorf(core.Malformed, "adminapi.revokeGrant", "token is required")
	}
	if err := s.svc.RevokeClientToken(r.Context(), req, form.Get("token")); err != nil {
		return basic, err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return basic, nil
}
