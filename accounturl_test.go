package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// TestRefreshTokenStaysWithItsServer: the tokens a login at one account
// server (here an emulator on loopback) brought are refreshed there and
// nowhere else. Run against another server (account.prusa3d.com, the
// default: trying it would be a network_error here), get and refresh try
// no request, answer login_required naming both servers with a hint, and
// leave the stored set as it was; auto-login does not log in there either.
// Back at the first server, in another spelling, the set refreshes.
func TestRefreshTokenStaysWithItsServer(t *testing.T) {
	issuer := newServer(t, authtest.Options{FirstAccessTTL: 30 * time.Second}) // inside get's margin: every get refreshes
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
		{nil, []string{"get", "--debug"}},
		{nil, []string{"get", "--format", "token", "--debug"}},
		{map[string]string{"PRUSA_ACCOUNT_URL": auth.DefaultAccountURL + "/"}, []string{"get", "--format", "header", "--debug"}},
		{nil, []string{"--account-url", auth.DefaultAccountURL, "refresh", "--debug"}},
		{nil, []string{"refresh", "--all", "--debug"}},
		// Nor a login there: the password is not sent to it either.
		{map[string]string{"PRUSA_AUTO_LOGIN": "1", "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}, []string{"get", "--debug"}},
	} {
		r := execHelper(t, home, run.vars, "", run.args...)
		if r.exit != 4 {
			t.Fatalf("%v: exit %d, want 4 (login required, no request tried); stderr %q", run.args, r.exit, r.stderr)
		}
		if strings.Contains(r.stderr, "POST") || strings.Contains(r.stderr, "GET") {
			t.Fatalf("%v: a request was tried: %q", run.args, r.stderr)
		}
		if run.args[0] == "get" && !slices.Contains(run.args, "--format") { // token and header print nothing on an error
			var doc errorDoc
			if json.Unmarshal([]byte(r.stdout), &doc) != nil || doc.Code != "login_required" ||
				!strings.Contains(doc.Message, issuer.URL) || !strings.Contains(doc.Message, auth.DefaultAccountURL) {
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
	// Not due, a keep-alive here passes (another timer, run with the
	// issuer's URL, keeps it alive), and says where it refreshes.
	r = execHelper(t, home, nil, "", "refresh", "--all", "--within", "240h")
	if r.exit != 0 || !strings.Contains(r.stderr, "default: not due") || !strings.Contains(r.stderr, "it is refreshed only at "+issuer.URL) {
		t.Fatalf("refresh --all --within 240h: exit %d, stderr %q", r.exit, r.stderr)
	}
	// status judges the tokens alone (the access token lasts 29 s), and
	// says where they refresh.
	r = execHelper(t, home, nil, "", "status")
	if r.exit != 0 || !strings.Contains(r.stdout, "Server:   "+issuer.URL+", not this run's "+auth.DefaultAccountURL+": refreshed only with --account-url "+issuer.URL) {
		t.Fatalf("status against the other server: %d %q", r.exit, r.stdout)
	}
	if now, _ := os.ReadFile(tokenFile(home, "default")); string(now) != string(stored) {
		t.Fatal("the stored set changed")
	}

	// At the issuing server, in another spelling, the set refreshes.
	r = execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": strings.ToUpper(issuer.URL[:4]) + issuer.URL[4:] + "/"}, "", "get", "--format", "token")
	if r.exit != 0 || !issuer.ValidAccessToken(strings.TrimSpace(r.stdout)) || issuer.Count(authtest.KindTokenRefresh) != 1 {
		t.Fatalf("get at the issuing server: %d %q, %d refreshes", r.exit, r.stderr, issuer.Count(authtest.KindTokenRefresh))
	}
	now, _ := os.ReadFile(tokenFile(home, "default"))
	if json.Unmarshal(now, &set) != nil || set["account_url"] != issuer.URL {
		t.Fatalf("the refreshed set records account_url %v, want %s", set["account_url"], issuer.URL)
	}
}

// TestOtherServerGetsNothing: a set from account.prusa3d.com, run against
// a local server, sends that server nothing at all, whatever state its
// refresh token is in: no refresh, and no auto-login either (that would
// send the password there). status still exits by the tokens (a valid
// refresh token: 0).
func TestOtherServerGetsNothing(t *testing.T) {
	other := newServer(t, authtest.Options{Users: []authtest.User{{Email: "other@example.com", Password: "CANARY-pw-other"}}})
	for _, tt := range []struct {
		name    string
		refresh time.Time // zero: no refresh token
	}{
		{"valid refresh token", time.Now().Add(24 * time.Hour)},
		{"expired refresh token", time.Now().Add(-time.Hour)},
		{"no refresh token", time.Time{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			set := canarySet(time.Now().Add(-time.Minute), tt.refresh)
			if tt.refresh.IsZero() {
				delete(set, "refresh_token")
			}
			set["account_url"] = auth.DefaultAccountURL
			stored := storeIn(t, filepath.Join(home, ".config"), "default", set)
			vars := map[string]string{"PRUSA_ACCOUNT_URL": other.URL}
			login := map[string]string{"PRUSA_ACCOUNT_URL": other.URL, "PRUSA_AUTO_LOGIN": "1", "PRUSA_EMAIL": "other@example.com", "PRUSA_PASSWORD": "CANARY-pw-other"}
			for _, run := range []struct {
				vars map[string]string
				args []string
			}{
				{vars, []string{"get"}},
				{login, []string{"get"}},
				{login, []string{"get", "--format", "token"}},
				{login, []string{"refresh"}},
			} {
				r := execHelper(t, home, run.vars, "", run.args...)
				if r.exit != 4 || (run.args[0] == "get" && len(run.args) == 1 && !strings.Contains(r.stdout, `"code":"login_required"`)) {
					t.Fatalf("%v: %d %q %q, want login_required", run.args, r.exit, r.stdout, r.stderr)
				}
				if !strings.Contains(r.stderr, "--account-url "+auth.DefaultAccountURL) {
					t.Fatalf("%v: stderr %q, want the hint to name the set's server", run.args, r.stderr)
				}
			}
			wantStatus := 0
			if !tt.refresh.After(time.Now()) {
				wantStatus = 4
			}
			if r := execHelper(t, home, vars, "", "status", "--json"); r.exit != wantStatus {
				t.Fatalf("status: %d %q, want exit %d", r.exit, r.stdout, wantStatus)
			}
			if n := len(other.Requests()); n != 0 {
				t.Fatalf("the other server got %d requests, want none", n)
			}
			if now, _ := os.ReadFile(tokenFile(home, "default")); string(now) != string(stored) {
				t.Fatal("the stored set changed")
			}
		})
	}
}

// TestLoopbackServersAreOne: loopback account URLs are this machine's
// emulators, whose ports change: a set from one is refreshed at another
// (a closed port there is a network_error, as ever), and at localhost for
// 127.0.0.1.
func TestLoopbackServersAreOne(t *testing.T) {
	srv := newServer(t, authtest.Options{FirstAccessTTL: 30 * time.Second})
	home := t.TempDir()
	r := execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}, "", "login", "--store", "file")
	if r.exit != 0 {
		t.Fatalf("login: %d %q", r.exit, r.stderr)
	}
	if r := execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": "http://127.0.0.1:1"}, "", "get"); r.exit != 75 || !strings.Contains(r.stdout, `"code":"network_error"`) {
		t.Fatalf("get at a closed loopback port: %d %q, want network_error", r.exit, r.stdout)
	}
	local := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	if r := execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": local}, "", "get"); r.exit != 0 || srv.Count(authtest.KindTokenRefresh) != 1 {
		t.Fatalf("get at %s: %d %q", local, r.exit, r.stderr)
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

// TestLoopbackAccountURLSkipsTheProxy: with HTTP_PROXY and HTTPS_PROXY
// set, a refresh at a loopback account URL spelt http://LOCALHOST (which
// Go's proxy rules take for another host) goes straight to the server:
// the proxy sees no request, so no refresh token through it in clear.
func TestLoopbackAccountURLSkipsTheProxy(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer proxy.Close()
	srv := newServer(t, authtest.Options{})
	u, _ := url.Parse(srv.URL)
	upper := "http://LOCALHOST:" + u.Port()
	home := t.TempDir()
	set := srv.Mint(userEmail, 30*time.Second) // inside get's margin: get refreshes
	storeIn(t, filepath.Join(home, ".config"), "default", set)
	vars := map[string]string{"PRUSA_ACCOUNT_URL": upper, "HTTP_PROXY": proxy.URL, "HTTPS_PROXY": proxy.URL, "http_proxy": proxy.URL}
	r := execHelper(t, home, vars, "", "get", "--store", "file", "--format", "token")
	if r.exit != 0 || strings.TrimSpace(r.stdout) == set.AccessToken || proxied.Load() != 0 {
		t.Fatalf("get: exit %d, %d requests through the proxy, stderr %q; want a refreshed token and none", r.exit, proxied.Load(), r.stderr)
	}
	assertNoTokens(t, "stderr", r.stderr, set.AccessToken, set.RefreshToken)
}
