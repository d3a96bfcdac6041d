package adminapi

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core"
)

// TestBadInput: every bad body gets a clear problem with the field at fault, never
// a 500, and nothing is created.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"alice","firstname":"A","lastname":"L"}`)
	e.must(201, "POST", "/scopes", `{"scopes":["read"]}`)
	tests := []struct {
		name, method, path, body string
		status                   int
		fields                   []string
	}{
		{"malformed JSON", "POST", "/users", `{"username":`, 400, nil},
		{"not an object", "POST", "/users", `[1,2]`, 400, nil},
		{"empty body", "POST", "/users", ``, 400, nil},
		{"trailing data", "POST", "/users", `{"username":"x","firstname":"a","lastname":"b"} {}`, 400, nil},
		{"invalid UTF-8", "POST", "/users", "{\"username\":\"b\xffb\",\"firstname\":\"a\",\"lastname\":\"b\"}", 400, nil},
		{"missing required", "POST", "/users", `{"username":"bob"}`, 422, []string{"firstname", "lastname"}},
		{"missing username", "POST", "/users", `{"firstname":"a","lastname":"b"}`, 422, []string{"username"}},
		{"numeric username", "POST", "/users", `{"username":123,"firstname":"a","lastname":"b"}`, 422, []string{"username"}},
		{"integer-form username", "POST", "/users", `{"username":"123","firstname":"a","lastname":"b"}`, 422, []string{"username"}},
		{"uuid-form username", "POST", "/users", `{"username":"6f1c5e52-8f38-4f07-9d5b-7b3c5c8b2f10","firstname":"a","lastname":"b"}`, 422, []string{"username"}},
		{"slash in username", "POST", "/users", `{"username":"a/b","firstname":"a","lastname":"b"}`, 422, []string{"username"}},
		{"bad email", "POST", "/users", `{"username":"bob","firstname":"a","lastname":"b","email":"Bob <bob@example.com>"}`, 422, []string{"email"}},
		{"unknown property", "POST", "/users", `{"username":"bob","firstname":"a","lastname":"b","nickname":"x"}`, 422, []string{"nickname"}},
		{"client id", "POST", "/users", `{"id":"6f1c5e52-8f38-4f07-9d5b-7b3c5c8b2f10","username":"bob","firstname":"a","lastname":"b"}`, 422, []string{"id"}},
		{"string boolean", "POST", "/users", `{"username":"bob","firstname":"a","lastname":"b","emailVerified":"true"}`, 422, []string{"emailVerified"}},
		{"sessionsLimit range", "POST", "/users", `{"username":"bob","firstname":"a","lastname":"b","sessionsLimit":0}`, 422, []string{"sessionsLimit"}},
		{"bad redirectUri", "POST", "/users", `{"username":"bob","firstname":"a","lastname":"b","redirectUri":"not a uri"}`, 422, []string{"redirectUri"}},
		{"status not boolean", "PUT", "/users/alice/status", `{"status":"false"}`, 422, []string{"status"}},
		{"status missing", "PUT", "/users/alice/status", `{}`, 422, []string{"status"}},
		{"isActive via PUT", "PUT", "/users/alice", `{"isActive":false}`, 422, []string{"isActive"}},
		{"app without owner", "POST", "/apps", `{"name":"x"}`, 422, []string{"userId"}},
		{"app unknown owner", "POST", "/apps", `{"name":"x","userId":"nobody"}`, 422, []string{"userId"}},
		{"app bad name", "POST", "/apps", `{"name":" x","userId":"alice"}`, 422, []string{"name"}},
		{"credential unknown type", "POST", "/credentials", `{"consumerId":"alice","type":"magic"}`, 422, []string{"type"}},
		{"credential no consumer", "POST", "/credentials", `{"type":"key-auth"}`, 422, []string{"consumerId"}},
		{"credential unknown consumer", "POST", "/credentials", `{"consumerId":"nobody","type":"key-auth"}`, 422, []string{"consumerId"}},
		{"credential unknown scope", "POST", "/credentials", `{"consumerId":"alice","type":"key-auth","credential":{"scopes":["read","nope"]}}`, 422, []string{"credential.scopes.1"}},
		{"credential short secret", "POST", "/credentials", `{"consumerId":"alice","type":"key-auth","credential":{"keySecret":"short"}}`, 422, []string{"credential.keySecret"}},
		{"credential bad keyId", "POST", "/credentials", `{"consumerId":"alice","type":"key-auth","credential":{"keyId":"a:b"}}`, 422, []string{"credential.keyId"}},
		{"credential unknown field", "POST", "/credentials", `{"consumerId":"alice","type":"key-auth","credential":{"color":"red"}}`, 422, []string{"credential.color"}},
		{"credential unknown top field", "POST", "/credentials", `{"consumerId":"alice","type":"key-auth","extra":1}`, 422, []string{"extra"}},
		{"credential not an object", "POST", "/credentials", `{"consumerId":"alice","type":"key-auth","credential":"x"}`, 422, []string{"credential"}},
		{"credential past expiry", "POST", "/credentials", `{"consumerId":"alice","type":"key-auth","credential":{"expiresAt":"2001-01-01T00:00:00Z"}}`, 422, []string{"credential.expiresAt"}},
		{"basic short password", "POST", "/credentials", `{"consumerId":"alice","type":"basic-auth","credential":{"password":"short"}}`, 422, []string{"credential.password"}},
		{"jwt algorithm", "POST", "/credentials", `{"consumerId":"alice","type":"jwt","credential":{"algorithm":"RS256"}}`, 422, []string{"credential.algorithm"}},
		{"bad scope name", "POST", "/scopes", `{"scopes":["a b"]}`, 422, []string{"scopes.0"}},
		{"scope already there", "POST", "/scopes", `{"scopes":["new","read"]}`, 409, nil},
		{"count too big", "GET", "/users?count=1001", ``, 422, []string{"count"}},
		{"count not a number", "GET", "/users?count=ten", ``, 422, []string{"count"}},
		{"start negative", "GET", "/users?start=-1", ``, 422, []string{"start"}},
		{"unknown credential type in path", "GET", "/credentials/magic/x", ``, 404, nil},
		{"unknown route", "GET", "/nothing", ``, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(tt.method, tt.path, tt.body)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			p := decode(t, w.Body.Bytes())
			if p["title"] == "" || p["detail"] == "" || p["type"] == "" || int(p["status"].(float64)) != tt.status {
				t.Errorf("incomplete problem: %v", p)
			}
			if tt.fields != nil {
				got := fieldsOf(p)
				slices.Sort(got)
				if d := cmp.Diff(tt.fields, got); d != "" {
					t.Errorf("fields (-want +got):\n%s\n%v", d, p)
				}
			}
		})
	}
	// Nothing was created by the failures: still one user, no apps, no credentials, one scope.
	users := e.must(200, "GET", "/users", "")
	if n := len(users["users"].([]any)); n != 1 {
		t.Errorf("%d users after failed creates, want 1", n)
	}
	if n := len(e.must(200, "GET", "/apps", "")["apps"].([]any)); n != 0 {
		t.Errorf("%d apps after failed creates", n)
	}
	if n := len(e.must(200, "GET", "/credentials", "")["credentials"].([]any)); n != 0 {
		t.Errorf("%d credentials after failed creates", n)
	}
	if got := e.must(200, "GET", "/scopes", "")["scopes"]; !cmp.Equal(got, []any{"read"}) {
		t.Errorf("scopes after failed create: %v", got)
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	big := `{"username":"bob","firstname":"` + strings.Repeat("a", 1<<20) + `","lastname":"b"}`
	if w := e.do("POST", "/users", big); w.Code != 413 {
		t.Fatalf("status %d, want 413", w.Code)
	}
}

