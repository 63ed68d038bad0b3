package helper

// The etcd store against a real etcd is tested in
// cmd/prusa-credential-helper-etcd, which embeds one; here: what needs no
// etcd (the URL, the cache, the companion's lookup and its answers, from
// stand-in companions).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

func TestParseEtcdURL(t *testing.T) {
	good := []struct {
		url    string
		eps    []string
		prefix string
	}{
		{"etcd://h:2379/farm", []string{"h:2379"}, "farm"},
		{"etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/farm", []string{"10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"}, "farm"},
		{"etcd://[::1]:2379/a/b/", []string{"[::1]:2379"}, "a/b"},
	}
	for _, g := range good {
		eps, prefix, err := ParseEtcdURL(g.url)
		if err != nil || !slices.Equal(eps, g.eps) || prefix != g.prefix {
			t.Errorf("ParseEtcdURL(%q) = %q, %q, %v; want %q, %q", g.url, eps, prefix, err, g.eps, g.prefix)
		}
	}
	for _, bad := range []string{
		"http://h:2379/farm", "etcd://", "etcd:///farm", "etcd://h:2379", "etcd://h:2379/",
		"etcd://h/farm", "etcd://h:0/farm", "etcd://h:99999/farm", "etcd://h:2379,/farm",
		"etcd://u:p@h:2379/farm", "etcd://h:2379//farm", "etcd://h:2379/farm?x=1",
	} {
		if _, _, err := ParseEtcdURL(bad); err == nil {
			t.Errorf("ParseEtcdURL(%q) took it", bad)
		} else if msg := err.Error(); strings.Contains(msg, "\n") || msg != strings.ToLower(msg[:1])+msg[1:] {
			t.Errorf("ParseEtcdURL(%q): message %q is not one lower-case line", bad, msg)
		}
	}
}

func TestEtcdCacheDir(t *testing.T) {
	a := EtcdCacheDir("/c", []string{"a:1", "b:1"}, "farm")
	if b := EtcdCacheDir("/c", []string{"b:1", "a:1"}, "farm"); a != b {
		t.Errorf("the endpoints' order changes the cache: %s, %s", a, b)
	}
	if b := EtcdCacheDir("/c", []string{"a:1", "b:1"}, "farm2"); a == b {
		t.Errorf("two prefixes share a cache")
	}
	if b := EtcdCacheDir("/c", []string{"a:1"}, "farm"); a == b {
		t.Errorf("two clusters share a cache")
	}
	if filepath.Dir(a) != filepath.Join("/c", "etcd-cache") {
		t.Errorf("cache %s is not under /c/etcd-cache", a)
	}
}

func TestEtcdMissingCompanion(t *testing.T) {
	s := &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir(), Companion: filepath.Join(t.TempDir(), "nowhere")}
	err := s.Check()
	if !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), EtcdCompanion) || !strings.Contains(err.Error(), "install.sh") {
		t.Fatalf("Check with no companion: %v; want a storage error naming %s and install.sh", err, EtcdCompanion)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("message has more than one line: %q", err)
	}
	// Looked up beside the executable and on PATH.
	t.Setenv("PATH", t.TempDir())
	s = &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir()}
	if err := s.Check(); !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "PATH") {
		t.Errorf("Check with no companion anywhere: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, EtcdCompanion), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		t.Setenv("PATH", dir)
		if err := s.Check(); err != nil {
			t.Errorf("Check with the companion on PATH: %v", err)
		}
	}
	// Every call needing etcd fails the same way, before any network.
	s = &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir(), Companion: "/nonexistent/companion"}
	if _, _, err := s.Get(context.Background(), "default"); !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), EtcdCompanion) {
		t.Errorf("Get with no cache and no companion: %v", err)
	}
}

// etcdTestToken is an unsigned JWT (the helper never checks signatures)
// that expires at exp.
func etcdTestToken(exp time.Time, jti string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		enc([]byte(fmt.Sprintf(`{"jti":%q,"sub":"42","exp":%d,"sid":"s"}`, jti, exp.Unix()))) + "." + enc([]byte("CANARY-etcd-signature"))
}

