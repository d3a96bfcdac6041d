package core

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Redirect sign-ins (Google, GitHub, any OpenID Connect issuer) and the
// linking of integration accounts share one flow: the host keeps every piece
// of its state (the OAuth state, the PKCE verifier, the nonce, where the
// browser goes back), single-use and short-lived, in its own key-value
// namespace; the plugin only builds the authorization URL and redeems the
// code. So a plugin restarted between the two halves of a flow is harmless.

// The lifetimes of a flow and of the code a sign-in hands to the app.
const (
	FlowTTL      = 10 * time.Minute
	LoginCodeTTL = 60 * time.Second
)

// The host's own key-value namespaces in the store. They start with '_',
// which no plugin name can, so they never meet a plugin's.
const (
	kvFlows      = "_flow"
	kvLoginCodes = "_logincode"
)

// Flow purposes.
const (
	flowSignIn = "signin"
	flowLink   = "link"
)

// maxAppState bounds the state an app passes through a sign-in.
const maxAppState = 512

// flowRecord is a flow in progress, kept under the hash of its state.
type flowRecord struct {
	Purpose   string    `json:"purpose"`
	Provider  string    `json:"provider"`
	ReturnTo  string    `json:"returnTo"`           // the app's redirect URI or callback URL
	AppState  string    `json:"appState,omitempty"` // echoed to ReturnTo
	Verifier  string    `json:"verifier"`           // PKCE; the plugin sees only its challenge
	Nonce     string    `json:"nonce"`
	Browser   string    `json:"browser,omitempty"` // SHA-256 of the browser's flow cookie (sign-ins)
	UserID    string    `json:"userId,omitempty"`  // who links an account (links)
	ExpiresAt time.Time `json:"expiresAt"`
}

