package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// readRequest reads get's or erase's optional request. A terminal on stdin
// is never read: get never reads the terminal.
func (c *cli) readRequest() (protocol.Request, error) {
	if c.stdinIsTerminal() {
		return protocol.Request{}, nil
	}
	return protocol.ReadRequest(c.stdin)
}

func (c *cli) get(ctx context.Context) error {
	req, err := c.readRequest()
	if err != nil {
		return err
	}
	profile, err := c.profileFor(req.Profile, req.HasProfile)
	if err != nil {
		return err
	}
	if err := c.checkKeyringReachable(); err != nil && c.envSource == nil {
		return err
	}
	tok, err := c.helper().Get(ctx, profile, req.MinTTL, req.ForceRefresh)
	if err != nil {
		return err
	}
	return protocol.WriteToken(c.stdout, c.s.format, tok)
}

func (c *cli) storeCmd(ctx context.Context) error {
	body, reqProfile, hasProfile, err := protocol.ReadTokenSetBody(c.stdin)
	if err != nil {
		return err
	}
	profile, err := c.profileFor(reqProfile, hasProfile)
	if err != nil {
		return err
	}
	set, err := auth.ParseTokenSet(body)
	if err != nil {
		return err
	}
	if err := c.checkKeyringReachable(); err != nil {
		return err
	}
	saved, err := c.helper().StoreSet(ctx, profile, set)
	if err != nil {
		return err
	}
	c.noteFallback(saved)
	return protocol.WriteStored(c.stdout, profile, saved.Store)
}

// noteFallback says on stderr that auto put the set in the file store.
func (c *cli) noteFallback(saved helper.Result) {
	if saved.Store == "file" && saved.Fallback != "" {
		fmt.Fprintf(c.stderr, "%s: note: no keyring available (%s); stored in the file store %s\n", prog, saved.Fallback, saved.Path)
	}
}

func (c *cli) erase(ctx context.Context, human bool) error {
	profile := ""
	var err error
	if human {
		profile, err = c.profileFor("", false)
	} else {
		req, rerr := c.readRequest()
		if rerr != nil {
			return rerr
		}
		profile, err = c.profileFor(req.Profile, req.HasProfile)
	}
	if err != nil {
		return err
	}
	// No keyring check first: erase clears every other store all the same,
	// then says that the keyring could not be reached.
	erased, err := c.helper().Erase(ctx, profile)
	if err != nil {
		return err
	}
	if human {
		if erased.Any() {
			from := helper.StoreNames(erased.Removed)
			if c.s.tokenFile != "" {
				from = c.s.tokenFile
			}
			fmt.Fprintf(c.stderr, "Logged out: removed the tokens of profile %q from %s\n", profile, from)
		} else {
			fmt.Fprintf(c.stderr, "Nothing stored for profile %q\n", profile)
		}
		return nil
	}
	return protocol.WriteErased(c.stdout, profile, erased.Any())
}

func (c *cli) list(ctx context.Context) error {
	profile, err := c.profileFor("", false) // names a --token-file's entry
	if err != nil {
		return err
	}
	if err := c.checkKeyringReachable(); err != nil {
		return err
	}
	entries, err := c.helper().List(ctx, profile)
	if err != nil {
		return err
	}
	return protocol.WriteList(c.stdout, entries)
}

