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

// TestPythonExample runs examples/python against the binary and the
// emulator: the README's Python class works as written.
func TestPythonExample(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing in CI")
		}
		t.Skip("python3 not installed")
	}
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
		First    string `json:"first"`
		Cached   bool   `json:"cached"`
		Calls    int    `json:"calls"`
		After401 string `json:"after_401"`
		Error    struct {
			Code      string `json:"code"`
			ExitCode  int    `json:"exit_code"`
			Retryable bool   `json:"retryable"`
		} `json:"error"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("demo.py printed %q", out)
	}
	tok := strings.TrimPrefix(got.First, "Bearer ")
	if !srv.ValidAccessToken(tok) || !got.Cached || got.Calls != 2 {
		t.Fatalf("first call: valid=%v cached=%v calls=%d", srv.ValidAccessToken(tok), got.Cached, got.Calls)
	}
	if after := strings.TrimPrefix(got.After401, "Bearer "); after == tok || !srv.ValidAccessToken(after) {
		t.Fatal("on_unauthorized did not get a fresh token")
	}
	if got.Error.Code != "login_required" || got.Error.ExitCode != 4 || got.Error.Retryable {
		t.Fatalf("error: %+v", got.Error)
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 2 {
		t.Fatalf("%d refreshes, want 2 (the expired token, then the forced one)", n)
	}
}
