package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/proctest"
	"github.com/gatehouse/gatehouse/plugins/email/smtptest"
)

// emailPlugins configures the built-in email plugin to send through sink.
func emailPlugins(t *testing.T, sink *smtptest.Sink) string {
	t.Helper()
	b, err := json.Marshal([]map[string]any{{
		"name": "email", "kind": "identity_provider", "builtin": "email",
		"config": map[string]any{"from": "Gatehouse <no-reply@example.com>", "smtp": sink.SMTPConfig()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startEmailServe starts a server with the email plugin sending through a new
// SMTP sink, the admin key key, and signupRate as the sign-up limit per address.
func startEmailServe(t *testing.T, key, signupRate string) (*instance, *smtptest.Sink) {
	t.Helper()
	clearEnv(t)
	sink := smtptest.Start(t)
	t.Setenv("GATEHOUSE_PLUGINS", emailPlugins(t, sink))
	t.Setenv("GATEHOUSE_ADMIN_KEY", key)
	in := startServe(t, filepath.Join(t.TempDir(), "key"), "--public-url", "https://auth.example.test", "--rate-signup-per-address", signupRate)
	return in, sink
}

// tokenOf returns the token of a mail's link.
func tokenOf(t *testing.T, m smtptest.Message) string {
	t.Helper()
	u, err := url.Parse(m.Link())
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("no link with a token in the mail: %q", m.Text)
	}
	return u.Query().Get("token")
}

// TestEmailSignupEndToEnd runs the whole email flow through a real server, the
// email plugin as its own process and a real SMTP server: sign-up → the mail →
// verification → login → /verify; a password reset ends the old sessions; a
// killed plugin answers 503 at once and is back soon; nothing secret is logged.
func TestEmailSignupEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the email plugin as a process, kills and restarts it")
	}
	const key = "operator-chosen-key-123"
	// The sign-ups retried while the plugin restarts must not meet the sign-up
	// rate limit.
	in, sink := startEmailServe(t, key, "1000/minute")
	pub := func(method, path, body string, headers ...string) (int, string) {
		return do(t, method, in.publicURL+path, body, append([]string{"Content-Type", "application/json"}, headers...)...)
	}

	code, body := pub("POST", "/auth/providers/email/signup", `{"email":"ada@example.com","password":"correct horse battery","firstname":"Ada"}`)
	if code != 201 {
		t.Fatalf("signup: %d %s", code, body)
	}
	mail := sink.WaitFor(t, "ada@example.com", 5*time.Second)
	if !strings.HasPrefix(mail.Link(), "https://auth.example.test/auth/providers/email/verify?token=") || !strings.Contains(mail.Text, "Ada") {
		t.Fatalf("verification mail: link %q", mail.Link())
	}
	verifyToken := tokenOf(t, mail)
	if code, _ := pub("POST", "/auth/tokens", `{"provider":"email","identifier":"ada@example.com","secret":"correct horse battery"}`); code != 403 {
		t.Errorf("login before verification: %d", code)
	}
	if code, body := pub("GET", "/auth/providers/email/verify?token="+verifyToken, ""); code != 200 || !strings.Contains(body, verifyToken) {
		t.Fatalf("verification page: %d", code)
	}
	if code, body := pub("POST", "/auth/providers/email/verify", `{"token":"`+verifyToken+`"}`); code != 200 || !strings.Contains(body, `"emailVerified":true`) {
		t.Fatalf("verification: %d %s", code, body)
	}
	if code, _ := pub("POST", "/auth/providers/email/verify", `{"token":"`+verifyToken+`"}`); code != 404 {
		t.Errorf("a verification link used twice: %d", code)
	}
	code, body = pub("POST", "/auth/tokens", `{"provider":"email","identifier":"ada@example.com","secret":"correct horse battery"}`)
	var login struct{ Token string }
	_ = json.Unmarshal([]byte(body), &login)
	if code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	if code, _ := pub("GET", "/verify", "", "Authorization", "Bearer "+login.Token); code != 200 {
		t.Fatalf("/verify with the session: %d", code)
	}

	// Password reset: the mail, the new password, the old session ended.
	sink.Reset()
	if code, _ := pub("POST", "/auth/providers/email/password-reset", `{"email":"ada@example.com"}`); code != 202 {
		t.Fatalf("password-reset: %d", code)
	}
	resetToken := tokenOf(t, sink.WaitFor(t, "ada@example.com", 5*time.Second))
	if code, body := pub("POST", "/auth/providers/email/password-reset/confirm", `{"token":"`+resetToken+`","password":"battery staple horse"}`); code != 204 {
		t.Fatalf("reset confirm: %d %s", code, body)
	}
	if code, _ := pub("GET", "/verify", "", "Authorization", "Bearer "+login.Token); code != 401 {
		t.Errorf("a session from before the reset: %d", code)
	}
	if code, _ := pub("POST", "/auth/tokens", `{"provider":"email","identifier":"ada@example.com","secret":"battery staple horse"}`); code != 200 {
		t.Errorf("login with the new password: %d", code)
	}

	// Kill the plugin's process: 503 at once, only 503 while it is down, then back.
	pid, _ := in.pluginState(t, key, "email")
	proctest.Signal(t, pid, os.Getpid(), syscall.SIGKILL)
	deadline := time.Now().Add(30 * time.Second)
	for wait, tries := 20*time.Millisecond, 1; ; wait, tries = min(2*wait, time.Second), tries+1 {
		start := time.Now()
		code, body := pub("POST", "/auth/providers/email/signup", `{"email":"bob@example.com","password":"correct horse battery"}`)
		if code == 201 {
			t.Logf("sign-up works again at try %d", tries)
			break
		}
		if code != 503 {
			t.Fatalf("sign-up while the plugin restarts: %d %s, want 503 until it is back, then 201", code, body)
		}
		// At once: not after the call timeout a dead plugin would cost.
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("a 503 took %v: want it at once", took)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin did not come back within 30 s")
		}
		time.Sleep(wait)
	}
	if newPID, state := in.pluginState(t, key, "email"); newPID == pid || state != "running" {
		t.Errorf("after the restart: pid %d (was %d), state %s", newPID, pid, state)
	}
	sink.WaitFor(t, "bob@example.com", 5*time.Second)
	e := in.log()
	for _, secret := range []string{"correct horse battery", "battery staple horse", verifyToken, resetToken, login.Token, key} {
		if strings.Contains(e, secret) {
			t.Errorf("a secret (%.6s…) is in the log", secret)
		}
	}
}

// TestHostKilledTakesPlugins: a server killed with SIGKILL leaves no plugin
// process behind.
func TestHostKilledTakesPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "serve", "--config", "", "--admin-addr", "127.0.0.1:0", "--public-addr", "127.0.0.1:0",
		"--admin-key-file", filepath.Join(dir, "key"), "--log-format", "json")
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_KEY=operator-chosen-key-123", "XDG_STATE_HOME="+dir)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := 0
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(15 * time.Second)
	var seen strings.Builder
	for pid == 0 && time.Now().Before(deadline) {
		n, err := out.Read(buf)
		seen.Write(buf[:n])
		for line := range strings.SplitSeq(seen.String(), "\n") {
			var l map[string]any
			if json.Unmarshal([]byte(line), &l) == nil && l["message"] == "plugin running" {
				if p, ok := l["pid"].(float64); ok {
					pid = int(p)
				}
			}
		}
		if err != nil {
			break
		}
	}
	if pid == 0 {
		t.Fatalf("no plugin pid in the server's log:\n%s", seen.String())
	}
	if err := proctest.CheckChild(pid, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	for start := time.Now(); proctest.Running(pid); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("plugin %d outlived its SIGKILLed host", pid)
		}
	}
}

// TestExternalPluginChecksum: an external plugin whose file does not match its
// sha256, or that lies outside the plugin folder, is refused with a clear error
// and the server does not start with it.
func TestExternalPluginChecksum(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "acme-idp")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, sum, want string }{
		{"acme-idp", strings.Repeat("0", 64), "checksum"},
		{"../outside", strings.Repeat("0", 64), "outside"},
	} {
		plugins := fmt.Sprintf(`[{"name":"acme","kind":"identity_provider","path":%q,"sha256":%q}]`, c.path, c.sum)
		t.Setenv("GATEHOUSE_PLUGINS", plugins)
		code, _, stderr := runArgs(t, t.Context(), "serve", "--config", "", "--admin-addr", "127.0.0.1:0", "--public-addr", "127.0.0.1:0",
			"--plugin-dir", dir, "--admin-key-file", filepath.Join(dir, "key"))
		if code != exitFail || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "acme") {
			t.Errorf("%s: exit %d, want %d and an error about %q naming the plugin:\n%s", c.path, code, exitFail, c.want, stderr)
		}
	}
}
