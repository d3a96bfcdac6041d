package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/proctest"
)

// TestFaultEmailPluginKilled kills the email plugin's process under a load of
// sign-ups: while it is down every sign-up answers 503 at once (none hangs,
// none answers anything else), the host restarts it by itself, and no sign-up
// that answered 503 left a user behind, while every one that answered 201 is
// there. It prints its figures on a FAULT line (docs/faults.md).
func TestFaultEmailPluginKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the email plugin as a process and kills it")
	}
	proctest.NeedProc(t)
	const key = "operator-chosen-key-123"
	in, _ := startEmailServe(t, key, "100000/minute")

	const (
		workers = 4
		hung    = 5 * time.Second // an answer slower than this counts as hung
	)
	client := &http.Client{Timeout: 3 * hung}
	var (
		mu       sync.Mutex
		phase    = "before"
		statuses = map[string]map[int]int{}
		slowest  time.Duration
		created  []string // emails whose sign-up answered 201
		refused  []string // emails whose sign-up answered 503
		failed   time.Time
		back     time.Time // first 201 after the kill
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				email := fmt.Sprintf("load-%d-%d@example.com", w, i)
				body := `{"email":"` + email + `","password":"correct horse battery"}`
				// An answer counts in the phase its request started in, and
				// one whose request spans a phase change in "transition": a
				// sign-up in flight at the kill may answer 201 (its plugin
				// call was done) or 503, which says nothing of the restart.
				mu.Lock()
				started := phase
				mu.Unlock()
				start := time.Now()
				resp, err := client.Post(in.publicURL+"/auth/providers/email/signup", "application/json", strings.NewReader(body))
				took := time.Since(start)
				code := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				counted := started
				if phase != started {
					counted = "transition"
				}
				if statuses[counted] == nil {
					statuses[counted] = map[int]int{}
				}
				statuses[counted][code]++
				slowest = max(slowest, took)
				switch code {
				case http.StatusCreated:
					created = append(created, email)
					if counted == "killed" && back.IsZero() {
						back = time.Now()
					}
				case http.StatusServiceUnavailable:
					refused = append(refused, email)
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	pid, _ := in.pluginState(t, key, "email")
	mu.Lock()
	phase, failed = "killed", time.Now()
	mu.Unlock()
	proctest.Signal(t, pid, os.Getpid(), syscall.SIGKILL)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		ok := !back.IsZero()
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("no sign-up succeeded 30 s after the plugin was killed: %v", statuses)
		}
	}
	mu.Lock()
	phase = "after"
	mu.Unlock()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	for p, want := range map[string][]int{"before": {201}, "transition": {201, 503}, "killed": {201, 503}, "after": {201}} {
		for code, n := range statuses[p] {
			if !slices.Contains(want, code) {
				t.Errorf("%d sign-ups answered %d in phase %q, want only %v (0: no answer); all: %v", n, code, p, want, statuses)
			}
		}
	}
	if slowest > hung {
		t.Errorf("the slowest sign-up took %v: a request hung", slowest)
	}
	// The host restarted the plugin: a new process, running (polled, as the
	// state reported lags the first sign-up it served on a busy machine).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		newPID, state := in.pluginState(t, key, "email")
		if newPID != pid && newPID > 0 && state == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after the kill: plugin pid %d (was %d), state %s; want a new running process", newPID, pid, state)
			break
		}
	}
	// A sign-up answered 503 left no user; one answered 201 did. Sign-ups take
	// the email as their username.
	half := 0
	for _, email := range refused {
		if code, body := in.call(t, key, "GET", "/users/"+url.PathEscape(email), ""); code != http.StatusNotFound {
			half++
			if half <= 5 {
				t.Errorf("sign-up of %s answered 503, yet GET /users/%s answers %d %s", email, email, code, body)
			}
		}
	}
	lost := 0
	for _, email := range created {
		if code, _ := in.call(t, key, "GET", "/users/"+url.PathEscape(email), ""); code != http.StatusOK {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d users whose sign-up answered 201 are missing", lost)
	}
	t.Logf("FAULT email plugin kill -9: %d sign-ups while it was down (%v), slowest answer %v; sign-up back after %v; "+
		"%d sign-ups created, %d lost; %d answered 503, %d of them left a user",
		answers(statuses["killed"]), statuses["killed"], slowest.Round(time.Millisecond), back.Sub(failed).Round(time.Millisecond),
		len(created), lost, len(refused), half)
}

// answers counts the answers of a status table.
func answers(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
