package helper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// MinMargin is the least time an access token must stay valid to be handed
// out without a refresh: a caller needs time to use it.
const MinMargin = 60 * time.Second

// Store modes.
const (
	ModeAuto    = "auto"
	ModeKeyring = "keyring"
	ModeFile    = "file"
)

// ErrLoginRequired is matched (errors.Is) by every *LoginRequiredError.
var ErrLoginRequired = errors.New("login required")

// LoginRequiredError says that only a new login can give a token, and why.
type LoginRequiredError struct {
	Profile string
	Reason  string // such as `no stored credentials for profile "default"`
	Err     error  // the cause, if any
}

func (e *LoginRequiredError) Error() string        { return e.Reason }
func (e *LoginRequiredError) Unwrap() error        { return e.Err }
func (e *LoginRequiredError) Is(target error) bool { return target == ErrLoginRequired }

// Helper runs the credential lifecycle for one invocation.
type Helper struct {
	Mode    string        // ModeAuto, ModeKeyring or ModeFile
	File    *FileStore    // always set: the file store, and where lock files live
	Keyring *KeyringStore // nil where the keyring is not to be tried
	Auth    *auth.Client  // for refreshes
	Getenv  func(string) string
	// Env, if set, is the environment's token source as the caller already
	// read it with FromEnv (so it is parsed once); nil reads it from Getenv.
	Env    *EnvSource
	Now    func() time.Time
	Debugf func(format string, args ...any)
	// Slow, if set, wraps the context of get's slow path (lock, refresh,
	// save): the CLI arms its time budget there, so that the fast path does
	// not pay for it.
	Slow func(ctx context.Context) (context.Context, context.CancelFunc)

	store Store
}

// Token is what Get returns: never the refresh token.
type Token struct {
	Profile     string
	AccessToken string
	TokenType   string
	Expiry      time.Time
	Store       string // where it came from: "keyring", "file" or an environment variable
}

// String describes the token without its value.
func (t Token) String() string {
	return fmt.Sprintf("helper.Token{profile: %s, %s, from %s}", t.Profile, auth.Describe(t.AccessToken), t.Store)
}

// GoString is String, so that %#v does not print the token either.
func (t Token) GoString() string { return t.String() }

func (h *Helper) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Helper) debugf(format string, args ...any) {
	if h.Debugf != nil {
		h.Debugf(format, args...)
	}
}

// fromEnv is the environment's token source: h.Env, else read now.
func (h *Helper) fromEnv() (*EnvSource, error) {
	if h.Env != nil {
		return h.Env, nil
	}
	return FromEnv(h.getenv)
}

func (h *Helper) getenv(k string) string {
	if h.Getenv != nil {
		return h.Getenv(k)
	}
	return ""
}

// Store returns the store of h's mode.
func (h *Helper) Store() Store {
	if h.store != nil {
		return h.store
	}
	switch h.Mode {
	case ModeKeyring:
		h.store = h.Keyring
	case ModeFile:
		h.store = h.File
	default:
		h.store = &AutoStore{Keyring: h.Keyring, File: h.File}
	}
	return h.store
}

// accessGetter is implemented by stores that read the access token alone
// more cheaply than the whole set.
type accessGetter interface {
	GetAccess(ctx context.Context, profile string) (string, error)
}

func (h *Helper) getAccess(ctx context.Context, profile string) (string, error) {
	if g, ok := h.Store().(accessGetter); ok {
		return g.GetAccess(ctx, profile)
	}
	set, err := h.Store().Get(ctx, profile)
	if err != nil {
		return "", err
	}
	return set.AccessToken, nil
}

func (h *Helper) lock(ctx context.Context, profile string) (func(), error) {
	return lockFile(ctx, h.File.LockFile(profile))
}

func (h *Helper) token(profile, where string, set *auth.TokenSet, exp time.Time) *Token {
	return &Token{Profile: profile, AccessToken: set.AccessToken, TokenType: tokenType(set), Expiry: exp, Store: where}
}

