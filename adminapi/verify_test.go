package adminapi

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// verifyFixture is a user "vic" with an app "vic-app", registered scopes, and one
// credential of every type.
type verifyFixture struct {
	userID, appID            string
	keyID, keySecret         string // vic's key-auth, scopes read
	appKeyID, appKeySecret   string // vic-app's key-auth
	basicPass, appBasicPass  string
	jwtKeyID, jwtSecret      string
	oauthClient, oauthSecret string // vic-app's oauth2, scopes read write
}

func newVerifyFixture(e *env) verifyFixture {
	e.t.Helper()
	var f verifyFixture
	f.userID = e.newUser("vic", "")["id"].(string)
	f.appID = e.must(200, "POST", "/apps", `{"name":"vic-app","userId":"vic"}`)["id"].(string)
	e.must(201, "POST", "/scopes", `{"scopes":["read","write"]}`)
	k := e.must(200, "POST", "/credentials", `{"consumerId":"vic","type":"key-auth","credential":{"scopes":["read"]}}`)
	f.keyID, f.keySecret = k["keyId"].(string), k["keySecret"].(string)
	k = e.must(200, "POST", "/credentials", `{"consumerId":"vic-app","type":"key-auth"}`)
	f.appKeyID, f.appKeySecret = k["keyId"].(string), k["keySecret"].(string)
	f.basicPass = e.must(200, "POST", "/credentials", `{"consumerId":"vic","type":"basic-auth"}`)["password"].(string)
	f.appBasicPass = e.must(200, "POST", "/credentials", `{"consumerId":"vic-app","type":"basic-auth"}`)["password"].(string)
	j := e.must(200, "POST", "/credentials", `{"consumerId":"vic","type":"jwt","credential":{"keyId":"vic-jwt","scopes":["write"]}}`)
	f.jwtKeyID, f.jwtSecret = j["keyId"].(string), j["keySecret"].(string)
	o := e.must(200, "POST", "/credentials", `{"consumerId":"vic-app","type":"oauth2","credential":{"scopes":["read","write"]}}`)
	f.oauthClient, f.oauthSecret = o["id"].(string), o["secret"].(string)
	return f
}

