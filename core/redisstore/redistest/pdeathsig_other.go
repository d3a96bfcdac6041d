//go:build !linux

package redistest

import "os/exec"

// setPdeathsig does nothing: only Linux can tie a child's life to its parent's.
func setPdeathsig(*exec.Cmd) {}
