package helper

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// EtcdCompanion is the program that holds the etcd client. The helper does
// not link it (gRPC would slow every file and keyring get); it starts it
// for an etcd:// store only, as git starts git-remote-*.
const EtcdCompanion = "prusa-credential-helper-etcd"

// ErrStoreUnreachable is returned (wrapped) when a store's server cannot be
// reached or does not answer in time: etcd down, no quorum, or a network
// fault. Where the time ran out it also wraps context.DeadlineExceeded.
var ErrStoreUnreachable = errors.New("store unreachable")

// ErrStoreConflict is returned (wrapped, with ErrStorage) when a write to
// etcd was refused because the set changed since it was read, or the
// writer's lock was lost with its lease: nothing was written.
var ErrStoreConflict = errors.New("store conflict")

// ErrEtcdAuth is returned (wrapped, with ErrStorage) when etcd refused the
// user, or the user's role does not cover the prefix.
var ErrEtcdAuth = errors.New("etcd refused the user")

// EtcdSettings are the TLS and authentication settings of an etcd:// store
// (--etcd-cacert, --etcd-cert, --etcd-key, --etcd-user). They reach the
// companion through its environment, never its command line.
type EtcdSettings struct {
	CACert, Cert, Key string // file names
	User              string // user:password
}

// EtcdStore keeps token sets in etcd, for many machines at once: the key
// PREFIX/<profile> holds the file store's JSON. A local cache (0600, the
// file store's format, the access token only) serves valid access tokens
// without contacting etcd. The etcd client runs in the companion program,
// started at the first call that needs etcd and kept until Close.
type EtcdStore struct {
	Endpoints []string // host:port
	Prefix    string   // without slashes at either end
	// CacheDir holds this cluster's cache, <profile>.json (see EtcdCacheDir).
	CacheDir string
	Settings EtcdSettings
	// Companion, if set, is the companion's path; else it is looked up
	// beside the running executable, then on PATH.
	Companion string
	// LeaseTTL is the lock's lease: 0 means 5s. Whole seconds, at least 2.
	LeaseTTL time.Duration
	// Timeout, if set, bounds each call whose context has no deadline
	// (such as get's first read, before the command's budget is armed);
	// without either, the companion gives one etcd call 5s.
	Timeout time.Duration
	// Stderr receives the companion's standard error (empty unless it
	// fails); nil keeps its last lines for error messages only.
	Stderr io.Writer
	Warn   func(msg string) // may be nil
	Now    func() time.Time // nil means time.Now

	mu   sync.Mutex
	path string           // the companion, once found
	conn *etcdConn        // the running companion, if any
	revs map[string]int64 // profile → ModRevision last read from etcd (0: absent)
}

// ParseEtcdURL reads etcd://HOST:PORT[,HOST:PORT...]/PREFIX. Its prefix is
// the path without its leading and trailing slashes, and must not be empty.
func ParseEtcdURL(raw string) (endpoints []string, prefix string, err error) {
	rest, ok := strings.CutPrefix(raw, "etcd://")
	if !ok {
		return nil, "", errors.New("want etcd://HOST:PORT/PREFIX")
	}
	if strings.ContainsAny(rest, "?#") {
		return nil, "", errors.New("etcd:// URL: no query or fragment allowed")
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if strings.Contains(hosts, "@") {
		return nil, "", errors.New("etcd:// URL: no user in the URL; use --etcd-user or PRUSA_ETCD_USER")
	}
	if hosts == "" {
		return nil, "", errors.New("etcd:// URL names no HOST:PORT")
	}
	// A message shows a host only in a host's shape, and never a port:
	// etcd://user:password/… (the @HOST forgotten) has the password there.
	for i, hp := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(hp)
		if err != nil || host == "" {
			if !strings.Contains(hp, ":") { // no port to hide: a host that lacks one
				return nil, "", fmt.Errorf("etcd:// URL: endpoint %d %s is not HOST:PORT", i+1, protocol.Shown(hp, protocol.Host))
			}
			return nil, "", fmt.Errorf("etcd:// URL: endpoint %d is not HOST:PORT", i+1)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, "", fmt.Errorf("etcd:// URL: endpoint %d, host %s, has no port from 1 to 65535", i+1, protocol.Shown(host, protocol.Host))
		}
		endpoints = append(endpoints, hp)
	}
	if strings.HasPrefix(path, "/") || strings.Contains(path, "//") {
		return nil, "", errors.New("etcd:// URL: the key prefix has an empty path segment")
	}
	prefix = strings.Trim(path, "/")
	if prefix == "" {
		return nil, "", errors.New("etcd:// URL names no key prefix (etcd://HOST:PORT/PREFIX)")
	}
	return endpoints, prefix, nil
}

