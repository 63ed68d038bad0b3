package auth_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

func TestRefreshRotates(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{Users: users()})
	defer srv.Close()
	c := newClient(srv, nil)
	old := srv.Mint(canaryEmail, -time.Minute)
	got, err := c.Refresh(context.Background(), old)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got.AccessToken == old.AccessToken || got.RefreshToken == old.RefreshToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	if !srv.ValidAccessToken(got.AccessToken) || !srv.ValidRefreshToken(got.RefreshToken) || srv.ValidRefreshToken(old.RefreshToken) {
		t.Fatal("server state after rotation is wrong")
	}
	if got.SharedSessionKey != old.SharedSessionKey {
		t.Fatal("the session changed on refresh")
	}
	// The spent refresh token is refused at once.
	_, err = c.Refresh(context.Background(), old)
	if !errors.Is(err, auth.ErrInvalidGrant) || errors.Is(err, auth.ErrServer) {
		t.Fatalf("replay: err = %v, want ErrInvalidGrant only", err)
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 2 {
		t.Fatalf("%d refresh requests, want 2", n)
	}
}

func TestRefreshKeepsTokensTheAnswerLacks(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{Users: users(), NoRotation: true, OmitIDOnRefresh: true})
	defer srv.Close()
	old := srv.Mint(canaryEmail, -time.Minute)
	got, err := newClient(srv, nil).Refresh(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken == old.AccessToken || got.RefreshToken != old.RefreshToken || got.IDToken != old.IDToken {
		t.Fatal("merge lost the refresh or id token the answer lacked")
	}
}

func TestRefreshWithoutRequest(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{Users: users(), RefreshTTL: time.Second})
	defer srv.Close()
	c := newClient(srv, nil)
	set := srv.Mint(canaryEmail, 0)
	c.Now = func() time.Time { return time.Now().Add(time.Hour) }
	if _, err := c.Refresh(context.Background(), set); !errors.Is(err, auth.ErrRefreshTokenExpired) {
		t.Fatalf("expired refresh token: %v", err)
	}
	set.RefreshToken = ""
	if _, err := c.Refresh(context.Background(), set); !errors.Is(err, auth.ErrNoRefreshToken) {
		t.Fatalf("no refresh token: %v", err)
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 0 {
		t.Fatalf("%d requests, want none", n)
	}
}

// TestRefreshGoesToTheIssuerOnly: a set records the account server whose
// answer brought it, and its refresh token goes to no other; a set that
// records none refreshes anywhere, and records the server from then on.
// The two servers are reached by name (example.com, which httptest's
// certificate covers), not as loopback URLs, which all count as one.
func TestRefreshGoesToTheIssuerOnly(t *testing.T) {
	issuer := authtest.NewServer(authtest.Options{Users: users(), TLS: true})
	defer issuer.Close()
	other := authtest.NewServer(authtest.Options{Users: users(), TLS: true})
	defer other.Close()
	set, err := byName(issuer).Refresh(context.Background(), issuer.Mint(canaryEmail, -time.Minute))
	if err != nil || set.AccountURL != byName(issuer).AccountURL {
		t.Fatalf("Refresh: %v, account URL %q, want %q", err, set.AccountURL, byName(issuer).AccountURL)
	}
	c := byName(other)
	_, err = c.Refresh(context.Background(), set)
	var oe *auth.OtherServerError
	if !errors.As(err, &oe) || !errors.Is(err, auth.ErrOtherServer) || oe.Issuer != set.AccountURL || oe.Here != c.AccountURL {
		t.Fatalf("Refresh at another server: %v, want an OtherServerError", err)
	}
	if err := c.Refreshable(set); !errors.Is(err, auth.ErrOtherServer) {
		t.Fatalf("Refreshable at another server: %v", err)
	}
	if n := len(other.Requests()); n != 0 {
		t.Fatalf("the other server got %d requests, want none", n)
	}
	if _, err := byName(issuer).Refresh(context.Background(), set); err != nil {
		t.Fatalf("Refresh at the issuer: %v", err)
	}
}

