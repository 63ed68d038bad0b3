package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// unreachableBus is a session bus address where nothing answers: the
// keyring is tried and cannot be reached.
func unreachableBus(t *testing.T) map[string]string {
	return map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=" + filepath.Join(t.TempDir(), "no-bus")}
}

// TestUnreachableKeyringCommands (issue 11.4, 11.16) through the binary: in
// auto mode, with the keyring index naming the profile and no keyring to
// answer, get, status, list and erase are storage errors (exit 1), never
// "no stored credentials", an empty list or erased:false.
func TestUnreachableKeyringCommands(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".config", prog)
	os.MkdirAll(dir, 0o700)
	if err := os.WriteFile(filepath.Join(dir, ".keyring-profiles"), []byte("default\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := unreachableBus(t)
	for _, args := range [][]string{{"get"}, {"list"}, {"erase"}, {"status", "--json"}, {"logout"}} {
		r := execHelper(t, home, vars, "", args...)
		if r.exit != 1 || !strings.Contains(r.stderr, "keyring") {
			t.Errorf("%v: exit %d, stderr %q; want 1 and the keyring named", args, r.exit, r.stderr)
		}
		// The bus named by DBUS_SESSION_BUS_ADDRESS is gone (as after a
		// re-login in an old tmux): said so, and not "unlock the keyring".
		if !strings.Contains(r.stderr, "the D-Bus session bus does not answer") || !strings.Contains(r.stderr, "hint: DBUS_SESSION_BUS_ADDRESS names a bus that is gone") || strings.Contains(r.stderr, "unlock") {
			t.Errorf("%v: stderr %q; want the dead bus named, with its hint", args, r.stderr)
		}
		if args[0] == "get" || args[0] == "list" || args[0] == "erase" {
			var doc errorDoc
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Code != "storage_error" {
				t.Errorf("%v: stdout %q, want a storage_error document", args, r.stdout)
			}
		}
	}
	// --store keyring with an empty index: list is still a storage error.
	os.Remove(filepath.Join(dir, ".keyring-profiles"))
	if r := execHelper(t, home, vars, "", "list", "--store", "keyring"); r.exit != 1 || !strings.Contains(r.stdout, "storage_error") {
		t.Errorf("list --store keyring: exit %d, stdout %q", r.exit, r.stdout)
	}
}

// TestEraseKeyringModeClearsTheFile: erase where no keyring can be
// reached removes the file store's copy, whatever --store says (erase
// clears every store it may be in), and answers the same for every
// --store: done, where no keyring may hold the profile (no index names
// it); else a storage error that says the file copy is gone.
func TestEraseKeyringModeClearsTheFile(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	index := filepath.Join(home, ".config", "prusa-credential-helper", ".keyring-profiles")
	for _, vars := range []map[string]string{nil, unreachableBus(t)} {
		for _, indexed := range []bool{false, true} {
			for _, store := range []string{"keyring", "auto", "file"} {
				storeIn(t, filepath.Join(home, ".config"), "default", srv.Mint(userEmail, 0))
				os.Remove(index)
				if indexed {
					os.WriteFile(index, []byte("default\n"), 0o600)
				}
				r := execHelper(t, home, vars, "", "erase", "--store", store)
				switch {
				case indexed && (r.exit != 1 || !strings.Contains(r.stderr, "removed it from the file store, but the keyring")):
					t.Errorf("bus %v, indexed, --store %s: exit %d, stderr %q; want a storage error that says the file copy is gone", vars, store, r.exit, r.stderr)
				case !indexed && (r.exit != 0 || !strings.Contains(r.stdout, `"erased":true`)):
					t.Errorf("bus %v, not indexed, --store %s: exit %d, stdout %q, stderr %q; want it erased", vars, store, r.exit, r.stdout, r.stderr)
				}
				if _, err := os.Stat(tokenFile(home, "default")); !os.IsNotExist(err) {
					t.Errorf("bus %v, --store %s: the file copy is still there: %v", vars, store, err)
				}
			}
		}
	}
}

// TestLoginChecksKeyringFirst (issue 11.5): login --store keyring with no
// keyring to take the set fails before it asks or sends anything.
func TestLoginChecksKeyringFirst(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	vars := unreachableBus(t)
	vars["PRUSA_ACCOUNT_URL"] = srv.URL
	vars["PRUSA_EMAIL"] = userEmail
	vars["PRUSA_PASSWORD"] = userPassword
	vars["PRUSA_TOTP_SECRET"] = userTOTPSecret
	r := execHelper(t, home, vars, "", "login", "--store", "keyring")
	if r.exit != 1 || !strings.Contains(r.stderr, "keyring will not take") {
		t.Fatalf("exit %d, stderr %q", r.exit, r.stderr)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests to the account server before the keyring check", n)
	}
}

// TestStatusWarnings (issues 11.12 and 12.4): status says on stderr when an
// environment token shadows the store, and when the refresh token expires
// within 7 days.
func TestStatusWarnings(t *testing.T) {
	home := t.TempDir()
	now := time.Now()
	set := canarySet(now.Add(time.Hour), now.Add(3*24*time.Hour))
	storeIn(t, filepath.Join(home, ".config"), "default", set)
	r := execHelper(t, home, nil, "", "status")
	if r.exit != 0 || !strings.Contains(r.stderr, "refresh token of profile \"default\" expires in") {
		t.Errorf("refresh expiring: exit %d, stderr %q", r.exit, r.stderr)
	}
	assertNoTokens(t, "stderr", r.stderr, setTokens(set)...)
	spent := canarySet(now.Add(time.Hour), now.Add(-time.Minute)) // the access token outlives it
	storeIn(t, filepath.Join(home, ".config"), "default", spent)
	if r := execHelper(t, home, nil, "", "status"); r.exit != 0 || !strings.Contains(r.stderr, "refresh token of profile \"default\" has expired: the access token serves until") {
		t.Errorf("refresh expired, access valid: exit %d, stderr %q", r.exit, r.stderr)
	}
	storeIn(t, filepath.Join(home, ".config"), "default", set)
	env := map[string]string{"PRUSA_TOKEN": set["access_token"].(string)}
	r = execHelper(t, home, env, "", "status")
	if r.exit != 0 || !strings.Contains(r.stderr, "PRUSA_TOKEN is set and is used instead of the stored credentials") {
		t.Errorf("PRUSA_TOKEN shadowing: exit %d, stderr %q", r.exit, r.stderr)
	}
	assertNoTokens(t, "stderr", r.stderr, setTokens(set)...)
	fresh := canarySet(now.Add(time.Hour), now.Add(30*24*time.Hour))
	storeIn(t, filepath.Join(home, ".config"), "default", fresh)
	if r := execHelper(t, home, nil, "", "status"); r.exit != 0 || r.stderr != "" {
		t.Errorf("nothing to warn about: exit %d, stderr %q", r.exit, r.stderr)
	}
}

// TestExpiredEnvTokenSaysUnset (issue 11.12): the hint of an expired
// PRUSA_TOKEN says to unset it.
func TestExpiredEnvTokenSaysUnset(t *testing.T) {
	set := canarySet(time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	r := execHelper(t, t.TempDir(), map[string]string{"PRUSA_TOKEN": set["access_token"].(string)}, "", "get")
	if r.exit != 4 || !strings.Contains(r.stderr, "PRUSA_TOKEN has expired and cannot be refreshed") ||
		!strings.Contains(r.stderr, "hint: unset PRUSA_TOKEN, then, if a login is still needed, run: prusa-credential-helper login") {
		t.Fatalf("exit %d, stderr %q", r.exit, r.stderr)
	}
}

// TestTokenFileEraseAndList (issue 11.8): with --token-file, list shows that
// file and erase removes it alone, not the store directory's profile.
func TestTokenFileEraseAndList(t *testing.T) {
	home := t.TempDir()
	now := time.Now()
	stored := storeIn(t, filepath.Join(home, ".config"), "default", canarySet(now.Add(time.Hour), now.Add(48*time.Hour)))
	file := filepath.Join(t.TempDir(), "prusa_tokens.json")
	b, _ := json.Marshal(canarySet(now.Add(time.Hour), now.Add(48*time.Hour)))
	os.WriteFile(file, b, 0o600)
	r := execHelper(t, home, nil, "", "list", "--token-file", file)
	if r.exit != 0 || strings.Count(r.stdout, `"profile":`) != 1 || !strings.Contains(r.stdout, `"store":"file"`) {
		t.Fatalf("list: exit %d, stdout %q", r.exit, r.stdout)
	}
	r = execHelper(t, home, nil, "", "erase", "--token-file", file)
	if r.exit != 0 || !strings.Contains(r.stdout, `"erased":true`) {
		t.Fatalf("erase: exit %d, stdout %q", r.exit, r.stdout)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatal("the token file is still there")
	}
	if got, _ := os.ReadFile(tokenFile(home, "default")); string(got) != string(stored) {
		t.Fatal("erase with --token-file touched the store directory")
	}
}

// TestUnreadableTokenFileIsNotAbsent: a <profile>.json that is a symlink
// or a directory is a profile that cannot be read, as get says: list,
// status and refresh --all say so too (storage_error), rather than see
// nothing stored.
func TestUnreadableTokenFileIsNotAbsent(t *testing.T) {
	for _, kind := range []string{"symlink", "directory"} {
		t.Run(kind, func(t *testing.T) {
			config := t.TempDir()
			dir := filepath.Join(config, prog)
			os.MkdirAll(dir, 0o700)
			path := filepath.Join(dir, "default.json")
			var err error
			if kind == "symlink" {
				err = os.Symlink(filepath.Join(dir, "elsewhere.json"), path)
			} else {
				err = os.Mkdir(path, 0o700)
			}
			if err != nil {
				t.Fatal(err)
			}
			p := newInProcess(config, map[string]string{"PRUSA_CREDENTIAL_STORE": "file"}, time.Now, nil)
			for _, args := range [][]string{{"get"}, {"status"}, {"list"}, {"refresh", "--all"}} {
				if exit := p.run("", args...); exit != 1 || strings.Contains(p.stderr.String(), "no stored") || strings.Contains(p.stdout.String(), `"profiles":[]`) {
					t.Errorf("%v: exit %d stdout %q stderr %q; want storage_error (exit 1)", args, exit, p.stdout.String(), p.stderr.String())
				}
			}
		})
	}
}

// TestCorruptFileWarningAndError: a get that finds a corrupt file says so
// in a warning and then gives its error in one line, hint included, so
// stderr holds two lines; the JSON message is the usual one.
func TestCorruptFileWarningAndError(t *testing.T) {
	config := t.TempDir()
	dir := filepath.Join(config, prog)
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "default.json"), []byte(`{"access_token": "CANARY-not-a-jwt"}`), 0o600)
	p := newInProcess(config, map[string]string{"PRUSA_CREDENTIAL_STORE": "file"}, time.Now, nil)
	exit := p.run("", "get")
	lines := strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n")
	want := prog + `: no stored credentials for profile "default"; run: ` + prog + " login"
	if exit != 4 || len(lines) != 2 || !strings.Contains(lines[0], "warning: ") || !strings.Contains(lines[0], "moved it to default.json.corrupt-") || lines[1] != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 4, the warning, then %q", exit, p.stderr.String(), want)
	}
	if strings.Contains(p.stderr.String(), "CANARY") || !strings.Contains(p.stdout.String(), `"message":"no stored credentials for profile \"default\"; run: prusa-credential-helper login"`) {
		t.Fatalf("stdout %s", p.stdout.String())
	}
	// The next get, with nothing to warn of, gives its hint on a line of
	// its own again.
	if exit := p.run("", "get"); exit != 4 || !strings.Contains(p.stderr.String(), "\nhint: run: ") {
		t.Fatalf("exit %d, stderr %q", exit, p.stderr.String())
	}
}

