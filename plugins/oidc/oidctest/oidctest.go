// Package oidctest is a fake OpenID Connect provider on httptest that speaks
// the real protocol: discovery, an authorization endpoint that redirects back
// with a code (or asks a person, with Options.Interactive), a token endpoint
// that authenticates the client (client_secret_basic and client_secret_post)
// and checks the single-use code, its redirect URI and the PKCE S256
// verifier, refresh tokens, RS256-signed ID tokens with a real RSA-2048 key
// published as a JWKS, userinfo and RFC 7009 revocation.
//
// It imports no "testing", so that a command (gatehouse dev fake-providers)
// can serve it too. Helpers let tests provoke what real providers do rarely:
// a denied consent, expired access tokens, a failing token endpoint, a
// provider that is down, an ID token with edited claims or a forged
// signature.
package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Options configure a Server; the zero value works.
type Options struct {
	ClientID     string // default "gatehouse-test"
	ClientSecret string // default "gatehouse-test-secret"
	// RedirectURIs, when set, are the only redirect URIs /authorize accepts, as
	// a real provider's client registration; empty accepts any absolute URL.
	RedirectURIs []string
	// Interactive makes /authorize answer an HTML page with a user picker and
	// Approve / Deny buttons, for people using the fake by hand.
	Interactive bool
	// EmailInUserinfoOnly leaves email and email_verified out of ID tokens,
	// as some providers do, so clients must read them from /userinfo.
	EmailInUserinfoOnly bool
	// RotateRefreshTokens makes the refresh grant return a new refresh token
	// and revoke the old one; by default none comes back.
	RotateRefreshTokens bool
	CodeTTL             time.Duration    // default 1 minute
	TokenTTL            time.Duration    // access and ID tokens; default 1 hour
	Now                 func() time.Time // default time.Now
	// Listener, when set, is where the server listens (a fixed address for
	// people); default a free loopback port.
	Listener net.Listener
}

// User is an account at the fake provider.
type User struct {
	Subject           string
	Email             string
	EmailVerified     bool
	Name              string
	GivenName         string
	FamilyName        string
	Picture           string
	PreferredUsername string
	Deny              bool // this user refuses consent
}

// Server is the fake provider. Its methods are safe for concurrent use.
type Server struct {
	URL          string // the base URL, also the issuer
	Issuer       string
	ClientID     string
	ClientSecret string

	srv   *httptest.Server
	opts  Options
	key   *rsa.PrivateKey
	kid   string
	mu    sync.Mutex
	users []User
	codes map[string]*codeGrant
	// access and refresh map issued tokens to their grants.
	access     map[string]*tokenGrant
	refresh    map[string]*tokenGrant
	revoked    []string
	denyNext   bool
	down       bool
	failToken  bool
	tokenCalls int
	tamper     func(claims map[string]any)
	forge      bool
}

type codeGrant struct {
	clientID, redirectURI, challenge, nonce string
	user                                    User
	scopes                                  []string
	offline                                 bool
	expires                                 time.Time
	used                                    bool
	issued                                  []string // tokens issued for it, revoked if it is replayed
}

type tokenGrant struct {
	user    User
	scopes  []string
	expires time.Time // zero for refresh tokens
	revoked bool
	parent  string // an access token's refresh token, revoked with it
}

// keys are made once per process: RSA key generation is slow under the race
// detector, and every fake signing with its own issuer keeps tokens apart.
var (
	keyOnce            sync.Once
	signKey, forgedKey *rsa.PrivateKey
)

func keysOnce() {
	keyOnce.Do(func() {
		var err error
		if signKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic("oidctest: " + err.Error())
		}
		if forgedKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic("oidctest: " + err.Error())
		}
	})
}

