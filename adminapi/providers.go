package adminapi

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

// isForm reports whether r posts an HTML form.
func isForm(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// signup handles POST /auth/providers/{provider}/signup: {email, password, and
// the user model's x-signup properties} → 201 with the user.
func (s *Server) signup(w http.ResponseWriter, r *http.Request) error {
	f, err := web.DecodeFields(w, r, web.PublicBodyLimit)
	if err != nil {
		return err
	}
	u, err := s.svc.Signup(r.Context(), core.SignupRequest{Provider: web.Param(r, "provider"), Fields: f, ClientAddr: s.clientAddr(r)})
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, newUserView(u))
}

// tokenRequest is the JSON body of the verify and reset-confirm endpoints.
type tokenRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// verifyPage handles GET /auth/providers/{provider}/verify?token=: a page whose
// button confirms the address.
func (s *Server) verifyPage(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	if token == "" {
		return web.WritePage(w, http.StatusBadRequest, web.Page{Title: "Verify your email address", Message: "This link is incomplete.", Error: true})
	}
	return web.WritePage(w, http.StatusOK, web.Page{Title: "Verify your email address", Message: "Confirm that this address is yours.",
		Form: true, Action: r.URL.Path, Token: token, Button: "Verify my address"})
}

// confirmEmail handles POST /auth/providers/{provider}/verify: {token} as JSON
// (answering the user) or as the page's form (answering a page).
func (s *Server) confirmEmail(w http.ResponseWriter, r *http.Request) error {
	const title = "Verify your email address"
	token, _, form, err := s.readTokenPassword(w, r)
	if err != nil {
		return s.pageOr(w, r, form, title, err)
	}
	u, err := s.svc.ConfirmEmail(r.Context(), web.Param(r, "provider"), token)
	if err != nil {
		return s.pageOr(w, r, form, title, err)
	}
	if form {
		return web.WritePage(w, http.StatusOK, web.Page{Title: title, Message: "Your email address is verified. You can now log in."})
	}
	return web.WriteJSON(w, http.StatusOK, newUserView(u))
}

// readTokenPassword reads {token[, password]} from JSON or a form, reporting
// which. A body claiming to be a form that holds a JSON object (curl -d '{...}') is read
// as JSON.
func (s *Server) readTokenPassword(w http.ResponseWriter, r *http.Request) (token, password string, form bool, err error) {
	b, err := web.ReadBody(w, r, web.PublicBodyLimit)
	if err != nil {
		return "", "", isForm(r), err
	}
	if isForm(r) && !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		v, err := url.ParseQuery(string(b))
		if err != nil {
			return "", "", true, core.Errorf(core.Malformed, "adminapi.readToken", "the body is not a valid form")
		}
		if v.Has("confirm") && v.Get("confirm") != v.Get("password") {
			return "", "", true, core.InvalidFields("adminapi.readToken", core.FieldError{Field: "confirm", Detail: "the two passwords differ"})
		}
		return v.Get("token"), v.Get("password"), true, nil
	}
	var req tokenRequest
	if err := web.Unmarshal(b, &req, true); err != nil {
		return "", "", false, err
	}
	if req.Token == "" {
		return "", "", false, core.InvalidFields("adminapi.readToken", core.FieldError{Field: "token", Detail: "is required"})
	}
	return req.Token, req.Password, false, nil
}

// pageOr answers err as a page for form posts, else as problem+json.
func (s *Server) pageOr(w http.ResponseWriter, r *http.Request, form bool, title string, err error) error {
	if !form {
		return err
	}
	return failPage(w, r, title, err)
}

// mailAskRequest is the body of resend and password-reset.
type mailAskRequest struct {
	Email string `json:"email"`
}

// mailAsk handles POST .../resend and POST .../password-reset with send (a
// core.Service method): 202 whatever the address, so the answer does not tell
// whether it has an account (the mail goes out after the answer).
func (s *Server) mailAsk(send func(ctx context.Context, req core.MailAsk) error) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req mailAskRequest
		if err := web.DecodeJSON(w, r, web.PublicBodyLimit, &req); err != nil {
			return err
		}
		if req.Email == "" {
			return core.InvalidFields("adminapi.mailAsk", core.FieldError{Field: "email", Detail: "is required"})
		}
		if err := send(r.Context(), core.MailAsk{Provider: web.Param(r, "provider"), Email: req.Email, ClientAddr: s.clientAddr(r)}); err != nil {
			return err
		}
		return web.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "message": "If the address has an account, a mail is on its way."})
	}
}

// resetPage handles GET /auth/providers/{provider}/password-reset?token=: a
// form for the new password.
func (s *Server) resetPage(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	if token == "" {
		return web.WritePage(w, http.StatusBadRequest, web.Page{Title: "Choose a new password", Message: "This link is incomplete.", Error: true})
	}
	return web.WritePage(w, http.StatusOK, web.Page{Title: "Choose a new password", Message: "Between 8 and 256 characters.",
		Form: true, Action: r.URL.Path + "/confirm", Token: token, Password: true, Button: "Set my password"})
}

// confirmReset handles POST /auth/providers/{provider}/password-reset/confirm:
// {token, password}; the new password ends every session. 204 for JSON, a page
// for the form.
func (s *Server) confirmReset(w http.ResponseWriter, r *http.Request) error {
	const title = "Choose a new password"
	token, password, form, err := s.readTokenPassword(w, r)
	if err == nil {
		err = s.svc.ResetPassword(r.Context(), web.Param(r, "provider"), token, password)
	}
	if err != nil {
		if form && core.KindOf(err) == core.Invalid {
			// Let the user try again with the same link.
			web.WriteError(w, r, err, func(w http.ResponseWriter, _ *http.Request, f web.Failure) {
				msg := f.Detail
				if len(f.Fields) > 0 {
					msg = f.Fields[0].Detail
				}
				_ = web.WritePage(w, f.Status, web.Page{Title: title, Message: "The password " + strings.TrimPrefix(msg, "password: ") + ".", Error: true,
					Form: true, Action: r.URL.Path, Token: token, Password: true, Button: "Set my password"})
			})
			return nil
		}
		return s.pageOr(w, r, form, title, err)
	}
	if form {
		return web.WritePage(w, http.StatusOK, web.Page{Title: title, Message: "Your password is set. You can now log in with it."})
	}
	return web.NoContent(w)
}

// identityView is an identity as the APIs show it.
type identityView struct {
	Provider        string `json:"provider"`
	ProviderSubject string `json:"providerSubject"`
	Email           string `json:"email,omitempty"`
	EmailVerified   bool   `json:"emailVerified"`
	Username        string `json:"username,omitempty"`
	DisplayName     string `json:"displayName,omitempty"`
	AvatarURL       string `json:"avatarUrl,omitempty"`
	LinkedAt        string `json:"linkedAt"`
}

func newIdentityView(i core.Identity) identityView {
	return identityView{Provider: i.Provider, ProviderSubject: i.Subject, Email: i.Email, EmailVerified: i.EmailVerified,
		Username: i.Username, DisplayName: i.DisplayName, AvatarURL: i.AvatarURL, LinkedAt: formatTime(i.LinkedAt)}
}

// listIdentities handles GET /users/{id}/identities.
func (s *Server) listIdentities(w http.ResponseWriter, r *http.Request) error {
	ids, err := s.svc.Identities(r.Context(), web.Param(r, "id"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string][]identityView{"identities": mapSlice(ids, newIdentityView)})
}
