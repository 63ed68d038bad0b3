package helper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// FileStore keeps each profile's token set in a JSON file (the Python SDK's
// token file shape), 0600 in a 0700 directory, replaced atomically.
type FileStore struct {
	// Dir holds <profile>.json and <profile>.lock.
	Dir string
	// Path, if set, is the one file used whatever the profile (the SDK's
	// from_file); its lock is Path + ".lock" and its directory is left as
	// it is.
	Path string
	// Warn receives messages a human should see (a corrupt file moved
	// aside, permissions tightened). May be nil.
	Warn func(msg string)
	// Now stamps the names of corrupt files; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	last parsedFile // what parse last decoded
}

// parsedFile is a file's content and the set parse decoded from it.
type parsedFile struct {
	path string
	data []byte
	set  *auth.TokenSet
}

// Name is "file".
func (s *FileStore) Name() string { return "file" }

// File returns the file that holds the profile's token set.
func (s *FileStore) File(profile string) string {
	if s.Path != "" {
		return s.Path
	}
	return filepath.Join(s.Dir, profile+".json")
}

// LockFile returns the profile's lock file.
func (s *FileStore) LockFile(profile string) string {
	if s.Path != "" {
		return s.Path + ".lock"
	}
	return filepath.Join(s.Dir, profile+".lock")
}

func (s *FileStore) warn(format string, args ...any) {
	if s.Warn != nil {
		s.Warn(fmt.Sprintf(format, args...))
	}
}

// Parse retries: a file that another program rewrites in place (the
// Python SDK opens it with "w") can be read half-written, so a file that
// does not parse is read again before it counts as corrupt.
const (
	parseTries = 5
	parseWait  = 20 * time.Millisecond
)

// parse is auth.ParseTokenSet of the file path's content b. The set of
// the last parse is kept, so that a read of the same bytes (a refresh's
// re-read under the lock, after get's first read) is not decoded again.
func (s *FileStore) parse(path string, b []byte) (*auth.TokenSet, error) {
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	if last.set == nil || last.path != path || !bytes.Equal(last.data, b) {
		set, err := auth.ParseTokenSet(b)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.last = parsedFile{path, b, set}
		s.mu.Unlock()
		last.set = set
	}
	c := *last.set
	return &c, nil
}

// Get reads the profile's file. A file that is still not a token set after
// a few reads (empty, garbage, valid JSON of another shape, a malformed
// JWT) is a *CorruptError: the Helper moves it aside under the profile's
// lock (see MoveAside). A FIFO, device or other non-regular file is a
// storage error at once.
func (s *FileStore) Get(ctx context.Context, profile string) (*auth.TokenSet, Result, error) {
	path := s.File(profile)
	res := Result{Store: "file", Path: path}
	var perr error
	for try := range parseTries {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, res, fmt.Errorf("reading %s: %w", path, ctx.Err())
			case <-time.After(parseWait/2 + mrand.N(parseWait)): // jittered: out of step with a writer that writes on a period
			}
		}
		b, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, res, ErrNotFound
		}
		if err != nil {
			return nil, res, fmt.Errorf("%w: read %s: %w", ErrStorage, path, unwrapPath(err))
		}
		if len(b) > maxFileSize { // readFile's limit, passed: no set is this large
			perr = fmt.Errorf("larger than %d MiB", maxFileSize>>20)
			break
		}
		set, err := s.parse(path, b)
		if err == nil {
			return set, res, nil
		}
		perr = err
	}
	return nil, res, &CorruptError{Path: path, Err: perr}
}

