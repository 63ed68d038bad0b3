//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallScript: install.sh installs where --prefix says, a relative
// one taken from where it runs (not from the checkout), and --uninstall
// removes what it put there.
func TestInstallScript(t *testing.T) {
	script, err := filepath.Abs("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(script, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("--prefix", "rel", "--no-etcd")
	bin := filepath.Join(dir, "rel", "bin", "prusa-credential-helper")
	if v, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(v), "prusa-credential-helper ") {
		t.Fatalf("the installed helper: %q, %v; install.sh said:\n%s", v, err, out)
	}
	if !strings.Contains(out, filepath.Join(dir, "rel", "bin")) {
		t.Errorf("install.sh does not name where it installed, as an absolute path:\n%s", out)
	}
	if _, err := os.Stat("rel"); err == nil {
		t.Errorf("install.sh made rel/ in the checkout")
	}
	run("--prefix", "rel", "--uninstall")
	// Run through a symlink, it builds the checkout the link points into.
	link := filepath.Join(dir, "install.sh")
	if err := os.Symlink(script, link); err != nil {
		t.Fatal(err)
	}
	script = link
	run("--prefix", "rel", "--no-etcd")
	run("--prefix", "rel", "--uninstall")
	if _, err := os.Stat(bin); !os.IsNotExist(err) {
		t.Errorf("--uninstall left %s (%v)", bin, err)
	}
}