// EtcdCacheDir is where the cache of one cluster and prefix lives: the
// hash keeps two clusters, or two prefixes, apart.
func EtcdCacheDir(dir string, endpoints []string, prefix string) string {
	eps := slices.Clone(endpoints)
	slices.Sort(eps)
	sum := sha256.Sum256([]byte(strings.Join(eps, ",") + "/" + prefix))
	return filepath.Join(dir, "etcd-cache", hex.EncodeToString(sum[:8]))
}

// Name is "etcd".
func (s *EtcdStore) Name() string { return "etcd" }

func (s *EtcdStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Check finds the companion program, touching no network: a missing one is
// an ErrStorage that says how to install it.
func (s *EtcdStore) Check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.companion()
	return err
}

func (s *EtcdStore) companion() (string, error) {
	if s.path != "" {
		return s.path, nil
	}
	name := EtcdCompanion
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	var looked string
	if s.Companion != "" {
		if isExecutable(s.Companion) {
			s.path = s.Companion
			return s.path, nil
		}
		looked = "at " + s.Companion
	} else {
		looked = "on PATH"
		if exe, err := os.Executable(); err == nil {
			beside := filepath.Join(filepath.Dir(exe), name)
			if isExecutable(beside) {
				s.path = beside
				return s.path, nil
			}
			looked = "in " + filepath.Dir(exe) + " or on PATH"
		}
		if p, err := exec.LookPath(name); err == nil {
			s.path = p
			return s.path, nil
		}
	}
	return "", fmt.Errorf("%w: the etcd store needs the program %s, not found %s; install it beside the helper: ./install.sh from a checkout installs both",
		ErrStorage, EtcdCompanion, looked)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && (runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0)
}

// cacheFile is the profile's cache file.
func (s *EtcdStore) cacheFile(profile string) string {
	return filepath.Join(s.CacheDir, profile+".json")
}

// cached returns the cached set (the access token and what is judged and
// printed with it) when its access token stays valid for more than
// MinMargin by the server's clock.
func (s *EtcdStore) cached(profile string) (*auth.TokenSet, bool) {
	b, err := readFile(s.cacheFile(profile))
	if err != nil {
		return nil, false
	}
	set, err := auth.ParseTokenSet(b)
	if err != nil {
		return nil, false
	}
	c, err := set.Access() // parsed by ParseTokenSet
	if err != nil || !auth.ValidFor(c.Expiry.Time, set.ServerNow(s.now()), MinMargin) {
		return nil, false
	}
	return set, true
}

// hostOffset is the clock offset this host keeps for the profile, in its
// cache: the account server's clock minus this host's, as its last refresh
// or login estimated it (0 where it has none). Each host has its own
// clock, so the offset is never shared through etcd: a set read from etcd
// is judged with this one.
func (s *EtcdStore) hostOffset(profile string) time.Duration {
	b, err := readFile(s.cacheFile(profile))
	if err != nil {
		return 0
	}
	set, err := auth.ParseTokenSet(b)
	if err != nil {
		return 0
	}
	return set.ClockOffset
}

// writeCache keeps the set's access token, and what is judged and printed
// with it (token type, clock offset, the environment set it replaced), in
// the cache: never its refresh or id token. The cache only saves trips to etcd, so a
// failure to write it is a warning.
func (s *EtcdStore) writeCache(profile string, set *auth.TokenSet) {
	if b, err := readFile(s.cacheFile(profile)); err == nil {
		if c, err := auth.ParseTokenSet(b); err == nil && c.AccessToken == set.AccessToken && c.ClockOffset == set.ClockOffset {
			return // another process of this host cached it already
		}
	}
	err := privateDir(s.CacheDir, s.warn)
	if err == nil {
		var data []byte
		data, err = auth.TokenSet{AccessToken: set.AccessToken, TokenType: set.TokenType,
			ClockOffset: set.ClockOffset, ReplacedEnv: set.ReplacedEnv}.MarshalJSON()
		if err == nil {
			err = writeShared(s.cacheFile(profile), data)
		}
	}
	if err != nil {
		s.warn(fmt.Sprintf("warning: cannot cache the access token in %s: %v", s.CacheDir, unwrapPath(err)))
	}
}