func TestEtcdCacheFastPath(t *testing.T) {
	now := time.Now()
	ran := filepath.Join(t.TempDir(), "ran")
	s := &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: filepath.Join(t.TempDir(), "c"),
		Companion: fakeCompanion(t, "touch "+ran+"\nexit 3\n")} // one that fails, and says it ran
	valid := &auth.TokenSet{AccessToken: etcdTestToken(now.Add(2*time.Hour), "a"), RefreshToken: etcdTestToken(now.Add(720*time.Hour), "r"), TokenType: "Bearer"}
	s.writeCache("default", valid)
	b, err := os.ReadFile(filepath.Join(s.CacheDir, "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), valid.RefreshToken) {
		t.Errorf("the cache holds the refresh token")
	}
	fi, err := os.Stat(s.CacheDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	if runtime.GOOS != "windows" {
		// A directory opened to others is tightened, with a warning.
		os.Chmod(s.CacheDir, 0o755)
		var warned []string
		s.Warn = func(msg string) { warned = append(warned, msg) }
		valid = &auth.TokenSet{AccessToken: etcdTestToken(now.Add(2*time.Hour), "a2"), TokenType: "Bearer"}
		s.writeCache("default", valid)
		if fi, _ := os.Stat(s.CacheDir); fi.Mode().Perm() != 0o700 || len(warned) != 1 || !strings.Contains(warned[0], "0700") {
			t.Errorf("a 0755 cache directory: now %v, warnings %q", fi.Mode().Perm(), warned)
		}
		s.Warn = nil
	}
	// Served without running the companion.
	got, _, err := s.Peek(context.Background(), "default")
	if err != nil || got.AccessToken != valid.AccessToken || got.RefreshToken != "" || got.TokenType != "Bearer" {
		t.Fatalf("Peek at the cache: %v, %v", got, err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("the fast path ran the companion")
	}
	// But a missing companion is an error there too.
	gone := &EtcdStore{Endpoints: s.Endpoints, Prefix: s.Prefix, CacheDir: s.CacheDir, Companion: "/nonexistent/companion"}
	if _, _, err := gone.Peek(context.Background(), "default"); !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), EtcdCompanion) {
		t.Errorf("Peek at the cache with no companion: %v", err)
	}
	// Get is the whole set: it always asks etcd.
	if _, _, err := s.Get(context.Background(), "default"); !errors.Is(err, ErrStorage) {
		t.Errorf("Get did not go to etcd: %v", err)
	}
	// Valid for MinMargin or less by the server's clock: etcd is asked.
	s.Now = func() time.Time { return now.Add(2*time.Hour - MinMargin) }
	if _, _, err := s.Peek(context.Background(), "default"); !errors.Is(err, ErrStorage) {
		t.Errorf("Peek at a token valid for MinMargin did not go to etcd: %v", err)
	}
	// The same by the clock offset the cache keeps: the server's clock is
	// an hour and 59 minutes ahead of ours.
	s.Now = nil
	skewed := *valid
	skewed.ClockOffset = 2*time.Hour - MinMargin
	os.Remove(filepath.Join(s.CacheDir, "default.json"))
	s.writeCache("default", &skewed)
	if _, _, err := s.Peek(context.Background(), "default"); !errors.Is(err, ErrStorage) {
		t.Errorf("Peek judged the cached token by the local clock: %v", err)
	}
	s.writeCache("default", valid)
	// A cache that is not a token set is not served.
	os.WriteFile(filepath.Join(s.CacheDir, "default.json"), []byte("garbage"), 0o600)
	if _, _, err := s.Peek(context.Background(), "default"); !errors.Is(err, ErrStorage) {
		t.Errorf("Peek at a garbage cache did not go to etcd: %v", err)
	}
}

