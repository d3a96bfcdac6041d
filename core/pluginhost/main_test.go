package pluginhost

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/plugins/sdk"
	"github.com/gatehouse/gatehouse/plugins/sdk/errs"
)

// The test binary is also the plugins and the host of the tests: TestMain
// serves a test plugin when envPlugin is set, as `gatehouse plugin NAME` does,
// and runs a host for TestPluginsDieWithKilledHost when envHost is set.
const (
	envPlugin = "GATEHOUSE_TEST_PLUGIN" // "1": serve the plugin named by the last argument ("echo" without one)
	envHost   = "GATEHOUSE_TEST_HOST"   // "1": start the echo plugin, print its PID, sleep
	envOwner  = "GATEHOUSE_TEST_OWNER"  // in a plugin's environment: the PID of the host that started it
	// envKinds, in the "switch" plugin's environment, names a file that says
	// what the next process serves: "identity_provider", "integration" or both.
	envKinds = "GATEHOUSE_TEST_KINDS"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envPlugin) == "1":
		name := "echo"
		if len(os.Args) > 1 {
			name = os.Args[len(os.Args)-1]
		}
		servePlugin(name)
		os.Exit(0)
	case os.Getenv(envHost) == "1":
		os.Exit(runTestHost())
	}
	os.Exit(m.Run())
}

// servePlugin serves the test plugin called name.
func servePlugin(name string) {
	switch name {
	case "echo":
		sdk.Logger().Info().Str("args", strings.Join(os.Args[1:], " ")).Msg("echo plugin serving")
		e := &echo{}
		sdk.Serve(sdk.Plugins{IdentityProvider: e, Integration: echoIntegration{e}})
	case "pair": // both kinds, each its own object with its own configuration
		sdk.Serve(sdk.Plugins{IdentityProvider: &echo{}, Integration: echoIntegration{&echo{}}})
	case "idponly":
		sdk.Serve(sdk.Plugins{IdentityProvider: &echo{}})
	case "switch": // serves what the file named by envKinds says, read at each start
		b, err := os.ReadFile(os.Getenv(envKinds))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		var p sdk.Plugins
		if strings.Contains(string(b), core.KindIdentityProvider) {
			p.IdentityProvider = &echo{}
		}
		if strings.Contains(string(b), core.KindIntegration) {
			p.Integration = echoIntegration{&echo{}}
		}
		sdk.Serve(p)
	case "nothing": // a gRPC plugin server with neither service
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: {"storage": noService{}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	case "badconfig":
		sdk.Serve(sdk.Plugins{IdentityProvider: &echo{badConfig: true}})
	case "crashloop": // dies before its handshake, every time
		os.Exit(1)
	case "chatty": // breaks the handshake
		fmt.Println("hello from a plugin that prints before sdk.Serve")
		sdk.Serve(sdk.Plugins{IdentityProvider: &echo{}})
	case "silent": // never completes the handshake
		time.Sleep(time.Hour)
	case "v2": // speaks only protocol version 2
		set := plugin.PluginSet{sdk.KindIdentityProvider: &sdk.IdentityProviderPlugin{Impl: &echo{}}}
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{2: set},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	default:
		fmt.Fprintf(os.Stderr, "no test plugin %q\n", name)
		os.Exit(2)
	}
}

// noService is a gRPC plugin that registers no service: what go-plugin needs
// to speak gRPC at all.
type noService struct{ plugin.NetRPCUnsupportedPlugin }

func (noService) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (noService) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("noService has no client")
}

// echo is the test identity provider. Its CheckPassword runs the command
// named by its identifier with the password as argument:
//
//	echo ARG    Subject ARG
//	config      RawClaims {"config": the block it got, "secrets": its secrets}
//	env         Subject: its environment, one variable a line
//	kv VALUE    sets "k" to VALUE in its KV, reads it back into Subject
//	log MSG     logs MSG at warn with k=v through the host's Log
//	sleep D     sleeps D (or until cancelled), then Subject "slept"
//	crash       exits with status 3
//	pid         Subject: its process id
//	configured  Subject: how many times Configure was called
type echo struct {
	sdk.Unsupported
	badConfig bool

	mu         sync.Mutex
	cfg        sdk.Config
	host       sdk.Host
	configured int
}

func (e *echo) Configure(ctx context.Context, cfg sdk.Config, host sdk.Host) error {
	if e.badConfig {
		return errs.Errorf(errs.Invalid, "echo.Configure", "smtp.host is required")
	}
	e.mu.Lock()
	e.cfg, e.host = cfg, host
	e.configured++
	e.mu.Unlock()
	host.Log.Log(ctx, "info", "configured", map[string]string{"name": cfg.Name})
	return nil
}

func (e *echo) Describe(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "echo", Kind: sdk.KindIdentityProvider, Version: "1.2.3",
		DisplayName: "Echo", Capabilities: []string{sdk.CapPasswordCheck}}, nil
}

