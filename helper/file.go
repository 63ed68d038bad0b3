package helper

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// Get reads the profile's file. A file that is not a token set (empty,
// garbage, valid JSON of another shape, a malformed JWT) is moved aside to
// <file>.corrupt-<UTC time> with a warning, and counts as absent.
func (s *FileStore) Get(_ context.Context, profile string) (*auth.TokenSet, error) {
	path := s.File(profile)
	b, err := readNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrStorage, path, unwrapPath(err))
	}
	set, perr := auth.ParseTokenSet(b)
	if perr == nil {
		return set, nil
	}
	aside := path + ".corrupt-" + s.now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, aside); err != nil {
		return nil, fmt.Errorf("%w: %s is not a token set and cannot be moved aside: %w", ErrStorage, path, unwrapPath(err))
	}
	s.warn("warning: %s was not a token set (%s); moved it to %s", path, reason(perr), filepath.Base(aside))
	return nil, ErrNotFound
}

// GetAccess returns the profile's access token, decoding nothing else
// (with auth's lean decoder): the fast path of Get. A file it cannot read
// that way goes through Get, which decodes it fully and moves it aside if
// it is corrupt.
func (s *FileStore) GetAccess(ctx context.Context, profile string) (string, error) {
	b, err := readNoFollow(s.File(profile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrNotFound
	}
	if err == nil {
		if tok, ok := auth.TopLevelString(b, "access_token"); ok && tok != "" {
			return tok, nil
		}
	}
	set, err := s.Get(ctx, profile)
	if err != nil {
		return "", err
	}
	return set.AccessToken, nil
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
func (s *FileStore) Set(_ context.Context, profile string, set *auth.TokenSet) error {
	data, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	path := s.File(profile)
	if err := s.prepareDir(); err != nil {
		return err
	}
	return writeAtomic(path, data)
}

// writeAtomic replaces path with data: a temp file created 0600 in the same
// directory, written and synced, renamed over path, and the directory
// synced. Temp files of path left by a crashed writer are removed first:
// callers hold path's lock, so no one else is writing.
func writeAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "."+base+".tmp-*")); len(old) > 0 {
		for _, o := range old {
			os.Remove(o)
		}
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(rnd[:]))
	// O_EXCL: never follows a symlink planted at the temp name.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%w: create temp file in %s: %w", ErrStorage, dir, unwrapPath(err))
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrStorage, tmp, unwrapPath(err))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%w: sync %s: %w", ErrStorage, tmp, unwrapPath(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: close %s: %w", ErrStorage, tmp, unwrapPath(err))
	}
	// rename replaces a symlink at path itself, never the file it points to.
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("%w: rename to %s: %w", ErrStorage, path, unwrapPath(err))
	}
	ok = true
	syncDir(dir)
	return nil
}

// prepareDir creates the store directory 0700, and tightens it to 0700 with
// a warning when it has any group or other bit. A --token-file directory is
// the user's and is only created, never changed.
func (s *FileStore) prepareDir() error {
	dir := s.Dir
	if s.Path != "" {
		dir = filepath.Dir(s.Path)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: create %s: %w", ErrStorage, dir, unwrapPath(err))
	}
	if s.Path != "" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if fi.Mode().Perm()&0o077 != 0 && !isWindows {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("%w: tighten permissions of %s: %w", ErrStorage, dir, unwrapPath(err))
		}
		s.warn("warning: %s was accessible to other users (mode %04o); changed it to 0700", dir, fi.Mode().Perm())
	}
	return nil
}

// Delete removes the profile's file; its lock file stays (deleting lock
// files breaks locking).
func (s *FileStore) Delete(_ context.Context, profile string) error {
	err := os.Remove(s.File(profile))
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	syncDir(filepath.Dir(s.File(profile)))
	return nil
}

// Profiles lists the profiles that have a file in Dir.
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
		if ok && e.Type().IsRegular() && CheckProfile(name) == nil {
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