// New starts a fake provider on a loopback port; Close stops it.
func New(opts Options) *Server {
	keysOnce()
	if opts.ClientID == "" {
		opts.ClientID = "gatehouse-test"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "gatehouse-test-secret"
	}
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = time.Minute
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	thumb, err := (&jose.JSONWebKey{Key: &signKey.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		panic("oidctest: " + err.Error())
	}
	s := &Server{
		ClientID: opts.ClientID, ClientSecret: opts.ClientSecret,
		opts: opts, key: signKey, kid: base64.RawURLEncoding.EncodeToString(thumb[:8]),
		codes: map[string]*codeGrant{}, access: map[string]*tokenGrant{}, refresh: map[string]*tokenGrant{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /authorize", s.decide)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /jwks", s.jwks)
	mux.HandleFunc("GET /userinfo", s.userinfo)
	mux.HandleFunc("POST /userinfo", s.userinfo)
	mux.HandleFunc("POST /revoke", s.revoke)
	s.srv = httptest.NewUnstartedServer(s.whenUp(mux))
	if opts.Listener != nil {
		_ = s.srv.Listener.Close()
		s.srv.Listener = opts.Listener
	}
	s.srv.Start()
	s.URL, s.Issuer = s.srv.URL, s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddUser adds an account; the first one added is the default user.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = append(s.users, u)
}

// DenyNext makes the next authorization refuse consent (error=access_denied).
func (s *Server) DenyNext() { s.set(func() { s.denyNext = true }) }

// SetDown makes every endpoint answer 503 (true) or serve again (false).
func (s *Server) SetDown(down bool) { s.set(func() { s.down = down }) }

// FailTokenEndpoint makes the token endpoint answer 503 (true) or work again.
func (s *Server) FailTokenEndpoint(fail bool) { s.set(func() { s.failToken = fail }) }

// ExpireAccessTokens makes every access token issued so far expired, so a
// client has to refresh.
func (s *Server) ExpireAccessTokens() {
	s.set(func() {
		past := s.opts.Now().Add(-time.Second)
		for _, g := range s.access {
			g.expires = past
		}
	})
}

// TamperNextIDToken lets fn edit the claims of the next ID token before it
// is signed (an expired exp, another aud or iss, a wrong nonce).
func (s *Server) TamperNextIDToken(fn func(claims map[string]any)) { s.set(func() { s.tamper = fn }) }

// ForgeNextIDToken signs the next ID token with a key the JWKS does not hold.
func (s *Server) ForgeNextIDToken() { s.set(func() { s.forge = true }) }

// Revoked returns the tokens revoked through /revoke, in order.
func (s *Server) Revoked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.revoked)
}

// TokenCalls returns how many requests reached the token endpoint.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// ValidAccessToken reports whether token is an access token this server
// issued that is neither expired nor revoked.
func (s *Server) ValidAccessToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.liveAccess(token)
	return ok
}

func (s *Server) set(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
}

func (s *Server) whenUp(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down {
			http.Error(w, "the fake provider is down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

var scopesSupported = []string{"openid", "email", "profile", "offline_access"}

func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                     s.Issuer,
		"authorization_endpoint":                     s.URL + "/authorize",
		"token_endpoint":                             s.URL + "/token",
		"jwks_uri":                                   s.URL + "/jwks",
		"userinfo_endpoint":                          s.URL + "/userinfo",
		"revocation_endpoint":                        s.URL + "/revoke",
		"response_types_supported":                   []string{"code"},
		"subject_types_supported":                    []string{"public"},
		"id_token_signing_alg_values_supported":      []string{"RS256"},
		"scopes_supported":                           scopesSupported,
		"token_endpoint_auth_methods_supported":      []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":           []string{"S256"},
		"grant_types_supported":                      []string{"authorization_code", "refresh_token"},
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "nonce", "email", "email_verified",
			"name", "given_name", "family_name", "picture", "preferred_username"},
	})
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: string(jose.RS256), Use: "sig"},
	}})
}

// authRequest is a checked authorization request.
type authRequest struct {
	redirect    *url.URL
	state       string
	challenge   string
	nonce       string
	loginHint   string
	scopes      []string
	offline     bool
	rawQuery    url.Values
	errCode     string // a check that failed after the redirect URI was trusted
	errDetail   string
	clientError string // a failure that must not redirect
}

func (s *Server) checkAuthRequest(q url.Values) authRequest {
	a := authRequest{state: q.Get("state"), challenge: q.Get("code_challenge"), nonce: q.Get("nonce"),
		loginHint: q.Get("login_hint"), scopes: strings.Fields(q.Get("scope")), rawQuery: q}
	if q.Get("client_id") != s.ClientID {
		a.clientError = "unknown client_id"
		return a
	}
	ru := q.Get("redirect_uri")
	u, err := url.Parse(ru)
	switch {
	case ru == "" || err != nil || !u.IsAbs():
		a.clientError = "redirect_uri is missing or not an absolute URL"
		return a
	case len(s.opts.RedirectURIs) > 0 && !slices.Contains(s.opts.RedirectURIs, ru):
		a.clientError = "redirect_uri is not registered for this client"
		return a
	}
	a.redirect = u
	a.offline = slices.Contains(a.scopes, "offline_access") || q.Get("access_type") == "offline"
	switch {
	case q.Get("response_type") != "code":
		a.errCode, a.errDetail = "unsupported_response_type", "response_type must be code"
	case a.challenge == "" || q.Get("code_challenge_method") != "S256":
		a.errCode, a.errDetail = "invalid_request", "PKCE is required: code_challenge with code_challenge_method S256"
	case len(a.scopes) == 0:
		a.errCode, a.errDetail = "invalid_scope", "scope is required"
	}
	for _, sc := range a.scopes {
		if a.errCode == "" && !slices.Contains(scopesSupported, sc) {
			a.errCode, a.errDetail = "invalid_scope", "unknown scope "+sc
		}
	}
	return a
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	a := s.checkAuthRequest(r.URL.Query())
	if a.clientError != "" {
		http.Error(w, a.clientError, http.StatusBadRequest) // never redirect to an unchecked URI
		return
	}
	if a.errCode != "" {
		redirect(w, r, a.redirect, url.Values{"error": {a.errCode}, "error_description": {a.errDetail}, "state": {a.state}})
		return
	}
	s.mu.Lock()
	users := slices.Clone(s.users)
	s.mu.Unlock()
	if s.opts.Interactive {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		params := map[string]string{}
		for k := range a.rawQuery {
			params[k] = a.rawQuery.Get(k)
		}
		_ = consentPage.Execute(w, map[string]any{"Users": users, "Params": params, "Hint": a.loginHint})
		return
	}
	u, ok := pickUser(users, a.loginHint)
	if !ok {
		redirect(w, r, a.redirect, url.Values{"error": {"access_denied"}, "error_description": {"no such user"}, "state": {a.state}})
		return
	}
	s.finish(w, r, a, u, false)
}

