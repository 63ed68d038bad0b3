//go:build windows

package main

import "os/exec"

// killProcessGroup leaves cmd as it is: on Windows, cancellation kills the
// command itself, and WaitDelay bounds the wait for what it started.
func killProcessGroup(cmd *exec.Cmd) {}
