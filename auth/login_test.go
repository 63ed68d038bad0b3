package auth_test

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// Canary secrets: recognisable values that must never show up in an error,
// a log line or a query string.
const (
	canaryPassword = "CANARY-pw-7f3a9c"
	canaryEmail    = "canary@example.com"
	totpEmail      = "totp@example.com"
)

var canaryTOTPSecret = base32.StdEncoding.EncodeToString([]byte("CANARY-totp-seed-20b"))

func users() []authtest.User {
	return []authtest.User{
		{Email: canaryEmail, Password: canaryPassword},
		{Email: totpEmail, Password: canaryPassword, TOTPSecret: canaryTOTPSecret},
	}
}

// logSink collects debug lines for leak checks.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) Debugf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func newClient(srv *authtest.Server, log *logSink) *auth.Client {
	c := &auth.Client{
		HTTP:        srv.Client(),
		AccountURL:  srv.URL,
		ClientID:    auth.DefaultClientID,
		RedirectURI: auth.DefaultRedirectURI,
		UserAgent:   "prusa-credential-helper/test",
	}
	if log != nil {
		c.Debugf = log.Debugf
	}
	return c
}

// assertNoSecrets fails if text holds a secret, or any of a JWT's parts.
func assertNoSecrets(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(text, s) {
			t.Errorf("%s leaks a secret (%d chars)", where, len(s))
		}
		if parts := strings.Split(s, "."); len(parts) == 3 {
			for _, p := range parts {
				if len(p) >= 8 && strings.Contains(text, p) {
					t.Errorf("%s leaks part of a JWT", where)
				}
			}
		}
	}
}

func totpCode(t *testing.T, now time.Time) string {
	key, err := auth.DecodeTOTPSecret(canaryTOTPSecret)
	if err != nil {
		t.Fatal(err)
	}
	return auth.TOTP(key, auth.TOTPStep(now), 6)
}

// TestLoginVariants logs in against every server variant PRUSA-ACCOUNT.md
// lists as reported or unknown, with and without 2FA, over HTTP and HTTPS.
func TestLoginVariants(t *testing.T) {
	nexts := map[string]authtest.NextStyle{"next-plain": authtest.NextPlain, "next-encoded": authtest.NextEncoded, "next-omitted": authtest.NextOmitted}
	for nextName, next := range nexts {
		for _, abs := range []bool{false, true} {
			for _, direct := range []bool{false, true} {
				for _, tls := range []bool{false, true} {
					for _, email := range []string{canaryEmail, totpEmail} {
						name := fmt.Sprintf("%s/absolute=%v/direct=%v/tls=%v/%s", nextName, abs, direct, tls, email)
						t.Run(name, func(t *testing.T) {
							t.Parallel()
							srv := authtest.NewServer(authtest.Options{Users: users(), Next: next, AbsoluteLocation: abs, DirectCallback: direct, TLS: tls, FloatExp: abs, NumericSub: direct})
							defer srv.Close()
							testLogin(t, srv, email)
						})
					}
				}
			}
		}
	}
}

