package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

func (c *cli) login(ctx context.Context) error {
	profile, err := c.profileFor("", false)
	if err != nil {
		return err
	}
	if err := c.checkKeyringReachable(); err != nil {
		return err
	}
	if _, err := c.helper().CheckWritable(ctx, profile); err != nil {
		return err
	}
	c.warnPlainEtcd()
	var tty terminal
	openTTY := func(what string) (terminal, error) {
		if tty != nil {
			return tty, nil
		}
		t, err := c.openTerminal()
		if err != nil {
			return nil, &protocol.Error{Code: protocol.InvalidRequest,
				Message: "no " + what + " given and no terminal to ask on",
				Hint:    loginInputHint(what)}
		}
		tty = t
		return t, nil
	}
	defer func() {
		if tty != nil {
			tty.Close()
		}
	}()

	email := c.s.email
	if !c.s.set["email"] {
		email = c.getenv("PRUSA_EMAIL")
	}
	var password string
	switch {
	case c.s.passwordStdin:
		line, err := bufio.NewReader(io.LimitReader(c.stdin, 4096)).ReadString('\n')
		if err != nil && err != io.EOF {
			return protocol.Errorf(protocol.InvalidRequest, "cannot read the password from stdin")
		}
		password = strings.TrimRight(line, "\r\n")
		if password == "" {
			return protocol.Errorf(protocol.InvalidRequest, "--password-stdin: stdin holds no password")
		}
	default:
		password = c.getenv("PRUSA_PASSWORD")
	}
	totp, err := c.totpSource(openTTY)
	if err != nil {
		return err
	}
	// What was asked for is asked for again after a refusal: a mistyped
	// email as much as a mistyped password.
	askEmail, askPassword := email == "", password == ""
	for try := 1; ; try++ {
		if askEmail {
			t, err := openTTY("email")
			if err != nil {
				return err
			}
			text, typed := "Prusa Account email: ", email
			if try > 1 {
				// Asked again after a refusal: Enter keeps what was typed,
				// when the password was what was wrong.
				text = "Prusa Account email [" + protocol.OneLine(typed) + "]: "
			}
			if email, err = askUntilGiven(ctx, t, t.Prompt, text, "email", typed); err != nil {
				return err
			}
		}
		if askPassword {
			t, err := openTTY("password")
			if err != nil {
				return err
			}
			if password, err = askUntilGiven(ctx, t, t.PromptSecret, "Password for "+email+": ", "password", ""); err != nil {
				return err
			}
		}
		// The budget starts after the prompts, so that a slow typist does
		// not spend it.
		budget, cancel := context.WithTimeout(ctx, c.s.timeout)
		set, err := c.authClient().Login(budget, auth.LoginInput{Email: email, Password: password, TOTP: totp})
		again := errors.Is(err, auth.ErrInvalidCredentials) && (askEmail || askPassword) && try < maxPasswordTries
		if err == nil {
			err = c.saveLogin(budget, profile, email, &set)
		}
		cancel()
		if !again {
			return err
		}
		tty.Println("invalid email or password, try again")
	}
}

// maxPasswordTries is how many times an interactive login asks for what it
// was not given (the email, the password, or both).
const maxPasswordTries = 3

// saveLogin stores a new login's set and says so.
func (c *cli) saveLogin(ctx context.Context, profile, email string, set *auth.TokenSet) error {
	// The code is spent: the set is saved whatever ended ctx meanwhile
	// (an interrupt, the budget), within a lock wait of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.s.timeout)
	defer cancel()
	before, held, err := c.helper().Status(ctx, profile)
	if err != nil || c.envSource != nil { // not the store's, or not known: nothing to say
		held = false
	}
	saved, err := c.helper().StoreSet(ctx, profile, set)
	if err != nil {
		return err
	}
	where := saved.Store
	c.noteFallback(saved)
	who := email
	if id, err := auth.ParseJWT(set.IDToken); err == nil && id.User != nil && id.User.Email != "" {
		who = id.User.Email
	}
	fmt.Fprintf(c.stderr, "Logged in as %s (profile %s, stored in %s)\n", protocol.OneLine(who), profile, where)
	if now := helper.Describe(profile, where, set); held && before.UserID != "" && before.UserID != now.UserID {
		// Another account's tokens were there: gone now, which should not
		// go unsaid.
		was := "user " + before.UserID
		if before.Email != "" {
			was = before.Email + " (" + was + ")"
		}
		fmt.Fprintf(c.stderr, "note: profile %s held the tokens of %s, which this login replaced\n", profile, protocol.OneLine(was))
	}
	if c.envSource != nil {
		c.warnf("%s is set, so get will keep using it instead of this login; unset it", c.envSource.Var)
	}
	return nil
}