// fakeCompanion writes a stand-in companion that runs script (sh).
func fakeCompanion(t *testing.T, script string) string {
	if runtime.GOOS == "windows" {
		t.Skip("stand-in companions are shell scripts")
	}
	path := filepath.Join(t.TempDir(), EtcdCompanion)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEtcdAnswerKinds(t *testing.T) {
	for kind, check := range map[string]func(error) bool{
		"not_found": func(err error) bool { return err == ErrNotFound },
		"unavailable": func(err error) bool {
			return errors.Is(err, ErrStoreUnreachable) && !errors.Is(err, context.DeadlineExceeded)
		},
		"timeout": func(err error) bool {
			return errors.Is(err, ErrStoreUnreachable) && errors.Is(err, context.DeadlineExceeded)
		},
		"conflict": func(err error) bool { return errors.Is(err, ErrStoreConflict) && errors.Is(err, ErrStorage) },
		"auth": func(err error) bool {
			return errors.Is(err, ErrEtcdAuth) && errors.Is(err, ErrStorage) && !errors.Is(err, ErrStoreUnreachable)
		},
		"other": func(err error) bool { return errors.Is(err, ErrStorage) && !errors.Is(err, ErrStoreConflict) },
	} {
		path := fakeCompanion(t, `while read line; do echo '{"ok":false,"kind":"`+kind+`","error":"said `+kind+`"}'; done`+"\n")
		s := &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir(), Companion: path}
		_, _, err := s.Get(context.Background(), "default")
		if !check(err) {
			t.Errorf("kind %s: %v", kind, err)
		}
		if err != ErrNotFound && !strings.Contains(err.Error(), "said "+kind) {
			t.Errorf("kind %s: the companion's message is lost: %v", kind, err)
		}
		s.Close()
	}
}

func TestEtcdCompanionFails(t *testing.T) {
	// A companion that dies: its last stderr line says why.
	s := &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir(),
		Companion: fakeCompanion(t, "echo 'prusa-credential-helper-etcd: PRUSA_ETCD_USER must be user:password' >&2\nexit 2\n")}
	_, err := s.Profiles(context.Background())
	if !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "PRUSA_ETCD_USER must be user:password") {
		t.Errorf("a companion that exits: %v", err)
	}

	// A companion that does not answer: the caller's time decides, and
	// it is stopped.
	s = &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir(), Companion: fakeCompanion(t, "exec sleep 60\n")}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = s.Lock(ctx, "default")
	if !errors.Is(err, ErrStoreUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a companion that does not answer: %v", err)
	}
	if s.conn != nil {
		t.Errorf("the silent companion was kept")
	}
	// Timeout bounds a call whose context has no deadline.
	s.Timeout = 200 * time.Millisecond
	if _, err := s.Profiles(context.Background()); !errors.Is(err, ErrStoreUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a companion that does not answer, with Timeout: %v", err)
	}

	// Settings reach it through the environment, not its arguments.
	out := filepath.Join(t.TempDir(), "seen")
	s = &EtcdStore{Endpoints: []string{"a:1", "b:2"}, Prefix: "farm", CacheDir: t.TempDir(), LeaseTTL: 3 * time.Second,
		Settings:  EtcdSettings{CACert: "ca.pem", Cert: "c.pem", Key: "k.pem", User: "u:pw-canary"},
		Companion: fakeCompanion(t, `echo "$@" > '`+out+`'; env | grep ^PRUSA_ETCD_ | sort >> '`+out+`'; while read line; do echo '{"ok":true,"profiles":["x"]}'; done`+"\n")}
	t.Setenv("PRUSA_ETCD_USER", "stale:from-the-parent")
	names, err := s.Profiles(context.Background())
	if err != nil || !slices.Equal(names, []string{"x"}) {
		t.Fatalf("Profiles: %q, %v", names, err)
	}
	s.Close()
	b, _ := os.ReadFile(out)
	want := "--endpoints a:1,b:2 --prefix farm --lease-ttl 3s\nPRUSA_ETCD_CACERT=ca.pem\nPRUSA_ETCD_CERT=c.pem\nPRUSA_ETCD_KEY=k.pem\nPRUSA_ETCD_USER=u:pw-canary\n"
	if string(b) != want {
		t.Errorf("the companion saw %q, want %q", b, want)
	}
}

