package adminapi

import (
	"net/http"
	"testing"
)

// fuzzDecode sends arbitrary bodies to one create route: whatever the input, the
// answer is never a 5xx, and a success can be read back.
func fuzzDecode(f *testing.F, path string, seeds []string, readBack func(e *env, body map[string]any) string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	e := newEnv(f)
	e.must(200, "POST", "/users", `{"username":"owner","firstname":"O","lastname":"W"}`)
	e.must(200, "POST", "/apps", `{"name":"owned","userId":"owner"}`)
	e.must(201, "POST", "/scopes", `{"scopes":["read","write"]}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		e.t = t
		w := e.do(http.MethodPost, path, string(body))
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code == 200 {
			if p := readBack(e, decode(t, w.Body.Bytes())); p != "" {
				if r := e.do("GET", p, ""); r.Code != 200 {
					t.Fatalf("created %s, then GET answered %d", p, r.Code)
				}
			}
		}
	})
}

func FuzzDecodeUser(f *testing.F) {
	fuzzDecode(f, "/users", []string{
		`{"username":"a","firstname":"b","lastname":"c"}`,
		`{"username":"Ünïcode","firstname":"b","lastname":"c","email":"x@Bücher.example","sessionsLimit":3,"externalId":"e1"}`,
		`{"username":123}`, `[]`, `null`, `{"id":"x"}`, "{\"username\":\"\xff\"}",
	}, func(e *env, u map[string]any) string { return "/users/" + u["id"].(string) })
}

func FuzzDecodeApp(f *testing.F) {
	fuzzDecode(f, "/apps", []string{
		`{"name":"app","userId":"owner"}`, `{"name":"My App","userId":"owner","redirectUri":"https://x.example/cb"}`,
		`{"name":" x","userId":"owner"}`, `{"name":1}`,
	}, func(e *env, a map[string]any) string { return "/apps/" + a["id"].(string) })
}

func FuzzDecodeCredential(f *testing.F) {
	fuzzDecode(f, "/credentials", []string{
		`{"consumerId":"owner","type":"key-auth","credential":{"scopes":["read"]}}`,
		`{"consumerId":"owned","type":"key-auth","credential":{"keyId":"k.1","keySecret":"0123456789abcdef0123456789abcdef"}}`,
		`{"consumerId":"owner","type":"basic-auth","credential":{"password":"longenough"}}`,
		`{"consumerId":"owner","type":"oauth2","credential":{"scopes":"write"}}`,
		`{"consumerId":"owner","type":"jwt","credential":{"expiresAt":"2999-01-01T00:00:00Z"}}`,
		`{"consumerId":"owner","type":"x"}`, `{"credential":[]}`,
	}, func(e *env, c map[string]any) string {
		return "/credentials/" + c["type"].(string) + "/" + c["id"].(string)
	})
}

// FuzzVerify sends arbitrary credentials to /verify in every place it reads them:
// whatever the input, the answer is 200, 401 or 403, never a 5xx or a panic.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{"apikey k:s", "Basic dXNlcjpwYXNz", "Bearer gths_x", "Bearer a.b.c", "k:s", "%zz", "Basic !!", "APIKEY :", "Bearer "} {
		f.Add(s, s, "/x?apikey="+s)
	}
	e := newEnv(f)
	e.newUser("owner", "")
	key := e.must(200, "POST", "/credentials", `{"consumerId":"owner","type":"key-auth","credential":{"keyId":"k1"}}`)
	f.Add("apikey k1:"+key["keySecret"].(string), "", "")
	f.Fuzz(func(t *testing.T, authorization, apiKey, original string) {
		e.t = t
		w := call(t, e.public, "GET", "/verify", "", "Authorization", authorization, "x-api-key", apiKey, "X-Original-URI", original)
		if w.Code != 200 && w.Code != 401 && w.Code != 403 {
			t.Fatalf("status %d for %q %q %q: %s", w.Code, authorization, apiKey, original, w.Body)
		}
	})
}
