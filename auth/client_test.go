package auth

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// tokenServer answers POST /o/token/ with handler, and GET /o/authorize/
// with a redirect straight to the redirect URI, so that Login goes to the
// code exchange at once.
func tokenServer(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/o/authorize/":
			http.Redirect(w, r, DefaultRedirectURI+"?code=CANARY-code&state="+r.URL.Query().Get("state"), http.StatusFound)
		case "/o/token/":
			handler(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(hs.Close)
	return &Client{HTTP: hs.Client(), AccountURL: hs.URL, ClientID: DefaultClientID, RedirectURI: DefaultRedirectURI, UserAgent: "test"}
}

// storedSet is a set of user 1 whose access token has expired and whose
// refresh token is valid.
func storedSet(now time.Time) TokenSet {
	return TokenSet{
		AccessToken:  makeJWT(rs256, fmt.Sprintf(`{"sub":"1","exp":%d,"type":"access"}`, now.Add(-time.Minute).Unix())),
		RefreshToken: makeJWT(rs256, fmt.Sprintf(`{"sub":"1","exp":%d,"type":"refresh"}`, now.Add(30*24*time.Hour).Unix())),
	}
}

func answerJSON(sub string, exp time.Time, extra string) string {
	a := makeJWT(rs256, fmt.Sprintf(`{"sub":%q,"exp":%d,"type":"access"}`, sub, exp.Unix()))
	r := makeJWT(rs256, fmt.Sprintf(`{"sub":%q,"exp":%d,"type":"refresh"}`, sub, exp.Add(30*24*time.Hour).Unix()))
	return `{"access_token": "` + a + `", "refresh_token": "` + r + `"` + extra + `}`
}

// TestTokenEndpointRedirectsAreNotFollowed: a 307 from the token endpoint is
// a server error naming the status, for the refresh and the code exchange
// alike, and the place it points to is never contacted.
func TestTokenEndpointRedirectsAreNotFollowed(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		var contacted atomic.Int32
		elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			contacted.Add(1)
			fmt.Fprint(w, answerJSON("1", time.Now().Add(time.Hour), ""))
		}))
		defer elsewhere.Close()
		c := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/o/token/", status)
		})
		caller := c.HTTP
		set := storedSet(time.Now())
		_, rerr := c.Refresh(context.Background(), set)
		_, lerr := c.Login(context.Background(), LoginInput{Email: "a@b.c", Password: "CANARY-pw"})
		for what, err := range map[string]error{"refresh": rerr, "code exchange": lerr} {
			want := fmt.Sprintf("token endpoint answered %d %s (redirects are not followed)", status, http.StatusText(status))
			if !errors.Is(err, ErrServer) || !strings.Contains(err.Error(), want) {
				t.Errorf("%d, %s: err = %v, want ErrServer with %q", status, what, err, want)
			}
			if err != nil && (strings.Contains(err.Error(), set.RefreshToken) || strings.Contains(err.Error(), "CANARY")) {
				t.Errorf("%d, %s: the error quotes a secret", status, what)
			}
		}
		if n := contacted.Load(); n != 0 {
			t.Errorf("%d: the redirect's target was contacted %d times", status, n)
		}
		if c.HTTP != caller || caller.CheckRedirect != nil {
			t.Errorf("%d: the caller's http.Client was changed", status)
		}
	}
}

func TestRefreshRefusesAnotherUsersAnswer(t *testing.T) {
	c := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, answerJSON("1530999", time.Now().Add(time.Hour), `, "expires_in": 3600`))
	})
	set := storedSet(time.Now())
	set.AccessToken = makeJWT(rs256, fmt.Sprintf(`{"sub":"1530681","exp":%d}`, time.Now().Add(-time.Minute).Unix()))
	set.RefreshToken = makeJWT(rs256, fmt.Sprintf(`{"sub":"1530681","exp":%d}`, time.Now().Add(time.Hour).Unix()))
	got, err := c.Refresh(context.Background(), set)
	if !errors.Is(err, ErrServer) || errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("err = %v, want ErrServer", err)
	}
	if got.AccessToken != "" || got.RefreshToken != "" {
		t.Fatal("a set was returned to save")
	}
	if msg := err.Error(); strings.Contains(msg, "1530") || strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("message %q names a value or spans lines", msg)
	}
}

