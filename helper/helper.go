package helper

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// freshWindow is how recent a refresh or login saved by another process
// must be, before this one started, to count as made "meanwhile": a set
// that fresh serves whatever min_ttl says (see Helper.slow), so that
// processes started together with a min_ttl above what the server grants
// make one refresh, not one each.
const freshWindow = 2 * time.Second

// MinMargin is the least time an access token must stay valid to be handed
// out without a refresh: a caller needs time to use it.
const MinMargin = 60 * time.Second

// Store modes.
const (
	ModeAuto    = "auto"
	ModeKeyring = "keyring"
	ModeFile    = "file"
	ModeEtcd    = "etcd" // Config.Etcd: an etcd:// store that many hosts use
)

// ErrLoginRequired is matched (errors.Is) by every *LoginRequiredError.
var ErrLoginRequired = errors.New("login required")

// LoginRequiredError says that only a new login can give a token, and why.
type LoginRequiredError struct {
	Profile string
	Reason  string // such as `no stored credentials for profile "default"`
	// Unset names an environment variable that must be unset before a
	// login helps (it shadows the store); "" otherwise.
	Unset string
	// Issuer is the account server that issued the profile's tokens when
	// it is not this run's (auth.OtherServerError): run against it, they
	// still serve. "" otherwise.
	Issuer string
	Err    error // the cause, if any
}

func (e *LoginRequiredError) Error() string        { return e.Reason }
func (e *LoginRequiredError) Unwrap() error        { return e.Err }
func (e *LoginRequiredError) Is(target error) bool { return target == ErrLoginRequired }

// Config is what a Helper is built from. Zero fields take their defaults.
type Config struct {
	Mode string // ModeAuto (the default), ModeKeyring or ModeFile; ModeEtcd comes with Etcd
	// Dir is the file store's directory: <profile>.json, <profile>.lock,
	// and the index of the profiles kept in the keyring.
	Dir string
	// TokenFile, if set, is the one file used as the store whatever the
	// profile (the SDK's from_file; lock TokenFile+".lock"). It implies
	// ModeFile, and nothing else (no keyring) is read or erased.
	TokenFile string
	// NoKeyring: do not even try the keyring (no D-Bus session bus); its
	// index still counts (KeyringStore.Absent).
	NoKeyring bool
	// Etcd, if set, is the store (ModeEtcd): its lock guards refreshes
	// instead of the file lock, and nothing local but its cache is read.
	Etcd *EtcdStore
	Auth *auth.Client // for refreshes
	// Env is the environment's token source (see FromEnv), nil for none.
	Env    *EnvSource
	Now    func() time.Time                 // default time.Now
	Debugf func(format string, args ...any) // redacted diagnostics; default none
	Warn   func(msg string)                 // messages a human must see; default none
	// Login, if set, logs in without a person. A Get that would answer
	// login_required calls it under the profile's lock, saves the set and
	// answers with it.
	Login func(ctx context.Context) (*auth.TokenSet, error)
	// OnSave, if set, is called after every successful save (login,
	// refresh, store). It reports its own failures: a save stands whatever
	// it does.
	OnSave func(ctx context.Context, set *auth.TokenSet)

	keyring keyringAPI // tests: a fake keyring instead of the OS's
}

// Helper runs the credential lifecycle for one invocation.
type Helper struct {
	cfg     Config
	start   time.Time // when New ran: about when this process started
	debug   bool
	file    *FileStore
	keyring *KeyringStore // nil where the keyring is not to be tried
	store   Store         // the store of the mode
	// forErase is the keyring erase also clears in etcd mode, where
	// nothing else uses it: a profile may be left there from before.
	forErase *KeyringStore
}

// New returns a Helper for cfg, with its defaults applied.
func New(cfg Config) *Helper {
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	if cfg.TokenFile != "" {
		cfg.Mode = ModeFile
	}
	busAbsent := cfg.NoKeyring
	if cfg.Etcd != nil {
		cfg.Mode, cfg.NoKeyring = ModeEtcd, true
	}
	h := &Helper{cfg: cfg, debug: cfg.Debugf != nil}
	if h.cfg.Now == nil {
		h.cfg.Now = time.Now
	}
	if e := cfg.Etcd; e != nil && e.Now == nil {
		e.Now = h.cfg.Now // one clock for the cache and the helper
	}
	h.start = time.Now() // the file system's clock, not the tokens'; see savedSince
	if h.cfg.Debugf == nil {
		h.cfg.Debugf = func(string, ...any) {}
	}
	if h.cfg.Warn == nil {
		h.cfg.Warn = func(string) {}
	}
	h.file = &FileStore{Dir: cfg.Dir, Path: cfg.TokenFile, Warn: h.cfg.Warn, Now: h.cfg.Now}
	if cfg.TokenFile == "" && cfg.Mode != ModeEtcd {
		h.keyring = NewKeyringStore(cfg.Dir)
		if cfg.keyring != nil {
			h.keyring.api = cfg.keyring
		}
		if cfg.NoKeyring {
			h.keyring.Absent = "no D-Bus session bus"
		}
	}
	h.forErase = h.keyring
	if cfg.Mode == ModeEtcd && cfg.TokenFile == "" && !busAbsent {
		h.forErase = NewKeyringStore(cfg.Dir)
		if cfg.keyring != nil {
			h.forErase.api = cfg.keyring
		}
	}
	switch cfg.Mode {
	case ModeEtcd:
		h.store = cfg.Etcd
	case ModeFile:
		h.store = h.file
	case ModeKeyring:
		h.store = &AutoStore{Keyring: h.keyring, File: h.file, KeyringOnly: true}
	default:
		h.store = &AutoStore{Keyring: h.keyring, File: h.file}
	}
	return h
}

