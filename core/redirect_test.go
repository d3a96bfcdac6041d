package core_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

// redirectFake is an in-process redirect identity provider (and integration)
// that holds no flow state either: AuthURL encodes the request in the URL,
// and a code is issued for a challenge and nonce, as a real provider does.
type redirectFake struct {
	name string
	caps []string

	mu       sync.Mutex
	codes    map[string]fakeGrant // code → what it was issued for
	next     core.Identity        // the identity the next authorization signs in
	password map[string]string    // identifier → password (password_check)
	refresh  int                  // Refresh calls
	revoked  []string
	down     bool
	now      func() time.Time // the service's clock, for token expiries
}

type fakeGrant struct {
	challenge, nonce, redirectURI string
	id                            core.Identity
}

func newRedirectFake(name string, caps ...string) *redirectFake {
	if caps == nil {
		caps = []string{core.CapRedirect}
	}
	return &redirectFake{name: name, caps: caps, codes: map[string]fakeGrant{}, password: map[string]string{}}
}

func (f *redirectFake) Describe(context.Context) (core.PluginInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return core.PluginInfo{}, core.Errorf(core.Unavailable, "fake", "plugin %s is not running", f.name)
	}
	return core.PluginInfo{Name: f.name, Kind: core.KindIdentityProvider, Capabilities: f.caps}, nil
}

func (f *redirectFake) AuthURL(_ context.Context, r core.AuthURLRequest) (string, error) {
	q := url.Values{"state": {r.State}, "code_challenge": {r.CodeChallenge}, "nonce": {r.Nonce}, "redirect_uri": {r.RedirectURI}}
	if r.LoginHint != "" {
		q.Set("login_hint", r.LoginHint)
	}
	return "https://idp.test/authorize?" + q.Encode(), nil
}

// authorize is the user consenting at the provider: a code for the flow of
// authURL, signing in as f.next.
func (f *redirectFake) authorize(t *testing.T, authURL string) (state, code string) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	code = core.NewSecret("code-", 16)
	f.codes[code] = fakeGrant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri"), id: f.next}
	return q.Get("state"), code
}

func (f *redirectFake) grant(r core.ExchangeRequest) (fakeGrant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.codes[r.Code]
	delete(f.codes, r.Code)
	sum := sha256.Sum256([]byte(r.CodeVerifier))
	switch {
	case !ok:
		return fakeGrant{}, core.Errorf(core.Unauthorized, "fake", "the authorization code was refused")
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		return fakeGrant{}, core.Errorf(core.Unauthorized, "fake", "PKCE verifier does not match")
	case r.Nonce != g.nonce || r.RedirectURI != g.redirectURI:
		return fakeGrant{}, core.Errorf(core.Unauthorized, "fake", "nonce or redirect URI differs")
	}
	return g, nil
}

func (f *redirectFake) Exchange(_ context.Context, r core.ExchangeRequest) (core.Identity, error) {
	g, err := f.grant(r)
	return g.id, err
}

func (f *redirectFake) CheckPassword(_ context.Context, identifier, password string) (core.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pw, ok := f.password[identifier]; !ok || pw != password {
		return core.Identity{}, core.Errorf(core.Unauthorized, "fake", "wrong password")
	}
	return core.Identity{Subject: "uid=" + identifier, Username: identifier, Email: identifier + "@corp.example", EmailVerified: true}, nil
}

func (f *redirectFake) SendVerification(context.Context, core.MailRequest) error {
	return core.Errorf(core.NotFound, "fake", "unsupported")
}
func (f *redirectFake) ConfirmVerification(context.Context, string) (core.MailSubject, error) {
	return core.MailSubject{}, core.Errorf(core.NotFound, "fake", "unsupported")
}
func (f *redirectFake) SendPasswordReset(context.Context, core.MailRequest) error {
	return core.Errorf(core.NotFound, "fake", "unsupported")
}
func (f *redirectFake) ConfirmPasswordReset(context.Context, string) (core.MailSubject, error) {
	return core.MailSubject{}, core.Errorf(core.NotFound, "fake", "unsupported")
}

// integrationFake is the same provider's integration side.
type integrationFake struct{ *redirectFake }