func signJWT(t testing.TB, secret string, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clientToken runs the client-credentials grant and returns the status and body.
func (e *env) clientToken(id, secret, scope string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	w := e.pub("POST", "/oauth2/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))))
	return w.Code, decode(e.t, w.Body.Bytes())
}

// TestVerifyEveryForm: every place a credential can come from, and the headers of
// the answer (an app's key answers with the app's id and name).
func TestVerifyEveryForm(t *testing.T) {
	e := newEnv(t)
	f := newVerifyFixture(e)
	_, tok := e.clientToken(f.oauthClient, f.oauthSecret, "")
	now := time.Now()
	jwtByKid := signJWT(t, f.jwtSecret, map[string]any{"kid": f.jwtKeyID}, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()})
	jwtBySub := signJWT(t, f.jwtSecret, nil, jwt.MapClaims{"sub": f.jwtKeyID})
	jwtByIss := signJWT(t, f.jwtSecret, nil, jwt.MapClaims{"iss": f.jwtKeyID, "nbf": now.Add(30 * time.Second).Unix()})
	key := f.keyID + ":" + f.keySecret
	tests := []struct {
		name     string
		path     string
		headers  []string
		consumer string
		username string
		scopes   string
	}{
		{"apikey scheme", "/verify", []string{"Authorization", "apikey " + key}, f.userID, "vic", "read"},
		{"APIKEY scheme", "/verify/orders/1", []string{"Authorization", "APIKey " + key}, f.userID, "vic", "read"},
		{"apikey header", "/verify", []string{"apikey", key}, f.userID, "vic", "read"},
		{"x-api-key header", "/verify", []string{"x-api-key", key}, f.userID, "vic", "read"},
		{"apikey query", "/verify?apikey=" + url.QueryEscape(key), nil, f.userID, "vic", "read"},
		{"apiKey query", "/verify/x?apiKey=" + url.QueryEscape(key), nil, f.userID, "vic", "read"},
		{"X-Original-URI", "/verify", []string{"X-Original-URI", "/orders?page=2&apikey=" + url.QueryEscape(key)}, f.userID, "vic", "read"},
		{"X-Forwarded-Uri", "/verify", []string{"X-Forwarded-Uri", "/orders?apiKey=" + url.QueryEscape(key)}, f.userID, "vic", "read"},
		{"X-Original-URI that is no URL", "/verify", []string{"X-Original-URI", "//x:y/orders?apikey=" + url.QueryEscape(key)}, f.userID, "vic", "read"},
		{"app key", "/verify", []string{"x-api-key", f.appKeyID + ":" + f.appKeySecret}, f.appID, "vic-app", ""},
		{"basic by username", "/verify", []string{"Authorization", basicAuth("vic", f.basicPass)}, f.userID, "vic", ""},
		{"basic by id", "/verify", []string{"Authorization", basicAuth(f.userID, f.basicPass)}, f.userID, "vic", ""},
		{"basic by app id", "/verify", []string{"Authorization", basicAuth(f.appID, f.appBasicPass)}, f.appID, "vic-app", ""},
		{"basic by app name", "/verify", []string{"Authorization", basicAuth("vic-app", f.appBasicPass)}, f.appID, "vic-app", ""},
		{"jwt kid", "/verify", []string{"Authorization", "Bearer " + jwtByKid}, f.userID, "vic", "write"},
		{"jwt sub", "/verify", []string{"Authorization", "Bearer " + jwtBySub}, f.userID, "vic", "write"},
		{"jwt iss, nbf within leeway", "/verify", []string{"Authorization", "Bearer " + jwtByIss}, f.userID, "vic", "write"},
		{"oauth2 token", "/verify", []string{"Authorization", "Bearer " + tok["access_token"].(string)}, f.appID, "vic-app", "read write"},
		{"precedence: Authorization wins", "/verify?apikey=nope:nope", []string{"Authorization", "apikey " + key, "x-api-key", "nope:nope"}, f.userID, "vic", "read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{"GET", "POST", "HEAD"} {
				w := call(t, e.public, method, tt.path, "", tt.headers...)
				if w.Code != 200 {
					t.Fatalf("%s: %d %s", method, w.Code, w.Body)
				}
				h := w.Header()
				if h.Get("X-Consumer-Id") != tt.consumer || h.Get("X-Consumer-Username") != tt.username || h.Get("X-Consumer-Scopes") != tt.scopes {
					t.Errorf("%s headers: id %q username %q scopes %q", method, h.Get("X-Consumer-Id"), h.Get("X-Consumer-Username"), h.Get("X-Consumer-Scopes"))
				}
			}
		})
	}
}

