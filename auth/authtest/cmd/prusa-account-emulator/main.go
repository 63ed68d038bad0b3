// Command prusa-account-emulator runs the Prusa Account emulator of package
// authtest as a program, for demos and for other languages' integration
// tests. It listens on loopback only, prints its URL alone on the first
// line of stdout and serves until interrupted (SIGINT or SIGTERM, exit 0).
//
//	prusa-account-emulator [flags]
//
// With no --user it serves a demo account with 2FA on, and prints on stderr
// its email, password and TOTP secret and a login command to paste into a
// shell:
//
//	PRUSA_ACCOUNT_URL=http://127.0.0.1:PORT PRUSA_EMAIL=demo@example.com \
//	  PRUSA_PASSWORD=demo-password PRUSA_TOTP_SECRET=JBSWY3DPEHPK3PXP \
//	  prusa-credential-helper login --store file
//
// Flags:
//
//	--addr ADDRESS             loopback address to listen on (default 127.0.0.1:0: a free port)
//	--user EMAIL:PASSWORD[:TOTPSECRET]
//	                           an account, repeatable; with a TOTP secret (base32) it has 2FA.
//	                           With two colons or more, what follows the last one is the secret.
//	                           Default: the demo account above.
//	--access-ttl DURATION      lifetime of access tokens (default 2h0m0s)
//	--first-access-ttl DURATION
//	                           lifetime of the access token a login gets (default 0: as --access-ttl)
//	--refresh-ttl DURATION     lifetime of refresh tokens (default 720h0m0s)
//	--no-rotation              refresh answers carry no new refresh token; the old one stays valid
//	--absolute-location        redirects carry absolute URLs (default: relative, as Django)
//	--direct-callback          a successful login redirects straight to the redirect URI
//	--next encoded|plain|omitted
//	                           how the forms carry next: percent-encoded (default, the
//	                           rendering the Python SDK's login needs), plain (so & shows
//	                           as &amp;), or no next field
//	--redirect-uri URI         the registered redirect URI (default Prusa Connect's)
//	--clock-offset DURATION    the server's clock minus the local one, such as 3h or -3h
//	                           (default 0): shows in the Date header, the tokens' exp, the
//	                           expiry checks and the TOTP codes accepted
//	-h, --help                 print this usage on stdout and exit 0
//
// Control endpoint (loopback clients only; the real server has none):
//
//	GET  /_emulator/clock             {"now":"2026-11-26T12:00:00Z","offset":"0s"}
//	POST /_emulator/clock?offset=3h   sets the clock offset (3h, -3h, 90m, 0); answers as GET
//
// for example: curl -X POST 'http://127.0.0.1:PORT/_emulator/clock?offset=-3h'.
//
// A usage error prints one line on stderr and exits 2; a failure to start
// (a port in use, a non-loopback address) exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// The demo account served when no --user is given.
const (
	demoEmail    = "demo@example.com"
	demoPassword = "demo-password"
	demoSecret   = "JBSWY3DPEHPK3PXP"
)

type users []authtest.User

func (u *users) String() string { return fmt.Sprint(len(*u), " users") }

// Set parses EMAIL:PASSWORD[:TOTPSECRET]. With two colons or more, what
// follows the last one is the TOTP secret; a password may hold colons only
// when a secret follows it.
func (u *users) Set(v string) error {
	email, rest, ok := strings.Cut(v, ":")
	if !ok || email == "" || rest == "" {
		return fmt.Errorf("want EMAIL:PASSWORD[:TOTPSECRET]")
	}
	user := authtest.User{Email: email, Password: rest}
	if i := strings.LastIndexByte(rest, ':'); i > 0 {
		user.Password, user.TOTPSecret = rest[:i], rest[i+1:]
		if _, err := auth.DecodeTOTPSecret(user.TOTPSecret); err != nil {
			return errBadSecret
		}
	}
	*u = append(*u, user)
	return nil
}

