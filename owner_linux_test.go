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

// TestTokenFileOfAnotherUser: a token file that another user owns is not
// served, even where it is readable: whoever owns it chose its tokens, and
// with them the account the caller's requests would act on. It is a
// storage error, not "logged out". One that root owns is served (a Docker
// or Kubernetes secret), and root, which reads users' files on purpose,
// is served any. Needs root to run the helper as nobody (setpriv).
func TestTokenFileOfAnotherUser(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, with setpriv")
		}
		t.Skip("needs root and setpriv")
	}
	srv := newServer(t, authtest.Options{})
	dir, err := os.MkdirTemp("", "pch-owner-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // nobody may look in
	set := srv.Mint(userEmail, time.Hour)
	b, _ := json.Marshal(set)
	path := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(path, b, 0o644); err != nil { // root's, readable by all
		t.Fatal(err)
	}
	run := func(as ...string) (string, string, int) {
		r := execHelperAs(t, as, dir, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, "", "get", "--token-file", path)
		return r.stdout, r.stderr, r.exit
	}
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
	if stdout, stderr, code := run(nobody...); code != 0 || !strings.Contains(stdout, set.AccessToken) {
		t.Fatalf("root's file, as nobody: exit %d, stderr %q; want the token", code, stderr)
	}
	if err := os.Chown(path, 1, 1); err != nil { // daemon's
		t.Fatal(err)
	}
	stdout, stderr, code := run(nobody...)
	if code != 1 || !strings.Contains(stdout, `"code":"storage_error"`) || !strings.Contains(stderr, "owned by another user (uid 1)") {
		t.Fatalf("daemon's file, as nobody: exit %d, stderr %q; want storage_error naming the owner", code, stderr)
	}
	if strings.Contains(stdout+stderr, set.AccessToken) {
		t.Fatal("the other user's token was printed")
	}
	if stdout, _, code := run(); code != 0 || !strings.Contains(stdout, set.AccessToken) {
		t.Fatalf("daemon's file, as root: exit %d, want the token", code)
	}
}