// TestVerifyRefusals: wrong secret, unknown, inactive, expired and missing-scope
// answers for every credential type.
func TestVerifyRefusals(t *testing.T) {
	e := newEnv(t)
	f := newVerifyFixture(e)
	key := "x-api-key"
	good := f.keyID + ":" + f.keySecret
	check := func(name string, want int, headers ...string) {
		t.Helper()
		w := call(t, e.public, "GET", "/verify", "", headers...)
		if w.Code != want {
			t.Errorf("%s: %d, want %d: %s", name, w.Code, want, w.Body)
		}
		if want == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
	}
	check("no credentials", 401)
	check("wrong key secret", 401, key, f.keyID+":"+strings.Repeat("x", 43))
	check("unknown keyId", 401, key, "nope:"+f.keySecret)
	check("no colon", 401, key, f.keyID)
	check("wrong basic password", 401, "Authorization", basicAuth("vic", "wrong-password"))
	check("unknown basic user", 401, "Authorization", basicAuth("nobody", f.basicPass))
	check("malformed basic", 401, "Authorization", "Basic !!!")
	check("garbage bearer", 401, "Authorization", "Bearer nonsense")
	check("forged session token", 401, "Authorization", "Bearer gths_0000000000000000000000"+strings.Repeat("A", 43))
	check("jwt with a wrong secret", 401, "Authorization", "Bearer "+signJWT(t, strings.Repeat("k", 32), map[string]any{"kid": f.jwtKeyID}, jwt.MapClaims{}))
	check("jwt expired beyond leeway", 401, "Authorization", "Bearer "+signJWT(t, f.jwtSecret, map[string]any{"kid": f.jwtKeyID}, jwt.MapClaims{"exp": time.Now().Add(-2 * time.Minute).Unix()}))
	check("jwt of an unknown key", 401, "Authorization", "Bearer "+signJWT(t, f.jwtSecret, map[string]any{"kid": "nope"}, jwt.MapClaims{}))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": f.jwtKeyID})
	unsigned, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	check("jwt alg none", 401, "Authorization", "Bearer "+unsigned)

	check("missing required scope", 403, key, good, "X-Required-Scopes", "read write")
	check("required scope held", 200, key, good, "X-Required-Scopes", "read")

	e.must(200, "PUT", "/credentials/key-auth/"+f.keyID+"/status", `{"status":false}`)
	check("inactive key", 403, key, good)
	check("inactive key, wrong secret", 401, key, f.keyID+":"+strings.Repeat("x", 43))
	e.must(200, "PUT", "/credentials/key-auth/"+f.keyID+"/status", `{"status":true}`)
	e.must(200, "PUT", "/apps/vic-app/status", `{"status":false}`)
	check("inactive app's key", 403, key, f.appKeyID+":"+f.appKeySecret)
	check("inactive app's basic", 403, "Authorization", basicAuth("vic-app", f.appBasicPass))
	e.must(200, "PUT", "/apps/vic-app/status", `{"status":true}`)

	// A deleted scope stops being effective at once.
	e.must(204, "DELETE", "/scopes/read", "")
	check("deleted scope", 403, key, good, "X-Required-Scopes", "read")

	// A credential past its expiresAt is refused.
	exp := e.must(200, "POST", "/credentials", `{"consumerId":"vic","type":"key-auth","credential":{"expiresAt":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}}`)
	expKey := exp["keyId"].(string) + ":" + exp["keySecret"].(string)
	check("before expiresAt", 200, key, expKey)
	e.clock.Advance(2 * time.Hour)
	check("after expiresAt", 401, key, expKey)
	e.clock.Advance(-2 * time.Hour)

	// Deactivating the user refuses every key at once; reactivating restores them.
	e.must(200, "PUT", "/users/vic/status", `{"status":false}`)
	check("deactivated user's key", 403, key, good)
	check("deactivated user's app key", 403, key, f.appKeyID+":"+f.appKeySecret)
	check("deactivated user's basic", 403, "Authorization", basicAuth("vic", f.basicPass))
	e.must(200, "PUT", "/users/vic/status", `{"status":true}`)
	check("reactivated user's key", 200, key, good)

	// Deleting a credential, then the user.
	e.must(204, "DELETE", "/credentials/key-auth/"+f.keyID, "")
	check("deleted key", 401, key, good)
	e.must(204, "DELETE", "/users/vic", "")
	check("deleted user's app key", 401, key, f.appKeyID+":"+f.appKeySecret)
	check("deleted user's basic", 401, "Authorization", basicAuth("vic", f.basicPass))
}

// TestVerifyFailureThrottle: repeated failures for one key from one address are
// answered 401 with Retry-After, even with the right secret then; another address
// is not affected.
func TestVerifyFailureThrottle(t *testing.T) {
	e := newEnv(t)
	f := newVerifyFixture(e)
	bad := f.keyID + ":" + strings.Repeat("x", 43)
	good := f.keyID + ":" + f.keySecret
	for range 10 {
		if w := call(t, e.public, "GET", "/verify", "", "x-api-key", good, "X-Forwarded-For", "198.51.100.1"); w.Code != 200 {
			t.Fatalf("success was limited: %d", w.Code)
		}
	}
	for range 6 {
		call(t, e.public, "GET", "/verify", "", "x-api-key", bad, "X-Forwarded-For", "198.51.100.1")
	}
	w := call(t, e.public, "GET", "/verify", "", "x-api-key", good, "X-Forwarded-For", "198.51.100.1")
	if w.Code != 401 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after failures: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := call(t, e.public, "GET", "/verify", "", "x-api-key", good, "X-Forwarded-For", "198.51.100.2"); w.Code != 200 {
		t.Errorf("another address: %d", w.Code)
	}
	for range 6 {
		call(t, e.public, "GET", "/verify", "", "Authorization", basicAuth("vic", "wrong-password"), "X-Forwarded-For", "198.51.100.1")
	}
	if w := call(t, e.public, "GET", "/verify", "", "Authorization", basicAuth("vic", f.basicPass), "X-Forwarded-For", "198.51.100.1"); w.Code != 401 || w.Header().Get("Retry-After") == "" {
		t.Errorf("basic after failures: %d", w.Code)
	}
}

