package main

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// TestRefusedEnvSetSaysUnset (issue 11.12): a PRUSA_TOKENS_JSON whose
// refresh token the server refuses keeps get failing after any login, so
// the message names the variable and the hint says to unset it.
func TestRefusedEnvSetSaysUnset(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	seed := srv.Mint(userEmail, -time.Minute)
	srv.RevokeAll(userEmail)
	body, _ := json.Marshal(seed)
	p := newInProcess(t.TempDir(), map[string]string{
		"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file", "PRUSA_TOKENS_JSON": string(body),
	}, time.Now, nil)
	if code := p.run("", "get"); code != 4 {
		t.Fatalf("get: exit %d, want 4: %s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "PRUSA_TOKENS_JSON: the refresh token") || !strings.Contains(p.stderr.String(), "hint: give PRUSA_TOKENS_JSON a new token set, or unset it and run: prusa-credential-helper login") {
		t.Fatalf("stderr: %q", p.stderr.String())
	}
	assertNoTokens(t, "stderr", p.stderr.String(), seed.AccessToken, seed.RefreshToken, seed.IDToken)
}

// TestLoginHintServesTheCommand: the login a login_required hint names,
// run as it stands, serves the command that gave it: the hint repeats the
// flags that say where tokens are (not settings from the environment,
// which the login sees too).
func TestLoginHintServesTheCommand(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	tokenFile := filepath.Join(t.TempDir(), "my tokens.json")
	for _, tt := range []struct {
		name string
		vars map[string]string
		args []string // of get
		hint string
	}{
		{"store flag", map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, []string{"get", "--store", "file", "--profile", "p1"}, "login --profile p1 --store file"},
		{"store from the environment", map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file"}, []string{"get", "--profile", "p2"}, "login --profile p2\n"},
		{"token file", map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, []string{"get", "--token-file", tokenFile}, "login --token-file '" + tokenFile + "'"},
		{"account URL", map[string]string{"PRUSA_CREDENTIAL_STORE": "file"}, []string{"get", "--account-url", srv.URL, "--profile", "p3"}, "login --profile p3 --account-url " + srv.URL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := execHelper(t, home, tt.vars, "", tt.args...)
			i := strings.Index(r.stderr, "hint: run: "+prog+" ")
			if r.exit != 4 || i < 0 || !strings.Contains(r.stderr, tt.hint) {
				t.Fatalf("get: exit %d, stderr %q; want a hint with %q", r.exit, r.stderr, tt.hint)
			}
			line := strings.TrimSpace(r.stderr[i+len("hint: run: "):])
			words, err := splitWords(line)
			if err != nil || words[0] != prog {
				t.Fatalf("hint %q: %v", line, err)
			}
			vars := maps.Clone(tt.vars)
			vars["PRUSA_EMAIL"], vars["PRUSA_PASSWORD"] = "plain@example.com", userPassword
			if r := execHelper(t, home, vars, "", words[1:]...); r.exit != 0 {
				t.Fatalf("the hinted %q: exit %d %s", line, r.exit, r.stderr)
			}
			if r := execHelper(t, home, tt.vars, "", tt.args...); r.exit != 0 {
				t.Fatalf("get after the hinted login: exit %d %s", r.exit, r.stderr)
			}
		})
	}
}
