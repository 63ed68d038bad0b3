//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// busConfig is a session bus on which nothing can be started: no
// Secret Service is there.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// startBus starts a private dbus-daemon with the given configuration
// argument, its programs run with HOME home, and returns its address.
func startBus(t *testing.T, home, config string) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must have dbus-daemon")
		}
		t.Skip("no dbus-daemon")
	}
	cmd := exec.Command("dbus-daemon", config, "--nofork", "--print-address=1")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // with what it starts
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	return strings.TrimSpace(addr)
}

// TestBusWithoutAKeyring: a session bus with no keyring on it, because no
// Secret Service is there to start or because gnome-keyring, started on
// demand, has no keyring but its in-memory session collection (as on a
// server reached over SSH), is not a locked keyring: before a login, get
// is login_required and list empty; store and login go to the file store
// and say why; get then serves the set, and erase is idempotent.
func TestBusWithoutAKeyring(t *testing.T) {
	for _, c := range []struct{ name, reason string }{
		{"nothing to start", "no Secret Service (such as gnome-keyring) on the D-Bus session bus"},
		{"gnome-keyring started on demand", "the gnome-keyring on the D-Bus session bus has no keyring (no login keyring was ever made here)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			config := "--session"
			if c.name == "nothing to start" {
				path := filepath.Join(t.TempDir(), "bus.conf")
				os.WriteFile(path, []byte(busConfig), 0o600)
				config = "--config-file=" + path
			} else if _, err := os.Stat("/usr/share/dbus-1/services/org.freedesktop.secrets.service"); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatal("CI must have gnome-keyring installed")
				}
				t.Skip("no Secret Service to start on demand")
			}
			srv := newServer(t, authtest.Options{})
			vars := map[string]string{"DBUS_SESSION_BUS_ADDRESS": startBus(t, home, config), "PRUSA_ACCOUNT_URL": srv.URL}
			if r := execHelper(t, home, vars, "", "get"); r.exit != 4 || !strings.Contains(r.stdout, `"code":"login_required"`) {
				t.Fatalf("get before a login: exit %d, stdout %q, stderr %q; want login_required", r.exit, r.stdout, r.stderr)
			}
			if r := execHelper(t, home, vars, "", "list"); r.exit != 0 || r.stdout != `{"version":1,"success":true,"profiles":[]}`+"\n" {
				t.Fatalf("list: exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
			}
			if r := execHelper(t, home, vars, "", "status", "--json"); r.exit != 4 || r.stdout != `{"profile":"default","store":"file","login_required":true}`+"\n" {
				t.Fatalf("status: exit %d, stdout %q, stderr %q; want the file store named", r.exit, r.stdout, r.stderr)
			}
			set := srv.Mint(userEmail, 0)
			body, _ := json.Marshal(set)
			r := execHelper(t, home, vars, string(body), "store")
			if r.exit != 0 || !strings.Contains(r.stdout, `"store":"file"`) || !strings.Contains(r.stderr, "no keyring available ("+c.reason+")") {
				t.Fatalf("store: exit %d, stdout %q, stderr %q; want the file store, and why", r.exit, r.stdout, r.stderr)
			}
			if r := execHelper(t, home, vars, "", "token"); r.exit != 0 || strings.TrimSpace(r.stdout) != set.AccessToken || r.stderr != "" {
				t.Fatalf("get after store: exit %d, stderr %q", r.exit, r.stderr)
			}
			for _, erased := range []string{"true", "false"} {
				if r := execHelper(t, home, vars, "", "erase"); r.stdout != `{"version":1,"success":true,"profile":"default","erased":`+erased+"}\n" {
					t.Fatalf("erase: %q %q, want erased:%s", r.stdout, r.stderr, erased)
				}
			}
			vars["PRUSA_EMAIL"], vars["PRUSA_PASSWORD"], vars["PRUSA_TOTP_SECRET"] = userEmail, userPassword, userTOTPSecret
			if r := execHelper(t, home, vars, "", "login"); r.exit != 0 || !strings.Contains(r.stderr, "no keyring available ("+c.reason+")") || !strings.Contains(r.stderr, "stored in file") {
				t.Fatalf("login: exit %d, stderr %q; want the file store, and why", r.exit, r.stderr)
			}
		})
	}
}