// Etcd is the etcd store, nil unless the mode is ModeEtcd.
func (h *Helper) Etcd() *EtcdStore { return h.cfg.Etcd }

func (h *Helper) lock(ctx context.Context, profile string) (func(), error) {
	if h.cfg.Etcd != nil {
		return h.cfg.Etcd.Lock(ctx, profile)
	}
	return lockFile(ctx, h.file.LockFile(profile), false)
}

func token(profile, where string, set *auth.TokenSet, exp time.Time) protocol.Token {
	tt := set.TokenType
	if tt == "" {
		tt = "Bearer"
	}
	return protocol.Token{Profile: profile, AccessToken: set.AccessToken, TokenType: tt, Expiry: exp, Store: where}
}

func noCredentials(profile string) error {
	return &LoginRequiredError{Profile: profile, Reason: fmt.Sprintf("no stored credentials for profile %q", profile)}
}

// envHash names an environment set by the sha256 of its refresh token, as
// the set saved by an auto-login that replaced it records it
// (auth.TokenSet.ReplacedEnv): never the token itself.
func envHash(set *auth.TokenSet) string {
	sum := sha256.Sum256([]byte(set.RefreshToken))
	return hex.EncodeToString(sum[:])
}

// prefer reports whether the stored set answers instead of the
// environment's: it is the result of an earlier refresh of the
// environment's set (same session, later expiry), or of an auto-login that
// replaced it.
func prefer(env *EnvSource, stored *auth.TokenSet) bool {
	if env.Set.RefreshToken != "" && stored.ReplacedEnv == envHash(env.Set) {
		return true
	}
	c, err := stored.Access()
	if err != nil || c.SessionID == "" || c.SessionID != env.Access.SessionID {
		return false
	}
	// A refresh within the second the environment's token was issued in
	// gives the same exp: a stored set of the session with another token
	// and no earlier expiry is the successor too.
	return c.Expiry.Time.After(env.Access.Expiry.Time) ||
		c.Expiry.Time.Equal(env.Access.Expiry.Time) && stored.RefreshToken != env.Set.RefreshToken
}

// read returns the set Get would use: the stored one, or the environment's
// unless the stored one is its successor, and where it is. A corrupt file
// is read again under the profile's lock (taken here unless locked says
// the caller holds it) and only then moved aside. Without the lock (the
// fast path), a store that cannot be read does not stop an environment
// set; under it, it does: a refresh spends the refresh token, and a store
// that cannot be read will hardly take the new one.
func (h *Helper) read(ctx context.Context, profile string, locked bool) (*auth.TokenSet, Result, error) {
	return h.readWith(ctx, profile, locked, h.store.Get)
}

// readWith is read with get for the store's Get.
func (h *Helper) readWith(ctx context.Context, profile string, locked bool, get func(context.Context, string) (*auth.TokenSet, Result, error)) (*auth.TokenSet, Result, error) {
	env := h.cfg.Env
	stored, res, err := get(ctx, profile)
	var ce *CorruptError
	if errors.As(err, &ce) {
		stored, res, err = h.moveAside(ctx, profile, locked, get)
	}
	if env != nil {
		switch {
		case err == nil && prefer(env, stored):
			return stored, res, nil
		case err == nil && locked && subject(stored) != "" && subject(env.Set) != "" && subject(stored) != subject(env.Set):
			// A refresh would save the environment's set over another
			// user's login: a profile holds one account.
			return nil, res, &envError{fmt.Sprintf("%s is user %s's token set, and profile %q holds user %s's tokens: refreshing it would replace them; give it a profile of its own (--profile), or erase this one", env.Var, subject(env.Set), profile, subject(stored))}
		case err == nil, errors.Is(err, ErrNotFound):
		case locked:
			return nil, res, err
		default:
			h.cfg.Debugf("store: %v (using %s)", err, EnvTokensJSON)
		}
		return env.Set, Result{Store: EnvTokensJSON}, nil
	}
	if errors.Is(err, ErrNotFound) {
		if h.cfg.TokenFile != "" {
			return nil, res, &LoginRequiredError{Profile: profile, Reason: "no token file at " + h.cfg.TokenFile}
		}
		return nil, res, noCredentials(profile)
	}
	return stored, res, err
}

// moveAside reads the profile again (with get) under its lock and moves a
// file that is still corrupt aside, then reads once more.
func (h *Helper) moveAside(ctx context.Context, profile string, locked bool, get func(context.Context, string) (*auth.TokenSet, Result, error)) (*auth.TokenSet, Result, error) {
	if !locked {
		unlock, err := h.lock(ctx, profile)
		if err != nil {
			return nil, Result{}, err
		}
		defer unlock()
	}
	set, res, err := get(ctx, profile)
	var ce *CorruptError
	if !errors.As(err, &ce) {
		return set, res, err
	}
	if err := h.file.MoveAside(ce); err != nil {
		return nil, res, err
	}
	return get(ctx, profile)
}