func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	if w := e.doKey("GET", "/users", "", ""); w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("no key: %d %v", w.Code, w.Header())
	}
	if w := e.doKey("GET", "/users", "", "wrong-key-wrong-key"); w.Code != 401 {
		t.Fatalf("wrong key: %d", w.Code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if w := e.doKey("GET", path, "", ""); w.Code != 200 {
			t.Errorf("%s without a key: %d", path, w.Code)
		}
	}
	read := e.must(201, "POST", "/admin-keys", `{"name":"reader","scope":"read"}`)
	readKey := read["key"].(string)
	if !strings.HasPrefix(readKey, "gtha_") || !strings.HasPrefix(readKey, read["prefix"].(string)) {
		t.Fatalf("key %q prefix %q", readKey, read["prefix"])
	}
	if w := e.doKey("GET", "/users", "", readKey); w.Code != 200 {
		t.Errorf("read key GET: %d", w.Code)
	}
	if w := e.doKey("POST", "/users", `{"username":"x","firstname":"a","lastname":"b"}`, readKey); w.Code != 403 {
		t.Errorf("read key POST: %d", w.Code)
	}
	if w := e.doKey("GET", "/admin-keys", "", readKey); w.Code != 403 {
		t.Errorf("read key lists admin keys: %d", w.Code)
	}
	dialect := e.must(201, "POST", "/admin-keys", `{"name":"partner","scope":"gaio"}`)
	if w := e.doKey("GET", "/users", "", dialect["key"].(string)); w.Code != 403 {
		t.Errorf("dialect key on the native API: %d", w.Code)
	}
	// The three header forms.
	admin := e.must(201, "POST", "/admin-keys", `{"name":"ops","scope":"admin"}`)["key"].(string)
	for _, h := range [][2]string{{"x-api-key", admin}, {"Authorization", "Bearer " + admin}, {"Authorization", "bearer " + admin}, {"Authorization", admin}} {
		req := httptest.NewRequest("GET", "/users", nil)
		req.Header.Set(h[0], h[1])
		w := httptest.NewRecorder()
		e.admin.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Errorf("%s: %q → %d", h[0], h[1][:10], w.Code)
		}
	}
	e.must(409, "POST", "/admin-keys", `{"name":"ops","scope":"admin"}`)
	e.must(422, "POST", "/admin-keys", `{"name":"x","scope":"root"}`)
	list := e.must(200, "GET", "/admin-keys", "")
	body := fmt.Sprint(list)
	for _, k := range []string{readKey, admin} {
		if strings.Contains(body, k) {
			t.Errorf("list shows a key")
		}
	}
	if n := len(list["adminKeys"].([]any)); n != 3 {
		t.Errorf("%d keys listed, want 3", n)
	}
	e.must(204, "DELETE", "/admin-keys/"+read["id"].(string), "")
	if w := e.doKey("GET", "/users", "", readKey); w.Code != 401 {
		t.Errorf("revoked key: %d", w.Code)
	}
	if !strings.Contains(e.logs.String(), `"message":"admin authentication failed"`) {
		t.Errorf("failed authentication not logged at warn")
	}
}

