package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// noTerminal fails the test on any use: a run that must never prompt.
type noTerminal struct{ t *testing.T }

func (n noTerminal) Prompt(context.Context, string) (string, error) {
	n.t.Error("prompted")
	return "", errors.New("no")
}
func (n noTerminal) PromptSecret(context.Context, string) (string, error) {
	n.t.Error("prompted")
	return "", errors.New("no")
}
func (n noTerminal) Println(string) { n.t.Error("wrote on the terminal") }
func (n noTerminal) Close() error   { return nil }

// newCLI parses args and resolves the settings as a run does, with vars as
// the environment.
func newCLI(t *testing.T, vars map[string]string, tty terminal, args ...string) *cli {
	t.Helper()
	p := newInProcess(t.TempDir(), vars, time.Now, tty)
	s, _, err := parseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	s.format = protocol.FormatJSON
	c := &cli{env: p.env, s: s}
	if err := c.resolve(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAutoLogin: the non-interactive login of get --auto-login, against
// the emulator: it logs in from the environment and never prompts; a
// missing input is login_required naming it, before any request.
func TestAutoLogin(t *testing.T) {
	tests := []struct {
		name     string
		vars     map[string]string
		code     protocol.Code // "" for success
		msg      string
		requests bool // whether the server was contacted
	}{
		{name: "2FA account", vars: map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}},
		{name: "account without 2FA", vars: map[string]string{"PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword}},
		{name: "no email", vars: map[string]string{"PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret},
			code: protocol.LoginRequired, msg: "auto-login needs PRUSA_EMAIL, which is not set"},
		{name: "no password", vars: map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_TOTP_SECRET": userTOTPSecret},
			code: protocol.LoginRequired, msg: "auto-login needs PRUSA_PASSWORD, which is not set"},
		{name: "2FA account without a secret", vars: map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword},
			code: protocol.LoginRequired, msg: "auto-login needs PRUSA_TOTP_SECRET: the account asks for a TOTP code", requests: true},
		{name: "wrong password", vars: map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": "CANARY-wrong-pw"},
			code: protocol.LoginRequired, msg: "invalid email or password", requests: true},
		{name: "bad TOTP code", vars: map[string]string{"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_CODE": "12345"},
			code: protocol.InvalidRequest, msg: "PRUSA_TOTP_CODE is not a 6-digit code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, authtest.Options{})
			tt.vars["PRUSA_ACCOUNT_URL"] = srv.URL
			c := newCLI(t, tt.vars, noTerminal{t}, "--auto-login", "get")
			if !c.s.autoLogin || c.s.timeout != loginTimeout {
				t.Fatalf("auto-login %v with a budget of %s, want on and %s", c.s.autoLogin, c.s.timeout, loginTimeout)
			}
			set, err := c.autoLogin(context.Background())
			if tt.code == "" {
				if err != nil || !srv.ValidAccessToken(set.AccessToken) || !srv.ValidRefreshToken(set.RefreshToken) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("logged in")
			}
			pe := c.classify(err)
			if pe.Code != tt.code || pe.Message != tt.msg {
				t.Fatalf("got %s %q, want %s %q", pe.Code, pe.Message, tt.code, tt.msg)
			}
			if strings.Contains(pe.JSONMessage(), "CANARY") {
				t.Fatal("the message shows the password")
			}
			if got := srv.Count(authtest.KindAuthorize) > 0; got != tt.requests {
				t.Fatalf("server contacted: %v, want %v", got, tt.requests)
			}
		})
	}
}

// TestAutoLoginSettings: --auto-login and PRUSA_AUTO_LOGIN (1 or true on;
// 0, false or empty off; the flag wins), and the budget they give get.
func TestAutoLoginSettings(t *testing.T) {
	for _, tt := range []struct {
		env     string
		args    []string
		on      bool
		timeout time.Duration
	}{
		{env: "", args: []string{"get"}, on: false, timeout: defaultTimeout},
		{env: "0", args: []string{"get"}, on: false, timeout: defaultTimeout},
		{env: "false", args: []string{"get"}, on: false, timeout: defaultTimeout},
		{env: "1", args: []string{"get"}, on: true, timeout: loginTimeout},
		{env: "true", args: []string{"get"}, on: true, timeout: loginTimeout},
		{env: "TRUE", args: []string{"token"}, on: true, timeout: loginTimeout},
		{env: "1", args: []string{"get", "--auto-login=false"}, on: false, timeout: defaultTimeout},
		{env: "", args: []string{"get", "--auto-login"}, on: true, timeout: loginTimeout},
		{env: "1", args: []string{"get", "--timeout", "5s"}, on: true, timeout: 5 * time.Second},
		{env: "1", args: []string{"list"}, on: true, timeout: defaultTimeout},
	} {
		args := tt.args
		if args[0] == "token" {
			args = []string{"get"}
		}
		c := newCLI(t, map[string]string{"PRUSA_AUTO_LOGIN": tt.env}, nil, args...)
		if c.s.autoLogin != tt.on || c.s.timeout != tt.timeout {
			t.Errorf("PRUSA_AUTO_LOGIN=%q %q: on %v, budget %s; want %v, %s", tt.env, tt.args, c.s.autoLogin, c.s.timeout, tt.on, tt.timeout)
		}
	}
}

// TestAutoLoginKeepsAnotherUsersProfile: an auto-login whose account is
// not the one a profile holds (refresh --all over a machine's profiles,
// or a mistyped --profile, with one PRUSA_EMAIL) does not replace that
// profile's tokens: login_required, and the stored set stays as it was.
func TestAutoLoginKeepsAnotherUsersProfile(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	other := srv.Mint(userEmail, -time.Minute)
	srv.RevokeAll(userEmail) // its refresh answers invalid_grant
	stored := storeIn(t, filepath.Join(home, ".config"), "home", other)
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_AUTO_LOGIN": "1", "PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword} // no 2FA: logins in a row
	for _, args := range [][]string{{"get", "--profile", "home"}, {"refresh", "--all"}} {
		r := execHelper(t, home, vars, "", args...)
		if r.exit != 4 || !strings.Contains(r.stderr, `and profile "home" holds user 1530681's tokens: left them as they are`) {
			t.Fatalf("%v: exit %d stderr %q; want login_required, the profile's tokens kept", args, r.exit, r.stderr)
		}
		if now, _ := os.ReadFile(tokenFile(home, "home")); !bytes.Equal(now, stored) {
			t.Fatalf("%v: the profile's set was replaced by another user's", args)
		}
	}
}

// TestRefreshSaysWhenItLoggedIn: refresh and refresh --all with auto-login
// on say "logged in again" where the refresh token was refused and a login
// took its place (a new session), not "refreshed".
func TestRefreshSaysWhenItLoggedIn(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_AUTO_LOGIN": "1", "PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"refresh"}, "Logged in again to profile default: the access token is valid until "},
		{[]string{"refresh", "--all"}, "default: logged in again (the access token is valid until "},
	} {
		home := t.TempDir()
		storeIn(t, filepath.Join(home, ".config"), "default", srv.Mint("plain@example.com", -time.Minute))
		srv.RevokeAll("plain@example.com")
		if r := execHelper(t, home, vars, "", tt.args...); r.exit != 0 || !strings.HasPrefix(r.stderr, tt.want) {
			t.Fatalf("%v: exit %d stderr %q, want %q", tt.args, r.exit, r.stderr, tt.want)
		}
		if r := execHelper(t, home, vars, "", tt.args...); r.exit != 0 || strings.Contains(r.stderr, "logged in again") || strings.Contains(r.stderr, "Logged in again") {
			t.Fatalf("%v again: exit %d stderr %q, want a plain refresh", tt.args, r.exit, r.stderr)
		}
	}
}
