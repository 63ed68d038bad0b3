package auth_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

const (
	renderingEmail     = "renderings@example.com"
	renderingTOTPEmail = "renderings-2fa@example.com"
	renderingPassword  = "CANARY-renderings-pw"
	renderingSecret    = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
)

// renderingPage fetches the login page the authorize endpoint sends a new
// visitor to, and returns the authorize answer's Location and the page.
func renderingPage(t *testing.T, srv *authtest.Server) (string, string) {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {auth.DefaultClientID}, "redirect_uri": {auth.DefaultRedirectURI}, "code_challenge_method": {"S256"}, "code_challenge": {auth.S256Challenge(auth.NewVerifier())}}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(srv.URL + "/o/authorize/?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	login := loc
	if strings.HasPrefix(loc, "/") {
		login = srv.URL + loc
	}
	resp, err = hc.Get(login)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return loc, string(body)
}

// TestLoginEveryRendering logs in with auth.Client.Login against each
// rendering of the emulator's pages, after checking that the server does
// render them that way, for accounts with and without 2FA.
func TestLoginEveryRendering(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  authtest.Options
		check func(loc, page string) bool // the rendering is the one named
	}{
		{"default (next encoded)", authtest.Options{}, func(loc, page string) bool {
			return strings.HasPrefix(loc, "/login/") && strings.Contains(page, `name="next" value="/o/authorize/%3Fclient_id%3D`) && strings.Contains(page, "%26response_type%3Dcode") && !strings.Contains(page, "&amp;")
		}},
		{"next encoded", authtest.Options{Next: authtest.NextEncoded}, func(loc, page string) bool {
			return strings.Contains(page, `name="next" value="/o/authorize/%3F`)
		}},
		{"next plain", authtest.Options{Next: authtest.NextPlain}, func(loc, page string) bool {
			return strings.Contains(page, `name="next" value="/o/authorize/?client_id=`) && strings.Contains(page, "&amp;response_type=code")
		}},
		{"next omitted", authtest.Options{Next: authtest.NextOmitted}, func(loc, page string) bool {
			return strings.Contains(page, `name="csrfmiddlewaretoken"`) && !strings.Contains(page, `name="next"`)
		}},
		{"absolute Location", authtest.Options{AbsoluteLocation: true}, func(loc, page string) bool {
			return strings.HasPrefix(loc, "http://127.0.0.1:") && strings.Contains(page, `name="next"`)
		}},
		{"direct callback", authtest.Options{DirectCallback: true}, func(loc, page string) bool {
			return strings.HasPrefix(loc, "/login/")
		}},
		{"plain, absolute, direct", authtest.Options{Next: authtest.NextPlain, AbsoluteLocation: true, DirectCallback: true}, func(loc, page string) bool {
			return strings.HasPrefix(loc, "http://") && strings.Contains(page, "&amp;")
		}},
	} {
		for _, email := range []string{renderingEmail, renderingTOTPEmail} {
			t.Run(tc.name+"/"+email, func(t *testing.T) {
				t.Parallel()
				opts := tc.opts
				opts.Users = []authtest.User{{Email: renderingEmail, Password: renderingPassword}, {Email: renderingTOTPEmail, Password: renderingPassword, TOTPSecret: renderingSecret}}
				srv := authtest.NewServer(opts)
				defer srv.Close()
				if loc, page := renderingPage(t, srv); !tc.check(loc, page) {
					t.Fatalf("the server does not render %s: Location %q, page:\n%s", tc.name, loc, page)
				}
				srv.ResetCounts()

				totp, err := auth.TOTPFromSecret(renderingSecret, nil, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				c := &auth.Client{AccountURL: srv.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "prusa-credential-helper/test"}
				set, err := c.Login(context.Background(), auth.LoginInput{Email: email, Password: renderingPassword, TOTP: totp})
				if err != nil {
					t.Fatalf("Login: %v", err)
				}
				if !srv.ValidAccessToken(set.AccessToken) || !srv.ValidRefreshToken(set.RefreshToken) {
					t.Fatal("the server does not know the tokens Login returned")
				}
				wantTOTP := 0
				if email == renderingTOTPEmail {
					wantTOTP = 1
				}
				if srv.Count(authtest.KindTOTPPost) != wantTOTP || srv.Count(authtest.KindTokenCode) != 1 || srv.Count(authtest.KindOther) != 0 {
					t.Fatalf("TOTP posts %d (want %d), code exchanges %d (want 1), other requests %d (want 0)",
						srv.Count(authtest.KindTOTPPost), wantTOTP, srv.Count(authtest.KindTokenCode), srv.Count(authtest.KindOther))
				}
				for _, r := range srv.Requests() {
					if n := r.Form["next"]; len(n) > 0 && (!strings.HasPrefix(n[0], "/o/authorize/?") || !strings.Contains(n[0], "&response_type=code") || strings.Contains(n[0], "&amp;")) {
						t.Errorf("%s %s posted next %q, not the decoded authorize path", r.Method, r.Path, n[0])
					}
				}
			})
		}
	}
}
