//go:build unix

package pluginhost

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-plugin"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/internal/proctest"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

func TestStartCallKVLog(t *testing.T) {
	t.Parallel()
	h, logs, kv := testHost(t, []Spec{builtin("echo")}, nil)
	st := h.Status()[0]
	if st.State != core.PluginRunning || !st.Healthy || st.Version != "1.2.3" || st.PID == 0 || st.StartedAt.IsZero() || st.Restarts != 0 {
		t.Errorf("Status = %+v", st)
	}
	idp, ok := h.IdentityProvider("echo")
	if !ok {
		t.Fatal("IdentityProvider(echo) not found")
	}
	if _, ok := h.IdentityProvider("nope"); ok {
		t.Error("IdentityProvider(nope) found")
	}
	if _, ok := h.Integration("echo"); ok {
		t.Error("Integration(echo) found for an identity provider")
	}
	ctx := t.Context()
	info, err := idp.Describe(ctx)
	want := core.PluginInfo{Name: "echo", Kind: core.KindIdentityProvider, Version: "1.2.3", DisplayName: "Echo",
		Capabilities: []string{core.CapPasswordCheck}}
	if diff := cmp.Diff(want, info); err != nil || diff != "" {
		t.Errorf("Describe: %v (-want +got)\n%s", err, diff)
	}
	if id, err := idp.CheckPassword(ctx, "kv", "v1"); err != nil || id.Subject != "v1" {
		t.Errorf("kv: %+v, %v", id, err)
	}
	if v, ok, _ := kv.Get(ctx, "k"); !ok || string(v) != "v1" {
		t.Errorf("the plugin's KV holds k=%q, %v", v, ok)
	}
	if _, err := idp.CheckPassword(ctx, "log", "hello from echo"); err != nil {
		t.Fatal(err)
	}
	line := logs.find(t, "hello from echo")
	wantLine := map[string]any{"level": "warn", "plugin": "echo", "message": "hello from echo", "k": "v", "arg_plugin": "spoofed"}
	if diff := cmp.Diff(wantLine, line); diff != "" {
		t.Errorf("the plugin's log line (-want +got)\n%s", diff)
	}
	if l := logs.find(t, "configured"); l == nil || l["plugin"] != "echo" || l["name"] != "echo" {
		t.Errorf("Configure's log line: %v", l)
	}
	// A line the plugin wrote on stderr with sdk.Logger, re-logged by go-plugin.
	waitFor(t, 10*time.Second, "the plugin's stderr line", func() bool { return logs.find(t, "echo plugin serving") != nil })
	if l := logs.find(t, "echo plugin serving"); l["level"] != "info" || l["plugin"] != "echo" || l["args"] != "plugin echo" {
		t.Errorf("the plugin's stderr line: %v", l)
	}
	if _, err := idp.CheckPassword(ctx, "nope", ""); core.KindOf(err) != core.Unauthorized || core.MessageOf(err) != `unknown command "nope"` {
		t.Errorf("a plugin's error: %v, want its kind and message", err)
	}
	if _, err := idp.AuthURL(ctx, core.AuthURLRequest{}); core.KindOf(err) != core.NotFound {
		t.Errorf("an unsupported method: %v, want NotFound", err)
	}

	dir := h.sockDir
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket folder %s: %v %v", dir, fi, err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket folder is left after Close: %v", err)
	}
	if alive(st.PID) {
		t.Errorf("plugin process %d outlived Close", st.PID)
	}
	if st := h.Status()[0]; st.State != core.PluginStopped || st.PID != 0 || st.Healthy {
		t.Errorf("Status after Close = %+v", st)
	}
	if _, err := idp.CheckPassword(ctx, "echo", "x"); core.KindOf(err) != core.Unavailable {
		t.Errorf("a call after Close: %v, want Unavailable", err)
	}
}