// TestDerivedDeactivation: deactivating a user makes its apps and credentials read
// as inactive; reactivating restores exactly what was there, own flags included.
func TestDerivedDeactivation(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"carol","firstname":"C","lastname":"L"}`)
	app := e.must(200, "POST", "/apps", `{"name":"svc","userId":"carol"}`)
	k1 := e.must(200, "POST", "/credentials", `{"consumerId":"carol","type":"key-auth"}`)["keyId"].(string)
	k2 := e.must(200, "POST", "/credentials", `{"consumerId":"svc","type":"key-auth"}`)["keyId"].(string)
	k3 := e.must(200, "POST", "/credentials", `{"consumerId":"carol","type":"key-auth"}`)["keyId"].(string)
	e.must(200, "PUT", "/credentials/key-auth/"+k3+"/status", `{"status":false}`)
	active := func(path string) bool { return e.must(200, "GET", path, "")["isActive"].(bool) }
	if got := e.must(200, "PUT", "/users/carol/status", `{"status":false}`)["status"]; got != "Deactivated" {
		t.Fatalf("status answer %v", got)
	}
	for _, p := range []string{"/apps/svc", "/credentials/key-auth/" + k1, "/credentials/key-auth/" + k2, "/credentials/key-auth/" + k3} {
		if active(p) {
			t.Errorf("%s active while its user is deactivated", p)
		}
	}
	// What is created for a deactivated owner answers inactive from the start.
	if a := e.must(200, "POST", "/apps", `{"name":"late","userId":"carol"}`); a["isActive"] != false {
		t.Errorf("new app of a deactivated user: isActive %v", a["isActive"])
	}
	if c := e.must(200, "POST", "/credentials", `{"consumerId":"carol","type":"key-auth"}`); c["isActive"] != false {
		t.Errorf("new key of a deactivated user: isActive %v", c["isActive"])
	}
	if c := e.must(200, "POST", "/credentials", `{"consumerId":"svc","type":"oauth2"}`); c["isActive"] != false {
		t.Errorf("new credential of a deactivated user's app: isActive %v", c["isActive"])
	}
	if got := e.must(200, "PUT", "/users/carol/status", `{"status":true}`)["status"]; got != "Activated" {
		t.Fatalf("status answer %v", got)
	}
	if !active("/apps/svc") || !active("/credentials/key-auth/"+k1) || !active("/credentials/key-auth/"+k2) {
		t.Errorf("reactivation did not restore")
	}
	if active("/credentials/key-auth/" + k3) {
		t.Errorf("a credential deactivated on its own came back active")
	}
	e.must(200, "PUT", "/apps/"+app["id"].(string)+"/status", `{"status":false}`)
	if active("/credentials/key-auth/" + k2) {
		t.Errorf("an app's credential active while the app is not")
	}
	if got := e.must(200, "PUT", "/apps/svc/status", `{"status":false}`)["status"]; got != "Inactive" {
		t.Errorf("unchanged status answer %v", got)
	}
}

// TestNamesAndLookups covers the lookup rules (docs/admin-api.md) and Express Gateway's faults
// we do not copy.
func TestNamesAndLookups(t *testing.T) {
	e := newEnv(t)
	u := e.must(200, "POST", "/users", `{"username":"Dave","firstname":"D","lastname":"V","email":"dave@EXAMPLE.org"}`)
	if u["email"] != "dave@example.org" || u["username"] != "Dave" {
		t.Errorf("stored as %v / %v", u["username"], u["email"])
	}
	e.must(409, "POST", "/users", `{"username":"ｄａｖｅ","firstname":"D","lastname":"V"}`) // width and case variant
	e.must(409, "POST", "/users", `{"username":"dave2","firstname":"D","lastname":"V","email":"DAVE@example.org"}`)
	e.must(200, "GET", "/users/dave", "")
	// GET → edit → PUT works: read-only fields equal to the stored ones pass.
	got := e.must(200, "GET", "/users/Dave", "")
	got["firstname"] = "David"
	body, _ := jsonString(got)
	if upd := e.must(200, "PUT", "/users/Dave", body); upd["firstname"] != "David" {
		t.Errorf("update lost: %v", upd)
	}
	e.must(422, "PUT", "/users/Dave", `{"number":99}`)
	// null clears an optional field, not a required one.
	if upd := e.must(200, "PUT", "/users/Dave", `{"email":null}`); upd["email"] != nil {
		t.Errorf("email not cleared: %v", upd["email"])
	}
	e.must(422, "PUT", "/users/Dave", `{"lastname":null}`)
	// A renamed app stops answering to its old name.
	e.must(200, "POST", "/apps", `{"name":"old","userId":"Dave"}`)
	e.must(200, "PUT", "/apps/old", `{"name":"new"}`)
	e.must(404, "GET", "/apps/old", "")
	e.must(200, "GET", "/apps/new", "")
	// Two owners may share an app name; the name alone is then ambiguous.
	e.must(200, "POST", "/users", `{"username":"erin","firstname":"E","lastname":"R"}`)
	e.must(200, "POST", "/apps", `{"name":"new","userId":"erin"}`)
	e.must(409, "POST", "/apps", `{"name":"new","userId":"erin"}`)
	if p := e.must(409, "GET", "/apps/new", ""); !strings.Contains(p["detail"].(string), "shared by apps") {
		t.Errorf("ambiguous name detail: %v", p["detail"])
	}
	// A taken keyId is 409, never an overwrite.
	e.must(200, "POST", "/credentials", `{"consumerId":"erin","type":"key-auth","credential":{"keyId":"k1"}}`)
	e.must(409, "POST", "/credentials", `{"consumerId":"Dave","type":"key-auth","credential":{"keyId":"k1"}}`)
	if c := e.must(200, "GET", "/credentials/key-auth/k1", ""); c["consumerId"] != e.must(200, "GET", "/users/erin", "")["id"] {
		t.Errorf("keyId k1 changed hands")
	}
	// Deleting a user frees its names and deletes its credentials.
	e.must(204, "DELETE", "/users/erin", "")
	e.must(404, "GET", "/credentials/key-auth/k1", "")
	e.must(200, "POST", "/users", `{"username":"erin","firstname":"E","lastname":"R"}`)
	e.must(200, "POST", "/credentials", `{"consumerId":"erin","type":"key-auth","credential":{"keyId":"k1"}}`)
}

func TestCredentialTypes(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"fay","firstname":"F","lastname":"Y"}`)
	basic := e.must(200, "POST", "/credentials", `{"consumerId":"fay","type":"basic-auth"}`)
	if len(basic["password"].(string)) < 20 || basic["id"] != e.must(200, "GET", "/users/fay", "")["id"] {
		t.Errorf("basic-auth: %v", basic)
	}
	if g := e.must(200, "GET", "/credentials/basic-auth/fay", ""); g["password"] != nil {
		t.Errorf("password shown again")
	}
	e.must(409, "POST", "/credentials", `{"consumerId":"fay","type":"basic-auth"}`)
	e.must(200, "PUT", "/credentials/basic-auth/fay/status", `{"status":false}`)
	chosen := e.must(200, "POST", "/credentials", `{"consumerId":"fay","type":"basic-auth","credential":{"password":"correct horse battery"}}`)
	if chosen["password"] != nil || chosen["isActive"] != true {
		t.Errorf("replacement: %v", chosen)
	}
	oauth := e.must(200, "POST", "/credentials", `{"consumerId":"fay","type":"oauth2"}`)
	if len(oauth["secret"].(string)) < 32 {
		t.Errorf("oauth2 secret: %v", oauth)
	}
	jwt := e.must(200, "POST", "/credentials", `{"consumerId":"fay","type":"jwt","credential":{"keyId":"fay-jwt"}}`)
	if jwt["algorithm"] != "HS256" || len(jwt["keySecret"].(string)) < 32 || jwt["keyId"] != "fay-jwt" {
		t.Errorf("jwt: %v", jwt)
	}
	// The same keyId may exist once per keyed type.
	e.must(200, "POST", "/credentials", `{"consumerId":"fay","type":"key-auth","credential":{"keyId":"fay-jwt","expiresAt":"2999-01-01T00:00:00Z"}}`)
	if c := e.must(200, "GET", "/credentials/key-auth/fay-jwt", ""); c["expiresAt"] != "2999-01-01T00:00:00.000Z" {
		t.Errorf("expiresAt %v", c["expiresAt"])
	}
	creds := e.must(200, "GET", "/credentials/fay", "")["credentials"].([]any)
	if len(creds) != 4 {
		t.Errorf("%d credentials listed for fay, want 4", len(creds))
	}
	e.must(204, "DELETE", "/credentials/jwt/fay-jwt", "")
	e.must(404, "GET", "/credentials/jwt/fay-jwt", "")
	e.must(200, "GET", "/credentials/key-auth/fay-jwt", "")
}

