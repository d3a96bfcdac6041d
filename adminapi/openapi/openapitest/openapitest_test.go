package openapitest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCheckerCatchesDrift: answers and requests that disagree with the
// document are reported, and those that agree are not.
func TestCheckerCatchesDrift(t *testing.T) {
	const user = `{"id":"6f1c2a4e-8f55-4c1e-9d1a-5a0e3f7b2c10","number":1,"username":"ada","emailVerified":false,"sessionsLimit":null,"isActive":true,"createdAt":"2026-01-02T03:04:05.000Z","updatedAt":"2026-01-02T03:04:05.000Z","firstname":"Ada"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		answer, contentType      string
		wantFault                string // "" when the exchange matches
	}{
		{"a user as described", "GET", "/users/ada", "", 200, user, "application/json", ""},
		{"a custom property is allowed", "PUT", "/users/ada", `{"nickname":"a"}`, 200, user, "application/json", ""},
		{"a user without its number", "GET", "/users/ada", "", 200, strings.Replace(user, `"number":1,`, "", 1), "application/json", "does not match"},
		{"a number as a string", "GET", "/users/ada", "", 200, strings.Replace(user, `"number":1`, `"number":"1"`, 1), "application/json", "does not match"},
		{"an undocumented status", "PUT", "/scopes/read", "", 200, `{"scope":"read"}`, "application/json", "does not match"},
		{"an error that is not a problem", "GET", "/users/ada", "", 404, `{"message":"no"}`, "application/json", "does not match"},
		{"a refused request answered 200", "PUT", "/users/ada/status", `{"status":"yes"}`, 200, `{"status":"Activated"}`, "application/json", "refuses the request"},
		{"a refused request answered 422", "PUT", "/users/ada/status", `{"status":"yes"}`, 422, `{"type":"urn:gatehouse:problem:invalid","title":"Validation Failed","status":422}`, "application/problem+json", ""},
		{"an undescribed route that answers", "GET", "/nowhere", "", 200, `{}`, "application/json", "not described"},
		{"an undescribed route answered 404", "GET", "/nowhere", "", 404, `{"type":"t","title":"Not Found","status":404}`, "application/problem+json", ""},
	}
	c := For(t, "admin")
	for _, tc := range cases {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		req.Header.Set("x-api-key", "k")
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {tc.contentType}}}
		got := c.Check(req, []byte(tc.body), resp, []byte(tc.answer))
		switch {
		case tc.wantFault == "" && got != "":
			t.Errorf("%s: reported %s", tc.name, got)
		case tc.wantFault != "" && !strings.Contains(got, tc.wantFault):
			t.Errorf("%s: reported %q, want a fault saying %q", tc.name, got, tc.wantFault)
		}
	}
}