// Get returns an access token that stays valid for more than
// max(MinMargin, minTTL), refreshing first if needed (or if force). The
// fast path — a valid token — reads the store once and takes no lock and
// makes no request.
func (h *Helper) Get(ctx context.Context, profile string, minTTL time.Duration, force bool) (protocol.Token, error) {
	margin := max(MinMargin, minTTL)
	now := h.cfg.Now()
	if env := h.cfg.Env; env != nil && env.Bare() {
		// A bare token cannot be refreshed: it serves until it expires.
		if !auth.ValidFor(env.Access.Expiry.Time, now, 0) {
			return protocol.Token{}, &LoginRequiredError{Profile: profile,
				Reason: EnvToken + " has expired and cannot be refreshed", Unset: EnvToken}
		}
		return token(profile, EnvToken, env.Set, env.Access.Expiry.Time), nil
	}
	peek := h.store.Get
	if p, ok := h.store.(peeker); ok {
		peek = p.Peek // the fast path needs the access token alone
	}
	if l, ok := h.store.(localPeeker); ok && h.cfg.Env != nil && !force &&
		auth.ValidFor(h.cfg.Env.Access.Expiry.Time, h.cfg.Env.Set.ServerNow(now), margin) {
		// The environment's set serves without a trip to etcd unless this
		// host's cache has its successor: etcd could hold only a later
		// one, which a refresh reads under the lock.
		peek = l.PeekLocal
	}
	set, res, err := h.readWith(ctx, profile, false, peek)
	if errors.Is(err, ErrLoginRequired) && h.cfg.Login != nil {
		return h.slow(ctx, profile, "", margin, force)
	}
	if err != nil {
		return protocol.Token{}, err
	}
	rescued := h.rescued(profile, res)
	now = set.ServerNow(now) // tokens are judged by the server's clock
	if c, err := set.Access(); err == nil && !force && !rescued && auth.ValidFor(c.Expiry.Time, now, margin) {
		if h.debug {
			from := res.Store
			if res.Path != "" {
				from += " (" + res.Path + ")"
			}
			h.cfg.Debugf("fast path: %s from %s, valid for %s (clock offset %s)", auth.Describe(set.AccessToken), from, c.Expiry.Time.Sub(now).Round(time.Second), set.ClockOffset)
		}
		return token(profile, res.Store, set, c.Expiry.Time), nil
	}
	return h.slow(ctx, profile, set.AccessToken, margin, force)
}

// reserve makes room for the refreshed set before the request that spends
// the old refresh token (see reserver); where the store reserves nothing,
// the set goes through its Set. A set read from the file (from) stays in
// the file, in keyring mode unless the keyring's index names the profile
// (see rescued), in auto mode unless it is a refresh the keyring did not
// take (Result.Kept): a refresh does not move a profile.
func (h *Helper) reserve(ctx context.Context, profile string, from Result) (reservation, error) {
	store := h.store
	switch {
	case from.Store != "file":
	case h.cfg.Mode == ModeKeyring && !h.rescued(profile, from), h.cfg.Mode == ModeAuto && !from.Kept:
		store = h.file
	}
	if r, ok := store.(reserver); ok {
		w, err := r.reserve(ctx, profile)
		if err != nil || w != nil {
			return w, err
		}
	}
	return storeSet{h, ctx, profile}, nil
}

// storeSet is the reservation of a store that reserves nothing: the
// keyring and etcd. A set the keyring will not take after a refresh spent the old
// refresh token is kept in the profile's file instead (0600), with a
// warning; the next get moves it back into the keyring.
type storeSet struct {
	h       *Helper
	ctx     context.Context
	profile string
}

func (w storeSet) commit(set *auth.TokenSet) (Result, error) {
	// A set the server has issued is saved whatever ended the command
	// meanwhile (an interrupt, the budget): each store call has its own
	// timeout.
	ctx := context.WithoutCancel(w.ctx)
	res, err := w.h.store.Set(ctx, w.profile, set)
	if err == nil || res.Store != "keyring" {
		return res, err
	}
	fres, ferr := w.h.file.Set(ctx, w.profile, set)
	if ferr != nil {
		return res, fmt.Errorf("%w (and the file store: %w)", err, ferr)
	}
	// Keyring mode moves a kept set back with the next get that can
	// (rescued); auto, with a refresh, only a refresh of the keyring's own
	// session (Result.Kept), and otherwise reads it from the file.
	then := "the next get that reaches the keyring moves them back into it"
	if w.h.cfg.Mode == ModeAuto {
		then = "where auto reads them until a refresh or login puts them in the keyring"
	}
	w.h.cfg.Warn(fmt.Sprintf("warning: the keyring did not take the new tokens of profile %q (%v); kept them in %s (mode 0600), %s", w.profile, err, fres.Path, then))
	fres.Fallback = err.Error()
	return fres, nil
}

func (storeSet) release() {}

// refreshFailed says which refresh failures need a new login.
func refreshFailed(profile string, err error) error {
	switch {
	case errors.Is(err, auth.ErrInvalidGrant):
		return &LoginRequiredError{Profile: profile, Reason: fmt.Sprintf("the refresh token of profile %q was refused (expired, revoked or already used)", profile), Err: err}
	case errors.Is(err, auth.ErrRefreshTokenExpired):
		return &LoginRequiredError{Profile: profile, Reason: fmt.Sprintf("the refresh token of profile %q has expired", profile), Err: err}
	case errors.Is(err, auth.ErrNoRefreshToken):
		return &LoginRequiredError{Profile: profile, Reason: fmt.Sprintf("profile %q has no refresh token, so its access token cannot be renewed", profile), Err: err}
	}
	if oe := (*auth.OtherServerError)(nil); errors.As(err, &oe) {
		return &LoginRequiredError{Profile: profile, Issuer: oe.Issuer, Err: err,
			Reason: fmt.Sprintf("the tokens of profile %q come from the account server %s, not from %s: they are renewed there alone", profile, oe.Issuer, oe.Here)}
	}
	return err
}

