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
func TestKeyFileNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-key")
	if err := os.WriteFile(path, []byte("gtha_the_working_key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.AdminKeyFile = path
	err := showBootstrapKey(testKey, cfg, notTerminal(t), zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), path+" already exists") || !strings.Contains(err.Error(), "GATEHOUSE_ADMIN_KEY_FILE") {
		t.Fatalf("err = %v, want one naming the file and the way out", err)
	}
	if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "gtha_the_working_key") {
		t.Errorf("the error shows a key: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "gtha_the_working_key\n" {
		t.Errorf("the file now holds %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
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
