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

	"github.com/rogpeppe/go-internal/txtar"
)

// goldenNow is the fixed clock of the golden tests.
var goldenNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

type goldenCase struct {
	name  string
	args  []string
	env   map[string]string
	stdin string
	// stored, if set, is put in the file store as the profile "default"
	// before the run.
	stored map[string]any
}

var (
	validSet   = canarySet(goldenNow.Add(2*time.Hour), goldenNow.Add(30*24*time.Hour))
	expiredSet = canarySet(goldenNow.Add(-time.Hour), goldenNow.Add(-time.Minute))
)

func goldenCases() []goldenCase {
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	fileStore := map[string]string{"PRUSA_CREDENTIAL_STORE": "file"}
	return []goldenCase{
		{name: "help", args: []string{"help"}},
		{name: "help-flag", args: []string{"--help"}},
		{name: "help-get", args: []string{"help", "get"}},
		{name: "get-help-flag", args: []string{"get", "--help"}},
		{name: "help-flag-before-get", args: []string{"--help", "--profile", "p", "get"}},
		{name: "help-login", args: []string{"login", "-h"}},
		{name: "usage-no-command", args: []string{}},
		{name: "usage-unknown-command", args: []string{"fetch"}},
		{name: "usage-unknown-flag", args: []string{"get", "--bogus"}},
		{name: "usage-bad-format", args: []string{"get", "--format", "xml"}},
		{name: "usage-bad-store", args: []string{"--store", "bogus", "get"}},
		{name: "usage-bad-timeout", args: []string{"get", "--timeout", "abc"}},
		{name: "usage-timeout-in-days", args: []string{"get", "--timeout", "10d"}},
		{name: "usage-bad-within", args: []string{"refresh", "--all", "--within", "1.5d"}},
		{name: "usage-short-unknown-flag", args: []string{"get", "-p", "default"}},
		{name: "usage-bad-boolean", args: []string{"get", "--debug=maybe"}},
		{name: "usage-flag-of-another-command", args: []string{"get", "--email", "a@b.c"}},
		{name: "version-flag", args: []string{"--version"}},
		{name: "help-short-flag", args: []string{"-h"}},
		{name: "help-refresh", args: []string{"help", "refresh"}},
		{name: "usage-help-unknown", args: []string{"help", "fetch"}},
		{name: "usage-flag-needs-value", args: []string{"get", "--profile"}},
		{name: "usage-within-without-all", args: []string{"refresh", "--within", "72h"}},
		{name: "usage-bad-etcd-store", args: []string{"--store", "etcd://host/prefix", "get"}},
		{name: "usage-etcd-store-no-prefix", args: []string{"--store", "etcd://127.0.0.1:2379", "get"}},
		{name: "get-bad-auto-login-env", args: []string{"get"}, env: map[string]string{"PRUSA_AUTO_LOGIN": "yes"}},
		{name: "get-bad-debug-env", args: []string{"get"}, env: map[string]string{"PRUSA_HELPER_DEBUG": "yes"}},
		{name: "get-bad-save-command-env", args: []string{"get"}, env: map[string]string{"PRUSA_SAVE_COMMAND": "gh secret set 'X"}},
		{name: "get-save-command-pipe", args: []string{"get", "--save-command", "cat | tee x"}},
		{name: "get-etcd-key-is-pem-text", args: []string{"get"}, env: map[string]string{"PRUSA_ETCD_CERT": "c.pem", "PRUSA_ETCD_KEY": "-----BEGIN PRIVATE KEY-----\nCANARY-key\n-----END PRIVATE KEY-----\n"}},
		{name: "get-bad-etcd-user-env", args: []string{"get"}, env: map[string]string{"PRUSA_ETCD_USER": "CANARY-password-only"}},
		{name: "version", args: []string{"version"}},
		{name: "version-json", args: []string{"version", "--json"}},
		{name: "get-json", args: []string{"get"}, env: fileStore, stored: validSet},
		{name: "get-token", args: []string{"get", "--format", "token"}, env: fileStore, stored: validSet},
		{name: "token", args: []string{"token"}, env: fileStore, stored: validSet},
		{name: "get-header", args: []string{"--format", "header", "get"}, env: fileStore, stored: validSet},
		{name: "get-env", args: []string{"get", "--format=env"}, env: fileStore, stored: validSet},
		{name: "get-request", args: []string{"get"}, env: fileStore, stored: validSet, stdin: `{"version": 1, "profile": "default", "min_ttl": 300, "force_refresh": false, "unknown": [1]}`},
		{name: "get-login-required", args: []string{"get"}, env: fileStore},
		{name: "get-login-required-profile", args: []string{"get", "--profile", "work"}, env: fileStore},
		{name: "get-login-required-token-format", args: []string{"token"}, env: fileStore},
		{name: "get-refresh-expired", args: []string{"get"}, env: fileStore, stored: expiredSet},
		{name: "get-bad-profile", args: []string{"get", "--profile", "../etc"}, env: fileStore},
		{name: "get-bad-profile-env", args: []string{"get"}, env: map[string]string{"PRUSA_PROFILE": ".hidden"}},
		{name: "get-bad-account-url", args: []string{"get"}, env: map[string]string{"PRUSA_ACCOUNT_URL": "http://account.prusa3d.com"}},
		{name: "get-account-url-no-scheme", args: []string{"get"}, env: map[string]string{"PRUSA_ACCOUNT_URL": "account.prusa3d.com"}},
		{name: "get-bad-store-env", args: []string{"get"}, env: map[string]string{"PRUSA_CREDENTIAL_STORE": "cloud"}},
		{name: "get-bad-timeout-env", args: []string{"get"}, env: map[string]string{"PRUSA_HELPER_TIMEOUT": "soon"}},
		{name: "get-bad-tokens-json", args: []string{"get"}, env: map[string]string{"PRUSA_TOKENS_JSON": `{"access_token": "CANARY-not-a-jwt"}`}},
		{name: "get-bad-token", args: []string{"get"}, env: map[string]string{"PRUSA_TOKEN": "CANARY-not-a-jwt"}},
		{name: "get-request-garbage", args: []string{"get"}, env: fileStore, stdin: `{"min_ttl": 3`},
		{name: "get-request-null", args: []string{"get"}, env: fileStore, stdin: `null`},
		{name: "get-request-two-documents", args: []string{"get"}, env: fileStore, stdin: `{} {}`},
		{name: "get-request-min-ttl-fraction", args: []string{"get"}, env: fileStore, stdin: `{"min_ttl": 1.5}`},
		{name: "get-request-version-2", args: []string{"get"}, env: fileStore, stdin: `{"version": 2}`},
		{name: "get-request-profile-conflict", args: []string{"get", "--profile", "work"}, env: fileStore, stdin: `{"profile": "home"}`},
		{name: "get-prusa-token", args: []string{"get"}, env: map[string]string{"PRUSA_TOKEN": validSet["access_token"].(string)}},
		{name: "get-tokens-json", args: []string{"get"}, env: map[string]string{"PRUSA_TOKENS_JSON": js(validSet), "PRUSA_CREDENTIAL_STORE": "file"}},
		{name: "store", args: []string{"store"}, env: fileStore, stdin: js(validSet)},
		{name: "store-with-profile", args: []string{"store"}, env: fileStore, stdin: strings.Replace(js(validSet), "{", `{"profile":"work",`, 1)},
		{name: "store-empty", args: []string{"store"}, env: fileStore},
		{name: "store-garbage", args: []string{"store"}, env: fileStore, stdin: "CANARY garbage"},
		{name: "store-truncated", args: []string{"store"}, env: fileStore, stdin: js(validSet)[:200]},
		{name: "store-no-access-token", args: []string{"store"}, env: fileStore, stdin: `{"refresh_token": "x"}`},
		{name: "erase", args: []string{"erase"}, env: fileStore, stored: validSet},
		{name: "erase-nothing", args: []string{"erase"}, env: fileStore, stdin: `{"profile": "default"}`},
		{name: "logout", args: []string{"logout"}, env: fileStore, stored: validSet},
		{name: "list", args: []string{"list"}, env: fileStore, stored: validSet},
		{name: "list-empty", args: []string{"list"}, env: fileStore},
		{name: "status", args: []string{"status"}, env: fileStore, stored: validSet},
		{name: "status-json", args: []string{"status", "--json"}, env: fileStore, stored: validSet},
		{name: "status-expired", args: []string{"status"}, env: fileStore, stored: expiredSet},
		{name: "status-expired-prusa-token", args: []string{"status"}, env: map[string]string{"PRUSA_TOKEN": expiredSet["access_token"].(string)}},
		{name: "status-nothing-json", args: []string{"status", "--json"}, env: fileStore},
		{name: "status-nothing", args: []string{"--profile", "work", "status"}, env: fileStore},
	}
}