func TestTokenAnswerTokenType(t *testing.T) {
	for _, tt := range []struct {
		typ, want string
		ok        bool
	}{{"Bearer", "Bearer", true}, {"bearer", "Bearer", true}, {"", "", true}, {"mac", "", false}, {`Bearer\r\nX-Injected: evil`, "", false}} {
		c := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
			extra := ""
			if tt.typ != "" {
				extra = `, "token_type": "` + tt.typ + `"`
			}
			fmt.Fprint(w, answerJSON("1", time.Now().Add(time.Hour), extra))
		})
		got, err := c.Refresh(context.Background(), storedSet(time.Now()))
		switch {
		case tt.ok && (err != nil || got.TokenType != tt.want):
			t.Errorf("%q: %v, token type %q, want %q", tt.typ, err, got.TokenType, tt.want)
		case !tt.ok && (!errors.Is(err, ErrServer) || !strings.Contains(err.Error(), "token_type is not Bearer") || strings.ContainsAny(err.Error(), "\r\n")):
			t.Errorf("%q: err = %v, want a one-line ErrServer", tt.typ, err)
		}
	}
}

// TestNetworkErrorsAreOneLine: a refused connection (retried once) reads
// as the transport's own one-line error.
func TestNetworkErrorsAreOneLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := &Client{AccountURL: "http://" + addr, ClientID: DefaultClientID, RedirectURI: DefaultRedirectURI, UserAgent: "test"}
	_, rerr := c.Refresh(context.Background(), storedSet(time.Now()))
	_, lerr := c.Login(context.Background(), LoginInput{Email: "a@b.c", Password: "CANARY-pw"})
	for what, err := range map[string]error{"refresh": rerr, "login": lerr} {
		if !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s: err = %v, want ErrNetwork, connection refused", what, err)
		}
		if err != nil && (strings.ContainsAny(err.Error(), "\r\n") || strings.Contains(err.Error(), "no response")) {
			t.Errorf("%s: %q is not one plain line", what, err)
		}
	}
}

// TestClockOffsetFromTokenAnswers: with the server's clock 3 h ahead or
// behind, the refreshed set carries the offset, from exp − expires_in or
// from the Date header alone, and the refresh token is judged by the
// server's clock.
func TestClockOffsetFromTokenAnswers(t *testing.T) {
	for _, skew := range []time.Duration{3 * time.Hour, -3 * time.Hour} {
		for _, withExpiresIn := range []bool{true, false} {
			name := fmt.Sprintf("server %v, expires_in %v", skew, withExpiresIn)
			c := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
				server := time.Now().Add(skew)
				w.Header().Set("Date", server.UTC().Format(http.TimeFormat))
				extra := ""
				if withExpiresIn {
					extra = `, "expires_in": 7200`
				}
				fmt.Fprint(w, answerJSON("1", server.Add(7200*time.Second), extra))
			})
			set := storedSet(time.Now().Add(skew))
			got, err := c.Refresh(context.Background(), set)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if d := got.ClockOffset - skew; d.Abs() > 2*time.Second {
				t.Errorf("%s: offset %v, want about %v", name, got.ClockOffset, skew)
			}
			claims, _ := got.Access()
			exp := claims.Expiry.Time
			if left := exp.Sub(got.ServerNow(time.Now())); left < 7190*time.Second || left > 7210*time.Second {
				t.Errorf("%s: by the server's clock the new token has %v left, want about 2h", name, left)
			}
			// A refresh token that expires in an hour by the server's
			// clock is refreshable, whatever the local clock says.
			got.RefreshToken = makeJWT(rs256, fmt.Sprintf(`{"sub":"1","exp":%d}`, time.Now().Add(skew+time.Hour).Unix()))
			if err := c.Refreshable(got); err != nil {
				t.Errorf("%s: Refreshable = %v", name, err)
			}
			got.RefreshToken = makeJWT(rs256, fmt.Sprintf(`{"sub":"1","exp":%d}`, time.Now().Add(skew-time.Minute).Unix()))
			if err := c.Refreshable(got); !errors.Is(err, ErrRefreshTokenExpired) {
				t.Errorf("%s: Refreshable of a refresh token expired by the server's clock = %v", name, err)
			}
		}
	}
}

