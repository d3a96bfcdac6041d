package pluginhost

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-plugin/runner"
)

// launches is the queue of the one goroutine that forks every plugin process.
// It locks its OS thread and never returns, so that thread lives as long as
// the host: Linux sends a child its Pdeathsig when the thread that forked it
// exits, not the process (golang/go#27505), and Go ends the thread of a
// goroutine that exits while locked. Forking from any other goroutine could
// kill a healthy plugin whenever some locked goroutine happened to exit on the
// thread that had forked it.
var launches = sync.OnceValue(func() chan<- func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose
		for fn := range ch {
			fn()
		}
	}()
	return ch
})

// onLaunchThread runs fn on the launch goroutine and waits for it.
func onLaunchThread(fn func()) {
	done := make(chan struct{})
	launches() <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// procRunner is go-plugin's runner.Runner for one plugin process: go-plugin's
// own command runner, except that the process is forked on the launch thread
// with a parent-death signal (sysProcAttr) and that exited tells at once when
// the process is gone.
type procRunner struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr io.ReadCloser
	pid    atomic.Int64
	exited chan struct{} // closed once Wait has returned
	once   sync.Once
}

var _ runner.Runner = (*procRunner)(nil)

// newProcRunner returns a runner for cmd, which is not started yet.
func newProcRunner(cmd *exec.Cmd) (*procRunner, error) {
	cmd.SysProcAttr = sysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	return &procRunner{cmd: cmd, stdout: stdout, stderr: stderr, exited: make(chan struct{})}, nil
}

// Start forks the process on the launch thread.
func (r *procRunner) Start(context.Context) error {
	var err error
	onLaunchThread(func() { err = r.cmd.Start() })
	if err != nil {
		r.once.Do(func() { close(r.exited) })
		return err
	}
	r.pid.Store(int64(r.cmd.Process.Pid))
	return nil
}

// Wait waits for the process to exit; go-plugin calls it once, after the
// process's stdout and stderr are closed.
func (r *procRunner) Wait(context.Context) error {
	defer r.once.Do(func() { close(r.exited) })
	return r.cmd.Wait()
}

// Kill sends SIGKILL; a process already gone is no error.
func (r *procRunner) Kill(context.Context) error {
	if r.pid.Load() == 0 {
		return nil
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Exited reports whether the process has exited (and been waited for).
func (r *procRunner) Exited() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// ExitStatus describes how the process ended ("exit status 3", "signal:
// killed"); call it after exited is closed.
func (r *procRunner) ExitStatus() string {
	if r.cmd.ProcessState == nil {
		return "not started"
	}
	return r.cmd.ProcessState.String()
}

// Diagnose explains a failed handshake.
func (r *procRunner) Diagnose(context.Context) string {
	return "a plugin must write nothing to stdout before sdk.Serve, which speaks the handshake there"
}

// Stdout carries the handshake.
func (r *procRunner) Stdout() io.ReadCloser { return r.stdout }

// Stderr carries the plugin's log lines, re-logged by go-plugin.
func (r *procRunner) Stderr() io.ReadCloser { return r.stderr }

// Name is the executable's path.
func (r *procRunner) Name() string { return r.cmd.Path }

// ID is the process id once started, "" before.
func (r *procRunner) ID() string {
	if pid := r.pid.Load(); pid != 0 {
		return strconv.FormatInt(pid, 10)
	}
	return ""
}

// PID is the process id once started, 0 before.
func (r *procRunner) PID() int { return int(r.pid.Load()) }

// PluginToHost is the identity: host and plugin share the file system.
func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

// HostToPlugin is the identity: host and plugin share the file system.
func (r *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}
