package main

import (
	"encoding/base32"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

const (
	userEmail    = "canary@example.com"
	userPassword = "CANARY-pw-cli-93bd"
)

var userTOTPSecret = base32.StdEncoding.EncodeToString([]byte("CANARY-cli-totp-seed"))

func newServer(t *testing.T, opts authtest.Options) *authtest.Server {
	t.Helper()
	opts.Users = append(opts.Users,
		authtest.User{Email: userEmail, Password: userPassword, TOTPSecret: userTOTPSecret},
		authtest.User{Email: "plain@example.com", Password: userPassword})
	srv := authtest.NewServer(opts)
	t.Cleanup(srv.Close)
	return srv
}

// tokenFile is where the file store keeps home's default profile.
func tokenFile(home, profile string) string {
	return filepath.Join(home, ".config", prog, profile+".json")
}

func writeSet(t *testing.T, home, profile string, set auth.TokenSet) []byte {
	t.Helper()
	return storeIn(t, filepath.Join(home, ".config"), profile, set)
}

type errorDoc struct {
	Version   int    `json:"version"`
	Success   bool   `json:"success"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// TestErrorTable produces every row of the error table (exit codes) through the
// real binary: its code, exit code and JSON; the store left as it was; and
// no token on stderr.
func TestErrorTable(t *testing.T) {
	tests := []struct {
		name      string
		code      string
		exit      int
		retryable bool
		msg       string // a part of the message
		args      []string
		setup     func(t *testing.T, srv *authtest.Server, home string, vars map[string]string)
	}{
		{name: "invalid_request", code: "invalid_request", exit: 2, msg: "bad profile", args: []string{"get", "--profile", "../../etc/passwd"}},
		{name: "login_required", code: "login_required", exit: 4, msg: "no stored credentials", args: []string{"get"},
			setup: func(t *testing.T, srv *authtest.Server, home string, vars map[string]string) {}},
		{name: "login_required after invalid_grant", code: "login_required", exit: 4, msg: "refused", args: []string{"get"},
			setup: func(t *testing.T, srv *authtest.Server, home string, vars map[string]string) {
				srv.RevokeAll(userEmail)
			}},
		{name: "network_error", code: "network_error", exit: 75, retryable: true, msg: "cannot reach the account server", args: []string{"get"},
			setup: func(t *testing.T, srv *authtest.Server, home string, vars map[string]string) { srv.Close() }},
		{name: "timeout (slow server)", code: "timeout", exit: 75, retryable: true, msg: "timed out after 500ms", args: []string{"get", "--timeout", "500ms"},
			setup: func(t *testing.T, srv *authtest.Server, home string, vars map[string]string) {
				srv.FailToken(authtest.Fault{Hang: true})
			}},
		{name: "timeout (lock held)", code: "timeout", exit: 75, retryable: true, msg: "waiting for another process", args: []string{"get", "--timeout", "300ms"},
			setup: func(t *testing.T, srv *authtest.Server, home string, vars map[string]string) {
				l := flock.New(filepath.Join(home, ".config", prog, "default.lock"))
				if err := l.Lock(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Unlock() })
			}},
		{name: "server_error", code: "server_error", exit: 75, retryable: true, msg: "500", args: []string{"get"},
			setup: func(t *testing.T, srv *authtest.Server, home string, vars map[string]string) {
				srv.FailToken(authtest.Fault{Status: 500, Body: "CANARY-server-body"})
			}},
		{name: "storage_error", code: "storage_error", exit: 1, msg: "is a directory", args: []string{"get"},
			setup: func(t *testing.T, srv *authtest.Server, home string, vars map[string]string) {
				dir := filepath.Join(home, "a-directory")
				os.MkdirAll(dir, 0o700)
				vars["PRUSA_TOKEN_FILE"] = dir
			}},
		{name: "internal", code: "internal", exit: 1, msg: "invalid_client", args: []string{"get"},
			setup: func(t *testing.T, srv *authtest.Server, home string, vars map[string]string) {
				srv.FailToken(authtest.Fault{Status: 401, Body: `{"error": "invalid_client"}`})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, authtest.Options{})
			home := t.TempDir()
			vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}
			var stored []byte
			var set auth.TokenSet
			if tt.setup != nil && tt.code != "login_required" || tt.name == "login_required after invalid_grant" {
				set = srv.Mint(userEmail, -time.Minute)
				stored = writeSet(t, home, "default", set)
			}
			if tt.setup != nil {
				tt.setup(t, srv, home, vars)
			}
			r := execHelper(t, home, vars, "", tt.args...)
			if r.exit != tt.exit {
				t.Fatalf("exit %d, want %d; stderr %q", r.exit, tt.exit, r.stderr)
			}
			var doc errorDoc
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("stdout is not one JSON document: %q", r.stdout)
			}
			if doc.Version != 1 || doc.Success || doc.Code != tt.code || doc.Retryable != tt.retryable || !strings.Contains(doc.Message, tt.msg) {
				t.Fatalf("document %+v, want code %s retryable %v message with %q", doc, tt.code, tt.retryable, tt.msg)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) > 2 || !strings.HasPrefix(lines[0], prog+": ") || (len(lines) == 2 && !strings.HasPrefix(lines[1], "hint: ")) {
				t.Fatalf("stderr is not one line and a hint: %q", r.stderr)
			}
			assertNoTokens(t, "stderr", r.stderr, set.AccessToken, set.RefreshToken, set.IDToken)
			if strings.Contains(r.stderr+r.stdout, "CANARY") {
				t.Fatal("a raw server body or a password leaked")
			}
			if stored != nil && vars["PRUSA_TOKEN_FILE"] == "" {
				now, _ := os.ReadFile(tokenFile(home, "default"))
				if string(now) != string(stored) {
					t.Fatal("the store changed")
				}
			}
		})
	}
}

// TestLoginThenGet logs in through the binary with every input source and
// uses the result.
func TestLoginThenGet(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	base := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// Email from the environment, password from stdin, code from the secret.
	r := execHelper(t, home, with(map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_TOTP_SECRET": userTOTPSecret}), userPassword+"\n", "login", "--password-stdin")
	if r.exit != 0 || r.stdout != "" || !strings.HasSuffix(r.stderr, "\nLogged in as canary@example.com (profile default, stored in file)\n") ||
		!strings.HasPrefix(r.stderr, prog+": note: no keyring available (no D-Bus session bus); stored in the file store ") {
		t.Fatalf("login: exit %d stdout %q stderr %q", r.exit, r.stdout, r.stderr)
	}
	if m := fileMode(t, tokenFile(home, "default")); m != 0o600 {
		t.Fatalf("token file mode %o", m)
	}
	r = execHelper(t, home, base, "", "get", "--format", "header")
	tok := strings.TrimPrefix(strings.TrimSpace(r.stdout), "Authorization: Bearer ")
	if r.exit != 0 || !srv.ValidAccessToken(tok) {
		t.Fatalf("get after login: exit %d %q", r.exit, r.stderr)
	}
	// The token works against the account's API.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/me/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/v1/me/ refused the token: %v", err)
	}
	r = execHelper(t, home, base, "", "status", "--json")
	if r.exit != 0 || !strings.Contains(r.stdout, `"email":"canary@example.com"`) || !strings.Contains(r.stdout, `"login_required":false`) {
		t.Fatalf("status: %d %s", r.exit, r.stdout)
	}
	// A second login within the same 30 s: the server refuses the used
	// time step, and the secret's next step gets through.
	r = execHelper(t, home, with(map[string]string{"PRUSA_TOTP_SECRET": userTOTPSecret, "PRUSA_PASSWORD": userPassword}), "", "login", "--email", userEmail, "--profile", "second")
	if r.exit != 0 {
		t.Fatalf("second login: %d %q", r.exit, r.stderr)
	}
	// An account without 2FA, the code from PRUSA_TOTP_CODE never asked.
	r = execHelper(t, home, with(map[string]string{"PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_CODE": "123456"}), "", "login", "--profile", "plain")
	if r.exit != 0 || !strings.Contains(r.stderr, "Logged in as plain@example.com (profile plain") {
		t.Fatalf("plain login: %d %q", r.exit, r.stderr)
	}
	r = execHelper(t, home, base, "", "list")
	for _, p := range []string{`"profile":"default"`, `"profile":"plain"`, `"profile":"second"`} {
		if !strings.Contains(r.stdout, p) {
			t.Fatalf("list lacks %s: %s", p, r.stdout)
		}
	}
	r = execHelper(t, home, base, "", "logout", "--profile", "plain")
	if r.exit != 0 {
		t.Fatalf("logout: %q", r.stderr)
	}
	r = execHelper(t, home, base, "", "status", "--profile", "plain")
	if r.exit != 4 {
		t.Fatalf("status after logout: exit %d", r.exit)
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestLoginFailures(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	tests := []struct {
		name  string
		vars  map[string]string
		stdin string
		args  []string
		exit  int
		msg   string
	}{
		{"wrong password", map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": "CANARY-wrong", "PRUSA_TOTP_CODE": "000000"}, "", nil, 4, "invalid email or password"},
		{"wrong TOTP code", map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_CODE": "000000"}, "", nil, 4, "invalid TOTP code\nhint: a code works once and changes every 30 s: set PRUSA_TOTP_CODE to a fresh one"},
		// No time to wait for the next step: the hint names the secret, and
		// the logins that share an account's codes.
		{"wrong TOTP secret", map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": "JBSWY3DPEHPK3PXP"}, "", []string{"--timeout", "1s"}, 4, "invalid TOTP code\nhint: check PRUSA_TOTP_SECRET"}, // with or without the wait: 1 s left may cover it
		{"no email, no terminal", map[string]string{"PRUSA_PASSWORD": userPassword}, "", nil, 2, "no email given and no terminal"},
		{"no password, no terminal", map[string]string{"PRUSA_EMAIL": userEmail}, "", nil, 2, "no password given and no terminal"},
		{"2FA and no code, no terminal", map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword}, "", nil, 2, "no TOTP code given and no terminal"},
		{"empty password on stdin", map[string]string{"PRUSA_EMAIL": userEmail}, "\n", []string{"--password-stdin"}, 2, "stdin holds no password"},
		{"bad TOTP secret", map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": "not base32!"}, "", nil, 2, "PRUSA_TOTP_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			tt.vars["PRUSA_ACCOUNT_URL"] = srv.URL
			srv.ResetCounts()
			r := execHelper(t, home, tt.vars, tt.stdin, append([]string{"login"}, tt.args...)...)
			if r.exit != tt.exit || !strings.Contains(r.stderr, tt.msg) || r.stdout != "" {
				t.Fatalf("exit %d stdout %q stderr %q; want exit %d and %q", r.exit, r.stdout, r.stderr, tt.exit, tt.msg)
			}
			if strings.Contains(r.stderr, "CANARY") || strings.Contains(r.stderr, "000000") {
				t.Fatal("stderr holds a password or code")
			}
			if _, err := os.Stat(tokenFile(home, "default")); err == nil {
				t.Fatal("a failed login stored something")
			}
			if tt.name == "wrong TOTP code" && srv.Count(authtest.KindTOTPPost) != 1 {
				t.Fatalf("a PRUSA_TOTP_CODE was posted %d times, want once", srv.Count(authtest.KindTOTPPost))
			}
		})
	}
}

// TestDebugRedacts refreshes with --debug: diagnostics appear, tokens and
// passwords do not.
func TestDebugRedacts(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	old := srv.Mint(userEmail, -time.Minute)
	writeSet(t, home, "default", old)
	r := execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, "", "get", "--debug", "--format", "token")
	if r.exit != 0 || !strings.Contains(r.stderr, "debug: refreshing jwt(sub=1530681") {
		t.Fatalf("exit %d stderr %q", r.exit, r.stderr)
	}
	fresh := strings.TrimSpace(r.stdout)
	assertNoTokens(t, "debug stderr", r.stderr, old.AccessToken, old.RefreshToken, old.IDToken, fresh)
	stored, _ := os.ReadFile(tokenFile(home, "default"))
	var set auth.TokenSet
	json.Unmarshal(stored, &set)
	assertNoTokens(t, "debug stderr", r.stderr, set.RefreshToken)

	r = execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword, "PRUSA_HELPER_DEBUG": "1"}, "", "login", "--profile", "dbg")
	if r.exit != 0 || !strings.Contains(r.stderr, "debug: ") || strings.Contains(r.stderr, userPassword) || strings.Contains(r.stderr, "csrf") {
		t.Fatalf("login --debug: exit %d stderr %q", r.exit, r.stderr)
	}
	// PRUSA_HELPER_DEBUG reads as PRUSA_AUTO_LOGIN does: true is on.
	r = execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_HELPER_DEBUG": "True"}, "", "get", "--profile", "dbg", "--format", "token")
	if r.exit != 0 || !strings.Contains(r.stderr, "debug: ") {
		t.Fatalf("PRUSA_HELPER_DEBUG=True: exit %d stderr %q", r.exit, r.stderr)
	}
}

// TestClosedStdin: a caller that starts get with stdin closed gets its
// token, as with an empty request (the Go runtime opens /dev/null on a
// closed fd 0; this keeps it so).
func TestClosedStdin(t *testing.T) {
	home := t.TempDir()
	srv := newServer(t, authtest.Options{})
	set := srv.Mint(userEmail, 0)
	writeSet(t, home, "default", set)
	cmd := exec.Command("sh", "-c", `exec "$0" token <&-`, binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != set.AccessToken {
		t.Fatalf("get with stdin closed: %v", err)
	}
}

// TestAuthtestNotInBinary: the emulator is for tests only.
func TestAuthtestNotInBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "authtest") {
		t.Fatal("the helper binary depends on auth/authtest")
	}
	for _, pkg := range []string{"/auth\n", "/helper\n", "/protocol\n"} {
		if !strings.Contains(string(out), pkg) {
			t.Fatalf("go list -deps lacks %s", strings.TrimSpace(pkg))
		}
	}
	out, _ = exec.Command("go", "list", "-deps", "./protocol").Output()
	for _, bad := range []string{"net/http\n", "zalando", "/helper\n"} {
		if strings.Contains(string(out), bad) {
			t.Fatalf("protocol depends on %s", strings.TrimSpace(bad))
		}
	}
}

// TestShippedBinaryLeavesOut: the helper as install.sh builds it links
// neither the etcd client (the companion's) nor regexp nor net/http's
// bundled HTTP/2: each would cost every start its load (README.md, Speed).
// If a Go release drops the nethttpomithttp2 tag, this says so.
func TestShippedBinaryLeavesOut(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "nethttpomithttp2", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"go.etcd.io/", "google.golang.org/grpc", "regexp\n", "/http2/hpack\n", "/authtest"} {
		if strings.Contains(string(out), pkg) {
			t.Errorf("the shipped helper links %s", strings.TrimSpace(pkg))
		}
	}
	if b, err := os.ReadFile("install.sh"); err != nil || !strings.Contains(string(b), "-tags nethttpomithttp2") {
		t.Errorf("install.sh does not build with -tags nethttpomithttp2 (%v)", err)
	}
}

// TestBenchLinksHelpersLibraries: scripts/bench's "linked" and "minget"
// floors link every package the helper links but its own, so that the
// bench's first ratio measures the helper's work, not its libraries'
// start-up.
func TestBenchLinksHelpersLibraries(t *testing.T) {
	deps := func(pkg string) map[string]bool {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, p := range strings.Fields(string(out)) {
			m[p] = true
		}
		return m
	}
	helper := deps(".")
	for _, ref := range []string{"linked", "minget"} {
		linked := deps("./scripts/bench/" + ref)
		for p := range helper {
			if !linked[p] && !strings.HasPrefix(p, "github.com/prusa-credential-helper/prusa-credential-helper") {
				t.Errorf("scripts/bench/%s does not link %s, which the helper links", ref, p)
			}
		}
	}
}

// needSecretService skips a test that needs the private Secret Service
// scripts/with-keyring.sh starts (it sets PRUSA_TEST_SECRET_SERVICE=1);
// under CI, where one must be there, it fails instead.
func needSecretService(t *testing.T) {
	t.Helper()
	if os.Getenv("PRUSA_TEST_SECRET_SERVICE") == "1" && os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI must run the keyring tests against a real Secret Service (scripts/with-keyring.sh)")
	}
	t.Skip("no private Secret Service: run through scripts/with-keyring.sh")
}

// TestKeyringThroughBinary stores, gets, lists and erases through the real
// binary and a real Secret Service (scripts/with-keyring.sh starts one).
func TestKeyringThroughBinary(t *testing.T) {
	needSecretService(t)
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "DBUS_SESSION_BUS_ADDRESS": os.Getenv("DBUS_SESSION_BUS_ADDRESS"), "PRUSA_PROFILE": "cli-keyring"}
	set := srv.Mint(userEmail, -time.Minute)
	body, _ := json.Marshal(set)
	r := execHelper(t, home, vars, string(body), "store")
	if r.exit != 0 || r.stdout != `{"version":1,"success":true,"profile":"cli-keyring","store":"keyring"}`+"\n" || r.stderr != "" {
		t.Fatalf("store under auto with a keyring: %d %q %q", r.exit, r.stdout, r.stderr)
	}
	t.Cleanup(func() { execHelper(t, home, vars, "", "erase") })
	if out, err := exec.Command("secret-tool", "lookup", "service", "prusa-credential-helper", "username", "cli-keyring").Output(); err != nil || !strings.Contains(string(out), set.AccessToken) {
		t.Fatalf("secret-tool does not find the item: %v", err)
	}
	if _, err := os.Stat(tokenFile(home, "cli-keyring")); err == nil {
		t.Fatal("a token file was written although the keyring answered")
	}
	r = execHelper(t, home, vars, "", "token")
	if r.exit != 0 || !srv.ValidAccessToken(strings.TrimSpace(r.stdout)) {
		t.Fatalf("refreshing get: %d %q", r.exit, r.stderr)
	}
	r = execHelper(t, home, vars, "", "list")
	if !strings.Contains(r.stdout, `{"profile":"cli-keyring","store":"keyring","user_id":"1530681","email":"canary@example.com"`) {
		t.Fatalf("list: %s", r.stdout)
	}
	// A run on the file store lists it but cannot refresh it, and says so.
	r = execHelper(t, home, vars, "", "refresh", "--all", "--store", "file")
	if r.exit != 1 || r.stderr != "cli-keyring: profile \"cli-keyring\" is in the keyring, which a run with --store file does not refresh\n" {
		t.Fatalf("refresh --all --store file: exit %d, stderr %q", r.exit, r.stderr)
	}
	r = execHelper(t, home, vars, "", "erase")
	if r.stdout != `{"version":1,"success":true,"profile":"cli-keyring","erased":true}`+"\n" {
		t.Fatalf("erase: %s %s", r.stdout, r.stderr)
	}
	if _, err := exec.Command("secret-tool", "lookup", "service", "prusa-credential-helper", "username", "cli-keyring").Output(); err == nil {
		t.Fatal("the item is still in the keyring after erase")
	}
}

// TestMissingTokenFile: a --token-file that does not exist is named, with
// a login into it as the hint.
func TestMissingTokenFile(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, "prusa_tokens.json")
	r := execHelper(t, home, nil, "", "get", "--token-file", path)
	if r.exit != 4 || !strings.Contains(r.stdout, `"code":"login_required"`) ||
		r.stderr != prog+": no token file at "+path+"\nhint: run: "+prog+" login --token-file "+path+"\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.exit, r.stdout, r.stderr)
	}
}