// errBadSecret is a --user whose TOTP secret is not base32.
var errBadSecret = errors.New("the TOTP secret is not base32")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usageHead = `Usage: prusa-account-emulator [flags]

Runs an emulator of the Prusa Account server on loopback, prints its URL on
stdout and serves until interrupted. Without --user it serves a demo account
with 2FA and prints its credentials and a login command on stderr.
Control: POST URL/_emulator/clock?offset=3h sets the server's clock offset.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("prusa-account-emulator", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, in one line
	fs.Usage = func() {}
	var (
		us        users
		opts      authtest.Options
		next      string
		firstTTL  time.Duration
		accessTTL time.Duration
	)
	fs.StringVar(&opts.Addr, "addr", "127.0.0.1:0", "loopback `address` to listen on")
	fs.Var(&us, "user", "an account, `EMAIL:PASSWORD[:TOTPSECRET]` (repeatable; default: a demo account with 2FA)")
	fs.DurationVar(&accessTTL, "access-ttl", 7200*time.Second, "lifetime of access tokens")
	fs.DurationVar(&firstTTL, "first-access-ttl", 0, "lifetime of the access token of a login (0: as --access-ttl)")
	fs.DurationVar(&opts.RefreshTTL, "refresh-ttl", 30*24*time.Hour, "lifetime of refresh tokens")
	fs.BoolVar(&opts.NoRotation, "no-rotation", false, "keep refresh tokens valid after use")
	fs.BoolVar(&opts.AbsoluteLocation, "absolute-location", false, "redirect with absolute URLs")
	fs.BoolVar(&opts.DirectCallback, "direct-callback", false, "after login, redirect straight to the redirect URI")
	fs.StringVar(&next, "next", "encoded", "how forms carry next: `encoded|plain|omitted`")
	fs.StringVar(&opts.RedirectURI, "redirect-uri", "", "the registered redirect URI (default Prusa Connect's)")
	fs.DurationVar(&opts.ClockOffset, "clock-offset", 0, "the server's clock minus the local one, such as 3h or -3h")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageHead)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		msg := err.Error()
		switch {
		case strings.Contains(msg, errBadSecret.Error()): // flag quotes the value: never shown
			msg = "invalid --user: " + errBadSecret.Error() // the value holds a password
		case strings.Contains(msg, " for flag -user: "):
			msg = "invalid --user: want EMAIL:PASSWORD[:TOTPSECRET]"
		}
		return usageError(stderr, msg)
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "unexpected argument "+protocol.Shown(fs.Arg(0), protocol.Word))
	}
	if err := authtest.CheckAddr(opts.Addr); err != nil {
		return usageError(stderr, "invalid --addr: "+err.Error())
	}
	switch next {
	case "encoded":
		opts.Next = authtest.NextEncoded
	case "plain":
		opts.Next = authtest.NextPlain
	case "omitted":
		opts.Next = authtest.NextOmitted
	default:
		return usageError(stderr, "--next must be encoded, plain or omitted")
	}
	demo := len(us) == 0
	if demo {
		us = users{{Email: demoEmail, Password: demoPassword, TOTPSecret: demoSecret}}
	}
	opts.Users, opts.AccessTTL, opts.FirstAccessTTL = us, accessTTL, firstTTL
	opts.Control = true
	srv, err := start(opts)
	if err != nil {
		fmt.Fprintln(stderr, "prusa-account-emulator:", err)
		return 1
	}
	defer srv.Close()
	fmt.Fprintln(stdout, srv.URL)
	if f, ok := stdout.(*os.File); ok {
		f.Sync()
	}
	if demo {
		printDemo(stderr, srv.URL, opts.RedirectURI)
	} else {
		printAccounts(stderr, srv.URL, opts.RedirectURI, us)
	}
	<-ctx.Done()
	return 0
}

func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "prusa-account-emulator: %s (see --help)\n", msg)
	return 2
}

// helperEnv is the environment that points the helper at this server.
func helperEnv(base, redirectURI string) string {
	env := "PRUSA_ACCOUNT_URL=" + protocol.ShellQuote(base)
	if redirectURI != "" && redirectURI != auth.DefaultRedirectURI {
		env += " PRUSA_REDIRECT_URI=" + protocol.ShellQuote(redirectURI)
	}
	return env
}

// printDemo tells how to log in to the demo account.
func printDemo(w io.Writer, base, redirectURI string) {
	env := helperEnv(base, redirectURI)
	fmt.Fprintf(w, `prusa-account-emulator: serving %s with a demo account (2FA on):
  email        %s
  password     %s
  TOTP secret  %s
log in with:
  %s PRUSA_EMAIL=%s PRUSA_PASSWORD=%s PRUSA_TOTP_SECRET=%s prusa-credential-helper login --store file
then get a token with:
  %s prusa-credential-helper get --store file
`, base, demoEmail, demoPassword, demoSecret,
		env, protocol.ShellQuote(demoEmail), protocol.ShellQuote(demoPassword), protocol.ShellQuote(demoSecret), env)
}

// printAccounts tells which --user accounts it serves and how to log in,
// without their passwords or secrets.
func printAccounts(w io.Writer, base, redirectURI string, us users) {
	var names []string
	for _, u := range us {
		name := u.Email
		if u.TOTPSecret != "" {
			name += " (2FA)"
		}
		names = append(names, name)
	}
	env := helperEnv(base, redirectURI)
	fmt.Fprintf(w, `prusa-account-emulator: serving %s with %s
log in with (with PRUSA_PASSWORD set, and PRUSA_TOTP_SECRET for 2FA, or at the prompts):
  %s PRUSA_EMAIL=%s prusa-credential-helper login --store file
then get a token with:
  %s prusa-credential-helper get --store file
`, base, strings.Join(names, ", "), env, protocol.ShellQuote(us[0].Email), env)
}

// start turns the emulator's panics on misuse into errors.
func start(opts authtest.Options) (srv *authtest.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return authtest.NewServer(opts), nil
}