// slow is get's slow path: lock → re-read → still needed? → refresh (or
// auto-login) → save → unlock. The new set is saved before its token is
// returned, because the old refresh token is spent the moment the server
// answers. current is the access token read before the lock ("" if none).
func (h *Helper) slow(ctx context.Context, profile, current string, margin time.Duration, force bool) (_ protocol.Token, err error) {
	unlock, err := h.lock(ctx, profile)
	if err != nil {
		return protocol.Token{}, err
	}
	defer unlock()
	set, res, kept, err := h.readLocked(ctx, profile)
	if kept {
		current = set.AccessToken // this host's own set: no other process refreshed
	}
	if errors.Is(err, ErrLoginRequired) {
		return h.autoLogin(ctx, profile, nil, err)
	}
	if err != nil {
		return protocol.Token{}, err
	}
	if res.Store == EnvTokensJSON {
		// A refused set from the environment stays refused: a login saves
		// a new set, but get would go on reading this one.
		defer func() {
			if lr := (*LoginRequiredError)(nil); errors.As(err, &lr) && lr.Unset == "" {
				lr.Unset = EnvTokensJSON
				lr.Reason = EnvTokensJSON + ": " + lr.Reason
			}
		}()
	}
	now := set.ServerNow(h.cfg.Now())
	c, err := set.Access()
	if err != nil {
		return h.refreshLocked(ctx, profile, set, res, force)
	}
	exp := c.Expiry.Time
	// A token that cannot be renewed here (no refresh token, an expired
	// one, or one of another account server) is returned while it stays
	// valid, as a refreshed token that falls short of min_ttl is, and as
	// PRUSA_TOKEN is; a force_refresh comes from a caller it just failed,
	// who needs to hear that a login is due.
	stuck := !force && auth.ValidFor(exp, now, MinMargin) && h.cfg.Auth.Refreshable(*set) != nil
	switch {
	case !force && auth.ValidFor(exp, now, margin):
	case set.AccessToken != current && auth.ValidFor(exp, now, 0):
		// Another process refreshed after this one read: its token
		// serves, whatever min_ttl or force_refresh ask.
	case !force && savedSince(h.file.LockFile(profile), h.start.Add(-freshWindow), set.AccessToken) && auth.ValidFor(exp, now, 0):
		// The same when a process that started with this one saved the
		// set before this one read it: a refresh now would give no
		// longer a lifetime, whether min_ttl or the server's grant is
		// what the token falls short of.
	case stuck && h.cfg.Login == nil:
	default:
		tok, err := h.refreshLocked(ctx, profile, set, res, force)
		if err != nil && stuck {
			// The auto-login that was to renew it failed (or was not
			// for another server's tokens): the token still serves.
			h.cfg.Debugf("%v; serving the stored token", err)
			return token(profile, res.Store, set, exp), nil
		}
		if left := exp.Sub(now); err != nil && left > 0 && (errors.Is(err, auth.ErrNetwork) || errors.Is(err, auth.ErrServer)) {
			// Say why a token that status calls valid was not served:
			// it expires within the margin get keeps, or a refresh was
			// asked for.
			if force {
				err = fmt.Errorf("%w; the stored access token is still valid for another %.0fs (a get without force_refresh serves it)", err, left.Seconds())
			} else {
				err = fmt.Errorf("%w; the stored access token is valid for another %.0fs, within the %.0fs margin", err, left.Seconds(), margin.Seconds())
			}
		}
		return tok, err
	}
	if h.debug {
		h.cfg.Debugf("no refresh needed: %s", auth.Describe(set.AccessToken))
	}
	if h.rescued(profile, res) {
		return h.moveBack(ctx, profile, set, exp)
	}
	return token(profile, res.Store, set, exp), nil
}

// rescued reports whether the set read (res) is one that a save meant for
// the keyring kept in the file (see storeSet): in keyring mode, a set in
// the file of a profile that the keyring's index names. A profile that
// was only ever in the file (logged in where there was no keyring) stays
// there.
func (h *Helper) rescued(profile string, res Result) bool {
	if h.cfg.Mode != ModeKeyring || res.Store != "file" {
		return false
	}
	names, err := h.keyring.Profiles()
	return err != nil || slices.Contains(names, profile)
}

// moveBack moves a set that a refresh kept in the file (the keyring would
// not take it) back into the keyring. The caller holds the lock. A keyring
// that still refuses leaves the file as it is.
func (h *Helper) moveBack(ctx context.Context, profile string, set *auth.TokenSet, exp time.Time) (protocol.Token, error) {
	if _, err := h.keyring.Set(ctx, profile, set); err != nil {
		h.cfg.Debugf("keyring still refuses: %v", err)
		return token(profile, "file", set, exp), nil
	}
	if err := h.leaveFile(ctx, profile); err != nil {
		return protocol.Token{}, err
	}
	return token(profile, "keyring", set, exp), nil
}

// leaveFile removes a rescued set's file once the keyring holds the
// profile's set again, and says so.
func (h *Helper) leaveFile(ctx context.Context, profile string) error {
	if err := h.file.Delete(ctx, profile); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	h.cfg.Warn(fmt.Sprintf("moved the tokens of profile %q from %s back into the keyring", profile, h.file.File(profile)))
	return nil
}

// otherLoopback reports whether a and b are account URLs on loopback
// hosts or ports that differ: two servers, which SameServer counts as one.
func otherLoopback(a, b string) bool {
	ua, erra := url.Parse(a)
	ub, errb := url.Parse(b)
	if erra != nil || errb != nil || !auth.IsLoopback(ua.Hostname()) || !auth.IsLoopback(ub.Hostname()) {
		return false
	}
	port := func(u *url.URL) string {
		return cmp.Or(u.Port(), map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)])
	}
	return !strings.EqualFold(ua.Hostname(), ub.Hostname()) || port(ua) != port(ub)
}

