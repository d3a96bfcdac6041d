package githubtest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/plugins/github/githubtest"
)

const callback = "https://app.example.com/cb"

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

func challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func start(t *testing.T, opts githubtest.Options) *githubtest.Server {
	t.Helper()
	s := githubtest.New(opts)
	t.Cleanup(s.Close)
	s.AddUser(githubtest.User{Login: "octocat", Name: "The Octocat",
		Emails: []githubtest.Email{{Email: "octocat@example.com", Primary: true, Verified: true}}})
	s.AddUser(githubtest.User{Login: "hubot"})
	return s
}

var noRedirect = &http.Client{Timeout: 5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorizeParams are a correct authorization request's parameters.
func authorizeParams(s *githubtest.Server) url.Values {
	return url.Values{"client_id": {s.ClientID}, "redirect_uri": {callback}, "state": {"xyz"},
		"scope": {"read:user user:email"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
}

// authorize sends an authorization request and returns the status and the
// query of the redirect (nil without one).
func authorize(t *testing.T, s *githubtest.Server, q url.Values) (int, url.Values) {
	t.Helper()
	resp, err := noRedirect.Get(s.AuthURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	loc := resp.Header.Get("Location")
	if loc == "" {
		return resp.StatusCode, nil
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, u.Query()
}

func code(t *testing.T, s *githubtest.Server) string {
	t.Helper()
	status, q := authorize(t, s, authorizeParams(s))
	if status != http.StatusFound || q.Get("code") == "" || q.Get("state") != "xyz" {
		t.Fatalf("authorize: %d %v, want 302 with a code and the state", status, q)
	}
	return q.Get("code")
}

// token posts form to the token endpoint, asking for JSON, and returns the answer.
func token(t *testing.T, s *githubtest.Server, form url.Values) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint: HTTP %d, want 200 (GitHub answers errors with 200 too)", resp.StatusCode)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func redeem(s *githubtest.Server, code string) url.Values {
	return url.Values{"client_id": {s.ClientID}, "client_secret": {s.ClientSecret}, "code": {code},
		"redirect_uri": {callback}, "code_verifier": {verifier}}
}

// api calls the REST API with an Authorization header and returns status and body.
func api(t *testing.T, s *githubtest.Server, method, path, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.APIURL()+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuthorizeChecks(t *testing.T) {
	s := start(t, githubtest.Options{RedirectURIs: []string{callback}})
	for _, tc := range []struct {
		name       string
		edit       func(url.Values)
		wantStatus int
		wantError  string // the redirect's error; "" with wantStatus 302: a code
	}{
		{"ok", func(url.Values) {}, http.StatusFound, ""},
		{"unknown client", func(q url.Values) { q.Set("client_id", "nope") }, http.StatusNotFound, ""},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, http.StatusFound, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, http.StatusFound, "invalid_request"},
		{"malformed challenge", func(q url.Values) { q.Set("code_challenge", "short") }, http.StatusFound, "invalid_request"},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example.com/") }, http.StatusFound, "redirect_uri_mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := authorizeParams(s)
			tc.edit(q)
			status, back := authorize(t, s, q)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d", status, tc.wantStatus)
			}
			if status != http.StatusFound {
				return
			}
			if back.Get("error") != tc.wantError || (tc.wantError == "") != (back.Get("code") != "") {
				t.Errorf("redirect query %v, want error %q", back, tc.wantError)
			}
			if back.Get("state") != "xyz" {
				t.Errorf("state not passed back: %v", back)
			}
		})
	}
}

func TestDeny(t *testing.T) {
	s := start(t, githubtest.Options{})
	s.DenyNext()
	if _, q := authorize(t, s, authorizeParams(s)); q.Get("error") != "access_denied" || q.Get("state") != "xyz" {
		t.Errorf("after DenyNext: %v, want error=access_denied with the state", q)
	}
	if _, q := authorize(t, s, authorizeParams(s)); q.Get("code") == "" {
		t.Errorf("DenyNext denied twice: %v", q)
	}
	s.AddUser(githubtest.User{Login: "grumpy", Deny: true})
	q := authorizeParams(s)
	q.Set("login", "grumpy")
	if _, back := authorize(t, s, q); back.Get("error") != "access_denied" {
		t.Errorf("a denying user: %v, want error=access_denied", back)
	}
}

func TestTokenChecks(t *testing.T) {
	s := start(t, githubtest.Options{})
	for _, tc := range []struct {
		name string
		edit func(url.Values)
		want string
	}{
		{"wrong verifier", func(f url.Values) { f.Set("code_verifier", strings.Repeat("a", 43)) }, "bad_verification_code"},
		{"no verifier", func(f url.Values) { f.Del("code_verifier") }, "bad_verification_code"},
		{"wrong secret", func(f url.Values) { f.Set("client_secret", "nope") }, "incorrect_client_credentials"},
		{"other redirect_uri", func(f url.Values) { f.Set("redirect_uri", "https://app.example.com/other") }, "redirect_uri_mismatch"},
		{"unknown code", func(f url.Values) { f.Set("code", "0000") }, "bad_verification_code"},
		{"unknown grant type", func(f url.Values) { f.Set("grant_type", "password") }, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := redeem(s, code(t, s))
			tc.edit(f)
			if got := token(t, s, f); got["error"] != tc.want || got["access_token"] != nil {
				t.Errorf("answer %v, want error %s", got, tc.want)
			}
		})
	}
	t.Run("single use", func(t *testing.T) {
		f := redeem(s, code(t, s))
		if got := token(t, s, f); got["access_token"] == nil || got["scope"] != "read:user,user:email" || got["token_type"] != "bearer" {
			t.Fatalf("first redemption: %v, want a token with comma-separated scopes", got)
		}
		if got := token(t, s, f); got["error"] != "bad_verification_code" {
			t.Errorf("second redemption: %v, want bad_verification_code", got)
		}
	})
	t.Run("ten minutes", func(t *testing.T) {
		f := redeem(s, code(t, s))
		s.Advance(githubtest.CodeTTL)
		if got := token(t, s, f); got["error"] != "bad_verification_code" {
			t.Errorf("an expired code: %v, want bad_verification_code", got)
		}
	})
	t.Run("form answer without Accept JSON, Basic client auth", func(t *testing.T) {
		f := redeem(s, code(t, s))
		f.Del("client_id")
		f.Del("client_secret")
		req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(s.ClientID, s.ClientSecret)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		v, err := url.ParseQuery(string(b))
		if err != nil || !strings.HasPrefix(v.Get("access_token"), "gho_") ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			t.Errorf("answer %q (%s), want a form-encoded token", b, resp.Header.Get("Content-Type"))
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		f := redeem(s, code(t, s))
		body := map[string]string{}
		for k := range f {
			body[k] = f.Get(k)
		}
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out["access_token"] == nil {
			t.Errorf("JSON request: %v %v, want a token", out, err)
		}
	})
}