func testLogin(t *testing.T, srv *authtest.Server, email string) {
	log := &logSink{}
	c := newClient(srv, log)
	var codes []string
	in := auth.LoginInput{Email: email, Password: canaryPassword, TOTP: func(ctx context.Context, attempt int, _ time.Duration) (string, error) {
		code := totpCode(t, time.Now())
		codes = append(codes, code)
		return code, nil
	}}
	set, err := c.Login(context.Background(), in)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if err := set.Validate(); err != nil {
		t.Fatalf("token set: %v", err)
	}
	if !srv.ValidAccessToken(set.AccessToken) || !srv.ValidRefreshToken(set.RefreshToken) {
		t.Fatal("the server does not know the tokens it returned")
	}
	id, err := auth.ParseJWT(set.IDToken)
	if err != nil || id.User == nil || id.User.Email != email {
		t.Fatalf("id token: %v %+v", err, id)
	}
	if wantTOTP := email == totpEmail; (len(codes) == 1) != wantTOTP || srv.Count(authtest.KindTOTPPost) != len(codes) {
		t.Fatalf("TOTP asked %d times, posted %d times (2FA account: %v)", len(codes), srv.Count(authtest.KindTOTPPost), wantTOTP)
	}
	if n := srv.Count(authtest.KindTokenCode); n != 1 {
		t.Fatalf("%d code exchanges, want 1", n)
	}
	for _, r := range srv.Requests() {
		if r.Header.Get("User-Agent") != "prusa-credential-helper/test" {
			t.Errorf("%s %s: User-Agent %q", r.Method, r.Path, r.Header.Get("User-Agent"))
		}
		if r.Method == http.MethodPost && r.Kind != authtest.KindTokenCode {
			if r.Header.Get("Origin") != srv.URL || !strings.HasPrefix(r.Header.Get("Referer"), srv.URL+r.Path) {
				t.Errorf("%s %s: Origin %q Referer %q", r.Method, r.Path, r.Header.Get("Origin"), r.Header.Get("Referer"))
			}
		}
		if r.Kind == authtest.KindLoginPost && r.Form["csrfmiddlewaretoken"] == nil {
			t.Errorf("the login post lacks the hidden csrfmiddlewaretoken field")
		}
		secrets := append([]string{canaryPassword, set.AccessToken, set.RefreshToken, set.IDToken}, codes...)
		assertNoSecrets(t, "query of "+r.Path, r.RawQuery, secrets...)
	}
	assertNoSecrets(t, "debug log", log.String(), append([]string{canaryPassword, set.AccessToken, set.RefreshToken, set.IDToken}, codes...)...)
}

// TestLoginNeverFetchesRedirectURI points the redirect URI at the emulator
// itself and checks that the callback is never requested.
func TestLoginNeverFetchesRedirectURI(t *testing.T) {
	// Nothing listens on port 1: fetching the callback would fail the login.
	for _, direct := range []bool{false, true} {
		srv := authtest.NewServer(authtest.Options{Users: users(), RedirectURI: "http://127.0.0.1:1/login/auth-callback", DirectCallback: direct})
		c := newClient(srv, nil)
		c.RedirectURI = "http://127.0.0.1:1/login/auth-callback"
		if _, err := c.Login(context.Background(), auth.LoginInput{Email: canaryEmail, Password: canaryPassword}); err != nil {
			t.Fatalf("Login: %v", err)
		}
		srv.Close()
	}
	// The same, with a redirect URI on the emulator's own origin.
	self := authtest.NewServer(authtest.Options{Users: users()})
	defer self.Close()
	self2 := authtest.NewServer(authtest.Options{Users: users(), RedirectURI: self.URL + "/login/auth-callback"})
	defer self2.Close()
	c := newClient(self2, nil)
	c.RedirectURI = self.URL + "/login/auth-callback"
	if _, err := c.Login(context.Background(), auth.LoginInput{Email: canaryEmail, Password: canaryPassword}); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if n := self.Count(authtest.KindOther); n != 0 {
		t.Fatalf("the redirect URI was fetched %d times", n)
	}
}