// refreshLocked refreshes set, read from the store from names, and saves
// the result; the caller holds the lock and has re-read set under it.
func (h *Helper) refreshLocked(ctx context.Context, profile string, set *auth.TokenSet, from Result, force bool) (protocol.Token, error) {
	if h.debug {
		h.cfg.Debugf("refreshing %s with %s (clock offset %s)", auth.Describe(set.AccessToken), auth.Describe(set.RefreshToken), set.ClockOffset)
	}
	if err := h.cfg.Auth.Refreshable(*set); err != nil {
		return h.autoLogin(ctx, profile, set, refreshFailed(profile, err)) // no request, so nothing to save
	}
	save, err := h.reserve(ctx, profile, from)
	if err != nil {
		return protocol.Token{}, err // before the request: the refresh token is not spent
	}
	defer save.release()
	fresh, err := h.cfg.Auth.Refresh(ctx, *set)
	if errors.Is(err, auth.ErrInvalidGrant) {
		// Another process (one that does not take our lock, or a store
		// command) may have rotated the token: look once more.
		again, againRes, rerr := h.read(ctx, profile, true)
		if rerr != nil && !errors.Is(rerr, ErrLoginRequired) {
			// Whether another process renewed it cannot be known, and a
			// store that does not answer is never read as logged out.
			return protocol.Token{}, fmt.Errorf("the refresh token of profile %q was refused, and the store cannot be read again to see whether another process renewed it: %w", profile, rerr)
		}
		if rerr == nil && again.RefreshToken != set.RefreshToken {
			h.cfg.Debugf("refresh token was rotated by someone else; using the stored one")
			if c, err := again.Access(); err == nil && auth.ValidFor(c.Expiry.Time, again.ServerNow(h.cfg.Now()), 0) && !force {
				return token(profile, againRes.Store, again, c.Expiry.Time), nil
			}
			set = again
			fresh, err = h.cfg.Auth.Refresh(ctx, *again)
		}
	}
	if err != nil {
		err = refreshFailed(profile, err)
		if lr := (*LoginRequiredError)(nil); errors.As(err, &lr) && errors.Is(err, auth.ErrInvalidGrant) && otherLoopback(set.AccountURL, h.cfg.Auth.AccountURL) {
			// Loopback servers on two ports count as one (the emulator
			// restarted): say which refused a token the other issued.
			lr.Reason += fmt.Sprintf(" by %s; the tokens came from %s", h.cfg.Auth.AccountURL, set.AccountURL)
		}
		return h.autoLogin(ctx, profile, set, err)
	}
	tok, err := h.save(ctx, profile, save, &fresh)
	if err != nil && h.cfg.Etcd != nil {
		return h.keepForEtcd(ctx, profile, &fresh, err)
	}
	if err == nil && h.cfg.Mode == ModeKeyring && from.Store == "file" && tok.Store == "keyring" {
		// A rescued set (see reserve), renewed into the keyring: the
		// file holds the spent one.
		if lerr := h.leaveFile(context.WithoutCancel(ctx), profile); lerr != nil {
			h.cfg.Debugf("removing the rescued file: %v", lerr)
		}
	}
	return tok, err
}

// keepForEtcd keeps a refreshed set that etcd would not take (unreachable,
// or the lock lost) on this host, since the server has already spent the
// old refresh token: it is written to etcd by this host's next locked read
// (readLocked). Where it cannot be kept either, the save's error stands.
func (h *Helper) keepForEtcd(ctx context.Context, profile string, set *auth.TokenSet, saveErr error) (protocol.Token, error) {
	path, err := h.cfg.Etcd.keepRescue(profile, set)
	if err != nil {
		return protocol.Token{}, saveErr
	}
	if !errors.Is(saveErr, ErrStoreConflict) {
		// Unreachable: this host serves the new token meanwhile. Not
		// after a conflict: the key was written or erased since (its
		// lock lost with its lease), and etcd has the last word.
		h.cfg.Etcd.writeCache(profile, set)
	}
	h.cfg.Warn(fmt.Sprintf("warning: etcd did not take the refreshed tokens of profile %q (%s); kept them in %s: this host's next refresh writes them to etcd, unless a newer set is there by then; until it does, a refresh on another host finds the spent refresh token and answers login_required", profile, reason(saveErr), path))
	h.saved(ctx, set)
	c, err := set.Access()
	if err != nil {
		return protocol.Token{}, saveErr // never: Refresh validates
	}
	return token(profile, ModeEtcd, set, c.Expiry.Time), nil
}

// Kept reports whether a refreshed set of the profile waits on this host to
// be written to etcd (see keepForEtcd): the set etcd holds is then spent,
// and a refresh is due whatever its expiry says.
func (h *Helper) Kept(profile string) bool { return h.cfg.Etcd != nil && h.cfg.Etcd.Kept(profile) }