func tokenType(set *auth.TokenSet) string {
	if set.TokenType == "" {
		return "Bearer"
	}
	return set.TokenType
}

func noCredentials(profile string) error {
	return &LoginRequiredError{Profile: profile, Reason: fmt.Sprintf("no stored credentials for profile %q", profile)}
}

// prefer returns the stored set instead of the environment's when it
// belongs to the same session and its access token expires later: the
// result of an earlier refresh of the environment's set.
func prefer(env *EnvSource, stored *auth.Claims) bool {
	return stored != nil && stored.SessionID != "" && stored.SessionID == env.Access.SessionID &&
		stored.Expiry.Time.After(env.Access.Expiry.Time)
}

// Get returns an access token that stays valid for more than
// max(MinMargin, minTTL), refreshing first if needed (or if force). The
// fast path — a valid token — reads the store once and takes no lock and
// makes no request.
func (h *Helper) Get(ctx context.Context, profile string, minTTL time.Duration, force bool) (*Token, error) {
	margin := max(MinMargin, minTTL)
	env, err := h.fromEnv()
	if err != nil {
		return nil, err
	}
	now := h.now()
	if env != nil && env.Bare() {
		// A bare token cannot be refreshed: it serves until it expires.
		if !auth.ValidFor(env.Access.Expiry.Time, now, 0) {
			return nil, &LoginRequiredError{Profile: profile, Reason: EnvToken + " has expired and cannot be refreshed"}
		}
		return h.token(profile, EnvToken, env.Set, env.Access.Expiry.Time), nil
	}

	var current string
	where := EnvTokensJSON
	if env != nil {
		current = env.Set.AccessToken
		if stored, err := h.getAccess(ctx, profile); err == nil {
			if c, err := auth.ParseJWT(stored); err == nil && prefer(env, c) {
				current, where = stored, h.Store().Name()
			}
		} else if !errors.Is(err, ErrNotFound) {
			h.debugf("store: %v (using %s)", err, EnvTokensJSON)
		}
	} else {
		current, err = h.getAccess(ctx, profile)
		if errors.Is(err, ErrNotFound) {
			return nil, noCredentials(profile)
		}
		if err != nil {
			return nil, err
		}
		where = h.Store().Name()
	}
	// The fast path decodes the exp claim alone (auth.AccessExpiry); a
	// token it cannot read goes the slow way, where ParseJWT decides.
	if exp, ok := auth.AccessExpiry(current); ok && !force && auth.ValidFor(exp, now, margin) {
		if h.Debugf != nil {
			h.debugf("fast path: %s from %s, valid for %s", auth.Describe(current), where, exp.Sub(now).Round(time.Second))
		}
		return &Token{Profile: profile, AccessToken: current, TokenType: "Bearer", Expiry: exp, Store: where}, nil
	}
	return h.refresh(ctx, profile, env, current, margin, force)
}

// load reads the full set under the lock: the stored one, or the
// environment's unless the stored one is its refreshed successor.
func (h *Helper) load(ctx context.Context, profile string, env *EnvSource) (*auth.TokenSet, string, error) {
	stored, err := h.Store().Get(ctx, profile)
	if err != nil && !errors.Is(err, ErrNotFound) {
		// Even with a set from the environment: a refresh spends its
		// refresh token, and a store that cannot be read will hardly take
		// the new one. Better to stop before than to lose it after.
		return nil, "", err
	}
	if env != nil {
		if stored != nil {
			if c, err := auth.ParseJWT(stored.AccessToken); err == nil && prefer(env, c) {
				return stored, h.Store().Name(), nil
			}
		}
		return env.Set, EnvTokensJSON, nil
	}
	if stored == nil {
		return nil, "", noCredentials(profile)
	}
	return stored, h.Store().Name(), nil
}

// reserve makes room for the refreshed set before the request that spends
// the old refresh token (see reserver); where the store reserves nothing,
// the set goes through its Set.
func (h *Helper) reserve(ctx context.Context, profile string) (reservation, error) {
	if r, ok := h.Store().(reserver); ok {
		w, err := r.reserve(ctx, profile)
		if err != nil || w != nil {
			return w, err
		}
	}
	return storeSet{h.Store(), ctx, profile}, nil
}