// Kept returns the token set that a save of the profile's file left in a
// temp file when it could not replace the file (a *KeptError), if it is
// stored's successor: of its user, with another refresh token, expiring no
// earlier (a refresh within the second of a login gives the same exp); or
// any, with nothing stored. Of several, the one that expires last, then
// the last written, wins; the others go. It returns the temp file's name
// too. The caller holds the profile's lock.
func (s *FileStore) Kept(profile string, stored *auth.TokenSet) (*auth.TokenSet, string) {
	dir, base := filepath.Split(s.File(profile))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, ""
	}
	var storedExp time.Time
	if stored != nil {
		c, err := stored.Access()
		if err != nil {
			return nil, ""
		}
		storedExp = c.Expiry.Time
	}
	var best *auth.TokenSet
	var bestExp, bestTime time.Time
	var bestPath string
	for _, e := range entries {
		if !isTempOf(e.Name(), base) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := e.Info()
		if err != nil {
			continue
		}
		set, err := tempSet(path)
		if err != nil {
			continue
		}
		c, _ := set.Access()
		exp := c.Expiry.Time
		successor := stored == nil || subject(set) == subject(stored) && set.RefreshToken != stored.RefreshToken && !exp.Before(storedExp)
		if !successor || best != nil && (exp.Before(bestExp) || exp.Equal(bestExp) && fi.ModTime().Before(bestTime)) {
			os.Remove(path) // superseded
			continue
		}
		if bestPath != "" {
			os.Remove(bestPath)
		}
		best, bestExp, bestTime, bestPath = set, exp, fi.ModTime(), path
	}
	return best, bestPath
}

// Adopt puts the kept temp file tmp in the profile's place (see install).
// The caller holds the profile's lock.
func (s *FileStore) Adopt(profile, tmp string) error {
	data, err := readFile(tmp)
	if err != nil {
		return err
	}
	return install(tmp, s.File(profile), data)
}

// CorruptError is a file that is not a token set.
type CorruptError struct {
	Path string
	Err  error // why it does not parse
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s: %s is not a token set: %s", ErrStorage, e.Path, reason(e.Err))
}

func (e *CorruptError) Is(target error) bool { return target == ErrStorage }

// MoveAside renames a corrupt file to <file>.corrupt-<UTC time>, with a
// warning, so that it counts as absent. The caller holds the profile's lock
// and has read the file again under it.
func (s *FileStore) MoveAside(ce *CorruptError) error {
	aside := ce.Path + ".corrupt-" + s.now().UTC().Format("20060102T150405.000000000Z")
	// It may still hold a token, and may have been written 0644 (the
	// Python SDK's file, for one): it is kept as the store's files are.
	os.Chmod(ce.Path, 0o600)
	if err := os.Rename(ce.Path, aside); err != nil {
		return fmt.Errorf("%w: %s is not a token set and cannot be moved aside: %w", ErrStorage, ce.Path, unwrapPath(err))
	}
	s.warn("warning: %s was not a token set (%s); moved it to %s", ce.Path, reason(ce.Err), filepath.Base(aside))
	return nil
}

// readFile reads a token file: never through a symlink in its last
// component (a link planted at the token path is not followed into another
// file), never from a FIFO, device or other non-regular file (opened
// without blocking, then refused), never one another user owns, and at
// most maxFileSize+1 bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNoFollow|openNonBlock, 0)
	if err != nil {
		if isSymlinkErr(err) {
			return nil, &fs.PathError{Op: "open", Path: path, Err: errors.New("is a symbolic link; not following it")}
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: notRegular(fi.Mode())}
	}
	if uid, other := otherOwner(fi); other {
		// Whoever owns it chose the tokens in it: its account, not ours.
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("is owned by another user (uid %d)", uid)}
	}
	// Room for the file as it is now: one read and one allocation, where
	// io.ReadAll would start at 512 bytes and grow.
	var b bytes.Buffer
	b.Grow(int(min(fi.Size(), maxFileSize)) + bytes.MinRead)
	_, err = b.ReadFrom(io.LimitReader(f, maxFileSize+1)) // larger than any set: corrupt
	return b.Bytes(), err
}