// TestClientCredentials: the grant, its errors, and both revocations.
func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	f := newVerifyFixture(e)
	code, tok := e.clientToken(f.oauthClient, f.oauthSecret, "read")
	if code != 200 || tok["token_type"] != "Bearer" || tok["scope"] != "read" || tok["expires_in"].(float64) != 3600 || !strings.HasPrefix(tok["access_token"].(string), "gtho_") {
		t.Fatalf("grant: %d %v", code, tok)
	}
	access := tok["access_token"].(string)
	if w := e.pub("GET", "/verify", "", "Authorization", "Bearer "+access); w.Code != 200 || w.Header().Get("X-Consumer-Scopes") != "read" {
		t.Fatalf("verify token: %d %q", w.Code, w.Header().Get("X-Consumer-Scopes"))
	}
	// Form client authentication, and the error shapes of RFC 6749.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.oauthClient}, "client_secret": {f.oauthSecret}}
	if w := e.pub("POST", "/oauth2/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"); w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("form client auth: %d", w.Code)
	}
	for _, c := range []struct {
		id, secret, scope string
		status            int
		code              string
	}{
		{f.oauthClient, "wrong-secret-wrong-secret-wrong-secret", "", 401, "invalid_client"},
		{"6f1c5e52-8f38-4f07-9d5b-7b3c5c8b2f10", f.oauthSecret, "", 401, "invalid_client"},
		{f.oauthClient, f.oauthSecret, "admin", 422, "invalid_scope"},
	} {
		code, body := e.clientToken(c.id, c.secret, c.scope)
		if code != c.status || body["error"] != c.code {
			t.Errorf("%+v: %d %v", c, code, body)
		}
	}
	w := e.pub("POST", "/oauth2/token", "grant_type=password&client_id="+f.oauthClient+"&client_secret="+f.oauthSecret, "Content-Type", "application/x-www-form-urlencoded")
	if w.Code != 400 || !strings.Contains(w.Body.String(), "unsupported_grant_type") {
		t.Errorf("password grant: %d %s", w.Code, w.Body)
	}
	// RFC 7009 revocation by the client.
	w = e.pub("POST", "/oauth2/revoke", url.Values{"token": {access}}.Encode(), "Content-Type", "application/x-www-form-urlencoded",
		"Authorization", basicAuth(f.oauthClient, f.oauthSecret))
	if w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if e.verifyBearer(access) != 401 {
		t.Errorf("revoked token still verifies")
	}
	w = e.pub("POST", "/oauth2/revoke", url.Values{"token": {access}}.Encode(), "Content-Type", "application/x-www-form-urlencoded",
		"Authorization", basicAuth(f.oauthClient, f.oauthSecret))
	if w.Code != 200 {
		t.Errorf("revoking again: %d", w.Code)
	}
	// The admin revocation eg tokens revoke calls.
	_, tok = e.clientToken(f.oauthClient, f.oauthSecret, "")
	access = tok["access_token"].(string)
	e.must(204, "DELETE", "/tokens/"+access, "")
	e.must(404, "DELETE", "/tokens/"+access, "")
	if e.verifyBearer(access) != 401 {
		t.Errorf("admin-revoked token still verifies")
	}
	// A deactivated credential's tokens stop working, and it gets no new ones.
	_, tok = e.clientToken(f.oauthClient, f.oauthSecret, "")
	e.must(200, "PUT", "/credentials/oauth2/"+f.oauthClient+"/status", `{"status":false}`)
	if code := e.verifyBearer(tok["access_token"].(string)); code != 403 {
		t.Errorf("token of a deactivated credential: %d", code)
	}
	if code, _ := e.clientToken(f.oauthClient, f.oauthSecret, ""); code != 401 {
		t.Errorf("deactivated client got a token: %d", code)
	}
	if strings.Contains(e.logs.String(), access) || strings.Contains(e.logs.String(), f.oauthSecret) {
		t.Errorf("a token or client secret reached the log")
	}
}

