package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// refresh refreshes the profile now. With --all it refreshes every stored
// profile whose refresh token expires within --within (every profile
// without --within), writes a line per profile on stderr, and exits 4 if
// any needs a login (else with the first failure's code).
func (c *cli) refresh(ctx context.Context) error {
	// A token in the environment comes before every stored set: a bare
	// PRUSA_TOKEN cannot be refreshed, and with --all PRUSA_TOKENS_JSON
	// would be refreshed and saved under every profile.
	if env := c.envSource; env != nil && (c.s.all || env.Bare()) {
		return protocol.Errorf(protocol.InvalidRequest, "%s is set and would be used instead of the stored token sets; unset it to refresh them", env.Var)
	}
	profile, err := c.profileFor("", false) // with --all: names a --token-file's entry
	if err != nil {
		return err
	}
	if err := c.checkKeyringReachable(); err != nil {
		return err
	}
	if !c.s.all {
		tok, err := c.helper().Refresh(ctx, profile)
		if err != nil {
			return err
		}
		did := "Refreshed"
		if tok.LoggedIn {
			did = "Logged in again to" // an auto-login, where the refresh could not be
		}
		fmt.Fprintf(c.stderr, "%s profile %s: the access token is valid until %s\n", did, profile, protocol.FormatTime(tok.Expiry))
		return nil
	}
	// Every stored profile once, judged by the set auto would use (the one
	// whose access token expires last). One that cannot be read (a keyring
	// out of reach) gets its line, and the others go on.
	entries, unread, err := c.helper().ListAll(ctx, profile)
	if err != nil {
		return err
	}
	if c.s.store == helper.ModeFile {
		// The keyring's profiles are listed too, but a run on the file
		// store cannot refresh them: said as such, not as "no stored
		// credentials".
		entries = slices.DeleteFunc(entries, func(e protocol.Profile) bool {
			if e.Store == "file" {
				return false
			}
			unread = append(unread, helper.Unread{Profile: e.Profile, Err: &protocol.Error{Code: protocol.StorageError,
				Message: fmt.Sprintf("profile %q is in the %s, which a run with --store file does not refresh", e.Profile, e.Store)}})
			return true
		})
	}
	latest := map[string]protocol.Profile{} // by profile: the entry auto would use
	for _, e := range entries {
		if d, ok := latest[e.Profile]; !ok || e.AccessExpires.After(d.AccessExpires) {
			latest[e.Profile] = e
		}
	}
	failed := map[string]error{}
	for _, u := range unread {
		if _, ok := latest[u.Profile]; !ok {
			failed[u.Profile] = u.Err
		}
	}
	if len(latest)+len(failed) == 0 {
		// Where it looked: a cron job or a timer run as another user, or
		// with another HOME, finds nothing, and should say where.
		where := cmp.Or(c.s.tokenFile, c.s.etcdURL(), c.storeDir())
		// Nothing stored needs a login, as for get: a keep-alive job that
		// finds nothing fails rather than pass every day.
		fmt.Fprintf(c.stderr, "%s: no stored profiles to refresh in %s\nhint: log in first: %s\n", prog, where, c.commandLine("login", c.s.profile))
		return &silentExit{protocol.ExitLoginRequired}
	}
	now, code := c.now(), protocol.ExitOK
	fail := func(p string, err error) {
		pe := c.classify(err)
		fmt.Fprintf(c.stderr, "%s: %s\n", p, pe.JSONMessage())
		switch {
		case pe.Code == protocol.LoginRequired:
			code = protocol.ExitLoginRequired
		case code == protocol.ExitOK:
			code = pe.Code.ExitCode()
		}
	}
	names := slices.AppendSeq(slices.Collect(maps.Keys(latest)), maps.Keys(failed))
	slices.Sort(names)
	for _, p := range names {
		if err, ok := failed[p]; ok {
			fail(p, err)
			continue
		}
		e := latest[p]
		// By the server's clock, as get judges the tokens.
		if c.s.within > 0 && !e.RefreshExpires.IsZero() && e.RefreshExpires.Sub(now.Add(e.ClockOffset)) > c.s.within && !c.helper().Kept(p) {
			elsewhere := "" // said now, not only once it is due: a run here cannot renew it
			if c.otherServer(e) {
				elsewhere = "; it is refreshed only at " + e.AccountURL
			}
			fmt.Fprintf(c.stderr, "%s: not due (the refresh token is valid until %s)%s\n", p, protocol.FormatTime(e.RefreshExpires), elsewhere)
			continue
		}
		tok, refreshed, err := c.helper().RefreshDue(ctx, p, c.s.within)
		if err != nil {
			fail(p, err)
			continue
		}
		if !refreshed {
			fmt.Fprintf(c.stderr, "%s: not due: refreshed meanwhile by another process (the access token is valid until %s)\n", p, protocol.FormatTime(tok.Expiry))
			continue
		}
		did := "refreshed"
		if tok.LoggedIn {
			did = "logged in again"
		}
		fmt.Fprintf(c.stderr, "%s: %s (the access token is valid until %s)\n", p, did, protocol.FormatTime(tok.Expiry))
	}
	if code != protocol.ExitOK {
		return &silentExit{code}
	}
	return nil
}