// TestClockOffsetDateResolution: a server whose clock agrees with ours
// sends a Date truncated to the second, and exp and expires_in in whole
// seconds; that gives no offset, so a fresh token does not look expired.
func TestClockOffsetDateResolution(t *testing.T) {
	for _, frac := range []time.Duration{time.Millisecond, 500 * time.Millisecond, 999 * time.Millisecond} {
		for _, withExpiresIn := range []bool{true, false} {
			local := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).Add(frac)
			c := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", local.Format(http.TimeFormat))
				extra := ""
				if withExpiresIn {
					extra = `, "expires_in": 61`
				}
				fmt.Fprint(w, answerJSON("1", local.Truncate(time.Second).Add(61*time.Second), extra))
			})
			c.Now = func() time.Time { return local }
			got, err := c.Refresh(context.Background(), storedSet(local))
			if err != nil {
				t.Fatal(err)
			}
			claims, _ := got.Access()
			exp := claims.Expiry.Time
			if got.ClockOffset != 0 || !ValidFor(exp, got.ServerNow(local), 60*time.Second) {
				t.Errorf("local time .%03d, expires_in %v: offset %v, token valid for %v", frac/time.Millisecond, withExpiresIn, got.ClockOffset, exp.Sub(got.ServerNow(local)))
			}
		}
	}
}

func TestEstimateOffset(t *testing.T) {
	local := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ skew, want time.Duration }{
		{0, 0}, {2 * time.Second, 0}, {-2 * time.Second, 0}, {1900 * time.Millisecond, 0},
		{2600 * time.Millisecond, 3 * time.Second}, {-3 * time.Second, -3 * time.Second},
		{3*time.Hour + 400*time.Millisecond, 3 * time.Hour}, {-3 * time.Hour, -3 * time.Hour},
		{-56 * 365 * 24 * time.Hour, -56 * 365 * 24 * time.Hour}, // a board that booted in 1970
	} {
		if got, ok := estimateOffset(local.Add(tt.skew), local); !ok || got != tt.want {
			t.Errorf("server %v ahead: estimate %v, %v, want %v", tt.skew, got, ok, tt.want)
		}
	}
	// No estimate at all beyond maxClockOffset: a set could not keep it.
	if got, ok := estimateOffset(local.Add(maxClockOffset+time.Hour), local); ok {
		t.Errorf("server %v ahead: estimate %v, want none", maxClockOffset+time.Hour, got)
	}
}

// TestRetrieveErrorCarriesNoServerText: an error answer's
// error_description, or an error field that is not an error code, is the
// server's own text and never reaches a message.
func TestRetrieveErrorCarriesNoServerText(t *testing.T) {
	for _, body := range []string{
		`{"error": "invalid_client", "error_description": "line1\nline2 SECRETBODY"}`,
		`{"error": "SECRETBODY\r\nX-Injected: evil"}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, body)
		}))
		c := &Client{AccountURL: srv.URL, ClientID: "c", RedirectURI: "https://example.com/cb", UserAgent: "test"}
		_, err := c.postToken(context.Background(), url.Values{"grant_type": {"refresh_token"}})
		srv.Close()
		if err == nil || strings.Contains(err.Error(), "SECRETBODY") || strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("body %q: error %q", body, err)
		}
	}
}

// TestTokenAnswerErrors: how token endpoint answers that are not a token
// set are read. An OAuth error is found whatever else is wrong with the
// body (invalid UTF-8 in its description, the name's case), as
// encoding/json finds a struct field.
func TestTokenAnswerErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
		code   string // RetrieveError.ErrorCode, or
		reason string // part of RetrieveError.Reason
	}{
		{"invalid_grant", 400, `{"error":"invalid_grant"}`, "invalid_grant", ""},
		{"invalid UTF-8 in the description", 400, "{\"error\":\"invalid_grant\",\"error_description\":\"neplatn\xfd\"}", "invalid_grant", ""},
		{"the name in another case", 400, `{"Error":"invalid_grant"}`, "invalid_grant", ""},
		{"an error that is not a code", 400, `{"error":"<b>no</b>"}`, "unknown_error", ""},
		{"an error on a 200", 200, `{"error":"invalid_grant","access_token":"x"}`, "invalid_grant", ""},
		{"no error, not 200", 500, `{"detail":"x"}`, "", "not an OAuth error answer"},
		{"HTML", 502, `<html>bad gateway</html>`, "", "answer is not JSON"},
		{"null on a 200", 200, `null`, "", "not a usable token set: not a JSON object"},
		{"invalid UTF-8 on a 200", 200, "{\"access_token\":\"\xff\"}", "", "not a usable token set: not valid UTF-8"},
		{"truncated on a 200", 200, `{"access_token":"ey`, "", "answer is not JSON: it is truncated"},
		{"trailing data on a 200", 200, `{"access_token":"x"} {}`, "", "answer is not JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTokenAnswer(&http.Response{StatusCode: tt.status, Header: http.Header{}}, []byte(tt.body))
			var re *RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RetrieveError", err)
			}
			if re.ErrorCode != tt.code || !strings.Contains(re.Reason, tt.reason) {
				t.Fatalf("code %q reason %q, want %q %q", re.ErrorCode, re.Reason, tt.code, tt.reason)
			}
		})
	}
}

