package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/plugins/email"
)

// TestMain lets the test binary serve built-in plugins: serve starts them as
// `<executable> plugin NAME`, and under go test that executable is this test
// binary. `<test binary> serve ...` runs a server.
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

// TestBuiltinsTable: every built-in's kinds are exactly the services it
// serves, its call timeout is positive; the default plugins list (entries
// without kind) and `gatehouse plugin NAME` come from the table; the email
// plugin's calls outlast its SMTP timeout.
func TestBuiltinsTable(t *testing.T) {
	for _, b := range builtins {
		p := b.serve()
		if b.callTimeout <= 0 || len(b.kinds) == 0 || slices.Contains(b.kinds, core.KindIdentityProvider) != (p.IdentityProvider != nil) ||
			slices.Contains(b.kinds, core.KindIntegration) != (p.Integration != nil) {
			t.Errorf("built-in %s: kinds %q, call timeout %v, serves %+v", b.name, b.kinds, b.callTimeout, p)
		}
	}
	var want []PluginConfig
	for _, b := range builtins {
		if b.config != nil {
			want = append(want, PluginConfig{Name: b.name, Builtin: b.name, Config: b.config})
		}
	}
	if diff := cmp.Diff(want, DefaultConfig().Plugins); diff != "" || len(want) == 0 {
		t.Errorf("default plugins (-want +got):\n%s", diff)
	}
	if b, _ := builtinNamed("email"); b.callTimeout <= email.DefaultSMTPTimeout {
		t.Errorf("email call timeout %v: want more than its SMTP timeout %v", b.callTimeout, email.DefaultSMTPTimeout)
	}
	var stderr bytes.Buffer
	if code := runPlugin([]string{"gitlub"}, &stderr); code != exitUsage || !strings.Contains(stderr.String(), `no built-in plugin "gitlub"`) {
		t.Errorf("gatehouse plugin gitlub: exit %d, %q", code, stderr.String())
	}
}
