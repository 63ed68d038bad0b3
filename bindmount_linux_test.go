package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// bindMounted runs get --token-file with force_refresh in a mount
// namespace of its own (unshare -m, as root), on a token file bind-mounted
// from outside (read-only with ro), as a container sees a file given with
// docker run -v. It returns the server, the set stored outside, that
// file's path, and the run's stdout, stderr and error.
func bindMounted(t *testing.T, ro bool) (srv *authtest.Server, old auth.TokenSet, outside, stdout, stderr string, err error) {
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, with unshare")
		}
		t.Skip("needs root and unshare")
	}
	srv = newServer(t, authtest.Options{})
	home := t.TempDir()
	outside = filepath.Join(t.TempDir(), "prusa_tokens.json")
	old = srv.Mint(userEmail, time.Hour)
	b, _ := json.Marshal(old)
	if err := os.WriteFile(outside, b, 0o600); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(t.TempDir(), "tokens.json") // the container's path
	if err := os.WriteFile(inside, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	remount := ""
	if ro {
		remount = ` && mount -o remount,ro,bind "$2"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" "$2"`+remount+` && exec "$3" get --token-file "$2"`, "sh", outside, inside, binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PRUSA_ACCOUNT_URL=" + srv.URL}
	cmd.Stdin = strings.NewReader(`{"force_refresh": true}`)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(inside), ".tokens.json.tmp-*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	return srv, old, outside, out.String(), errOut.String(), err
}

// TestBindMountedTokenFile: a bind-mounted token file cannot be renamed
// over. A refresh writes the new set into it, so the file outside holds
// the live refresh token; nothing is kept beside it.
func TestBindMountedTokenFile(t *testing.T) {
	srv, old, outside, stdout, stderr, err := bindMounted(t, false)
	if err != nil {
		t.Fatalf("get in the namespace: %v\nstderr %s", err, stderr) // stdout may hold a token
	}
	if stderr != "" || strings.Contains(stdout, old.AccessToken) || !strings.Contains(stdout, `"success":true`) {
		t.Fatalf("stderr %s; want a new token and no warning", stderr)
	}
	var now map[string]any
	b, _ := os.ReadFile(outside)
	if json.Unmarshal(b, &now) != nil || now["refresh_token"] == old.RefreshToken || !srv.ValidRefreshToken(now["refresh_token"].(string)) {
		t.Fatal("the bind-mounted file does not hold the refreshed set")
	}
}

// TestReadOnlyBindMountedTokenFile: a token file bind-mounted read-only
// cannot take a refreshed set: the refresh fails before its request, and
// the refresh token stays unspent.
func TestReadOnlyBindMountedTokenFile(t *testing.T) {
	srv, old, _, _, stderr, err := bindMounted(t, true)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr, "mount point that cannot be written") {
		t.Fatalf("get: %v, stderr %s; want storage_error before the request", err, stderr)
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 0 || !srv.ValidRefreshToken(old.RefreshToken) {
		t.Fatalf("%d refreshes: the refresh token was spent", n)
	}
}