// status shows who is logged in; exit 4 when only a login gives a token.
func (c *cli) status(ctx context.Context) error {
	profile, err := c.profileFor("", false)
	if err != nil {
		return err
	}
	if err := c.checkKeyringReachable(); err != nil {
		return err
	}
	c.warnPlainEtcd()
	entry, found, err := c.helper().Status(ctx, profile)
	if err != nil {
		return err
	}
	now := c.now().Add(entry.ClockOffset) // the server's clock judges
	if entry.Store == helper.EnvToken || entry.Store == helper.EnvTokensJSON {
		c.warnf("%s is set and is used instead of the stored credentials; unset it to use the store", entry.Store)
	}
	if c.helper().Kept(profile) {
		c.warnf("etcd has not taken the last refreshed tokens of profile %q: they are kept on this host, and until it writes them a refresh on another host answers login_required; run: %s", profile, c.commandLine("refresh", profile))
	}
	accessOK := !entry.AccessExpires.IsZero() && now.Before(entry.AccessExpires)
	switch left := entry.RefreshExpires.Sub(now); {
	case !found || entry.RefreshExpires.IsZero():
	case left > 0 && left < 7*24*time.Hour:
		c.warnf("the refresh token of profile %q expires in %s; run: %s (or log in again)", profile, roughDuration(left), c.commandLine("refresh", profile))
	case left <= 0 && accessOK:
		c.warnf("the refresh token of profile %q has expired: the access token serves until %s, then a login is needed; run: %s", profile, protocol.FormatTime(entry.AccessExpires), c.commandLine("login", profile))
	}
	refreshOK := !entry.RefreshExpires.IsZero() && now.Before(entry.RefreshExpires)
	loginRequired := !accessOK && !refreshOK
	// A set of another account server is refreshed only there: said, but
	// the exit code judges the tokens alone.
	elsewhere := c.otherServer(entry)
	if c.s.json {
		if err := protocol.WriteStatus(c.stdout, entry, loginRequired); err != nil {
			return err
		}
	} else {
		var b strings.Builder
		fmt.Fprintf(&b, "Profile:  %s\n", profile)
		if !found {
			fmt.Fprintf(&b, "Account:  not logged in\n")
		} else {
			who := entry.Email
			if who == "" {
				who = "unknown email"
			}
			// Claims are the server's text: no line of ours carries its
			// control characters.
			fmt.Fprintf(&b, "Account:  %s (user %s)\n", protocol.OneLine(who), protocol.OneLine(entry.UserID))
			fmt.Fprintf(&b, "Access:   %s\n", expiryLine(entry.AccessExpires, now))
			fmt.Fprintf(&b, "Refresh:  %s\n", expiryLine(entry.RefreshExpires, now))
		}
		if elsewhere {
			fmt.Fprintf(&b, "Server:   %s, not this run's %s: refreshed only with --account-url %s\n", entry.AccountURL, c.s.accountURL, protocol.ShellQuote(entry.AccountURL))
		}
		fmt.Fprintf(&b, "Store:    %s\n", entry.Store)
		if loginRequired {
			var env string // the variable the tokens came from, if any
			if entry.Store == helper.EnvToken || entry.Store == helper.EnvTokensJSON {
				env = entry.Store
			}
			fmt.Fprintf(&b, "Login required: %s\n", unsetFirst(env, "run "+c.commandLine("login", profile)))
		}
		io.WriteString(c.stdout, b.String())
	}
	if loginRequired {
		return &silentExit{protocol.ExitLoginRequired}
	}
	return nil
}

// otherServer reports whether the profile's set records another account
// server than this run's, where alone it is refreshed.
func (c *cli) otherServer(p protocol.Profile) bool {
	return p.AccountURL != "" && !auth.SameServer(p.AccountURL, c.s.accountURL)
}

// expiryLine tells when a token expires, relative to now.
func expiryLine(t, now time.Time) string {
	if t.IsZero() {
		return "none"
	}
	if !now.Before(t) {
		return fmt.Sprintf("expired at %s", protocol.FormatTime(t))
	}
	return fmt.Sprintf("valid until %s (%s left)", protocol.FormatTime(t), roughDuration(t.Sub(now)))
}

func roughDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		days, hours := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if hours == 0 {
			return fmt.Sprintf("%d days", days)
		}
		return fmt.Sprintf("%d days %dh", days, hours) // 5 days 23h, not 5 days
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%ds", int(d/time.Second))
}

// silentExit ends a command with an exit code and no message: it has
// already said what it had to.
type silentExit struct{ code int }

func (e *silentExit) Error() string { return fmt.Sprintf("exit %d", e.code) }