// dropCache removes the profile's cache file. It reports whether there was
// one; a cache that cannot be removed is an ErrStorage (it would go on
// serving its token).
func (s *EtcdStore) dropCache(profile string) (bool, error) {
	err := os.Remove(s.cacheFile(profile))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("%w: remove the cached token: %w", ErrStorage, unwrapPath(err))
}

// lockCache takes the profile's lock on this host, beside its cache:
// shared by Get, across its read of etcd and the cache write that follows,
// and exclusive by Delete, so that a read that overlapped an erase on this
// host never caches the erased token after the erase removed it. Shared,
// it waits at most cacheLockWait: where the lock cannot be had in that
// time (an erase stopped with Ctrl-Z, say), Get goes on without it
// (locked false) and leaves the cache alone. Exclusive, it waits while ctx
// allows, since a read may hold it for a whole etcd call. Where the lock
// file cannot be made, the cache cannot be written either: the call goes
// on without it.
func (s *EtcdStore) lockCache(ctx context.Context, profile string, shared bool) (unlock func(), locked bool, err error) {
	wctx := ctx
	if shared {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, cacheLockWait)
		defer cancel()
	}
	unlock, err = lockFile(wctx, filepath.Join(s.CacheDir, profile+".lock"), shared)
	switch {
	case err == nil:
		return unlock, true, nil
	case ctx.Err() != nil: // the caller's time, or an interrupt
		return nil, false, err
	}
	return func() {}, false, nil
}

// cacheLockWait bounds a read's wait for the cache lock: an erase
// stopped with Ctrl-Z must not stall the host's gets.
const cacheLockWait = 2 * time.Second

// rescueFile holds the profile's rescued set (see keepRescue): a name
// that no profile's cache has, since no profile name starts with a dot.
func (s *EtcdStore) rescueFile(profile string) string {
	return filepath.Join(s.CacheDir, ".rescue-"+profile+".json")
}

// Kept reports whether a refreshed set of the profile waits on this host
// to be written to etcd (see keepRescue).
func (s *EtcdStore) Kept(profile string) bool {
	_, err := os.Stat(s.rescueFile(profile))
	return err == nil
}

// revision is the profile key's revision at the last read (0: absent),
// and whether there was one.
func (s *EtcdStore) revision(profile string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rev, ok := s.revs[profile]
	return rev, ok
}

// etcdRescue is a refreshed set that could not be written to etcd, and
// the revision of the profile's key that it was to replace (0: none).
type etcdRescue struct {
	Revision int64          `json:"revision"`
	Set      *auth.TokenSet `json:"tokens"`
}

// keepRescue keeps set on this host (0600, beside the cache) when etcd
// would not take it after a refresh: the server has rotated the old
// refresh token, so set holds the profile's only live one. The next
// locked read writes it to etcd while the key is still at the revision it
// was to replace (see Helper.readLocked). It returns the file's path.
func (s *EtcdStore) keepRescue(profile string, set *auth.TokenSet) (string, error) {
	rev, _ := s.revision(profile) // read under the lock, before the refresh
	data, err := json.Marshal(etcdRescue{Revision: rev, Set: set})
	if err == nil {
		err = privateDir(s.CacheDir, s.warn)
	}
	if err == nil {
		err = writeShared(s.rescueFile(profile), data)
	}
	return s.rescueFile(profile), err
}

// rescued returns the profile's rescued set, or nil. One that cannot be
// read as a rescue is removed, with a warning.
func (s *EtcdStore) rescued(profile string) *etcdRescue {
	b, err := readFile(s.rescueFile(profile))
	if err != nil {
		return nil
	}
	var r etcdRescue
	if json.Unmarshal(b, &r) != nil || r.Set == nil || r.Set.Validate() != nil {
		s.warn(fmt.Sprintf("warning: %s is not a set kept for etcd; removing it", s.rescueFile(profile)))
		s.dropRescue(profile)
		return nil
	}
	return &r
}

func (s *EtcdStore) dropRescue(profile string) bool {
	return os.Remove(s.rescueFile(profile)) == nil
}

func (s *EtcdStore) warn(msg string) {
	if s.Warn != nil {
		s.Warn(msg)
	}
}

