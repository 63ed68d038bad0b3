package main

// End-to-end: the helper binary with --store etcd://, its companion beside
// it (this test binary, see TestMain), an embedded etcd and the emulator.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// helperBin builds the helper once, with the companion beside it.
func helperBin(t *testing.T) string {
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "etcd-cli-test-")
		if buildErr != nil {
			return
		}
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		out, err := exec.Command(goTool, "build", "-tags", "nethttpomithttp2", "-o", filepath.Join(binDir, "prusa-credential-helper"), "github.com/prusa-credential-helper/prusa-credential-helper").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, string(out)}
			return
		}
		exe, _ := os.Executable()
		buildErr = os.Symlink(exe, filepath.Join(binDir, helper.EtcdCompanion))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "prusa-credential-helper")
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

type cliRun struct {
	code           int
	stdout, stderr string
}

func (r cliRun) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("stdout is not json: %q (stderr %q)", r.stdout, r.stderr)
	}
	return m
}

// host is one machine: its own HOME and config folder.
type cliHost struct {
	t   *testing.T
	bin string
	env []string
}

func newCLIHost(t *testing.T, bin, store, accountURL string) *cliHost {
	home := t.TempDir()
	return &cliHost{t, bin, []string{
		"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PATH=/usr/bin:/bin",
		"PRUSA_CREDENTIAL_STORE=" + store, "PRUSA_ACCOUNT_URL=" + accountURL, companionEnv + "=1",
	}}
}

func (h *cliHost) run(stdin string, args ...string) cliRun {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	return cliRun{code, out.String(), errb.String()}
}

func TestCLI(t *testing.T) {
	bin := helperBin(t)
	c := startCluster(t, 1)
	k := newTokens(t)
	store := "etcd://" + strings.Join(c.endpoints, ",") + "/farm"
	a := newCLIHost(t, bin, store, k.srv.URL)
	b := newCLIHost(t, bin, store, k.srv.URL)

	// Nothing stored: login_required, and list is empty.
	if r := a.run("", "get"); r.code != 4 {
		t.Fatalf("get with nothing stored: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := a.run("", "list"); r.code != 0 || !strings.Contains(r.stdout, `"profiles":[]`) {
		t.Fatalf("list: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// store on host a; host b gets it from etcd.
	set := k.set(helper.MinMargin / 2) // wants a refresh
	data, _ := json.Marshal(set)
	r := a.run(string(data), "store")
	if r.code != 0 || r.json(t)["store"] != "etcd" {
		t.Fatalf("store: %d %s %s", r.code, r.stdout, r.stderr)
	}
	k.srv.ResetCounts()
	r = b.run("", "--format", "token", "get")
	if r.code != 0 || strings.TrimSpace(r.stdout) == set.AccessToken || r.stderr != "" {
		t.Fatalf("get (refresh) on host b: %d %q %q", r.code, r.stdout, r.stderr)
	}
	fresh := strings.TrimSpace(r.stdout)
	if n := k.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	// host a sees b's refresh through etcd, without refreshing.
	r = a.run("", "--format", "token", "get")
	if r.code != 0 || strings.TrimSpace(r.stdout) != fresh {
		t.Fatalf("get on host a: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if n := k.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Errorf("%d refreshes, want still 1", n)
	}
	// The key is the file store's JSON.
	cli := c.client()
	kv, err := cli.Get(ctxFor(t, 5*time.Second), "farm/default")
	if err != nil || len(kv.Kvs) != 1 || !strings.Contains(string(kv.Kvs[0].Value), `"refresh_token"`) {
		t.Fatalf("farm/default: %v %v", kv, err)
	}

	// list and status name the store etcd.
	r = a.run("", "list")
	if r.code != 0 || !strings.Contains(r.stdout, `"store":"etcd"`) || !strings.Contains(r.stdout, `"refresh_expires_at"`) {
		t.Errorf("list: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// etcd down: the cached token still serves; list, status and a get
	// that needs etcd are network_error (75).
	c.stopAll()
	r = a.run("", "--format", "token", "get")
	if r.code != 0 || strings.TrimSpace(r.stdout) != fresh {
		t.Errorf("cached get with etcd down: %d %q %q", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"list"}, {"status"}, {"--timeout", "3s", "get", "--format", "json"}} {
		h := a
		if args[0] == "--timeout" {
			h = newCLIHost(t, bin, store, k.srv.URL) // no cache
		}
		r = h.run(`{"force_refresh": false}`, args...)
		if r.code != 75 {
			t.Errorf("%v with etcd down: exit %d %s %s", args, r.code, r.stdout, r.stderr)
		}
		t.Logf("%v: %s | %s", args, strings.TrimSpace(r.stdout), strings.TrimSpace(r.stderr))
	}
	// A login with etcd down stops before it asks the account server
	// anything: its session could not be saved.
	k.srv.ResetCounts()
	h := newCLIHost(t, bin, store, k.srv.URL)
	h.env = append(h.env, "PRUSA_EMAIL=farm@example.com", "PRUSA_PASSWORD=pw-canary-1", "PRUSA_HELPER_TIMEOUT=3s")
	if r = h.run("", "login"); r.code != 75 || len(k.srv.Requests()) != 0 {
		t.Errorf("login with etcd down: exit %d, %d requests to the account server: %s", r.code, len(k.srv.Requests()), r.stderr)
	}
	if strings.Contains(r.stderr, "pw-canary-1") {
		t.Error("the password reached stderr")
	}
}

func TestCLIMissingCompanion(t *testing.T) {
	bin := helperBin(t)
	dir := t.TempDir()
	lone := filepath.Join(dir, "prusa-credential-helper")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(lone, b, 0o755)
	k := newTokens(t)
	h := newCLIHost(t, lone, "etcd://127.0.0.1:1/farm", k.srv.URL)
	r := h.run("", "get")
	if r.code != 1 || !strings.Contains(r.stderr, helper.EtcdCompanion) || !strings.Contains(r.stdout, "storage_error") {
		t.Errorf("get without the companion: %d %s %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%s | %s", strings.TrimSpace(r.stdout), strings.TrimSpace(r.stderr))
}

// TestCLIStatusSaysKept: status on a host that keeps refreshed tokens etcd
// did not take says so, and how to write them.
func TestCLIStatusSaysKept(t *testing.T) {
	bin := helperBin(t)
	c := startCluster(t, 1)
	k := newTokens(t)
	store := "etcd://" + strings.Join(c.endpoints, ",") + "/farm"
	a := newCLIHost(t, bin, store, k.srv.URL)
	data, _ := json.Marshal(k.set(2 * time.Hour))
	if r := a.run(string(data), "store"); r.code != 0 {
		t.Fatalf("store: %d %s", r.code, r.stderr)
	}
	if r := a.run("", "status"); r.code != 0 || strings.Contains(r.stderr, "kept on this host") {
		t.Fatalf("status with nothing kept: %d %q", r.code, r.stderr)
	}
	var config string
	for _, e := range a.env {
		if v, ok := strings.CutPrefix(e, "XDG_CONFIG_HOME="); ok {
			config = v
		}
	}
	cache := helper.EtcdCacheDir(filepath.Join(config, "prusa-credential-helper"), c.endpoints, "farm")
	if err := os.WriteFile(filepath.Join(cache, ".rescue-default.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := a.run("", "status")
	if r.code != 0 || !strings.Contains(r.stderr, "kept on this host") || !strings.Contains(r.stderr, "run: prusa-credential-helper refresh") {
		t.Fatalf("status with a kept set: %d %q", r.code, r.stderr)
	}
}
