package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
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
	if email == "" {
		t, err := openTTY("email")
		if err != nil {
			return err
		}
		if email, err = t.Prompt(ctx, "Prusa Account email: "); ctx.Err() != nil {
			return ctx.Err()
		} else if err != nil || email == "" {
			return protocol.Errorf(protocol.InvalidRequest, "no email given")
		}
	}
	if password == "" {
		t, err := openTTY("password")
		if err != nil {
			return err
		}
		if password, err = t.PromptSecret(ctx, "Password for "+email+": "); ctx.Err() != nil {
			return ctx.Err()
		} else if err != nil || password == "" {
			return protocol.Errorf(protocol.InvalidRequest, "no password given")
		}
	}

	c.deadline = time.Now().Add(c.s.timeout)
	ctx, cancel := context.WithDeadline(ctx, c.deadline)
	defer cancel()
	set, err := c.authClient().Login(ctx, auth.LoginInput{Email: email, Password: password, TOTP: totp})
	if err != nil {
		return err
	}
	saved, err := c.helper().StoreSet(ctx, profile, &set)
	if err != nil {
		return err
	}
	where := saved.Store
	c.noteFallback(saved)
	who := email
	if id, err := auth.ParseJWT(set.IDToken); err == nil && id.User != nil && id.User.Email != "" {
		who = id.User.Email
	}
	fmt.Fprintf(c.stderr, "Logged in as %s (profile %s, stored in %s)\n", who, profile, where)
	return nil
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
func (c *cli) totpSource(openTTY func(string) (terminal, error)) (func(context.Context, int) (string, error), error) {
	if code := c.getenv("PRUSA_TOTP_CODE"); code != "" {
		return func(_ context.Context, attempt int) (string, error) {
			if attempt > 1 {
				return "", auth.ErrInvalidTOTP
			}
			return code, nil
		}, nil
	}
	if secret := c.getenv("PRUSA_TOTP_SECRET"); secret != "" {
		f, err := auth.TOTPFromSecret(secret, c.now, nil)
		if err != nil {
			return nil, protocol.Errorf(protocol.InvalidRequest, "PRUSA_TOTP_SECRET is not a base32 secret")
		}
		return f, nil
	}
	return func(ctx context.Context, attempt int) (string, error) {
		t, err := openTTY("TOTP code")
		if err != nil {
			return "", err
		}
		if attempt > 1 {
			t.Println("invalid TOTP code, try again")
		}
		code, err := t.Prompt(ctx, "TOTP code: ")
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if err != nil || strings.TrimSpace(code) == "" {
			return "", auth.ErrInvalidTOTP
		}
		return code, nil
	}, nil
}
