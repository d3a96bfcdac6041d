package sdk

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// TestMain serves a fake plugin when the test binary is started as one by
// TestServe.
func TestMain(m *testing.M) {
	if os.Getenv("SDK_TEST_SERVE") == "1" {
		Logger().Warn().Str("plugin", "fake").Msg("starting")
		Serve(Plugins{IdentityProvider: &fake{}, Integration: fakeIntegration{&fake{}}})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// skipShort skips a test that starts a plugin process under -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a plugin process; skipped with -short")
	}
}

// syncBuffer is a bytes.Buffer safe for go-plugin's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe starts this test binary as a real plugin process, as the host
// does: handshake, gRPC only, AutoMTLS, host services over the broker, and
// stderr lines re-logged at their level.
func TestServe(t *testing.T) {
	skipShort(t)
	var logs syncBuffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SDK_TEST_SERVE=1")
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(KindIdentityProvider)
	if err != nil {
		t.Fatal(err)
	}
	idp := raw.(*IdentityProviderClient)
	host := NewTestHost()
	check(t, "Configure", idp.Configure(t.Context(), Config{Name: "fake"}, host.Host()))
	id, err := idp.CheckPassword(t.Context(), "ada", "pw")
	check(t, "CheckPassword", err)
	if id.Subject != "ada" {
		t.Errorf("CheckPassword = %+v", id)
	}
	raw, err = rpc.Dispense(KindIntegration)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := raw.(*IntegrationClient).Refresh(t.Context(), "rt")
	check(t, "Refresh", err)
	if toks.AccessToken != "at-rt" {
		t.Errorf("Refresh = %+v", toks)
	}
	client.Kill()
	if got := logs.String(); !strings.Contains(got, "[WARN]  ") || !strings.Contains(got, "starting: plugin=fake") {
		t.Errorf("the plugin's log line did not arrive as a warning:\n%s", got)
	}
}

func TestServeRefusesAnotherVersion(t *testing.T) {
	skipShort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SDK_TEST_SERVE=1")
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{2: VersionedPlugins[ProtocolVersion]},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
	})
	t.Cleanup(client.Kill)
	if _, err := client.Client(); err == nil || !strings.Contains(err.Error(), "incompatible API version") {
		t.Errorf("Client() = %v, want an incompatible version error", err)
	}
}
