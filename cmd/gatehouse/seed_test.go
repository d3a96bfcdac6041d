package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/rs/zerolog"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// runSeedWith runs `gatehouse seed ARGS` with only the variables in env.
func runSeedWith(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := cliEnv{stdout: &out, stderr: &errOut, env: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}
	code = runSeed(t.Context(), append([]string{"--config", ""}, args...), e)
	return code, out.String(), errOut.String()
}

// TestSeedNeedsRedis: without a Redis URL, seed says it needs a real Redis and
// writes nothing; bad counts are usage errors naming the flag.
func TestSeedNeedsRedis(t *testing.T) {
	code, _, stderr := runSeedWith(t, nil, "--users", "3")
	if code != exitUsage || !strings.Contains(stderr, "needs a real Redis") || !strings.Contains(stderr, "GATEHOUSE_REDIS_URL") {
		t.Errorf("seed without a Redis URL: exit %d, %q; want %d and a message naming GATEHOUSE_REDIS_URL", code, stderr, exitUsage)
	}
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"--users", "0"}, "--users"},
		{[]string{"--users", "3", "--workers", "0"}, "--workers"},
		{[]string{"--users", "3", "--prefix", "a/b"}, "--prefix"},
		{[]string{"--users", "3", "extra"}, "no argument"},
	} {
		code, _, stderr := runSeedWith(t, map[string]string{"GATEHOUSE_REDIS_URL": "redis://127.0.0.1:1"}, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.flag) {
			t.Errorf("seed %v: exit %d, %q; want %d naming %s", tt.args, code, stderr, exitUsage, tt.flag)
		}
	}
}

// TestSeed: seed writes N users with a key each through the store (numbered
// 1..N, listed, each key verifying as its user), prints no secret, writes the
// keys only to the file asked for (mode 0600, never overwritten), and a second
// run skips the users that exist.
func TestSeed(t *testing.T) {
	m := miniredis.RunT(t)
	env := map[string]string{"GATEHOUSE_REDIS_URL": "redis://" + m.Addr(), "GATEHOUSE_REDIS_PREFIX": "sd:"}
	keysFile := filepath.Join(t.TempDir(), "keys")
	const n = 40

	code, stdout, stderr := runSeedWith(t, env, "--users", "40", "--prefix", "lt", "--workers", "8", "--keys-file", keysFile)
	if code != exitOK {
		t.Fatalf("seed: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "40 users created, 0 existed already") {
		t.Errorf("seed's summary: %q", stderr)
	}
	fi, err := os.Stat(keysFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keys file mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(keysFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != n {
		t.Fatalf("keys file has %d lines, want %d", len(lines), n)
	}

	opts, err := redisstore.ParseURL(env["GATEHOUSE_REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(redisstore.NewClient(opts), redisstore.Options{Prefix: "sd:"})
	t.Cleanup(func() { store.Close() })
	svc, err := newService(DefaultConfig(), store, store.Limiter(), nil, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("keys line %q: want USERNAME, USERID and KEYID:SECRET", line)
		}
		keyID, secret, _ := strings.Cut(f[2], ":")
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("seed printed the key of %s", f[0])
		}
		p, err := svc.Verify(t.Context(), core.Presented{Scheme: core.SchemeAPIKey, ID: keyID, Secret: secret, ClientAddr: "192.0.2.1"})
		if err != nil {
			t.Errorf("the key of %s does not verify: %v", f[0], err)
			continue
		}
		if p.Username != f[0] || p.UserID != f[1] || p.Kind != string(core.KeyAuth) {
			t.Errorf("the key of %s (%s) verifies as %s (%s), kind %s", f[0], f[1], p.Username, p.UserID, p.Kind)
		}
		seen[f[0]] = true
	}
	page, err := svc.ListUsers(t.Context(), core.ListOptions{Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != n {
		t.Fatalf("GET /users lists %d users, want %d", len(page.Items), n)
	}
	for _, u := range page.Items {
		if !seen[u.Username] || u.Number < 1 || u.Number > n || u.Props["firstname"] != "Seed" {
			t.Errorf("listed user %s, number %d, props %v: not one seed wrote", u.Username, u.Number, u.Props)
		}
	}
	if r, err := store.Doctor(t.Context(), false); err != nil || len(r.StaleClaims)+len(r.DanglingIndex)+len(r.StaleGrants) != 0 {
		t.Errorf("doctor after seed: %+v, %v; want nothing found", r, err)
	}

	// Again: the users exist, nothing new is written, the file is not overwritten.
	if code, _, stderr := runSeedWith(t, env, "--users", "40", "--prefix", "lt", "--keys-file", keysFile); code != exitFail || !strings.Contains(stderr, "--keys-file") {
		t.Errorf("seed onto an existing keys file: exit %d, %q; want %d naming --keys-file", code, stderr, exitFail)
	}
	code, stdout, stderr = runSeedWith(t, env, "--users", "45", "--prefix", "lt")
	if code != exitOK || !strings.Contains(stderr, "5 users created, 40 existed already") {
		t.Errorf("seed again: exit %d, %q; want 5 created and 40 existing", code, stderr)
	}
	if stdout != "" {
		t.Errorf("seed without --keys-file wrote to stdout: %q", stdout)
	}
}
