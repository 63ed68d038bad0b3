//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the user's side (master) and the
// terminal the helper sees (slave).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// screen collects what the terminal shows the user.
type screen struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *screen) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func watch(master io.Reader) *screen {
	s := &screen{}
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.b.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

func echoOn(t *testing.T, f *os.File) bool {
	t.Helper()
	on, err := echo(f)
	if err != nil {
		t.Fatal(err)
	}
	return on
}

func echo(f *os.File) (bool, error) {
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil && tio.Lflag&unix.ECHO != 0, err
}

// untilEchoOff waits (at most 10 s) for a prompt to turn echo off.
func untilEchoOff(f *os.File) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if on, err := echo(f); err != nil || !on {
			return
		}
	}
}

// TestTerminalSecretPrompt: on a real (pseudo-)terminal the password is
// read without echo, and echo is back afterwards.
func TestTerminalSecretPrompt(t *testing.T) {
	master, slave := openPTY(t)
	shown := watch(master)
	tty := &ttyTerminal{in: slave, out: slave, r: bufio.NewReader(slave)}
	go func() {
		untilEchoOff(slave)
		master.Write([]byte("CANARY-pw\n"))
	}()
	got, err := tty.PromptSecret(context.Background(), "Password: ")
	if err != nil || got != "CANARY-pw" {
		t.Fatalf("got %q, %v", got, err)
	}
	if !echoOn(t, slave) {
		t.Fatal("echo still off after the prompt")
	}
	time.Sleep(50 * time.Millisecond) // let the screen catch up
	if s := shown.String(); !bytes.Contains([]byte(s), []byte("Password: ")) || bytes.Contains([]byte(s), []byte("CANARY")) {
		t.Fatalf("the terminal showed %q", s)
	}
}

// TestTerminalSecretPromptInterrupted: an interrupt (ctx ending) returns
// from the no-echo prompt at once, with echo restored — not at the next
// Enter.
func TestTerminalSecretPromptInterrupted(t *testing.T) {
	master, slave := openPTY(t)
	watch(master)
	tty := &ttyTerminal{in: slave, out: slave, r: bufio.NewReader(slave)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		untilEchoOff(slave)
		cancel() // Ctrl-C
	}()
	_, err := tty.PromptSecret(ctx, "Password: ")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !echoOn(t, slave) {
		t.Fatal("echo left off after an interrupted prompt")
	}
	master.Write([]byte("\n")) // ends the abandoned read
}