func (f integrationFake) Exchange(_ context.Context, r core.ExchangeRequest) (core.IntegrationAccount, core.IntegrationTokens, error) {
	g, err := f.grant(r)
	if err != nil {
		return core.IntegrationAccount{}, core.IntegrationTokens{}, err
	}
	return core.IntegrationAccount{UserIdentifier: g.id.Email, DisplayName: g.id.DisplayName, Scopes: []string{"drive"}},
		core.IntegrationTokens{AccessToken: "at-1-" + g.id.Subject, RefreshToken: "rt-" + g.id.Subject, TokenType: "Bearer", ExpiresAt: f.now().Add(time.Hour)}, nil
}

func (f integrationFake) Refresh(_ context.Context, refreshToken string) (core.IntegrationTokens, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(f.revoked, refreshToken) {
		return core.IntegrationTokens{}, core.Errorf(core.Unauthorized, "fake", "refresh token revoked")
	}
	f.refresh++
	return core.IntegrationTokens{AccessToken: "at-refreshed", TokenType: "Bearer", ExpiresAt: f.now().Add(time.Hour)}, nil
}

func (f integrationFake) Revoke(_ context.Context, t core.IntegrationTokens) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return core.Errorf(core.Unavailable, "fake", "down")
	}
	f.revoked = append(f.revoked, t.RefreshToken)
	return nil
}

// clock is a settable clock for the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

const appReturn = "https://app.example.test/signed-in"

type redirectEnv struct {
	*svcEnv
	idp   *redirectFake
	clock *clock
}

func newRedirectEnv(t *testing.T, o svcOptions) *redirectEnv {
	idp := newRedirectFake("acme", core.CapRedirect, core.CapPasswordCheck)
	c := &clock{t: time.Now().UTC()}
	idp.now = c.now
	o.providers = map[string]core.IdentityProvider{"acme": idp}
	o.integrations = map[string]core.Integration{"acme": integrationFake{idp}}
	o.now = c.now
	o.redirectURIs = []string{appReturn}
	return &redirectEnv{svcEnv: newSvcEnv(t, o), idp: idp, clock: c}
}

// signIn runs a whole sign-in as id, from the browser's cookie browser, and
// returns where the browser lands (or the error of the callback).
func (e *redirectEnv) signIn(id core.Identity, browser string) (string, error) {
	e.t.Helper()
	e.idp.mu.Lock()
	e.idp.next = id
	e.idp.mu.Unlock()
	fs, err := e.svc.StartSignIn(e.t.Context(), core.SignInStart{Provider: "acme", RedirectURI: appReturn, AppState: "app-xyz", Browser: browser})
	if err != nil {
		e.t.Fatalf("StartSignIn: %v", err)
	}
	state, code := e.idp.authorize(e.t, fs.URL)
	return e.svc.FinishRedirect(e.t.Context(), core.CallbackRequest{Provider: "acme", State: state, Code: code, Browser: fs.Browser})
}

// loginWith redeems the code of a landing URL.
func (e *redirectEnv) loginWith(landing string) (core.NewSession, error) {
	e.t.Helper()
	u, err := url.Parse(landing)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.Login(e.t.Context(), core.LoginRequest{Provider: "acme", Code: u.Query().Get("code")})
}