func TestIntegration(t *testing.T) {
	t.Parallel()
	h, _, _ := testHost(t, []Spec{{Name: "echo-int", Kind: core.KindIntegration, Builtin: "echo"}}, nil)
	in, ok := h.Integration("echo-int")
	if !ok {
		t.Fatal("Integration not found")
	}
	if _, ok := h.IdentityProvider("echo-int"); ok {
		t.Error("IdentityProvider found for an integration")
	}
	ctx := t.Context()
	if info, err := in.Describe(ctx); err != nil || info.Kind != core.KindIntegration {
		t.Errorf("Describe = %+v, %v", info, err)
	}
	if toks, err := in.Refresh(ctx, "rt"); err != nil || toks.AccessToken != "at-rt" {
		t.Errorf("Refresh = %+v, %v", toks, err)
	}
	if a, toks, err := in.Exchange(ctx, core.ExchangeRequest{Code: "c"}); err != nil || a.UserIdentifier != "c" || toks.AccessToken != "at-c" {
		t.Errorf("Exchange = %+v, %+v, %v", a, toks, err)
	}
	if u, err := in.AuthURL(ctx, core.AuthURLRequest{State: "s"}); err != nil || !strings.HasSuffix(u, "state=s") {
		t.Errorf("AuthURL = %q, %v", u, err)
	}
	if err := in.Revoke(ctx, core.IntegrationTokens{}); err != nil {
		t.Errorf("Revoke: %v", err)
	}
}

// TestSecretsAndEnvironment: ...Env settings reach the plugin as secrets and
// leave its block; the plugin does not inherit the host's environment.
func TestSecretsAndEnvironment(t *testing.T) {
	t.Setenv("GATEHOUSE_HOST_ONLY", "redis-password")
	env := map[string]string{"SMTP_PASSWORD": "s3cret", "TOKEN_A": "ta"}
	spec := builtin("echo")
	spec.Config = json.RawMessage(`{"from":"a@example.com","smtp":{"host":"smtp.example.com","port":587,"passwordEnv":"SMTP_PASSWORD"},"tokens":[{"valueEnv":"TOKEN_A"}]}`)
	h, _, _ := testHost(t, []Spec{spec}, func(o *Options) {
		o.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	})
	idp, _ := h.IdentityProvider("echo")
	id, err := idp.CheckPassword(t.Context(), "config", "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"config":  `{"from":"a@example.com","smtp":{"host":"smtp.example.com","port":587},"tokens":[{}]}`,
		"secrets": map[string]any{"smtp.password": "s3cret", "tokens.0.value": "ta"},
	}
	if diff := cmp.Diff(want, id.RawClaims); diff != "" {
		t.Errorf("what the plugin got (-want +got)\n%s", diff)
	}
	id, err = idp.CheckPassword(t.Context(), "env", "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(id.Subject, "GATEHOUSE_HOST_ONLY") || strings.Contains(id.Subject, "PATH=") {
		t.Errorf("the plugin inherited the host's environment:\n%s", id.Subject)
	}
	if !strings.Contains(id.Subject, envPlugin+"=1") {
		t.Errorf("the plugin lacks Options.Env:\n%s", id.Subject)
	}
}

