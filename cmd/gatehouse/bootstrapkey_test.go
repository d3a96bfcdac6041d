package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

const testKey = "gtha_0123456789abcdefghijklmnopqrstuvwxyz"

// notTerminal returns a regular file to stand for a redirected stderr.
func notTerminal(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestShowBootstrapKeyWritesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "gatehouse", "admin-key")
	cfg := DefaultConfig()
	cfg.AdminKeyFile = path
	stderr := notTerminal(t)
	var logs bytes.Buffer
	if err := showBootstrapKey(testKey, cfg, stderr, zerolog.New(&logs)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(data)) != testKey {
		t.Errorf("file holds %q, want the key", data)
	}
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Dir(path), 0o700|os.ModeDir)
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("the log holds the key:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("the log does not name the file:\n%s", logs.String())
	}
	if written, _ := os.ReadFile(stderr.Name()); strings.Contains(string(written), testKey) {
		t.Errorf("the key went to a non-terminal stderr")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestKeyFileNeverOverwritten: an existing key file, which may hold the key
// of another instance, is left as it was, and the error says what to do.
// TestKeyFileNeverDestroyed: a key file already there is moved aside, never
// deleted or overwritten (its key may open another store), and the start goes on.
func TestKeyFileNeverDestroyed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-key")
	if err := os.WriteFile(path, []byte("gtha_the_working_key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.AdminKeyFile = path
	var logs bytes.Buffer
	if err := showBootstrapKey(testKey, cfg, notTerminal(t), zerolog.New(&logs)); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != testKey+"\n" {
		t.Errorf("the file holds %q, want the new key", data)
	}
	assertMode(t, path, 0o600)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("want the new file and the kept one, found %v", entries)
	}
	var kept string
	for _, e := range entries {
		if e.Name() != "admin-key" {
			kept = filepath.Join(dir, e.Name())
		}
	}
	if data, _ := os.ReadFile(kept); string(data) != "gtha_the_working_key\n" || !strings.HasPrefix(filepath.Base(kept), "admin-key.") {
		t.Errorf("kept %s holds %q", kept, data)
	}
	if !strings.Contains(logs.String(), kept) || strings.Contains(logs.String(), "gtha_") {
		t.Errorf("the log must name the kept file and no key: %s", logs.String())
	}
}

func TestKeyBanner(t *testing.T) {
	var buf bytes.Buffer
	if err := writeKeyBanner(&buf, testKey); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "export GATEHOUSE_ADMIN_KEY="+testKey+"\n") {
		t.Errorf("banner lacks the export line:\n%s", buf.String())
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeDir); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}
