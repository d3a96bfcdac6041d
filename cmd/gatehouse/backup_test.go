package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/gatehouse/gatehouse/core/redisstore/redistest"
)

// runVerb runs one CLI verb with only the variables in env.
func runVerb(t *testing.T, run func(e cliEnv) int, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := cliEnv{stdout: &out, stderr: &errOut, env: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}
	code = run(e)
	return code, out.String(), errOut.String()
}

// roundTrip seeds n users (a key each) into the Redis at srcURL, exports
// them to a file, imports the file into the empty Redis at dstURL, exports
// that and checks both exports are identical. It returns the file and the
// time each step took.
func roundTrip(t *testing.T, srcURL, dstURL string, n int) (file string, seed, export, imp time.Duration) {
	t.Helper()
	ctx := t.Context()
	src := map[string]string{"GATEHOUSE_REDIS_URL": srcURL, "GATEHOUSE_REDIS_PREFIX": "bk:"}
	dst := map[string]string{"GATEHOUSE_REDIS_URL": dstURL, "GATEHOUSE_REDIS_PREFIX": "bk:"}
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.jsonl"), filepath.Join(dir, "second.jsonl")

	t0 := time.Now()
	if code, _, stderr := runVerb(t, func(e cliEnv) int {
		return runSeed(ctx, []string{"--config", "", "--users", strconv.Itoa(n), "--prefix", "bk"}, e)
	}, src); code != exitOK {
		t.Fatalf("seed: exit %d\n%s", code, stderr)
	}
	t1 := time.Now()
	code, _, stderr := runVerb(t, func(e cliEnv) int {
		return runExport(ctx, []string{"--config", "", "--output", first}, e)
	}, src)
	if code != exitOK || !strings.Contains(stderr, "export: "+strconv.Itoa(n)+" user in") {
		t.Fatalf("export: exit %d\n%s", code, stderr)
	}
	t2 := time.Now()
	code, _, stderr = runVerb(t, func(e cliEnv) int { return runImport(ctx, []string{"--config", "", first}, e) }, dst)
	if code != exitOK || !strings.Contains(stderr, "created "+strconv.Itoa(n)+" user;") {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	t3 := time.Now()
	if code, _, stderr := runVerb(t, func(e cliEnv) int {
		return runExport(ctx, []string{"--config", "", "--output", second}, e)
	}, dst); code != exitOK {
		t.Fatalf("export of the copy: exit %d\n%s", code, stderr)
	}
	a, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("the copy's export differs from the original's (%d and %d bytes)", len(a), len(b))
	}
	return first, t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)
}

// TestExportImportCLI: gatehouse export, then import into an empty Redis,
// gives an identical export; importing again changes nothing (exit 0); a
// file with a bad line exits 1 naming the line, and writes the rest.
func TestExportImportCLI(t *testing.T) {
	src, dst := miniredis.RunT(t), miniredis.RunT(t)
	file, _, _, _ := roundTrip(t, "redis://"+src.Addr(), "redis://"+dst.Addr(), 25)
	env := map[string]string{"GATEHOUSE_REDIS_URL": "redis://" + dst.Addr(), "GATEHOUSE_REDIS_PREFIX": "bk:"}
	code, _, stderr := runVerb(t, func(e cliEnv) int { return runImport(t.Context(), []string{"--config", "", file}, e) }, env)
	if code != exitOK || !strings.Contains(stderr, "created nothing; already there 25 user;") {
		t.Errorf("second import: exit %d\n%s", code, stderr)
	}
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "sha256:") || strings.Contains(line, "$argon2id$") {
			t.Errorf("import printed a hash: %q", line)
		}
	}

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), `"username":"bk-7"`, `"username":"bk/7"`, 1)
	badFile := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(badFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	third := miniredis.RunT(t)
	env["GATEHOUSE_REDIS_URL"] = "redis://" + third.Addr()
	code, _, stderr = runVerb(t, func(e cliEnv) int { return runImport(t.Context(), []string{"--config", "", badFile}, e) }, env)
	lineNo := 1 + strings.Count(bad[:strings.Index(bad, `"username":"bk/7"`)], "\n")
	if code != exitFail || !strings.Contains(stderr, "refused line "+strconv.Itoa(lineNo)+" (user): user.username: must not contain '/'\n") || !strings.Contains(stderr, "user.username") ||
		!strings.Contains(stderr, "created 24 user;") {
		t.Errorf("import of a file with a bad line: exit %d\n%s", code, stderr)
	}

	code, _, stderr = runVerb(t, func(e cliEnv) int {
		return runImport(t.Context(), []string{"--config", "", "--from", "kong", file}, e)
	}, env)
	if code != exitUsage || !strings.Contains(stderr, "--from") {
		t.Errorf("import --from kong: exit %d\n%s", code, stderr)
	}
}

// TestBackupScale round-trips GATEHOUSE_BACKUP_SCALE users (100000 for the
// figures in docs/backup.md) between two real redis-servers and prints each
// step's time and the process' peak RSS.
func TestBackupScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GATEHOUSE_BACKUP_SCALE"))
	if n <= 0 {
		t.Skip("set GATEHOUSE_BACKUP_SCALE=N (e.g. 100000) to round-trip N users between two redis-servers")
	}
	src, dst := redistest.StartServer(t), redistest.StartServer(t)
	file, seed, export, imp := roundTrip(t, src.URL, dst.URL, n)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	t.Logf("%d users: seed %v, export %v (%.0f users/s, %.1f MiB), import %v (%.0f users/s); test process peak RSS %.0f MiB",
		n, seed.Round(time.Millisecond), export.Round(time.Millisecond), float64(n)/export.Seconds(), float64(fi.Size())/(1<<20),
		imp.Round(time.Millisecond), float64(n)/imp.Seconds(), float64(ru.Maxrss)/1024)
}
