package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// TestOutputToFullDisk: when stdout cannot be written (/dev/full), every
// command fails, with one line on stderr that says so, instead of exit 0.
func TestOutputToFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	home := t.TempDir()
	storeIn(t, filepath.Join(home, ".config"), "default", canarySet(time.Now().Add(2*time.Hour), time.Now().Add(24*time.Hour)))
	js, _ := json.Marshal(canarySet(time.Now().Add(2*time.Hour), time.Now().Add(24*time.Hour)))
	for _, tc := range []struct {
		args  []string
		stdin string
		exit  int
	}{
		{args: []string{"help"}, exit: 1},
		{args: []string{"--help"}, exit: 1},
		{args: []string{"help", "get"}, exit: 1},
		{args: []string{"version"}, exit: 1},
		{args: []string{"--version"}, exit: 1},
		{args: []string{"version", "--json"}, exit: 1},
		{args: []string{"status"}, exit: 1},
		{args: []string{"status", "--json"}, exit: 1},
		{args: []string{"get"}, exit: 1},
		{args: []string{"token"}, exit: 1},
		{args: []string{"get", "--format", "header"}, exit: 1},
		{args: []string{"list"}, exit: 1},
		{args: []string{"store", "--profile", "other"}, stdin: string(js), exit: 1},
		{args: []string{"erase", "--profile", "nothing"}, exit: 1},
		// A command that fails anyway keeps its own exit code.
		{args: []string{"get", "--profile", "nobody"}, exit: 4},
		{args: []string{"status", "--profile", "nobody"}, exit: 4},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer full.Close()
			cmd := exec.Command(binary, tc.args...)
			cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PRUSA_CREDENTIAL_STORE=file"}
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = full, &stderr
			detach(cmd)
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.exit {
				t.Fatalf("err %v, want exit %d; stderr %q", err, tc.exit, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, prog+": cannot write the output: ") || !strings.Contains(last, "no space left on device") {
				t.Fatalf("stderr %q", stderr.String())
			}
			assertNoTokens(t, "stderr", stderr.String(), setTokens(canarySet(time.Now(), time.Now()))...)
		})
	}
}

// TestMessagesAreOneLine: an error whose text spans lines (a wrapped cause
// such as "connection refused\nno response") is one line on stderr and in
// the JSON document, with no CR or LF left.
func TestMessagesAreOneLine(t *testing.T) {
	for _, msg := range []string{"dial tcp: connection refused\nno response", "a\r\nb", "a\rb\n", "\n", "x\n\n  y\t z\x1b[31m"} {
		var stdout, stderr bytes.Buffer
		c := &cli{env: &env{stdout: &stdout, stderr: &stderr}, s: &settings{command: "get", format: protocol.FormatJSON}}
		exit := c.report(errors.New(msg), false)
		var doc errorDoc
		if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil || exit != 1 {
			t.Fatalf("%q: exit %d stdout %q", msg, exit, stdout.String())
		}
		if strings.ContainsAny(doc.Message, "\r\n\x1b") || strings.Count(stdout.String(), "\n") != 1 {
			t.Errorf("%q: JSON message %q", msg, doc.Message)
		}
		if s := stderr.String(); strings.Count(s, "\n") != 1 || strings.ContainsAny(strings.TrimSuffix(s, "\n"), "\r\n\x1b") {
			t.Errorf("%q: stderr %q", msg, s)
		}
	}
	if got := protocol.OneLine("dial tcp: connection refused\nno response"); got != "dial tcp: connection refused; no response" {
		t.Errorf("OneLine: %q", got)
	}
}

// TestInterruptExits130: a command cut short by an interrupt (ctx ending)
// says "interrupted" and exits 130, as a shell does.
func TestInterruptExits130(t *testing.T) {
	p := newInProcess(t.TempDir(), map[string]string{"PRUSA_CREDENTIAL_STORE": "file"}, time.Now, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.ctx = ctx
	if exit := p.run("", "get"); exit != ExitInterrupted || p.stderr.String() != prog+": interrupted\n" {
		t.Fatalf("exit %d stderr %q", exit, p.stderr.String())
	}
}

// TestCatchesInterrupts: interrupts are caught for the commands that stop
// cleanly on one, and not for get (token is get) and version, which a
// signal may simply end.
func TestCatchesInterrupts(t *testing.T) {
	for command, want := range map[string]bool{
		"get": false, "version": false,
		"login": true, "store": true, "erase": true, "logout": true, "status": true, "list": true, "refresh": true,
	} {
		if got := catchesInterrupts(command); got != want {
			t.Errorf("catchesInterrupts(%q) = %v, want %v", command, got, want)
		}
	}
}

// TestStoreURLPasswordNeverShown: an etcd:// store value with a user part
// (which may hold a password) is refused without echoing it, from the flag
// and from PRUSA_CREDENTIAL_STORE alike.
func TestStoreURLPasswordNeverShown(t *testing.T) {
	const bad = "etcd://root:CANARY-s3cret@h:2379/p"
	for name, p := range map[string]*inProcess{
		"flag": newInProcess(t.TempDir(), map[string]string{}, time.Now, nil),
		"env":  newInProcess(t.TempDir(), map[string]string{"PRUSA_CREDENTIAL_STORE": bad}, time.Now, nil),
	} {
		args := []string{"get"}
		if name == "flag" {
			args = append(args, "--store", bad)
		}
		if code := p.run("", args...); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
		if out := p.stdout.String() + p.stderr.String(); strings.Contains(out, "CANARY-s3cret") || !strings.Contains(out, "no user in the URL") {
			t.Errorf("%s: %q", name, out)
		}
	}
}