// Peek is get's fast path: the cached set (the access token alone, with
// what is judged and printed with it) while its token stays valid for more
// than MinMargin, without starting the companion; else the set in etcd.
func (s *EtcdStore) Peek(ctx context.Context, profile string) (*auth.TokenSet, Result, error) {
	set, res, err := s.PeekLocal(ctx, profile)
	if errors.Is(err, ErrNotFound) {
		return s.Get(ctx, profile)
	}
	return set, res, err
}

// PeekLocal is Peek without etcd: the cached set, or ErrNotFound where the
// cache has none that stays valid for more than MinMargin.
func (s *EtcdStore) PeekLocal(ctx context.Context, profile string) (*auth.TokenSet, Result, error) {
	s.mu.Lock()
	_, err := s.companion() // missing, it is an error even where the cache would serve
	s.mu.Unlock()
	if err != nil {
		return nil, Result{Store: ModeEtcd}, err
	}
	if set, ok := s.cached(profile); ok {
		return set, Result{Store: ModeEtcd, Path: s.cacheFile(profile)}, nil
	}
	return nil, Result{Store: ModeEtcd}, ErrNotFound
}

// Get reads the profile's whole set from etcd (and updates the cache).
func (s *EtcdStore) Get(ctx context.Context, profile string) (*auth.TokenSet, Result, error) {
	unlock, locked, err := s.lockCache(ctx, profile, true)
	if err != nil {
		return nil, Result{Store: ModeEtcd}, err
	}
	defer unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	set, err := s.getRemote(ctx, profile, locked)
	return set, Result{Store: ModeEtcd}, err
}

// getRemote reads the profile's set from etcd, and with cache updates the
// cache.
func (s *EtcdStore) getRemote(ctx context.Context, profile string, cache bool) (*auth.TokenSet, error) {
	for try := 0; ; try++ {
		a, err := s.call(ctx, EtcdRequest{Op: "get", Profile: profile})
		if errors.Is(err, ErrNotFound) {
			s.rev(profile, 0)
			s.dropCache(profile) // best effort: a token erased elsewhere expires anyway
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		s.rev(profile, a.Revision)
		set, perr := auth.ParseTokenSet([]byte(a.Set))
		if perr == nil {
			set.ClockOffset = s.hostOffset(profile)
		}
		if perr == nil && s.Kept(profile) {
			return set, nil // the cache keeps the kept set's token, which is the live one
		}
		if perr == nil {
			if cache {
				s.writeCache(profile, set)
			}
			return set, nil
		}
		// As the file store does with a corrupt file: moved aside, with a
		// warning, and absent. One that changed meanwhile is read again.
		moved, err := s.call(ctx, EtcdRequest{Op: "moveaside", Profile: profile, Revision: &a.Revision})
		if errors.Is(err, ErrStoreConflict) && try == 0 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s/%s in etcd is not a token set (%s), and it could not be moved aside: %w", s.Prefix, profile, reason(perr), err)
		}
		s.warn(fmt.Sprintf("warning: %s/%s in etcd is not a token set (%s); moved it to %s", s.Prefix, profile, reason(perr), moved.Key))
		s.rev(profile, 0)
		s.dropCache(profile)
		return nil, ErrNotFound
	}
}

func (s *EtcdStore) rev(profile string, rev int64) {
	if s.revs == nil {
		s.revs = map[string]int64{}
	}
	s.revs[profile] = rev
}

// Set writes the profile's set to etcd, only on the revision last read
// from etcd (reading it first if this store has not), and only while the
// lock is still this store's if it holds it; then caches its access
// token. A refused write wraps ErrStoreConflict and ErrStorage.
func (s *EtcdStore) Set(ctx context.Context, profile string, set *auth.TokenSet) (Result, error) {
	res := Result{Store: "etcd"}
	shared := *set
	shared.ClockOffset = 0 // this host's, kept in its cache (see hostOffset)
	data, err := shared.MarshalJSON()
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rev, ok := s.revs[profile]
	if !ok {
		if _, err := s.getRemote(ctx, profile, true); err != nil && !errors.Is(err, ErrNotFound) {
			return res, err
		}
		rev = s.revs[profile]
	}
	a, err := s.call(ctx, EtcdRequest{Op: "put", Profile: profile, Set: string(data), Revision: &rev})
	if err != nil {
		return res, err
	}
	s.rev(profile, a.Revision)
	s.writeCache(profile, set)
	s.dropRescue(profile) // etcd holds a newer set than any kept here
	return res, nil
}

