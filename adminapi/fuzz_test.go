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