func TestLoginErrors(t *testing.T) {
	badCode := func(ctx context.Context, attempt int, _ time.Duration) (string, error) { return "000000", nil }
	goodCode := func(ctx context.Context, attempt int, offset time.Duration) (string, error) {
		return totpCode(t, time.Now().Add(offset)), nil
	}
	tests := []struct {
		name  string
		opts  authtest.Options
		in    auth.LoginInput
		url   func(srv *authtest.Server) string
		want  error
		posts map[authtest.Kind]int
	}{
		{name: "wrong password", in: auth.LoginInput{Email: canaryEmail, Password: "CANARY-wrong-pw"}, want: auth.ErrInvalidCredentials, posts: map[authtest.Kind]int{authtest.KindLoginPost: 1, authtest.KindTokenCode: 0}},
		{name: "unknown email", in: auth.LoginInput{Email: "nobody@example.com", Password: canaryPassword}, want: auth.ErrInvalidCredentials},
		{name: "wrong TOTP code, three tries", in: auth.LoginInput{Email: totpEmail, Password: canaryPassword, TOTP: badCode}, want: auth.ErrInvalidTOTP, posts: map[authtest.Kind]int{authtest.KindTOTPPost: 3, authtest.KindTokenCode: 0}},
		{name: "TOTP callback gives up", in: auth.LoginInput{Email: totpEmail, Password: canaryPassword, TOTP: func(ctx context.Context, attempt int, _ time.Duration) (string, error) {
			if attempt > 1 {
				return "", auth.ErrInvalidTOTP
			}
			return "000000", nil
		}}, want: auth.ErrInvalidTOTP, posts: map[authtest.Kind]int{authtest.KindTOTPPost: 1}},
		{name: "2FA account and no TOTP source", in: auth.LoginInput{Email: totpEmail, Password: canaryPassword}, want: auth.ErrInvalidTOTP, posts: map[authtest.Kind]int{authtest.KindTOTPPost: 0}},
		{name: "CSRF: Origin of another host", in: auth.LoginInput{Email: canaryEmail, Password: canaryPassword}, opts: authtest.Options{TrustedOrigin: "https://account.prusa3d.com"}, want: auth.ErrCSRF},
		{name: "localhost for 127.0.0.1", in: auth.LoginInput{Email: canaryEmail, Password: canaryPassword}, url: func(srv *authtest.Server) string {
			return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
		}},
		{name: "upper-case LOCALHOST, absolute redirects", in: auth.LoginInput{Email: totpEmail, Password: canaryPassword, TOTP: goodCode}, opts: authtest.Options{AbsoluteLocation: true}, url: func(srv *authtest.Server) string {
			return strings.Replace(srv.URL, "127.0.0.1", "LOCALHOST", 1)
		}},
		{name: "wrong client id", in: auth.LoginInput{Email: canaryEmail, Password: canaryPassword}, opts: authtest.Options{ClientID: "other"}, want: auth.ErrRequestRefused},
		{name: "unregistered redirect URI", in: auth.LoginInput{Email: canaryEmail, Password: canaryPassword}, opts: authtest.Options{RedirectURI: "https://example.com/cb"}, want: auth.ErrRequestRefused},
		{name: "an account URL with a path", in: auth.LoginInput{Email: canaryEmail, Password: canaryPassword}, url: func(srv *authtest.Server) string { return srv.URL + "/login/" }, want: auth.ErrRequestRefused},
		{name: "server gone", in: auth.LoginInput{Email: canaryEmail, Password: canaryPassword}, url: func(srv *authtest.Server) string {
			srv.Close()
			return srv.URL
		}, want: auth.ErrNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Users = users()
			srv := authtest.NewServer(opts)
			defer srv.Close()
			log := &logSink{}
			c := newClient(srv, log)
			if tt.url != nil {
				c.AccountURL = tt.url(srv)
			}
			_, err := c.Login(context.Background(), tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for k, n := range tt.posts {
				if got := srv.Count(k); got != n {
					t.Errorf("%s: %d requests, want %d", k, got, n)
				}
			}
			if err != nil {
				assertNoSecrets(t, "error", err.Error(), canaryPassword, "CANARY-wrong-pw", "000000")
			}
			assertNoSecrets(t, "debug log", log.String(), canaryPassword, "CANARY-wrong-pw", "000000")
		})
	}
}

// TestLoginTOTPStepReuse logs in twice within one TOTP time step with codes
// from the secret: the server refuses the second use of the step, and the
// callback's retry with the next step's code gets through.
func TestLoginTOTPStepReuse(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 26, 12, 0, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sleep := func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
		return nil
	}
	srv := authtest.NewServer(authtest.Options{Users: users(), Now: clock})
	defer srv.Close()
	c := newClient(srv, nil)
	c.Now = clock
	c.HTTP = &http.Client{Transport: dateFrom{srv.Client().Transport, clock}}
	for i := range 2 {
		next, err := auth.TOTPFromSecret(canaryTOTPSecret, clock, sleep, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Login(context.Background(), auth.LoginInput{Email: totpEmail, Password: canaryPassword, TOTP: next}); err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
	}
	if got := srv.Count(authtest.KindTOTPPost); got != 3 {
		t.Fatalf("%d TOTP posts, want 3 (one, then a refusal and a retry)", got)
	}
	if want := time.Date(2026, 11, 26, 12, 0, 30, 0, time.UTC); !clock().Equal(want) {
		t.Fatalf("clock at %v, want the start of the next step %v", clock(), want)
	}
}

