// Package openapi holds Gatehouse's OpenAPI 3.1 document (gatehouse.yaml):
// the native admin API and the public API, written once and embedded in the
// binary. adminapi serves it as JSON at GET /openapi.json on both listeners;
// package openapitest validates the test suites' requests and answers
// against it, so it cannot drift from what the handlers do.
package openapi

import (
	_ "embed"
	"sync"

	"sigs.k8s.io/yaml"
)

// YAML is the document as written.
//
//go:embed gatehouse.yaml
var YAML []byte

var asJSON = sync.OnceValues(func() ([]byte, error) { return yaml.YAMLToJSON(YAML) })

// JSON returns the document as JSON (converted once). An error means the
// embedded YAML does not parse, which the package's tests rule out.
func JSON() ([]byte, error) { return asJSON() }

// Listeners are the listeners the document describes, named as in its servers' descriptions.
const (
	Admin  = "admin"
	Public = "public"
)

// Route is a route of one of the listeners, as the server registered it.
type Route struct {
	Listener     string // Admin or Public
	Method, Path string // the httprouter pattern (/users/:id), one entry per slash form
	// Described is true for the routes of the native admin and public APIs,
	// which the document describes, and false for a dialect's, which it
	// leaves out.
	Described bool
	// Honours are the request headers the route's handler honours
	// ("If-Match", "Idempotency-Key"): the document must declare each as a
	// parameter of the operation, with the answers it produces (412; 409 and
	// 422).
	Honours []string
}
