// Command prusa-credential-helper gives any program a fresh Prusa Connect
// access token: see README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := context.Background(), func() {}
	if catchesInterrupts(os.Args[1:]) {
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// catchesInterrupts says whether the command line's command turns an
// interrupt into a clean stop (exit 130): login restores the terminal, and
// the writers stop before a half-done step. get, token and version do not:
// they only read, or save a refreshed set atomically (a killed get leaves
// the old set or the new one, whole, and its lock goes with the process),
// and catching signals would cost every get two threads, about 12% of its
// time (see the README's "Speed").
func catchesInterrupts(args []string) bool {
	s, _, err := parseArgs(args)
	if err != nil {
		return true
	}
	switch s.command {
	case "get", "token", "version":
		return false
	}
	return true
}