// byName is a client of the TLS server srv that calls it
// https://example.com:PORT, and dials it on loopback.
func byName(srv *authtest.Server) *auth.Client {
	u, _ := url.Parse(srv.URL)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, u.Host)
	}
	c := newClient(srv, nil)
	c.HTTP, c.AccountURL = &http.Client{Transport: tr}, "https://example.com:"+u.Port()
	return c
}

func TestSameServer(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"https://account.prusa3d.com", "https://account.prusa3d.com", true},
		{"https://account.prusa3d.com", "https://account.prusa3d.com/", true},
		{"https://account.prusa3d.com", "HTTPS://Account.Prusa3D.com", true},
		{"https://account.prusa3d.com", "https://account.prusa3d.com:443", true},
		{"http://127.0.0.1:80", "http://127.0.0.1", true},
		{"https://account.prusa3d.com/sub", "https://account.prusa3d.com/sub/", true},
		{"https://account.prusa3d.com", "http://account.prusa3d.com", false},
		{"https://account.prusa3d.com", "https://account.prusa3d.com:8443", false},
		{"https://account.prusa3d.com", "https://account.prusa3d.com.evil.example", false},
		{"https://account.prusa3d.com", "https://evil.example", false},
		{"https://account.prusa3d.com/sub", "https://account.prusa3d.com/Sub", false},
		{"https://account.prusa3d.com:8443", "https://account.prusa3d.com:9443", false},
		// Loopback servers are this machine's tests and emulators: one.
		{"http://127.0.0.1:40713", "http://127.0.0.1:40714", true},
		{"http://127.0.0.1:40713", "http://localhost:40713", true},
		{"http://[::1]:80", "https://127.0.0.2", true},
		{"http://127.0.0.1:40713", "https://account.prusa3d.com", false},
		{"https://account.prusa3d.com", "http://localhost", false},
		// Lower-cased, these spell the first host; IDNA makes other hosts
		// of them (accounts.xn--internal-o0e.example).
		{"https://accounts.internal.example", "https://accounts.İnternal.example", false},
		{"https://strasse.example", "https://straẞe.example", false},
		{"https://straße.example", "https://straẞe.example", false},
	} {
		if got := auth.SameServer(tt.a, tt.b); got != tt.same {
			t.Errorf("SameServer(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

// TestRefreshFaults: each fault of the token endpoint gives its own error
// class, retries only where the request may be repeated, and never puts a
// token or the body in the error.
func TestRefreshFaults(t *testing.T) {
	retryAfter := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		name     string
		faults   []authtest.Fault
		want     error // nil: success
		notWant  error
		requests int
	}{
		{"500 is not retried", []authtest.Fault{{Status: 500, Body: "CANARY-body"}}, auth.ErrServer, auth.ErrInvalidGrant, 1},
		{"503 then success", []authtest.Fault{{Status: 503}}, nil, nil, 2},
		{"502 twice", []authtest.Fault{{Status: 502}, {Status: 502}}, auth.ErrServer, nil, 2},
		{"504 then success", []authtest.Fault{{Status: 504}}, nil, nil, 2},
		{"429 with Retry-After 1", []authtest.Fault{{Status: 429, Header: retryAfter("1")}}, nil, nil, 2},
		{"503 with Retry-After 60 is not waited for", []authtest.Fault{{Status: 503, Header: retryAfter("60")}}, auth.ErrServer, nil, 1},
		{"reset before the answer, then success", []authtest.Fault{{Reset: true}}, nil, nil, 2},
		{"reset twice", []authtest.Fault{{Reset: true}, {Reset: true}}, auth.ErrNetwork, nil, 2},
		{"reset mid-answer is not retried", []authtest.Fault{{ResetMidBody: true, AfterProcessing: true}}, auth.ErrNetwork, nil, 1},
		{"200 with HTML", []authtest.Fault{{Status: 200, Body: "<html>CANARY-body</html>"}}, auth.ErrServer, nil, 1},
		{"200 with truncated JSON", []authtest.Fault{{Status: 200, Body: `{"access_token": "ey`}}, auth.ErrServer, nil, 1},
		{"200 carrying error", []authtest.Fault{{Status: 200, Body: `{"error": "invalid_grant"}`}}, auth.ErrInvalidGrant, nil, 1},
		{"200 with a malformed access token", []authtest.Fault{{Status: 200, Body: `{"access_token": "CANARY.x.y"}`}}, auth.ErrServer, nil, 1},
		{"invalid_grant", []authtest.Fault{{Status: 400, Body: `{"error": "invalid_grant"}`}}, auth.ErrInvalidGrant, auth.ErrServer, 1},
		{"invalid_client", []authtest.Fault{{Status: 401, Body: `{"error": "invalid_client"}`}}, nil, nil, 1},
		{"400 with HTML", []authtest.Fault{{Status: 400, Body: "<h1>Bad Request</h1>"}}, auth.ErrServer, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := authtest.NewServer(authtest.Options{Users: users()})
			defer srv.Close()
			log := &logSink{}
			c := newClient(srv, log)
			old := srv.Mint(canaryEmail, -time.Minute)
			srv.FailToken(tt.faults...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := c.Refresh(ctx, old)
			if n := srv.Count(authtest.KindTokenRefresh); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			secrets := []string{old.AccessToken, old.RefreshToken, old.IDToken, got.AccessToken, got.RefreshToken, "CANARY"}
			assertNoSecrets(t, "debug log", log.String(), secrets...)
			if tt.want == nil && tt.name != "invalid_client" {
				if err != nil {
					t.Fatalf("err = %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatal("err = nil")
			}
			assertNoSecrets(t, "error", err.Error(), secrets...)
			if tt.name == "invalid_client" {
				var re *auth.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.StatusCode != 401 || errors.Is(err, auth.ErrServer) || errors.Is(err, auth.ErrInvalidGrant) {
					t.Fatalf("err = %v, want a RetrieveError invalid_client", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.notWant != nil && errors.Is(err, tt.notWant) {
				t.Fatalf("err = %v, is also %v", err, tt.notWant)
			}
		})
	}
}

func TestRefreshTimeout(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{Users: users()})
	defer srv.Close()
	srv.FailToken(authtest.Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := newClient(srv, nil).Refresh(ctx, srv.Mint(canaryEmail, -time.Minute))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, auth.ErrNetwork) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestTokenEndpointRefusesGET(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{})
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/o/token/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET /o/token/: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestRefreshInterruptedOnceSent: an interrupt (ctx cancelled) before the
// request goes out stops it; once it is out, the answer is still read, as
// the server has already spent the refresh token. The time budget (ctx's
// deadline) ends it either way (TestRefreshTimeout).
func TestRefreshInterruptedOnceSent(t *testing.T) {
	srv := authtest.NewServer(authtest.Options{Users: users()})
	defer srv.Close()
	c := newClient(srv, nil)
	if _, err := c.Refresh(context.Background(), srv.Mint(canaryEmail, -time.Minute)); err != nil {
		t.Fatal(err) // and the connection stays open, for the next request to reuse
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		if _, err := c.Refresh(ctx, srv.Mint(canaryEmail, -time.Minute)); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled before: err = %v, want context.Canceled", err)
		}
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Fatalf("cancelled before: %d more requests, want none", n-1)
	}

	old := srv.Mint(canaryEmail, -time.Minute)
	srv.FailToken(authtest.Fault{AfterProcessing: true, Pass: true, Delay: 500 * time.Millisecond})
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	before := srv.Count(authtest.KindTokenRefresh)
	go func() {
		for srv.Count(authtest.KindTokenRefresh) == before {
			time.Sleep(time.Millisecond)
		}
		cancel() // the server has carried the refresh out; its answer waits
	}()
	got, err := c.Refresh(ctx, old)
	if err != nil {
		t.Fatalf("cancelled once sent: err = %v, want the answer", err)
	}
	if ctx.Err() == nil || !srv.ValidRefreshToken(got.RefreshToken) || srv.ValidRefreshToken(old.RefreshToken) {
		t.Fatal("cancelled once sent: not the rotated set, or not cancelled meanwhile")
	}
}
