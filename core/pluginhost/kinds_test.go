//go:build unix

package pluginhost

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/core"
)

// TestEntryWithoutKind: an entry without kind for a binary serving both
// kinds gives an identity provider and an integration, each configured once
// with the entry's configuration and each describing itself as its kind.
func TestEntryWithoutKind(t *testing.T) {
	t.Parallel()
	h, _, _ := testHost(t, []Spec{{Name: "both", Builtin: "pair"}}, nil)
	st := h.Status()[0]
	if want := []string{core.KindIdentityProvider, core.KindIntegration}; st.State != core.PluginRunning || !slices.Equal(st.Kinds, want) || st.Version != "1.2.3" {
		t.Errorf("Status = %+v, want running with kinds %v", st, want)
	}
	idp, ok := h.IdentityProvider("both")
	if !ok {
		t.Fatal("IdentityProvider(both) not found")
	}
	in, ok := h.Integration("both")
	if !ok {
		t.Fatal("Integration(both) not found")
	}
	ctx := t.Context()
	info, err := idp.Describe(ctx)
	want := core.PluginInfo{Name: "echo", Kind: core.KindIdentityProvider, Version: "1.2.3", DisplayName: "Echo",
		Capabilities: []string{core.CapPasswordCheck}}
	if diff := cmp.Diff(want, info); err != nil || diff != "" {
		t.Errorf("the identity provider's Describe: %v (-want +got)\n%s", err, diff)
	}
	info, err = in.Describe(ctx)
	if diff := cmp.Diff(core.PluginInfo{Name: "echo", Kind: core.KindIntegration, Version: "1.2.3"}, info); err != nil || diff != "" {
		t.Errorf("the integration's Describe: %v (-want +got)\n%s", err, diff)
	}
	// Each service object got its own Configure, once.
	if id, err := idp.CheckPassword(ctx, "configured", ""); err != nil || id.Subject != "1" {
		t.Errorf("the identity provider was configured %q times (%v), want 1", id.Subject, err)
	}
	if u, err := in.AuthURL(ctx, core.AuthURLRequest{State: "s"}); err != nil || u != "https://echo.example/auth?name=both&configured=1&state=s" {
		t.Errorf("the integration's AuthURL = %q, %v; want it configured once as both", u, err)
	}
	if toks, err := in.Refresh(ctx, "rt"); err != nil || toks.AccessToken != "at-rt" {
		t.Errorf("Refresh = %+v, %v", toks, err)
	}
}

// TestEntryKindNarrowsBinary: an entry with kind integration on a binary
// serving both is an integration only.
func TestEntryKindNarrowsBinary(t *testing.T) {
	t.Parallel()
	h, _, _ := testHost(t, []Spec{{Name: "int", Kind: core.KindIntegration, Builtin: "pair"}}, nil)
	if _, ok := h.IdentityProvider("int"); ok {
		t.Error("IdentityProvider found for an entry of kind integration")
	}
	in, ok := h.Integration("int")
	if !ok {
		t.Fatal("Integration not found")
	}
	if u, err := in.AuthURL(t.Context(), core.AuthURLRequest{State: "s"}); err != nil || !strings.Contains(u, "configured=1") {
		t.Errorf("AuthURL = %q, %v", u, err)
	}
	if st := h.Status()[0]; !slices.Equal(st.Kinds, []string{core.KindIntegration}) {
		t.Errorf("Status kinds = %v, want only integration", st.Kinds)
	}
}

// TestEntryWithoutKindOneService: an entry without kind on a binary serving
// only an identity provider still has an Integration proxy, whose calls
// answer NotFound naming the plugin, not Unavailable or Internal.
func TestEntryWithoutKindOneService(t *testing.T) {
	t.Parallel()
	h, _, _ := testHost(t, []Spec{{Name: "idp", Builtin: "idponly"}}, nil)
	if st := h.Status()[0]; st.State != core.PluginRunning || !slices.Equal(st.Kinds, []string{core.KindIdentityProvider}) {
		t.Errorf("Status = %+v, want running as an identity provider only", st)
	}
	idp, _ := h.IdentityProvider("idp")
	if id, err := idp.CheckPassword(t.Context(), "echo", "x"); err != nil || id.Subject != "x" {
		t.Errorf("CheckPassword = %+v, %v", id, err)
	}
	in, ok := h.Integration("idp")
	if !ok {
		t.Fatal("no Integration proxy for an entry without kind")
	}
	checkNotServed(t, in, "plugin idp is not an integration")
}

