//go:build unix

package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSaveCommandStopsOnANewInterrupt: after an interrupt that came while
// the request was out (the command runs all the same), a new SIGINT, sent
// to the helper alone as a terminal's Ctrl-C would not reach the command's
// own process group, stops the command.
func TestSaveCommandStopsOnANewInterrupt(t *testing.T) {
	needSh(t)
	set := canaryTokenSet(t)
	started := filepath.Join(t.TempDir(), "started")
	var warnings []string
	sc := &saveCommand{argv: []string{"sh", "-c", `: > "$1"; exec sleep 20`, "sh", started}, timeout: 15 * time.Second,
		warn: func(m string) { warnings = append(warnings, m) }}
	// The test's own catch: without run's, the signal would end the test
	// binary rather than fail the test.
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, syscall.SIGINT)
	defer signal.Stop(caught)
	before, cancel := context.WithCancel(context.Background())
	cancel()
	go func() {
		for range 1000 {
			if _, err := os.Stat(started); err == nil {
				syscall.Kill(os.Getpid(), syscall.SIGINT) // run has caught SIGINT since before the command started
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	sc.run(before, set)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "interrupted") {
		t.Fatalf("warnings %q; want the command stopped by the new interrupt", warnings)
	}
}