// Delete removes the profile's key and its local cache; ErrNotFound if
// neither was there. Other hosts serve their cached access token until it
// expires. With etcd unreachable nothing is removed.
func (s *EtcdStore) Delete(ctx context.Context, profile string) error {
	unlock, _, err := s.lockCache(ctx, profile, false)
	if err != nil {
		return err
	}
	defer unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.call(ctx, EtcdRequest{Op: "delete", Profile: profile})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	s.rev(profile, 0)
	rescued := s.dropRescue(profile)
	cached, cerr := s.dropCache(profile)
	if cerr != nil || cached || rescued {
		return cerr
	}
	return err
}

// Profiles lists the profiles that have a key under the prefix.
func (s *EtcdStore) Profiles(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.call(ctx, EtcdRequest{Op: "list"})
	if err != nil {
		return nil, err
	}
	return a.Profiles, nil
}

// Lock takes the profile's etcd lock (a concurrency.Mutex on
// PREFIX/<profile>.lock, on the companion's lease), waiting while ctx
// allows. unlock releases it; a companion that dies frees it when its lease
// expires.
func (s *EtcdStore) Lock(ctx context.Context, profile string) (unlock func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.call(ctx, EtcdRequest{Op: "lock", Profile: profile}); err != nil {
		return nil, err
	}
	holder := s.conn
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.conn != holder {
				return // the companion stopped, and its lease went with it
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.call(ctx, EtcdRequest{Op: "unlock", Profile: profile})
		})
	}, nil
}

// Close ends the companion, which then revokes its lease; a lock not
// unlocked first stays until the lease expires. The store may be used
// again: a later call starts a new one.
func (s *EtcdStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	s.conn.close()
	s.conn = nil
	return nil
}

// EtcdRequest and EtcdAnswer are the lines that the helper and its etcd
// companion exchange, one JSON object a line (see the companion's package
// documentation); an answer that is not OK carries one of the Etcd…
// kinds.
type EtcdRequest struct {
	Op        string `json:"op"`
	Profile   string `json:"profile,omitempty"`
	Set       string `json:"set,omitempty"`
	Revision  *int64 `json:"revision,omitempty"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
}

// EtcdAnswer: see EtcdRequest.
type EtcdAnswer struct {
	OK       bool     `json:"ok"`
	Set      string   `json:"set,omitempty"`
	Revision int64    `json:"revision,omitempty"`
	Key      string   `json:"key,omitempty"` // where moveaside put the value
	Profiles []string `json:"profiles,omitempty"`
	Kind     string   `json:"kind,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// The kinds of a failed EtcdAnswer.
const (
	EtcdNotFound    = "not_found"
	EtcdUnavailable = "unavailable" // etcd cannot be reached
	EtcdTimeout     = "timeout"     // etcd did not answer in time
	EtcdLocked      = "locked"      // another holder kept the lock past the wait
	EtcdConflict    = "conflict"    // the key changed since it was read, or the lease was lost
	EtcdAuth        = "auth"
	EtcdOther       = "other"
)

// call sends one request to the companion (starting it if needed) and
// waits for its answer while ctx allows; a companion that does not answer
// in time is stopped.
func (s *EtcdStore) call(ctx context.Context, req EtcdRequest) (*EtcdAnswer, error) {
	if _, ok := ctx.Deadline(); !ok && s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, s.unreachable(err)
	}
	if s.conn == nil {
		path, err := s.companion()
		if err != nil {
			return nil, err
		}
		c, err := s.start(path)
		if err != nil {
			return nil, err
		}
		s.conn = c
	}
	if dl, ok := ctx.Deadline(); ok {
		// Under the caller's time, so that the companion's answer (which
		// may look at the connection for 300 ms to say what is wrong),
		// rather than the caller's deadline, says what happened.
		left := time.Until(dl)
		req.TimeoutMS = max(1, (left - min(left/2, max(left/20, 400*time.Millisecond))).Milliseconds())
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	a, err := s.conn.roundTrip(ctx, append(line, '\n'))
	if err != nil {
		c := s.conn
		s.conn = nil
		if ctx.Err() != nil {
			go c.close() // the caller's time is up: do not wait for it
			return nil, s.unreachable(ctx.Err())
		}
		c.close()
		return nil, fmt.Errorf("%w: %s stopped: %s", ErrStorage, EtcdCompanion, c.why(err))
	}
	if a.OK {
		return a, nil
	}
	msg := a.Error
	if !strings.Contains(msg, "etcd") {
		msg = "etcd: " + msg
	}
	switch a.Kind {
	case EtcdNotFound:
		return nil, ErrNotFound
	case EtcdUnavailable:
		return nil, fmt.Errorf("%w: %s", ErrStoreUnreachable, msg)
	case EtcdTimeout:
		return nil, fmt.Errorf("%w: %s: %w", ErrStoreUnreachable, msg, context.DeadlineExceeded)
	case EtcdLocked:
		return nil, fmt.Errorf("%s: %w", msg, context.DeadlineExceeded)
	case EtcdConflict:
		return nil, fmt.Errorf("%w: %w: %s", ErrStorage, ErrStoreConflict, msg)
	case EtcdAuth:
		return nil, &etcdAuthError{msg}
	}
	return nil, fmt.Errorf("%w: %s", ErrStorage, msg)
}

// etcdAuthError is an ErrEtcdAuth (and ErrStorage) with etcd's message.
type etcdAuthError struct{ msg string }

func (e *etcdAuthError) Error() string { return e.msg }
func (e *etcdAuthError) Is(target error) bool {
	return target == ErrEtcdAuth || target == ErrStorage
}

func (s *EtcdStore) unreachable(err error) error {
	return fmt.Errorf("%w: no answer from etcd at %s: %w", ErrStoreUnreachable, strings.Join(s.Endpoints, ","), err)
}

func (s *EtcdStore) start(path string) (*etcdConn, error) {
	args := []string{"--endpoints", strings.Join(s.Endpoints, ","), "--prefix", s.Prefix}
	if s.LeaseTTL > 0 {
		args = append(args, "--lease-ttl", s.LeaseTTL.String())
	}
	cmd := exec.Command(path, args...)
	env := slices.DeleteFunc(ChildEnviron(os.Environ()), func(kv string) bool { return strings.HasPrefix(kv, "PRUSA_ETCD_") })
	for k, v := range map[string]string{
		"PRUSA_ETCD_CACERT": s.Settings.CACert, "PRUSA_ETCD_CERT": s.Settings.Cert,
		"PRUSA_ETCD_KEY": s.Settings.Key, "PRUSA_ETCD_USER": s.Settings.User,
	} {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	cmd.Env = env
	cmd.SysProcAttr = companionAttr()
	c := &etcdConn{cmd: cmd, exited: make(chan struct{})}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrStorage, EtcdCompanion, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrStorage, EtcdCompanion, err)
	}
	c.stdout = bufio.NewReader(stdout)
	cmd.Stderr = &c.stderr
	if s.Stderr != nil {
		cmd.Stderr = io.MultiWriter(s.Stderr, &c.stderr)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrStorage, path, unwrapPath(err))
	}
	c.answers = make(chan readResult, 1)
	go c.read()
	go func() { c.waitErr = cmd.Wait(); close(c.exited) }()
	return c, nil
}