// TestCrashRestart kills a running plugin with SIGKILL: calls fail with
// Unavailable without waiting for their deadline, and the plugin comes back
// in a new process that serves calls again.
func TestCrashRestart(t *testing.T) {
	t.Parallel()
	proctest.NeedProc(t)
	// A call timeout far above the bounds below: a call that waited for it
	// instead of failing at once would show.
	spec := builtin("echo")
	spec.CallTimeout = time.Minute
	h, logs, _ := testHost(t, []Spec{spec}, nil)
	idp, _ := h.IdentityProvider("echo")
	old := h.Status()[0].PID

	killed := time.Now()
	signalChild(t, old, syscall.SIGKILL)
	start := time.Now()
	_, err := idp.CheckPassword(t.Context(), "echo", "x")
	if took := time.Since(start); core.KindOf(err) != core.Unavailable || took > 10*time.Second {
		t.Errorf("a call right after the crash: %v after %v, want Unavailable without waiting for the call timeout", err, took)
	}
	// While the plugin is down, calls fail at once, saying so and when to
	// try again (unless the new process is up already).
	waitFor(t, 10*time.Second, "the plugin to be marked down", func() bool { return h.Status()[0].PID != old })
	start = time.Now()
	if _, err := idp.CheckPassword(t.Context(), "echo", "x"); err != nil {
		if took := time.Since(start); core.KindOf(err) != core.Unavailable || took > 10*time.Second ||
			core.MessageOf(err) != "plugin echo is not running" || core.RetryAfterOf(err) <= 0 {
			t.Errorf("a call while restarting: %v (retry after %v) after %v", err, core.RetryAfterOf(err), took)
		}
	}
	var id core.Identity
	waitFor(t, 20*time.Second, "the plugin to be back", func() bool {
		id, err = idp.CheckPassword(t.Context(), "echo", "back")
		return err == nil
	})
	t.Logf("restart: serving again %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
	st := h.Status()[0]
	if id.Subject != "back" || st.State != core.PluginRunning || !st.Healthy || st.Restarts != 1 || st.PID == old || st.PID == 0 ||
		!strings.Contains(st.LastError, "signal: killed") {
		t.Errorf("after the restart: %+v, Status %+v", id, st)
	}
	if logs.find(t, "plugin is down; restarting it") == nil {
		t.Error("the crash is not logged")
	}

	// A crash during a call: the call fails with Unavailable.
	_, err = idp.CheckPassword(t.Context(), "crash", "")
	if core.KindOf(err) != core.Unavailable {
		t.Errorf("a call that crashes the plugin: %v, want Unavailable", err)
	}
	waitFor(t, 20*time.Second, "the plugin to be back again", func() bool {
		_, err = idp.CheckPassword(t.Context(), "echo", "x")
		return err == nil
	})
	if st := h.Status()[0]; st.Restarts != 2 || !strings.Contains(st.LastError, "exit status 3") {
		t.Errorf("after the second crash: %+v", st)
	}
}

// TestCrashLoop: a plugin that keeps dying is given up after MaxRestarts.
func TestCrashLoop(t *testing.T) {
	t.Parallel()
	h, logs, _ := testHost(t, []Spec{builtin("crashloop")}, func(o *Options) { o.MaxRestarts = 2 })
	waitFor(t, 20*time.Second, "the plugin to fail", func() bool { return h.Status()[0].State == core.PluginFailed })
	st := h.Status()[0]
	if st.Restarts != 2 || !strings.Contains(st.LastError, "2 restarts within 1m0s") || st.PID != 0 || st.Healthy {
		t.Errorf("Status = %+v", st)
	}
	idp, _ := h.IdentityProvider("crashloop")
	if _, err := idp.CheckPassword(t.Context(), "echo", ""); core.KindOf(err) != core.Unavailable ||
		core.MessageOf(err) != "plugin crashloop is not running" || core.RetryAfterOf(err) != 0 {
		t.Errorf("a call to a failed plugin: %v (retry after %v), want Unavailable with no retry", err, core.RetryAfterOf(err))
	}
	if l := logs.find(t, "plugin failed; the host gave up on it"); l == nil || l["level"] != "error" {
		t.Errorf("the give-up line: %v", l)
	}
}

// TestFrozenPluginCallTimesOut: a call to a stopped process ends with
// Unavailable at its deadline, naming the plugin and the timeout.
func TestFrozenPluginCallTimesOut(t *testing.T) {
	t.Parallel()
	proctest.NeedProc(t)
	spec := builtin("echo")
	spec.CallTimeout = time.Second
	h, _, _ := testHost(t, []Spec{spec}, func(o *Options) { o.HealthInterval = time.Hour })
	idp, _ := h.IdentityProvider("echo")
	pid := h.Status()[0].PID
	freeze(t, pid)
	start := time.Now()
	_, err := idp.CheckPassword(t.Context(), "echo", "x")
	took := time.Since(start)
	if core.KindOf(err) != core.Unavailable || core.MessageOf(err) != "plugin echo did not answer within 1s" ||
		took < time.Second || took > 20*time.Second {
		t.Errorf("a call to a frozen plugin: %v after %v", err, took)
	}
	// Close does not wait for go-plugin's graceful stop, which a frozen
	// plugin never answers (it would take killGrace).
	start = time.Now()
	if err := h.Close(t.Context()); err != nil {
		t.Error(err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("Close took %v with a frozen plugin", took)
	}
	if alive(pid) {
		t.Error("the frozen plugin outlived Close")
	}
}

// TestFrozenPluginRestarted: the health check finds a stopped process, kills
// it and starts another, which serves calls.
func TestFrozenPluginRestarted(t *testing.T) {
	t.Parallel()
	proctest.NeedProc(t)
	spec := builtin("echo")
	spec.CallTimeout = 2 * time.Second // also the health check's deadline
	h, _, _ := testHost(t, []Spec{spec}, func(o *Options) { o.HealthInterval = 200 * time.Millisecond })
	idp, _ := h.IdentityProvider("echo")
	old := h.Status()[0].PID
	freeze(t, old)
	waitFor(t, 30*time.Second, "a new process", func() bool {
		st := h.Status()[0]
		return st.State == core.PluginRunning && st.PID != old
	})
	if id, err := idp.CheckPassword(t.Context(), "echo", "x"); err != nil || id.Subject != "x" {
		t.Errorf("a call to the new process: %+v, %v", id, err)
	}
	if st := h.Status()[0]; !strings.Contains(st.LastError, "health check failed") || st.Restarts != 1 {
		t.Errorf("Status = %+v", st)
	}
	waitFor(t, 10*time.Second, "the frozen process to be gone", func() bool { return !alive(old) })
}

// TestPermanentFailures: a plugin that cannot work is marked failed after one
// try, with a clear reason, and the host runs on.
func TestPermanentFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, plugin string
		versions     map[int]plugin.PluginSet
		opt          func(*Options)
		wantErr      []string
	}{
		{name: "plugin speaks v2", plugin: "v2",
			wantErr: []string{"incompatible API version", "Plugin version: 2", "Client versions: [1]"}},
		{name: "host speaks v2", plugin: "echo", versions: map[int]plugin.PluginSet{2: sdk.VersionedPlugins[1]},
			wantErr: []string{"incompatible API version", "Plugin version: 1", "Client versions: [2]"}},
		{name: "stdout before Serve", plugin: "chatty",
			wantErr: []string{"Unrecognized remote plugin message: hello from a plugin", "write nothing to stdout"}},
		{name: "configuration refused", plugin: "badconfig",
			wantErr: []string{"configure: smtp.host is required"}},
		{name: "launcher missing", plugin: "echo", opt: func(o *Options) { o.Launcher = []string{"/nonexistent/gatehouse", "plugin"} },
			wantErr: []string{"cannot run the plugin", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, _, _ := newTestHost(t, []Spec{builtin(tc.plugin)}, tc.opt)
			if tc.versions != nil {
				h.versions = tc.versions
			}
			if err := h.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			checkFailed(t, h, tc.wantErr)
		})
	}
}

