//go:build unix

package pluginhost

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/proctest"
)

// The tests signal plugin processes to crash or freeze them, only through
// internal/proctest: a checked, positive PID of a running child of the test.

// signalChild sends sig to pid, a child of this test process (a plugin the
// test's host started); it fails the test otherwise.
func signalChild(t testing.TB, pid int, sig syscall.Signal) {
	t.Helper()
	proctest.Signal(t, pid, os.Getpid(), sig)
}

// killTestPlugin sends SIGKILL to pid if it is a plugin process started by
// the test host whose PID is hostPID (testOptions marks the environment of
// every plugin with its host's PID), even once it has been orphaned: it is
// not this process's child, so checkChild cannot vouch for it. Anything else
// is left alone.
func killTestPlugin(t testing.TB, pid, hostPID int) {
	t.Helper()
	if pid <= 0 || pid == os.Getpid() || hostPID <= 0 {
		t.Errorf("not killing PID %d (test host %d)", pid, hostPID)
		return
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return // gone
	}
	if !bytes.Contains(append([]byte{0}, env...), []byte("\x00"+envOwner+"="+strconv.Itoa(hostPID)+"\x00")) {
		return // not that host's plugin: the PID was reused
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// freeze stops pid, a child of the test process, until the test ends.
func freeze(t *testing.T, pid int) {
	t.Helper()
	signalChild(t, pid, syscall.SIGSTOP)
	t.Cleanup(func() {
		if proctest.CheckChild(pid, os.Getpid()) == nil { // not restarted and reaped meanwhile
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	// kill returns before every thread has stopped.
	waitFor(t, 10*time.Second, "the process to stop", func() bool {
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/stat")
		for _, task := range tasks {
			if st := taskState(task); st != 'T' && st != 't' {
				return false
			}
		}
		return true
	})
}

// alive reports whether process pid exists and is not a zombie (an orphan is
// reaped by PID 1, which may take its time or never come in a container).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return syscall.Kill(pid, 0) == nil // no /proc; signal 0 only checks
	}
	_, st, err := proctest.Stat(pid)
	return err == nil && st != 'Z' && st != 'X'
}

// taskState returns the state letter in a /proc/PID/task/TID/stat file, 0 if
// there is none.
func taskState(stat string) byte {
	b, err := os.ReadFile(stat)
	if err != nil {
		return 0
	}
	// tid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// TestSignalChild: the guard refuses every PID that is not a child of the
// test process (0 and -1 above all), and signals one that is.
func TestSignalChild(t *testing.T) {
	proctest.NeedProc(t)
	for _, pid := range []int{0, -1, os.Getpid(), os.Getppid(), 1} {
		if err := proctest.CheckChild(pid, os.Getpid()); err == nil {
			t.Errorf("CheckChild(%d) accepted it", pid)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "silent") // sleeps
	cmd.Env = []string{envPlugin + "=1", "GORACE=atexit_sleep_ms=0"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	signalChild(t, cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
		if waitErr == nil || !strings.Contains(waitErr.Error(), "signal: killed") {
			t.Errorf("the child ended with %v, want killed", waitErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the child outlived its SIGKILL")
	}
}