// etcdConn is a running companion.
type etcdConn struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	stderr  tailBuffer
	answers chan readResult
	exited  chan struct{}
	waitErr error
	closed  bool
}

type readResult struct {
	a   *EtcdAnswer
	err error
}

// read decodes the companion's answers, one a line, until its output ends.
func (c *etcdConn) read() {
	for {
		line, err := c.stdout.ReadBytes('\n')
		if err != nil {
			c.answers <- readResult{err: err}
			return
		}
		var a EtcdAnswer
		if err := json.Unmarshal(line, &a); err != nil {
			c.answers <- readResult{err: errors.New("its answer is not json")}
			return
		}
		c.answers <- readResult{a: &a}
	}
}

func (c *etcdConn) roundTrip(ctx context.Context, line []byte) (*EtcdAnswer, error) {
	if _, err := c.stdin.Write(line); err != nil {
		return nil, err
	}
	select {
	case r := <-c.answers:
		return r.a, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// why describes a companion that stopped answering, with the last line
// it wrote on stderr (its own messages, never a token).
func (c *etcdConn) why(err error) string {
	select {
	case <-c.exited:
		if last := c.stderr.lastLine(); last != "" {
			return last
		}
		if c.waitErr != nil {
			return c.waitErr.Error()
		}
	case <-time.After(time.Second):
	}
	return err.Error()
}

// close ends the companion's input, so that it ends its session and
// exits, and kills it if it has not within a second.
func (c *etcdConn) close() {
	if c.closed {
		return
	}
	c.closed = true
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := bytes.Split(bytes.TrimSpace(t.buf), []byte("\n"))
	return strings.TrimSpace(string(lines[len(lines)-1]))
}