// TestEtcdEraseIsNotUndoneByAnOverlappingRead: a get on this host whose
// read of etcd came before an erase here, and whose answer came after it,
// does not leave the erased token in the cache for later gets to serve.
func TestEtcdEraseIsNotUndoneByAnOverlappingRead(t *testing.T) {
	dir := t.TempDir()
	asked, release, answer := filepath.Join(dir, "asked"), filepath.Join(dir, "release"), filepath.Join(dir, "answer")
	now := time.Now()
	set := &auth.TokenSet{AccessToken: etcdTestToken(now.Add(2*time.Hour), "a"), RefreshToken: etcdTestToken(now.Add(720*time.Hour), "r"), TokenType: "Bearer"}
	data, _ := set.MarshalJSON()
	line, _ := json.Marshal(EtcdAnswer{OK: true, Set: string(data), Revision: 5})
	if err := os.WriteFile(answer, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	// The reader's etcd answers its get only once released.
	reader := &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: cache,
		Companion: fakeCompanion(t, "while read line; do touch '"+asked+"'; while [ ! -e '"+release+"' ]; do sleep 0.01; done; cat '"+answer+"'; done\n")}
	eraser := &EtcdStore{Endpoints: reader.Endpoints, Prefix: "farm", CacheDir: cache,
		Companion: fakeCompanion(t, `while read line; do echo '{"ok":true}'; done`+"\n")}
	t.Cleanup(func() { reader.Close(); eraser.Close() })
	ctx := context.Background()

	read := make(chan error, 1)
	go func() { _, _, err := reader.Get(ctx, "default"); read <- err }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(asked); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reader never asked etcd")
		}
	}
	erased := make(chan error, 1)
	go func() { erased <- eraser.Delete(ctx, "default") }()
	select {
	case err := <-erased: // done before the read's answer: it must not wait
		erased <- err
	case <-time.After(cacheLockWait + 500*time.Millisecond): // waits for the read, longer than a read waits for it
	}
	os.WriteFile(release, nil, 0o600)
	if err := <-read; err != nil {
		t.Fatalf("the overlapping get: %v", err)
	}
	if err := <-erased; err != nil {
		t.Fatalf("erase: %v", err)
	}
	if _, err := os.Stat(reader.cacheFile("default")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after the erase, the cache holds the erased token (%v)", err)
	}
}