// TestJWTWithoutKeyring: without an encryption key a jwt create answers 503 naming
// the setting, and nothing else is affected.
func TestJWTWithoutKeyring(t *testing.T) {
	e := newEnv(t)
	svc := core.NewService(e.store, core.Options{AdminKey: testAdminKey, Hasher: core.NewHasher(core.TestArgon2, 1)})
	h := New(svc, Options{}).Admin()
	req := httptest.NewRequest("POST", "/users", strings.NewReader(`{"username":"gus","firstname":"G","lastname":"S"}`))
	req.Header.Set("x-api-key", testAdminKey)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("create user: %d %s", w.Code, w.Body)
	}
	req = httptest.NewRequest("POST", "/credentials", strings.NewReader(`{"consumerId":"gus","type":"jwt"}`))
	req.Header.Set("x-api-key", testAdminKey)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 503 || !strings.Contains(w.Body.String(), "GATEHOUSE_ENCRYPTION_KEYS") {
		t.Fatalf("jwt without keyring: %d %s", w.Code, w.Body)
	}
}

// TestConcurrentCreates: 20 concurrent creates of one username through the API give
// exactly one success and 19 × 409.
func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.do("POST", "/users", `{"username":"zed","firstname":"Z","lastname":"D"}`).Code
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[200] != 1 || count[409] != 19 {
		t.Fatalf("statuses %v, want one 200 and 19 409", count)
	}
}