// notRegular says what a non-regular file is, for a human.
func notRegular(m fs.FileMode) error {
	kind := "a " + m.Type().String() + " file"
	switch {
	case m.IsDir():
		return errors.New("is a directory")
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("is %s, not a regular file", kind)
}

// reason gives a token-set error without its sentinel prefix.
func reason(err error) string {
	return strings.TrimPrefix(err.Error(), auth.ErrInvalidTokenSet.Error()+": ")
}

func (s *FileStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Set writes the profile's file atomically (see writeAtomic). The caller
// holds the profile's lock.
func (s *FileStore) Set(_ context.Context, profile string, set *auth.TokenSet) (Result, error) {
	w, err := s.pending(profile, 0)
	if err != nil {
		return Result{}, err
	}
	return w.commit(set)
}

// reserve creates the temp file of the profile's next Set and makes room
// in it (see pendingFile). The caller holds the profile's lock.
func (s *FileStore) reserve(_ context.Context, profile string) (reservation, error) {
	w, err := s.pending(profile, reserveBytes)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (s *FileStore) pending(profile string, room int) (*pendingSet, error) {
	if err := s.prepareDir(); err != nil {
		return nil, err
	}
	if err := checkNotReadOnly(s.File(profile)); err != nil {
		return nil, err
	}
	p, err := createPending(s.File(profile), room, 0, holdsTokenSet)
	if err != nil {
		return nil, err
	}
	return &pendingSet{p}, nil
}

// pendingSet is a token set's pendingFile.
type pendingSet struct{ p *pendingFile }

func (w *pendingSet) commit(set *auth.TokenSet) (Result, error) {
	res := Result{Store: "file", Path: w.p.path}
	data, err := set.MarshalJSON()
	if err != nil {
		w.p.abort()
		return res, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if err := w.p.commit(data); err != nil {
		return res, err
	}
	dir, base := filepath.Split(w.p.path)
	removeTemps(dir, base, 0, nil) // sets kept by earlier saves: this one supersedes them
	return res, nil
}

func (w *pendingSet) release() { w.p.abort() }

// reserveBytes is the room a refresh makes in its temp file before its
// request: a real token set is about 5 KB.
const reserveBytes = 16 << 10

// writeShared is writeAtomic for a file that processes write without a
// lock (the etcd store's cache): it leaves other writers' temp files be.
func writeShared(path string, data []byte) error {
	p, err := createPending(path, 0, time.Minute, nil)
	if err != nil {
		return err
	}
	return p.commit(data)
}

// writeAtomic replaces path with data: a temp file created 0600 in the same
// directory, written and synced, renamed over path, and the directory
// synced. Temp files of path left by a crashed writer are removed first:
// callers hold path's lock, so no one else is writing.
func writeAtomic(path string, data []byte) error {
	p, err := createPending(path, 0, 0, nil)
	if err != nil {
		return err
	}
	return p.commit(data)
}

// pendingFile is writeAtomic in two steps: createPending makes the temp
// file (and room in it), commit writes and renames it. A refresh takes the
// first step before its request spends the old refresh token, so that a
// store that cannot be written — a read-only or full disk, a directory it
// may not write — fails while nothing is lost yet.
type pendingFile struct {
	f         *os.File
	tmp, path string
	done      bool // committed or aborted
}

// createPending creates path's temp file and, with reserve > 0, fills it
// with that many zero bytes, so that a full disk (or quota, or file size
// limit) shows now rather than at commit.
func createPending(path string, reserve int, staleAfter time.Duration, keep func(path string) bool) (*pendingFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeTemps(dir, base, staleAfter, keep)
	// 0600, O_EXCL: it never follows a symlink planted at the temp name.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%w: create temp file in %s: %w", ErrStorage, dir, unwrapPath(err))
	}
	p := &pendingFile{f: f, tmp: f.Name(), path: path}
	if reserve > 0 {
		if _, err := f.Write(make([]byte, reserve)); err != nil {
			p.abort()
			return nil, fmt.Errorf("%w: no room to write %s: %w", ErrStorage, path, unwrapPath(err))
		}
	}
	return p, nil
}

// removeTemps removes the temp files a crashed writer of base left in dir:
// all of them where the caller holds the file's lock (staleAfter 0), else
// those older than staleAfter, which no live writer still needs; never one
// that keep (if not nil) says to keep. Names are matched literally (a glob
// would read a "[" in dir as a pattern).
func removeTemps(dir, base string, staleAfter time.Duration, keep func(path string) bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !isTempOf(e.Name(), base) {
			continue
		}
		if staleAfter > 0 {
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < staleAfter {
				continue
			}
		}
		if path := filepath.Join(dir, e.Name()); keep == nil || !keep(path) {
			os.Remove(path)
		}
	}
}

// holdsTokenSet reports whether the file at path is a whole token set: a
// profile's temp file that a save kept (see Kept), or that a writer killed
// between its sync and its rename left, may hold the only live refresh
// token.
func holdsTokenSet(path string) bool {
	_, err := tempSet(path)
	return err == nil
}

// tempSet reads the token set in the temp file at path. A writer killed
// between writing the set over its reserved room and cutting the room off
// left zero bytes after it; a temp file still being written, or its
// reserved room alone, is not a set.
func tempSet(path string) (*auth.TokenSet, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return auth.ParseTokenSet(bytes.TrimRight(b, "\x00"))
}

// isTempOf reports whether name is a temp file of base's, as createPending
// names them: "." + base + ".tmp-" and digits (so that profile p's are not
// confused with those of a profile named p.json.tmp-ci).
func isTempOf(name, base string) bool {
	rest, ok := strings.CutPrefix(name, "."+base+".tmp-")
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

// commit writes data over the temp file's start, cuts it there, syncs it,
// and installs it at path (see install). Where writing or syncing fails,
// the temp file is removed and path left as it was.
func (p *pendingFile) commit(data []byte) error {
	ok := false
	defer func() {
		if !ok {
			p.abort()
		}
	}()
	if _, err := p.f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrStorage, p.tmp, unwrapPath(err))
	}
	if err := p.f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrStorage, p.tmp, unwrapPath(err))
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("%w: sync %s: %w", ErrStorage, p.tmp, unwrapPath(err))
	}
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("%w: close %s: %w", ErrStorage, p.tmp, unwrapPath(err))
	}
	ok = true
	p.done = true
	return install(p.tmp, p.path, data)
}