// storeSet is the reservation of a store that reserves nothing.
type storeSet struct {
	s       Store
	ctx     context.Context
	profile string
}

func (w storeSet) commit(set *auth.TokenSet) error { return w.s.Set(w.ctx, w.profile, set) }
func (storeSet) release()                          {}

// refreshFailed says which refresh failures need a new login.
func refreshFailed(profile string, err error) error {
	switch {
	case errors.Is(err, auth.ErrInvalidGrant):
		return &LoginRequiredError{Profile: profile, Reason: fmt.Sprintf("the refresh token of profile %q was refused (expired, revoked or already used)", profile), Err: err}
	case errors.Is(err, auth.ErrRefreshTokenExpired):
		return &LoginRequiredError{Profile: profile, Reason: fmt.Sprintf("the refresh token of profile %q has expired", profile), Err: err}
	case errors.Is(err, auth.ErrNoRefreshToken):
		return &LoginRequiredError{Profile: profile, Reason: fmt.Sprintf("the access token of profile %q has expired and there is no refresh token", profile), Err: err}
	}
	return err
}

// refresh is the slow path: lock → re-read → still needed? → refresh →
// save → unlock. The new set is saved before its token is returned,
// because the old refresh token is spent the moment the server answers.
func (h *Helper) refresh(ctx context.Context, profile string, env *EnvSource, current string, margin time.Duration, force bool) (*Token, error) {
	if h.Slow != nil {
		var cancel context.CancelFunc
		ctx, cancel = h.Slow(ctx)
		defer cancel()
	}
	unlock, err := h.lock(ctx, profile)
	if err != nil {
		return nil, err
	}
	defer unlock()
	set, where, err := h.load(ctx, profile, env)
	if err != nil {
		return nil, err
	}
	now := h.now()
	if exp, err := auth.ExpiryOf(set.AccessToken); err == nil {
		if !force && auth.ValidFor(exp, now, margin) {
			h.debugf("another process refreshed: %s", auth.Describe(set.AccessToken))
			return h.token(profile, where, set, exp), nil
		}
		if force && set.AccessToken != current && auth.ValidFor(exp, now, 0) {
			h.debugf("force_refresh: another process refreshed meanwhile: %s", auth.Describe(set.AccessToken))
			return h.token(profile, where, set, exp), nil
		}
	}
	if h.Debugf != nil {
		h.debugf("refreshing %s with %s", auth.Describe(set.AccessToken), auth.Describe(set.RefreshToken))
	}
	if err := h.Auth.Refreshable(*set); err != nil {
		return nil, refreshFailed(profile, err) // no request, so nothing to save
	}
	save, err := h.reserve(ctx, profile)
	if err != nil {
		return nil, err // before the request: the refresh token is not spent
	}
	defer save.release()
	fresh, err := h.Auth.Refresh(ctx, *set)
	if errors.Is(err, auth.ErrInvalidGrant) {
		// Another process (one that does not take our lock, or a store
		// command) may have rotated the token: look once more.
		again, againWhere, rerr := h.load(ctx, profile, env)
		if rerr == nil && again.RefreshToken != set.RefreshToken {
			h.debugf("refresh token was rotated by someone else; using the stored one")
			if exp, err := auth.ExpiryOf(again.AccessToken); err == nil && auth.ValidFor(exp, now, 0) && !force {
				return h.token(profile, againWhere, again, exp), nil
			}
			set = again
			fresh, err = h.Auth.Refresh(ctx, *again)
		}
	}
	if err != nil {
		return nil, refreshFailed(profile, err)
	}
	if err := save.commit(&fresh); err != nil {
		return nil, fmt.Errorf("saving the refreshed tokens: %w", err)
	}
	exp, err := auth.ExpiryOf(fresh.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("refreshed access token: %w", err) // never: Refresh validated the answer
	}
	if h.Debugf != nil {
		h.debugf("refreshed: %s, saved to %s", auth.Describe(fresh.AccessToken), h.Store().Name())
	}
	return &Token{Profile: profile, AccessToken: fresh.AccessToken, TokenType: tokenType(&fresh), Expiry: exp, Store: h.Store().Name()}, nil
}

