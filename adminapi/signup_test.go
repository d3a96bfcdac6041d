package adminapi

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// signup posts a sign-up and returns the recorder.
func (e *env) signup(body string) int {
	e.t.Helper()
	return e.pub("POST", "/auth/providers/email/signup", body, "X-Forwarded-For", "203.0.113.9").Code
}

// TestSignupVerifyLogin: sign-up → mail → the link's page → its button → login →
// /verify; before verification the password login is refused.
func TestSignupVerifyLogin(t *testing.T) {
	e := newEnv(t)
	w := e.pub("POST", "/auth/providers/email/signup", `{"email":"Rosa@Example.ORG","password":"correct horse","firstname":"Rosa"}`)
	if w.Code != 201 {
		t.Fatalf("signup: %d %s", w.Code, w.Body)
	}
	u := decode(t, w.Body.Bytes())
	if u["username"] != "Rosa@example.org" || u["email"] != "Rosa@example.org" || u["emailVerified"] != false || u["firstname"] != "Rosa" {
		t.Errorf("signed-up user: %v", u)
	}
	mails := e.mail.sent()
	if len(mails) != 1 || !strings.HasPrefix(mails[0].Link, "https://auth.example.test/auth/providers/email/verify?token=") {
		t.Fatalf("verification mails: %+v", mails)
	}
	if code, _ := e.login("email", "rosa@example.org", "correct horse"); code != 403 {
		t.Errorf("login before verification: %d, want 403", code)
	}
	ids := e.must(200, "GET", "/users/"+u["id"].(string)+"/identities", "")["identities"].([]any)
	if id := ids[0].(map[string]any); len(ids) != 1 || id["provider"] != "email" || id["providerSubject"] != "Rosa@example.org" || id["emailVerified"] != false {
		t.Errorf("identities: %v", ids)
	}

	// The link opens a page whose form POSTs the token: fetching the link spends nothing.
	link, _ := url.Parse(mails[0].Link)
	token := link.Query().Get("token")
	pg := e.pub("GET", link.RequestURI(), "")
	if pg.Code != 200 || !strings.Contains(pg.Body.String(), `name="token" value="`+token+`"`) || !strings.Contains(pg.Body.String(), `method="post"`) {
		t.Fatalf("verify page: %d %s", pg.Code, pg.Body)
	}
	for _, h := range []string{"Content-Security-Policy", "Referrer-Policy", "X-Frame-Options"} {
		if pg.Header().Get(h) == "" {
			t.Errorf("verify page without %s", h)
		}
	}
	done := e.pub("POST", link.Path, "token="+url.QueryEscape(token), "Content-Type", "application/x-www-form-urlencoded")
	if done.Code != 200 || !strings.Contains(done.Body.String(), "verified") {
		t.Fatalf("form post: %d %s", done.Code, done.Body)
	}
	again := e.pub("POST", link.Path, `{"token":"`+token+`"}`)
	if again.Code != 404 {
		t.Errorf("a spent token: %d", again.Code)
	}
	code, session := e.login("email", "rosa@example.org", "correct horse")
	if code != 200 || e.verifyBearer(session) != 200 {
		t.Fatalf("login after verification: %d", code)
	}
	me := decode(t, e.pub("GET", "/users/me", "", "Authorization", "Bearer "+session).Body.Bytes())
	if me["emailVerified"] != true || len(me["identities"].([]any)) != 1 || me["identities"].([]any)[0].(map[string]any)["emailVerified"] != true {
		t.Errorf("/users/me after verification: %v", me)
	}
}

