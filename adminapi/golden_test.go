package adminapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core/redisstore"
	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// transcript records requests and normalised responses for a golden file: ids,
// times and secrets become stable placeholders, so the file shows the shapes and
// statuses a client sees.
type transcript struct {
	e     *env
	buf   bytes.Buffer
	names map[string]string // volatile value → placeholder
	count map[string]int
}

func newTranscript(e *env) *transcript {
	return &transcript{e: e, names: map[string]string{}, count: map[string]int{}}
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`)
	reqRE  = regexp.MustCompile(`"requestId": ?"[^"]*"`)
)

// placeholder names a volatile value, the same one every time it appears.
func (tr *transcript) placeholder(kind, v string) string {
	if p, ok := tr.names[v]; ok {
		return p
	}
	tr.count[kind]++
	p := fmt.Sprintf("<%s-%d>", kind, tr.count[kind])
	tr.names[v] = p
	return p
}

// normalize replaces volatile values in s.
func (tr *transcript) normalize(s string) string {
	s = uuidRE.ReplaceAllStringFunc(s, func(v string) string { return tr.placeholder("id", v) })
	s = timeRE.ReplaceAllString(s, `"<time>"`)
	s = reqRE.ReplaceAllString(s, `"requestId": "<req>"`)
	for v, p := range tr.names {
		s = strings.ReplaceAll(s, v, p)
	}
	return s
}

// step sends a request, checks its status and records both; it returns the body.
func (tr *transcript) step(want int, method, path, body string) map[string]any {
	tr.e.t.Helper()
	w := tr.e.do(method, path, body)
	if w.Code != want {
		tr.e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, w.Code, want, w.Body)
	}
	m := decode(tr.e.t, w.Body.Bytes())
	for _, k := range []string{"keySecret", "password", "secret", "key"} {
		if v, ok := m[k].(string); ok {
			tr.placeholder(k, v)
		}
	}
	if v, ok := m["keyId"].(string); ok && !strings.Contains(body, v) { // generated, not chosen
		tr.placeholder("keyId", v)
	}
	fmt.Fprintf(&tr.buf, "%s %s\n", method, tr.normalize(path))
	if body != "" {
		fmt.Fprintf(&tr.buf, "%s\n", tr.normalize(body))
	}
	fmt.Fprintf(&tr.buf, "→ %d", w.Code)
	for _, h := range []string{"Content-Type", "X-Total-Count"} {
		if v := w.Header().Get(h); v != "" {
			fmt.Fprintf(&tr.buf, " %s: %s", h, v)
		}
	}
	tr.buf.WriteString("\n")
	if m != nil {
		tr.buf.WriteString(tr.normalize(indent(w.Body.Bytes())))
	}
	tr.buf.WriteString("\n")
	return m
}

func indent(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	out, _ := json.MarshalIndent(v, "", "  ") // map keys come out sorted
	return string(out) + "\n"
}

// check compares the transcript with testdata/name.golden (rewritten with -update).
func (tr *transcript) check(name string) {
	tr.e.t.Helper()
	path := filepath.Join("testdata", name+".golden")
	got := tr.buf.String()
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tr.e.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			tr.e.t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tr.e.t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		tr.e.t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

// TestExpressGatewayFlow walks the Express Gateway admin API the way its clients
// do (trailing slashes, usernames and app names as ids, status answers) and
// records every answer in testdata/eg_flow.golden.
func TestExpressGatewayFlow(t *testing.T) {
	expressGatewayFlow(t, newEnv(t))
}

// TestExpressGatewayFlowSentinel walks the same flow, to the same golden
// transcript, on a Sentinel-managed primary with one replica.
func TestExpressGatewayFlowSentinel(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t) // skips under -short
	opts, err := redisstore.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := redisstore.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	expressGatewayFlow(t, newEnvOn(t, client, nil))
}

func expressGatewayFlow(t *testing.T, e *env) {
	tr := newTranscript(e)
	bob := tr.step(200, "POST", "/users/", `{"username":"bob","firstname":"Bob","lastname":"Brown","email":"Bob@Example.COM","redirectUri":"https://example.com/cb"}`)
	bobID := bob["id"].(string)
	tr.step(200, "GET", "/users/bob", "")
	tr.step(200, "GET", "/users/"+bobID+"/", "")
	tr.step(200, "PUT", "/users/bob", `{"firstname":"Robert","username":"ignored"}`)
	tr.step(409, "POST", "/users", `{"username":"BOB","firstname":"B","lastname":"B"}`)
	tr.step(200, "GET", "/users/?all=true", "")
	tr.step(200, "POST", "/apps/", `{"name":"My App","userId":"bob","redirectUri":"https://example.com/app"}`)
	tr.step(200, "GET", "/apps/My%20App", "")
	tr.step(201, "POST", "/scopes/", `{"scopes":["read","write"]}`)
	tr.step(200, "GET", "/scopes", "")
	tr.step(200, "GET", "/scopes/read", "")
	key := tr.step(200, "POST", "/credentials/", `{"consumerId":"bob","type":"key-auth","credential":{"scopes":["read"]}}`)
	keyID := key["keyId"].(string)
	tr.step(200, "GET", "/credentials/key-auth/"+keyID, "")
	tr.step(204, "PUT", "/credentials/key-auth/"+keyID+"/scopes/write", "")
	tr.step(204, "PUT", "/credentials/key-auth/"+keyID+"/scopes/", `{"scopes":["write"]}`)
	tr.step(204, "DELETE", "/credentials/key-auth/"+keyID+"/scopes/write", "")
	tr.step(200, "POST", "/credentials", `{"consumerId":"bob","type":"basic-auth","credential":{"scopes":"read"}}`)
	tr.step(409, "POST", "/credentials", `{"consumerId":"bob","type":"basic-auth","credential":{}}`)
	tr.step(200, "POST", "/credentials", `{"consumerId":"My App","type":"key-auth","credential":{"keyId":"my-app-key","keySecret":"0123456789abcdef0123456789abcdef"}}`)
	tr.step(200, "GET", "/credentials/bob", "")
	tr.step(200, "GET", "/credentials/basic-auth/bob", "")
	tr.step(200, "PUT", "/users/bob/status", `{"status":false}`)
	tr.step(200, "PUT", "/users/bob/status/", `{"status":false}`)
	tr.step(200, "GET", "/apps/My%20App", "")
	tr.step(200, "GET", "/credentials/key-auth/my-app-key", "")
	tr.step(200, "PUT", "/credentials/key-auth/my-app-key/status", `{"status":false}`)
	tr.step(200, "PUT", "/users/bob/status", `{"status":true}`)
	tr.step(200, "GET", "/credentials/key-auth/my-app-key", "")
	tr.step(204, "DELETE", "/scopes/read", "")
	tr.step(200, "GET", "/credentials/key-auth/"+keyID, "")
	tr.step(200, "GET", "/credentials?count=2", "")
	tr.step(204, "DELETE", "/credentials/key-auth/my-app-key", "")
	tr.step(204, "DELETE", "/users/bob", "")
	tr.step(404, "GET", "/users/bob", "")
	tr.step(404, "GET", "/credentials/key-auth/"+keyID, "")
	tr.step(404, "GET", "/apps/My%20App", "")
	tr.check("eg_flow")
}
