package authtest_test

import (
	"context"

	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

const (
	email    = "user@example.com"
	password = "CANARY-emulator-pw"
)

// clock is a settable clock for the emulator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// browser walks the login by hand, like a browser, to get an
// authorization code, so that the token endpoint can be tested alone.
type browser struct {
	t   *testing.T
	srv *authtest.Server
	hc  *http.Client
}

func newBrowser(t *testing.T, srv *authtest.Server) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, srv: srv, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(u string, form url.Values, origin string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return b.do(req)
}

// code logs in and returns an authorization code for challenge.
func (b *browser) code(challenge string) string {
	b.t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {auth.DefaultClientID}, "redirect_uri": {auth.DefaultRedirectURI}, "code_challenge_method": {"S256"}, "code_challenge": {challenge}}
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/o/authorize/?"+q.Encode(), nil)
	resp, _ := b.do(req)
	if strings.HasPrefix(resp.Header.Get("Location"), auth.DefaultRedirectURI) {
		return b.callbackCode(resp) // already logged in
	}
	login := b.srv.URL + resp.Header.Get("Location")
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/login/?next=/o/authorize/%3F") || !strings.Contains(loc, "%26response_type%3Dcode") {
		b.t.Fatalf("authorize redirected to %q, want Django's redirect_to_login", resp.Header.Get("Location"))
	}
	req, _ = http.NewRequest(http.MethodGet, login, nil)
	_, page := b.do(req)
	forms, err := auth.ParseForms(strings.NewReader(page))
	if err != nil || len(forms) == 0 {
		b.t.Fatalf("login page: %v", err)
	}
	vals := forms[0].Values()
	vals.Set("email", email)
	vals.Set("password", password)
	next, err := url.PathUnescape(vals.Get("next")) // rendered percent-encoded: decode once, as the SDK does
	if err != nil {
		b.t.Fatalf("next field %q: %v", vals.Get("next"), err)
	}
	vals.Set("next", next)
	resp, _ = b.post(login, vals, b.srv.URL)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("login post: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, b.srv.URL+resp.Header.Get("Location"), nil)
	resp, _ = b.do(req)
	return b.callbackCode(resp)
}

func (b *browser) callbackCode(resp *http.Response) string {
	b.t.Helper()
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || cb.Query().Get("code") == "" {
		b.t.Fatalf("no code in %q", resp.Header.Get("Location"))
	}
	if len(cb.Query().Get("code")) != 30 {
		b.t.Fatalf("code of %d characters, want 30", len(cb.Query().Get("code")))
	}
	return cb.Query().Get("code")
}