// StoreSet validates a token set and saves it under the profile's lock. A
// set that does not validate changes nothing. It returns the store used.
func (h *Helper) StoreSet(ctx context.Context, profile string, set *auth.TokenSet) (string, error) {
	if err := set.Validate(); err != nil {
		return "", err
	}
	unlock, err := h.lock(ctx, profile)
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := h.Store().Set(ctx, profile, set); err != nil {
		return "", err
	}
	return h.Store().Name(), nil
}

// Erase removes the profile from every store it may be in, whatever the
// mode: the file store and, where it can be reached, the keyring. It
// reports whether anything was there.
func (h *Helper) Erase(ctx context.Context, profile string) (bool, error) {
	unlock, err := h.lock(ctx, profile)
	if err != nil {
		return false, err
	}
	defer unlock()
	erased := false
	stores := []Store{h.File}
	if h.Keyring != nil {
		stores = append(stores, h.Keyring)
	}
	for _, s := range stores {
		err := s.Delete(ctx, profile)
		switch {
		case err == nil:
			erased = true
		case errors.Is(err, ErrNotFound):
		case errors.Is(err, ErrUnavailable) && h.Mode != ModeKeyring:
			h.debugf("erase: %v", err)
		default:
			return erased, err
		}
	}
	return erased, nil
}

// Entry describes a stored profile with no secrets.
type Entry struct {
	Profile        string
	Store          string
	UserID         string
	Email          string    // "" without an id token
	AccessExpires  time.Time // zero if unknown
	RefreshExpires time.Time // zero without a refresh token
}

// Describe returns the entry of a token set.
func Describe(profile, store string, set *auth.TokenSet) Entry {
	e := Entry{Profile: profile, Store: store}
	if c, err := auth.ParseJWT(set.AccessToken); err == nil {
		e.UserID, e.AccessExpires = string(c.Subject), c.Expiry.Time
	}
	if c, err := auth.ParseJWT(set.RefreshToken); err == nil {
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
// environment or the store, in Get's order — or returns ErrNotFound.
func (h *Helper) Status(ctx context.Context, profile string) (Entry, error) {
	env, err := h.fromEnv()
	if err != nil {
		return Entry{}, err
	}
	if env != nil && env.Bare() {
		return Describe(profile, EnvToken, env.Set), nil
	}
	set, where, err := h.load(ctx, profile, env)
	if errors.Is(err, ErrLoginRequired) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, err
	}
	return Describe(profile, where, set), nil
}

// List describes every stored profile: the files of the file store and the
// profiles the keyring index names, sorted by profile then store.
func (h *Helper) List(ctx context.Context) ([]Entry, error) {
	var out []Entry
	names, err := h.File.Profiles()
	if err != nil {
		return nil, err
	}
	for _, p := range names {
		set, err := h.File.Get(ctx, p)
		if err == nil {
			out = append(out, Describe(p, "file", set))
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	if h.Keyring != nil {
		names, err := h.Keyring.Profiles()
		if err != nil {
			return nil, err
		}
		for _, p := range names {
			set, err := h.Keyring.Get(ctx, p)
			switch {
			case err == nil:
				out = append(out, Describe(p, "keyring", set))
			case errors.Is(err, ErrNotFound):
			case errors.Is(err, ErrUnavailable) && h.Mode != ModeKeyring:
				h.debugf("list: %v", err)
			default:
				return nil, err
			}
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Profile != b.Profile {
			if a.Profile < b.Profile {
				return -1
			}
			return 1
		}
		if a.Store < b.Store {
			return -1
		} else if a.Store > b.Store {
			return 1
		}
		return 0
	})
	return out, nil
}
