package openapitest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminapi/openapi"
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

// tinyDoc is a document of one object, /things/{id}: declared is what it
// declares of the conditional and idempotency headers.
func tinyDoc(t *testing.T, declared bool) map[string]any {
	t.Helper()
	etag, ifMatch, idem, answers := "", "", "", ""
	if declared {
		etag = `"headers": {"ETag": {"$ref": "#/components/headers/ETag"}},`
		ifMatch = `"parameters": [{"name": "If-Match", "in": "header", "schema": {"type": "string"}}],`
		idem = `"parameters": [{"$ref": "#/components/parameters/idem"}],`
		answers = `"409": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"},`
	}
	src := `{
	  "openapi": "3.1.0", "info": {"title": "tiny", "version": "1"},
	  "paths": {
	    "/things": {"post": {` + idem + ` "responses": {` + answers + ` "200": {` + etag + ` "description": "made", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
	    "/things/{id}": {
	      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
	      "get": {"responses": {"200": {` + etag + ` "description": "one", "content": {"application/json": {"schema": {"type": "object"}}}}}},
	      "put": {` + ifMatch + ` "responses": {` + strings.Replace(strings.Replace(answers, "409", "412", 1), `"422": {"$ref": "#/components/responses/Problem"},`, "", 1) + ` "204": {"description": "done"}}}
	    }
	  },
	  "components": {
	    "headers": {"ETag": {"schema": {"type": "string"}}},
	    "parameters": {"idem": {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}},
	    "responses": {"Problem": {"description": "a problem", "content": {"application/problem+json": {"schema": {"type": "object"}}}}}
	  }
	}`
	var doc map[string]any
	if err := json.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestUndeclaredHeadersCaught: on a tiny document, an answer carrying an ETag
// its response does not declare is a fault, and so is a route honouring
// If-Match or Idempotency-Key whose operation does not declare the header
// and the answers it produces; the same exchanges and routes against the
// document that declares them pass.
func TestUndeclaredHeadersCaught(t *testing.T) {
	routes := []openapi.Route{
		{Listener: "admin", Method: "PUT", Path: "/things/:id", Described: true, Honours: []string{"If-Match"}},
		{Listener: "admin", Method: "PUT", Path: "/things/:id/", Described: true, Honours: []string{"If-Match"}},
		{Listener: "admin", Method: "POST", Path: "/things", Described: true, Honours: []string{"Idempotency-Key"}},
		{Listener: "admin", Method: "GET", Path: "/things/:id", Described: true},
		{Listener: "admin", Method: "DELETE", Path: "/dialect/:id", Described: false, Honours: []string{"If-Match"}},
		{Listener: "public", Method: "PUT", Path: "/things/:id", Described: true, Honours: []string{"If-Match"}},
	}
	for _, declared := range []bool{false, true} {
		doc := tinyDoc(t, declared)
		c, err := checkerOf("admin", doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range []struct{ method, path string }{{"GET", "/things/1"}, {"POST", "/things"}} {
			req := httptest.NewRequest(ex.method, ex.path, nil)
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}, "Etag": {`"v1"`}}}
			got := c.Check(req, nil, resp, []byte(`{}`))
			if declared && got != "" {
				t.Errorf("declared: %s %s with an ETag: reported %s", ex.method, ex.path, got)
			}
			if !declared && !strings.Contains(got, "carries ETag, which its response (200) does not declare") {
				t.Errorf("undeclared: %s %s with an ETag: reported %q, want the undeclared ETag", ex.method, ex.path, got)
			}
			resp.Header.Del("ETag")
			if got := c.Check(req, nil, resp, []byte(`{}`)); got != "" {
				t.Errorf("%s %s without an ETag: reported %s", ex.method, ex.path, got)
			}
		}
		faults := undeclared(doc, routes, "admin")
		want := []string{
			"PUT /things/:id honours If-Match, which its operation does not declare as a parameter",
			"PUT /things/:id honours If-Match, but its operation does not declare the 412 it answers",
			"POST /things honours Idempotency-Key, which its operation does not declare as a parameter",
			"POST /things honours Idempotency-Key, but its operation does not declare the 409 it answers",
			"POST /things honours Idempotency-Key, but its operation does not declare the 422 it answers",
		}
		if declared {
			want = nil
		}
		if !slices.Equal(faults, want) {
			t.Errorf("declared %v: faults\n\t%s\nwant\n\t%s", declared, strings.Join(faults, "\n\t"), strings.Join(want, "\n\t"))
		}
	}
	// A route the document does not have, and a header the check does not know.
	faults := undeclared(tinyDoc(t, true), []openapi.Route{
		{Listener: "admin", Method: "DELETE", Path: "/things/:id", Described: true, Honours: []string{"If-Match"}},
		{Listener: "admin", Method: "GET", Path: "/things/:id", Described: true, Honours: []string{"If-Unmodified-Since"}},
	}, "admin")
	if len(faults) != 2 || !strings.Contains(faults[0], "is not described") || !strings.Contains(faults[1], "does not know") {
		t.Errorf("faults %q, want an undescribed route and an unknown header", faults)
	}
}