// readLocked is read under the profile's lock, which the caller holds.
// With the file store, a set that a save could not put in place (see
// FileStore.Kept) is returned in place of the file's, and put there.
// With an etcd store, a set that keepForEtcd kept on this host is written
// to etcd first when the profile's key is still at the revision the kept
// set was to replace (as just read), and is returned in place of what was
// read (kept says so). A key written since (by another host, or by the
// write that seemed to fail) or erased wins, and the kept set goes. With
// etcd in trouble, it stays.
func (h *Helper) readLocked(ctx context.Context, profile string) (_ *auth.TokenSet, _ Result, kept bool, _ error) {
	stored, res, err := h.read(ctx, profile, true)
	if h.cfg.Etcd == nil {
		// Judged against what was read (the file, the keyring, the
		// environment's set), or against nothing where nothing could be
		// read (a torn in-place write that cannot be moved aside, say).
		var against *auth.TokenSet
		if err == nil {
			against = stored
		}
		if set, tmp := h.file.Kept(profile, against); set != nil {
			// A save that could not replace the file kept the set there:
			// it is the newest, and its refresh token the live one.
			fres := Result{Store: "file", Path: h.file.File(profile)}
			if err := h.file.Adopt(profile, tmp); err != nil {
				h.cfg.Warn(fmt.Sprintf("warning: using the tokens of profile %q kept in %s; %s still cannot take them (%v)", profile, tmp, fres.Path, reason(err)))
			}
			return set, fres, false, nil
		}
		return stored, res, false, err
	}
	r := h.cfg.Etcd.rescued(profile)
	if r == nil || err != nil && !errors.Is(err, ErrLoginRequired) {
		return stored, res, false, err
	}
	if rev, read := h.cfg.Etcd.revision(profile); !read || rev != r.Revision {
		h.cfg.Etcd.dropRescue(profile)
		h.cfg.Debugf("etcd's key of profile %q changed since the kept set was to replace it: dropped the kept set", profile)
		return stored, res, false, err
	}
	saved, err := h.cfg.Etcd.Set(ctx, profile, r.Set) // at the revision just read, as the refresh's own save would have
	if err != nil {
		return nil, saved, false, err
	}
	h.cfg.Warn(fmt.Sprintf("wrote the refreshed tokens of profile %q kept on this host to etcd", profile))
	return r.Set, saved, true, nil
}

// save commits a new set (refreshed or logged in), runs OnSave, and
// answers with its token.
func (h *Helper) save(ctx context.Context, profile string, save reservation, set *auth.TokenSet) (protocol.Token, error) {
	res, err := save.commit(set)
	var kept *KeptError
	switch {
	case errors.As(err, &kept):
		// The set is on disk, whole, beside the file: the next locked
		// read takes it from there (readLocked).
		h.cfg.Warn(fmt.Sprintf("warning: the new tokens of profile %q could not replace %s (%v); kept them in %s (mode 0600), where the next refresh takes them from", profile, kept.Path, kept.Err, kept.Kept))
	case err != nil:
		return protocol.Token{}, fmt.Errorf("saving the new tokens: %w", err)
	}
	markSaved(h.file.LockFile(profile), set.AccessToken)
	c, err := set.Access()
	if err != nil {
		return protocol.Token{}, fmt.Errorf("new access token: %w", err) // never: Refresh and Login validate
	}
	if h.debug {
		h.cfg.Debugf("saved %s to %s (clock offset %s)", auth.Describe(set.AccessToken), res.Store, set.ClockOffset)
	}
	h.saved(ctx, set) // after saying so: its own lines come second
	return token(profile, res.Store, set, c.Expiry.Time), nil
}

// saved runs OnSave.
func (h *Helper) saved(ctx context.Context, set *auth.TokenSet) {
	if h.cfg.OnSave != nil {
		h.cfg.OnSave(ctx, set)
	}
}

// autoLogin answers a login_required (why) with Config.Login, when set:
// under the lock the caller holds, it logs in, saves the set and answers.
// A set that replaces the environment's records which (by a hash of its
// refresh token), so that later gets prefer the stored one. Tokens of
// another account server are left to a person: a login would send the
// password to this run's server, and replace them. So are the tokens of
// another user than the login's (old, the set that needs the login, if
// any): a profile holds one account.
func (h *Helper) autoLogin(ctx context.Context, profile string, old *auth.TokenSet, why error) (protocol.Token, error) {
	if h.cfg.Login == nil || !errors.Is(why, ErrLoginRequired) || errors.Is(why, auth.ErrOtherServer) {
		return protocol.Token{}, why
	}
	h.cfg.Debugf("auto-login: %v", why)
	save, err := h.reserve(ctx, profile, Result{})
	if err != nil {
		return protocol.Token{}, err
	}
	defer save.release()
	set, err := h.cfg.Login(ctx)
	if err != nil {
		return protocol.Token{}, err
	}
	if was, now := subject(old), subject(set); was != "" && now != "" && was != now {
		return protocol.Token{}, &LoginRequiredError{Profile: profile, Err: why,
			Reason: fmt.Sprintf("the auto-login is for user %s, and profile %q holds user %s's tokens: left them as they are", now, profile, was)}
	}
	if env := h.cfg.Env; env != nil && env.Set.RefreshToken != "" {
		set.ReplacedEnv = envHash(env.Set)
	}
	tok, err := h.save(ctx, profile, save, set)
	tok.LoggedIn = err == nil
	return tok, err
}

// subject is the user a set's tokens are for ("" when unknown).
func subject(set *auth.TokenSet) string {
	if set == nil {
		return ""
	}
	if c, err := set.Access(); err == nil {
		return string(c.Subject)
	}
	if c, err := set.RefreshClaims(); err == nil {
		return string(c.Subject)
	}
	return ""
}

// Refresh refreshes the profile's set now, under its lock, whatever its
// expiry, and returns the new token.
func (h *Helper) Refresh(ctx context.Context, profile string) (protocol.Token, error) {
	tok, _, err := h.RefreshDue(ctx, profile, 0)
	return tok, err
}

// RefreshDue is Refresh of a set whose refresh token expires within
// within (by the server's clock), as read under the lock; within 0: any.
// A set that another process refreshed since it was listed is not due:
// its token is returned, and refreshed false.
func (h *Helper) RefreshDue(ctx context.Context, profile string, within time.Duration) (tok protocol.Token, refreshed bool, err error) {
	unlock, err := h.lock(ctx, profile)
	if err != nil {
		return protocol.Token{}, false, err
	}
	defer unlock()
	set, res, kept, err := h.readLocked(ctx, profile)
	if err != nil {
		return protocol.Token{}, false, err
	}
	if within > 0 && !kept && !h.Kept(profile) {
		r, rerr := set.RefreshClaims()
		a, aerr := set.Access()
		if rerr == nil && aerr == nil && r.Expiry.Time.Sub(set.ServerNow(h.cfg.Now())) > within {
			return token(profile, res.Store, set, a.Expiry.Time), false, nil
		}
	}
	tok, err = h.refreshLocked(ctx, profile, set, res, true)
	return tok, err == nil, err
}