func exchange(t *testing.T, srv *authtest.Server, form url.Values) (*http.Response, string) {
	t.Helper()
	if form.Get("client_id") == "" {
		form.Set("client_id", auth.DefaultClientID)
	}
	resp, err := http.PostForm(srv.URL+"/o/token/", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestTokenEndpoint(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}, Now: clk.Now})
	defer srv.Close()
	b := newBrowser(t, srv)
	verifier := auth.NewVerifier()
	challenge := auth.S256Challenge(verifier)
	form := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {auth.DefaultRedirectURI}}
	}

	// The exact answer: status, headers, field order, spacing.
	code := b.code(challenge)
	resp, body := exchange(t, srv, form(code))
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %v", resp.StatusCode, resp.Header)
	}
	order := []string{`{"access_token": "`, `", "expires_in": 7200, "token_type": "Bearer", "scope": "basic_info connect user_operations email_lists openid", "refresh_token": "`, `", "shared_session_key": "`, `", "id_token": "`}
	rest := body
	for _, o := range order {
		i := strings.Index(rest, o)
		if i < 0 {
			t.Fatalf("answer lacks %q in order", o)
		}
		rest = rest[i+len(o):]
	}
	set, err := auth.ParseTokenSet([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	access, _ := auth.ParseJWT(set.AccessToken)
	if string(access.SessionID) != set.SharedSessionKey || access.App != "connect" || access.Type != "access" || access.ConnectID == "" || access.ID == "" {
		t.Fatalf("access claims %+v", access)
	}
	if !access.Expiry.Time.Equal(clk.Now().Add(7200 * time.Second)) {
		t.Fatalf("access exp %v", access.Expiry.Time)
	}
	if len(set.IDToken) < 2000 {
		t.Fatalf("id token of %d bytes; the real one is large", len(set.IDToken))
	}

	// Single use.
	resp, body = exchange(t, srv, form(code))
	if resp.StatusCode != 400 || body != `{"error": "invalid_grant"}` {
		t.Fatalf("reused code: %d %s", resp.StatusCode, body)
	}
	// PKCE: a missing verifier, a wrong one (which also spends the code).
	code = b.code(challenge)
	f := form(code)
	f.Del("code_verifier")
	if resp, body = exchange(t, srv, f); resp.StatusCode != 400 || body != `{"error": "invalid_request", "error_description": "Code verifier required."}` {
		t.Fatalf("no verifier: %d %s", resp.StatusCode, body)
	}
	f = form(code)
	f.Set("redirect_uri", "https://example.com/cb")
	if resp, body = exchange(t, srv, f); resp.StatusCode != 400 || body != `{"error": "invalid_request", "error_description": "Mismatching redirect URI."}` {
		t.Fatalf("redirect mismatch: %d %s", resp.StatusCode, body)
	}
	f = form(code)
	f.Set("code_verifier", auth.NewVerifier())
	if resp, body = exchange(t, srv, f); resp.StatusCode != 400 || body != `{"error": "invalid_grant"}` {
		t.Fatalf("wrong verifier: %d %s", resp.StatusCode, body)
	}
	// Codes live 60 s.
	code = b.code(challenge)
	clk.Advance(61 * time.Second)
	if resp, body = exchange(t, srv, form(code)); resp.StatusCode != 400 || body != `{"error": "invalid_grant"}` {
		t.Fatalf("expired code: %d %s", resp.StatusCode, body)
	}
	// Unknown client.
	f = form("x")
	f.Set("client_id", "nope")
	if resp, body = exchange(t, srv, f); resp.StatusCode != 401 || body != `{"error": "invalid_client"}` {
		t.Fatalf("unknown client: %d %s", resp.StatusCode, body)
	}
	// Refresh: rotation, then the spent token is refused.
	rf := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {set.RefreshToken}}
	resp, body = exchange(t, srv, rf)
	if resp.StatusCode != 200 || !strings.Contains(body, `"refresh_token": "`) {
		t.Fatalf("refresh: %d", resp.StatusCode)
	}
	if resp, body = exchange(t, srv, rf); resp.StatusCode != 400 || body != `{"error": "invalid_grant"}` {
		t.Fatalf("spent refresh: %d %s", resp.StatusCode, body)
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 2 {
		t.Fatalf("counted %d refreshes, want 2", n)
	}
}

func TestMe(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}, Now: clk.Now})
	defer srv.Close()
	set := srv.Mint(email, 0)
	get := func(h string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/me/", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(""); code != 401 || body != `{"detail": "Authentication credentials were not provided."}` {
		t.Fatalf("no token: %d %s", code, body)
	}
	if code, body := get("Bearer " + set.AccessToken); code != 200 || !strings.Contains(body, `"id":1530681`) {
		t.Fatalf("valid token: %d %s", code, body)
	}
	if code, _ := get("Bearer " + set.RefreshToken); code != 401 {
		t.Fatalf("refresh token accepted as access token: %d", code)
	}
	clk.Advance(7201 * time.Second)
	if code, _ := get("Bearer " + set.AccessToken); code != 401 {
		t.Fatalf("expired token: %d", code)
	}
}

func TestCSRFChecks(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}})
	defer srv.Close()
	b := newBrowser(t, srv)
	// No cookie yet: refused.
	resp, body := b.post(srv.URL+"/login/", url.Values{"email": {email}, "password": {password}}, "")
	if resp.StatusCode != 403 || !strings.Contains(body, "CSRF cookie not set.") {
		t.Fatalf("no cookie: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/login/?next=/", nil)
	_, page := b.do(req)
	forms, _ := auth.ParseForms(strings.NewReader(page))
	vals := forms[0].Values()
	vals.Set("email", email)
	vals.Set("password", password)
	// A foreign Origin: refused.
	if resp, body = b.post(srv.URL+"/login/", vals, "https://evil.example"); resp.StatusCode != 403 || !strings.Contains(body, "Origin checking failed") {
		t.Fatalf("foreign origin: %d", resp.StatusCode)
	}
	// A wrong form token: refused.
	bad := url.Values{}
	for k, v := range vals {
		bad[k] = v
	}
	bad.Set("csrfmiddlewaretoken", strings.Repeat("a", 64))
	if resp, _ = b.post(srv.URL+"/login/", bad, srv.URL); resp.StatusCode != 403 {
		t.Fatalf("bad token: %d", resp.StatusCode)
	}
	// Right: a session and a redirect to next.
	if resp, _ = b.post(srv.URL+"/login/", vals, srv.URL); resp.StatusCode != 302 || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestNewServerPanicsOnMisuse(t *testing.T) {
	for name, opts := range map[string]authtest.Options{
		"non-loopback address":  {Addr: "0.0.0.0:0"},
		"user without password": {Users: []authtest.User{{Email: "a@b.c"}}},
		"duplicate user":        {Users: []authtest.User{{Email: "a@b.c", Password: "x"}, {Email: "A@b.c", Password: "y"}}},
		"bad TOTP secret":       {Users: []authtest.User{{Email: "a@b.c", Password: "x", TOTPSecret: "!!"}}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			authtest.NewServer(opts).Close()
		}()
	}
}

func TestFaultHangEndsWithClient(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{})
	defer srv.Close()
	srv.FailToken(authtest.Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/o/token/", strings.NewReader("grant_type=refresh_token"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("a hanging answer arrived")
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Fatalf("counted %d, want 1", n)
	}
}
