package adminapi

// TestExpressGatewayCLI drives the real Express Gateway CLI (express-gateway
// 1.16.11 from npm, pinned by testdata/eg/package.json and package-lock.json)
// against a Gatehouse admin listener, unchanged: EG_ADMIN_URL points it at the
// server and -H 'x-api-key: KEY' carries the admin key.
//
// The admin routes each command sends (read from bin/generators/*/ and admin/*.js
// of the package; superagent, JSON bodies):
//
//	eg users create -p k=v...          POST   /users/                       {model props}
//	eg users info U                    GET    /users/U
//	eg users list [-a]                 GET    /users/?all=false|true, then with -a
//	                                   GET    /users/?start=NEXTKEY          until nextKey is 0
//	eg users update U -p k=v...        GET    /users/U, then PUT /users/U    {every required prop}
//	eg users activate|deactivate U     PUT    /users/U/status                {"status":true|false}
//	eg users remove U                  DELETE /users/U
//	eg apps create -u U -p k=v...      POST   /apps/                         {props, "userId":U}
//	eg apps info|remove A              GET|DELETE /apps/A
//	eg apps list [-a]                  GET    /apps/?all=..., then ?start=NEXTKEY with -a
//	eg apps update A -p k=v...         GET    /apps/A, then PUT /apps/A      {props}
//	eg apps activate|deactivate A      PUT    /apps/A/status                 {"status":true|false}
//	eg scopes create S...              POST   /scopes/                       {"scopes":[S...]}
//	eg scopes list                     GET    /scopes/
//	eg scopes info|remove S            GET|DELETE /scopes/S
//	eg credentials create -c C -t T    POST   /credentials/                  {"consumerId":C,"type":T,"credential":{props}}
//	                                   (-q prints keyId:keySecret for key-auth and jwt, id:password for basic-auth)
//	eg credentials info ID -t T        GET    /credentials/T/ID
//	eg credentials list -c C           GET    /credentials/C                 (prints the isActive ones unless -f archived)
//	eg credentials activate|deactivate PUT    /credentials/T/ID/status       {"status":true|false}
//	eg credential:scopes add --id ID -t T S...     PUT    /credentials/T/ID/scopes/S   (one per scope, no body)
//	eg credential:scopes remove --id ID -t T S...  DELETE /credentials/T/ID/scopes/S
//	eg credential:scopes set --id ID -t T S...     PUT    /credentials/T/ID/scopes/    {"scopes":[S...]}
//
// eg exits 0 even when the server answers an error and writes its progress lines
// (✔ ok / ✖ error) and a yargs deprecation warning to stderr; data goes to stdout.
// So every step checks what eg printed and then re-reads the state through the
// admin API. `users update` and `apps update` prompt for any required property not
// given as -p; with stdin closed the prompt kills eg (SIGINT) before the PUT.
//	eg tokens revoke T                     DELETE /tokens/T                  (an OAuth access token)
//
// eg runs with HOME, TMPDIR and the working directory in temporary folders and
// EG_CONFIG_DIR at the package's own defaults, so it never reads or writes the
// developer's files. npm ci runs only when testdata/eg/node_modules is missing or
// incomplete; only this test uses that folder.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	egVersion    = "1.16.11"
	egDir        = "testdata/eg"
	egCmdTimeout = 60 * time.Second
	npmTimeout   = 5 * time.Minute
)

// egRequireNode skips the test, with a message, when node or npm is missing; with
// CI=true a missing tool is a failure. It returns node's path.
func egRequireNode(t *testing.T) string {
	t.Helper()
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		missing = append(missing, "npm")
	}
	if len(missing) == 0 {
		return node
	}
	msg := fmt.Sprintf("%s not found in PATH; install Node.js (tested with 20) and npm to run the Express Gateway CLI test",
		strings.Join(missing, " and "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing npm is a failure, not a skip)")
	}
	t.Skip(msg)
	return ""
}