func (e *echo) CheckPassword(ctx context.Context, cmd, arg string) (sdk.Identity, error) {
	e.mu.Lock()
	cfg, host, configured := e.cfg, e.host, e.configured
	e.mu.Unlock()
	id := sdk.Identity{Provider: "echo"}
	switch cmd {
	case "echo":
		id.Subject = arg
	case "config":
		secrets := map[string]any{}
		for k, v := range cfg.Secrets {
			secrets[k] = v
		}
		id.RawClaims = map[string]any{"config": string(cfg.Raw), "secrets": secrets}
	case "env":
		id.Subject = strings.Join(os.Environ(), "\n")
	case "kv":
		if err := host.KV.Set(ctx, "k", []byte(arg), time.Minute); err != nil {
			return id, err
		}
		v, _, err := host.KV.Get(ctx, "k")
		id.Subject = string(v)
		return id, err
	case "log":
		host.Log.Log(ctx, "warn", arg, map[string]string{"k": "v", "plugin": "spoofed"})
	case "sleep":
		d, _ := time.ParseDuration(arg)
		host.Log.Log(ctx, "info", "sleeping", nil)
		select {
		case <-time.After(d):
			id.Subject = "slept"
		case <-ctx.Done():
			return id, ctx.Err()
		}
	case "crash":
		os.Exit(3)
	case "pid":
		id.Subject = strconv.Itoa(os.Getpid())
	case "configured":
		id.Subject = strconv.Itoa(configured)
	default:
		return id, errs.Errorf(errs.Unauthorized, "echo.CheckPassword", "unknown command %q", cmd)
	}
	return id, nil
}

// echoIntegration is echo as an integration. Its AuthURL names the
// configuration's name and how many times Configure was called.
type echoIntegration struct{ e *echo }

func (i echoIntegration) Configure(ctx context.Context, cfg sdk.Config, host sdk.Host) error {
	return i.e.Configure(ctx, cfg, host)
}

func (i echoIntegration) Describe(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Name: "echo", Kind: sdk.KindIntegration, Version: "1.2.3"}, nil
}

func (i echoIntegration) AuthURL(_ context.Context, r sdk.AuthURLRequest) (string, error) {
	i.e.mu.Lock()
	name, configured := i.e.cfg.Name, i.e.configured
	i.e.mu.Unlock()
	return fmt.Sprintf("https://echo.example/auth?name=%s&configured=%d&state=%s", name, configured, r.State), nil
}

func (i echoIntegration) Exchange(_ context.Context, r sdk.ExchangeRequest) (sdk.IntegrationAccount, sdk.IntegrationTokens, error) {
	return sdk.IntegrationAccount{Connector: "echo", UserIdentifier: r.Code}, sdk.IntegrationTokens{AccessToken: "at-" + r.Code}, nil
}

func (i echoIntegration) Refresh(_ context.Context, rt string) (sdk.IntegrationTokens, error) {
	return sdk.IntegrationTokens{AccessToken: "at-" + rt, RefreshToken: rt}, nil
}

func (i echoIntegration) Revoke(context.Context, sdk.IntegrationTokens) error { return nil }

// runTestHost is a host process for TestPluginsDieWithKilledHost: it starts
// the echo plugin, prints the plugin's PID and its socket folder, and waits to
// be killed.
func runTestHost() int {
	h, err := New([]Spec{{Name: "echo", Kind: core.KindIdentityProvider, Builtin: "echo"}}, testOptions(nil, zerolog.New(os.Stderr).Level(zerolog.WarnLevel)))
	if err == nil {
		err = h.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "test host: %v\n", err)
		return 1
	}
	st := h.Status()[0]
	if st.State != core.PluginRunning {
		fmt.Fprintf(os.Stderr, "test host: %+v\n", st)
		return 1
	}
	fmt.Println(st.PID, h.sockDir)
	time.Sleep(time.Minute)
	return 0
}

// testOptions are the Options of the tests: built-ins are this test binary,
// the KV is kv (a fresh TestHost if nil), the log is log.
func testOptions(kv *sdk.TestHost, log zerolog.Logger) Options {
	if kv == nil {
		kv = sdk.NewTestHost()
	}
	return Options{
		Launcher: []string{os.Args[0], "plugin"},
		// A -race binary sleeps a second at exit unless told not to.
		Env:       []string{envPlugin + "=1", "GORACE=atexit_sleep_ms=0", envOwner + "=" + strconv.Itoa(os.Getpid())},
		LookupEnv: func(string) (string, bool) { return "", false },
		Log:       log,
		KV:        func(string) core.KV { return kv },
	}
}

// logBuffer collects the host's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON lines logged so far.
func (l *logBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line is not JSON: %s", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// find returns the first line with message msg, or nil.
func (l *logBuffer) find(t testing.TB, msg string) map[string]any {
	t.Helper()
	lines := l.lines(t)
	i := slices.IndexFunc(lines, func(m map[string]any) bool { return m["message"] == msg })
	if i < 0 {
		return nil
	}
	return lines[i]
}

// newTestHost returns a host of specs with testOptions changed by opt, closed
// when the test ends.
func newTestHost(t testing.TB, specs []Spec, opt func(*Options)) (*Host, *logBuffer, *sdk.TestHost) {
	t.Helper()
	skipShort(t)
	logs := &logBuffer{}
	kv := sdk.NewTestHost()
	o := testOptions(kv, zerolog.New(logs).Level(zerolog.DebugLevel))
	if opt != nil {
		opt(&o)
	}
	h, err := New(specs, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h, logs, kv
}

// testHost is newTestHost, started.
func testHost(t testing.TB, specs []Spec, opt func(*Options)) (*Host, *logBuffer, *sdk.TestHost) {
	t.Helper()
	h, logs, kv := newTestHost(t, specs, opt)
	if err := h.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return h, logs, kv
}

// skipShort skips a test that starts plugin processes under -short: each
// costs a process start and handshake, and some wait for crashes, restarts
// and timeouts.
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts plugin processes; skipped with -short")
	}
}

// zerologDiscard is a logger that writes nothing.
func zerologDiscard() zerolog.Logger { return zerolog.Nop() }

// builtin is the spec of a built-in test plugin, as an identity provider.
func builtin(name string) Spec {
	return Spec{Name: name, Kind: core.KindIdentityProvider, Builtin: name}
}

// waitFor polls cond every 5 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
