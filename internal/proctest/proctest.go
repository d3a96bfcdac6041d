//go:build unix

// Package proctest lets tests signal the processes they started, and only
// those: kill(2) with PID 0 signals the caller's whole process group and -1
// every process it may signal, so a SIGSTOP sent to the PID of a plugin that
// failed to start (0) once stopped a whole test run, go test included. Every
// signal goes to a checked, positive PID of a running child. It reads
// /proc; NeedProc skips a test on a system without it.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// NeedProc skips the test on a system without /proc, where a PID cannot be
// checked before it is signalled.
func NeedProc(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: cannot check that a PID is this test's child before signalling it")
	}
}

// Stat returns pid's parent and state ('R', 'S', 'T', 'Z', ...) from
// /proc/PID/stat.
func Stat(pid int) (ppid int, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("process %d: %w", pid, err)
	}
	// "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
	var f []string
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		f = strings.Fields(string(b[i+1:]))
	}
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("process %d: cannot read %q", pid, b)
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err
}

// Running reports whether pid is a process that has not exited (a zombie has).
func Running(pid int) bool {
	_, state, err := Stat(pid)
	return err == nil && state != 'Z'
}

// CheckChild says why pid is not a running child of parent, or returns nil.
func CheckChild(pid, parent int) error {
	switch {
	case pid <= 0:
		return fmt.Errorf("PID %d names no single process", pid)
	case pid == os.Getpid():
		return fmt.Errorf("PID %d is the test process itself", pid)
	}
	ppid, state, err := Stat(pid)
	switch {
	case err != nil:
		return err
	case ppid != parent:
		return fmt.Errorf("process %d is not a child of %d (its parent is %d)", pid, parent, ppid)
	case state == 'Z':
		return fmt.Errorf("process %d has exited", pid)
	}
	return nil
}

// Signal sends sig to pid, which must be a running child of parent (the test
// process, os.Getpid(), or a process it started); it fails the test instead.
func Signal(t testing.TB, pid, parent int, sig syscall.Signal) {
	t.Helper()
	if err := CheckChild(pid, parent); err != nil {
		t.Fatalf("not sending %v: %v", sig, err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("sending %v to %d: %v", sig, pid, err)
	}
}