// TestMalformedAnswersShowNothingTheServerSent: Go's HTTP client quotes a
// malformed status or header line in its error. A server, or something on
// the way, that echoes the request there must not put the refresh token,
// the password or the code into a message: such an answer is ErrServer
// (not retried: it came, and may have spent the refresh token), in one
// short line that shows none of it.
func TestMalformedAnswersShowNothingTheServerSent(t *testing.T) {
	loginPage := `<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="CANARY-csrf">` +
		`<input name="email"><input type="password" name="password"></form>`
	for _, shape := range []struct {
		name   string
		answer func(echo string) string
	}{
		{"status line", func(echo string) string { return "HTTP/1.1 " + echo + "\r\n\r\n" }},
		{"header line", func(echo string) string { return "HTTP/1.1 200 OK\r\n" + echo + "\r\n\r\n" }},
		{"2 MB status line", func(echo string) string { return "HTTP/1.1 " + strings.Repeat(echo, 2<<20/len(echo)+1) + "\r\n\r\n" }},
	} {
		t.Run(shape.name, func(t *testing.T) {
			var posts atomic.Int32
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					io.WriteString(w, loginPage)
					return
				}
				posts.Add(1)
				body, _ := io.ReadAll(r.Body)
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				defer conn.Close()
				buf.WriteString(shape.answer(string(body)))
				buf.Flush()
			}))
			defer hs.Close()
			c := &Client{AccountURL: hs.URL, ClientID: DefaultClientID, RedirectURI: DefaultRedirectURI, UserAgent: "test"}
			set := storedSet(time.Now())
			_, rerr := c.Refresh(context.Background(), set)
			refreshPosts := posts.Load()
			_, lerr := c.Login(context.Background(), LoginInput{Email: "canary@example.com", Password: "CANARY-pw"})
			if refreshPosts != 1 {
				t.Errorf("refresh: %d POSTs, want 1 (a malformed answer is not retried)", refreshPosts)
			}
			for what, err := range map[string]error{"refresh": rerr, "login": lerr} {
				if !errors.Is(err, ErrServer) || errors.Is(err, ErrNetwork) {
					t.Errorf("%s: err = %v, want ErrServer only", what, err)
				}
				if err == nil {
					continue
				}
				msg := err.Error()
				for _, secret := range []string{set.RefreshToken, "CANARY", "canary", "refresh_token=", "password="} {
					if strings.Contains(msg, secret) {
						t.Errorf("%s: the error shows %q: %.200q", what, secret, msg)
					}
				}
				if len(msg) > 200 || strings.ContainsAny(msg, "\r\n") {
					t.Errorf("%s: the error is not one short line: %d bytes", what, len(msg))
				}
			}
		})
	}
}

