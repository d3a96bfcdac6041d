package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// freeLoopbackAddr reserves a free loopback port and frees it for the
// caller to listen on.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestDevFakeProviders runs the README's local sign-in as written: `gatehouse
// dev fake-providers`, Gatehouse started with the settings it prints, and the
// curl line it prints (a cookie-keeping client following redirects) ending
// on the app page with the session's /users/me.
func TestDevFakeProviders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the fake providers, a server and its plugins")
	}
	clearEnv(t)
	public := freeLoopbackAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runDev(ctx, []string{"fake-providers", "--google-addr", "127.0.0.1:0", "--github-addr", "127.0.0.1:0",
			"--app-addr", "127.0.0.1:0", "--gatehouse-url", "http://" + public}, cliEnv{stdout: w, stderr: w})
		w.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("dev fake-providers did not stop")
		}
	})
	var out strings.Builder
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for stop := false; !stop; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev fake-providers ended:\n%s", out.String())
			}
			out.WriteString(l + "\n")
			stop = strings.HasPrefix(l, "Stop with")
		case <-time.After(10 * time.Second):
			t.Fatalf("dev fake-providers printed no instructions:\n%s", out.String())
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	// Apply the printed exports as a shell would.
	exports := regexp.MustCompile(`(\w+)='((?:[^']|'\\'')*)'`)
	for _, m := range exports.FindAllStringSubmatch(out.String(), -1) {
		t.Setenv(m[1], strings.ReplaceAll(m[2], `'\''`, "'"))
	}
	t.Setenv("GATEHOUSE_ADMIN_KEY", e2eAdminKey)
	startServe(t, filepath.Join(t.TempDir(), "key"), "--public-addr", public, "--public-url", "http://"+public)

	curls := regexp.MustCompile(`curl -sL -c \S+ -b \S+ '([^']+)'`).FindAllStringSubmatch(out.String(), -1)
	if len(curls) != 2 {
		t.Fatalf("want a curl line per provider:\n%s", out.String())
	}
	for i, want := range []string{`"username":"ada@example.test"`, `"username":"octocat"`} {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 15 * time.Second}
		resp, err := c.Get(curls[i][1])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "answered 200") || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d\n%s", curls[i][1], resp.StatusCode, body)
		}
	}
}
