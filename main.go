// Command prusa-credential-helper gives any program a fresh Prusa Connect
// access token: see README.md and SPEC.md in the shared folder.
package main

import (
	"context"
	"os"
)

func main() {
	// Interrupts are watched (signal.NotifyContext) only where there is
	// something to clean up: run arms them before a refresh, a login or a
	// write. get's fast path does neither, and an interrupt ends it like
	// any small program — without paying for a signal thread on every call.
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