// TestProxyRefusalIsANetworkError: a proxy that refuses to connect (407 to
// CONNECT) never reached the account server: ErrNetwork, retried as a
// request that got no answer, with the proxy's reason in one line.
func TestProxyRefusalIsANetworkError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var connects atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(conn)); err == nil && req.Method == http.MethodConnect {
				connects.Add(1)
			}
			io.WriteString(conn, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
			conn.Close()
		}
	}()
	proxy, _ := url.Parse("http://" + l.Addr().String())
	c := &Client{AccountURL: "https://127.0.0.1:9", ClientID: DefaultClientID, RedirectURI: DefaultRedirectURI, UserAgent: "test",
		HTTP: &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}}
	_, err = c.Refresh(context.Background(), storedSet(time.Now()))
	if !errors.Is(err, ErrNetwork) || errors.Is(err, ErrServer) || !strings.Contains(err.Error(), "Proxy Authentication Required") {
		t.Fatalf("err = %v, want ErrNetwork naming the proxy's reason", err)
	}
	if n := connects.Load(); n != 2 {
		t.Fatalf("%d CONNECTs, want 2 (retried once: no answer came from the account server)", n)
	}
}

// TestLoopbackAndOrigin: localhost is loopback in any case (host names
// are), and origins compare as browsers write them.
func TestLoopbackAndOrigin(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST": true, "LocalHost": true, "127.0.0.5": true, "::1": true, "localhost.example.com": false, "10.0.0.1": false} {
		if IsLoopback(host) != want {
			t.Errorf("IsLoopback(%q) = %v", host, !want)
		}
	}
	if err := CheckAccountURL("http://LOCALHOST:8080"); err != nil {
		t.Errorf("http://LOCALHOST:8080: %v", err)
	}
	for raw, want := range map[string]string{
		"https://Account.Prusa3d.com:443/o/authorize/": "https://account.prusa3d.com",
		"https://account.prusa3d.com":                  "https://account.prusa3d.com",
		"HTTP://127.0.0.1:80/login/":                   "http://127.0.0.1",
		"http://127.0.0.1:8080":                        "http://127.0.0.1:8080",
	} {
		u, _ := url.Parse(raw)
		if got := originOf(u); got != want {
			t.Errorf("originOf(%s) = %s, want %s", raw, got, want)
		}
	}
}

// TestAnswerThatDoesNotFit: a set too large to keep loses what the helper
// can do without (unknown fields, then the identity token), so that the set
// saved can be read back; one too large even so is kept as it is. The fields
// the helper keeps about a set are never taken from an answer. All this
// for the refresh and the code exchange alike.
func TestAnswerThatDoesNotFit(t *testing.T) {
	pad := strings.Repeat("CANARY-pad", MaxSetSize/10)
	exp := time.Now().Add(time.Hour).Unix()
	bigID := makeJWT(rs256, fmt.Sprintf(`{"sub":"1","exp":%d,"user":{"pad":%q}}`, exp, pad))
	bigAccess := makeJWT(rs256, fmt.Sprintf(`{"sub":"1","exp":%d,"type":"access","pad":%q}`, exp, pad))
	for _, tt := range []struct {
		name, body string
		extra, id  bool // kept
		tooLarge   bool
	}{
		{"bookkeeping fields", answerJSON("1", time.Now().Add(time.Hour), `,"replaced_env_sha256":"CANARY-hash","clock_offset":3000,"account_url":"https://elsewhere.example","x":1`), true, false, false},
		{"a large unknown field", answerJSON("1", time.Now().Add(time.Hour), `,"x_pad":"`+pad+`"`), false, false, false},
		{"a large identity token", answerJSON("1", time.Now().Add(time.Hour), `,"x":1,"id_token":"`+bigID+`"`), false, false, false},
		{"a large access token", `{"access_token":"` + bigAccess + `","x":1}`, false, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			c := tokenServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Date"] = nil // no offset measured: the answer's clock_offset would stand
				fmt.Fprint(w, tt.body)
			})
			c.Debugf = func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }
			refreshed, rerr := c.Refresh(context.Background(), storedSet(time.Now()))
			loggedIn, lerr := c.Login(context.Background(), LoginInput{Email: "a@b.c", Password: "CANARY-pw"})
			for what, r := range map[string]struct {
				set TokenSet
				err error
			}{"refresh": {refreshed, rerr}, "code exchange": {loggedIn, lerr}} {
				if r.err != nil {
					t.Fatalf("%s: %v", what, r.err)
				}
				b, _ := json.Marshal(r.set)
				if _, err := ParseTokenSet(b); err != nil || len(b) > MaxSetSize != tt.tooLarge {
					t.Errorf("%s: the kept set (%d bytes) does not read back: %v", what, len(b), err)
				}
				if (len(r.set.Extra) > 0) != tt.extra || (r.set.IDToken != "") != tt.id {
					t.Errorf("%s: unknown fields kept %t, identity token kept %t; want %t, %t", what, len(r.set.Extra) > 0, r.set.IDToken != "", tt.extra, tt.id)
				}
				if r.set.ReplacedEnv != "" || r.set.AccountURL != c.AccountURL || r.set.ClockOffset > time.Minute {
					t.Errorf("%s: bookkeeping from the answer: replaced %q, account %q, offset %s", what, r.set.ReplacedEnv, r.set.AccountURL, r.set.ClockOffset)
				}
			}
			if strings.Contains(log.String(), "CANARY") {
				t.Error("the debug log quotes the answer")
			}
		})
	}
}

