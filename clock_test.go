package main

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// fakeClock is a local clock the test moves by hand; the emulator's clock
// is the same clock plus its offset, so both move together.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestServerClockOffset (issue 12.5): with the account server's clock 3 h
// ahead of the local one, or 3 h behind, a login followed by 20 gets makes
// no refresh (today's tokens neither look expired nor valid too long), and
// the token's real expiry, by the server's clock, makes exactly one. The
// TOTP code of the login comes from PRUSA_TOTP_SECRET by the server's
// clock: a code by the local one would be refused.
func TestServerClockOffset(t *testing.T) {
	for _, offset := range []time.Duration{3 * time.Hour, -3 * time.Hour, 88000 * time.Hour, -56 * 365 * 24 * time.Hour} {
		t.Run(offset.String(), func(t *testing.T) {
			clk := &fakeClock{t: time.Now().Truncate(time.Second)}
			srv := newServer(t, authtest.Options{Now: clk.Now, ClockOffset: offset})
			vars := map[string]string{
				"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file",
				"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret,
			}
			p := newInProcess(t.TempDir(), vars, clk.Now, nil)
			if code := p.run("", "login"); code != 0 {
				t.Fatalf("login: exit %d: %s", code, p.stderr.String())
			}
			var first string
			for i := range 20 {
				if code := p.run("", "get"); code != 0 {
					t.Fatalf("get %d: exit %d: %s", i, code, p.stderr.String())
				}
				var out struct {
					AccessToken string `json:"access_token"`
				}
				json.Unmarshal(p.stdout.Bytes(), &out)
				if first == "" {
					first = out.AccessToken
				} else if out.AccessToken != first {
					t.Fatalf("get %d gave another token", i)
				}
				clk.Add(time.Minute)
			}
			if n := srv.Count(authtest.KindTokenRefresh); n != 0 {
				t.Fatalf("%d refreshes during 20 gets of a fresh token, want 0", n)
			}
			// 20 minutes have passed; the token lives 2 h by the server's
			// clock. Past its expiry (less the 60 s margin), one refresh.
			clk.Add(2*time.Hour - 20*time.Minute - 30*time.Second)
			for i := range 5 {
				if code := p.run("", "get"); code != 0 {
					t.Fatalf("get %d after expiry: exit %d: %s", i, code, p.stderr.String())
				}
			}
			if n := srv.Count(authtest.KindTokenRefresh); n != 1 {
				t.Fatalf("%d refreshes after the real expiry, want 1", n)
			}
			if !srv.ValidAccessToken(strings.TrimSpace(tokenOf(t, p.stdout.String()))) {
				t.Fatal("the token handed out after the refresh is not valid at the server")
			}
			p.run("", "get", "--debug")
			if !strings.Contains(p.stderr.String(), "clock offset "+offset.String()) {
				t.Fatalf("--debug does not show the clock offset %s: %q", offset, p.stderr.String())
			}
		})
	}
}

func tokenOf(t *testing.T, stdout string) string {
	t.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("get's answer: %v", err)
	}
	return out.AccessToken
}

// TestTOTPWaitIsAnnounced (issue 11.13): a second login within one TOTP
// step, with PRUSA_TOTP_SECRET, waits for the next step and says so on
// stderr instead of waiting in silence. Both clocks are shifted so that the
// step ends about five seconds in.
func TestTOTPWaitIsAnnounced(t *testing.T) {
	now := time.Now()
	into := now.Sub(now.Truncate(30 * time.Second))
	shift := 25*time.Second - into // now+shift is 25 s into a step
	clock := func() time.Time { return time.Now().Add(shift) }
	srv := newServer(t, authtest.Options{Now: clock})
	vars := map[string]string{
		"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file",
		"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret,
	}
	p := newInProcess(t.TempDir(), vars, clock, nil)
	if code := p.run("", "login"); code != 0 {
		t.Fatalf("first login: exit %d: %s", code, p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), "waiting") {
		t.Fatalf("the first login waited: %q", p.stderr.String())
	}
	if code := p.run("", "login"); code != 0 {
		t.Fatalf("second login: exit %d: %s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "TOTP code of this 30 s step was refused (used by another login, or a wrong secret); waiting") {
		t.Fatalf("the second login's wait was not announced: %q", p.stderr.String())
	}
	assertNoTokens(t, "stderr", p.stderr.String(), userPassword)
}

// TestAutoLoginTOTPWaitIsQuiet: a get whose auto-login waits for the next
// TOTP step succeeds with nothing on stderr (a successful get writes only
// the warnings a human must see; --debug would show the wait).
func TestAutoLoginTOTPWaitIsQuiet(t *testing.T) {
	now := time.Now()
	shift := 27*time.Second - now.Sub(now.Truncate(30*time.Second)) // 27 s into a step
	clock := func() time.Time { return time.Now().Add(shift) }
	srv := newServer(t, authtest.Options{Now: clock})
	vars := map[string]string{
		"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file", "PRUSA_AUTO_LOGIN": "1",
		"PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret,
	}
	p := newInProcess(t.TempDir(), vars, clock, nil)
	if code := p.run("", "get", "--profile", "a"); code != 0 {
		t.Fatalf("first get: exit %d: %s", code, p.stderr.String())
	}
	if code := p.run("", "get", "--profile", "b"); code != 0 || p.stderr.String() != "" {
		t.Fatalf("second get, in the same step: exit %d, stderr %q; want 0 and nothing", code, p.stderr.String())
	}
	assertNoTokens(t, "stderr", p.stderr.String(), userPassword)
}

// TestStatusByServerClockAndPrintable: status judges and shows expiry by
// the server's clock (the set's clock offset), and prints no control
// character a claim carries (issue 11.3: no output line holds a CR or LF).
func TestStatusByServerClockAndPrintable(t *testing.T) {
	now := time.Now()
	// The server's clock is 3 h behind ours: by it, an access token whose
	// exp is an hour behind our clock still has two hours to live.
	set := canarySet(now.Add(-time.Hour), now.Add(20*24*time.Hour))
	set["clock_offset"] = -10800
	set["id_token"] = jwtFor(map[string]any{"jti": "CANARY-id", "sub": "1530681", "exp": now.Unix(),
		"user": map[string]any{"id": 1530681, "email": "evil@x.y\r\nAccess:   valid forever\x1b[31m"}})
	config := t.TempDir()
	storeIn(t, config, "default", set)
	p := newInProcess(config, map[string]string{"PRUSA_CREDENTIAL_STORE": "file"}, time.Now, nil)
	if code := p.run("", "status"); code != 0 {
		t.Fatalf("status: exit %d, want 0 (valid by the server's clock): %s%s", code, p.stdout.String(), p.stderr.String())
	}
	out := p.stdout.String()
	if strings.ContainsAny(out, "\r\x1b") || strings.Count(out, "\n") != 5 || !strings.Contains(out, "left") {
		t.Fatalf("status output:\n%q", out)
	}
	assertNoTokens(t, "status", out+p.stderr.String(), setTokens(set)...)
}
