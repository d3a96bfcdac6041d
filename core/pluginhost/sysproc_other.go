//go:build !linux

package pluginhost

import "syscall"

// sysProcAttr is nil where there is no parent-death signal; sdk.Serve still
// exits when its parent goes away.
func sysProcAttr() *syscall.SysProcAttr { return nil }
