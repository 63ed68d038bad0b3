package main

import (
	"encoding/json"
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
	if !strings.Contains(p.stderr.String(), "PRUSA_TOKENS_JSON: the refresh token") || !strings.Contains(p.stderr.String(), "hint: unset PRUSA_TOKENS_JSON, then run: prusa-credential-helper login") {
		t.Fatalf("stderr: %q", p.stderr.String())
	}
	assertNoTokens(t, "stderr", p.stderr.String(), seed.AccessToken, seed.RefreshToken, seed.IDToken)
}