// rename is os.Rename; tests make it fail.
var rename = os.Rename

// install puts tmp, a written and synced temp file holding data, in
// path's place. Where path is a mount point (a token file bind-mounted
// into a container), which no rename may replace, data is written into
// path itself, as the Python SDK writes its file; readers retry a partly
// written file (see FileStore.Get). Where it still cannot be put there,
// tmp stays, holding data: a *KeptError says where.
func install(tmp, path string, data []byte) error {
	// rename replaces a symlink at path itself, never the file it points to.
	err := rename(tmp, path)
	for try := 0; err != nil && renameMayPass(err) && try < 10; try++ {
		time.Sleep(50 * time.Millisecond) // another process has the file open (Windows)
		err = rename(tmp, path)
	}
	if err == nil {
		syncDir(filepath.Dir(path))
		return nil
	}
	err = unwrapPath(err)
	if isBusy(err) {
		werr := writeInPlace(path, data)
		if werr == nil {
			os.Remove(tmp)
			return nil
		}
		err = fmt.Errorf("a mount point, and writing it in place: %w", unwrapPath(werr))
	}
	return &KeptError{Path: path, Kept: tmp, Err: err}
}

// writeInPlace writes data over the regular file at path, never through a
// symlink, and syncs it.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|openNoFollow|openNonBlock, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return err
	}
	return f.Sync()
}