// TestEtcdCacheLockHolderStopped: a get whose cache lock is held by a
// process that went no further (stopped with Ctrl-Z in an erase, say)
// reads etcd all the same, and leaves the cache alone.
func TestEtcdCacheLockHolderStopped(t *testing.T) {
	dir := t.TempDir()
	answer := filepath.Join(dir, "answer")
	now := time.Now()
	set := &auth.TokenSet{AccessToken: etcdTestToken(now.Add(2*time.Hour), "a"), RefreshToken: etcdTestToken(now.Add(720*time.Hour), "r"), TokenType: "Bearer"}
	data, _ := set.MarshalJSON()
	line, _ := json.Marshal(EtcdAnswer{OK: true, Set: string(data), Revision: 5})
	os.WriteFile(answer, append(line, '\n'), 0o600)
	s := &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: filepath.Join(dir, "cache"),
		Companion: fakeCompanion(t, "while read line; do cat '"+answer+"'; done\n")}
	defer s.Close()
	unlock, err := lockFile(context.Background(), filepath.Join(s.CacheDir, "default.lock"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, _, err := s.Get(ctx, "default")
	if err != nil || got.AccessToken != set.AccessToken {
		t.Fatalf("Get with the cache lock held elsewhere: %v", err)
	}
	if _, err := os.Stat(s.cacheFile("default")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the cache was written without its lock (%v)", err)
	}
}

// TestEtcdConflictKeepsNoCache: a refreshed set that etcd refused because
// the key changed since it was read (the lock lost with its lease, then an
// erase or another host's write) is kept for etcd, and served to this
// caller, but not cached for later gets: etcd has the last word.
func TestEtcdConflictKeepsNoCache(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	old := e.mint(30 * time.Second) // valid, but not for MinMargin: a get refreshes
	data, _ := old.MarshalJSON()
	line, _ := json.Marshal(EtcdAnswer{OK: true, Set: string(data), Revision: 5})
	get := filepath.Join(t.TempDir(), "get")
	os.WriteFile(get, append(line, '\n'), 0o600)
	e.cfg.Mode = ModeEtcd
	e.cfg.Etcd = &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: filepath.Join(t.TempDir(), "cache"),
		Companion: fakeCompanion(t, `while read line; do case "$line" in
*'"op":"get"'*) cat '`+get+`';;
*'"op":"put"'*) echo '{"ok":false,"kind":"conflict","error":"lost the lock farm/default.lock: its lease expired; not written"}';;
*) echo '{"ok":true}';;
esac; done
`)}
	defer e.cfg.Etcd.Close()
	tok, err := e.get("default", 0, false)
	if err != nil || tok.AccessToken == old.AccessToken {
		t.Fatalf("get: %v; want the refreshed token", err)
	}
	if !e.cfg.Etcd.Kept("default") {
		t.Error("the refused set was not kept for etcd")
	}
	if c, ok := e.cfg.Etcd.cached("default"); ok && c.AccessToken == tok.AccessToken {
		t.Error("the refused set's token was cached")
	}
}

// TestEtcdRescueFileIsNoProfilesCache: no profile's cache file can be
// another profile's kept set.
func TestEtcdRescueFileIsNoProfilesCache(t *testing.T) {
	s := &EtcdStore{CacheDir: t.TempDir()}
	for _, p := range []string{"ci", "ci.rescue", "a.b", "-"} {
		r := filepath.Base(s.rescueFile(p))
		if CheckProfile(strings.TrimSuffix(r, ".json")) == nil {
			t.Errorf("the kept set of %q, %s, is the cache of a profile", p, r)
		}
	}
}

// TestEtcdKept: a kept set makes its profile Kept (refresh --all's "due"),
// and only with an etcd store.
func TestEtcdKept(t *testing.T) {
	s := &EtcdStore{CacheDir: t.TempDir()}
	os.WriteFile(s.rescueFile("p"), []byte("{}"), 0o600)
	if h := New(Config{Etcd: s, Dir: t.TempDir()}); !h.Kept("p") || h.Kept("q") {
		t.Fatal("Kept does not follow the kept set")
	}
	if h := New(Config{Mode: ModeFile, Dir: t.TempDir()}); h.Kept("p") {
		t.Fatal("Kept without an etcd store")
	}
}

// TestEtcdCompanionGetsNoSecrets: the companion inherits the environment
// without the variables that hold secrets, and is handed the etcd user
// it is to use.
func TestEtcdCompanionGetsNoSecrets(t *testing.T) {
	for _, name := range []string{"PRUSA_PASSWORD", "PRUSA_TOTP_SECRET", "PRUSA_TOTP_CODE", "PRUSA_TOKENS_JSON", "PRUSA_TOKEN", "PRUSA_ETCD_USER"} {
		t.Setenv(name, "CANARY-"+name)
	}
	out := filepath.Join(t.TempDir(), "env")
	s := &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir(), Settings: EtcdSettings{User: "helper:pw"},
		Companion: fakeCompanion(t, "env > '"+out+"'\nexit 2\n")}
	defer s.Close()
	s.Profiles(context.Background()) // fails: the stand-in exits
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(got), "\n") {
		if name, _, _ := strings.Cut(line, "="); strings.Contains(line, "CANARY") {
			t.Errorf("the companion inherited %s", name)
		}
	}
	if !strings.Contains(string(got), "PRUSA_ETCD_USER=helper:pw\n") {
		t.Error("the companion was not handed its etcd user")
	}
}

