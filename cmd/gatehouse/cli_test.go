package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/core"
)

const cliKey = "gtha_testkey_0123456789abcdef"

// fakeAdminAPI imitates the admin API's /admin-keys and /doctor routes.
type fakeAdminAPI struct {
	mu      sync.Mutex
	keys    []adminKey
	doctor  map[string]any
	gotKeys []string // x-api-key of every request
}

func newFakeAdminAPI(t *testing.T) (*fakeAdminAPI, *httptest.Server) {
	f := &fakeAdminAPI{
		keys: []adminKey{
			{ID: "k1", Name: "bootstrap", Scope: "admin", Prefix: "gtha_abcd", CreatedAt: "2026-01-02T03:04:05Z", LastUsedAt: "2026-01-03T00:00:00Z"},
			{ID: "k2", Name: "reader", Scope: "read", Prefix: "gtha_efgh", CreatedAt: "2026-01-04T03:04:05Z"},
		},
		doctor: map[string]any{"staleClaims": []any{}, "danglingIndex": []any{}, "staleGrants": []any{}, "repaired": false},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin-keys", f.create)
	mux.HandleFunc("GET /admin-keys", f.list)
	mux.HandleFunc("DELETE /admin-keys/{id}", f.revoke)
	mux.HandleFunc("GET /doctor", f.report(false))
	mux.HandleFunc("POST /doctor/repair", f.report(true))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.gotKeys = append(f.gotKeys, r.Header.Get("x-api-key"))
		f.mu.Unlock()
		if r.Header.Get("x-api-key") != cliKey {
			writeProblem(w, http.StatusUnauthorized, "Unauthorized", "missing or unknown admin key", nil)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

func writeProblem(w http.ResponseWriter, status int, title, detail string, errs []map[string]string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail, "errors": errs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeAdminAPI) create(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name, Scope string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeProblem(w, http.StatusBadRequest, "Bad Request", "malformed JSON", nil)
		return
	}
	if req.Scope != "admin" && req.Scope != "read" {
		writeProblem(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "invalid admin key",
			[]map[string]string{{"field": "scope", "detail": "must be one of admin, read, publicala, gaio, qloud"}})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k.Name == req.Name {
			writeProblem(w, http.StatusConflict, "Conflict", "admin key name "+req.Name+" is taken", nil)
			return
		}
	}
	k := adminKey{ID: "k3", Name: req.Name, Scope: req.Scope, Prefix: "gtha_new1", Key: "gtha_new1secretsecretsecret", CreatedAt: "2026-02-01T00:00:00Z"}
	f.keys = append(f.keys, k)
	writeJSON(w, http.StatusCreated, k)
}

func (f *fakeAdminAPI) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"adminKeys": f.keys})
}

func (f *fakeAdminAPI) revoke(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, k := range f.keys {
		if k.ID == r.PathValue("id") {
			f.keys = append(f.keys[:i], f.keys[i+1:]...)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeProblem(w, http.StatusNotFound, "Not Found", "admin key "+r.PathValue("id")+" not found", nil)
}

func (f *fakeAdminAPI) report(repair bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		rep := map[string]any{}
		for k, v := range f.doctor {
			rep[k] = v
		}
		rep["repaired"] = repair
		writeJSON(w, http.StatusOK, rep)
	}
}

// runCLI runs a command line through run's dispatch with the given environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := cliEnv{stdout: &out, stderr: &errb, env: fakeEnv(env)}
	switch args[0] {
	case "admin-keys":
		code = runAdminKeys(t.Context(), args[1:], e)
	case "doctor":
		code = runDoctor(t.Context(), args[1:], e)
	default:
		t.Fatalf("not a CLI verb: %s", args[0])
	}
	return code, out.String(), errb.String()
}