// TestGolden runs each case in-process with a fixed clock and compares its
// stdout, stderr and exit code with testdata/golden/<name>.txtar.
// go test -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			config := t.TempDir()
			if tc.stored != nil {
				storeIn(t, config, "default", tc.stored)
			}
			vars := map[string]string{"PRUSA_ACCOUNT_URL": "http://127.0.0.1:1"} // nothing listens: no test reaches a network
			for k, v := range tc.env {
				vars[k] = v
			}
			p := newInProcess(config, vars, func() time.Time { return goldenNow }, nil)
			exit := p.run(tc.stdin, tc.args...)
			stdout, stderr := &p.stdout, &p.stderr
			got := &txtar.Archive{Files: []txtar.File{
				{Name: "args", Data: []byte(strings.Join(tc.args, " ") + "\n")},
				{Name: "exit", Data: []byte(strconv.Itoa(exit) + "\n")},
				{Name: "stdout", Data: []byte(strings.ReplaceAll(stdout.String(), config, "$CONFIG"))},
				{Name: "stderr", Data: []byte(strings.ReplaceAll(stderr.String(), config, "$CONFIG"))},
			}}
			if tc.stdin != "" {
				got.Files = append(got.Files[:1], append([]txtar.File{{Name: "stdin", Data: []byte(tc.stdin + "\n")}}, got.Files[1:]...)...)
			}
			path := filepath.Join("testdata", "golden", tc.name+".txtar")
			if *update {
				if err := os.WriteFile(path, txtar.Format(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run: go test -run TestGolden -update)", err)
			}
			if g := txtar.Format(got); !bytes.Equal(g, want) {
				t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", path, g, want)
			}
			// A usage error is one line on stderr that names the problem
			// and how to get help, and nothing on stdout.
			if strings.HasPrefix(tc.name, "usage-") {
				line, more, _ := strings.Cut(stderr.String(), "\n")
				if exit != 2 || stdout.Len() != 0 || more != "" || !strings.Contains(line, prog+" help") {
					t.Errorf("usage error: exit %d, stdout %q, stderr %q; want exit 2, no stdout, one line on stderr naming the help", exit, stdout, stderr)
				}
			}
			// Whatever the case, stderr never shows a token, and stdout only
			// the access token, and only on get's success.
			assertNoTokens(t, "stderr", stderr.String(), setTokens(validSet)...)
			assertNoTokens(t, "stdout", stdout.String(), validSet["refresh_token"].(string), validSet["id_token"].(string))
			if strings.Contains(stderr.String(), "CANARY") || (exit != 0 && strings.Contains(stdout.String(), "CANARY")) {
				t.Error("a canary value leaked")
			}
			if exit != 0 && tc.stored != nil {
				b, _ := json.Marshal(tc.stored)
				now, _ := os.ReadFile(filepath.Join(config, prog, "default.json"))
				if !bytes.Equal(now, b) {
					t.Error("a failed command changed the store")
				}
			}
		})
	}
}