// TestPlainHTTPReachesLoopbackOnly: with an http:// account URL, the
// client connects to loopback addresses only, whatever the URL's host name
// resolved to; refused before a packet is sent (192.0.2.1 is TEST-NET-1).
func TestPlainHTTPReachesLoopbackOnly(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hs.Close()
	c := newHTTPClient("http://localhost:8080")
	resp, err := c.Get(hs.URL)
	if err != nil {
		t.Fatalf("loopback: %v", err)
	}
	resp.Body.Close()
	for _, addr := range []string{"192.0.2.1:9", "[2001:db8::1]:9"} {
		_, err := c.Get("http://" + addr + "/")
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("%s: err = %v, want a refusal", addr, err)
		}
	}
	if _, err := newHTTPClient("https://account.example").Transport.(*http.Transport).DialContext(context.Background(), "tcp", hs.Listener.Addr().String()); err != nil {
		t.Errorf("https: %v", err) // no such rule for https
	}
}

// TestProxyRefusalIsNotQuoted: a proxy that refuses the CONNECT with a
// status text that echoes the request (Proxy-Authorization and all) is
// named by its status alone.
func TestProxyRefusalIsNotQuoted(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(conn, "HTTP/1.1 407 CANARY-echo %s\r\nContent-Length: 0\r\n\r\n", r.Header.Get("Proxy-Authorization"))
	}))
	defer proxy.Close()
	c := &Client{AccountURL: "https://account.example", ClientID: DefaultClientID, RedirectURI: DefaultRedirectURI, UserAgent: "test"}
	pu, _ := url.Parse(proxy.URL)
	pu.User = url.UserPassword("u", "CANARY-proxy-password")
	c.httpClient().Transport.(*http.Transport).Proxy = http.ProxyURL(pu)
	_, err := c.Refresh(context.Background(), storedSet(time.Now()))
	if !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), "407") || strings.Contains(err.Error(), "CANARY") || strings.Contains(err.Error(), "dTpD") {
		t.Fatalf("err = %v, want ErrNetwork naming 407 and quoting nothing", err)
	}
}

// TestBudgetBeforeTheRequestIsATimeout: a budget that runs out before the
// request is sent (a TLS handshake that never ends) is a timeout, never an
// interrupt: onceSent passes on a cancellation alone.
func TestBudgetBeforeTheRequestIsATimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // accepted, never answered
		}
	}()
	c := &Client{AccountURL: "https://" + l.Addr().String(), ClientID: DefaultClientID, RedirectURI: DefaultRedirectURI, UserAgent: "test"}
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := c.Refresh(ctx, storedSet(time.Now()))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.DeadlineExceeded alone", err)
		}
	}
	// And an interrupt there, before the request has a connection, ends
	// it: nothing can have reached the server.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := c.Refresh(ctx, storedSet(time.Now())); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted in the handshake: err = %v, want context.Canceled", err)
	}
}
