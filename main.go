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
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, watchInterrupts))
}

// watchInterrupts ends ctx on an interrupt or SIGTERM.
func watchInterrupts(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
