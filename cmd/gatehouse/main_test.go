package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clearEnv unsets the variables that would change run's behaviour.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "GATEHOUSE_") {
			t.Setenv(k, "")
		}
	}
	t.Setenv("XDG_STATE_HOME", t.TempDir())
}

// runArgs calls run with a file as stderr and returns the exit status and outputs.
func runArgs(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	stderr := notTerminal(t)
	var stdout bytes.Buffer
	code := run(ctx, args, &stdout, stderr)
	errOut, _ := os.ReadFile(stderr.Name())
	return code, stdout.String(), string(errOut)
}

func TestRunDispatch(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{[]string{"version"}, exitOK, "gatehouse ", ""},
		{[]string{"help"}, exitOK, "gatehouse admin-keys create", ""},
		{[]string{"--help"}, exitOK, "gatehouse [serve] [flags]", ""},
		{[]string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{[]string{"serve", "-h"}, exitOK, "", "-redis-url URL"},
		{[]string{"serve", "extra"}, exitUsage, "", "serve takes no argument"},
		{[]string{"--log-level", "loud", "--config", ""}, exitFail, "", `log.level "loud"`},
		{[]string{"--config", "/nonexistent/gatehouse.yaml"}, exitFail, "", "no such file"},
		{[]string{"admin-keys"}, exitUsage, "", "gatehouse admin-keys list"},
		{[]string{"help"}, exitOK, "gatehouse encryption-key [--id ID]", ""},
		{[]string{"encryption-key", "--id", "k1"}, exitOK, "k1:", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runArgs(t, t.Context(), tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
		})
	}
}

// TestServeStartsAndStops runs the default command with no Redis configured
// until the context is cancelled.
func TestServeStartsAndStops(t *testing.T) {
	clearEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr := notTerminal(t)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--config", "", "--admin-addr", "127.0.0.1:0", "--public-addr", "127.0.0.1:0", "--log-format", "json"}, &bytes.Buffer{}, stderr)
	}()
	logs := waitFor(t, stderr.Name(), "listening")
	if !strings.Contains(logs, "in-memory") {
		t.Errorf("no warning about the embedded in-memory Redis:\n%s", logs)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
}

// waitFor polls the file until it contains s, and returns its contents.
func waitFor(t *testing.T, path, s string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(filepath.Clean(path))
		if strings.Contains(string(data), s) {
			return string(data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never logged:\n%s", s, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