// loginCode is what a sign-in's single-use code stands for.
type loginCode struct {
	UserID    string    `json:"userId"`
	Provider  string    `json:"provider"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// SignInStart asks for a redirect sign-in (GET /auth/providers/{name}/start).
type SignInStart struct {
	Provider    string
	ClientAddr  string
	RedirectURI string // where the browser goes back: an allowed redirect URI
	AppState    string // the app's own state, returned to RedirectURI as "state"; may be empty
	LoginHint   string // passed to the provider; may be empty
	Browser     string // the browser's flow cookie, if it sent one
}

// FlowStart is where to send the browser, and the flow cookie it must keep.
type FlowStart struct {
	URL     string // the provider's authorization URL
	Browser string // the value of the browser's flow cookie (the one it sent, when usable)
}

// CallbackRequest is the provider's answer, as the browser brings it back to
// GET /auth/providers/{name}/callback.
type CallbackRequest struct {
	Provider string
	State    string
	Code     string
	Error    string // the provider's error code (access_denied when consent was refused)
	Browser  string // the browser's flow cookie
}

// redirectCallback is the host's callback URL for provider: the one to
// register at the provider, for sign-ins and integrations alike.
func (s *Service) redirectCallback(provider string) string {
	return s.publicURL + "/auth/providers/" + url.PathEscape(provider) + "/callback"
}

// PublicURL is the public listener's external URL.
func (s *Service) PublicURL() string { return s.publicURL }

// redirectProvider returns the named identity provider if it signs users in
// by redirect.
func (s *Service) redirectProvider(ctx context.Context, op, name string) (IdentityProvider, error) {
	return s.providerWith(ctx, op, name, CapRedirect, "does not sign users in by redirect")
}

// providerWith returns the named identity provider if it has capability cap.
func (s *Service) providerWith(ctx context.Context, op, name, cap, lacks string) (IdentityProvider, error) {
	var p IdentityProvider
	ok := false
	if s.providers != nil {
		p, ok = s.providers.IdentityProvider(name)
	}
	if !ok {
		return nil, Errorf(NotFound, op, "no identity provider %q", name)
	}
	info, err := p.Describe(ctx) // also tells at once whether the plugin is up
	if err != nil {
		return nil, err
	}
	if !slices.Contains(info.Capabilities, cap) {
		return nil, Errorf(NotFound, op, "identity provider %q %s", name, lacks)
	}
	return p, nil
}

// integration returns the named integration.
func (s *Service) integration(ctx context.Context, op, name string) (Integration, error) {
	var p Integration
	ok := false
	if s.providers != nil {
		p, ok = s.providers.Integration(name)
	}
	if !ok {
		return nil, Errorf(NotFound, op, "no integration %q", name)
	}
	if _, err := p.Describe(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// checkReturnTo checks that uri may receive a browser coming back from a
// provider: an absolute URL without a fragment, listed exactly in
// Options.RedirectURIs or as the redirectUri of an active app. Malformed (a
// 400: the request names a place it may not), naming field, otherwise: never
// an open redirect.
func (s *Service) checkReturnTo(ctx context.Context, op, field, uri string) error {
	bad := func(detail string) error {
		return &Error{Kind: Malformed, Op: op, Msg: field + ": " + detail, Fields: []FieldError{{Field: field, Detail: detail}}}
	}
	if uri == "" {
		return bad("is required")
	}
	if len(uri) > maxURILen {
		return bad("is longer than 2048 bytes")
	}
	u, err := url.Parse(uri)
	switch {
	case err != nil || !u.IsAbs() || u.Opaque != "":
		return bad("must be an absolute URL")
	case u.Fragment != "" || strings.Contains(uri, "#"):
		return bad("must not have a fragment")
	case !safeScheme(u.Scheme):
		return bad("has a scheme that is never allowed")
	}
	if slices.Contains(s.redirectURIs, uri) {
		return nil
	}
	apps, err := s.store.AppsByRedirectURI(ctx, uri)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(apps, App.Active) {
		return nil
	}
	return bad("is not an allowed redirect URI: register it as an app's redirectUri or in auth.redirectURIs")
}

// safeScheme refuses the schemes that run code in the browser.
func safeScheme(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "javascript", "data", "vbscript", "file", "blob":
		return false
	}
	return true
}

// StartSignIn begins a redirect sign-in: it checks the redirect URI against
// the allow-list, keeps the flow's state for FlowTTL, bound to the browser's
// flow cookie and to the provider, and returns the provider's authorization
// URL. NotFound for a provider that does not sign in by redirect; Malformed,
// naming the field, for a redirect URI not allowed.
func (s *Service) StartSignIn(ctx context.Context, req SignInStart) (FlowStart, error) {
	const op = "core.StartSignIn"
	if len(req.AppState) > maxAppState {
		return FlowStart{}, InvalidFields(op, FieldError{Field: "state", Detail: "is longer than 512 bytes"})
	}
	if len(req.LoginHint) > 256 {
		return FlowStart{}, InvalidFields(op, FieldError{Field: "login_hint", Detail: "is longer than 256 bytes"})
	}
	p, err := s.redirectProvider(ctx, op, req.Provider)
	if err != nil {
		return FlowStart{}, err
	}
	if err := s.checkReturnTo(ctx, op, "redirect_uri", req.RedirectURI); err != nil {
		return FlowStart{}, err
	}
	if err := s.countFlow(ctx, op, req.ClientAddr); err != nil {
		return FlowStart{}, err
	}
	browser := req.Browser
	if !validBrowserCookie(browser) {
		browser = NewSecret("", 32)
	}
	f := flowRecord{Purpose: flowSignIn, Provider: req.Provider, ReturnTo: req.RedirectURI, AppState: req.AppState,
		Browser: HashSHA256(browser)}
	u, err := s.startFlow(ctx, op, f, req.LoginHint, p.AuthURL)
	if err != nil {
		return FlowStart{}, err
	}
	return FlowStart{URL: u, Browser: browser}, nil
}

// countFlow counts a flow started from addr against Policy.FlowsPerAddress:
// each keeps a record for FlowTTL, so a client may not start them without
// bound.
func (s *Service) countFlow(ctx context.Context, op, addr string) error {
	return s.checkRates(ctx, op, []string{"flow:addr:" + addr}, []Rate{s.policy.FlowsPerAddress}, 1)
}

// validBrowserCookie reports whether v has the form of a flow cookie this
// host made (43 base62 characters), so a browser keeps one cookie for
// several flows.
func validBrowserCookie(v string) bool {
	if len(v) != 43 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// startFlow completes f with a fresh state, PKCE verifier and nonce, keeps it
// for FlowTTL, and asks authURL (the plugin's) where to send the browser.
func (s *Service) startFlow(ctx context.Context, op string, f flowRecord, loginHint string,
	authURL func(context.Context, AuthURLRequest) (string, error)) (string, error) {
	state := NewSecret("", 32)
	f.Verifier, f.Nonce = NewSecret("", 32), NewSecret("", 24)
	f.ExpiresAt = s.Now().Add(FlowTTL)
	if err := s.keepOnce(ctx, op, kvFlows, state, f, FlowTTL); err != nil {
		return "", err
	}
	drop := func() { _, _ = s.store.PluginKV(kvFlows).Delete(context.WithoutCancel(ctx), onceKey(state)) }
	sum := sha256.Sum256([]byte(f.Verifier))
	u, err := authURL(ctx, AuthURLRequest{
		State: state, CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]),
		RedirectURI: s.redirectCallback(f.Provider), Nonce: f.Nonce, LoginHint: loginHint,
	})
	if err != nil {
		drop()
		return "", err
	}
	if pu, perr := url.Parse(u); perr != nil || !pu.IsAbs() || (pu.Scheme != "https" && pu.Scheme != "http") {
		drop()
		return "", Errorf(Unavailable, op, "identity provider %q answered an authorization URL that is not http(s)", f.Provider)
	}
	return u, nil
}

// onceKey is the key of a single-use record (a flow, a login code): the hash
// of its secret, so the store never holds a secret a browser could present.
func onceKey(secret string) string { return strings.TrimPrefix(HashSHA256(secret), sha256Prefix) }

// keepOnce keeps v, JSON, under the hash of secret in the host's namespace
// ns for ttl; the record carries its own expiry too.
func (s *Service) keepOnce(ctx context.Context, op, ns, secret string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return E(Internal, op, err)
	}
	return s.store.PluginKV(ns).Set(ctx, onceKey(secret), b, ttl)
}

// takeOnce redeems the record kept under secret in ns, once: it decodes it
// into v and, when valid (which reads v) accepts it, deletes it. It reports
// false for no record, one valid refuses (left for its rightful owner), or
// one another caller took first.
func (s *Service) takeOnce(ctx context.Context, ns, secret string, v any, valid func() bool) (bool, error) {
	kv := s.store.PluginKV(ns)
	key := onceKey(secret)
	b, found, err := kv.Get(ctx, key)
	if err != nil || !found || json.Unmarshal(b, v) != nil || !valid() {
		return false, err
	}
	return kv.Delete(ctx, key)
}

// errBadState is the one answer to a state that is missing, unknown, used,
// expired, of another provider or of another browser: nothing tells them apart.
func errBadState(op string) error {
	return Errorf(Malformed, op, "this sign-in link is invalid, was already used or has expired: start again")
}

// takeFlow redeems the flow of state, once: a replay, an expired or unknown
// state, another provider's flow or, for a sign-in, another browser's is
// errBadState.
func (s *Service) takeFlow(ctx context.Context, op, provider, state, browser string) (flowRecord, error) {
	if state == "" || len(state) > 128 {
		return flowRecord{}, errBadState(op)
	}
	var f flowRecord
	took, err := s.takeOnce(ctx, kvFlows, state, &f, func() bool {
		// A sign-in of another browser is left to the browser it belongs to.
		return f.Provider == provider && s.Now().Before(f.ExpiresAt) &&
			(f.Purpose != flowSignIn || browser != "" && MatchesSHA256(f.Browser, browser))
	})
	if err != nil {
		return flowRecord{}, err
	}
	if !took {
		return flowRecord{}, errBadState(op)
	}
	return f, nil
}

// withQuery returns uri with params added to its query.
func withQuery(uri string, params url.Values) string {
	u, err := url.Parse(uri)
	if err != nil { // checked when the flow started
		return uri
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// CallbackError is a failure the browser is sent back with: to the flow's
// return address with ?error=Code, since the flow itself was genuine.
type CallbackError struct {
	Location string // where to send the browser
	Code     string // the OAuth error code sent ("access_denied", "temporarily_unavailable", "server_error")
	Err      error  // why, for the log
}

func (e *CallbackError) Error() string { return "redirect callback: " + e.Code + ": " + e.Err.Error() }
func (e *CallbackError) Unwrap() error { return e.Err }

// failFlow answers a genuine flow that cannot complete: the browser goes
// back to the app with an OAuth error code chosen from err's kind.
func failFlow(f flowRecord, err error) error {
	code := "server_error"
	switch KindOf(err) {
	case Unauthorized, Forbidden:
		code = "access_denied"
	case Unavailable, RateLimited:
		code = "temporarily_unavailable"
	}
	return &CallbackError{Location: flowReturn(f, url.Values{"error": {code}}), Code: code, Err: err}
}

// flowReturn is f's return address with params and the app's state.
func flowReturn(f flowRecord, params url.Values) string {
	if f.AppState != "" {
		params.Set("state", f.AppState)
	}
	return withQuery(f.ReturnTo, params)
}

// FinishRedirect completes a flow at the host's callback and returns where
// to send the browser. A state that is missing, replayed, expired, forged,
// of another provider, or of a sign-in whose browser lacks the flow cookie is
// Malformed (a 400: the browser is not sent anywhere). A genuine flow that
// fails — consent refused at the provider, a deactivated user, a provider
// that is down — is a *CallbackError carrying the return address with
// ?error=. A sign-in returns the redirect URI with ?code=, a single-use code
// that the app exchanges at POST /auth/tokens within LoginCodeTTL; a link
// stores the account and returns the callback URL with ?connector= and
// ?user_identifier=.
func (s *Service) FinishRedirect(ctx context.Context, req CallbackRequest) (string, error) {
	const op = "core.FinishRedirect"
	f, err := s.takeFlow(ctx, op, req.Provider, req.State, req.Browser)
	if err != nil {
		return "", err
	}
	if req.Error != "" || req.Code == "" {
		return "", failFlow(f, Errorf(Forbidden, op, "the provider did not grant access"))
	}
	xr := ExchangeRequest{Code: req.Code, CodeVerifier: f.Verifier, RedirectURI: s.redirectCallback(f.Provider), Nonce: f.Nonce}
	if f.Purpose == flowLink {
		a, err := s.finishLink(ctx, op, f, xr)
		if err != nil {
			return "", failFlow(f, err)
		}
		return flowReturn(f, url.Values{"connector": {a.Connector}, "user_identifier": {a.UserIdentifier}}), nil
	}
	p, err := s.redirectProvider(ctx, op, f.Provider)
	if err != nil {
		return "", failFlow(f, err)
	}
	id, err := p.Exchange(ctx, xr)
	if err != nil {
		return "", failFlow(f, err)
	}
	u, err := s.userForIdentity(ctx, op, f.Provider, id)
	if err != nil {
		return "", failFlow(f, err)
	}
	code, err := s.newLoginCode(ctx, op, u.ID, f.Provider)
	if err != nil {
		return "", failFlow(f, err)
	}
	return flowReturn(f, url.Values{"code": {code}}), nil
}

// newLoginCode keeps a single-use code for LoginCodeTTL that opens a session
// of userID.
func (s *Service) newLoginCode(ctx context.Context, op, userID, provider string) (string, error) {
	code := NewSecret("", 32)
	c := loginCode{UserID: userID, Provider: provider, ExpiresAt: s.Now().Add(LoginCodeTTL)}
	if err := s.keepOnce(ctx, op, kvLoginCodes, code, c, LoginCodeTTL); err != nil {
		return "", err
	}
	return code, nil
}

// redeemLoginCode opens the session a sign-in's code stands for, once.
// Unauthorized for an unknown, used or expired code, or another provider's.
func (s *Service) redeemLoginCode(ctx context.Context, op string, req LoginRequest) (NewSession, error) {
	bad := Errorf(Unauthorized, op, "the code is invalid, was already used or has expired")
	var c loginCode
	took, err := s.takeOnce(ctx, kvLoginCodes, req.Code, &c, func() bool {
		return c.Provider == req.Provider && s.Now().Before(c.ExpiresAt)
	})
	if err != nil {
		return NewSession{}, err
	}
	if !took {
		return NewSession{}, bad
	}
	u, err := s.store.GetUser(ctx, c.UserID)
	if KindOf(err) == NotFound {
		return NewSession{}, bad
	}
	if err != nil {
		return NewSession{}, err
	}
	if !u.IsActive {
		return NewSession{}, Errorf(Forbidden, op, "user %q is deactivated", u.Username)
	}
	return s.openSession(ctx, u, req)
}