// checkNotReadOnly makes sure that the file at path is not on a read-only
// file system while its directory takes new files: a token file
// bind-mounted read-only (see install), which no refreshed set could
// replace. It fails before a refresh spends the refresh token.
func checkNotReadOnly(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|openNoFollow|openNonBlock, 0)
	if err == nil {
		return f.Close()
	}
	if isReadOnlyFS(err) {
		return fmt.Errorf("%w: %s is a mount point that cannot be written: %w", ErrStorage, path, unwrapPath(err))
	}
	return nil // absent, or not ours to write: the rename decides
}

// KeptError is a write whose data could not be put in place: it is kept,
// whole and synced, in the temp file Kept beside Path.
type KeptError struct {
	Path, Kept string
	Err        error
}

func (e *KeptError) Error() string {
	return fmt.Sprintf("rename to %s: %v (the new content is kept in %s)", e.Path, e.Err, e.Kept)
}

func (e *KeptError) Is(target error) bool { return target == ErrStorage }
func (e *KeptError) Unwrap() error        { return e.Err }

// abort removes the temp file, unless commit renamed it.
func (p *pendingFile) abort() {
	if p.done {
		return
	}
	p.done = true
	p.f.Close()
	os.Remove(p.tmp)
}

// CheckWritable reports whether a set for profile could be saved: the
// store's directory is there, or can be made, and takes a new file. (A
// login checks it before it spends a session on a set it cannot keep.)
func (s *FileStore) CheckWritable(profile string) error {
	if err := s.prepareDir(); err != nil {
		return err
	}
	if err := checkNotReadOnly(s.File(profile)); err != nil {
		return err
	}
	dir := filepath.Dir(s.File(profile))
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.File(profile))+".tmp-*")
	if err != nil {
		return fmt.Errorf("%w: cannot write in %s: %w", ErrStorage, dir, unwrapPath(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// prepareDir creates the store directory 0700 (see privateDir). A
// --token-file directory is the user's and is only created, never changed.
func (s *FileStore) prepareDir() error {
	if s.Path != "" {
		dir := filepath.Dir(s.Path)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("%w: create %s: %w", ErrStorage, dir, unwrapPath(err))
		}
		return nil
	}
	return privateDir(s.Dir, func(msg string) { s.warn("%s", msg) })
}

// privateDir creates dir 0700, and tightens it to 0700 with a warning when
// it has any group or other permission bit.
func privateDir(dir string, warn func(msg string)) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: create %s: %w", ErrStorage, dir, unwrapPath(err))
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if fi.Mode().Perm()&0o077 != 0 && !isWindows {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("%w: tighten permissions of %s: %w", ErrStorage, dir, unwrapPath(err))
		}
		warn(fmt.Sprintf("warning: %s was accessible to other users (mode %04o); changed it to 0700", dir, fi.Mode().Perm()))
	}
	return nil
}

// Delete removes the profile's file; its lock file stays (deleting lock
// files breaks locking).
func (s *FileStore) Delete(_ context.Context, profile string) error {
	err := os.Remove(s.File(profile))
	dir, base := filepath.Split(s.File(profile))
	removeTemps(dir, base, 0, nil) // kept sets too (see Kept)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	syncDir(dir)
	if err := s.prepareDir(); err != nil { // a write, as any other: the file is gone all the same
		s.warn("warning: %v", err)
	}
	return nil
}

// Profiles lists the profiles that have a file in Dir: any <profile>.json,
// so that one that is not a regular file (a symlink, a FIFO) is read, and
// refused, as get refuses it, rather than left out as if not there.
func (s *FileStore) Profiles() ([]string, error) {
	if s.Path != "" {
		return nil, nil
	}
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	var out []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && CheckProfile(name) == nil {
			out = append(out, name)
		}
	}
	return out, nil
}

// unwrapPath drops the *fs.PathError wrapper, whose path the caller already
// names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