// installEG runs `npm ci` in testdata/eg unless its node_modules already holds the
// pinned CLI, and returns the path of the CLI's entry point ("bin": {"eg": "./bin/index.js"}).
func installEG(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(egDir)
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(dir, "node_modules", "express-gateway")
	entry := filepath.Join(pkg, "bin", "index.js")
	// npm writes node_modules/.package-lock.json last: without it an install was cut short.
	if !egFileExists(entry) || !egFileExists(filepath.Join(dir, "node_modules", ".package-lock.json")) {
		ctx, cancel := context.WithTimeout(t.Context(), npmTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
		t.Logf("npm ci in %s took %s", egDir, time.Since(start).Round(100*time.Millisecond))
	}
	b, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &meta); err != nil || meta.Version != egVersion {
		t.Fatalf("%s holds express-gateway %q (%v), want %s: remove %s/node_modules and rerun",
			pkg, meta.Version, err, egVersion, egDir)
	}
	return entry
}

func egFileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// egCLI runs the eg CLI against one admin listener.
type egCLI struct {
	t     *testing.T
	node  string
	entry string
	dir   string   // working directory: an empty temporary folder
	env   []string // nothing of the developer's but PATH
	mu    sync.Mutex
	log   bytes.Buffer // every run, printed when the test fails
}

func newEGCLI(t *testing.T, node, entry, adminURL string) *egCLI {
	home := t.TempDir()
	c := &egCLI{t: t, node: node, entry: entry, dir: t.TempDir(), env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"TMPDIR=" + t.TempDir(),
		"EG_ADMIN_URL=" + adminURL,
		// The package's own defaults: never a gateway project of the developer's.
		"EG_CONFIG_DIR=" + filepath.Join(filepath.Dir(filepath.Dir(entry)), "lib", "config"),
		"NO_UPDATE_NOTIFIER=1",
		"FORCE_COLOR=0",
	}}
	t.Cleanup(func() {
		if t.Failed() {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Logf("eg transcript:\n%s", c.log.String())
		}
	})
	return c
}

// egYargsWarning is the deprecation notice every eg run writes to stderr.
const egYargsWarning = "Configuring yargs through package.json is deprecated"

// errEGTimeout marks an eg run killed after egCmdTimeout.
var errEGTimeout = errors.New("eg timed out")

// egRun is what one eg invocation printed.
type egRun struct {
	args   []string
	stdout string
	stderr string // without the yargs deprecation egLines
}

// invoke runs `eg ARGS -H 'x-api-key: KEY'` with stdin closed and returns what it
// printed; eg exits 0 on server errors, so an error here is a crash or a timeout.
// It may run on any goroutine.
func (c *egCLI) invoke(args ...string) (egRun, error) {
	ctx, cancel := context.WithTimeout(c.t.Context(), egCmdTimeout)
	defer cancel()
	argv := append([]string{c.entry}, args...)
	argv = append(argv, "-H", "x-api-key: "+testAdminKey)
	cmd := exec.CommandContext(ctx, c.node, argv...)
	cmd.Dir, cmd.Env, cmd.Stdin = c.dir, c.env, nil // nil: /dev/null, so a prompt ends at once
	cmd.WaitDelay = 5 * time.Second                 // a stray child holding stdout cannot hang the test
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := egRun{args: args, stdout: stdout.String()}
	for line := range strings.Lines(stderr.String()) {
		if !strings.Contains(line, egYargsWarning) {
			r.stderr += line
		}
	}
	c.mu.Lock()
	fmt.Fprintf(&c.log, "$ eg %s  (%s)\n", egShellJoin(args), time.Since(start).Round(time.Millisecond))
	c.log.WriteString(egIndent(r.stdout, "  1> "))
	c.log.WriteString(egIndent(r.stderr, "  2> "))
	c.mu.Unlock()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w: no answer within %s", errEGTimeout, egCmdTimeout)
	}
	if err != nil {
		return r, fmt.Errorf("eg %s: %w\nstdout: %s\nstderr: %s", egShellJoin(args), err, r.stdout, r.stderr)
	}
	return r, nil
}

