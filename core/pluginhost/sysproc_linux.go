package pluginhost

import "syscall"

// sysProcAttr has the kernel SIGKILL a plugin when its host dies, SIGKILL
// included; see launches for the thread it is tied to.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
