package main

import (
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
// file's path, and the run.
func bindMounted(t *testing.T, ro bool) (srv *authtest.Server, old auth.TokenSet, outside string, r result) {
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
	namespace := []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" "$2"` + remount + ` && shift 2 && exec "$@"`, "sh", outside, inside}
	r = execHelperAs(t, namespace, home, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, `{"force_refresh": true}`, "get", "--token-file", inside)
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(inside), ".tokens.json.tmp-*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	return srv, old, outside, r
}

// TestBindMountedTokenFile: a bind-mounted token file cannot be renamed
// over. A refresh writes the new set into it, so the file outside holds
// the live refresh token; nothing is kept beside it.
func TestBindMountedTokenFile(t *testing.T) {
	srv, old, outside, r := bindMounted(t, false)
	if r.exit != 0 {
		t.Fatalf("get in the namespace: exit %d\nstderr %s", r.exit, r.stderr) // stdout may hold a token
	}
	if r.stderr != "" || strings.Contains(r.stdout, old.AccessToken) || !strings.Contains(r.stdout, `"success":true`) {
		t.Fatalf("stderr %s; want a new token and no warning", r.stderr)
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
	srv, old, _, r := bindMounted(t, true)
	if r.exit != 1 || !strings.Contains(r.stderr, "mount point that cannot be written") {
		t.Fatalf("get: exit %d, stderr %s; want storage_error before the request", r.exit, r.stderr)
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 0 || !srv.ValidRefreshToken(old.RefreshToken) {
		t.Fatalf("%d refreshes: the refresh token was spent", n)
	}
}
