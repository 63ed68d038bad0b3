package authtest_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// sdkScript logs in the way the Python SDK's interactive_login does (see
// the script's docstring), with the standard library only.
const sdkScript = "testdata/sdk/sdk_login.py"

const (
	sdkEmail    = "sdk@example.com"
	sdkPassword = "CANARY-sdk-password"
	sdkSecret   = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
)

// runSDKLogin runs the script against srv and returns its exit status,
// stdout and stderr.
func runSDKLogin(t *testing.T, srv *authtest.Server, email, password, secret string) (int, string, string) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the SDK login acceptance test needs it (CI installs python3, where this skip is a failure)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, sdkScript, srv.URL, email, password, secret)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code <= 0 {
		t.Fatalf("running %s: %v", sdkScript, err)
	}
	return code, out.String(), errb.String()
}

func sdkServer(opts authtest.Options) *authtest.Server {
	opts.Users = []authtest.User{
		{Email: sdkEmail, Password: sdkPassword, TOTPSecret: sdkSecret},
		{Email: "no2fa-" + sdkEmail, Password: sdkPassword},
	}
	return authtest.NewServer(opts)
}

// TestSDKLoginOnDefaults is the acceptance test of the default pages: the
// SDK's way of logging in works on them, for a 2FA account, and the server
// saw what that code sends.
func TestSDKLoginOnDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts authtest.Options
	}{
		{"defaults", authtest.Options{}},
		{"absolute location", authtest.Options{AbsoluteLocation: true}},
		{"direct callback", authtest.Options{DirectCallback: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sdkServer(tc.opts)
			defer srv.Close()
			code, out, stderr := runSDKLogin(t, srv, sdkEmail, sdkPassword, sdkSecret)
			if code != 0 {
				t.Fatalf("the SDK's login failed on the emulator's pages: exit %d, stderr %q", code, stderr)
			}
			set, err := auth.ParseTokenSet([]byte(out))
			if err != nil {
				t.Fatalf("the script printed no token set: %v", err)
			}
			if err := set.Validate(); err != nil {
				t.Fatalf("token set: %v", err)
			}
			if !srv.ValidAccessToken(set.AccessToken) || !srv.ValidRefreshToken(set.RefreshToken) {
				t.Fatal("the server does not know the tokens the script got")
			}
			for _, secret := range []string{sdkPassword, set.AccessToken, set.RefreshToken} {
				if strings.Contains(stderr, secret) {
					t.Fatal("a secret shows on the script's stderr")
				}
			}
			// What the SDK's code sends, as the server saw it.
			if srv.Count(authtest.KindTOTPPost) != 1 || srv.Count(authtest.KindTokenCode) != 1 || srv.Count(authtest.KindOther) != 0 {
				t.Fatalf("TOTP posts %d, code exchanges %d, other requests %d; want 1, 1, 0",
					srv.Count(authtest.KindTOTPPost), srv.Count(authtest.KindTokenCode), srv.Count(authtest.KindOther))
			}
			for _, r := range srv.Requests() {
				if !strings.HasPrefix(r.Header.Get("User-Agent"), "PrusaConnectClient/") {
					t.Errorf("%s %s: User-Agent %q", r.Method, r.Path, r.Header.Get("User-Agent"))
				}
				switch r.Kind {
				case authtest.KindAuthorize:
					if strings.Contains(r.RawQuery, "state=") {
						t.Errorf("the script sent a state: %q", r.RawQuery)
					}
				case authtest.KindLoginPost:
					if r.Header.Get("Origin") != srv.URL {
						t.Errorf("login post: Origin %q, want the account origin %q", r.Header.Get("Origin"), srv.URL)
					}
					if n := r.Form["next"]; len(n) != 1 || strings.Contains(n[0], "&amp;") || !strings.HasPrefix(n[0], "/o/authorize/?response_type=code&") {
						t.Errorf("login post: next %q, want the decoded authorize path", n)
					}
				case authtest.KindTOTPPost:
					if r.Header.Get("Origin") != "" || !strings.HasPrefix(r.Header.Get("Referer"), srv.URL+"/login/totp/") {
						t.Errorf("TOTP post: Origin %q Referer %q, want no Origin and the TOTP page", r.Header.Get("Origin"), r.Header.Get("Referer"))
					}
				}
			}
		})
	}
}

// TestSDKLoginRecognisesErrors shows the script tells a wrong password by
// class="invalid-feedback", and that it logs in to an account without 2FA.
func TestSDKLoginRecognisesErrors(t *testing.T) {
	srv := sdkServer(authtest.Options{})
	defer srv.Close()
	code, out, stderr := runSDKLogin(t, srv, sdkEmail, "CANARY-wrong-password", sdkSecret)
	if code != 1 || out != "" || !strings.Contains(stderr, "refused the email or password") {
		t.Fatalf("wrong password: exit %d, %d bytes on stdout, stderr %q", code, len(out), stderr)
	}
	if strings.Contains(stderr, "CANARY") {
		t.Fatal("the password shows on stderr")
	}
	code, out, stderr = runSDKLogin(t, srv, "no2fa-"+sdkEmail, sdkPassword, "")
	if set, err := auth.ParseTokenSet([]byte(out)); code != 0 || err != nil || !srv.ValidAccessToken(set.AccessToken) {
		t.Fatalf("account without 2FA: exit %d, stderr %q, token set: %v", code, stderr, err)
	}
	if srv.Count(authtest.KindTOTPPost) != 0 {
		t.Fatal("a TOTP code was posted for an account without 2FA")
	}
}

// TestSDKLoginFailsOnPlainNext proves the acceptance test can fail: on the
// plain rendering, where the page escapes & as &amp; in next, the SDK's
// regex-then-unquote posts a next whose client_id is lost, and the
// authorize step refuses it.
func TestSDKLoginFailsOnPlainNext(t *testing.T) {
	srv := sdkServer(authtest.Options{Next: authtest.NextPlain})
	defer srv.Close()
	code, out, stderr := runSDKLogin(t, srv, sdkEmail, sdkPassword, sdkSecret)
	if code != 1 || out != "" {
		t.Fatalf("the SDK's login worked on the plain rendering (exit %d, %d bytes on stdout): the acceptance test cannot fail", code, len(out))
	}
	if !strings.Contains(stderr, "HTTP 400 at /o/authorize/") {
		t.Fatalf("failed, but not at the authorize step: %q", stderr)
	}
	if srv.Count(authtest.KindTokenCode) != 0 {
		t.Fatal("a code was exchanged")
	}
}