// TestEtcdAuthHint: etcd's refusal of the user says what to set, or what
// to check when a user is set.
func TestEtcdAuthHint(t *testing.T) {
	refused := fmt.Errorf("etcd at 127.0.0.1:2379 refused: etcdserver: user name is empty: %w", helper.ErrEtcdAuth)
	c := newCLI(t, map[string]string{}, noTerminal{t}, "--store", "etcd://127.0.0.1:2379/farm", "get")
	if pe := c.classify(refused); pe.Code != protocol.StorageError || !strings.Contains(pe.Hint, "set PRUSA_ETCD_USER") {
		t.Errorf("no user: %s, hint %q", pe.Code, pe.Hint)
	}
	c = newCLI(t, map[string]string{"PRUSA_ETCD_USER": "farm:CANARY-pw"}, noTerminal{t}, "--store", "etcd://127.0.0.1:2379/farm", "get")
	if pe := c.classify(refused); pe.Code != protocol.StorageError || !strings.Contains(pe.Hint, "readwrite on the prefix farm/") || strings.Contains(pe.Hint, "CANARY") {
		t.Errorf("a user: %s, hint %q", pe.Code, pe.Hint)
	}
}

// TestRoughDuration: days and hours above two days, so that 6 days less a
// minute does not read as 5 days.
func TestRoughDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		6*24*time.Hour - time.Minute: "5 days 23h",
		30 * 24 * time.Hour:          "30 days",
		48 * time.Hour:               "2 days",
		90 * time.Minute:             "1h30m",
		90 * time.Second:             "1m30s",
	} {
		if got := roughDuration(d); got != want {
			t.Errorf("roughDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestStoreNames(t *testing.T) {
	for _, tt := range []struct {
		stores []string
		want   string
	}{
		{[]string{"file"}, "the file store"},
		{[]string{"keyring"}, "the keyring"},
		{[]string{"etcd", "file"}, "etcd and the file store"},
		{[]string{"etcd", "file", "keyring"}, "etcd, the file store and the keyring"},
	} {
		if got := helper.StoreNames(tt.stores); got != tt.want {
			t.Errorf("StoreNames(%q) = %q, want %q", tt.stores, got, tt.want)
		}
	}
}

// TestTOTPWaitHint: a refused code whose next step begins after --timeout
// is still an invalid TOTP code, whose hint names the wait and --timeout
// before the secret.
func TestTOTPWaitHint(t *testing.T) {
	c := newCLI(t, map[string]string{"PRUSA_TOTP_SECRET": "JBSWY3DPEHPK3PXP"}, noTerminal{t}, "--timeout", "5s", "login")
	pe := c.classify(fmt.Errorf("login: %w", &auth.TOTPWaitError{Wait: 17 * time.Second}))
	if pe.Code != protocol.LoginRequired || pe.Message != "invalid TOTP code" || !strings.HasPrefix(pe.Hint, "check PRUSA_TOTP_SECRET, or give more time with --timeout: the next code, for when another login used this one, comes in 17s, after the time --timeout 5s left") {
		t.Errorf("%s %q, hint %q", pe.Code, pe.Message, pe.Hint)
	}
	if pe := c.classify(fmt.Errorf("login: %w", auth.ErrInvalidTOTP)); !strings.HasPrefix(pe.Hint, "check PRUSA_TOTP_SECRET") {
		t.Errorf("a code refused twice: hint %q", pe.Hint)
	}
}

// TestInterruptedEtcdEraseSaysRunItAgain: an erase of an etcd store cut
// short may be done in part (the companion carries out a delete it has
// read): its message says to run it again.
func TestInterruptedEtcdEraseSaysRunItAgain(t *testing.T) {
	for _, command := range []string{"erase", "logout"} {
		c := newCLI(t, map[string]string{}, noTerminal{t}, "--store", "etcd://127.0.0.1:2379/farm", command)
		var stderr strings.Builder
		c.stderr = &stderr
		if exit := c.report(context.Canceled, true); exit != ExitInterrupted || !strings.Contains(stderr.String(), "hint: etcd may have removed it already: run "+command+" again to finish") {
			t.Errorf("%s interrupted: exit %d, stderr %q", command, exit, stderr.String())
		}
	}
	c := newCLI(t, map[string]string{}, noTerminal{t}, "--store", "file", "erase")
	var stderr strings.Builder
	c.stderr = &stderr
	if c.report(context.Canceled, true); strings.Contains(stderr.String(), "hint:") {
		t.Errorf("a file-store erase interrupted: %q", stderr.String())
	}
}

// TestLogoutTokenFileNamesIt: a logout of a --token-file names the file,
// not "the file store".
func TestLogoutTokenFileNamesIt(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens.json")
	set, _ := json.Marshal(canarySet(time.Now().Add(2*time.Hour), time.Now().Add(720*time.Hour)))
	os.WriteFile(file, set, 0o600)
	p := newInProcess(dir, map[string]string{}, time.Now, noTerminal{t})
	if exit := p.run("", "logout", "--token-file", file); exit != 0 || p.stderr.String() != "Logged out: removed the tokens of profile \"default\" from "+file+"\n" {
		t.Fatalf("exit %d, stderr %q", exit, p.stderr.String())
	}
}

// TestPermissionHint: a store the user may not read or write says what to
// check.
func TestPermissionHint(t *testing.T) {
	c := newCLI(t, map[string]string{}, noTerminal{t}, "--store", "file", "get")
	pe := c.classify(fmt.Errorf("%w: read /home/u/.config/prusa-credential-helper/default.json: %w", helper.ErrStorage, syscall.EACCES))
	if pe.Code != protocol.StorageError || !strings.HasPrefix(pe.Hint, "check that this user may read and write") {
		t.Errorf("%s, hint %q", pe.Code, pe.Hint)
	}
	if pe := c.classify(fmt.Errorf("%w: disk full", helper.ErrStorage)); pe.Hint != "" {
		t.Errorf("another storage error: hint %q", pe.Hint)
	}
}

// TestEraseTokenFileInNoFolder: an erase of a --token-file whose folder
// does not exist erases nothing, and makes no folder.
func TestEraseTokenFileInNoFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nope", "tokens.json")
	p := newInProcess(dir, map[string]string{}, time.Now, noTerminal{t})
	if exit := p.run("", "erase", "--token-file", file); exit != 0 || !strings.Contains(p.stdout.String(), `"erased":false`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", exit, p.stdout.String(), p.stderr.String())
	}
	if _, err := os.Stat(filepath.Dir(file)); !os.IsNotExist(err) {
		t.Errorf("erase made %s (%v)", filepath.Dir(file), err)
	}
}

// TestHTTPSToAPlainServerSaysSo: an https:// account URL whose server
// answers without TLS (the emulator, or anything not TLS) is a network
// error whose hint says so, not "try again later".
func TestHTTPSToAPlainServerSaysSo(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{})
	defer srv.Close()
	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	go func() {
		for {
			conn, err := garbage.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			conn.Close()
		}
	}()
	for name, url := range map[string]string{
		"the emulator":  strings.Replace(srv.URL, "http://", "https://", 1),
		"not even HTTP": "https://" + garbage.Addr().String(),
	} {
		t.Run(name, func(t *testing.T) {
			p := newInProcess(t.TempDir(), map[string]string{"PRUSA_ACCOUNT_URL": url, "PRUSA_PASSWORD": "CANARY-pw"}, time.Now, noTerminal{t})
			exit := p.run("", "login", "--store", "file", "--email", "a@example.com")
			lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
			if exit != protocol.ExitTempFail || len(lines) != 2 || lines[1] != "hint: the server at the account URL does not speak https: a test server on this machine (such as the emulator) takes http://" {
				t.Fatalf("exit %d, stderr %q", exit, p.stderr.String())
			}
		})
	}
	// Another host is no test server: http:// is not for it.
	c := newCLI(t, map[string]string{"PRUSA_ACCOUNT_URL": "https://account.example.com"}, noTerminal{t}, "--store", "file", "get")
	pe := c.classify(fmt.Errorf("%w: POST account.example.com: %w", auth.ErrNetwork, tls.RecordHeaderError{Msg: "tls: first record does not look like a TLS handshake"}))
	if pe.Code != protocol.NetworkError || pe.Hint != "the server at the account URL does not speak https: check --account-url" {
		t.Errorf("another host: %s, hint %q", pe.Code, pe.Hint)
	}
}
