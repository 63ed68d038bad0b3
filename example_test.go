package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// needPython is python3's path; without one the test skips, except in CI,
// which installs it.
func needPython(t *testing.T) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing in CI")
		}
		t.Skip("python3 is not installed, so the Python example cannot be tested here")
	}
	return python
}

// TestPythonExample runs examples/python against the binary and the
// emulator: the README's Python class works as written.
func TestPythonExample(t *testing.T) {
	python := needPython(t)
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	set := srv.Mint(userEmail, -time.Minute)
	writeSet(t, home, "default", set)
	cmd := exec.Command(python, "demo.py", binary)
	cmd.Dir = filepath.Join("examples", "python")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PRUSA_ACCOUNT_URL=" + srv.URL}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("demo.py: %v", err)
	}
	var got struct {
		First          string `json:"first"`
		FirstStatus    int    `json:"first_status"`
		Cached         bool   `json:"cached"`
		Calls          int    `json:"calls"`
		After401       string `json:"after_401"`
		After401Status int    `json:"after_401_status"`
		Error          struct {
			Code      string `json:"code"`
			ExitCode  int    `json:"exit_code"`
			Retryable bool   `json:"retryable"`
		} `json:"error"`
	}
	if strings.Contains(string(out), "eyJ") {
		t.Fatal("demo.py printed a token")
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("demo.py printed %q", out)
	}
	if got.FirstStatus != 200 || !got.Cached || got.Calls != 2 {
		t.Fatalf("first call: /api/v1/me/ answered %d, cached=%v calls=%d", got.FirstStatus, got.Cached, got.Calls)
	}
	if got.After401 == got.First || got.After401Status != 200 {
		t.Fatalf("on_unauthorized did not get a fresh token that works (%d)", got.After401Status)
	}
	if got.Error.Code != "login_required" || got.Error.ExitCode != 4 || got.Error.Retryable {
		t.Fatalf("error: %+v", got.Error)
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 2 {
		t.Fatalf("%d refreshes, want 2 (the expired token, then the forced one)", n)
	}
}

// TestPythonExampleWithoutBinary: with no helper on PATH, the Python class
// says what to install, in a HelperError the caller can catch.
func TestPythonExampleWithoutBinary(t *testing.T) {
	python := needPython(t)
	// The interpreter itself, not a shim (pyenv's) that needs PATH.
	real, err := exec.Command(python, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	python = strings.TrimSpace(string(real))
	script := `
import json
from prusa_credential_helper import HelperAuth, HelperError, HelperNotInstalled
try:
    HelperAuth().before_request({})
    print(json.dumps({"raised": None}))
except HelperNotInstalled as e:
    print(json.dumps({"raised": "HelperNotInstalled", "is_helper_error": isinstance(e, HelperError),
                      "code": e.code, "exit_code": e.exit_code, "retryable": e.retryable, "message": str(e)}))
`
	cmd := exec.Command(python, "-c", script)
	cmd.Dir = filepath.Join("examples", "python")
	cmd.Env = []string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir(), "PYTHONDONTWRITEBYTECODE=1"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got struct {
		Raised        *string `json:"raised"`
		IsHelperError bool    `json:"is_helper_error"`
		Code          string  `json:"code"`
		ExitCode      int     `json:"exit_code"`
		Retryable     bool    `json:"retryable"`
		Message       string  `json:"message"`
	}
	if err := json.Unmarshal(out, &got); err != nil || got.Raised == nil {
		t.Fatalf("python printed %q", out)
	}
	if !got.IsHelperError || got.Code != "not_installed" || got.ExitCode != 127 || got.Retryable {
		t.Fatalf("got %+v", got)
	}
	for _, want := range []string{"cannot run 'prusa-credential-helper' (not found)", "./install.sh", "~/.local/bin", "on PATH", "binary="} {
		if !strings.Contains(got.Message, want) {
			t.Errorf("the message %q does not say %q", got.Message, want)
		}
	}
}

// TestPythonExampleLocalClockOff: the Python class keeps a token for at
// most five minutes by the monotonic clock whatever the local clock says
// (hours behind or ahead of the account server's), and leaves the judgment
// of validity to the helper.
func TestPythonExampleLocalClockOff(t *testing.T) {
	python := needPython(t)
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	writeSet(t, home, "default", srv.Mint(userEmail, -time.Minute))
	script := `
import json, sys, time as real
import prusa_credential_helper as m

class Clock:
    def __init__(self, skew):
        self.skew, self.mono = skew, 1000.0
    def time(self):
        return real.time() + self.skew
    def monotonic(self):
        return self.mono

out = {}
for name, skew in (("behind", -5 * 3600), ("ahead", 5 * 3600)):
    clock = Clock(skew)
    m.time = clock
    auth = m.HelperAuth(binary=sys.argv[1])
    tokens = [auth.token()]
    clock.mono += 299
    tokens.append(auth.token())
    at299 = auth.calls
    clock.mono += 2
    tokens.append(auth.token())
    out[name] = {"tokens": tokens, "calls_at_299": at299, "calls_at_301": auth.calls}
print(json.dumps(out))
`
	cmd := exec.Command(python, "-c", script, binary)
	cmd.Dir = filepath.Join("examples", "python")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PRUSA_ACCOUNT_URL=" + srv.URL, "PYTHONDONTWRITEBYTECODE=1"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got map[string]struct {
		Tokens     []string `json:"tokens"`
		CallsAt299 int      `json:"calls_at_299"`
		CallsAt301 int      `json:"calls_at_301"`
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got) != 2 {
		t.Fatalf("python printed %d bytes that are not the JSON wanted (%v)", len(out), err) // tokens: not shown
	}
	// Behind: cached for 299 s, asked again at 301 s (not at the token's
	// expiration_time, hours later by that clock). Ahead: every token looks
	// expired by the local clock, so the helper is asked each time.
	want := map[string][2]int{"behind": {1, 2}, "ahead": {2, 3}}
	for name, w := range want {
		g := got[name]
		if g.CallsAt299 != w[0] || g.CallsAt301 != w[1] {
			t.Errorf("local clock %s: %d helper calls after 299 s, %d after 301 s; want %d and %d", name, g.CallsAt299, g.CallsAt301, w[0], w[1])
		}
		for _, tok := range g.Tokens {
			if !srv.ValidAccessToken(tok) {
				t.Errorf("local clock %s: got a token the server does not take", name)
			}
		}
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Errorf("%d refreshes, want 1 (the expired token; then the helper's stored one)", n)
	}
}
