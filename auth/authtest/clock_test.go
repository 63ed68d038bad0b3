package authtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// dateOf fetches u and returns the answer's Date header as a time.
func dateOf(t *testing.T, method, u string) time.Time {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		t.Fatalf("%s %s: Date %q: %v", method, u, resp.Header.Get("Date"), err)
	}
	return d
}

// TestClockOffset: with the server's clock 3 h ahead or behind, the Date
// header of every kind of answer and the exp of the tokens it mints (by
// Mint and by a login's code exchange) are 3 h ahead or behind.
func TestClockOffset(t *testing.T) {
	local := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: local}
	for _, offset := range []time.Duration{3 * time.Hour, -3 * time.Hour} {
		t.Run(offset.String(), func(t *testing.T) {
			srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}, Now: clk.Now, ClockOffset: offset})
			defer srv.Close()
			want := local.Add(offset)
			if !srv.Now().Equal(want) || srv.ClockOffset() != offset {
				t.Fatalf("Now %v, ClockOffset %v; want %v, %v", srv.Now(), srv.ClockOffset(), want, offset)
			}
			srv.FailToken(authtest.Fault{Status: 503})
			for _, r := range [][2]string{
				{"GET", "/o/authorize/"}, {"GET", "/login/"}, {"GET", "/login/totp/"}, {"POST", "/o/token/"}, // the 503 fault
				{"POST", "/o/token/"}, {"GET", "/o/token/"}, {"GET", "/api/v1/me/"}, {"GET", "/nowhere"}, {"GET", "/_emulator/clock"},
			} {
				if got := dateOf(t, r[0], srv.URL+r[1]); !got.Equal(want) {
					t.Errorf("%s %s: Date %v, want %v", r[0], r[1], got, want)
				}
			}

			minted := srv.Mint(email, 0)
			b := newBrowser(t, srv)
			verifier := auth.NewVerifier()
			resp, body := exchange(t, srv, url.Values{"grant_type": {"authorization_code"}, "code": {b.code(auth.S256Challenge(verifier))}, "code_verifier": {verifier}, "redirect_uri": {auth.DefaultRedirectURI}})
			if resp.StatusCode != 200 {
				t.Fatalf("code exchange: %d", resp.StatusCode)
			}
			if d, err := http.ParseTime(resp.Header.Get("Date")); err != nil || !d.Equal(want) {
				t.Errorf("token answer Date %q, want %v", resp.Header.Get("Date"), want)
			}
			exchanged, err := auth.ParseTokenSet([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			for name, set := range map[string]auth.TokenSet{"Mint": minted, "code exchange": *exchanged} {
				access, _ := auth.ParseJWT(set.AccessToken)
				refresh, _ := auth.ParseJWT(set.RefreshToken)
				if !access.Expiry.Time.Equal(want.Add(7200 * time.Second)) {
					t.Errorf("%s: access exp %v, want %v", name, access.Expiry.Time, want.Add(7200*time.Second))
				}
				if !refresh.Expiry.Time.Equal(want.Add(30 * 24 * time.Hour)) {
					t.Errorf("%s: refresh exp %v, want %v", name, refresh.Expiry.Time, want.Add(30*24*time.Hour))
				}
			}
		})
	}
}

// TestSetClockOffset moves the clock of a running server: expiry checks of
// codes and refresh tokens follow it, and so do the minted tokens.
func TestSetClockOffset(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}, Now: clk.Now, RefreshTTL: time.Hour})
	defer srv.Close()
	b := newBrowser(t, srv)
	verifier := auth.NewVerifier()
	code := b.code(auth.S256Challenge(verifier))

	srv.SetClockOffset(61 * time.Second) // the code lives 60 s by the server's clock
	if srv.ClockOffset() != 61*time.Second {
		t.Fatalf("ClockOffset %v", srv.ClockOffset())
	}
	resp, body := exchange(t, srv, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {auth.DefaultRedirectURI}})
	if resp.StatusCode != 400 || body != `{"error": "invalid_grant"}` {
		t.Fatalf("a code 61 s old by the server's clock: %d %s", resp.StatusCode, body)
	}

	srv.SetClockOffset(0)
	set := srv.Mint(email, 0)
	srv.SetClockOffset(2 * time.Hour) // past the refresh token's hour and the access token's 7200 s
	if srv.ValidRefreshToken(set.RefreshToken) || srv.ValidAccessToken(set.AccessToken) {
		t.Fatal("tokens expired by the server's clock still count as valid")
	}
	resp, body = exchange(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {set.RefreshToken}})
	if resp.StatusCode != 400 || body != `{"error": "invalid_grant"}` {
		t.Fatalf("a refresh token expired by the server's clock: %d %s", resp.StatusCode, body)
	}
	access, _ := auth.ParseJWT(srv.Mint(email, 0).AccessToken)
	if want := clk.Now().Add(2*time.Hour + 7200*time.Second); !access.Expiry.Time.Equal(want) {
		t.Fatalf("minted after SetClockOffset: exp %v, want %v", access.Expiry.Time, want)
	}
}

