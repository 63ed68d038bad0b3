package helper

import (
	"context"
	"errors"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// AutoStore is the "auto" store: the keyring where one answers, else the
// file. Where there is no session bus the keyring is Absent: it is then not
// even tried, but its index still counts.
//
// With KeyringOnly it is the "keyring" store: sets go to the keyring alone,
// and the file is read only for a set a refresh saved there because the
// keyring would not take it (see Helper.Get, which moves it back).
type AutoStore struct {
	Keyring     *KeyringStore
	File        *FileStore
	KeyringOnly bool
}

// Name is where a Set goes first.
func (a *AutoStore) Name() string {
	if a.keyringThere() {
		return "keyring"
	}
	return "file"
}

// Get reads both stores and returns the newer set (see newerOrSame): a
// set saved to the file while the keyring did not answer beats an older
// one left in the keyring, even when its access token expires sooner.
//
// A keyring that cannot be reached, when the file has no set, is a storage
// error if the keyring may hold the profile: its index names the profile,
// or there is no index (nothing else is known), or the mode is keyring.
// Only an index that exists and does not name the profile says it is not
// there. A set in the file is used as it is: it is newer than anything in
// the keyring, since every keyring Set removes the file copy. So a file
// that cannot be read is an error even when the keyring holds a set.
func (a *AutoStore) Get(ctx context.Context, profile string) (*auth.TokenSet, Result, error) {
	return a.get(ctx, profile, false)
}

// Peek is Get for get's fast path: it reads the keyring with
// KeyringStore.Peek, so a set from the keyring may lack the fields its
// part items hold.
func (a *AutoStore) Peek(ctx context.Context, profile string) (*auth.TokenSet, Result, error) {
	return a.get(ctx, profile, true)
}

func (a *AutoStore) get(ctx context.Context, profile string, peek bool) (*auth.TokenSet, Result, error) {
	if peek {
		// The fast path looks at the file first: every keyring save
		// removes the file's copy, so a set there is the one to serve, and
		// a keyring that stalls costs a file user nothing. (A refresh
		// reads both, below, and takes the later.)
		if set, res, err := a.File.Get(ctx, profile); err == nil {
			return set, res, nil
		}
	}
	var fromKeyring *auth.TokenSet
	var kerr error
	if a.Keyring != nil {
		read := a.Keyring.Get
		if peek {
			read = a.Keyring.Peek
		}
		set, _, err := read(ctx, profile)
		switch {
		case err == nil:
			fromKeyring = set
		case errors.Is(err, ErrNotFound):
		case errors.Is(err, ErrUnavailable):
			kerr = err
		default:
			return nil, Result{Store: "keyring"}, err
		}
	}
	fromFile, fres, err := a.File.Get(ctx, profile)
	if err != nil && !errors.Is(err, ErrNotFound) {
		// The file may hold a set newer than the keyring's (one the keyring
		// failed to take): one that cannot be read is not passed over.
		return nil, fres, err
	}
	if kerr != nil && fromFile == nil && (a.KeyringOnly || a.Keyring.MayHold(profile, false, kerr)) {
		return nil, Result{Store: "keyring"}, mayHold(kerr, profile, "")
	}
	switch {
	case fromKeyring == nil && fromFile == nil:
		where := a.Name()
		if noKeyring(kerr) && !a.KeyringOnly {
			where = "file" // where a set would go
		}
		return nil, Result{Store: where}, ErrNotFound
	case fromFile == nil || (fromKeyring != nil && !newerOrSame(fromFile, fromKeyring)):
		return fromKeyring, Result{Store: "keyring"}, nil
	default:
		fres.Kept = fromKeyring != nil && sameSession(fromFile, fromKeyring)
		return fromFile, fres, nil
	}
}

// sameSession reports whether a and b are sets of one session (the access
// tokens' sid): one is a refresh of the other. Each login makes a session.
func sameSession(a, b *auth.TokenSet) bool {
	ca, err1 := a.Access()
	cb, err2 := b.Access()
	return err1 == nil && err2 == nil && ca.SessionID != "" && ca.SessionID == cb.SessionID
}

// keyringThere reports whether sets go to the keyring: in keyring mode
// always (an absent one then fails), in auto mode where there is one.
func (a *AutoStore) keyringThere() bool {
	return a.Keyring != nil && (a.Keyring.Absent == "" || a.KeyringOnly)
}

// newerOrSame reports whether set a (the file's) was issued no earlier than
// b (the keyring's): by their refresh tokens' exp, which every login and
// refresh sets a fixed time ahead, else by their access tokens'. A file set
// beside a keyring set was written while the keyring did not take it, so
// a tie, or sets that cannot be told apart, go to the file.
func newerOrSame(a, b *auth.TokenSet) bool {
	for _, claims := range []func(*auth.TokenSet) (*auth.Claims, error){(*auth.TokenSet).RefreshClaims, (*auth.TokenSet).Access} {
		ca, err1 := claims(a)
		cb, err2 := claims(b)
		if err1 == nil && err2 == nil {
			return !ca.Expiry.Time.Before(cb.Expiry.Time)
		}
	}
	return true
}

// Set saves to the keyring and removes any file copy; in auto mode, where
// the keyring does not answer, it saves to the file and says why in the
// result's Fallback.
func (a *AutoStore) Set(ctx context.Context, profile string, set *auth.TokenSet) (Result, error) {
	fallback := "no D-Bus session bus"
	if a.keyringThere() {
		res, err := a.Keyring.Set(ctx, profile, set)
		if err == nil {
			if derr := a.File.Delete(ctx, profile); derr != nil && !errors.Is(derr, ErrNotFound) {
				return res, derr
			}
			return res, nil
		}
		var ue *UnavailableError
		if a.KeyringOnly || !errors.As(err, &ue) {
			return res, err
		}
		fallback = ue.Reason
	}
	res, err := a.File.Set(ctx, profile, set)
	res.Fallback = fallback
	return res, err
}

// reserve reserves in the file store when that is where Set will go (no
// session bus); the keyring has nothing to reserve.
func (a *AutoStore) reserve(ctx context.Context, profile string) (reservation, error) {
	if a.keyringThere() {
		return nil, nil
	}
	return a.File.reserve(ctx, profile)
}

// Delete removes the profile from both stores.
func (a *AutoStore) Delete(ctx context.Context, profile string) error {
	found := false
	if a.keyringThere() {
		err := a.Keyring.Delete(ctx, profile)
		if err == nil {
			found = true
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	err := a.File.Delete(ctx, profile)
	if err == nil {
		found = true
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if !found {
		return ErrNotFound
	}
	return nil
}