// StoreSet validates a token set and saves it under the profile's lock. A
// set that does not validate changes nothing. It says where the set went.
func (h *Helper) StoreSet(ctx context.Context, profile string, set *auth.TokenSet) (Result, error) {
	if err := set.Validate(); err != nil {
		return Result{}, err
	}
	if set.TooLarge() { // a store could not give it back whole
		return Result{}, fmt.Errorf("%w: over %d bytes as stored", auth.ErrInvalidTokenSet, auth.MaxSetSize)
	}
	unlock, err := h.lock(ctx, profile)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if h.cfg.Mode == ModeFile {
		// A corrupt file is moved aside, with its warning, not overwritten
		// unseen: what it held may still be of use to someone.
		if _, _, err := h.moveAside(ctx, profile, true, h.store.Get); err != nil && !errors.Is(err, ErrNotFound) && !errors.As(err, new(*CorruptError)) {
			h.cfg.Debugf("store: reading the file it replaces: %v", err)
		}
	}
	res, err := h.store.Set(ctx, profile, set)
	if kept := (*KeptError)(nil); errors.As(err, &kept) {
		// Nothing is spent here: the set given to store stays with the
		// caller, who is told it was not saved.
		os.Remove(kept.Kept)
		return res, fmt.Errorf("%w: rename to %s: %v", ErrStorage, kept.Path, kept.Err)
	}
	if err != nil {
		return res, err
	}
	h.saved(ctx, set)
	return res, nil
}

// CheckWritable checks, before a login asks for anything, that the store a
// new set of the profile would go to takes it: the keyring gets a small
// item written and removed. It returns that store's name. In auto mode a
// keyring that cannot be reached is no error: the set would go to the
// file.
func (h *Helper) CheckWritable(ctx context.Context, profile string) (string, error) {
	if h.cfg.Etcd != nil {
		// The companion is there and etcd answers: a login that could not
		// be saved would spend a TOTP step and leave a session no one has.
		if err := h.cfg.Etcd.Check(); err != nil {
			return ModeEtcd, err
		}
		_, err := h.cfg.Etcd.Profiles(ctx)
		return ModeEtcd, err
	}
	if h.keyring == nil || h.cfg.Mode == ModeFile {
		return "file", h.file.CheckWritable(profile)
	}
	err := h.keyring.CheckWritable(ctx, profile)
	if err == nil {
		return "keyring", nil
	}
	if h.cfg.Mode == ModeAuto && errors.Is(err, ErrUnavailable) {
		return "file", h.file.CheckWritable(profile)
	}
	return "keyring", fmt.Errorf("the keyring will not take the tokens of profile %q: %w", profile, err)
}

// Erased says what Erase removed.
type Erased struct {
	Removed []string // the stores that held the profile
}

// Any reports whether anything was removed.
func (e Erased) Any() bool { return len(e.Removed) > 0 }

// StoreNames names the stores Erase removed a profile from (Erased.Removed),
// for people: "etcd and the file store".
func StoreNames(stores []string) string {
	names := make([]string, len(stores))
	for i, s := range stores {
		switch s {
		case ModeFile:
			names[i] = "the file store"
		case ModeKeyring:
			names[i] = "the keyring"
		default:
			names[i] = s
		}
	}
	if n := len(names); n > 1 {
		return strings.Join(names[:n-1], ", ") + " and " + names[n-1]
	}
	return strings.Join(names, "")
}

// Erase removes the profile from every store it may be in, whatever the
// mode: the file store and the keyring (with a token file: that file
// alone). A keyring that cannot be reached while it may hold the profile
// is a storage error that says what was removed: erase does not claim a
// profile gone that may still be there.
func (h *Helper) Erase(ctx context.Context, profile string) (Erased, error) {
	if h.cfg.TokenFile != "" {
		if _, err := os.Stat(filepath.Dir(h.cfg.TokenFile)); errors.Is(err, fs.ErrNotExist) {
			return Erased{}, nil // nothing there, and the user's folder is not made for a lock
		}
	}
	unlock, err := h.lock(ctx, profile)
	if err != nil {
		return Erased{}, err
	}
	defer unlock()
	var out Erased
	if h.cfg.Etcd != nil {
		// etcd first: unreachable, it changes nothing here either.
		switch err := h.cfg.Etcd.Delete(ctx, profile); {
		case err == nil:
			out.Removed = append(out.Removed, ModeEtcd)
		case !errors.Is(err, ErrNotFound):
			return out, err
		}
	}
	switch err := h.file.Delete(ctx, profile); {
	case err == nil:
		out.Removed = append(out.Removed, "file")
	case !errors.Is(err, ErrNotFound):
		return out, err
	}
	kr := h.forErase
	if kr == nil {
		return out, nil
	}
	err = kr.Delete(ctx, profile)
	switch {
	case err == nil:
		out.Removed = append(out.Removed, "keyring")
	case errors.Is(err, ErrNotFound):
	case errors.Is(err, ErrUnavailable):
		// As for Get: the keyring may hold the profile when the index names
		// it, or when there is no index and the file held nothing.
		if kr.MayHold(profile, out.Any(), err) {
			did := "removed nothing: "
			if out.Any() {
				did = "removed it from " + StoreNames(out.Removed) + ", but "
			}
			return out, mayHold(err, profile, did)
		}
		h.cfg.Debugf("erase: %v", err)
	default:
		return out, err
	}
	return out, nil
}

