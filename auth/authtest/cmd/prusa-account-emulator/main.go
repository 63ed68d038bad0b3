// Command prusa-account-emulator runs the Prusa Account emulator of package
// authtest as a program, for demos and for other languages' integration
// tests. It prints its URL on stdout and serves until interrupted.
//
//	prusa-account-emulator --addr 127.0.0.1:0 --user a@b.c:secret[:TOTPSECRET]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
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
	}
	*u = append(*u, user)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("prusa-account-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		us        users
		opts      authtest.Options
		next      string
		firstTTL  time.Duration
		accessTTL time.Duration
	)
	fs.StringVar(&opts.Addr, "addr", "127.0.0.1:0", "loopback `address` to listen on")
	fs.Var(&us, "user", "an account, `EMAIL:PASSWORD[:TOTPSECRET]` (repeatable)")
	fs.DurationVar(&accessTTL, "access-ttl", 7200*time.Second, "lifetime of access tokens")
	fs.DurationVar(&firstTTL, "first-access-ttl", 0, "lifetime of the access token of a login (0: as --access-ttl)")
	fs.DurationVar(&opts.RefreshTTL, "refresh-ttl", 30*24*time.Hour, "lifetime of refresh tokens")
	fs.BoolVar(&opts.NoRotation, "no-rotation", false, "keep refresh tokens valid after use")
	fs.BoolVar(&opts.AbsoluteLocation, "absolute-location", false, "redirect with absolute URLs")
	fs.BoolVar(&opts.DirectCallback, "direct-callback", false, "after login, redirect straight to the redirect URI")
	fs.StringVar(&next, "next", "plain", "how forms carry next: `plain`, encoded or omitted")
	fs.StringVar(&opts.RedirectURI, "redirect-uri", "", "the registered redirect URI (default Prusa Connect's)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch next {
	case "plain":
	case "encoded":
		opts.Next = authtest.NextEncoded
	case "omitted":
		opts.Next = authtest.NextOmitted
	default:
		fmt.Fprintln(stderr, "prusa-account-emulator: --next must be plain, encoded or omitted")
		return 2
	}
	if len(us) == 0 {
		fmt.Fprintln(stderr, "prusa-account-emulator: at least one --user is needed")
		return 2
	}
	opts.Users, opts.AccessTTL, opts.FirstAccessTTL = us, accessTTL, firstTTL
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
	<-ctx.Done()
	return 0
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
