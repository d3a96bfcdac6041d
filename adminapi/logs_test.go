package adminapi

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

// TestLogsHoldNoSecrets creates, reads and lists credentials of every type and admin
// keys, with failures on the way, and checks that no secret reaches a log line, that
// access lines carry route patterns (never raw paths or query strings), and that
// every admin write names its admin key.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	var secrets []string
	e.must(200, "POST", "/users", `{"username":"hal","firstname":"H","lastname":"L"}`)
	e.must(201, "POST", "/scopes", `{"scopes":["s1"]}`)
	for _, body := range []string{
		`{"consumerId":"hal","type":"key-auth","credential":{"scopes":["s1"]}}`,
		`{"consumerId":"hal","type":"key-auth","credential":{"keyId":"hal-key","keySecret":"chosen-secret-chosen-secret-chosen-1"}}`,
		`{"consumerId":"hal","type":"basic-auth"}`,
		`{"consumerId":"hal","type":"oauth2"}`,
		`{"consumerId":"hal","type":"jwt"}`,
	} {
		m := e.must(200, "POST", "/credentials", body)
		for _, k := range []string{"keySecret", "password", "secret"} {
			if s, ok := m[k].(string); ok {
				secrets = append(secrets, s)
			}
		}
	}
	secrets = append(secrets, "chosen-secret-chosen-secret-chosen-1", "correct horse battery staple", testAdminKey)
	// A chosen password in a failing request, and one in a successful replacement.
	e.must(422, "POST", "/credentials", `{"consumerId":"hal","type":"basic-auth","credential":{"password":"correct horse battery staple","bogus":1}}`)
	ak := e.must(201, "POST", "/admin-keys", `{"name":"auditor","scope":"read"}`)
	secrets = append(secrets, ak["key"].(string))
	e.doKey("GET", "/users?apikey=leaked-in-query-string", "", ak["key"].(string))
	e.doKey("GET", "/users", "", "wrong-but-secret-looking-key")
	secrets = append(secrets, "leaked-in-query-string", "wrong-but-secret-looking-key")
	// Secrets in the paths of credential and token routes, mistyped or not,
	// at debug level (the env logs everything from debug up).
	keySecret := "path-secret-path-secret-path-secret-1"
	token := "gths_0DvKeUuZSh1tyMbwPaVXsKoAb92ai8PMgNfQhjJWY4FRniqHi1L5L5jFdTORCpGhN"
	for _, p := range []string{
		"/credentials/key-auth/hal-key:" + keySecret,
		"/credentials/hal-key:" + keySecret,
		"/credentials/" + keySecret + "/x",
		"/credentials/basic-auth/hal:" + keySecret,
		"/credentials/key-auth/hal-key:" + keySecret + "/scopes",
		"/tokenz/" + token,
		"/users/" + token,
	} {
		e.do("GET", p, "")
		e.do("DELETE", p, "")
	}
	e.do("DELETE", "/tokens/"+token, "")
	e.do("DELETE", "/tokens/"+keySecret, "")
	secrets = append(secrets, keySecret, token)
	e.must(200, "GET", "/credentials/hal", "")
	e.must(200, "GET", "/credentials", "")
	e.must(200, "GET", "/credentials/key-auth/hal-key", "")
	e.must(200, "GET", "/admin-keys", "")

	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%.6s…) is in the log", s)
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, s) {
					t.Log(l)
				}
			}
		}
	}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	writes := 0
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if line["message"] != "request" {
			continue
		}
		route, _ := line["route"].(string)
		if strings.Contains(route, "?") || strings.Contains(route, "hal") {
			t.Errorf("access line with a raw path: %v", route)
		}
		if line["req_id"] == nil {
			t.Errorf("access line without a request id: %v", line)
		}
		if m := line["method"]; m != "GET" && line["status"].(float64) < 400 {
			writes++
			if line["admin_key"] == nil {
				t.Errorf("admin write without its key's name: %v", line)
			}
		}
	}
	if writes < 8 {
		t.Errorf("only %d admin writes logged", writes)
	}
	if !strings.Contains(logs, `"route":"/credentials/:a/:b"`) {
		t.Errorf("route patterns are not logged")
	}
}

// TestAuthLogsHoldNoSecrets: logins, sessions, user secrets, OAuth tokens and
// every /verify form (keys in headers, query strings and X-Original-URI, Basic
// passwords, bearer tokens), successful and failed, leave no secret in the log.
func TestAuthLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	f := newVerifyFixture(e)
	secrets := []string{f.keySecret, f.appKeySecret, f.basicPass, f.appBasicPass, f.jwtSecret, f.oauthSecret, "correct horse battery", "wrong horse battery"}
	e.must(204, "PUT", "/users/vic/password", `{"password":"correct horse battery"}`)
	_, session := e.login("email", "vic", "correct horse battery")
	e.login("email", "vic", "wrong horse battery")
	userSecret := e.must(200, "POST", "/users/vic/secret", "")["secret"].(string)
	_, viaSecret := e.login("secret", "vic", userSecret)
	_, tok := e.clientToken(f.oauthClient, f.oauthSecret, "")
	access := tok["access_token"].(string)
	secrets = append(secrets, session, userSecret, viaSecret, access)
	key := f.keyID + ":" + f.keySecret
	for _, h := range [][]string{
		{"Authorization", "apikey " + key}, {"x-api-key", key}, {"X-Original-URI", "/x?apikey=" + key},
		{"Authorization", basicAuth("vic", f.basicPass)}, {"Authorization", basicAuth("vic", "wrong horse battery")},
		{"Authorization", "Bearer " + session}, {"Authorization", "Bearer " + access}, {"Authorization", "Bearer " + access + "x"},
	} {
		e.pub("GET", "/verify/orders?apikey="+key, "", h...)
	}
	e.pub("GET", "/users/me", "", "Authorization", "Bearer "+session)
	e.pub("POST", "/auth/logout", "", "Authorization", "Bearer "+session)
	e.must(204, "DELETE", "/tokens/"+access, "")
	e.must(404, "DELETE", "/tokens/"+access, "")
	e.pub("POST", "/oauth2/revoke", "token="+access, "Content-Type", "application/x-www-form-urlencoded", "Authorization", basicAuth(f.oauthClient, f.oauthSecret))
	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%.6s…) is in the log", s)
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, s) {
					t.Log(l)
				}
			}
		}
	}
	for _, route := range []string{`"route":"/verify/*path"`, `"route":"/tokens/:token"`, `"route":"/auth/tokens"`} {
		if !strings.Contains(logs, route) {
			t.Errorf("no access line with %s", route)
		}
	}
}
