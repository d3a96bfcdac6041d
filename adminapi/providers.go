package adminapi

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/adminapi/web"
	"github.com/gatehouse/gatehouse/core"
)

//go:embed pages/page.html
var pageFS embed.FS

var pageTmpl = template.Must(template.ParseFS(pageFS, "pages/page.html"))

// page is what the one HTML template shows: a message, or a form that POSTs the
// token of a mail link (so a mail scanner that fetches the link spends nothing).
type page struct {
	Title, Message string
	Error          bool
	Form           bool
	Action, Token  string
	Password       bool // the form asks for a new password
	Button         string
}

// writePage answers an HTML page that no cache keeps, no frame holds, and whose
// URL (holding a token) no Referer carries away.
func writePage(w http.ResponseWriter, status int, p page) error {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, p) // a failed write means the client went away
	return nil
}

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
		return writePage(w, http.StatusBadRequest, page{Title: "Verify your email address", Message: "This link is incomplete.", Error: true})
	}
	return writePage(w, http.StatusOK, page{Title: "Verify your email address", Message: "Confirm that this address is yours.",
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
		return writePage(w, http.StatusOK, page{Title: title, Message: "Your email address is verified. You can now log in."})
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
	web.WriteError(w, r, err, func(w http.ResponseWriter, _ *http.Request, f web.Failure) {
		msg := f.Detail
		if len(f.Fields) > 0 {
			msg = f.Fields[0].Detail
		}
		if f.Kind == core.Internal || msg == "" {
			msg = "Something went wrong. Please try again later."
		}
		_ = writePage(w, f.Status, page{Title: title, Message: msg, Error: true})
	})
	return nil
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
		return writePage(w, http.StatusBadRequest, page{Title: "Choose a new password", Message: "This link is incomplete.", Error: true})
	}
	return writePage(w, http.StatusOK, page{Title: "Choose a new password", Message: "Between 8 and 256 characters.",
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
				_ = writePage(w, f.Status, page{Title: title, Message: "The password " + strings.TrimPrefix(msg, "password: ") + ".", Error: true,
					Form: true, Action: r.URL.Path, Token: token, Password: true, Button: "Set my password"})
			})
			return nil
		}
		return s.pageOr(w, r, form, title, err)
	}
	if form {
		return writePage(w, http.StatusOK, page{Title: title, Message: "Your password is set. You can now log in with it."})
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
