// Package githubtest is a fake GitHub for tests and local development: an
// OAuth app's web flow and the few REST endpoints a sign-in needs, on a
// loopback HTTP server, speaking GitHub's real protocol.
//
//	srv := githubtest.New(githubtest.Options{})
//	defer srv.Close()
//	srv.AddUser(githubtest.User{ID: 1, Login: "octocat", Name: "Mona Lisa Octocat",
//		Emails: []githubtest.Email{{Email: "octocat@example.com", Primary: true, Verified: true}}})
//	// configure the client with srv.ClientID, srv.ClientSecret, srv.AuthURL(),
//	// srv.TokenURL() and srv.APIURL()
//
// Endpoints, as on github.com (the API under /api/v3, as on GitHub Enterprise
// Server, so that clients that drop a base path are caught):
//
//	GET  /login/oauth/authorize        302 to redirect_uri with code and state, or error=access_denied
//	POST /login/oauth/access_token     authorization_code and refresh_token grants
//	GET  /api/v3/user                  the token's user
//	GET  /api/v3/user/emails           the user's addresses (scope user:email or user)
//	DELETE /api/v3/applications/{client_id}/grant   revokes the user's grant (Basic client auth)
//
// The token endpoint checks the client credentials, the code (single-use, ten
// minutes, bound to its redirect_uri) and the PKCE verifier against the S256
// challenge; it answers JSON when asked with Accept: application/json, else a
// form-encoded body, and errors with HTTP 200 and an "error" field, as GitHub
// does. It never imports "testing": a command serves it to people too.
package githubtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultClientID        = "Ov23liGatehouseTest1"
	DefaultTokenTTL        = 8 * time.Hour        // GitHub's expiring user tokens
	DefaultRefreshTokenTTL = 184 * 24 * time.Hour // about six months, as GitHub's
	CodeTTL                = 10 * time.Minute     // an authorization code's life at GitHub
	APIVersion             = "2022-11-28"         // the X-GitHub-Api-Version the API accepts
)

// Options configure a Server. The zero value is a working OAuth app that
// requires PKCE, accepts any http(s) redirect URI and issues tokens that do
// not expire.
type Options struct {
	ClientID     string // default DefaultClientID
	ClientSecret string // default: random
	// RedirectURIs, when set, are the app's registered callback URLs: an
	// authorization with another redirect_uri is sent to the first with
	// error=redirect_uri_mismatch, as GitHub does.
	RedirectURIs []string
	// OptionalPKCE accepts authorizations without a code_challenge, as GitHub
	// does. By default one is required, to catch a client that forgets it.
	OptionalPKCE bool
	// ExpiringTokens issues GitHub-App-style user tokens: ghu_ access tokens
	// that expire after TokenTTL, with ghr_ refresh tokens, and no scopes.
	ExpiringTokens  bool
	TokenTTL        time.Duration // default DefaultTokenTTL
	RefreshTokenTTL time.Duration // default DefaultRefreshTokenTTL
	// Interactive makes the authorize endpoint show a page with a user picker
	// and Approve / Deny buttons instead of approving at once: for people.
	Interactive bool
	// Listener, when set, is where the server listens; default a free
	// loopback port.
	Listener net.Listener
}

// User is a GitHub account of the fake.
type User struct {
	ID        int64 // 0: the next free id
	Login     string
	Name      string // may be empty, as on GitHub
	AvatarURL string // default: a URL on the fake
	Emails    []Email
	// PublicEmail is the address shown on the profile, the "email" of GET
	// /user; empty: null, as for most accounts.
	PublicEmail string
	// Deny makes the user refuse every authorization (error=access_denied).
	Deny bool
}

// Email is one of a user's addresses, as /user/emails lists it.
type Email struct {
	Email    string
	Primary  bool
	Verified bool
}

// Server is a running fake GitHub. Its methods are safe for concurrent use.
type Server struct {
	URL          string // http://127.0.0.1:port
	ClientID     string
	ClientSecret string

	opts Options
	srv  *httptest.Server

	mu         sync.Mutex
	offset     time.Duration // added to the real time by Advance
	users      []User
	codes      map[string]codeGrant
	access     map[string]tokenGrant
	refresh    map[string]tokenGrant
	denyNext   bool
	failStatus int
	tokenCalls int
	revoked    []string
}