func TestCLIAdminKeys(t *testing.T) {
	f, srv := newFakeAdminAPI(t)
	env := map[string]string{"GATEHOUSE_ADMIN_URL": srv.URL, "GATEHOUSE_ADMIN_KEY": cliKey}
	tests := []struct {
		name                   string
		env                    map[string]string
		args                   []string
		wantCode               int
		wantStdout, wantStderr []string // substrings
		exactStdout            *string
	}{
		{
			name: "create prints the key alone on stdout", args: []string{"admin-keys", "create", "--name", "ci"},
			exactStdout: new("gtha_new1secretsecretsecret\n"),
			wantStderr:  []string{"k3", "name ci", "scope admin", "only this once"},
		},
		{
			name: "create with a scope, flags after the verb in any order", args: []string{"admin-keys", "create", "--scope=read", "--name=ro"},
			exactStdout: new("gtha_new1secretsecretsecret\n"),
			wantStderr:  []string{"scope read"},
		},
		{
			name: "create conflict", args: []string{"admin-keys", "create", "--name", "bootstrap"},
			wantCode: exitFail, exactStdout: new(""),
			wantStderr: []string{"gatehouse: 409 Conflict: admin key name bootstrap is taken"},
		},
		{
			name: "create invalid scope shows field errors", args: []string{"admin-keys", "create", "--name", "x", "--scope", "root"},
			wantCode: exitFail, exactStdout: new(""),
			wantStderr: []string{"gatehouse: 422 Unprocessable Entity: invalid admin key\n", "  scope: must be one of"},
		},
		{
			name: "create without a name", args: []string{"admin-keys", "create"},
			wantCode: exitUsage, wantStderr: []string{"--name", "usage:"},
		},
		{
			name: "list", args: []string{"admin-keys", "list"},
			wantStdout: []string{"ID  NAME       SCOPE  PREFIX     CREATED               LAST-USED", "k1  bootstrap  admin  gtha_abcd  2026-01-02T03:04:05Z  2026-01-03T00:00:00Z", "k2  reader     read   gtha_efgh  2026-01-04T03:04:05Z  never"},
		},
		{
			name: "revoke", args: []string{"admin-keys", "revoke", "k2"},
			wantStdout: []string{"revoked admin key k2"},
		},
		{
			name: "revoke unknown", args: []string{"admin-keys", "revoke", "nope"},
			wantCode: exitFail, wantStderr: []string{"gatehouse: 404 Not Found: admin key nope not found"},
		},
		{
			name: "revoke --admin-url after the id", args: []string{"admin-keys", "revoke", "nope", "--admin-url", srv.URL + "/"},
			wantCode: exitFail, wantStderr: []string{"404"},
		},
		{
			name: "revoke without an id", args: []string{"admin-keys", "revoke"},
			wantCode: exitUsage, wantStderr: []string{"exactly one key id"},
		},
		{
			name: "wrong key", env: map[string]string{"GATEHOUSE_ADMIN_URL": srv.URL, "GATEHOUSE_ADMIN_KEY": "gtha_wrong_0123456789"},
			args: []string{"admin-keys", "list"}, wantCode: exitFail,
			wantStderr: []string{"gatehouse: 401 Unauthorized: missing or unknown admin key"},
		},
		{
			name: "no key", env: map[string]string{"GATEHOUSE_ADMIN_URL": srv.URL},
			args: []string{"admin-keys", "list"}, wantCode: exitUsage, wantStderr: []string{"GATEHOUSE_ADMIN_KEY is not set"},
		},
		{
			name: "unknown verb", args: []string{"admin-keys", "rotate"},
			wantCode: exitUsage, wantStderr: []string{`unknown admin-keys verb "rotate"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := env
			if tt.env != nil {
				e = tt.env
			}
			code, stdout, stderr := runCLI(t, e, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			if tt.exactStdout != nil && stdout != *tt.exactStdout {
				t.Errorf("stdout = %q, want %q", stdout, *tt.exactStdout)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stdout+stderr, cliKey) {
				t.Errorf("output shows the caller's admin key")
			}
		})
	}
	// The fake answers 401 without the right x-api-key, so the successes above
	// prove the key was sent; check it was sent on every request.
	for _, k := range f.gotKeys {
		if k != cliKey && k != "gtha_wrong_0123456789" {
			t.Errorf("a request sent x-api-key %q", k)
		}
	}
}

func TestCLIDoctor(t *testing.T) {
	f, srv := newFakeAdminAPI(t)
	env := map[string]string{"GATEHOUSE_ADMIN_URL": srv.URL, "GATEHOUSE_ADMIN_KEY": cliKey}

	code, stdout, _ := runCLI(t, env, "doctor")
	if code != exitOK || !strings.Contains(stdout, "no leftovers found") {
		t.Errorf("clean store: exit %d, stdout:\n%s", code, stdout)
	}

	f.doctor["staleClaims"] = []any{map[string]any{"key": "gh:idx:email:bob@example.com", "owner": "u1"}, "gh:idx:username:bob"}
	f.doctor["orphanApps"] = []any{"a1"} // a section the CLI does not know yet
	code, stdout, _ = runCLI(t, env, "doctor")
	want := "stale claims: 2\n" +
		"  key=gh:idx:email:bob@example.com  owner=u1\n" +
		"  gh:idx:username:bob\n" +
		"dangling index: none\n" +
		"stale grants: none\n" +
		"orphan apps: 1\n" +
		"  a1\n" +
		"found 3 leftover(s); run `gatehouse doctor --repair` to remove them\n"
	if code != exitFail || stdout != want {
		t.Errorf("leftovers: exit %d (want 1), stdout:\n%s\nwant:\n%s", code, stdout, want)
	}

	code, stdout, _ = runCLI(t, env, "doctor", "--repair")
	if code != exitOK || !strings.Contains(stdout, "repaired 3 leftover(s)") {
		t.Errorf("repair: exit %d, stdout:\n%s", code, stdout)
	}
}

func TestCLIConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	code, _, stderr := runCLI(t, map[string]string{"GATEHOUSE_ADMIN_KEY": cliKey}, "doctor", "--admin-url", url)
	if code != exitFail {
		t.Errorf("exit %d, want 1", code)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "nothing answers at "+url) {
		t.Errorf("want a one-line hint naming %s, got:\n%s", url, stderr)
	}
}

// TestEncryptionKey: `gatehouse encryption-key` prints one new entry that
// GATEHOUSE_ENCRYPTION_KEYS accepts, named by the clock or by --id; rotated in
// as its help says (new first, old after), the new key encrypts and the old one
// still decrypts what it encrypted.
func TestEncryptionKey(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	gen := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := runEncryptionKey(args, cliEnv{stdout: &stdout, stderr: &stderr, env: fakeEnv(nil)}, now)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := gen()
	oldEntry := strings.TrimSuffix(out, "\n")
	if code != exitOK || strings.Contains(oldEntry, "\n") || !strings.HasPrefix(oldEntry, "k20260102T030405:") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want one entry named after the clock", code, out, errOut)
	}
	if _, err := core.ParseKeyring(oldEntry); err != nil {
		t.Fatalf("the entry does not parse: %v", err)
	}
	_, out, _ = gen("--id", "primary-2")
	newEntry := strings.TrimSuffix(out, "\n")
	if !strings.HasPrefix(newEntry, "primary-2:") || newEntry[len("primary-2:"):] == oldEntry[len("k20260102T030405:"):] {
		t.Fatalf("--id primary-2: %q (after %q): want that id and a new key", newEntry, oldEntry)
	}

	old, _ := core.ParseKeyring(oldEntry)
	sealedOld, err := old.Encrypt([]byte("secret"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := core.ParseKeyring(newEntry + "," + oldEntry)
	if err != nil {
		t.Fatalf("the rotated list does not parse: %v", err)
	}
	if got, err := rotated.Decrypt(sealedOld, []byte("aad")); err != nil || string(got) != "secret" {
		t.Errorf("the old key no longer decrypts: %q, %v", got, err)
	}
	if sealedNew, _ := rotated.Encrypt([]byte("secret"), []byte("aad")); !strings.HasPrefix(sealedNew, "aesgcm:primary-2:") {
		t.Errorf("the rotated list encrypts with %q, want the new key first", sealedNew)
	}

	for _, args := range [][]string{{"--id", "has space"}, {"--id", strings.Repeat("x", 33)}, {"--id", ""}, {"extra"}} {
		if code, out, errOut := gen(args...); code != exitUsage || out != "" || !strings.Contains(errOut, "usage: gatehouse encryption-key") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want a usage error and no key", args, code, out, errOut)
		}
	}
	if code, out, _ := gen("-h"); code != exitOK || out != "" {
		t.Errorf("-h: exit %d, stdout %q", code, out)
	}
	if _, _, help := gen("-h"); !strings.Contains(help, "put the new key first and keep the old ones after it") {
		t.Errorf("the help does not say how to rotate:\n%s", help)
	}
}
