// Command prusa-credential-helper gives any program a fresh Prusa Connect
// access token: see README.md and SPEC.md in the shared folder.
package main

import (
	"context"
	"os"
)

func main() {
	// Interrupts are watched (signal.NotifyContext) only by the commands
	// that ask for input or write: login, logout, store, erase. get does
	// not pay for a signal thread on every call; an interrupt ends it like
	// a kill, which leaves the store whole.
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