// TestLoginServerClock: with the account server's clock 3 h ahead or
// behind, codes from a TOTP secret follow the server's clock (taken from
// the login pages' Date), and the set carries the offset.
func TestLoginServerClock(t *testing.T) {
	for _, skew := range []time.Duration{3 * time.Hour, -3 * time.Hour} {
		server := func() time.Time { return time.Now().Add(skew) }
		srv := authtest.NewServer(authtest.Options{Users: users(), Now: server})
		defer srv.Close()
		c := newClient(srv, nil)
		c.HTTP = &http.Client{Transport: dateFrom{srv.Client().Transport, server}}
		totp, err := auth.TOTPFromSecret(canaryTOTPSecret, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // no time to wait for a next step
		defer cancel()
		set, err := c.Login(ctx, auth.LoginInput{Email: totpEmail, Password: canaryPassword, TOTP: totp})
		if err != nil {
			t.Fatalf("server %v ahead: %v", skew, err)
		}
		if n := srv.Count(authtest.KindTOTPPost); n != 1 {
			t.Errorf("server %v ahead: %d TOTP posts, want 1", skew, n)
		}
		if d := set.ClockOffset - skew; d.Abs() > 2*time.Second {
			t.Errorf("server %v ahead: offset %v", skew, set.ClockOffset)
		}
	}
}

// dateFrom gives answers the Date header of a server whose clock is now.
type dateFrom struct {
	http.RoundTripper
	now func() time.Time
}

func (d dateFrom) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.RoundTripper.RoundTrip(r)
	if err == nil {
		resp.Header.Set("Date", d.now().UTC().Format(http.TimeFormat))
	}
	return resp, err
}