// TestClockOffsetTOTP: the server checks TOTP codes by its own clock, so a
// code computed from a local clock 3 h off is refused and one from the
// server's time (its Date header) is accepted.
func TestClockOffsetTOTP(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password, TOTPSecret: secret}}, ClockOffset: 3 * time.Hour})
	defer srv.Close()
	key, _ := auth.DecodeTOTPSecret(secret)
	login := func(at func() time.Time) error {
		c := &auth.Client{AccountURL: srv.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "test"}
		_, err := c.Login(context.Background(), auth.LoginInput{Email: email, Password: password, TOTP: func(context.Context, int, time.Duration) (string, error) {
			return auth.TOTP(key, auth.TOTPStep(at()), auth.TOTPDigits), nil
		}})
		return err
	}
	if err := login(time.Now); !errors.Is(err, auth.ErrInvalidTOTP) {
		t.Fatalf("a code from the local clock, 3 h behind the server's: %v, want ErrInvalidTOTP", err)
	}
	if err := login(func() time.Time { return dateOf(t, "GET", srv.URL+"/login/") }); err != nil {
		t.Fatalf("a code from the server's Date header: %v", err)
	}
}

// TestClockSetBackKeepsTOTPWorking: after a login, the clock set back 3 h
// does not lock the account out until it catches up: the record of the
// last TOTP step used follows the clock.
func TestClockSetBackKeepsTOTPWorking(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password, TOTPSecret: secret}}})
	defer srv.Close()
	key, _ := auth.DecodeTOTPSecret(secret)
	login := func() error {
		c := &auth.Client{AccountURL: srv.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "test"}
		_, err := c.Login(context.Background(), auth.LoginInput{Email: email, Password: password, TOTP: func(context.Context, int, time.Duration) (string, error) {
			return auth.TOTP(key, auth.TOTPStep(srv.Now()), auth.TOTPDigits), nil
		}})
		return err
	}
	if err := login(); err != nil {
		t.Fatalf("first login: %v", err)
	}
	srv.SetClockOffset(-3 * time.Hour)
	if err := login(); err != nil {
		t.Fatalf("a login after the clock was set back: %v", err)
	}
}

// TestControlEndpoint: /_emulator/clock exists only with Options.Control,
// and sets the offset.
func TestControlEndpoint(t *testing.T) {
	off := authtest.NewServer(authtest.Options{})
	defer off.Close()
	resp, err := http.Post(off.URL+"/_emulator/clock?offset=3h", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || off.ClockOffset() != 0 || off.Count(authtest.KindOther) != 1 {
		t.Fatalf("without Control: %d, offset %v", resp.StatusCode, off.ClockOffset())
	}

	srv := authtest.NewServer(authtest.Options{Control: true})
	defer srv.Close()
	post := func(body string, query string) (int, map[string]string) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/_emulator/clock"+query, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("answer %q: %v", b, err)
		}
		return resp.StatusCode, m
	}
	if code, m := post("", "?offset=-3h"); code != 200 || m["offset"] != "-3h0m0s" || srv.ClockOffset() != -3*time.Hour {
		t.Fatalf("offset=-3h: %d %v", code, m)
	}
	if code, m := post("offset=90m", ""); code != 200 || m["offset"] != "1h30m0s" || srv.ClockOffset() != 90*time.Minute {
		t.Fatalf("form offset=90m: %d %v", code, m)
	}
	for _, bad := range []string{"", "?offset=", "?offset=3", "?offset=tomorrow"} {
		if code, m := post("", bad); code != 400 || m["error"] == "" || srv.ClockOffset() != 90*time.Minute {
			t.Fatalf("%q: %d %v, offset now %v", bad, code, m, srv.ClockOffset())
		}
	}
	if code, m := post("", "?offset=0"); code != 200 || m["offset"] != "0s" {
		t.Fatalf("offset=0: %d %v", code, m)
	}
	resp, err = http.Get(srv.URL + "/_emulator/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || srv.Count(authtest.KindControl) != 8 {
		t.Fatalf("unknown control path: %d, %d control requests counted", resp.StatusCode, srv.Count(authtest.KindControl))
	}
}

// TestSetClockOffsetConcurrent moves the clock while requests are served
// (for the race detector).
func TestSetClockOffsetConcurrent(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}})
	defer srv.Close()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range 20 {
				srv.SetClockOffset(time.Duration(i*j) * time.Minute)
			}
		}()
		go func() {
			defer wg.Done()
			for range 5 {
				srv.Mint(email, 0)
				if resp, err := http.Get(srv.URL + "/login/"); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	srv.SetClockOffset(-time.Hour)
	if d := dateOf(t, "GET", srv.URL+"/login/"); d.After(time.Now().Add(-59 * time.Minute)) {
		t.Fatalf("after SetClockOffset(-1h) the Date header is %v, local time %v", d, time.Now().UTC())
	}
}
