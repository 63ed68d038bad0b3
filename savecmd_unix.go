//go:build !windows

package main

import (
	"os/exec"
	"syscall"
)

// killProcessGroup runs cmd in a process group of its own and makes its
// cancellation kill the whole group, so that what a sh -c '…' started dies
// with it.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