// checkNotServed checks that each of in's calls answers NotFound with msg.
func checkNotServed(t *testing.T, in core.Integration, msg string) {
	t.Helper()
	ctx := t.Context()
	_, err1 := in.Describe(ctx)
	_, err2 := in.AuthURL(ctx, core.AuthURLRequest{})
	_, _, err3 := in.Exchange(ctx, core.ExchangeRequest{})
	_, err4 := in.Refresh(ctx, "rt")
	err5 := in.Revoke(ctx, core.IntegrationTokens{})
	for i, err := range []error{err1, err2, err3, err4, err5} {
		if core.KindOf(err) != core.NotFound || core.MessageOf(err) != msg {
			t.Errorf("call %d to a kind not served: %v (kind %v), want NotFound %q", i+1, err, core.KindOf(err), msg)
		}
	}
}

// TestKindNotServed: an entry asking for a kind its binary does not serve,
// or a binary serving no kind at all, fails at its first start for good,
// saying why.
func TestKindNotServed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"kind integration on an identity provider", Spec{Name: "p", Kind: core.KindIntegration, Builtin: "idponly"},
			"the plugin does not serve integration, the kind its entry asks for"},
		{"kind identity_provider on nothing", Spec{Name: "p", Kind: core.KindIdentityProvider, Builtin: "nothing"},
			"the plugin does not serve identity_provider, the kind its entry asks for"},
		{"no kind on nothing", Spec{Name: "p", Builtin: "nothing"},
			"the plugin serves none of identity_provider, integration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, _, _ := testHost(t, []Spec{tc.spec}, nil)
			checkFailed(t, h, []string{tc.want})
		})
	}
}

// TestRestartRediscoversKinds: the kinds an entry without kind serves are
// found again at each start: a process that serves an integration after one
// that did not makes the Integration proxy work, and Status says so.
func TestRestartRediscoversKinds(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "kinds")
	if err := os.WriteFile(file, []byte(core.KindIdentityProvider), 0o600); err != nil {
		t.Fatal(err)
	}
	h, _, _ := testHost(t, []Spec{{Name: "sw", Builtin: "switch"}}, func(o *Options) {
		o.Env = append(o.Env, envKinds+"="+file)
	})
	st := h.Status()[0]
	if !slices.Equal(st.Kinds, []string{core.KindIdentityProvider}) {
		t.Fatalf("Status = %+v, want an identity provider only", st)
	}
	in, _ := h.Integration("sw")
	checkNotServed(t, in, "plugin sw is not an integration")

	if err := os.WriteFile(file, []byte(core.KindIntegration), 0o600); err != nil {
		t.Fatal(err)
	}
	signalChild(t, st.PID, syscall.SIGKILL)
	waitFor(t, 20*time.Second, "the new process", func() bool {
		s := h.Status()[0]
		return s.State == core.PluginRunning && s.PID != st.PID
	})
	if st := h.Status()[0]; !slices.Equal(st.Kinds, []string{core.KindIntegration}) {
		t.Errorf("Status after the restart = %+v, want an integration only", st)
	}
	if u, err := in.AuthURL(t.Context(), core.AuthURLRequest{State: "s"}); err != nil || !strings.HasSuffix(u, "state=s") {
		t.Errorf("the integration after the restart: %q, %v", u, err)
	}
	idp, _ := h.IdentityProvider("sw")
	if _, err := idp.CheckPassword(t.Context(), "echo", "x"); core.KindOf(err) != core.NotFound ||
		core.MessageOf(err) != "plugin sw is not an identity provider" {
		t.Errorf("the identity provider after the restart: %v, want NotFound", err)
	}
}

// TestStatusKindsBeforeStart: before its first start, an entry's kinds are
// its configured kind, or none.
func TestStatusKindsBeforeStart(t *testing.T) {
	t.Parallel()
	h, err := New([]Spec{{Name: "a", Kind: core.KindIntegration, Builtin: "echo"}, {Name: "b", Builtin: "echo"}}, testOptions(nil, zerologDiscard()))
	if err != nil {
		t.Fatal(err)
	}
	st := h.Status()
	if !slices.Equal(st[0].Kinds, []string{core.KindIntegration}) || len(st[1].Kinds) != 0 {
		t.Errorf("kinds before the start: %v and %v", st[0].Kinds, st[1].Kinds)
	}
	if _, ok := h.IdentityProvider("b"); !ok {
		t.Error("no IdentityProvider for an entry without kind")
	}
	if in, ok := h.Integration("b"); !ok {
		t.Error("no Integration for an entry without kind")
	} else if _, err := in.Describe(t.Context()); core.KindOf(err) != core.Unavailable {
		t.Errorf("Describe before the start: %v, want Unavailable", err)
	}
}
