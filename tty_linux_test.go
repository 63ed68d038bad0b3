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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
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

// startOnTerminal starts the built binary with the pseudo-terminal as its
// controlling terminal (and stdin), as a user's shell would.
func startOnTerminal(t *testing.T, slave *os.File, vars map[string]string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PRUSA_CREDENTIAL_STORE=file"}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &stdout, &stderr
}

// waitShown waits (at most 20 s) until the terminal has shown text n times.
func waitShown(t *testing.T, s *screen, text string, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if strings.Count(s.String(), text) >= n {
			return
		}
	}
	t.Fatalf("the terminal never showed %q %d times; it showed:\n%s", text, n, s.String())
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestLoginCtrlC: Ctrl-C at the password prompt of a real terminal ends
// login at once with exit 130, the terminal's echo back on, nothing sent.
func TestLoginCtrlC(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	master, slave := openPTY(t)
	shown := watch(master)
	cmd, stdout, stderr := startOnTerminal(t, slave, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail}, "login")
	waitShown(t, shown, "Password for "+userEmail, 1)
	untilEchoOff(slave)
	master.Write([]byte{3}) // Ctrl-C
	if exit := exitCode(t, cmd); exit != 130 || stdout.Len() != 0 || stderr.String() != prog+": interrupted\n" {
		t.Fatalf("exit %d stdout %q stderr %q", exit, stdout.String(), stderr.String())
	}
	if !echoOn(t, slave) {
		t.Fatal("echo left off")
	}
	if n := srv.Count(authtest.KindAuthorize); n != 0 {
		t.Fatalf("%d requests to the server", n)
	}
}

// TestLoginCtrlCAtEmail: Ctrl-C at the email prompt (which echoes) ends
// the prompt's line, so that the message after it starts a line of its own.
func TestLoginCtrlCAtEmail(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	master, slave := openPTY(t)
	shown := watch(master)
	cmd, _, stderr := startOnTerminal(t, slave, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, "login")
	waitShown(t, shown, "Prusa Account email: ", 1)
	master.Write([]byte{3}) // Ctrl-C
	if exit := exitCode(t, cmd); exit != 130 || stderr.String() != prog+": interrupted\n" {
		t.Fatalf("exit %d stderr %q", exit, stderr.String())
	}
	var after string
	for range 100 { // the terminal's output arrives after the exit, soon
		if _, after, _ = strings.Cut(shown.String(), "Prusa Account email: "); strings.Contains(after, "\n") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the prompt's line was left open: %q", after)
}

// TestLoginOnTerminal: a whole interactive login on a real terminal: an
// empty email asked again, a wrong password refused and both asked again,
// a TOTP entry of 5 digits refused on the spot, then a code with a space
// in it.
func TestLoginOnTerminal(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	master, slave := openPTY(t)
	shown := watch(master)
	cmd, stdout, stderr := startOnTerminal(t, slave, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, "login")
	type step struct {
		wait  string
		times int // how many times wait must have been shown
		typed string
	}
	good := goodTOTP()
	for _, s := range []step{
		{"Prusa Account email: ", 1, "\n"},
		{"the email is empty, try again", 1, userEmail + "\n"},
		{"Password for " + userEmail, 1, "CANARY-wrong\n"},
		{"Prusa Account email [" + userEmail + "]: ", 1, userEmail + "\n"}, // asked again after the refusal, with what was typed
		{"Password for " + userEmail, 2, userPassword + "\n"},
		{"TOTP code: ", 1, "12345\n"},
		{"a TOTP code is 6 digits, try again", 1, good[:3] + " " + good[3:] + "\n"},
	} {
		waitShown(t, shown, s.wait, s.times)
		if strings.HasPrefix(s.wait, "Password") {
			untilEchoOff(slave)
		}
		master.Write([]byte(s.typed))
	}
	if exit := exitCode(t, cmd); exit != 0 || stdout.Len() != 0 || !strings.HasSuffix(stderr.String(), "Logged in as canary@example.com (profile default, stored in file)\n") {
		t.Fatalf("exit %d stdout %q stderr %q", exit, stdout.String(), stderr.String())
	}
	time.Sleep(50 * time.Millisecond) // let the screen catch up
	if s := shown.String(); strings.Contains(s, "CANARY") || strings.Contains(s, userPassword) {
		t.Fatal("the terminal echoed a password")
	}
	if !strings.Contains(shown.String(), "invalid email or password, try again") || srv.Count(authtest.KindLoginPost) != 2 || srv.Count(authtest.KindTOTPPost) != 1 {
		t.Fatalf("%d password posts, %d TOTP posts", srv.Count(authtest.KindLoginPost), srv.Count(authtest.KindTOTPPost))
	}
}
