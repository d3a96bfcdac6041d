package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets the test binary serve built-in plugins: serve starts them as
// `<executable> plugin NAME`, and under go test the executable is this binary
// (SPEC §4). `<test binary> serve ...` runs a server.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "plugin" {
		os.Exit(runPlugin(os.Args[2:], os.Stderr))
	}
	// A test may also run this binary as a server of its own (to SIGKILL it).
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Setenv("GORACE", "atexit_sleep_ms=0") // plugin processes stop at once under -race
	os.Exit(m.Run())
}