// askUntilGiven asks until the answer is not empty, up to maxPasswordTries
// times; with a default, an empty answer is the default.
func askUntilGiven(ctx context.Context, t terminal, prompt func(context.Context, string) (string, error), text, what, def string) (string, error) {
	for try := 1; try <= maxPasswordTries; try++ {
		v, err := prompt(ctx, text)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if err != nil {
			break
		}
		if v != "" {
			return v, nil
		}
		if def != "" {
			return def, nil
		}
		if try < maxPasswordTries {
			t.Println("the " + what + " is empty, try again")
		}
	}
	return "", protocol.Errorf(protocol.InvalidRequest, "no %s given", what)
}

// autoLogin logs in without a person, for get --auto-login: from
// PRUSA_EMAIL, PRUSA_PASSWORD and, for an account with 2FA,
// PRUSA_TOTP_SECRET (or PRUSA_TOTP_CODE). It never prompts: a missing input
// is a login_required error that names it.
func (c *cli) autoLogin(ctx context.Context) (*auth.TokenSet, error) {
	missing := func(what string) error {
		return &protocol.Error{Code: protocol.LoginRequired,
			Message: "auto-login needs " + what,
			Hint:    "set it, or run: " + c.commandLine("login", c.s.profile)}
	}
	email := c.getenv("PRUSA_EMAIL")
	if email == "" {
		return nil, missing("PRUSA_EMAIL, which is not set")
	}
	password := c.getenv("PRUSA_PASSWORD")
	if password == "" {
		return nil, missing("PRUSA_PASSWORD, which is not set")
	}
	totp, err := c.totpSource(func(string) (terminal, error) {
		return nil, missing("PRUSA_TOTP_SECRET: the account asks for a TOTP code")
	})
	if err != nil {
		return nil, err
	}
	set, err := c.authClient().Login(ctx, auth.LoginInput{Email: email, Password: password, TOTP: totp})
	if err != nil {
		return nil, fmt.Errorf("auto-login: %w", err)
	}
	return &set, nil
}

func loginInputHint(what string) string {
	switch what {
	case "email":
		return "pass --email or set PRUSA_EMAIL"
	case "password":
		return "pass --password-stdin or set PRUSA_PASSWORD"
	}
	return "set PRUSA_TOTP_CODE or PRUSA_TOTP_SECRET"
}

// totpSource picks where TOTP codes come from: PRUSA_TOTP_CODE (sent once),
// PRUSA_TOTP_SECRET (computed; one retry with the next time step), else the
// terminal (up to 3 tries), opened only if the account asks.
func (c *cli) totpSource(openTTY func(string) (terminal, error)) (auth.TOTPSource, error) {
	if code := c.getenv("PRUSA_TOTP_CODE"); code != "" {
		code, ok := totpCode(code)
		if !ok {
			return nil, protocol.Errorf(protocol.InvalidRequest, "PRUSA_TOTP_CODE is not a 6-digit code")
		}
		return func(_ context.Context, attempt int, _ time.Duration) (string, error) {
			if attempt > 1 {
				return "", auth.ErrInvalidTOTP
			}
			return code, nil
		}, nil
	}
	if secret := c.getenv("PRUSA_TOTP_SECRET"); secret != "" {
		notify := func(msg string) { fmt.Fprintln(c.stderr, prog+": "+protocol.OneLine(msg)) }
		if c.s.command == "get" {
			// A successful get writes nothing on stderr but the
			// warnings a human must see: the wait shows with --debug.
			notify = func(msg string) {
				if debugf := c.debugf(); debugf != nil {
					debugf("%s", msg)
				}
			}
		}
		f, err := auth.TOTPFromSecret(secret, c.now, nil, notify)
		if err != nil {
			return nil, protocol.Errorf(protocol.InvalidRequest, "PRUSA_TOTP_SECRET is not a base32 secret")
		}
		return f, nil
	}
	return func(ctx context.Context, attempt int, _ time.Duration) (string, error) {
		t, err := openTTY("TOTP code")
		if err != nil {
			return "", err
		}
		if attempt > 1 {
			t.Println("invalid TOTP code, try again (a code works once: after a login in this 30 s step, wait for the next one)")
		}
		for {
			entry, err := t.Prompt(ctx, "TOTP code: ")
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			if err != nil {
				return "", auth.ErrInvalidTOTP
			}
			// A typo is refused here, without using up one of the
			// server's tries.
			if code, ok := totpCode(entry); ok {
				return code, nil
			}
			t.Println("a TOTP code is 6 digits, try again")
		}
	}, nil
}

// totpCode reads a TOTP code: 6 digits, spaces allowed (and removed).
func totpCode(entry string) (string, bool) {
	code := strings.Join(strings.Fields(entry), "")
	if len(code) != auth.TOTPDigits || strings.Trim(code, "0123456789") != "" {
		return "", false
	}
	return code, true
}