func TestAPI(t *testing.T) {
	s := start(t, githubtest.Options{})
	tok := token(t, s, redeem(s, code(t, s)))["access_token"].(string)

	status, body := api(t, s, http.MethodGet, "/user", "", "")
	if status != http.StatusUnauthorized || !strings.Contains(body, "Requires authentication") {
		t.Errorf("no token: %d %s", status, body)
	}
	status, body = api(t, s, http.MethodGet, "/user", "Bearer gho_nope", "")
	if status != http.StatusUnauthorized || !strings.Contains(body, "Bad credentials") {
		t.Errorf("bad token: %d %s", status, body)
	}
	status, body = api(t, s, http.MethodGet, "/user", "token "+tok, "")
	var u map[string]any
	_ = json.Unmarshal([]byte(body), &u)
	if status != http.StatusOK || u["login"] != "octocat" || u["id"] != float64(1) {
		t.Errorf("GET /user with the token scheme: %d %s", status, body)
	}
	status, body = api(t, s, http.MethodGet, "/user/emails", "Bearer "+tok, "")
	if status != http.StatusOK || !strings.Contains(body, `"primary":true`) || !strings.Contains(body, "octocat@example.com") {
		t.Errorf("GET /user/emails: %d %s", status, body)
	}

	q := authorizeParams(s)
	q.Set("scope", "read:user")
	status2, back := authorize(t, s, q)
	if status2 != http.StatusFound {
		t.Fatal(back)
	}
	narrow := token(t, s, redeem(s, back.Get("code")))["access_token"].(string)
	if status, _ := api(t, s, http.MethodGet, "/user/emails", "Bearer "+narrow, ""); status != http.StatusNotFound {
		t.Errorf("/user/emails without user:email: %d, want 404", status)
	}
}

