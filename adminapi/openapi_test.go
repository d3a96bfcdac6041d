package adminapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminapi/openapi"
	"github.com/gatehouse/gatehouse/adminapi/openapi/openapitest"
)

// TestOpenAPIDescribesEveryRoute: every route of the native admin and public
// APIs is in the OpenAPI document, on its listener and with its method, and
// every operation of the document is a route. A route that honours If-Match
// or Idempotency-Key has the header declared on its operation, with the
// answers it produces (openapitest.Undeclared).
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	srv := newEnv(t).srv
	for _, listener := range []string{"admin", "public"} {
		paths, err := openapitest.Paths(listener)
		if err != nil {
			t.Fatal(err)
		}
		described := map[string]bool{} // "METHOD shape"
		for p, ms := range paths {
			for _, m := range ms {
				described[m+" "+openapitest.Shape(p)] = true
			}
		}
		served := map[string]bool{}
		n := 0
		for _, rt := range srv.Routes() {
			if rt.Listener != listener || !rt.Described {
				continue
			}
			k := rt.Method + " " + openapitest.Shape(rt.Path)
			if !served[k] {
				n++
			}
			served[k] = true
			if !described[k] {
				t.Errorf("%s listener: route %s %s is not in adminapi/openapi/gatehouse.yaml", listener, rt.Method, rt.Path)
			}
		}
		for k := range described {
			if !served[k] {
				t.Errorf("%s listener: the document describes %s, which is not a route", listener, k)
			}
		}
		faults, err := openapitest.Undeclared(srv.Routes(), listener)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range faults {
			t.Errorf("%s listener: %s (adminapi/openapi/gatehouse.yaml)", listener, f)
		}
		honouring := 0
		for _, rt := range srv.Routes() {
			if rt.Listener == listener && len(rt.Honours) > 0 && !strings.HasSuffix(rt.Path, "/") {
				honouring++
			}
		}
		t.Logf("%s listener: %d native routes (method and path), all described; %d honour If-Match or Idempotency-Key, all declared", listener, n, honouring)
	}
}

// TestOpenAPIServed: GET /openapi.json answers the document as JSON on both
// listeners, with no key, and it is OpenAPI 3.1 describing both.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	want, err := openapi.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]http.Handler{"admin": e.admin, "public": e.public} {
		w := call(t, h, "GET", "/openapi.json", "")
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s: GET /openapi.json: %d %s", name, w.Code, w.Header().Get("Content-Type"))
		}
		if w.Body.String() != string(want) {
			t.Errorf("%s: the served document is not the embedded one", name)
		}
		var doc struct {
			OpenAPI string                     `json:"openapi"`
			Paths   map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.1") {
			t.Errorf("%s: openapi %q, want 3.1.x", name, doc.OpenAPI)
		}
		for _, p := range []string{"/users", "/credentials/{type}/{id}", "/auth/tokens", "/verify"} {
			if doc.Paths[p] == nil {
				t.Errorf("%s: the document lacks %s", name, p)
			}
		}
	}
}