type codeGrant struct {
	userID      int64
	redirectURI string
	challenge   string
	scopes      []string
	expires     time.Time
}

type tokenGrant struct {
	userID  int64
	scopes  []string
	expires time.Time // zero: never
}

// New starts a fake GitHub; Close stops it.
func New(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = randomHex(20)
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.RefreshTokenTTL <= 0 {
		opts.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	s := &Server{
		ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, opts: opts,
		codes: map[string]codeGrant{}, access: map[string]tokenGrant{}, refresh: map[string]tokenGrant{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login/oauth/authorize", s.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", s.token)
	mux.HandleFunc("GET /api/v3/user", s.user)
	mux.HandleFunc("GET /api/v3/user/emails", s.emails)
	mux.HandleFunc("DELETE /api/v3/applications/{clientID}/grant", s.deleteGrant)
	mux.HandleFunc("/api/v3/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "Not Found")
	})
	s.srv = httptest.NewUnstartedServer(s.failing(mux))
	if opts.Listener != nil {
		_ = s.srv.Listener.Close()
		s.srv.Listener = opts.Listener
	}
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AuthURL is the authorize endpoint, authURL of a client's configuration.
func (s *Server) AuthURL() string { return s.URL + "/login/oauth/authorize" }

// TokenURL is the token endpoint, tokenURL of a client's configuration.
func (s *Server) TokenURL() string { return s.URL + "/login/oauth/access_token" }

// APIURL is the REST API's base, apiURL of a client's configuration.
func (s *Server) APIURL() string { return s.URL + "/api/v3" }

// AddUser adds a user, or replaces the one with the same ID, and returns it
// with its ID and avatar filled in. The first user added is the one an
// authorization without a login picks.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == 0 {
		for _, o := range s.users {
			u.ID = max(u.ID, o.ID)
		}
		u.ID++
	}
	if u.AvatarURL == "" {
		u.AvatarURL = fmt.Sprintf("%s/avatars/u/%d", s.URL, u.ID)
	}
	u.Emails = slices.Clone(u.Emails)
	if i := slices.IndexFunc(s.users, func(o User) bool { return o.ID == u.ID }); i >= 0 {
		s.users[i] = u
	} else {
		s.users = append(s.users, u)
	}
	return u
}

// DenyNext makes the next authorization end with error=access_denied, as if
// the user clicked Cancel.
func (s *Server) DenyNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyNext = true
}

// Fail makes every endpoint answer status (a 5xx, say) until Fail(0).
func (s *Server) Fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStatus = status
}

// Advance moves the server's clock forward by d, expiring codes and tokens.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// TokenCalls returns how many requests reached the token endpoint.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// Revoked returns the logins whose grant was deleted, in order.
func (s *Server) Revoked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.revoked)
}

// now is the server's clock; s.mu is held.
func (s *Server) now() time.Time { return time.Now().Add(s.offset) }

func (s *Server) failing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		status := s.failStatus
		s.mu.Unlock()
		if status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// userByID returns the user; s.mu is held.
func (s *Server) userByID(id int64) (User, bool) {
	i := slices.IndexFunc(s.users, func(u User) bool { return u.ID == id })
	if i < 0 {
		return User{}, false
	}
	return s.users[i], true
}

// --- /login/oauth/authorize ---

