package helper

import (
	"context"
	"errors"
	"fmt"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// maxFileSize bounds what is read of a token file; a real set is about 5 KB.
// It is far above any set the helper writes: a token answer is at most
// 1 MiB, and re-encoded its strings grow at most 6× (a "<" is written as
// \u003c), so that a refresh that saved such a set can read it back.
const maxFileSize = 16 << 20

// ErrNotFound is returned by a Store that holds nothing for a profile.
var ErrNotFound = errors.New("not found")

// ErrUnavailable is returned (wrapped) by a store that cannot be reached at
// all, such as a keyring with no Secret Service to answer.
var ErrUnavailable = errors.New("store unavailable")

// ErrStorage wraps every failure to read or write a store.
var ErrStorage = errors.New("storage error")

// Store keeps one token set per profile.
type Store interface {
	// Name is "keyring" or "file": where a Set goes first.
	Name() string
	// Get returns the profile's token set and where it was, or
	// ErrNotFound.
	Get(ctx context.Context, profile string) (*auth.TokenSet, Result, error)
	// Set saves the profile's token set, replacing any other, and says
	// where it went.
	Set(ctx context.Context, profile string, set *auth.TokenSet) (Result, error)
	// Delete removes the profile's token set, or returns ErrNotFound.
	Delete(ctx context.Context, profile string) error
}

// Result says which store answered a Get or took a Set.
type Result struct {
	Store string // "keyring" or "file"
	// Path is the file that holds the set, when Store is "file".
	Path string
	// Fallback, after a Set in auto mode (or a refresh the keyring would
	// not take), says why the set went to the file instead of the keyring;
	// "" when it did not.
	Fallback string
	// Kept, after a Get in auto mode that answered with the file's set,
	// says that the keyring holds an older set of the same session: the
	// file's is a refresh of it that the keyring did not take, kept there
	// until the keyring answers again.
	Kept bool
}

// peeker is a store that answers get's fast path with less than a whole
// read: the set it returns holds the access token and the fields judged
// and printed with it, and may lack others (the identity token). Only the
// fast path uses it; a refresh, a save, list and status read with Get.
type peeker interface {
	Peek(ctx context.Context, profile string) (*auth.TokenSet, Result, error)
}

// localPeeker is a peeker whose Peek goes to another machine (etcd) when
// its local cache has nothing usable: PeekLocal reads the cache alone, and
// returns ErrNotFound there.
type localPeeker interface {
	PeekLocal(ctx context.Context, profile string) (*auth.TokenSet, Result, error)
}

// reserver is a store that can make room for a Set before it is asked to:
// a refresh reserves before its request spends the old refresh token, so a
// store that could not take the new set fails while nothing is lost yet.
type reserver interface {
	// reserve returns a reservation, or nil where the store has nothing
	// to reserve (Set is then used). The caller holds the profile's lock.
	reserve(ctx context.Context, profile string) (reservation, error)
}

// reservation is room made for one Set: commit it once, or release it.
type reservation interface {
	commit(set *auth.TokenSet) (Result, error)
	release()
}

// MaxProfileLen is the longest profile name.
const MaxProfileLen = 64

// CheckProfile reports whether name is a valid profile name: 1 to 64 of
// A-Z a-z 0-9 . _ -, not starting with a dot. Profile names become file
// and keyring item names, so nothing else is allowed.
func CheckProfile(name string) error {
	if name == "" {
		return errors.New("profile name is empty")
	}
	if len(name) > MaxProfileLen {
		return fmt.Errorf("profile name is longer than %d characters", MaxProfileLen)
	}
	if name[0] == '.' {
		return errors.New("profile name starts with a dot")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("profile name has a character other than A-Z a-z 0-9 . _ - at byte %d", i+1)
		}
	}
	return nil
}
