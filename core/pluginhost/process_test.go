//go:build unix

package pluginhost

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests signal plugin processes to crash or freeze them. A signal goes
// only to a checked, positive PID of a process the test started: kill(2)
// with PID 0 signals the caller's whole process group and -1 every process
// it may signal, so a SIGSTOP to the PID of a plugin that failed to start
// (0) once stopped the whole test run, go test included.

// signalChild sends sig to pid, a child of this test process (a plugin the
// test's host started). It fails the test instead when pid is not positive,
// is this process or is not its child.
func signalChild(t testing.TB, pid int, sig syscall.Signal) {
	t.Helper()
	if err := checkChild(pid); err != nil {
		t.Fatalf("not sending %v: %v", sig, err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("sending %v to %d: %v", sig, pid, err)
	}
}

// checkChild says why pid is not a child process of this test process, or
// returns nil. It needs /proc (the test skips without it).
func checkChild(pid int) error {
	switch {
	case pid <= 0:
		return fmt.Errorf("PID %d names no single process", pid)
	case pid == os.Getpid():
		return fmt.Errorf("PID %d is the test process itself", pid)
	}
	ppid, err := parentPID(pid)
	if err != nil {
		return err
	}
	if ppid != os.Getpid() {
		return fmt.Errorf("process %d is not a child of the test process %d (its parent is %d)", pid, os.Getpid(), ppid)
	}
	return nil
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

// needProc skips the test on a system without /proc, where a PID cannot be
// checked before it is signalled.
func needProc(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: cannot check that a PID is this test's child before signalling it")
	}
}

// parentPID reads pid's parent from /proc/PID/stat.
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	// pid (comm) state ppid ...: the fields follow the last ')'.
	var f []string
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		f = strings.Fields(string(b[i+1:]))
	}
	if len(f) < 2 {
		return 0, fmt.Errorf("process %d: cannot read %q", pid, b)
	}
	return strconv.Atoi(f[1])
}

// freeze stops pid, a child of the test process, until the test ends.
func freeze(t *testing.T, pid int) {
	t.Helper()
	signalChild(t, pid, syscall.SIGSTOP)
	t.Cleanup(func() {
		if checkChild(pid) == nil { // not restarted and reaped meanwhile
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	// kill returns before every thread has stopped.
	waitFor(t, 10*time.Second, "the process to stop", func() bool {
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/stat")
		for _, task := range tasks {
			if st := procState(task); st != 'T' && st != 't' {
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
	st := procState("/proc/" + strconv.Itoa(pid) + "/stat")
	return st != 0 && st != 'Z' && st != 'X'
}

// procState returns the state letter in a /proc/.../stat file, 0 if there
// is none.
func procState(stat string) byte {
	b, err := os.ReadFile(stat)
	if err != nil {
		return 0
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// TestSignalChild: the guard refuses every PID that is not a child of the
// test process (0 and -1 above all), and signals one that is.
func TestSignalChild(t *testing.T) {
	needProc(t)
	for _, pid := range []int{0, -1, os.Getpid(), os.Getppid(), 1} {
		if err := checkChild(pid); err == nil {
			t.Errorf("checkChild(%d) accepted it", pid)
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