// TestLoginHostilePages drives Login against pages the emulator never
// serves: each must give its own error, never a panic.
func TestLoginHostilePages(t *testing.T) {
	const form = `<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="x"><input type="email" name="email"><input type="password" name="password"></form>`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"no form (a maintenance page)", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<html><body>Down for maintenance</body></html>`)
		}, auth.ErrUnexpectedPage},
		{"two password forms", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, form+form) }, auth.ErrUnexpectedPage},
		{"form without email field", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<form method="post"><input type="password" name="pw"></form>`)
		}, auth.ErrUnexpectedPage},
		{"form posting to another site", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<form method="post" action="https://evil.example/steal"><input name="email"><input type="password" name="password"></form>`)
		}, auth.ErrUnexpectedPage},
		{"redirect loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/o/authorize/", http.StatusFound) }, auth.ErrTooManyRedirects},
		{"redirect to another site", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://accounts.google.example/o/oauth2", http.StatusFound)
		}, auth.ErrUnexpectedPage},
		{"server error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }, auth.ErrServer},
		{"404", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }, auth.ErrRequestRefused},
		{"enormous page", func(w http.ResponseWriter, r *http.Request) {
			chunk := strings.Repeat("<div>", 1<<16)
			for range 80 {
				fmt.Fprint(w, chunk)
			}
		}, auth.ErrUnexpectedPage},
		{"deeply nested markup around the form", func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				fmt.Fprint(w, form) // the same form again: wrong password
				return
			}
			fmt.Fprint(w, strings.Repeat("<div><span>", 100000)+form)
		}, auth.ErrInvalidCredentials},
		{"state mismatch", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, auth.DefaultRedirectURI+"?code=abc&state=forged", http.StatusFound)
		}, auth.ErrStateMismatch},
		{"no state", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, auth.DefaultRedirectURI+"?code=abc", http.StatusFound)
		}, auth.ErrStateMismatch},
		{"authorization error", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, auth.DefaultRedirectURI+"?error=access_denied&state="+r.URL.Query().Get("state"), http.StatusFound)
		}, auth.ErrUnexpectedPage},
		{"forbidden post", func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				w.WriteHeader(403)
				return
			}
			fmt.Fprint(w, form)
		}, auth.ErrCSRF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(tt.handler)
			defer hs.Close()
			c := &auth.Client{HTTP: hs.Client(), AccountURL: hs.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "t"}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.Login(ctx, auth.LoginInput{Email: canaryEmail, Password: canaryPassword})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			assertNoSecrets(t, "error", err.Error(), canaryPassword)
		})
	}
}

// TestLoginHostilePagesSay: what Login says of pages the emulator never
// serves, and what it sends them.
func TestLoginHostilePagesSay(t *testing.T) {
	const password = `<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="x"><input type="email" name="email"><input type="password" name="password"></form>`
	var posts []string
	var mu sync.Mutex
	tests := []struct {
		name    string
		tls     bool
		handler func(host string) http.HandlerFunc
		want    string // in the message
		posts   int
	}{
		{"redirect to plain http", true, func(host string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://"+host+"/login/", http.StatusFound)
			}
		}, "redirected to plain http", 0},
		{"form posting over plain http", true, func(host string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, strings.Replace(password, `method="post"`, `method="post" action="http://`+host+`/login/"`, 1))
			}
		}, "the form posts to plain http", 0},
		{"form posting to another site", false, func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, strings.Replace(password, `method="post"`, `method="post" action="https://evil.example/steal"`, 1))
			}
		}, "the form posts to another site (evil.example)", 0},
		{"form posting to javascript:", false, func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, strings.Replace(password, `method="post"`, `method="post" action="javascript:void(0)"`, 1))
			}
		}, "the form posts to another site", 0},
		{"a one-time code field without a name", false, func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					fmt.Fprint(w, password)
					return
				}
				fmt.Fprint(w, `<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="x"><input autocomplete="one-time-code" inputmode="numeric"></form>`)
			}
		}, "the one-time code field has no name", 1},
		{"a long path with a bidi override", false, func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/o/") {
					http.Redirect(w, r, "/"+strings.Repeat("A", 60_000)+"%E2%80%AE", http.StatusFound)
					return
				}
				w.WriteHeader(500)
			}
		}, "GET /AAAA", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			posts = nil
			var hs *httptest.Server
			h := func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					r.ParseForm()
					mu.Lock()
					posts = append(posts, r.PostForm.Encode())
					mu.Unlock()
				}
				tt.handler(hs.Listener.Addr().String())(w, r)
			}
			if tt.tls {
				hs = httptest.NewTLSServer(http.HandlerFunc(h))
			} else {
				hs = httptest.NewServer(http.HandlerFunc(h))
			}
			defer hs.Close()
			c := &auth.Client{HTTP: hs.Client(), AccountURL: hs.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "t"}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			totp := func(context.Context, int, time.Duration) (string, error) { return "CANARY-code", nil }
			_, err := c.Login(ctx, auth.LoginInput{Email: canaryEmail, Password: canaryPassword, TOTP: totp})
			if !errors.Is(err, auth.ErrUnexpectedPage) && !errors.Is(err, auth.ErrServer) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one that says %q", err, tt.want)
			}
			if msg := err.Error(); len(msg) > 300 || strings.ContainsRune(msg, '\u202e') || strings.Contains(msg, "()") {
				t.Errorf("the message is %d bytes, or carries a bidi override: %.300q", len(msg), msg)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(posts) != tt.posts {
				t.Errorf("%d posts, want %d", len(posts), tt.posts)
			}
			assertNoSecrets(t, "error", err.Error(), canaryPassword, "CANARY-code")
			for _, p := range posts {
				if strings.Contains(p, "CANARY-code") {
					t.Errorf("a code was posted: %s", p)
				}
			}
		})
	}
}

func TestLoginInputRedacts(t *testing.T) {
	in := auth.LoginInput{Email: canaryEmail, Password: canaryPassword}
	for _, s := range []string{fmt.Sprint(in), fmt.Sprintf("%+v", in), fmt.Sprintf("%#v", in)} {
		assertNoSecrets(t, "LoginInput formatting", s, canaryPassword)
	}
}