// checkFailed checks that the plugin failed without a restart, for the
// reasons in wantErr.
func checkFailed(t *testing.T, h *Host, wantErr []string) {
	t.Helper()
	st := h.Status()[0]
	if st.State != core.PluginFailed || st.Restarts != 0 || st.PID != 0 {
		t.Errorf("Status = %+v, want failed at once", st)
	}
	for _, w := range wantErr {
		if !strings.Contains(st.LastError, w) {
			t.Errorf("LastError = %q, want it to say %q", st.LastError, w)
		}
	}
}

// TestStartTimeout: a plugin that never completes the handshake is a failed
// start after StartTimeout, and its process is killed.
func TestStartTimeout(t *testing.T) {
	t.Parallel()
	start := time.Now()
	h, _, _ := testHost(t, []Spec{builtin("silent")}, func(o *Options) {
		o.StartTimeout = 300 * time.Millisecond
		o.MaxRestarts = -1
	})
	took := time.Since(start)
	st := h.Status()[0]
	if st.State != core.PluginFailed || !strings.Contains(st.LastError, "timeout while waiting for plugin to start") {
		t.Errorf("Status = %+v", st)
	}
	if took < 300*time.Millisecond || took > 20*time.Second {
		t.Errorf("Start took %v, want about the start timeout", took)
	}
}

