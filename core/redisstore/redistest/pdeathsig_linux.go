package redistest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill cmd when the test binary dies, so no
// redis-server outlives a crashed or killed test.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