func TestPaging(t *testing.T) {
	e := newEnv(t)
	for i := range 25 {
		e.must(200, "POST", "/users", fmt.Sprintf(`{"username":"u%02d","firstname":"F","lastname":"L"}`, i))
	}
	var seen []string
	start := "0"
	for pages := 0; ; pages++ {
		w := e.do("GET", "/users/?all=true&count=10&start="+start, "")
		if w.Code != 200 || w.Header().Get("X-Total-Count") != "25" {
			t.Fatalf("page: %d total %q", w.Code, w.Header().Get("X-Total-Count"))
		}
		m := decode(t, w.Body.Bytes())
		for _, u := range m["users"].([]any) {
			seen = append(seen, u.(map[string]any)["username"].(string))
		}
		next := m["nextKey"].(float64)
		if next == 0 {
			break
		}
		start = fmt.Sprint(int64(next))
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 25 || seen[0] != "u00" || seen[24] != "u24" {
		t.Errorf("paged users: %v", seen)
	}
	if !strings.Contains(e.do("GET", "/users?count=5", "").Body.String(), `"nextKey":6`) {
		t.Errorf("nextKey is not the JSON number of the next user")
	}
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// TestEmailChangeClearsVerified: a new email is unverified unless the same body
// says otherwise.
func TestEmailChangeClearsVerified(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"ivy","firstname":"I","lastname":"V","email":"ivy@example.com","emailVerified":true}`)
	if u := e.must(200, "PUT", "/users/ivy", `{"firstname":"Ivy"}`); u["emailVerified"] != true {
		t.Errorf("an unrelated change cleared emailVerified")
	}
	if u := e.must(200, "PUT", "/users/ivy", `{"email":"ivy@example.net"}`); u["emailVerified"] != false {
		t.Errorf("a new email kept emailVerified")
	}
	// The new address gets a verification link, which verifies it.
	token := e.mail.lastToken("verify", "ivy@example.net")
	if token == "" {
		t.Fatalf("no verification mail to the new address: %+v", e.mail.sent())
	}
	if w := e.pub("POST", "/auth/providers/email/verify", `{"token":"`+token+`"}`); w.Code != 200 {
		t.Fatalf("verifying the new address: %d %s", w.Code, w.Body)
	}
	if u := e.must(200, "GET", "/users/ivy", ""); u["emailVerified"] != true {
		t.Errorf("the new address is not verified: %v", u["emailVerified"])
	}
	if u := e.must(200, "PUT", "/users/ivy", `{"email":"ivy@example.org","emailVerified":true}`); u["emailVerified"] != true {
		t.Errorf("an explicit emailVerified was overridden")
	}
	// The old email is free again; the new one is taken.
	e.must(200, "POST", "/users", `{"username":"jo","firstname":"J","lastname":"O","email":"ivy@example.com"}`)
	e.must(409, "PUT", "/users/jo", `{"email":"IVY@example.org"}`)
}

// TestScopeReRegistration: a deleted scope stops being effective at once, and
// registering the same name again does not revive the old grants.
func TestScopeReRegistration(t *testing.T) {
	e := newEnv(t)
	e.must(200, "POST", "/users", `{"username":"kim","firstname":"K","lastname":"M"}`)
	e.must(201, "POST", "/scopes", `{"scopes":["admin","read"]}`)
	key := e.must(200, "POST", "/credentials", `{"consumerId":"kim","type":"key-auth","credential":{"scopes":["admin","read"]}}`)["keyId"].(string)
	scopes := func() any { return e.must(200, "GET", "/credentials/key-auth/"+key, "")["scopes"] }
	e.must(204, "DELETE", "/scopes/admin", "")
	if got := scopes(); !cmp.Equal(got, []any{"read"}) {
		t.Errorf("after delete: %v", got)
	}
	e.must(201, "PUT", "/scopes/admin", "")
	if got := scopes(); !cmp.Equal(got, []any{"read"}) {
		t.Errorf("re-registration revived a grant: %v", got)
	}
	e.must(204, "PUT", "/credentials/key-auth/"+key+"/scopes/admin", "")
	if got := scopes(); !cmp.Equal(got, []any{"read", "admin"}) {
		t.Errorf("granted again: %v", got)
	}
	e.must(409, "PUT", "/scopes/admin", "")
	e.must(404, "DELETE", "/scopes/nothing", "")
}
