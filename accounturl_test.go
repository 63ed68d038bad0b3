package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// TestRefreshTokenStaysWithItsServer: the tokens a login at one account
// server brought are refreshed there and nowhere else. Pointed at another
// server (a second emulator, standing in for one that someone else runs),
// get, refresh and status send it nothing at all, answer login_required
// naming both servers with a hint, and leave the stored set as it was; back
// at the first server, the set refreshes.
func TestRefreshTokenStaysWithItsServer(t *testing.T) {
	issuer := newServer(t, authtest.Options{FirstAccessTTL: 30 * time.Second}) // inside get's margin: every get refreshes
	other := newServer(t, authtest.Options{})
	home := t.TempDir()
	r := execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": issuer.URL, "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}, "", "login", "--store", "file")
	if r.exit != 0 {
		t.Fatalf("login: %d %q", r.exit, r.stderr)
	}
	stored, _ := os.ReadFile(tokenFile(home, "default"))
	var set map[string]any
	if err := json.Unmarshal(stored, &set); err != nil || set["account_url"] != issuer.URL {
		t.Fatalf("the login's set records account_url %v, want %s", set["account_url"], issuer.URL)
	}
	tokens := setTokens(set)

	for _, run := range []struct {
		vars map[string]string
		args []string
	}{
		{map[string]string{"PRUSA_ACCOUNT_URL": other.URL}, []string{"get"}},
		{map[string]string{"PRUSA_ACCOUNT_URL": other.URL + "/"}, []string{"get", "--format", "token"}},
		{nil, []string{"--account-url", other.URL, "get", "--format", "header"}},
		{map[string]string{"PRUSA_ACCOUNT_URL": other.URL}, []string{"refresh"}},
		{map[string]string{"PRUSA_ACCOUNT_URL": other.URL}, []string{"refresh", "--all"}},
		// Nor a login there: the password is not sent to it either.
		{map[string]string{"PRUSA_ACCOUNT_URL": other.URL, "PRUSA_AUTO_LOGIN": "1", "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}, []string{"get"}},
	} {
		r := execHelper(t, home, run.vars, "", run.args...)
		if r.exit != 4 {
			t.Fatalf("%v: exit %d, want 4 (login required); stderr %q", run.args, r.exit, r.stderr)
		}
		if run.args[len(run.args)-1] == "get" {
			var doc errorDoc
			if json.Unmarshal([]byte(r.stdout), &doc) != nil || doc.Code != "login_required" ||
				!strings.Contains(doc.Message, issuer.URL) || !strings.Contains(doc.Message, other.URL) {
				t.Fatalf("%v: %q, want login_required naming both servers", run.args, r.stdout)
			}
		}
		hint := strings.Contains(r.stderr, "hint: to use them, set --account-url "+issuer.URL)
		if !strings.Contains(r.stderr, issuer.URL) || !hint && !slices.Contains(run.args, "--all") { // refresh --all: a line per profile
			t.Fatalf("%v: stderr %q, want the issuing server named, and a hint", run.args, r.stderr)
		}
		if strings.Contains(r.stderr, userPassword) {
			t.Fatalf("%v: the password shows on stderr", run.args)
		}
		assertNoTokens(t, "stderr", r.stderr, tokens...)
		assertNoTokens(t, "stdout", r.stdout, tokens...)
	}
	// status: exit 0 while the access token lasts (29 s), as ever.
	r = execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": other.URL}, "", "status")
	if r.exit != 0 || !strings.Contains(r.stdout, "Server:   "+issuer.URL+", not this run's "+other.URL) {
		t.Fatalf("status against the other server: %d %q", r.exit, r.stdout)
	}
	if n := len(other.Requests()); n != 0 {
		t.Fatalf("the other server got %d requests, want none: %+v", n, other.Requests())
	}
	if now, _ := os.ReadFile(tokenFile(home, "default")); string(now) != string(stored) {
		t.Fatal("the stored set changed")
	}

	// At the issuing server, in any spelling of its URL, the set refreshes.
	r = execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": strings.ToUpper(issuer.URL[:4]) + issuer.URL[4:] + "/"}, "", "get", "--format", "token")
	if r.exit != 0 || !issuer.ValidAccessToken(strings.TrimSpace(r.stdout)) || issuer.Count(authtest.KindTokenRefresh) != 1 {
		t.Fatalf("get at the issuing server: %d %q, %d refreshes", r.exit, r.stderr, issuer.Count(authtest.KindTokenRefresh))
	}
	now, _ := os.ReadFile(tokenFile(home, "default"))
	if json.Unmarshal(now, &set) != nil || set["account_url"] != issuer.URL {
		t.Fatalf("the refreshed set records account_url %v, want %s", set["account_url"], issuer.URL)
	}
}

// TestOtherServerNeedsALogin: with the access token expired, a set from
// another account server is a login for get and status alike, and get
// tries no request (the run's server is a closed port: trying would be a
// network_error); at its own server's URL, get does try.
func TestOtherServerNeedsALogin(t *testing.T) {
	home := t.TempDir()
	set := canarySet(time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
	set["account_url"] = "http://127.0.0.1:2"
	storeIn(t, filepath.Join(home, ".config"), "default", set)
	elsewhere := map[string]string{"PRUSA_ACCOUNT_URL": "http://127.0.0.1:1"}
	if r := execHelper(t, home, elsewhere, "", "get"); r.exit != 4 || !strings.Contains(r.stdout, `"code":"login_required"`) {
		t.Fatalf("get: %d %q %q", r.exit, r.stdout, r.stderr)
	}
	r := execHelper(t, home, elsewhere, "", "status", "--json")
	if r.exit != 4 || !strings.Contains(r.stdout, `"login_required":true`) {
		t.Fatalf("status: %d %q", r.exit, r.stdout)
	}
	r = execHelper(t, home, elsewhere, "", "status")
	if r.exit != 4 || !strings.Contains(r.stdout, "Server:   http://127.0.0.1:2, not this run's http://127.0.0.1:1") ||
		!strings.Contains(r.stdout, "(or run with --account-url http://127.0.0.1:2 to use these tokens)") || r.stderr != "" {
		t.Fatalf("status: %d %q %q", r.exit, r.stdout, r.stderr)
	}
	if r := execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": "http://127.0.0.1:2"}, "", "get"); r.exit != 75 || !strings.Contains(r.stdout, `"code":"network_error"`) {
		t.Fatalf("get at the set's own server: %d %q, want network_error", r.exit, r.stdout)
	}
}

// TestUnboundSetRefreshesAnywhere: a set that records no account server (one
// given to store, as before sets recorded it) refreshes at the account URL
// of the run, and from then on records it.
func TestUnboundSetRefreshesAnywhere(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	b, _ := json.Marshal(srv.Mint(userEmail, -time.Minute))
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}
	if r := execHelper(t, home, vars, string(b), "store", "--store", "file"); r.exit != 0 {
		t.Fatalf("store: %d %q", r.exit, r.stderr)
	}
	if r := execHelper(t, home, vars, "", "get"); r.exit != 0 || srv.Count(authtest.KindTokenRefresh) != 1 {
		t.Fatalf("get: %d %q", r.exit, r.stderr)
	}
	var set map[string]any
	now, _ := os.ReadFile(tokenFile(home, "default"))
	if json.Unmarshal(now, &set) != nil || set["account_url"] != srv.URL {
		t.Fatalf("after a refresh the set records account_url %v, want %s", set["account_url"], srv.URL)
	}
}
