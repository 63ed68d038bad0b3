// Command prusa-credential-helper gives any program a fresh Prusa Connect
// access token: see README.md.
package main

import (
	"context"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	growStack(len(os.Args))
	// net/http logs, on the standard logger, bytes a server sent unasked
	// on an idle connection: they may echo a request, password and all.
	// Nothing here logs; errors reach stderr through run alone.
	log.SetOutput(io.Discard)
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, watchInterrupts))
}

// watchInterrupts ends ctx on an interrupt or SIGTERM.
func watchInterrupts(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// growStack grows this goroutine's stack to the 8 KiB that a command's work
// needs, while almost nothing is on it. The runtime grows a stack by copying
// it, reading the tables of every function on it: grown deep inside a get's
// work, as it would be, that maps another 0.3 MiB of the binary (README.md,
// Speed).
//
//go:noinline
func growStack(n int) byte {
	var frame [5 << 10]byte // indexes known only at run time keep it
	frame[n%len(frame)] = byte(n)
	return frame[(n*7)%len(frame)]
}