// Describe returns what list and status show of a token set: no secrets.
func Describe(profile, store string, set *auth.TokenSet) protocol.Profile {
	e := protocol.Profile{Profile: profile, Store: store, ClockOffset: set.ClockOffset, AccountURL: set.AccountURL}
	if c, err := set.Access(); err == nil {
		e.UserID, e.AccessExpires = string(c.Subject), c.Expiry.Time
	}
	if c, err := set.RefreshClaims(); err == nil {
		e.RefreshExpires = c.Expiry.Time
	}
	if c, err := auth.ParseJWT(set.IDToken); err == nil && c.User != nil {
		e.Email = c.User.Email
		if e.UserID == "" {
			e.UserID = string(c.User.ID)
		}
	}
	return e
}

// Status describes the set Get would use for the profile — from the
// environment or the store, in Get's order. found is false when nothing is
// stored (the entry then names the store a login would use).
func (h *Helper) Status(ctx context.Context, profile string) (entry protocol.Profile, found bool, err error) {
	if env := h.cfg.Env; env != nil && env.Bare() {
		return Describe(profile, EnvToken, env.Set), true, nil
	}
	set, res, err := h.read(ctx, profile, false)
	if errors.Is(err, ErrLoginRequired) {
		return protocol.Profile{Profile: profile, Store: cmp.Or(res.Store, h.store.Name())}, false, nil
	}
	if err != nil {
		return protocol.Profile{}, false, err
	}
	return Describe(profile, res.Store, set), true, nil
}

// List describes every stored profile: the files of the file store and the
// profiles the keyring index names, sorted by profile then store. With a
// token file it describes that file alone, as profile. A profile it cannot
// read is an error: list never leaves one out.
func (h *Helper) List(ctx context.Context, profile string) ([]protocol.Profile, error) {
	out, unread, err := h.list(ctx, profile, false)
	if err == nil && len(unread) > 0 {
		err = unread[0].Err
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Unread is a stored profile that ListAll could not read, and why.
type Unread struct {
	Profile string
	Err     error
}

// ListAll is List that goes on past the profiles it cannot read and
// returns them apart, for refresh --all. An error that keeps a whole store
// from being listed still ends it.
func (h *Helper) ListAll(ctx context.Context, profile string) ([]protocol.Profile, []Unread, error) {
	return h.list(ctx, profile, true)
}

// list is List, or with all ListAll.
func (h *Helper) list(ctx context.Context, profile string, all bool) ([]protocol.Profile, []Unread, error) {
	var out []protocol.Profile
	var unread []Unread
	// failed records that profile p could not be read; it reports whether
	// to go on.
	failed := func(p string, err error) bool {
		unread = append(unread, Unread{p, err})
		return all
	}
	if h.cfg.Etcd != nil {
		names, err := h.cfg.Etcd.Profiles(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range names {
			switch set, _, err := h.cfg.Etcd.Get(ctx, p); {
			case err == nil:
				out = append(out, Describe(p, ModeEtcd, set))
			case errors.Is(err, ErrNotFound):
			case !failed(p, err):
				return nil, unread, nil
			}
		}
		sortProfiles(out)
		return out, unread, nil
	}
	names := []string{profile}
	if h.cfg.TokenFile == "" {
		var err error
		if names, err = h.file.Profiles(); err != nil {
			return nil, nil, err
		}
	}
	for _, p := range names {
		set, _, err := h.file.Get(ctx, p)
		var ce *CorruptError
		if errors.As(err, &ce) {
			set, _, err = h.moveAside(ctx, p, false, h.file.Get)
		}
		switch {
		case err == nil:
			out = append(out, Describe(p, "file", set))
		case errors.Is(err, ErrNotFound):
		case !failed(p, err):
			return nil, unread, nil
		}
	}
	if h.keyring != nil {
		names, err := h.keyring.Profiles()
		if err != nil {
			return nil, nil, err
		}
		// With nothing named, a keyring may still hold profiles: always in
		// keyring mode, and in auto mode when there is no index and the
		// file holds nothing (as for get, see MayHold). It must answer,
		// unless asking finds that there is no keyring at all.
		keyringMayHold := func(err error) bool {
			return h.cfg.Mode == ModeKeyring || len(out) == 0 && h.keyring.MayHold("", false, err)
		}
		if len(names) == 0 && keyringMayHold(nil) {
			if err := h.keyring.Reachable(ctx); err != nil && keyringMayHold(err) {
				return nil, nil, err
			}
		}
		var down error // a keyring that did not answer is not asked again
		for _, p := range names {
			var set *auth.TokenSet
			err := down
			if err == nil {
				set, _, err = h.keyring.Get(ctx, p)
			}
			switch {
			case err == nil:
				out = append(out, Describe(p, "keyring", set))
			case errors.Is(err, ErrNotFound):
			case errors.Is(err, ErrUnavailable):
				down = err
				if !failed(p, mayHold(err, p, "")) {
					return nil, unread, nil
				}
			case !failed(p, err):
				return nil, unread, nil
			}
		}
	}
	sortProfiles(out)
	return out, unread, nil
}

// sortProfiles sorts by profile, then store.
func sortProfiles(ps []protocol.Profile) {
	slices.SortFunc(ps, func(a, b protocol.Profile) int {
		return cmp.Or(strings.Compare(a.Profile, b.Profile), strings.Compare(a.Store, b.Store))
	})
}
