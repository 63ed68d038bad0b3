package helper

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gofrs/flock"
)

// lockPoll is how often a process waiting for a profile's lock retries.
const lockPoll = 5 * time.Millisecond

// lockFile takes the lock on path (0600, never deleted), exclusive or
// shared, waiting while ctx allows. A wait cut short by ctx's deadline
// wraps context.DeadlineExceeded.
func lockFile(ctx context.Context, path string, shared bool) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrStorage, filepath.Dir(path), unwrapPath(err))
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		// Never lock, chmod or stamp through a symlink (a file that is
		// not ours), and never wait on a FIFO's open.
		return nil, fmt.Errorf("%w: lock %s: not a regular file", ErrStorage, path)
	}
	// O_NOFOLLOW: what Lstat saw may have been swapped for a symlink since.
	l := flock.New(path, flock.SetPermissions(0o600), flock.SetFlag(os.O_CREATE|os.O_RDONLY|openNoFollow|openNonBlock))
	try := l.TryLockContext
	if shared {
		try = l.TryRLockContext
	}
	ok, err := try(ctx, lockPoll)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("waiting for another process that holds %s: %w", path, err)
	}
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: lock %s: %w", ErrStorage, path, unwrapPath(err))
	}
	fi, err := l.Stat() // of the file locked
	if err != nil || !fi.Mode().IsRegular() {
		l.Unlock()
		return nil, fmt.Errorf("%w: lock %s: not a regular file", ErrStorage, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		tighten(path, fi) // made by someone else, or before: 0600 like the store's files
	}
	return func() { l.Unlock() }, nil
}

// tighten makes the file at path 0600 if it is still the file fi
// describes, through a descriptor: never a file a symlink put there.
func tighten(path string, fi os.FileInfo) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNoFollow|openNonBlock, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if now, err := f.Stat(); err == nil && os.SameFile(fi, now) {
		f.Chmod(0o600)
	}
}

// markSaved writes the time of a refresh's or auto-login's save, made under
// the lock, and a hash of the access token it saved into the lock file
// (whose content flock ignores), so that a process that started about then
// but read the store only after the save can tell (savedSince) that the
// set it read is that fresh. Where the lock forbids the write (Windows
// locks are mandatory), nothing is stamped. The stamp has a fixed width
// and overwrites the last one in place: a truncation would cost a file
// system such as ext4 more than the rest of the save.
func markSaved(lockPath, accessToken string) {
	f, err := os.OpenFile(lockPath, os.O_WRONLY|os.O_CREATE|openNoFollow|openNonBlock, 0o600) // the etcd store locks in etcd: no lock file yet
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteAt(fmt.Appendf(nil, "%0*d %s", stampWidth, time.Now().UnixNano(), tokenHash(accessToken)), 0)
}

// stampWidth is the width of markSaved's time: nanoseconds since 1970
// have 19 digits until the year 2286.
const stampWidth = 20

// tokenHash names an access token in a stamp: 16 hex digits of its SHA-256.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// savedSince reports whether markSaved stamped lockPath at or after t,
// saving accessToken: a set stored since by other means (store, a hand
// edit) is not the one stamped.
func savedSince(lockPath string, t time.Time, accessToken string) bool {
	b, err := readFile(lockPath) // never a FIFO's wait
	if err != nil || len(b) < stampWidth+1+16 {
		return false
	}
	ns, err := strconv.ParseInt(string(b[:stampWidth]), 10, 64)
	return err == nil && ns >= t.UnixNano() && string(b[stampWidth+1:stampWidth+1+16]) == tokenHash(accessToken)
}
