//go:build unix

package main

import (
	"os"
	"syscall"
)

// jobControl are the signals that stop a process: a Ctrl-Z at the
// helper's terminal sends SIGTSTP to its whole process group.
var jobControl = []os.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU}
