package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildPlugin builds the plugin command at pkg (a path relative to the
// module root) into dir and returns its file name there and its SHA-256, as
// an operator would (go build, sha256sum).
func buildPlugin(t *testing.T, pkg, dir string) (name, sum string) {
	t.Helper()
	name = filepath.Base(pkg)
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./"+pkg)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return name, hex.EncodeToString(h[:])
}

// TestPasswordCheckingPluginSignsIn builds docs/plugins.md's worked example
// (examples/gatehouse-plugin-fixed), loads it by path with its checksum, and
// logs in through it at POST /auth/tokens: a user is made for its identity,
// the session verifies, a wrong password is the one 401.
func TestPasswordCheckingPluginSignsIn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a plugin binary")
	}
	clearEnv(t)
	dir := t.TempDir()
	name, sum := buildPlugin(t, "examples/gatehouse-plugin-fixed", dir)
	plugins, err := json.Marshal([]map[string]any{{
		"name": "fixed", "path": name, "sha256": sum, "kind": "identity_provider",
		"config": map[string]any{"users": map[string]string{"ada": "Ada Lovelace"}, "passwords": map[string]string{"adaEnv": "ADA_PASSWORD"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ADA_PASSWORD", "correct horse")
	t.Setenv("GATEHOUSE_PLUGIN_DIR", dir)
	t.Setenv("GATEHOUSE_PLUGINS", string(plugins))
	const key = "operator-chosen-key-123"
	t.Setenv("GATEHOUSE_ADMIN_KEY", key)
	in := startServe(t, filepath.Join(t.TempDir(), "key"))
	pub := func(method, path, body string, headers ...string) (int, string) {
		return do(t, method, in.publicURL+path, body, append([]string{"Content-Type", "application/json"}, headers...)...)
	}

	code, body := pub("POST", "/auth/tokens", `{"provider":"fixed","identifier":"ada","secret":"correct horse"}`)
	if code != 200 {
		t.Fatalf("login through the plugin: %d %s\n%s", code, body, in.log())
	}
	var login struct{ Token string }
	_ = json.Unmarshal([]byte(body), &login)
	if code, body := pub("GET", "/users/me", "", "Authorization", "Bearer "+login.Token); code != 200 ||
		!strings.Contains(body, `"username":"ada"`) || !strings.Contains(body, `"provider":"fixed"`) {
		t.Errorf("/users/me: %d %s", code, body)
	}
	if code, _ := pub("GET", "/verify", "", "Authorization", "Bearer "+login.Token); code != 200 {
		t.Errorf("/verify with the session: %d", code)
	}
	if code, body := pub("POST", "/auth/tokens", `{"provider":"fixed","identifier":"ada","secret":"wrong horse"}`); code != 401 ||
		strings.Contains(body, "wrong horse") {
		t.Errorf("a wrong password: %d %s", code, body)
	}
	if code, body := pub("POST", "/auth/tokens", `{"provider":"nope","identifier":"ada","secret":"x"}`); code != 422 || !strings.Contains(body, `"provider"`) {
		t.Errorf("an unknown provider: %d %s", code, body)
	}
	if strings.Contains(in.log(), "correct horse") {
		t.Error("the password reached the log")
	}
}