func TestDeleteGrant(t *testing.T) {
	s := start(t, githubtest.Options{})
	tok := token(t, s, redeem(s, code(t, s)))["access_token"].(string)
	body := `{"access_token":"` + tok + `"}`
	path := "/applications/" + s.ClientID + "/grant"

	if status, _ := api(t, s, http.MethodDelete, path, "Basic "+basic(s.ClientID, "wrong"), body); status != http.StatusUnauthorized {
		t.Errorf("wrong client secret: %d, want 401", status)
	}
	if status, _ := api(t, s, http.MethodDelete, path, "Basic "+basic(s.ClientID, s.ClientSecret), `{}`); status != http.StatusUnprocessableEntity {
		t.Errorf("no access_token: %d, want 422", status)
	}
	if status, _ := api(t, s, http.MethodDelete, path, "Basic "+basic(s.ClientID, s.ClientSecret), body); status != http.StatusNoContent {
		t.Fatalf("delete: %d, want 204", status)
	}
	if status, _ := api(t, s, http.MethodGet, "/user", "Bearer "+tok, ""); status != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d, want 401", status)
	}
	if got := s.Revoked(); len(got) != 1 || got[0] != "octocat" {
		t.Errorf("Revoked() = %v", got)
	}
	if status, _ := api(t, s, http.MethodDelete, path, "Basic "+basic(s.ClientID, s.ClientSecret), body); status != http.StatusNotFound {
		t.Errorf("delete again: %d, want 404", status)
	}
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func TestExpiringTokens(t *testing.T) {
	s := start(t, githubtest.Options{ExpiringTokens: true, TokenTTL: time.Hour})
	first := token(t, s, redeem(s, code(t, s)))
	access, refresh := first["access_token"].(string), first["refresh_token"].(string)
	if !strings.HasPrefix(access, "ghu_") || !strings.HasPrefix(refresh, "ghr_") || first["expires_in"] != float64(3600) {
		t.Fatalf("answer %v, want ghu_/ghr_ tokens expiring in 3600 s", first)
	}
	s.Advance(time.Hour)
	if status, _ := api(t, s, http.MethodGet, "/user", "Bearer "+access, ""); status != http.StatusUnauthorized {
		t.Errorf("an expired token: %d, want 401", status)
	}
	grant := url.Values{"client_id": {s.ClientID}, "client_secret": {s.ClientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	second := token(t, s, grant)
	if second["access_token"] == nil || second["refresh_token"] == refresh {
		t.Fatalf("refresh: %v, want new tokens", second)
	}
	if got := token(t, s, grant); got["error"] != "bad_refresh_token" {
		t.Errorf("reused refresh token: %v, want bad_refresh_token", got)
	}
}

func TestFailAndCount(t *testing.T) {
	s := start(t, githubtest.Options{})
	f := redeem(s, code(t, s))
	s.Fail(http.StatusServiceUnavailable)
	resp, err := noRedirect.PostForm(s.TokenURL(), f)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("failing: %d, want 503", resp.StatusCode)
	}
	s.Fail(0)
	if got := token(t, s, f); got["access_token"] == nil {
		t.Errorf("after Fail(0): %v, want a token", got)
	}
	if n := s.TokenCalls(); n != 1 {
		t.Errorf("TokenCalls() = %d, want 1 (a failed call never reaches the endpoint)", n)
	}
}

func TestInteractive(t *testing.T) {
	s := start(t, githubtest.Options{Interactive: true})
	resp, err := noRedirect.Get(s.AuthURL() + "?" + authorizeParams(s).Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{"octocat", "hubot", `value="approve"`, `value="deny"`, `name="code_challenge"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	decide := func(decision string) url.Values {
		form := authorizeParams(s)
		form.Set("login", "hubot")
		form.Set("decision", decision)
		resp, err := noRedirect.PostForm(s.AuthURL(), form)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		u, _ := url.Parse(resp.Header.Get("Location"))
		return u.Query()
	}
	if q := decide("deny"); q.Get("error") != "access_denied" {
		t.Errorf("Deny: %v", q)
	}
	q := decide("approve")
	tok := token(t, s, redeem(s, q.Get("code")))["access_token"].(string)
	if _, body := api(t, s, http.MethodGet, "/user", "Bearer "+tok, ""); !strings.Contains(body, `"login":"hubot"`) {
		t.Errorf("the picked user is not the one signed in: %s", body)
	}
}
