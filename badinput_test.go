package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadInputCatalogue feeds malformed input of every kind — requests,
// token sets, flags, environment variables, profile names, bodies, and
// hostile pages from the server — and wants, for each, a specific error
// and exit code, no panic, and the store unchanged.
func TestBadInputCatalogue(t *testing.T) {
	huge := strings.Repeat(" ", 70<<10) + "{}"
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	set := func(mut func(m map[string]any)) string {
		m := canarySet(goldenNow.Add(time.Hour), goldenNow.Add(time.Hour))
		mut(m)
		return js(m)
	}
	otherUser := jwtFor(map[string]any{"jti": "CANARY-other", "sub": "999", "exp": goldenNow.Add(time.Hour).Unix()})
	noExp := jwtFor(map[string]any{"jti": "CANARY-noexp", "sub": "1530681"})
	hostile := map[string]http.HandlerFunc{
		"no form": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<html><body>Sign in with Google</body></html>")
		},
		"two password forms": func(w http.ResponseWriter, r *http.Request) {
			f := `<form method="post"><input name="email"><input type="password" name="password"></form>`
			fmt.Fprint(w, f+f)
		},
		"enormous page": func(w http.ResponseWriter, r *http.Request) {
			for range 600 {
				fmt.Fprint(w, strings.Repeat("<p>x</p>", 1024))
			}
		},
		"deeply nested markup": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, strings.Repeat("<div>", 200000))
		},
		"thousands of inputs": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<form>"+strings.Repeat("<input name=a>", 5000)+"</form>")
		},
		"form posting elsewhere": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<form method="post" action="https://evil.example/"><input name="email"><input type="password" name="password"></form>`)
		},
		"binary garbage": func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte{0, 0xff, '<', 0x80}, 10000))
		},
	}
	type tc struct {
		name  string
		args  []string
		env   map[string]string
		stdin string
		page  string // a hostile handler serving the account URL, for login
		exit  int
		msg   string
	}
	cases := []tc{
		// Requests on get's stdin.
		{name: "request: null", args: []string{"get"}, stdin: "null", exit: 2, msg: "null"},
		{name: "request: array", args: []string{"get"}, stdin: "[]", exit: 2, msg: "not a JSON object"},
		{name: "request: string", args: []string{"get"}, stdin: `"get"`, exit: 2, msg: "not a JSON object"},
		{name: "request: number", args: []string{"get"}, stdin: "42", exit: 2, msg: "not a JSON object"},
		{name: "request: two documents", args: []string{"get"}, stdin: "{}{}", exit: 2, msg: "data after"},
		{name: "request: trailing garbage", args: []string{"get"}, stdin: "{} x", exit: 2, msg: "data after"},
		{name: "request: truncated", args: []string{"get"}, stdin: `{"min_ttl":`, exit: 2, msg: "truncated"},
		{name: "request: single quotes", args: []string{"get"}, stdin: `{'min_ttl': 1}`, exit: 2, msg: "not valid JSON"},
		{name: "request: invalid UTF-8", args: []string{"get"}, stdin: "{\"profile\":\"\xc3\x28\"}", exit: 2, msg: "UTF-8"},
		{name: "request: over 64 KiB", args: []string{"get"}, stdin: huge, exit: 2, msg: "larger than 64 KiB"},
		{name: "request: version 2", args: []string{"get"}, stdin: `{"version":2}`, exit: 2, msg: "version"},
		{name: "request: version as string", args: []string{"get"}, stdin: `{"version":"1"}`, exit: 2, msg: "version"},
		{name: "request: negative min_ttl", args: []string{"get"}, stdin: `{"min_ttl":-5}`, exit: 2, msg: "between 0 and 86400"},
		{name: "request: min_ttl over a day", args: []string{"get"}, stdin: `{"min_ttl":86401}`, exit: 2, msg: "between 0 and 86400"},
		{name: "request: fractional min_ttl", args: []string{"get"}, stdin: `{"min_ttl":0.5}`, exit: 2, msg: "whole number"},
		{name: "request: min_ttl as string", args: []string{"get"}, stdin: `{"min_ttl":"60"}`, exit: 2, msg: "whole number"},
		{name: "request: force_refresh as string", args: []string{"get"}, stdin: `{"force_refresh":"true"}`, exit: 2, msg: "force_refresh"},
		{name: "request: empty profile", args: []string{"get"}, stdin: `{"profile":""}`, exit: 2, msg: "must not be empty"},
		{name: "request: profile as number", args: []string{"get"}, stdin: `{"profile":7}`, exit: 2, msg: "must be a string"},
		{name: "request: profile path traversal", args: []string{"get"}, stdin: `{"profile":"../../x"}`, exit: 2, msg: "starts with a dot"},
		{name: "request: profile conflicts with flag", args: []string{"get", "--profile", "a"}, stdin: `{"profile":"b"}`, exit: 2, msg: "differs"},
		{name: "erase: profile with a slash", args: []string{"erase"}, stdin: `{"profile":"a/b"}`, exit: 2, msg: "character other than"},
		// Token sets on store's stdin.
		{name: "store: empty body", args: []string{"store"}, exit: 2, msg: "no token set"},
		{name: "store: garbage", args: []string{"store"}, stdin: "access_token=x", exit: 2, msg: "not valid JSON"},
		{name: "store: no access token", args: []string{"store"}, stdin: set(func(m map[string]any) { delete(m, "access_token") }), exit: 2, msg: "no access_token"},
		{name: "store: access token not a JWT", args: []string{"store"}, stdin: set(func(m map[string]any) { m["access_token"] = "CANARY.x" }), exit: 2, msg: "2 dot-separated parts"},
		{name: "store: access token without exp", args: []string{"store"}, stdin: set(func(m map[string]any) { m["access_token"] = noExp }), exit: 2, msg: "no exp claim"},
		{name: "store: refresh token of another user", args: []string{"store"}, stdin: set(func(m map[string]any) { m["refresh_token"] = otherUser }), exit: 2, msg: "another user"},
		{name: "store: id token malformed", args: []string{"store"}, stdin: set(func(m map[string]any) { m["id_token"] = "a.b.c" }), exit: 2, msg: "id_token"},
		{name: "store: access token a number", args: []string{"store"}, stdin: set(func(m map[string]any) { m["access_token"] = 5 }), exit: 2, msg: "not a string"},
		{name: "store: expires_in a string", args: []string{"store"}, stdin: set(func(m map[string]any) { m["expires_in"] = "7200" }), exit: 2, msg: "expires_in"},
		{name: "store: JWT with standard base64", args: []string{"store"}, stdin: `{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3OTU3MzM4NjJ9+/==.c2ln"}`, exit: 2, msg: "not base64url"},
		// Flags.
		{name: "flag: unknown", args: []string{"get", "--verbose"}, exit: 2, msg: "unknown flag --verbose"},
		{name: "flag: bad format", args: []string{"get", "--format", "yaml"}, exit: 2, msg: `invalid value "yaml"`},
		{name: "flag: bad store", args: []string{"get", "--store", "cloud"}, exit: 2, msg: `invalid value "cloud"`},
		{name: "flag: bad timeout", args: []string{"get", "--timeout", "soon"}, exit: 2, msg: "positive duration"},
		{name: "flag: negative timeout", args: []string{"get", "--timeout", "-5s"}, exit: 2, msg: "positive duration"},
		{name: "flag: token file and keyring", args: []string{"get", "--store", "keyring", "--token-file", "/tmp/x"}, exit: 2, msg: "--token-file uses the file store"},
		{name: "flag: extra argument", args: []string{"get", "now"}, exit: 2, msg: "takes no arguments"},
		{name: "flag: login flag on get", args: []string{"get", "--password-stdin"}, exit: 2, msg: "not for get"},
		{name: "command: unknown", args: []string{"renew"}, exit: 2, msg: `unknown command "renew"`},
		{name: "command: unknown, asking for its help", args: []string{"renew", "--help"}, exit: 2, msg: `unknown command "renew"`},
		{name: "command: unknown, after --help", args: []string{"-h", "renew"}, exit: 2, msg: `unknown command "renew"`},
		{name: "command: unknown, with --version", args: []string{"--version", "renew"}, exit: 2, msg: `unknown command "renew"`},
		{name: "command: unknown, with --help and --version", args: []string{"--help", "--version", "renew"}, exit: 2, msg: `unknown command "renew"`},
		// Secrets in the wrong place are not echoed.
		{name: "command: a token", args: []string{"eyJhbGciOiJSUzI1NiJ9.eyJDANARY-CANARY-CANARY-CANARY.c2ln"}, exit: 2, msg: "unknown command (56 characters, not shown)"},
		{name: "store: the set as an argument", args: []string{"store", `{"access_token":"CANARY"}`}, exit: 2, msg: "store takes no arguments (got 1); a request or token set goes on stdin"},
		{name: "login: the password as an argument", args: []string{"login", "--email", "a@example.com", "CANARY-pw"}, exit: 2, msg: "login takes no arguments (got 1); the email goes with --email"},
		{name: "flag: a token as the format", args: []string{"get", "--format", "eyJhbGciOiJSUzI1NiJ9.CANARY-CANARY-CANARY.c2ln"}, exit: 2, msg: "invalid value (46 characters, not shown) for --format"},
		{name: "flag: a secret as a boolean", args: []string{"get", "--debug=CANARY-a-secret-of-more-than-32-bytes"}, exit: 2, msg: "invalid value (37 characters, not shown) for --debug"},
		{name: "flag: a secret as the store", args: []string{"get", "--store", "CANARY-a-secret-of-more-than-32-bytes"}, exit: 2, msg: "invalid value (37 characters, not shown) for --store"},
		{name: "flag: etcd user:password without the host", args: []string{"get", "--store", "etcd://farm:canary-pw/p"}, exit: 2, msg: `invalid --store: etcd:// URL: endpoint 1, host "farm", has no port from 1 to 65535`},
		{name: "env: etcd user:password without the host", args: []string{"get"}, env: map[string]string{"PRUSA_CREDENTIAL_STORE": "etcd://farm:canary-pw/p"}, exit: 2, msg: `PRUSA_CREDENTIAL_STORE is not valid: etcd:// URL: endpoint 1, host "farm", has no port`},
		{name: "flag: a TOTP code as the format", args: []string{"get", "--format", "482913"}, exit: 2, msg: "invalid value (6 characters, not shown) for --format"},
		{name: "flag: a password as the store", args: []string{"get", "--store", "farm:hunter2"}, exit: 2, msg: "invalid value (12 characters, not shown) for --store"},
		{name: "env: a secret as the store", args: []string{"get"}, env: map[string]string{"PRUSA_CREDENTIAL_STORE": "CANARY pass word"}, exit: 2, msg: "PRUSA_CREDENTIAL_STORE (16 characters, not shown)"},
		{name: "env: a secret as the timeout", args: []string{"get"}, env: map[string]string{"PRUSA_HELPER_TIMEOUT": "CANARY!pw"}, exit: 2, msg: "not (9 characters, not shown)"},
		{name: "env: a token set as the token file", args: []string{"get"}, env: map[string]string{"PRUSA_TOKEN_FILE": `{"access_token":"CANARY","refresh_token":"CANARY-rt"}`}, exit: 2, msg: "holds a token set or a token, not a file's path"},
		{name: "flag: a token as the token file", args: []string{"get", "--token-file", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJDQU5BUlkiLCJleHAiOjF9.CANARY-signature-part"}, exit: 2, msg: "not a file's path"},
		{name: "flag: a secret as a flag's name", args: []string{"get", "-eyJhbGciOiJSUzI1NiJ9.CANARY.sig"}, exit: 2, msg: "unknown flag (31 characters, not shown)"},
		{name: "flag: a secret in bad flag syntax", args: []string{"get", "---CANARY secret"}, exit: 2, msg: "bad flag syntax: (16 characters, not shown)"},
		{name: "flag: a password as --password-stdin's value", args: []string{"login", "--email", "a@example.com", "--password-stdin=CANARY2024"}, exit: 2, msg: "invalid value (10 characters, not shown) for --password-stdin"},
		{name: "help: a secret as the topic", args: []string{"help", "CANARYJBSWY3DPEHP"}, exit: 2, msg: "no help for unknown command (17 characters, not shown)"},
		{name: "command: a TOTP code", args: []string{"482913"}, exit: 2, msg: "unknown command (6 characters, not shown)"},
		{name: "env: a TOTP code as a boolean", args: []string{"get"}, env: map[string]string{"PRUSA_AUTO_LOGIN": "482913"}, exit: 2, msg: "(6 characters, not shown)"},
		{name: "command: a password", args: []string{"--email", "a@example.com", "CANARY2024", "login"}, exit: 2, msg: "unknown command (10 characters, not shown)"},
		{name: "env: a secret as a boolean", args: []string{"get"}, env: map[string]string{"PRUSA_AUTO_LOGIN": "CANARY pw"}, exit: 2, msg: "not (9 characters, not shown)"},
		// Profile names.
		{name: "profile: empty", args: []string{"get", "--profile", ""}, exit: 2, msg: "empty"},
		{name: "profile: too long", args: []string{"get", "--profile", strings.Repeat("p", 65)}, exit: 2, msg: "longer than 64"},
		{name: "profile: unicode", args: []string{"get", "--profile", "prŭša"}, exit: 2, msg: "character other than"},
		{name: "profile: dot dot", args: []string{"get", "--profile", ".."}, exit: 2, msg: "starts with a dot"},
		{name: "profile: NUL", args: []string{"get"}, env: map[string]string{"PRUSA_PROFILE": "a\x00b"}, exit: 2, msg: "character other than"},
		{name: "profile: a secret put there by mistake", args: []string{"get"}, env: map[string]string{"PRUSA_PROFILE": "CANARY-pa$$word!"}, exit: 2, msg: "bad profile from PRUSA_PROFILE: "},
		// Environment variables.
		{name: "env: PRUSA_TOKENS_JSON garbage", args: []string{"get"}, env: map[string]string{"PRUSA_TOKENS_JSON": "CANARY{"}, exit: 2, msg: "PRUSA_TOKENS_JSON is not a valid token set"},
		{name: "env: PRUSA_TOKENS_JSON without access token", args: []string{"get"}, env: map[string]string{"PRUSA_TOKENS_JSON": `{"refresh_token":"x"}`}, exit: 2, msg: "PRUSA_TOKENS_JSON"},
		{name: "env: PRUSA_TOKEN not a JWT", args: []string{"get"}, env: map[string]string{"PRUSA_TOKEN": "CANARY-ghp_abc"}, exit: 2, msg: "PRUSA_TOKEN is not a JWT"},
		{name: "env: http account URL", args: []string{"get"}, env: map[string]string{"PRUSA_ACCOUNT_URL": "http://account.prusa3d.com"}, exit: 2, msg: "only for loopback"},
		{name: "env: account URL not a URL", args: []string{"get"}, env: map[string]string{"PRUSA_ACCOUNT_URL": "account.prusa3d.com"}, exit: 2, msg: "want an absolute URL such as https://account.prusa3d.com"},
		{name: "env: account URL without a scheme, an IP and port", args: []string{"get"}, env: map[string]string{"PRUSA_ACCOUNT_URL": "127.0.0.1:8080"}, exit: 2, msg: "want an absolute URL such as https://account.prusa3d.com (http:// for a loopback host)"},
		{name: "env: account URL without a scheme, a name and port", args: []string{"get"}, env: map[string]string{"PRUSA_ACCOUNT_URL": "localhost:8080"}, exit: 2, msg: "want an absolute URL such as https://account.prusa3d.com (http:// for a loopback host)"},
		{name: "env: account URL without a host", args: []string{"get"}, env: map[string]string{"PRUSA_ACCOUNT_URL": "https://"}, exit: 2, msg: "no host"},
		{name: "env: account URL ftp", args: []string{"get"}, env: map[string]string{"PRUSA_ACCOUNT_URL": "ftp://account.prusa3d.com"}, exit: 2, msg: `scheme "ftp"`},
		{name: "env: account URL with credentials", args: []string{"get"}, env: map[string]string{"PRUSA_ACCOUNT_URL": "https://u:CANARY@account.prusa3d.com"}, exit: 2, msg: "no user"},
		{name: "env: bad store", args: []string{"get"}, env: map[string]string{"PRUSA_CREDENTIAL_STORE": "vault"}, exit: 2, msg: "PRUSA_CREDENTIAL_STORE"},
		{name: "env: bad timeout", args: []string{"get"}, env: map[string]string{"PRUSA_HELPER_TIMEOUT": "0"}, exit: 2, msg: "PRUSA_HELPER_TIMEOUT"},
		{name: "env: relative redirect URI", args: []string{"get"}, env: map[string]string{"PRUSA_REDIRECT_URI": "/callback"}, exit: 2, msg: "redirect URI"},
		{name: "env: bad TOTP secret", args: []string{"login", "--email", "a@b.c"}, env: map[string]string{"PRUSA_PASSWORD": "CANARY-pw", "PRUSA_TOTP_SECRET": "1!"}, exit: 2, msg: "PRUSA_TOTP_SECRET"},
	}
	for name := range hostile {
		cases = append(cases, tc{name: "server: " + name, args: []string{"login", "--email", "a@b.c"}, env: map[string]string{"PRUSA_PASSWORD": "CANARY-pw"}, page: name})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			config := t.TempDir()
			dir := filepath.Join(config, prog)
			stored := storeIn(t, config, "default", validSet)
			vars := map[string]string{"PRUSA_ACCOUNT_URL": "http://127.0.0.1:1", "PRUSA_CREDENTIAL_STORE": "file"}
			if c.page != "" {
				hs := httptest.NewServer(hostile[c.page])
				defer hs.Close()
				vars["PRUSA_ACCOUNT_URL"] = hs.URL
			}
			for k, v := range c.env {
				vars[k] = v
			}
			p := newInProcess(config, vars, func() time.Time { return goldenNow }, nil)
			exit := p.run(c.stdin, c.args...)
			stdout, stderr := &p.stdout, &p.stderr
			if c.page != "" {
				// A hostile page: a specific login error, never success.
				t.Logf("exit %d: %s", exit, strings.TrimSpace(stderr.String()))
				if exit == 0 || exit == 2 || !strings.HasPrefix(stderr.String(), prog+": ") {
					t.Fatalf("exit %d stderr %q", exit, stderr.String())
				}
			} else if exit != c.exit || !strings.Contains(stderr.String(), c.msg) {
				t.Fatalf("exit %d stderr %q; want exit %d and %q", exit, stderr.String(), c.exit, c.msg)
			}
			for _, secret := range []string{"canary", "hunter2", "482913"} {
				if strings.Contains(strings.ToLower(stderr.String()+stdout.String()), secret) {
					t.Fatalf("the input's secret part %q was echoed", secret)
				}
			}
			if now, _ := os.ReadFile(filepath.Join(dir, "default.json")); !bytes.Equal(now, stored) {
				t.Fatal("the store changed")
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 2 {
				t.Fatalf("files appeared: %v", entries)
			}
		})
	}
	if len(cases) < 40 {
		t.Fatalf("only %d inputs in the catalogue", len(cases))
	}
	figure(t, "bad inputs tried %d (%d hostile pages): each a specific error, no panic, store unchanged", len(cases), len(hostile))
}