// run runs one eg command; a crash or a timeout fails the test.
func (c *egCLI) run(args ...string) egRun {
	c.t.Helper()
	r, err := c.invoke(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// runAll runs eg commands at once (each node start costs about half a second)
// and returns what each printed, in order.
func (c *egCLI) runAll(cmds ...[]string) []egRun {
	c.t.Helper()
	out := make([]egRun, len(cmds))
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Go(func() { out[i], errs[i] = c.invoke(args...) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// ok runs eg and fails the test when eg reported an error (✖ on stderr) or when
// want is missing from its stderr, where eg writes its progress ("✔ Created ...").
func (c *egCLI) ok(want string, args ...string) egRun {
	c.t.Helper()
	r := c.run(args...)
	c.checkOK(r, want)
	return r
}

func (c *egCLI) checkOK(r egRun, want string) {
	c.t.Helper()
	if strings.Contains(r.stderr, "✖") || !strings.Contains(r.stderr, want) {
		c.t.Fatalf("eg %s: stderr %q, want %q and no error\nstdout: %s", egShellJoin(r.args), r.stderr, want, r.stdout)
	}
}

func egShellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \"'[]{}$*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

func egIndent(s, prefix string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString(prefix + strings.TrimRight(line, "\n") + "\n")
	}
	return b.String()
}

// egLines returns the non-empty lines of s.
func egLines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// egJSONObjects decodes the JSON objects eg printed one after another (JSON.stringify(x, null, 2)).
func egJSONObjects(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("eg printed something else than JSON objects: %v\n%s", err, s)
		}
		out = append(out, m)
	}
}

// egJSONObject decodes the one JSON object eg printed.
func egJSONObject(t *testing.T, s string) map[string]any {
	t.Helper()
	objs := egJSONObjects(t, s)
	if len(objs) != 1 {
		t.Fatalf("eg printed %d JSON objects, want 1:\n%s", len(objs), s)
	}
	return objs[0]
}

// egStrings returns a JSON array of strings (nil for anything else, so a
// comparison fails instead of the test panicking).
func egStrings(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestExpressGatewayCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the Express Gateway CLI test starts node about 50 times")
	}
	node := egRequireNode(t)
	entry := installEG(t)

	e := newEnv(t)
	srv := httptest.NewServer(e.admin) // listens on 127.0.0.1:0
	t.Cleanup(srv.Close)
	eg := newEGCLI(t, node, entry, srv.URL)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", e.logs.String())
		}
	})

	// Scopes ---------------------------------------------------------------
	eg.ok("Created s1,s2,s3", "scopes", "create", "s1", "s2", "s3")
	if got := egStrings(e.must(200, "GET", "/scopes", "")["scopes"]); !slices.Equal(egSorted(got), []string{"s1", "s2", "s3"}) {
		t.Fatalf("GET /scopes after eg scopes create: %v", got)
	}
	eg.ok("Removed s3", "scopes", "remove", "s3")
	e.must(404, "GET", "/scopes/s3", "")
	rs := eg.runAll(
		[]string{"scopes", "list"},
		[]string{"scopes", "info", "s1"},
		[]string{"scopes", "info", "s3"},
	)
	if got := egLines(rs[0].stdout); !slices.Equal(egSorted(got), []string{"s1", "s2"}) {
		t.Errorf("eg scopes list printed %q, want s1 and s2", got)
	}
	if rs[1].stdout != "s1\n" {
		t.Errorf("eg scopes info s1 printed %q", rs[1].stdout)
	}
	// A missing scope: nothing on stdout, the status on stderr.
	if rs[2].stdout != "" || !strings.Contains(rs[2].stderr, "Not Found") {
		t.Errorf("eg scopes info s3 (removed): stdout %q, stderr %q; want Not Found", rs[2].stdout, rs[2].stderr)
	}

	// Users ----------------------------------------------------------------
	r := eg.ok("Created ", "users", "create",
		"-p", "username=alice", "-p", "firstname=Alice", "-p", "lastname=Liddell", "-p", "email=alice@example.com")
	alice := egJSONObject(t, r.stdout)
	aliceID, _ := alice["id"].(string)
	if alice["username"] != "alice" || alice["email"] != "alice@example.com" || alice["isActive"] != true || !uuidRE.MatchString(aliceID) {
		t.Fatalf("eg users create printed %v", alice)
	}
	if !strings.Contains(r.stderr, "Created "+aliceID) {
		t.Errorf("eg users create: stderr %q does not name the new id %s", r.stderr, aliceID)
	}
	if got := e.must(200, "GET", "/users/alice", ""); got["id"] != aliceID || got["firstname"] != "Alice" || got["lastname"] != "Liddell" {
		t.Fatalf("GET /users/alice after eg users create: %v", got)
	}
	r = eg.run("users", "create", "-q", "-p", "username=bob", "-p", "firstname=Bob", "-p", "lastname=Brown")
	bobID := strings.TrimSpace(r.stdout)
	if got := e.must(200, "GET", "/users/bob", ""); got["id"] != bobID {
		t.Fatalf("eg users create -q printed %q, GET /users/bob has id %v", r.stdout, got["id"])
	}
	// 101 more users through the API: the default page is 100, so `list -a`
	// follows nextKey and a plain `list` stops after the first page.
	want := []string{"alice", "bob"}
	for i := range 101 {
		name := fmt.Sprintf("bulk-%03d", i)
		e.must(200, "POST", "/users", fmt.Sprintf(`{"username":%q,"firstname":"Bulk","lastname":"User"}`, name))
		want = append(want, name)
	}
	rs = eg.runAll(
		[]string{"users", "create", "-p", "username=ALICE", "-p", "firstname=A", "-p", "lastname=L"},
		[]string{"users", "info", "alice"},
		[]string{"users", "info", "-q", bobID},
		[]string{"users", "list", "-q"},
		[]string{"users", "list", "-a", "-q"},
		[]string{"users", "list", "-a"},
	)
	// The same username again: eg shows the server's problem text.
	if rs[0].stdout != "" || !strings.Contains(rs[0].stderr, "✖") || !strings.Contains(rs[0].stderr, "409") {
		t.Errorf("eg users create (taken username): stdout %q, stderr %q; want the 409 problem", rs[0].stdout, rs[0].stderr)
	}
	if got := egJSONObject(t, rs[1].stdout); got["id"] != aliceID || got["username"] != "alice" {
		t.Errorf("eg users info alice printed %v", got)
	}
	if rs[2].stdout != bobID+"\n" {
		t.Errorf("eg users info -q %s printed %q", bobID, rs[2].stdout)
	}
	if got := egLines(rs[3].stdout); !slices.Equal(got, want[:100]) {
		t.Errorf("eg users list -q printed %d names, want the first page of 100 in creation order: %q", len(got), got)
	}
	if got := egLines(rs[4].stdout); !slices.Equal(got, want) {
		t.Errorf("eg users list -a -q printed %d names, want all %d in creation order: %q", len(got), len(want), got)
	}
	if got := egJSONObjects(t, rs[5].stdout); len(got) != len(want) || got[0]["username"] != "alice" || got[len(got)-1]["username"] != want[len(want)-1] {
		t.Errorf("eg users list -a printed %d users, want %d", len(got), len(want))
	}
	// Without every required property as -p, eg prompts for the missing ones; with
	// stdin closed the prompt ends the process (inquirer kills it with SIGINT) and
	// no PUT is sent.
	r, err := eg.invoke("users", "update", "bob", "-p", "firstname=Robert")
	if errors.Is(err, errEGTimeout) {
		t.Fatal(err)
	}
	if got := e.must(200, "GET", "/users/bob", ""); !strings.Contains(r.stdout, "Enter lastname") || strings.Contains(r.stderr, "Updated") || got["firstname"] != "Bob" {
		t.Errorf("eg users update bob -p firstname=Robert (lastname, username missing): stdout %q, stderr %q, firstname now %v; want a prompt and no update",
			r.stdout, r.stderr, got["firstname"])
	}
	// update needs every required property as -p; PUT ignores username.
	eg.ok("Updated alice", "users", "update", "alice", "-p", "username=alice", "-p", "firstname=Alicia", "-p", "lastname=Hargreaves")
	if got := e.must(200, "GET", "/users/"+aliceID, ""); got["firstname"] != "Alicia" || got["lastname"] != "Hargreaves" ||
		got["username"] != "alice" || got["email"] != "alice@example.com" {
		t.Fatalf("GET /users/alice after eg users update: %v", got)
	}
	eg.ok("Deactivated alice", "users", "deactivate", "alice")
	if got := e.must(200, "GET", "/users/alice", ""); got["isActive"] != false {
		t.Fatalf("GET /users/alice after eg users deactivate: isActive %v", got["isActive"])
	}
	eg.ok("Activated alice", "users", "activate", "alice")
	if got := e.must(200, "GET", "/users/alice", ""); got["isActive"] != true {
		t.Fatalf("GET /users/alice after eg users activate: isActive %v", got["isActive"])
	}

	// Apps -----------------------------------------------------------------
	rs = eg.runAll(
		[]string{"apps", "create", "-u", "alice", "-p", "name=Alice App", "-p", "redirectUri=https://example.com/cb"},
		[]string{"apps", "create", "-q", "-u", bobID, "-p", "name=bob-app"},
	)
	eg.checkOK(rs[0], "Created ")
	app := egJSONObject(t, rs[0].stdout)
	appID, _ := app["id"].(string)
	if app["name"] != "Alice App" || app["userId"] != aliceID || app["redirectUri"] != "https://example.com/cb" || app["isActive"] != true {
		t.Fatalf("eg apps create printed %v", app)
	}
	e.must(200, "GET", "/apps/"+appID, "")
	bobAppID := strings.TrimSpace(rs[1].stdout)
	if got := e.must(200, "GET", "/apps/bob-app", ""); got["id"] != bobAppID || got["userId"] != bobID {
		t.Fatalf("eg apps create -q printed %q; GET /apps/bob-app: %v", bobAppID, got)
	}
	rs = eg.runAll(
		[]string{"apps", "info", appID},
		[]string{"apps", "info", "Alice App"},
		[]string{"apps", "list", "-q"},
		[]string{"apps", "list", "-a"},
	)
	if got := egJSONObject(t, rs[0].stdout); got["id"] != appID || got["name"] != "Alice App" {
		t.Errorf("eg apps info %s printed %v", appID, got)
	}
	if got := egJSONObject(t, rs[1].stdout); got["id"] != appID {
		t.Errorf("eg apps info 'Alice App' printed %v", got)
	}
	if got := egLines(rs[2].stdout); !slices.Equal(egSorted(got), egSorted([]string{appID, bobAppID})) {
		t.Errorf("eg apps list -q printed %q, want %s and %s", got, appID, bobAppID)
	}
	var names []string
	for _, a := range egJSONObjects(t, rs[3].stdout) {
		names = append(names, fmt.Sprint(a["name"]))
	}
	if !slices.Equal(egSorted(names), []string{"Alice App", "bob-app"}) {
		t.Errorf("eg apps list -a printed the apps %q, want Alice App and bob-app", names)
	}
	eg.ok("Updated "+appID, "apps", "update", appID, "-p", "name=Alice Web", "-p", "redirectUri=https://example.com/cb2")
	if got := e.must(200, "GET", "/apps/"+appID, ""); got["name"] != "Alice Web" || got["redirectUri"] != "https://example.com/cb2" || got["userId"] != aliceID {
		t.Fatalf("GET /apps/{id} after eg apps update: %v", got)
	}
	eg.ok("Deactivated "+appID, "apps", "deactivate", appID)
	if got := e.must(200, "GET", "/apps/"+appID, ""); got["isActive"] != false {
		t.Fatalf("GET /apps/{id} after eg apps deactivate: isActive %v", got["isActive"])
	}
	eg.ok("Activated "+appID, "apps", "activate", appID)
	if got := e.must(200, "GET", "/apps/"+appID, ""); got["isActive"] != true {
		t.Fatalf("GET /apps/{id} after eg apps activate: isActive %v", got["isActive"])
	}
	eg.ok("Removed bob-app", "apps", "remove", "bob-app")
	e.must(404, "GET", "/apps/"+bobAppID, "")

	// Credentials ----------------------------------------------------------
	rs = eg.runAll(
		[]string{"credentials", "create", "-c", "alice", "-t", "key-auth", "-q"},
		[]string{"credentials", "create", "-c", "alice", "-t", "basic-auth", "-q"},
		[]string{"credentials", "create", "-c", "alice", "-t", "key-auth", "-p", `scopes=["s1"]`},
		// A bare -p scopes=NAME: eg wraps it in an array. The consumer is the app.
		[]string{"credentials", "create", "-c", appID, "-t", "key-auth", "-p", "scopes=s2"},
		[]string{"credentials", "create", "-c", appID, "-t", "oauth2"},
		[]string{"credentials", "create", "-c", "alice", "-t", "jwt", "-q"},
	)
	keyID, keySecret, _ := strings.Cut(strings.TrimSpace(rs[0].stdout), ":")
	if keyID == "" || keySecret == "" {
		t.Fatalf("eg credentials create -t key-auth -q printed %q, want keyId:keySecret", rs[0].stdout)
	}
	if got := e.must(200, "GET", "/credentials/key-auth/"+keyID, ""); got["consumerId"] != aliceID || got["isActive"] != true || got["keySecret"] != nil {
		t.Fatalf("GET /credentials/key-auth/%s after eg credentials create: %v", keyID, got)
	}
	basicID, basicPassword, _ := strings.Cut(strings.TrimSpace(rs[1].stdout), ":")
	if basicID != aliceID || basicPassword == "" {
		t.Fatalf("eg credentials create -t basic-auth -q printed %q, want alice's id %s and a password", rs[1].stdout, aliceID)
	}
	if got := e.must(200, "GET", "/credentials/basic-auth/alice", ""); got["consumerId"] != aliceID || got["password"] != nil {
		t.Fatalf("GET /credentials/basic-auth/alice after eg credentials create: %v", got)
	}
	eg.checkOK(rs[2], "Created ")
	scoped := egJSONObject(t, rs[2].stdout)
	scopedID, _ := scoped["keyId"].(string)
	if scoped["keySecret"] == nil || !slices.Equal(egStrings(scoped["scopes"]), []string{"s1"}) {
		t.Fatalf("eg credentials create -p scopes=[\"s1\"] printed %v", scoped)
	}
	if got := e.must(200, "GET", "/credentials/key-auth/"+scopedID, ""); !slices.Equal(egStrings(got["scopes"]), []string{"s1"}) {
		t.Fatalf("GET /credentials/key-auth/%s: scopes %v, want [s1]", scopedID, got["scopes"])
	}
	eg.checkOK(rs[3], "Created ")
	appKeyID, _ := egJSONObject(t, rs[3].stdout)["keyId"].(string)
	if got := e.must(200, "GET", "/credentials/key-auth/"+appKeyID, ""); got["consumerId"] != appID || !slices.Equal(egStrings(got["scopes"]), []string{"s2"}) {
		t.Fatalf("GET /credentials/key-auth/%s (eg credentials create -c APPID -p scopes=s2): %v", appKeyID, got)
	}
	eg.checkOK(rs[4], "Created "+appID)
	oauth := egJSONObject(t, rs[4].stdout)
	if oauth["id"] != appID || oauth["type"] != "oauth2" || oauth["secret"] == nil {
		t.Fatalf("eg credentials create -c APPID -t oauth2 printed %v, want the app's id and a secret", oauth)
	}
	e.must(200, "GET", "/credentials/oauth2/"+appID, "")
	// eg tokens revoke: an access token of the app's oauth2 credential stops verifying.
	_, tok := e.clientToken(appID, oauth["secret"].(string), "")
	access := tok["access_token"].(string)
	if e.verifyBearer(access) != 200 {
		t.Fatalf("the app's access token does not verify")
	}
	eg.ok("Access token has been revoked", "tokens", "revoke", access)
	if code := e.verifyBearer(access); code != 401 {
		t.Errorf("after eg tokens revoke: /verify answers %d, want 401", code)
	}
	jwtID, jwtSecret, _ := strings.Cut(strings.TrimSpace(rs[5].stdout), ":")
	if jwtID == "" || jwtSecret == "" {
		t.Fatalf("eg credentials create -t jwt -q printed %q, want keyId:keySecret", rs[5].stdout)
	}
	if got := e.must(200, "GET", "/credentials/jwt/"+jwtID, ""); got["consumerId"] != aliceID || got["algorithm"] != "HS256" {
		t.Fatalf("GET /credentials/jwt/%s after eg credentials create: %v", jwtID, got)
	}
	rs = eg.runAll(
		[]string{"credentials", "info", keyID, "-t", "key-auth"},
		[]string{"credentials", "info", "alice", "-t", "basic-auth"},
		[]string{"credentials", "list", "-c", "alice"},
	)
	if got := egJSONObject(t, rs[0].stdout); got["keyId"] != keyID || got["isActive"] != true || got["keySecret"] != nil {
		t.Errorf("eg credentials info %s -t key-auth printed %v", keyID, got)
	}
	if got := egJSONObject(t, rs[1].stdout); got["consumerId"] != aliceID || got["type"] != "basic-auth" || got["password"] != nil {
		t.Errorf("eg credentials info alice -t basic-auth printed %v", got)
	}
	if got := egCredentialIDs(egJSONObjects(t, rs[2].stdout)); !slices.Equal(egSorted(got), egSorted([]string{keyID, basicID, scopedID, jwtID})) {
		t.Errorf("eg credentials list -c alice printed %v, want %s, %s, %s and %s", got, keyID, basicID, scopedID, jwtID)
	}
	eg.ok("Deactivated "+keyID, "credentials", "deactivate", keyID, "-t", "key-auth")
	if got := e.must(200, "GET", "/credentials/key-auth/"+keyID, ""); got["isActive"] != false {
		t.Fatalf("GET /credentials/key-auth/%s after eg credentials deactivate: isActive %v", keyID, got["isActive"])
	}
	// list prints the active ones by default, the others with -f archived.
	rs = eg.runAll(
		[]string{"credentials", "list", "-c", "alice"},
		[]string{"credentials", "list", "-c", "alice", "-f", "archived"},
	)
	if got := egCredentialIDs(egJSONObjects(t, rs[0].stdout)); !slices.Equal(egSorted(got), egSorted([]string{basicID, scopedID, jwtID})) {
		t.Errorf("eg credentials list -c alice after deactivate printed %v, want %s, %s and %s", got, basicID, scopedID, jwtID)
	}
	if got := egCredentialIDs(egJSONObjects(t, rs[1].stdout)); !slices.Equal(got, []string{keyID}) {
		t.Errorf("eg credentials list -c alice -f archived printed %v, want %s", got, keyID)
	}
	eg.ok("Activated "+keyID, "credentials", "activate", keyID, "-t", "key-auth")
	if got := e.must(200, "GET", "/credentials/key-auth/"+keyID, ""); got["isActive"] != true {
		t.Fatalf("GET /credentials/key-auth/%s after eg credentials activate: isActive %v", keyID, got["isActive"])
	}

	// Credential scopes ----------------------------------------------------
	credScopes := func() []string {
		t.Helper()
		return egSorted(egStrings(e.must(200, "GET", "/credentials/key-auth/"+keyID, "")["scopes"]))
	}
	r = eg.ok("Scope s2 added to "+keyID, "credential:scopes", "add", "--id", keyID, "-t", "key-auth", "s1", "s2")
	if !strings.Contains(r.stderr, "Scope s1 added to "+keyID) {
		t.Errorf("eg credential:scopes add s1 s2: stderr %q", r.stderr)
	}
	if got := credScopes(); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Fatalf("scopes after eg credential:scopes add s1 s2: %v", got)
	}
	eg.ok("Scope s1 removed from "+keyID, "credential:scopes", "remove", "--id", keyID, "-t", "key-auth", "s1")
	if got := credScopes(); !slices.Equal(got, []string{"s2"}) {
		t.Fatalf("scopes after eg credential:scopes remove s1: %v", got)
	}
	eg.ok("Scopes s1 set for "+keyID, "credential:scopes", "set", "--id", keyID, "-t", "key-auth", "s1")
	if got := credScopes(); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("scopes after eg credential:scopes set s1: %v", got)
	}
	// An unregistered scope: eg shows the server's refusal and nothing changes.
	r = eg.run("credential:scopes", "add", "--id", keyID, "-t", "key-auth", "s3")
	if !strings.Contains(r.stderr, "Error adding scope s3") || strings.Contains(r.stderr, "added to") {
		t.Errorf("eg credential:scopes add s3 (unregistered): stderr %q, want an error", r.stderr)
	}
	if got := credScopes(); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("scopes after a refused eg credential:scopes add s3: %v", got)
	}

	// Removal --------------------------------------------------------------
	rs = eg.runAll(
		[]string{"users", "remove", "bob"},
		[]string{"users", "remove", "alice"},
	)
	eg.checkOK(rs[0], "Removed bob")
	eg.checkOK(rs[1], "Removed alice")
	// A user's apps and credentials go with it.
	for _, p := range []string{"/users/bob", "/users/" + aliceID, "/apps/" + appID,
		"/credentials/key-auth/" + keyID, "/credentials/key-auth/" + appKeyID, "/credentials/basic-auth/" + aliceID,
		"/credentials/oauth2/" + appID, "/credentials/jwt/" + jwtID} {
		e.must(404, "GET", p, "")
	}
	r = eg.run("users", "info", "alice")
	if r.stdout != "" || !strings.Contains(r.stderr, "Not Found") {
		t.Errorf("eg users info alice after remove: stdout %q, stderr %q; want Not Found", r.stdout, r.stderr)
	}
}

// egCredentialIDs returns the id of each credential eg printed (keyId for keyed ones).
func egCredentialIDs(creds []map[string]any) []string {
	var out []string
	for _, c := range creds {
		id, _ := c["id"].(string)
		out = append(out, id)
	}
	return out
}

func egSorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
