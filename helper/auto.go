package helper

import (
	"context"
	"errors"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// AutoStore is the "auto" store: the keyring where one answers, else the
// file. Keyring is nil where there is no session bus: it is then not even
// tried.
type AutoStore struct {
	Keyring *KeyringStore
	File    *FileStore
	// Fallback, after a Set, holds why the set went to the file store
	// instead of the keyring ("" when it did not).
	Fallback string
	// Where, after a Get or Set, names the store that answered.
	Where string
}

// Name is "keyring" or "file": where the last Get found or Set put the set,
// else where a Set would go first.
func (a *AutoStore) Name() string {
	if a.Where != "" {
		return a.Where
	}
	if a.Keyring != nil {
		return "keyring"
	}
	return "file"
}

// GetAccess reads the access token alone, from the keyring first, then the
// file: the fast path.
func (a *AutoStore) GetAccess(ctx context.Context, profile string) (string, error) {
	if a.Keyring != nil {
		tok, err := a.Keyring.GetAccess(ctx, profile)
		if err == nil {
			a.Where = "keyring"
			return tok, nil
		}
		if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnavailable) {
			return "", err
		}
	}
	tok, err := a.File.GetAccess(ctx, profile)
	if err != nil {
		return "", err
	}
	a.Where = "file"
	return tok, nil
}

// Get reads both stores and returns the set whose access token expires
// last: a set saved to the file while the keyring did not answer beats an
// older one left in the keyring.
func (a *AutoStore) Get(ctx context.Context, profile string) (*auth.TokenSet, error) {
	var fromKeyring *auth.TokenSet
	if a.Keyring != nil {
		set, err := a.Keyring.Get(ctx, profile)
		switch {
		case err == nil:
			fromKeyring = set
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnavailable):
		default:
			return nil, err
		}
	}
	fromFile, err := a.File.Get(ctx, profile)
	if err != nil && !errors.Is(err, ErrNotFound) {
		if fromKeyring == nil {
			return nil, err
		}
		fromFile = nil
	}
	switch {
	case fromKeyring == nil && fromFile == nil:
		return nil, ErrNotFound
	case fromFile == nil || (fromKeyring != nil && !expiresLater(fromFile, fromKeyring)):
		a.Where = "keyring"
		return fromKeyring, nil
	default:
		a.Where = "file"
		return fromFile, nil
	}
}

// expiresLater reports whether a's access token expires after b's.
func expiresLater(a, b *auth.TokenSet) bool {
	ea, err1 := auth.ExpiryOf(a.AccessToken)
	eb, err2 := auth.ExpiryOf(b.AccessToken)
	return err1 == nil && err2 == nil && ea.After(eb)
}

// Set saves to the keyring and removes any file copy; where the keyring
// does not answer, it saves to the file and says why in Fallback.
func (a *AutoStore) Set(ctx context.Context, profile string, set *auth.TokenSet) error {
	a.Fallback = "no D-Bus session bus"
	if a.Keyring != nil {
		err := a.Keyring.Set(ctx, profile, set)
		if err == nil {
			a.Fallback, a.Where = "", "keyring"
			if derr := a.File.Delete(ctx, profile); derr != nil && !errors.Is(derr, ErrNotFound) {
				return derr
			}
			return nil
		}
		var ue *UnavailableError
		if !errors.As(err, &ue) {
			return err
		}
		a.Fallback = ue.Reason
	}
	if err := a.File.Set(ctx, profile, set); err != nil {
		return err
	}
	a.Where = "file"
	return nil
}

// reserve reserves in the file store when that is where Set will go (no
// session bus); the keyring has nothing to reserve.
func (a *AutoStore) reserve(ctx context.Context, profile string) (reservation, error) {
	if a.Keyring != nil {
		return nil, nil
	}
	w, err := a.File.reserve(ctx, profile)
	if err != nil {
		return nil, err
	}
	return &autoFileSet{reservation: w, a: a}, nil
}

// autoFileSet is a file reservation that records where the set went.
type autoFileSet struct {
	reservation
	a *AutoStore
}

func (w *autoFileSet) commit(set *auth.TokenSet) error {
	if err := w.reservation.commit(set); err != nil {
		return err
	}
	w.a.Where = "file"
	return nil
}

// Delete removes the profile from both stores.
func (a *AutoStore) Delete(ctx context.Context, profile string) error {
	found := false
	if a.Keyring != nil {
		err := a.Keyring.Delete(ctx, profile)
		if err == nil {
			found = true
		} else if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnavailable) {
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