// decide handles the consent page's form.
func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	a := s.checkAuthRequest(r.PostForm)
	if a.clientError != "" || a.errCode != "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	users := slices.Clone(s.users)
	s.mu.Unlock()
	u, ok := pickUser(users, r.PostForm.Get("user"))
	if !ok {
		http.Error(w, "no such user", http.StatusBadRequest)
		return
	}
	s.finish(w, r, a, u, r.PostForm.Get("decision") != "approve")
}

func (s *Server) finish(w http.ResponseWriter, r *http.Request, a authRequest, u User, deny bool) {
	s.mu.Lock()
	deny = deny || u.Deny || s.denyNext
	s.denyNext = false
	var code string
	if !deny {
		code = randomToken()
		s.codes[code] = &codeGrant{clientID: s.ClientID, redirectURI: a.redirect.String(), challenge: a.challenge,
			nonce: a.nonce, user: u, scopes: a.scopes, offline: a.offline, expires: s.opts.Now().Add(s.opts.CodeTTL)}
	}
	s.mu.Unlock()
	if deny {
		redirect(w, r, a.redirect, url.Values{"error": {"access_denied"}, "state": {a.state}})
		return
	}
	redirect(w, r, a.redirect, url.Values{"code": {code}, "state": {a.state}})
}

// pickUser returns the user named by hint (an email or a subject), or the
// first user when hint is empty.
func pickUser(users []User, hint string) (User, bool) {
	for _, u := range users {
		if hint != "" && (strings.EqualFold(u.Email, hint) || u.Subject == hint) {
			return u, true
		}
	}
	if hint == "" && len(users) > 0 {
		return users[0], true
	}
	return User{}, false
}

