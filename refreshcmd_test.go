package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
)

// TestRefreshCommand: refresh refreshes one profile now; refresh --all
// --within refreshes the stored profiles that are due, a line each on
// stderr, and exits 4 when one needs a login.
func TestRefreshCommand(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	config := t.TempDir()
	empty := newInProcess(config, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file"}, time.Now, nil)
	if exit := empty.run("", "refresh", "--all"); exit != 4 ||
		empty.stderr.String() != prog+": no stored profiles to refresh in "+filepath.Join(config, prog)+"\nhint: log in first: "+prog+" login\n" {
		t.Fatalf("refresh --all with nothing stored: exit %d stderr %q; want 4 (a login is needed) and a line that says where it looked", exit, empty.stderr.String())
	}
	a := srv.Mint(userEmail, time.Hour)
	storeIn(t, config, "a", a)
	storeIn(t, config, "b", srv.Mint("plain@example.com", time.Hour))
	p := newInProcess(config, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file"}, time.Now, nil)

	if exit := p.run("", "refresh", "--profile", "a"); exit != 0 || srv.Count(authtest.KindTokenRefresh) != 1 ||
		!strings.HasPrefix(p.stderr.String(), "Refreshed profile a: the access token is valid until ") || p.stdout.Len() != 0 {
		t.Fatalf("refresh: exit %d stderr %q, %d refreshes", exit, p.stderr.String(), srv.Count(authtest.KindTokenRefresh))
	}
	if srv.ValidRefreshToken(a.RefreshToken) {
		t.Fatal("the old refresh token still works: nothing was refreshed")
	}

	srv.ResetCounts()
	exit := p.run("", "refresh", "--all", "--within", "1h")
	if lines := strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n"); exit != 0 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "a: not due (the refresh token is valid until ") || !strings.HasPrefix(lines[1], "b: not due") {
		t.Fatalf("--within 1h: exit %d stderr %q", exit, p.stderr.String())
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 0 {
		t.Fatalf("%d refreshes of profiles not due", n)
	}

	exit = p.run("", "refresh", "--all", "--within", "8760h")
	if lines := strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n"); exit != 0 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "a: refreshed") || !strings.HasPrefix(lines[1], "b: refreshed") || srv.Count(authtest.KindTokenRefresh) != 2 {
		t.Fatalf("--within a year: exit %d stderr %q, %d refreshes", exit, p.stderr.String(), srv.Count(authtest.KindTokenRefresh))
	}

	srv.RevokeAll("plain@example.com")
	exit = p.run("", "refresh", "--all")
	if lines := strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n"); exit != 4 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "a: refreshed") || !strings.HasPrefix(lines[1], "b: ") || !strings.Contains(lines[1], "login --profile b") {
		t.Fatalf("one revoked: exit %d stderr %q", exit, p.stderr.String())
	}
	assertNoTokens(t, "stderr", p.stderr.String(), a.AccessToken, a.RefreshToken, a.IDToken)

	// A token in the environment would stand in for the stored sets.
	js, _ := json.Marshal(srv.Mint(userEmail, time.Hour))
	for _, tc := range []struct {
		name, value string
		args        []string
	}{
		{"PRUSA_TOKEN", srv.Mint(userEmail, time.Hour).AccessToken, []string{"refresh"}},
		{"PRUSA_TOKENS_JSON", string(js), []string{"refresh", "--all"}},
	} {
		srv.ResetCounts()
		p := newInProcess(config, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file", tc.name: tc.value}, time.Now, nil)
		if exit := p.run("", tc.args...); exit != 2 || srv.Count(authtest.KindTokenRefresh) != 0 ||
			p.stderr.String() != prog+": "+tc.name+" is set and would be used instead of the stored token sets; unset it to refresh them\n" {
			t.Errorf("%s: exit %d stderr %q", tc.name, exit, p.stderr.String())
		}
	}
}

// TestRefreshAllWithinByTheServersClock: --within judges the refresh
// token by the server's clock, as get does: on a host whose clock is two
// days behind, a token with 10 days left (12 by the local clock) is due
// within 11 days.
func TestRefreshAllWithinByTheServersClock(t *testing.T) {
	srv := newServer(t, authtest.Options{ClockOffset: 48 * time.Hour, RefreshTTL: 10 * 24 * time.Hour})
	config := t.TempDir()
	set := srv.Mint(userEmail, time.Hour)
	set.ClockOffset = 48 * time.Hour // as a login or refresh there records it
	storeIn(t, config, "default", set)
	p := newInProcess(config, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file"}, time.Now, nil)
	if exit := p.run("", "refresh", "--all", "--within", "9d"); exit != 0 || !strings.HasPrefix(p.stderr.String(), "default: not due") {
		t.Fatalf("--within 9d: exit %d stderr %q, want not due (10 days left)", exit, p.stderr.String())
	}
	if exit := p.run("", "refresh", "--all", "--within", "11d"); exit != 0 || !strings.HasPrefix(p.stderr.String(), "default: refreshed") ||
		srv.Count(authtest.KindTokenRefresh) != 1 {
		t.Fatalf("--within 11d: exit %d stderr %q, %d refreshes; want one (10 days left by the server's clock)", exit, p.stderr.String(), srv.Count(authtest.KindTokenRefresh))
	}
}

func TestParseEtcdURL(t *testing.T) {
	tests := []struct {
		in        string
		endpoints []string
		prefix    string
		wantErr   string
	}{
		{in: "etcd://127.0.0.1:2379/prusa", endpoints: []string{"127.0.0.1:2379"}, prefix: "prusa"},
		{in: "etcd://a:1,b:2,[::1]:2379/ci/tokens/", endpoints: []string{"a:1", "b:2", "[::1]:2379"}, prefix: "ci/tokens"},
		{in: "etcd://a:2379//p", wantErr: "empty path segment"},
		{in: "etcd://a:2379", wantErr: "no key prefix"},
		{in: "etcd://a:2379/", wantErr: "no key prefix"},
		{in: "etcd:///p", wantErr: "no HOST:PORT"},
		{in: "etcd://a/p", wantErr: `endpoint 1 "a" is not HOST:PORT`},
		{in: "etcd://a:1,/p", wantErr: `endpoint 2 "" is not HOST:PORT`},
		{in: "etcd://:2379/p", wantErr: "endpoint 1 is not HOST:PORT"},
		{in: "etcd://a:0/p", wantErr: `endpoint 1, host "a", has no port from 1 to 65535`},
		{in: "etcd://a:65536/p", wantErr: "no port from 1 to 65535"},
		{in: "etcd://a:http/p", wantErr: "no port from 1 to 65535"},
		// user:password without the @host: the password is in the port,
		// shown in no case
		{in: "etcd://user:canary-pw/p", wantErr: `endpoint 1, host "user", has no port`},
		{in: "etcd://a:1,farm:canary/p", wantErr: `endpoint 2, host "farm", has no port`},
		{in: "etcd://farm:123456/p", wantErr: `endpoint 1, host "farm", has no port`},
		{in: "etcd://CANARY/p", wantErr: "endpoint 1 (6 characters, not shown) is not HOST:PORT"},
		{in: "etcd://u:CANARY@a:1/p", wantErr: "no user in the URL"},
		{in: "etcd://a:1/p?x=1", wantErr: "no query"},
		{in: "http://a:1/p", wantErr: "want etcd://"},
	}
	for _, tt := range tests {
		endpoints, prefix, err := helper.ParseEtcdURL(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(strings.ToLower(err.Error()), "canary") || strings.Contains(err.Error(), "123456") {
				t.Errorf("%q: %q %q %v; want error %q", tt.in, endpoints, prefix, err, tt.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(endpoints, " ") != strings.Join(tt.endpoints, " ") || prefix != tt.prefix {
			t.Errorf("%q: %q %q %v; want %q %q", tt.in, endpoints, prefix, err, tt.endpoints, tt.prefix)
		}
	}
}

// TestStoreAndEtcdSettings: --store and PRUSA_CREDENTIAL_STORE take an
// etcd:// URL, kept parsed in the settings with the etcd flags and
// variables (the flag wins).
func TestStoreAndEtcdSettings(t *testing.T) {
	c := newCLI(t, map[string]string{
		"PRUSA_CREDENTIAL_STORE": "etcd://e1:2379,e2:2379/prusa",
		"PRUSA_ETCD_CACERT":      "/env/ca.pem", "PRUSA_ETCD_CERT": "/env/c.pem", "PRUSA_ETCD_KEY": "/env/k.pem", "PRUSA_ETCD_USER": "env:pw",
	}, nil, "--etcd-user", "flag:pw", "get")
	e := c.s.etcd
	if c.s.store != helper.ModeEtcd || strings.Join(e.endpoints, ",") != "e1:2379,e2:2379" || e.prefix != "prusa" ||
		e.caCert != "/env/ca.pem" || e.cert != "/env/c.pem" || e.key != "/env/k.pem" || e.user != "flag:pw" {
		t.Fatalf("settings %+v store %q", e, c.s.store)
	}
	c = newCLI(t, map[string]string{"PRUSA_CREDENTIAL_STORE": "etcd://e1:2379/prusa"}, nil, "--store", "file", "get")
	if c.s.store != "file" || c.s.etcd.endpoints != nil {
		t.Fatalf("the flag does not win: %q %+v", c.s.store, c.s.etcd)
	}
	for _, vars := range []map[string]string{
		{"PRUSA_ETCD_CERT": "/c.pem"},
		{"PRUSA_ETCD_KEY": "/k.pem"},
		{"PRUSA_ETCD_USER": "nopassword"},
		{"PRUSA_ETCD_USER": ":pw"},
		{"PRUSA_ETCD_USER": "user:"}, // the companion needs a password too
		{"PRUSA_CREDENTIAL_STORE": "etcd://e1/prusa"},
	} {
		p := newInProcess(t.TempDir(), vars, time.Now, nil)
		if exit := p.run("", "get"); exit != 2 || !strings.Contains(p.stdout.String(), `"code":"invalid_request"`) {
			t.Errorf("%v: exit %d stdout %q", vars, exit, p.stdout.String())
		}
	}
}

// TestSaveCommandSetting: --save-command, else PRUSA_SAVE_COMMAND, split
// into words at once; a bad one is an invalid_request naming its source.
func TestSaveCommandSetting(t *testing.T) {
	c := newCLI(t, map[string]string{"PRUSA_SAVE_COMMAND": "gh secret set PRUSA_TOKENS_JSON --repo 'o/r'"}, nil, "get")
	if strings.Join(c.s.saveCommand, "|") != "gh|secret|set|PRUSA_TOKENS_JSON|--repo|o/r" {
		t.Fatalf("words %q", c.s.saveCommand)
	}
	c = newCLI(t, map[string]string{"PRUSA_SAVE_COMMAND": "from-env"}, nil, "--save-command", `sh -c 'cat > "$HOME/set.json"'`, "get")
	if strings.Join(c.s.saveCommand, "|") != `sh|-c|cat > "$HOME/set.json"` {
		t.Fatalf("words %q", c.s.saveCommand)
	}
	if c = newCLI(t, nil, nil, "get"); c.s.saveCommand != nil {
		t.Fatalf("unset: %q", c.s.saveCommand)
	}
	for _, args := range [][]string{{"--save-command", "", "get"}, {"--save-command", "  ", "login"}} {
		p := newInProcess(t.TempDir(), nil, time.Now, nil)
		if exit := p.run("", args...); exit != 2 || !strings.Contains(p.stderr.String(), "--save-command names no command") {
			t.Errorf("%q: exit %d stderr %q", args, exit, p.stderr.String())
		}
	}
}

// TestParseDuration: --timeout and --within take Go's durations, and
// --within whole days too (refresh --all --within 10d, as a cron line
// would say it).
func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"20s": 20 * time.Second, "240h": 240 * time.Hour, "10d": 240 * time.Hour, "1d": 24 * time.Hour} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1h", "0d", "-2d", "1.5d", "d", "10x", "99999d"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) took it", in)
		}
	}
}

// TestNoBusRefreshAll: with no session bus, refresh --all refreshes what it
// can read and names the profile the keyring index holds, which get, list
// and erase report as out of reach with a hint, never as logged out.
func TestNoBusRefreshAll(t *testing.T) {
	if _, err := os.Stat("/run/user/" + strconv.Itoa(os.Getuid()) + "/bus"); err == nil {
		t.Skip("this machine has a session bus at /run/user/UID/bus: the test needs none")
	}
	srv := newServer(t, authtest.Options{})
	config := t.TempDir()
	f := srv.Mint(userEmail, 30*time.Second)
	storeIn(t, config, "f", f)
	os.WriteFile(filepath.Join(config, prog, ".keyring-profiles"), []byte("kr\n"), 0o600)
	p := newInProcess(config, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, time.Now, nil)

	exit := p.run("", "refresh", "--all")
	lines := strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n")
	if exit != 1 || len(lines) != 2 || !strings.HasPrefix(lines[0], "f: refreshed") ||
		!strings.HasPrefix(lines[1], "kr: ") || !strings.Contains(lines[1], "cannot be reached (no D-Bus session bus)") {
		t.Fatalf("refresh --all: exit %d stderr %q", exit, p.stderr.String())
	}
	if srv.ValidRefreshToken(f.RefreshToken) {
		t.Fatal("the file profile was not refreshed")
	}
	exit = p.run("", "refresh", "--all", "--within", "1h", "--store", "file")
	lines = strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n")
	if exit != 1 || len(lines) != 2 || !strings.HasPrefix(lines[0], "f: not due") || !strings.HasPrefix(lines[1], "kr: ") {
		t.Fatalf("refresh --all --within 1h --store file: exit %d stderr %q", exit, p.stderr.String())
	}
	for _, args := range [][]string{{"get", "--profile", "kr"}, {"list"}, {"erase", "--profile", "kr"}, {"status", "--profile", "kr"}} {
		exit := p.run("", args...)
		if exit != 1 || !strings.Contains(p.stderr.String(), `"kr"`) || !strings.Contains(p.stderr.String(), "\nhint: run this in the session that has the keyring") {
			t.Errorf("%v: exit %d stderr %q", args, exit, p.stderr.String())
		}
	}
}

// TestPlainEtcdWarning: login and status warn of an etcd store on another
// machine reached without TLS; loopback etcd, or a CA given, is quiet.
func TestPlainEtcdWarning(t *testing.T) {
	for _, tt := range []struct {
		args []string
		warn bool
	}{
		{[]string{"--store", "etcd://127.0.0.1:2379,[::1]:2379,localhost:2379/farm"}, false},
		{[]string{"--store", "etcd://127.0.0.1:2379,etcd.example:2379/farm"}, true},
		{[]string{"--store", "etcd://10.1.2.3:2379/farm"}, true},
		{[]string{"--store", "etcd://10.1.2.3:2379/farm", "--etcd-cacert", "/etc/ca.pem"}, false},
		{[]string{"--store", "file"}, false},
	} {
		s, _, err := parseArgs(append([]string{"status"}, tt.args...))
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		c := &cli{env: &env{stderr: &stderr, getenv: func(string) string { return "" }, configDir: t.TempDir}, s: s}
		if err := c.resolve(); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		c.warnPlainEtcd()
		if got := strings.Contains(stderr.String(), "without TLS"); got != tt.warn {
			t.Errorf("%v: warned %t, want %t (%q)", tt.args, got, tt.warn, stderr.String())
		}
	}
}