var pageTmpl = template.Must(template.New("authorize").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Authorize application · fake GitHub</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">
<h1>Authorize application</h1>
<p>An application (client id <code>{{.ClientID}}</code>) asks to sign you in{{if .Scopes}}, with the scopes <code>{{.Scopes}}</code>{{end}}.</p>
<form method="post">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<p><label>Sign in as <select name="login">{{range .Users}}
<option value="{{.Login}}"{{if eq .Login $.Login}} selected{{end}}>{{.Login}}{{if .Name}} ({{.Name}}){{end}}</option>{{end}}
</select></label></p>
<p><button name="decision" value="approve">Approve</button> <button name="decision" value="deny">Deny</button></p>
</form>
</body></html>
`))

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	q := r.Form
	if q.Get("client_id") != s.ClientID {
		// GitHub shows a 404 page: an unknown client gets no redirect.
		http.Error(w, "unknown client_id", http.StatusNotFound)
		return
	}
	redirect := q.Get("redirect_uri")
	var mismatch bool
	switch {
	case len(s.opts.RedirectURIs) > 0 && redirect == "":
		redirect = s.opts.RedirectURIs[0]
	case len(s.opts.RedirectURIs) > 0 && !slices.Contains(s.opts.RedirectURIs, redirect):
		redirect, mismatch = s.opts.RedirectURIs[0], true
	case redirect == "":
		http.Error(w, "redirect_uri is required: this app has no registered callback URL", http.StatusBadRequest)
		return
	}
	if u, err := url.Parse(redirect); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		http.Error(w, "redirect_uri must be an absolute http(s) URL", http.StatusBadRequest)
		return
	}
	state := q.Get("state")
	fail := func(code, description string) {
		back := url.Values{"error": {code}, "error_description": {description},
			"error_uri": {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#" + strings.ReplaceAll(code, "_", "-")}}
		if state != "" {
			back.Set("state", state)
		}
		http.Redirect(w, r, withQuery(redirect, back), http.StatusFound)
	}
	if mismatch {
		fail("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		fail("invalid_request", "code_challenge_method given without code_challenge.")
		return
	case challenge == "" && !s.opts.OptionalPKCE:
		fail("invalid_request", "code_challenge is required (PKCE, S256).")
		return
	case challenge != "" && method != "S256":
		fail("invalid_request", "Only the S256 code_challenge_method is supported.")
		return
	case challenge != "" && !isChallenge(challenge):
		fail("invalid_request", "code_challenge must be 43 base64url characters.")
		return
	}

	s.mu.Lock()
	users := slices.Clone(s.users)
	deny := s.denyNext
	s.mu.Unlock()
	if len(users) == 0 {
		http.Error(w, "the fake GitHub has no users: add one first", http.StatusServiceUnavailable)
		return
	}
	login := q.Get("login")
	user := users[0]
	if i := slices.IndexFunc(users, func(u User) bool { return strings.EqualFold(u.Login, login) }); i >= 0 {
		user = users[i]
	}

	if s.opts.Interactive && r.Method == http.MethodGet {
		params := map[string]string{}
		for k := range q {
			if k != "login" {
				params[k] = q.Get(k)
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = pageTmpl.Execute(w, map[string]any{"ClientID": s.ClientID, "Scopes": q.Get("scope"),
			"Params": params, "Users": users, "Login": user.Login})
		return
	}
	if s.opts.Interactive && q.Get("decision") != "approve" {
		deny = true
	}
	if deny || user.Deny {
		s.mu.Lock()
		s.denyNext = false
		s.mu.Unlock()
		fail("access_denied", "The user has denied your application access.")
		return
	}

	code := randomHex(10) // GitHub's codes are 20 hex digits
	s.mu.Lock()
	s.codes[code] = codeGrant{userID: user.ID, redirectURI: q.Get("redirect_uri"), challenge: challenge,
		scopes: splitScopes(q.Get("scope")), expires: s.now().Add(CodeTTL)}
	s.mu.Unlock()
	back := url.Values{"code": {code}}
	if state != "" {
		back.Set("state", state)
	}
	http.Redirect(w, r, withQuery(redirect, back), http.StatusFound)
}

// isChallenge reports whether c is a base64url SHA-256: 43 characters.
func isChallenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// splitScopes reads a scope parameter: GitHub accepts spaces or commas.
func splitScopes(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func withQuery(base string, v url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + v.Encode()
}

// --- /login/oauth/access_token ---

// tokenError is one of GitHub's token endpoint errors, answered with HTTP 200.
type tokenError struct{ code, description string }

var (
	errClient       = tokenError{"incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect."}
	errCode         = tokenError{"bad_verification_code", "The code passed is incorrect or expired."}
	errRedirect     = tokenError{"redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application."}
	errRefresh      = tokenError{"bad_refresh_token", "The refresh token passed is incorrect or expired."}
	errGrantType    = tokenError{"unsupported_grant_type", "The grant type is not supported."}
	errUnreadable   = tokenError{"invalid_request", "The request body could not be read."}
	errNoRefreshApp = tokenError{"bad_refresh_token", "This app does not issue refresh tokens."}
)

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenCalls++
	s.mu.Unlock()
	asJSON := acceptsJSON(r.Header.Get("Accept"))
	p, err := tokenParams(r)
	if err != nil {
		writeToken(w, asJSON, errUnreadable.values())
		return
	}
	id, secret := p.Get("client_id"), p.Get("client_secret")
	if u, pw, ok := r.BasicAuth(); ok {
		id, secret = u, pw
	}
	if id != s.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		writeToken(w, asJSON, errClient.values())
		return
	}
	var answer url.Values
	switch p.Get("grant_type") {
	case "", "authorization_code":
		answer = s.redeemCode(p)
	case "refresh_token":
		answer = s.redeemRefresh(p)
	default:
		answer = errGrantType.values()
	}
	writeToken(w, asJSON, answer)
}

// tokenParams reads the token request's parameters from the query and a
// form-encoded or JSON body: GitHub takes all three.
func tokenParams(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.Form, nil
	}
	p := r.URL.Query()
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
		return nil, err
	}
	for k, v := range body {
		switch v := v.(type) {
		case string:
			p.Set(k, v)
		case float64:
			p.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	return p, nil
}

func (s *Server) redeemCode(p url.Values) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := p.Get("code")
	g, ok := s.codes[code]
	// Any redemption uses the code up, a failed one too, so a code that leaked
	// with a wrong verifier cannot be tried again.
	delete(s.codes, code)
	if !ok || !s.now().Before(g.expires) {
		return errCode.values()
	}
	if redirect := p.Get("redirect_uri"); redirect != "" && redirect != g.redirectURI ||
		redirect == "" && g.redirectURI != "" {
		return errRedirect.values()
	}
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(p.Get("code_verifier")))
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
			return errCode.values()
		}
	}
	if _, ok := s.userByID(g.userID); !ok {
		return errCode.values()
	}
	return s.issue(g.userID, g.scopes)
}

func (s *Server) redeemRefresh(p url.Values) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opts.ExpiringTokens {
		return errNoRefreshApp.values()
	}
	rt := p.Get("refresh_token")
	g, ok := s.refresh[rt]
	delete(s.refresh, rt) // refresh tokens are single-use: each refresh rotates it
	if !ok || !s.now().Before(g.expires) {
		return errRefresh.values()
	}
	return s.issue(g.userID, g.scopes)
}

// issue makes tokens for a user and returns the token answer; s.mu is held.
func (s *Server) issue(userID int64, scopes []string) url.Values {
	if s.opts.ExpiringTokens {
		access, refresh := "ghu_"+randomToken(), "ghr_"+randomToken()
		now := s.now()
		// GitHub Apps have permissions, not scopes: the answer's scope is empty.
		s.access[access] = tokenGrant{userID: userID, expires: now.Add(s.opts.TokenTTL)}
		s.refresh[refresh] = tokenGrant{userID: userID, expires: now.Add(s.opts.RefreshTokenTTL)}
		return url.Values{"access_token": {access}, "token_type": {"bearer"}, "scope": {""},
			"expires_in":               {strconv.Itoa(int(s.opts.TokenTTL / time.Second))},
			"refresh_token":            {refresh},
			"refresh_token_expires_in": {strconv.Itoa(int(s.opts.RefreshTokenTTL / time.Second))}}
	}
	access := "gho_" + randomToken()
	s.access[access] = tokenGrant{userID: userID, scopes: scopes}
	return url.Values{"access_token": {access}, "token_type": {"bearer"}, "scope": {strings.Join(scopes, ",")}}
}

func (e tokenError) values() url.Values {
	return url.Values{"error": {e.code}, "error_description": {e.description},
		"error_uri": {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#" + strings.ReplaceAll(e.code, "_", "-")}}
}

// writeToken answers the token endpoint, always with HTTP 200 as GitHub does:
// JSON when asked for, else form-encoded.
func writeToken(w http.ResponseWriter, asJSON bool, v url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	if !asJSON {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = io.WriteString(w, v.Encode())
		return
	}
	body := map[string]any{}
	for k := range v {
		val := v.Get(k)
		if n, err := strconv.Atoi(val); err == nil && strings.HasSuffix(k, "expires_in") {
			body[k] = n
		} else {
			body[k] = val
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

func acceptsJSON(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		if mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part)); mt == "application/json" {
			return true
		}
	}
	return false
}

// --- the REST API ---

// apiError answers as GitHub's API does: {"message", "documentation_url", "status"}.
func apiError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message,
		"documentation_url": "https://docs.github.com/rest", "status": strconv.Itoa(status)})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// authenticated returns the user and grant of the request's token, or
// answers 401 and returns false.
func (s *Server) authenticated(w http.ResponseWriter, r *http.Request) (User, tokenGrant, bool) {
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && v != APIVersion {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("API version %s is not supported.", v))
		return User{}, tokenGrant{}, false
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if token == "" || !strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token") {
		apiError(w, http.StatusUnauthorized, "Requires authentication")
		return User{}, tokenGrant{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.access[token]
	if ok && !g.expires.IsZero() && !s.now().Before(g.expires) {
		ok = false
	}
	u, found := s.userByID(g.userID)
	if !ok || !found {
		apiError(w, http.StatusUnauthorized, "Bad credentials")
		return User{}, tokenGrant{}, false
	}
	if !s.opts.ExpiringTokens {
		w.Header().Set("X-OAuth-Scopes", strings.Join(g.scopes, ", "))
	}
	return u, g, true
}

func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	u, _, ok := s.authenticated(w, r)
	if !ok {
		return
	}
	var name, email any
	if u.Name != "" {
		name = u.Name
	}
	if u.PublicEmail != "" {
		email = u.PublicEmail
	}
	writeJSON(w, map[string]any{
		"login": u.Login, "id": u.ID, "node_id": fmt.Sprintf("U_fake%d", u.ID),
		"avatar_url": u.AvatarURL, "html_url": s.URL + "/" + u.Login, "type": "User",
		"site_admin": false, "name": name, "company": nil, "blog": "", "location": nil,
		"email": email, "bio": nil, "public_repos": 0, "followers": 0, "following": 0,
		"created_at": "2011-01-25T18:44:36Z", "updated_at": "2026-01-01T00:00:00Z",
	})
}

func (s *Server) emails(w http.ResponseWriter, r *http.Request) {
	u, g, ok := s.authenticated(w, r)
	if !ok {
		return
	}
	if !s.opts.ExpiringTokens && !slices.Contains(g.scopes, "user:email") && !slices.Contains(g.scopes, "user") {
		apiError(w, http.StatusNotFound, "Not Found") // what GitHub answers a token without the scope
		return
	}
	list := make([]map[string]any, 0, len(u.Emails))
	for _, e := range u.Emails {
		visibility := any(nil)
		if e.Primary {
			visibility = "private"
		}
		list = append(list, map[string]any{"email": e.Email, "primary": e.Primary,
			"verified": e.Verified, "visibility": visibility})
	}
	writeJSON(w, list)
}

func (s *Server) deleteGrant(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		apiError(w, http.StatusUnauthorized, "Requires authentication")
		return
	}
	if id != s.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		apiError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	if r.PathValue("clientID") != id {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || body.AccessToken == "" {
		apiError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.access[body.AccessToken]
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	// The grant goes, and every token of the app for that user with it.
	for t, o := range s.access {
		if o.userID == g.userID {
			delete(s.access, t)
		}
	}
	for t, o := range s.refresh {
		if o.userID == g.userID {
			delete(s.refresh, t)
		}
	}
	if u, ok := s.userByID(g.userID); ok {
		s.revoked = append(s.revoked, u.Login)
	}
	w.WriteHeader(http.StatusNoContent)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomToken returns 36 base62-ish characters, the body of a GitHub token.
func randomToken() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 36)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
