package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

func goodTOTP() string {
	key, _ := auth.DecodeTOTPSecret(userTOTPSecret)
	return auth.TOTP(key, auth.TOTPStep(time.Now()), auth.TOTPDigits)
}

// TestInteractiveLoginAsksAgain: an empty email or password is asked
// again; after "invalid email or password", both are asked again (the
// email may be what was mistyped) and the login runs again; and a TOTP
// entry that is not 6 digits is refused without using up a try (a code
// with spaces is fine).
func TestInteractiveLoginAsksAgain(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	good := goodTOTP()
	tty := &fakeTerminal{answers: map[string][]string{
		"Prusa Account email": {"", "CANARY-typo@example.com", userEmail},
		"Password for":        {"", "CANARY-wrong-pw", userPassword},
		"TOTP code":           {"12 34", "abcdef", "", good[:3] + " " + good[3:]},
	}}
	p := newInProcess(t.TempDir(), map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, time.Now, tty)
	exit := p.run("", "login", "--store", "file")
	if exit != 0 || p.stderr.String() != "Logged in as canary@example.com (profile default, stored in file)\n" {
		t.Fatalf("exit %d stderr %q", exit, p.stderr.String())
	}
	shown := tty.shown.String()
	for text, n := range map[string]int{
		"the email is empty, try again":        1,
		"the password is empty, try again":     1,
		"invalid email or password, try again": 1,
		"a TOTP code is 6 digits, try again":   3,
		"invalid TOTP code, try again":         0,
	} {
		if got := strings.Count(shown, text); got != n {
			t.Errorf("%q shown %d times, want %d; the terminal showed:\n%s", text, got, n, shown)
		}
	}
	if n := srv.Count(authtest.KindLoginPost); n != 2 {
		t.Errorf("%d password posts, want 2", n)
	}
	if n := len(tty.answers["Prusa Account email"]); n != 0 {
		t.Errorf("%d scripted emails left unasked, want 0", n)
	}
	if n := srv.Count(authtest.KindTOTPPost); n != 1 {
		t.Errorf("%d TOTP posts, want 1", n)
	}
	if strings.Contains(p.stderr.String(), "CANARY") || strings.Contains(p.stderr.String(), good) {
		t.Fatal("a secret reached stderr")
	}
}

// TestInteractiveLoginKeepsTheEmail: asked again after a wrong password,
// the email prompt offers the one typed, and Enter keeps it.
func TestInteractiveLoginKeepsTheEmail(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	tty := &fakeTerminal{answers: map[string][]string{
		"Prusa Account email: ":                     {userEmail},
		"Prusa Account email [" + userEmail + "]: ": {""},
		"Password for":                              {"CANARY-wrong-pw", userPassword},
		"TOTP code":                                 {goodTOTP()},
	}}
	p := newInProcess(t.TempDir(), map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, time.Now, tty)
	if exit := p.run("", "login", "--store", "file"); exit != 0 {
		t.Fatalf("exit %d stderr %q; the terminal showed:\n%s", exit, p.stderr.String(), tty.shown.String())
	}
	for prompt, left := range tty.answers {
		if len(left) != 0 {
			t.Errorf("%q: %d scripted answers left unasked", prompt, len(left))
		}
	}
	if n := srv.Count(authtest.KindLoginPost); n != 2 {
		t.Errorf("%d password posts, want 2", n)
	}
}

// TestInteractiveLoginPasswordTries: a wrong password typed at the prompt
// is asked again up to 3 tries in all; one from the environment or stdin
// is not asked again.
func TestInteractiveLoginPasswordTries(t *testing.T) {
	t.Run("prompted", func(t *testing.T) {
		srv := newServer(t, authtest.Options{})
		tty := &fakeTerminal{answers: map[string][]string{"Password for": {"CANARY-1", "CANARY-2", "CANARY-3", userPassword}}}
		p := newInProcess(t.TempDir(), map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail}, time.Now, tty)
		exit := p.run("", "login", "--store", "file")
		if exit != 4 || p.stderr.String() != prog+": invalid email or password\nhint: check them, and that --account-url / PRUSA_ACCOUNT_URL is the account server\n" || srv.Count(authtest.KindLoginPost) != 3 {
			t.Fatalf("exit %d stderr %q posts %d", exit, p.stderr.String(), srv.Count(authtest.KindLoginPost))
		}
		if got := strings.Count(tty.shown.String(), "invalid email or password, try again"); got != 2 {
			t.Fatalf("%d retries announced, want 2", got)
		}
	})
	t.Run("from the environment", func(t *testing.T) {
		srv := newServer(t, authtest.Options{})
		vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": "CANARY-wrong"}
		p := newInProcess(t.TempDir(), vars, time.Now, noTerminal{t})
		if exit := p.run("", "login", "--store", "file"); exit != 4 || srv.Count(authtest.KindLoginPost) != 1 {
			t.Fatalf("exit %d posts %d", exit, srv.Count(authtest.KindLoginPost))
		}
	})
	t.Run("from stdin", func(t *testing.T) {
		srv := newServer(t, authtest.Options{})
		vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail}
		p := newInProcess(t.TempDir(), vars, time.Now, noTerminal{t})
		if exit := p.run("CANARY-wrong\n", "login", "--store", "file", "--password-stdin"); exit != 4 || srv.Count(authtest.KindLoginPost) != 1 {
			t.Fatalf("exit %d posts %d", exit, srv.Count(authtest.KindLoginPost))
		}
	})
}

// TestLoginWarnsOfShadowingEnvironment: after a login, a PRUSA_TOKEN or
// PRUSA_TOKENS_JSON that get would keep using instead is named, with what
// to do.
func TestLoginWarnsOfShadowingEnvironment(t *testing.T) {
	set := canarySet(time.Now().Add(time.Hour), time.Now().Add(24*time.Hour))
	js, _ := json.Marshal(set)
	for name, value := range map[string]string{"PRUSA_TOKEN": set["access_token"].(string), "PRUSA_TOKENS_JSON": string(js)} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, authtest.Options{})
			vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword, name: value}
			p := newInProcess(t.TempDir(), vars, time.Now, nil)
			exit := p.run("", "login", "--store", "file")
			want := "Logged in as plain@example.com (profile default, stored in file)\n" +
				prog + ": warning: " + name + " is set, so get will keep using it instead of this login; unset it\n"
			if exit != 0 || p.stderr.String() != want {
				t.Fatalf("exit %d stderr %q", exit, p.stderr.String())
			}
			assertNoTokens(t, "stderr", p.stderr.String(), setTokens(set)...)
		})
	}
	srv := newServer(t, authtest.Options{})
	p := newInProcess(t.TempDir(), map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword}, time.Now, nil)
	if exit := p.run("", "login", "--store", "file"); exit != 0 || strings.Contains(p.stderr.String(), "warning") {
		t.Fatalf("without the variables: exit %d stderr %q", exit, p.stderr.String())
	}
}