func TestRedirectSignInCreatesUserAndSession(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	id := core.Identity{Subject: "sub-1", Email: "Ada@Example.test", EmailVerified: true, Username: "ada", GivenName: "Ada", FamilyName: "Lovelace"}
	landing, err := e.signIn(id, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(landing, appReturn+"?") {
		t.Fatalf("landing %q, want the app's redirect URI", landing)
	}
	q, _ := url.Parse(landing)
	if q.Query().Get("state") != "app-xyz" || q.Query().Get("code") == "" {
		t.Fatalf("landing %q: want the app's state back and a code", landing)
	}
	ns, err := e.loginWith(landing)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.ResolveUser(t.Context(), ns.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "ada" || u.Email != "Ada@example.test" || !u.EmailVerified || u.Props["firstname"] != "Ada" || u.Props["lastname"] != "Lovelace" {
		t.Errorf("user %+v", u)
	}
	if len(u.Identities) != 1 || u.Identities[0].Provider != "acme" || u.Identities[0].Subject != "sub-1" || u.Identities[0].LinkedAt.IsZero() {
		t.Errorf("identities %+v", u.Identities)
	}
	p, err := e.svc.Verify(t.Context(), core.Presented{Scheme: core.SchemeBearer, Secret: ns.Token})
	if err != nil || p.UserID != u.ID {
		t.Fatalf("the session does not verify: %v %+v", err, p)
	}
	// The code is single-use.
	if _, err := e.loginWith(landing); core.KindOf(err) != core.Unauthorized {
		t.Errorf("a replayed code: %v, want Unauthorized", err)
	}
	// The same person again: the same user, no second one.
	landing2, err := e.signIn(id, "")
	if err != nil {
		t.Fatal(err)
	}
	ns2, err := e.loginWith(landing2)
	if err != nil || ns2.UserID != u.ID {
		t.Fatalf("second sign-in: %v, user %s want %s", err, ns2.UserID, u.ID)
	}
}

func TestRedirectStateRules(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	e.idp.next = core.Identity{Subject: "sub-2", Email: "b@example.test", EmailVerified: true}
	ctx := t.Context()
	start := func() (core.FlowStart, string, string) {
		fs, err := e.svc.StartSignIn(ctx, core.SignInStart{Provider: "acme", RedirectURI: appReturn})
		if err != nil {
			t.Fatal(err)
		}
		state, code := e.idp.authorize(t, fs.URL)
		return fs, state, code
	}
	finish := func(provider, state, code, browser string) error {
		_, err := e.svc.FinishRedirect(ctx, core.CallbackRequest{Provider: provider, State: state, Code: code, Browser: browser})
		return err
	}
	fs, state, code := start()
	// Another browser (no cookie, or another one) cannot use the flow, and
	// does not spoil it for its own browser.
	for _, browser := range []string{"", core.NewSecret("", 32)} {
		if err := finish("acme", state, code, browser); core.KindOf(err) != core.Malformed {
			t.Errorf("browser %q: %v, want Malformed", browser, err)
		}
	}
	if err := finish("email", state, code, fs.Browser); core.KindOf(err) != core.Malformed && core.KindOf(err) != core.NotFound {
		t.Errorf("another provider's callback: %v", err)
	}
	if err := finish("acme", state, code, fs.Browser); err != nil {
		t.Fatalf("the right browser: %v", err)
	}
	if err := finish("acme", state, code, fs.Browser); core.KindOf(err) != core.Malformed {
		t.Errorf("a replayed state: %v, want Malformed", err)
	}
	if err := finish("acme", "forged-state", code, fs.Browser); core.KindOf(err) != core.Malformed {
		t.Errorf("a forged state: %v, want Malformed", err)
	}
	// Expired: ten minutes later.
	fs, state, code = start()
	e.clock.add(core.FlowTTL + time.Second)
	if err := finish("acme", state, code, fs.Browser); core.KindOf(err) != core.Malformed {
		t.Errorf("an expired state: %v, want Malformed", err)
	}
	// A code the app does not redeem within a minute is dead.
	fs, state, code = start()
	loc, err := e.svc.FinishRedirect(ctx, core.CallbackRequest{Provider: "acme", State: state, Code: code, Browser: fs.Browser})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.add(core.LoginCodeTTL + time.Second)
	if _, err := e.loginWith(loc); core.KindOf(err) != core.Unauthorized {
		t.Errorf("an expired code: %v, want Unauthorized", err)
	}
}

func TestRedirectReturnAddressAllowList(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	for _, uri := range []string{"", "https://evil.example/cb", appReturn + "/more", appReturn + "#frag", "javascript:alert(1)", "/relative"} {
		_, err := e.svc.StartSignIn(t.Context(), core.SignInStart{Provider: "acme", RedirectURI: uri})
		if core.KindOf(err) != core.Malformed || len(core.FieldsOf(err)) != 1 || core.FieldsOf(err)[0].Field != "redirect_uri" {
			t.Errorf("redirect_uri %q: %v, want Malformed naming redirect_uri", uri, err)
		}
	}
	// An active app's redirectUri is allowed, exactly; a deactivated app's is not.
	owner := e.user("owner")
	app := e.app(owner, "shop")
	const shop = "https://shop.example.test/auth/done"
	if _, err := e.svc.StartSignIn(t.Context(), core.SignInStart{Provider: "acme", RedirectURI: shop}); core.KindOf(err) != core.Malformed {
		t.Errorf("before the app has it: %v", err)
	}
	if _, err := e.store.UpdateApp(t.Context(), app.ID, func(a *core.App) error { a.RedirectURI = shop; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.StartSignIn(t.Context(), core.SignInStart{Provider: "acme", RedirectURI: shop}); err != nil {
		t.Errorf("an app's redirectUri: %v", err)
	}
	if _, err := e.svc.StartSignIn(t.Context(), core.SignInStart{Provider: "acme", RedirectURI: shop + "?x=1"}); core.KindOf(err) != core.Malformed {
		t.Errorf("an app's redirectUri with more: %v", err)
	}
	if _, err := e.store.UpdateApp(t.Context(), app.ID, func(a *core.App) error { a.IsActive = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.StartSignIn(t.Context(), core.SignInStart{Provider: "acme", RedirectURI: shop}); core.KindOf(err) != core.Malformed {
		t.Errorf("a deactivated app's redirectUri: %v", err)
	}
	if _, err := e.svc.StartSignIn(t.Context(), core.SignInStart{Provider: "nope", RedirectURI: appReturn}); core.KindOf(err) != core.NotFound {
		t.Errorf("unknown provider: %v", err)
	}
	if _, err := e.svc.StartSignIn(t.Context(), core.SignInStart{Provider: "email", RedirectURI: appReturn}); core.KindOf(err) != core.NotFound {
		t.Errorf("a provider without redirects: %v", err)
	}
}

func TestRedirectConsentDeniedCreatesNothing(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	fs, err := e.svc.StartSignIn(t.Context(), core.SignInStart{Provider: "acme", RedirectURI: appReturn, AppState: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	state, _ := e.idp.authorize(t, fs.URL)
	_, err = e.svc.FinishRedirect(t.Context(), core.CallbackRequest{Provider: "acme", State: state, Error: "access_denied", Browser: fs.Browser})
	var ce *core.CallbackError
	if !errors.As(err, &ce) || ce.Location != appReturn+"?error=access_denied&state=s1" {
		t.Fatalf("denied: %v, want a redirect with error=access_denied", err)
	}
	page, err := e.svc.ListUsers(t.Context(), core.ListOptions{Count: 10})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("users after a refused consent: %v %d", err, len(page.Items))
	}
}

func TestRedirectLinksByVerifiedEmailOnly(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	ctx := t.Context()
	owner, err := e.svc.CreateUser(ctx, core.Fields{"username": "grace", "email": "grace@example.test", "emailVerified": true, "firstname": "F", "lastname": "L"}, core.NativeUsers)
	if err != nil {
		t.Fatal(err)
	}
	// Unverified at the provider: a user of its own, without the address.
	loc, err := e.signIn(core.Identity{Subject: "u-1", Email: "grace@example.test", EmailVerified: false, Username: "imposter"}, "")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := e.loginWith(loc)
	if err != nil {
		t.Fatal(err)
	}
	if ns.UserID == owner.ID {
		t.Fatal("an unverified email linked to the existing user")
	}
	other, _ := e.svc.ResolveUser(ctx, ns.UserID)
	if other.Email != "" || other.Username != "imposter" {
		t.Errorf("the new user: %+v", other)
	}
	// Verified: linked to the owner, who keeps its username.
	loc, err = e.signIn(core.Identity{Subject: "v-1", Email: "GRACE@example.test", EmailVerified: true, Username: "gh-grace"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if ns, err = e.loginWith(loc); err != nil || ns.UserID != owner.ID {
		t.Fatalf("verified email: %v, user %s want %s", err, ns.UserID, owner.ID)
	}
	ids, _ := e.svc.Identities(ctx, owner.ID)
	if len(ids) != 1 || ids[0].Subject != "v-1" {
		t.Errorf("owner's identities %+v", ids)
	}
}

func TestRedirectReplacesPendingSignupAndHonoursNoEmailLink(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{noEmailLink: []string{"acme"}})
	ctx := t.Context()
	// linkByEmail false: a verified address of an existing user stays its
	// owner's; the sign-in gets a user of its own.
	owner, err := e.svc.CreateUser(ctx, core.Fields{"username": "hopper", "email": "hopper@example.test", "emailVerified": true, "firstname": "F", "lastname": "L"}, core.NativeUsers)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := e.signIn(core.Identity{Subject: "h-1", Email: "hopper@example.test", EmailVerified: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := e.loginWith(loc)
	if err != nil || ns.UserID == owner.ID {
		t.Fatalf("linkByEmail false still linked: %v", err)
	}
	// A pending (never verified) email sign-up of the address is replaced:
	// whoever set its password never proved the address.
	pending, err := e.svc.Signup(ctx, core.SignupRequest{Provider: "email", Fields: core.Fields{"email": "victim@example.test", "password": "attacker-pass-1"}})
	if err != nil {
		t.Fatal(err)
	}
	loc, err = e.signIn(core.Identity{Subject: "vic-1", Email: "victim@example.test", EmailVerified: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	if ns, err = e.loginWith(loc); err != nil || ns.UserID == pending.ID {
		t.Fatalf("pending sign-up: %v (user %s, pending %s)", err, ns.UserID, pending.ID)
	}
	if _, err := e.svc.ResolveUser(ctx, pending.ID); core.KindOf(err) != core.NotFound {
		t.Errorf("the pending sign-up is still there: %v", err)
	}
	if _, err := e.svc.Login(ctx, core.LoginRequest{Provider: "email", Identifier: "victim@example.test", Secret: "attacker-pass-1"}); err == nil {
		t.Error("the attacker's password still opens the account")
	}
}

func TestRedirectDeactivatedUserIsDenied(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	loc, err := e.signIn(core.Identity{Subject: "d-1", Email: "d@example.test", EmailVerified: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := e.loginWith(loc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetUserStatus(t.Context(), ns.UserID, false); err != nil {
		t.Fatal(err)
	}
	_, err = e.signIn(core.Identity{Subject: "d-1", Email: "d@example.test", EmailVerified: true}, "")
	var ce *core.CallbackError
	if !errors.As(err, &ce) || !strings.Contains(ce.Location, "error=access_denied") {
		t.Fatalf("deactivated: %v, want a redirect with error=access_denied", err)
	}
}

func TestRedirectUsernameFallsBackToEmail(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	e.user("taken")
	loc, err := e.signIn(core.Identity{Subject: "t-1", Email: "t@example.test", EmailVerified: true, Username: "taken"}, "")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := e.loginWith(loc)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := e.svc.ResolveUser(t.Context(), ns.UserID)
	if u.Username != "t@example.test" {
		t.Errorf("username %q, want the email when the login is taken", u.Username)
	}
	// Neither a login nor an email: provider-subject.
	loc, err = e.signIn(core.Identity{Subject: "42"}, "")
	if err != nil {
		t.Fatal(err)
	}
	ns, err = e.loginWith(loc)
	if err != nil {
		t.Fatal(err)
	}
	u, _ = e.svc.ResolveUser(t.Context(), ns.UserID)
	if u.Username != "acme-42" {
		t.Errorf("username %q, want acme-42", u.Username)
	}
}

func TestPasswordCheckingProviderLogsIn(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	e.idp.password["lin"] = "correct horse"
	ctx := t.Context()
	ns, err := e.svc.Login(ctx, core.LoginRequest{Provider: "acme", Identifier: "lin", Secret: "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := e.svc.ResolveUser(ctx, ns.UserID)
	if u.Username != "lin" || len(u.Identities) != 1 || u.Identities[0].Subject != "uid=lin" {
		t.Errorf("user %+v", u)
	}
	if _, err := e.svc.Login(ctx, core.LoginRequest{Provider: "acme", Identifier: "lin", Secret: "wrong"}); core.KindOf(err) != core.Unauthorized {
		t.Errorf("wrong password: %v, want Unauthorized", err)
	}
	_, err = e.svc.Login(ctx, core.LoginRequest{Provider: "nope", Identifier: "lin", Secret: "x"})
	if core.KindOf(err) != core.Invalid || core.FieldsOf(err)[0].Field != "provider" {
		t.Errorf("unknown provider: %v, want Invalid naming provider", err)
	}
	e.idp.caps = []string{core.CapRedirect}
	_, err = e.svc.Login(ctx, core.LoginRequest{Provider: "acme", Identifier: "lin", Secret: "correct horse"})
	if core.KindOf(err) != core.Invalid || !strings.Contains(core.MessageOf(err), "does not check passwords") {
		t.Errorf("a provider without password_check: %v", err)
	}
}

// link runs a whole integration link for u as id and returns where the
// browser lands.
func (e *redirectEnv) link(u core.User, id core.Identity) (string, error) {
	e.t.Helper()
	e.idp.mu.Lock()
	e.idp.next = id
	e.idp.mu.Unlock()
	authURL, err := e.svc.StartLink(e.t.Context(), core.LinkStart{UserID: u.ID, Connector: "acme", CallbackURL: appReturn})
	if err != nil {
		e.t.Fatalf("StartLink: %v", err)
	}
	state, code := e.idp.authorize(e.t, authURL)
	// The browser that follows the URL has no flow cookie: links are bound to the user.
	return e.svc.FinishRedirect(e.t.Context(), core.CallbackRequest{Provider: "acme", State: state, Code: code})
}

func TestLinkedAccountLifecycle(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{})
	ctx := t.Context()
	u := e.user("linker")
	loc, err := e.link(u, core.Identity{Subject: "g-1", Email: "linker@gmail.test", DisplayName: "Linker"})
	if err != nil {
		t.Fatal(err)
	}
	if loc != appReturn+"?connector=acme&user_identifier=linker%40gmail.test" {
		t.Errorf("landing %q", loc)
	}
	as, err := e.svc.LinkedAccounts(ctx, u.ID)
	if err != nil || len(as) != 1 || as[0].UserIdentifier != "linker@gmail.test" || as[0].DisplayName != "Linker" ||
		!slices.Equal(as[0].Scopes, []string{"drive"}) || as[0].ConnectedAt.IsZero() {
		t.Fatalf("accounts %+v, %v", as, err)
	}
	if strings.Contains(as[0].Tokens, "at-1-") || !strings.HasPrefix(as[0].Tokens, "aesgcm:") {
		t.Errorf("tokens stored as %q, want a sealed blob", as[0].Tokens)
	}
	at, err := e.svc.LinkedToken(ctx, u.ID, "acme", "linker@gmail.test")
	if err != nil || at.Token != "at-1-g-1" || e.idp.refresh != 0 {
		t.Fatalf("LinkedToken: %+v %v (refreshes %d)", at, err, e.idp.refresh)
	}
	// An hour later the token has expired: refreshed, and stored again.
	e.clock.add(time.Hour)
	if at, err = e.svc.LinkedToken(ctx, u.ID, "acme", "linker@gmail.test"); err != nil || at.Token != "at-refreshed" || e.idp.refresh != 1 {
		t.Fatalf("after expiry: %+v %v (refreshes %d)", at, err, e.idp.refresh)
	}
	if at, err = e.svc.LinkedToken(ctx, u.ID, "acme", "linker@gmail.test"); err != nil || at.Token != "at-refreshed" || e.idp.refresh != 1 {
		t.Fatalf("the refreshed token is not kept: %+v %v (refreshes %d)", at, err, e.idp.refresh)
	}
	// Unlink revokes at the service and removes the account.
	if err := e.svc.Unlink(ctx, u.ID, "acme", "linker@gmail.test"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(e.idp.revoked, "rt-g-1") {
		t.Errorf("revoked %v, want the refresh token", e.idp.revoked)
	}
	if _, err := e.svc.LinkedToken(ctx, u.ID, "acme", "linker@gmail.test"); core.KindOf(err) != core.NotFound {
		t.Errorf("token of an unlinked account: %v", err)
	}
	// A link flow is the user's: a deleted user's flow links nothing.
	gone := e.user("gone")
	authURL, err := e.svc.StartLink(ctx, core.LinkStart{UserID: gone.ID, Connector: "acme", CallbackURL: appReturn})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteUser(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	state, code := e.idp.authorize(t, authURL)
	_, err = e.svc.FinishRedirect(ctx, core.CallbackRequest{Provider: "acme", State: state, Code: code})
	var ce *core.CallbackError
	if !errors.As(err, &ce) || !strings.Contains(ce.Location, "error=access_denied") {
		t.Errorf("a deleted user's link: %v", err)
	}
	// Callback URLs follow the allow-list.
	if _, err := e.svc.StartLink(ctx, core.LinkStart{UserID: u.ID, Connector: "acme", CallbackURL: "https://evil.example/"}); core.KindOf(err) != core.Malformed {
		t.Errorf("unlisted callback_url: %v", err)
	}
}

func TestLinkedTokensSurviveKeyRotation(t *testing.T) {
	key := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	oldKey, newKey := "old:"+key(), "new:"+key()
	ring := func(spec string) *core.Keyring {
		k, err := core.ParseKeyring(spec)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	e := newRedirectEnv(t, svcOptions{keyring: ring(oldKey)})
	ctx := t.Context()
	u := e.user("rotator")
	for _, sub := range []string{"r-1", "r-2"} {
		if _, err := e.link(u, core.Identity{Subject: sub, Email: sub + "@gmail.test"}); err != nil {
			t.Fatal(err)
		}
	}
	// The same store under a rotated ring: the new key seals, the old one
	// still opens.
	rotated := core.NewService(e.store, core.Options{Keyring: ring(newKey + "," + oldKey), Providers: e.providers, Now: e.clock.now})
	if at, err := rotated.LinkedToken(ctx, u.ID, "acme", "r-1@gmail.test"); err != nil || at.Token != "at-1-r-1" {
		t.Fatalf("an old key's blob under the rotated ring: %+v %v", at, err)
	}
	e.clock.add(time.Hour) // expired: the refresh re-seals under the new key
	if _, err := rotated.LinkedToken(ctx, u.ID, "acme", "r-1@gmail.test"); err != nil {
		t.Fatal(err)
	}
	as, _ := rotated.LinkedAccounts(ctx, u.ID)
	if !strings.HasPrefix(as[0].Tokens, "aesgcm:new:") || !strings.HasPrefix(as[1].Tokens, "aesgcm:old:") {
		t.Errorf("blobs %q, %q: want the refreshed one under new, the other still under old", as[0].Tokens[:12], as[1].Tokens[:12])
	}
	// Once the old key is dropped, what it alone sealed is refused by name.
	dropped := core.NewService(e.store, core.Options{Keyring: ring(newKey), Providers: e.providers, Now: e.clock.now})
	if at, err := dropped.LinkedToken(ctx, u.ID, "acme", "r-1@gmail.test"); err != nil || at.Token != "at-refreshed" {
		t.Errorf("the re-sealed account under the new key only: %+v %v", at, err)
	}
	if _, err := dropped.LinkedToken(ctx, u.ID, "acme", "r-2@gmail.test"); core.KindOf(err) != core.Unavailable || !strings.Contains(core.MessageOf(err), `"old"`) {
		t.Errorf("a blob of a dropped key: %v, want Unavailable naming the key", err)
	}
}

func TestFlowsPerAddressAreLimited(t *testing.T) {
	e := newRedirectEnv(t, svcOptions{policy: func(p *core.Policy) { p.FlowsPerAddress = core.Rate{Count: 3, Per: time.Minute} }})
	start := func(addr string) error {
		_, err := e.svc.StartSignIn(t.Context(), core.SignInStart{Provider: "acme", RedirectURI: appReturn, ClientAddr: addr})
		return err
	}
	for i := range 3 {
		if err := start("198.51.100.7"); err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
	}
	if err := start("198.51.100.7"); core.KindOf(err) != core.RateLimited || core.RetryAfterOf(err) <= 0 {
		t.Errorf("a fourth start within the minute: %v, want RateLimited with Retry-After", err)
	}
	u := e.user("linker")
	if _, err := e.svc.StartLink(t.Context(), core.LinkStart{UserID: u.ID, ClientAddr: "198.51.100.7", Connector: "acme", CallbackURL: appReturn}); core.KindOf(err) != core.RateLimited {
		t.Errorf("a link from the same address: %v, want RateLimited", err)
	}
	if err := start("198.51.100.8"); err != nil {
		t.Errorf("another address: %v", err)
	}
}