// TestSignupRefusals: bad bodies, a taken email, the model's x-signup list, the
// sign-up rate, and a provider that is down (503, and no user left behind).
func TestSignupRefusals(t *testing.T) {
	e := newEnv(t)
	if code := e.signup(`{"email":"sam@example.org","password":"correct horse"}`); code != 201 {
		t.Fatal(code)
	}
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"email":"SAM@example.org","password":"correct horse"}`, 409},
		{`{"email":"new@example.org"}`, 422},
		{`{"email":"new@example.org","password":"short"}`, 422},
		{`{"email":"not an email","password":"correct horse"}`, 422},
		{`{"email":"new@example.org","password":"correct horse","isActive":false}`, 422},
		{`{"email":"new@example.org","password":"correct horse","emailVerified":true}`, 422},
		{`{"email":"new@example.org","password":"correct horse","nickname":"x"}`, 422},
		{`{"email":"new@example.org","password":"correct horse","username":"chosen"}`, 422},
		{`{"email":"new@example.org","password":"correct horse","lastname":7}`, 422},
		{`not json`, 400},
	} {
		if code := e.signup(c.body); code != c.want {
			t.Errorf("%s: %d, want %d", c.body, code, c.want)
		}
	}
	if w := e.pub("POST", "/auth/providers/nope/signup", `{"email":"x@example.org","password":"correct horse"}`); w.Code != 404 {
		t.Errorf("unknown provider: %d", w.Code)
	}
	e.mail.setDown(true)
	if code := e.signup(`{"email":"down@example.org","password":"correct horse"}`); code != 503 {
		t.Errorf("provider down: %d", code)
	}
	e.mail.setDown(false)
	e.must(404, "GET", "/users/down@example.org", "")
	if code := e.signup(`{"email":"down@example.org","password":"correct horse"}`); code != 201 {
		t.Errorf("provider back: %d", code)
	}
	var last int
	for i := range 25 {
		last = e.signup(fmt.Sprintf(`{"email":"flood%d@example.org","password":"correct horse"}`, i))
	}
	if last != 429 {
		t.Errorf("sign-ups beyond the rate: %d", last)
	}
}

// TestPasswordReset: the same answer for known and unknown addresses; the link's
// page; a bad password keeps the token; the new password ends old sessions.
func TestPasswordReset(t *testing.T) {
	e := newEnv(t)
	e.newUser("tess", "old password")
	_, oldSession := e.login("email", "tess", "old password")
	known := e.pub("POST", "/auth/providers/email/password-reset", `{"email":"TESS@example.com"}`)
	unknown := e.pub("POST", "/auth/providers/email/password-reset", `{"email":"nobody@example.com"}`)
	if known.Code != 202 || unknown.Code != 202 || known.Body.String() != unknown.Body.String() {
		t.Fatalf("answers differ: %d %s / %d %s", known.Code, known.Body, unknown.Code, unknown.Body)
	}
	if err := e.svc.Drain(t.Context()); err != nil { // the mail goes out after the answer
		t.Fatal(err)
	}
	token := e.mail.lastToken("reset", "tess@example.com")
	if token == "" || len(e.mail.sent()) != 1 {
		t.Fatalf("reset mails: %+v", e.mail.sent())
	}
	pg := e.pub("GET", "/auth/providers/email/password-reset?token="+token, "")
	if pg.Code != 200 || !strings.Contains(pg.Body.String(), `type="password"`) || !strings.Contains(pg.Body.String(), `/password-reset/confirm`) {
		t.Fatalf("reset page: %d %s", pg.Code, pg.Body)
	}
	if w := e.pub("POST", "/auth/providers/email/password-reset/confirm", `{"token":"`+token+`","password":"short"}`); w.Code != 422 {
		t.Fatalf("weak password: %d", w.Code)
	}
	form := url.Values{"token": {token}, "password": {"new password!"}, "confirm": {"new password?"}}.Encode()
	if w := e.pub("POST", "/auth/providers/email/password-reset/confirm", form, "Content-Type", "application/x-www-form-urlencoded"); w.Code != 422 || !strings.Contains(w.Body.String(), "differ") {
		t.Fatalf("mismatched form: %d %s", w.Code, w.Body)
	}
	if w := e.pub("POST", "/auth/providers/email/password-reset/confirm", `{"token":"`+token+`","password":"new password!"}`); w.Code != 204 {
		t.Fatalf("reset: %d %s", w.Code, w.Body)
	}
	if e.verifyBearer(oldSession) != 401 {
		t.Errorf("a reset left an old session alive")
	}
	if code, _ := e.login("email", "tess", "old password"); code != 401 {
		t.Errorf("old password after reset: %d", code)
	}
	if code, _ := e.login("email", "tess", "new password!"); code != 200 {
		t.Errorf("new password: %d", code)
	}
	if w := e.pub("POST", "/auth/providers/email/password-reset/confirm", `{"token":"`+token+`","password":"third password"}`); w.Code != 404 {
		t.Errorf("a spent reset token: %d", w.Code)
	}
	// The mail limit: 3 an hour per address, whether or not it has an account.
	var last int
	for range 3 {
		last = e.pub("POST", "/auth/providers/email/password-reset", `{"email":"nobody@example.com"}`).Code
	}
	if last != 429 {
		t.Errorf("mails beyond the rate: %d", last)
	}
}

// TestResendAndExpiry: resend answers alike for every address; an unverified
// sign-up expires after 24 h (its email free again), a verified one does not;
// admin-created users are never held to verification.
func TestResendAndExpiry(t *testing.T) {
	e := newEnv(t)
	e.signup(`{"email":"uma@example.org","password":"correct horse"}`)
	e.signup(`{"email":"val@example.org","password":"correct horse"}`)
	a := e.pub("POST", "/auth/providers/email/resend", `{"email":"uma@example.org"}`)
	b := e.pub("POST", "/auth/providers/email/resend", `{"email":"none@example.org"}`)
	if a.Code != 202 || b.Code != 202 || a.Body.String() != b.Body.String() {
		t.Fatalf("resend answers: %d / %d", a.Code, b.Code)
	}
	if err := e.svc.Drain(t.Context()); err != nil { // the mail goes out after the answer
		t.Fatal(err)
	}
	if n := len(e.mail.sent()); n != 3 {
		t.Errorf("%d mails after two sign-ups and a resend, want 3", n)
	}
	// curl -d sends JSON as a form: still read as JSON, answered as JSON.
	w := e.pub("POST", "/auth/providers/email/verify", `{"token":"`+e.mail.lastToken("verify", "val@example.org")+`"}`, "Content-Type", "application/x-www-form-urlencoded")
	if w.Code != 200 || decode(t, w.Body.Bytes())["emailVerified"] != true {
		t.Fatalf("JSON verification sent as a form: %d %s", w.Code, w.Body)
	}

	e.clock.Advance(25 * time.Hour)
	defer e.clock.Advance(-25 * time.Hour)
	n, err := e.svc.SweepExpiredUsers(t.Context(), 100)
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	e.must(404, "GET", "/users/uma@example.org", "")
	e.must(200, "GET", "/users/val@example.org", "")
	if code := e.signup(`{"email":"uma@example.org","password":"correct horse"}`); code != 201 {
		t.Errorf("sign-up again after expiry: %d", code)
	}
	// An admin-created user with an unverified email logs in with the password an admin set.
	e.newUser("wes", "correct horse")
	if code, _ := e.login("email", "wes", "correct horse"); code != 200 {
		t.Errorf("admin-created user: %d", code)
	}
}

// TestCORS: a configured origin may call the public API from a browser; others get
// no CORS header.
func TestCORS(t *testing.T) {
	e := newEnv(t)
	h := New(e.svc, Options{AllowedOrigins: []string{"https://app.example.test"}}).Public()
	pre := call(t, h, "OPTIONS", "/auth/tokens", "", "Origin", "https://app.example.test", "Access-Control-Request-Method", "POST")
	if pre.Code != 204 || pre.Header().Get("Access-Control-Allow-Origin") != "https://app.example.test" || !strings.Contains(pre.Header().Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Errorf("preflight: %d %v", pre.Code, pre.Header())
	}
	other := call(t, h, "POST", "/auth/tokens", `{}`, "Origin", "https://evil.example.test")
	if other.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("an unlisted origin got CORS headers")
	}
	if w := call(t, e.public, "OPTIONS", "/auth/tokens", "", "Origin", "https://app.example.test", "Access-Control-Request-Method", "POST"); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS without a configured origin")
	}
}