func redirect(w http.ResponseWriter, r *http.Request, to *url.URL, params url.Values) {
	u := *to
	q := u.Query()
	for k, v := range params {
		if v[0] != "" {
			q[k] = v
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// oauthError writes an RFC 6749 error answer.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oidctest"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// authenticateClient checks client_secret_basic or client_secret_post; using
// both at once is refused, as RFC 6749 says.
func (s *Server) authenticateClient(w http.ResponseWriter, r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "bad client credentials encoding")
			return false
		}
		if r.PostForm.Has("client_secret") {
			oauthError(w, http.StatusBadRequest, "invalid_request", "more than one client authentication method")
			return false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return false
	}
	return true
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenCalls++
	fail := s.failToken
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	if fail {
		http.Error(w, "the token endpoint is failing", http.StatusServiceUnavailable)
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	if !s.authenticateClient(w, r) {
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		s.codeGrant(w, r)
	case "refresh_token":
		s.refreshGrant(w, r)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func (s *Server) codeGrant(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.codes[f.Get("code")]
	switch {
	case !ok:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown code")
		return
	case g.used:
		// A replayed code revokes what it gave (RFC 6749, section 4.1.2).
		for _, t := range g.issued {
			s.revokeLocked(t)
		}
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code was already used")
		return
	}
	g.used = true
	switch {
	case !s.opts.Now().Before(g.expires):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code expired")
	case f.Get("redirect_uri") != g.redirectURI:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
	case f.Get("code_verifier") == "" || s256(f.Get("code_verifier")) != g.challenge:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
	default:
		var rt string
		if g.offline {
			rt = randomToken()
			s.refresh[rt] = &tokenGrant{user: g.user, scopes: g.scopes}
		}
		resp, at := s.issueLocked(g.user, g.scopes, g.nonce, rt)
		g.issued = append(g.issued, at)
		if rt != "" {
			g.issued = append(g.issued, rt)
			resp["refresh_token"] = rt
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := r.PostForm.Get("refresh_token")
	g, ok := s.refresh[rt]
	if !ok || g.revoked {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is unknown or revoked")
		return
	}
	parent := rt
	if s.opts.RotateRefreshTokens {
		g.revoked = true
		parent = randomToken()
		s.refresh[parent] = &tokenGrant{user: g.user, scopes: g.scopes}
	}
	resp, _ := s.issueLocked(g.user, g.scopes, "", parent)
	if s.opts.RotateRefreshTokens {
		resp["refresh_token"] = parent
	}
	writeJSON(w, http.StatusOK, resp)
}

// issueLocked issues an access token (and an ID token for openid) and
// returns the token response; s.mu is held.
func (s *Server) issueLocked(u User, scopes []string, nonce, refresh string) (map[string]any, string) {
	now := s.opts.Now()
	at := randomToken()
	s.access[at] = &tokenGrant{user: u, scopes: scopes, expires: now.Add(s.opts.TokenTTL), parent: refresh}
	resp := map[string]any{"access_token": at, "token_type": "Bearer",
		"expires_in": int(s.opts.TokenTTL.Seconds()), "scope": strings.Join(scopes, " ")}
	if slices.Contains(scopes, "openid") {
		claims := s.claims(u, scopes, !s.opts.EmailInUserinfoOnly)
		claims["iss"], claims["aud"] = s.Issuer, s.ClientID
		claims["iat"], claims["exp"] = now.Unix(), now.Add(s.opts.TokenTTL).Unix()
		if nonce != "" {
			claims["nonce"] = nonce
		}
		if s.tamper != nil {
			s.tamper(claims)
			s.tamper = nil
		}
		key := s.key
		if s.forge {
			key, s.forge = forgedKey, false
		}
		resp["id_token"] = s.sign(key, claims)
	}
	return resp, at
}

// claims returns a user's claims the scopes allow.
func (s *Server) claims(u User, scopes []string, email bool) map[string]any {
	c := map[string]any{"sub": u.Subject}
	if email && slices.Contains(scopes, "email") && u.Email != "" {
		c["email"], c["email_verified"] = u.Email, u.EmailVerified
	}
	if slices.Contains(scopes, "profile") {
		for k, v := range map[string]string{"name": u.Name, "given_name": u.GivenName, "family_name": u.FamilyName,
			"picture": u.Picture, "preferred_username": u.PreferredUsername} {
			if v != "" {
				c[k] = v
			}
		}
	}
	return c
}

func (s *Server) sign(key *rsa.PrivateKey, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: s.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic("oidctest: " + err.Error())
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic("oidctest: " + err.Error())
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic("oidctest: " + err.Error())
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		panic("oidctest: " + err.Error())
	}
	return out
}

// liveAccess returns an access token's grant if it is valid; s.mu is held.
func (s *Server) liveAccess(token string) (*tokenGrant, bool) {
	g, ok := s.access[token]
	if !ok || g.revoked || !s.opts.Now().Before(g.expires) {
		return nil, false
	}
	if p, ok := s.refresh[g.parent]; ok && p.revoked {
		return nil, false
	}
	return g, true
}

func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	g, live := s.liveAccess(token)
	s.mu.Unlock()
	if !ok || !live {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	writeJSON(w, http.StatusOK, s.claims(g.user, g.scopes, true))
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	if !s.authenticateClient(w, r) {
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	s.mu.Lock()
	s.revokeLocked(token)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK) // unknown tokens too, as RFC 7009 says
}

// revokeLocked revokes an access or refresh token and records it; s.mu is held.
func (s *Server) revokeLocked(token string) {
	s.revoked = append(s.revoked, token)
	if g, ok := s.access[token]; ok {
		g.revoked = true
	}
	if g, ok := s.refresh[token]; ok {
		g.revoked = true // its access tokens die with it (liveAccess)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomToken() string { return rand.Text() }

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Users returns the accounts, in the order they were added.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.users)
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Fake OpenID Connect provider</title></head>
<body><h1>Sign in to the fake provider</h1>
<form method="post" action="/authorize">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<fieldset><legend>Sign in as</legend>
{{range $i, $u := .Users}}<label><input type="radio" name="user" value="{{$u.Subject}}"{{if or (and (eq $.Hint "") (eq $i 0)) (eq $.Hint $u.Email) (eq $.Hint $u.Subject)}} checked{{end}}>
{{$u.Name}} &lt;{{$u.Email}}&gt;{{if not $u.EmailVerified}} (email not verified){{end}}</label><br>
{{else}}<p>No users: add some with AddUser.</p>
{{end}}</fieldset>
<button name="decision" value="approve">Approve</button>
<button name="decision" value="deny">Deny</button>
</form></body></html>
`))