// TestCloseDrains: Close lets a call in flight finish before it stops the
// plugin, and refuses new calls at once.
func TestCloseDrains(t *testing.T) {
	t.Parallel()
	h, logs, _ := testHost(t, []Spec{builtin("echo")}, nil)
	idp, _ := h.IdentityProvider("echo")
	pid := h.Status()[0].PID
	var (
		wg  sync.WaitGroup
		id  core.Identity
		err error
	)
	wg.Go(func() { id, err = idp.CheckPassword(context.Background(), "sleep", "1s") })
	waitFor(t, 10*time.Second, "the slow call to begin", func() bool { return logs.find(t, "sleeping") != nil })
	closed := make(chan error, 1)
	go func() { closed <- h.Close(t.Context()) }()
	waitFor(t, 10*time.Second, "Close to begin", func() bool { return h.Status()[0].State == core.PluginStopped })
	if _, err := idp.CheckPassword(t.Context(), "echo", "x"); core.KindOf(err) != core.Unavailable {
		t.Errorf("a call during Close: %v, want Unavailable", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait() // the call has its deadline
	// It finished rather than being cut: Close waited for it.
	if err != nil || id.Subject != "slept" {
		t.Errorf("the call in flight: %+v, %v; want it finished", id, err)
	}
	if alive(pid) {
		t.Error("the plugin outlived Close")
	}
}

// TestCloseCutsAtDeadline: calls still in flight when Close's ctx ends are
// cut, and Close returns.
func TestCloseCutsAtDeadline(t *testing.T) {
	t.Parallel()
	h, logs, _ := testHost(t, []Spec{builtin("echo")}, nil)
	idp, _ := h.IdentityProvider("echo")
	errc := make(chan error, 1)
	go func() {
		_, err := idp.CheckPassword(context.Background(), "sleep", "1m")
		errc <- err
	}()
	waitFor(t, 10*time.Second, "the slow call to begin", func() bool { return logs.find(t, "sleeping") != nil })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := h.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want the deadline's error", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("Close took %v", took)
	}
	if err := <-errc; core.KindOf(err) != core.Unavailable {
		t.Errorf("the cut call: %v, want Unavailable", err)
	}
}

// TestPluginsDieWithKilledHost runs a host in another process, kills it with
// SIGKILL and checks its plugin does not outlive it.
func TestPluginsDieWithKilledHost(t *testing.T) {
	t.Parallel()
	skipShort(t)
	proctest.NeedProc(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHost+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the test host printed no PID: %v", err)
	}
	pidText, sockDir, _ := strings.Cut(strings.TrimSpace(line), " ")
	if sockDir != "" {
		t.Cleanup(func() { _ = os.RemoveAll(sockDir) }) // a killed host cannot
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || !alive(pid) {
		t.Fatalf("plugin PID %q: %v, alive %v", line, err, alive(pid))
	}
	if ppid, _, err := proctest.Stat(pid); err != nil || ppid != cmd.Process.Pid {
		t.Fatalf("process %d is not the test host's plugin: parent %d, %v", pid, ppid, err)
	}
	t.Cleanup(func() { killTestPlugin(t, pid, cmd.Process.Pid) })
	_ = cmd.Process.Kill() // SIGKILL
	killed := time.Now()
	_ = cmd.Wait()
	waitFor(t, 10*time.Second, "the orphaned plugin to die", func() bool { return !alive(pid) })
	t.Logf("the plugin died %v after its host was killed", time.Since(killed).Round(time.Millisecond))
}

// externalDir copies the test binary into a fresh plugin folder as name and
// returns the folder and the copy's SHA-256.
func externalDir(t *testing.T, name string) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plugins")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, hash), src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, hex.EncodeToString(hash.Sum(nil))
}

func TestExternalPlugin(t *testing.T) {
	t.Parallel()
	dir, sum := externalDir(t, "echo-plugin")
	spec := Spec{Name: "ext", Kind: core.KindIdentityProvider, Path: "echo-plugin", SHA256: sum}
	h, _, _ := testHost(t, []Spec{spec}, func(o *Options) { o.Dir = dir })
	idp, _ := h.IdentityProvider("ext")
	if id, err := idp.CheckPassword(t.Context(), "echo", "external"); err != nil || id.Subject != "external" {
		t.Errorf("CheckPassword = %+v, %v", id, err)
	}
	if st := h.Status()[0]; st.Path != "echo-plugin" || st.Version != "1.2.3" {
		t.Errorf("Status = %+v", st)
	}
	// A binary replaced after the host started is not started again.
	if err := os.WriteFile(filepath.Join(dir, "new"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "new"), filepath.Join(dir, "echo-plugin")); err != nil {
		t.Fatal(err)
	}
	signalChild(t, h.Status()[0].PID, syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the plugin to fail", func() bool { return h.Status()[0].State == core.PluginFailed })
	if st := h.Status()[0]; !strings.Contains(st.LastError, "checksum mismatch") {
		t.Errorf("Status = %+v", st)
	}
}

// TestExternalPluginRefused: New refuses an external plugin that is not
// exactly what the configuration says, inside the plugin folder.
func TestExternalPluginRefused(t *testing.T) {
	t.Parallel()
	dir, sum := externalDir(t, "echo-plugin")
	outside := filepath.Join(filepath.Dir(dir), "outside")
	if err := os.Link(filepath.Join(dir, "echo-plugin"), outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("echo-plugin", filepath.Join(dir, "inside-link")); err != nil {
		t.Fatal(err)
	}
	writable := filepath.Join(dir, "writable")
	if err := os.Link(filepath.Join(dir, "echo-plugin"), writable); err != nil {
		t.Fatal(err)
	}
	openDir := filepath.Join(dir, "open")
	if err := os.Mkdir(openDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openDir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "echo-plugin"), filepath.Join(openDir, "p")); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, path, sum, want string
		chmod                 bool
	}{
		{name: "wrong checksum", path: "echo-plugin", sum: wrong, want: "checksum mismatch: " + filepath.Join(dir, "echo-plugin") + " has sha256 " + sum + ", the configuration says " + wrong},
		{name: "no checksum", path: "echo-plugin", want: "sha256 must be 64 hex digits"},
		{name: "absolute path outside", path: outside, sum: sum, want: "outside the plugin directory"},
		{name: "relative path outside", path: "../outside", sum: sum, want: "outside the plugin directory"},
		{name: "symlink outside", path: "link", sum: sum, want: "resolves to " + outside + ", outside the plugin directory"},
		{name: "missing", path: "nope", sum: sum, want: "no such file"},
		{name: "the directory itself", path: ".", sum: sum, want: "outside the plugin directory"},
		{name: "world-writable", path: "writable", sum: sum, chmod: true, want: "world-writable"},
		{name: "world-writable folder", path: "open/p", sum: sum, want: "folder " + openDir + " is world-writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.chmod {
				// writable is a hard link of echo-plugin: restore the mode after.
				if err := os.Chmod(writable, 0o777); err != nil {
					t.Fatal(err)
				}
				defer os.Chmod(writable, 0o755)
			}
			o := testOptions(nil, zerologDiscard())
			o.Dir = dir
			_, err := New([]Spec{{Name: "ext", Kind: core.KindIdentityProvider, Path: tc.path, SHA256: tc.sum}}, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `plugin "ext": `) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
	// A symlink inside the folder to a file inside it is fine.
	o := testOptions(nil, zerologDiscard())
	o.Dir = dir
	if _, err := New([]Spec{{Name: "ext", Kind: core.KindIdentityProvider, Path: "inside-link", SHA256: sum}}, o); err != nil {
		t.Errorf("a symlink inside the folder: %v", err)
	}
}

func TestNewRefusesBadSpecs(t *testing.T) {
	t.Parallel()
	sum := strings.Repeat("0", 64)
	_, err := New([]Spec{
		{Name: "a", Kind: core.KindIdentityProvider, Builtin: "email"},
		{Name: "a", Kind: core.KindIdentityProvider, Builtin: "email"},
		{Name: "Bad:Name", Kind: core.KindIdentityProvider, Builtin: "email"},
		{Name: "b", Kind: "storage", Builtin: "email"},
		{Name: "c", Kind: core.KindIntegration},
		{Name: "d", Kind: core.KindIntegration, Builtin: "email", Path: "x", SHA256: sum},
		{Name: "e", Kind: core.KindIntegration, Path: "x", SHA256: sum},
		{Name: "f", Kind: core.KindIntegration, Builtin: "email", Config: json.RawMessage(`{"passwordEnv":"UNSET","keyEnv":3}`)},
		{Name: "g", Kind: core.KindIntegration, Builtin: "email", Config: json.RawMessage(`[1]`)},
		{Name: "h", Kind: core.KindIntegration, Builtin: "email", CallTimeout: -1},
	}, testOptions(nil, zerologDiscard()))
	want := []string{
		`plugin "a": the name is used twice`,
		`plugin "Bad:Name": a name is a lowercase letter`,
		`plugin "b": kind "storage" is neither identity_provider nor integration`,
		`plugin "c": set either builtin or path`,
		`plugin "d": set either builtin or path`,
		`plugin "e": an external plugin needs the plugin directory to be set`,
		`plugin "f": config keyEnv must name an environment variable`,
		`plugin "f": config passwordEnv names UNSET, which is not set`,
		`plugin "g": config must be an object`,
		`plugin "h": negative call timeout`,
	}
	if err == nil {
		t.Fatal("New accepted bad specs")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("New's error lacks %q:\n%v", w, err)
		}
	}
	if _, err := New([]Spec{builtin("echo")}, Options{Launcher: []string{"x"}}); err == nil || !strings.Contains(err.Error(), "no KV") {
		t.Errorf("New without KV: %v", err)
	}
}

func TestCallsBeforeStartAndWithoutPlugins(t *testing.T) {
	t.Parallel()
	h, err := New([]Spec{builtin("echo")}, testOptions(nil, zerologDiscard()))
	if err != nil {
		t.Fatal(err)
	}
	idp, _ := h.IdentityProvider("echo")
	if _, err := idp.Describe(t.Context()); core.KindOf(err) != core.Unavailable {
		t.Errorf("Describe before Start: %v", err)
	}
	if st := h.Status()[0]; st.State != core.PluginStopped {
		t.Errorf("Status before Start = %+v", st)
	}
	if err := h.Close(t.Context()); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := h.Start(t.Context()); err == nil {
		t.Error("Start after Close succeeded")
	}

	empty, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := empty.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(empty.Status()) != 0 {
		t.Error("Status lists plugins")
	}
	if err := empty.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkCall is one round trip to a plugin process through the host's
// proxy: deadline, in-flight count, gRPC over a Unix socket with mTLS.
func BenchmarkCall(b *testing.B) {
	h, _, _ := testHost(b, []Spec{builtin("echo")}, nil)
	idp, _ := h.IdentityProvider("echo")
	ctx := b.Context()
	for b.Loop() {
		if _, err := idp.CheckPassword(ctx, "echo", "x"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallParallel is BenchmarkCall from many goroutines.
func BenchmarkCallParallel(b *testing.B) {
	h, _, _ := testHost(b, []Spec{builtin("echo")}, nil)
	idp, _ := h.IdentityProvider("echo")
	ctx := b.Context()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := idp.CheckPassword(ctx, "echo", "x"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