// TestVerifyEveryTypeRefused: for each credential type, a required scope it lacks
// is 403, its own deactivation is 403 (and its reactivation 200 again), and past
// its expiresAt (an access token: past its lifetime) it is 401.
func TestVerifyEveryTypeRefused(t *testing.T) {
	e := newEnv(t)
	e.must(201, "POST", "/scopes", `{"scopes":["read","write"]}`)
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	type subject struct {
		name, statusPath string
		headers          func() []string
	}
	var subjects []subject
	for _, typ := range []string{"key-auth", "basic-auth", "jwt", "oauth2"} {
		user := "w-" + typ
		e.newUser(user, "")
		c := e.must(200, "POST", "/credentials", `{"consumerId":"`+user+`","type":"`+typ+`","credential":{"scopes":["read"],"expiresAt":"`+expires+`"}}`)
		id := c["id"].(string)
		s := subject{name: typ, statusPath: "/credentials/" + typ + "/" + id + "/status"}
		switch typ {
		case "key-auth":
			s.headers = func() []string { return []string{"x-api-key", id + ":" + c["keySecret"].(string)} }
		case "basic-auth":
			s.headers = func() []string { return []string{"Authorization", basicAuth(user, c["password"].(string))} }
		case "jwt":
			s.headers = func() []string {
				return []string{"Authorization", "Bearer " + signJWT(t, c["keySecret"].(string), map[string]any{"kid": id}, jwt.MapClaims{})}
			}
		case "oauth2":
			_, tok := e.clientToken(id, c["secret"].(string), "")
			s.headers = func() []string { return []string{"Authorization", "Bearer " + tok["access_token"].(string)} }
		}
		subjects = append(subjects, s)
	}
	for _, s := range subjects {
		t.Run(s.name, func(t *testing.T) {
			code := func(extra ...string) int {
				return call(t, e.public, "GET", "/verify", "", append(s.headers(), extra...)...).Code
			}
			if got := code("X-Required-Scopes", "read"); got != 200 {
				t.Fatalf("valid, scope held: %d", got)
			}
			if got := code("X-Required-Scopes", "read write"); got != 403 {
				t.Errorf("missing scope: %d", got)
			}
			e.must(200, "PUT", s.statusPath, `{"status":false}`)
			if got := code(); got != 403 {
				t.Errorf("inactive: %d", got)
			}
			e.must(200, "PUT", s.statusPath, `{"status":true}`)
			if got := code(); got != 200 {
				t.Errorf("reactivated: %d", got)
			}
			e.clock.Advance(2 * time.Hour)
			defer e.clock.Advance(-2 * time.Hour)
			if got := code(); got != 401 {
				t.Errorf("expired: %d", got)
			}
		})
	}
}

// TestStoreDown: when Redis cannot answer, /verify, logins and the admin API
// answer 503 at once (a gateway can tell an outage from a refusal), never 500.
func TestStoreDown(t *testing.T) {
	e := newEnv(t)
	f := newVerifyFixture(e)
	e.mr.Close()
	for _, c := range []struct {
		name string
		w    func() int
	}{
		{"verify key", func() int { return e.pub("GET", "/verify", "", "x-api-key", f.keyID+":"+f.keySecret).Code }},
		{"verify basic", func() int { return e.pub("GET", "/verify", "", "Authorization", basicAuth("vic", f.basicPass)).Code }},
		{"login", func() int { code, _ := e.login("email", "vic", "whatever-password"); return code }},
		{"admin list", func() int { return e.do("GET", "/users", "").Code }},
		{"admin create", func() int {
			return e.do("POST", "/users", `{"username":"zoe","firstname":"Z","lastname":"O"}`).Code
		}},
		{"readyz", func() int { return e.do("GET", "/readyz", "").Code }},
	} {
		start := time.Now()
		if got := c.w(); got != 503 {
			t.Errorf("%s with Redis down: %d, want 503", c.name, got)
		}
		// A gateway waits for this answer: it must come at once, not after
		// retries or the store's bounds (10 s here); 3 s leaves a loaded
		// machine room.
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s with Redis down took %v", c.name, d)
		}
	}
}