// TestEraseInEtcdModeClearsTheKeyring: erase removes the profile from
// every store it may be in, whatever --store says: with an etcd store,
// this host's keyring too (a set left there from before).
func TestEraseInEtcdModeClearsTheKeyring(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	e.store("default", e.mint(time.Hour))
	e.cfg.Etcd = &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir(),
		Companion: fakeCompanion(t, `while read line; do case "$line" in *'"delete"'*) echo '{"ok":false,"kind":"not_found","error":"no such key"}';; *) echo '{"ok":true}';; esac; done`+"\n")}
	defer e.cfg.Etcd.Close()
	if err := e.rebuild(); err != nil {
		t.Fatal(err)
	}
	out, err := e.h.Erase(context.Background(), "default")
	if err != nil || !slices.Contains(out.Removed, "keyring") {
		t.Fatalf("erase with an etcd store: %+v %v; want the keyring's copy removed", out, err)
	}
	e.kr.mu.Lock()
	defer e.kr.mu.Unlock()
	if len(e.kr.items) != 0 {
		t.Fatalf("the keyring still holds %d items", len(e.kr.items))
	}
}

// TestEtcdEnvSetServesWithoutEtcd: a valid PRUSA_TOKENS_JSON set (a CI
// job's seed) is get's fast path with an etcd store too: while this host's
// cache holds nothing later, etcd is not asked. One that needs a refresh
// goes to etcd.
func TestEtcdEnvSetServesWithoutEtcd(t *testing.T) {
	now := time.Now()
	ran := filepath.Join(t.TempDir(), "ran")
	e := newEnv(t, ModeEtcd, authtest.Options{})
	e.cfg.Etcd = &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir(),
		Companion: fakeCompanion(t, "touch "+ran+"\nexit 3\n")} // one that fails, and says it ran
	defer e.cfg.Etcd.Close()
	seed := func(ttl time.Duration) *auth.TokenSet {
		set := &auth.TokenSet{AccessToken: etcdTestToken(now.Add(ttl), "a"+ttl.String()), RefreshToken: etcdTestToken(now.Add(720*time.Hour), "r"), TokenType: "Bearer"}
		b, err := set.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		e.vars[EnvTokensJSON] = string(b)
		if err := e.rebuild(); err != nil {
			t.Fatal(err)
		}
		return set
	}
	set := seed(2 * time.Hour)
	tok, err := e.h.Get(context.Background(), "default", 0, false)
	if err != nil || tok.AccessToken != set.AccessToken {
		t.Fatalf("get with a valid environment set: %v %v", tok, err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("a valid environment set asked etcd")
	}
	// The cache's later token of the same session wins, still without etcd.
	later := &auth.TokenSet{AccessToken: etcdTestToken(now.Add(3*time.Hour), "later"), TokenType: "Bearer"}
	e.cfg.Etcd.writeCache("default", later)
	if tok, err := e.h.Get(context.Background(), "default", 0, false); err != nil || tok.AccessToken != later.AccessToken {
		t.Fatalf("get with a later cached token: %v %v", tok, err)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("a cached token asked etcd")
	}
	// An environment set that needs a refresh (min_ttl beyond it) asks etcd.
	os.Remove(e.cfg.Etcd.cacheFile("default"))
	seed(2 * time.Hour)
	if _, err := e.h.Get(context.Background(), "default", 3*time.Hour, false); err == nil {
		t.Fatal("get with min_ttl beyond the environment set's token and etcd unreachable: no error")
	}
	if _, err := os.Stat(ran); err != nil {
		t.Fatal("a refresh did not ask etcd")
	}
}
