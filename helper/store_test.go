package helper

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestFileStoreModesAndLock(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	set := e.mint(0)
	e.store("default", set)
	if m := mode(t, e.dir); m != 0o700 {
		t.Errorf("dir mode %o", m)
	}
	if m := mode(t, e.h.file.File("default")); m != 0o600 {
		t.Errorf("file mode %o", m)
	}
	lock := e.h.file.LockFile("default")
	if lock == e.h.file.File("default") || filepath.Base(lock) != "default.lock" {
		t.Errorf("lock file %s", lock)
	}
	if m := mode(t, lock); m != 0o600 {
		t.Errorf("lock mode %o", m)
	}
	// One made readable by others is made 0600 when next taken.
	os.Chmod(lock, 0o644)
	e.store("default", set)
	if m := mode(t, lock); m != 0o600 {
		t.Errorf("lock mode %o after a store, want 600", m)
	}
	data, _ := os.ReadFile(lock)
	if len(data) != 0 {
		t.Error("the lock file holds data")
	}
	// The file is the SDK's shape: a JSON token set, fields in dump order.
	raw, _ := os.ReadFile(e.h.file.File("default"))
	if !strings.HasPrefix(string(raw), `{"access_token":"`) {
		t.Errorf("file starts %.20q", raw)
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || m["refresh_token"] == nil || m["id_token"] == nil || m["shared_session_key"] == nil {
		t.Error("file is not the SDK's token set")
	}
	entries, _ := os.ReadDir(e.dir)
	for _, en := range entries {
		if strings.Contains(en.Name(), ".tmp-") {
			t.Errorf("temp file left: %s", en.Name())
		}
	}
}

func TestFileStoreTightensDir(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(e.dir, 0o755)
	e.store("default", e.mint(0))
	if m := mode(t, e.dir); m != 0o700 {
		t.Fatalf("dir mode %o after a write", m)
	}
	if !strings.Contains(e.warnings.String(), "changed it to 0700") {
		t.Fatalf("no warning: %q", e.warnings.String())
	}
	// An erase writes too.
	os.Chmod(e.dir, 0o750)
	e.warnings.Reset()
	if _, err := e.h.Erase(context.Background(), "default"); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, e.dir); m != 0o700 || !strings.Contains(e.warnings.String(), "changed it to 0700") {
		t.Fatalf("dir mode %o after an erase, warnings %q", m, e.warnings.String())
	}
}

func TestFileStoreCorrupt(t *testing.T) {
	valid := `{"access_token":"x"}`
	for name, content := range map[string]string{
		"garbage":          "{{{not json",
		"empty":            "",
		"json not a set":   `{"hello": "world"}`,
		"array":            `[1,2]`,
		"malformed access": valid,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, ModeFile, authtest.Options{})
			os.MkdirAll(e.dir, 0o700)
			path := e.h.file.File("default")
			os.WriteFile(path, []byte(content), 0o644) // as the Python SDK might have
			os.Chmod(path, 0o644)
			_, err := e.get("default", 0, false)
			if !errors.Is(err, ErrLoginRequired) {
				t.Fatalf("err = %v", err)
			}
			matches, _ := filepath.Glob(path + ".corrupt-*")
			if len(matches) != 1 {
				t.Fatalf("moved aside: %v", matches)
			}
			if fi, err := os.Stat(matches[0]); err != nil {
				t.Fatal(err)
			} else if !isWindows && fi.Mode().Perm() != 0o600 {
				t.Fatalf("the corrupt copy is %v, want 0600 (it may hold a token)", fi.Mode().Perm())
			}
			if data, _ := os.ReadFile(matches[0]); string(data) != content {
				t.Fatal("the corrupt file's content was not kept")
			}
			if !strings.Contains(e.warnings.String(), "moved it to default.json.corrupt-") {
				t.Fatalf("warning %q", e.warnings.String())
			}
			// Twice corrupt: a second, unique name.
			os.WriteFile(path, []byte(content), 0o600)
			e.get("default", 0, false)
			if matches, _ := filepath.Glob(path + ".corrupt-*"); len(matches) != 2 {
				t.Fatalf("second corrupt file: %v", matches)
			}
		})
	}
}

// TestFileGetChecksEveryToken: get's fast path moves a file aside whose
// identity token is malformed, or whose refresh token is of another user,
// as a file that is not a token set, even while its access token is valid.
func TestFileGetChecksEveryToken(t *testing.T) {
	for name, spoil := range map[string]func(e *env, m map[string]any){
		"malformed identity token": func(e *env, m map[string]any) { m["id_token"] = "a.b.c" },
		"another user's refresh token": func(e *env, m map[string]any) {
			m["refresh_token"] = e.srv.Mint("other@example.com", 0).RefreshToken
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, ModeFile, authtest.Options{Users: []authtest.User{{ID: 99, Email: "other@example.com", Password: "x"}}})
			var m map[string]any
			b, _ := json.Marshal(e.mint(0))
			json.Unmarshal(b, &m)
			spoil(e, m)
			b, _ = json.Marshal(m)
			os.MkdirAll(e.dir, 0o700)
			path := e.h.file.File("default")
			os.WriteFile(path, b, 0o600)
			_, err := e.get("default", 0, false)
			matches, _ := filepath.Glob(path + ".corrupt-*")
			if !errors.Is(err, ErrLoginRequired) || len(matches) != 1 {
				t.Fatalf("get: %v, moved aside: %v; want login required and the file moved aside", err, matches)
			}
		})
	}
}

// TestFileHoldsTheLargestSetAnAnswerMakes: a token answer is at most
// 1 MiB, and a set the refresh made of one is saved as it is, however
// large: the file store gives it back, with its strings re-encoded (each
// "<" written as six bytes) and its bookkeeping added.
func TestFileHoldsTheLargestSetAnAnswerMakes(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	exp := time.Now().Add(2 * time.Hour).Unix()
	access := enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		enc([]byte(fmt.Sprintf(`{"sub":"1","exp":%d,"pad":%q}`, exp, strings.Repeat("CANARY", 90_000)))) + ".c2ln"
	set := &auth.TokenSet{AccessToken: access, TokenType: "Bearer", Scope: strings.Repeat("<", 300_000),
		AccountURL: "https://account.prusa3d.com", ClockOffset: 3 * time.Second}
	if len(access)+300_000 > 1<<20 {
		t.Fatal("the test's set is larger than an answer can be")
	}
	if b, _ := set.MarshalJSON(); len(b) <= 2<<20 {
		t.Fatalf("the test's set is %d bytes as stored, want it over 2 MiB", len(b))
	}
	fs := &FileStore{Dir: t.TempDir()}
	if _, err := fs.Set(context.Background(), "default", set); err != nil {
		t.Fatal(err)
	}
	got, _, err := fs.Get(context.Background(), "default")
	if err != nil || got.AccessToken != set.AccessToken || got.Scope != set.Scope {
		t.Fatalf("Get of the large set: %v", err)
	}
}

// TestFileLargerThanAnySet: a file past the read limit is corrupt, and
// says so, rather than "truncated".
func TestFileLargerThanAnySet(t *testing.T) {
	fs := &FileStore{Dir: t.TempDir()}
	os.WriteFile(fs.File("default"), append([]byte(`{"access_token":"`), make([]byte, maxFileSize+1)...), 0o600)
	_, _, err := fs.Get(context.Background(), "default")
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Fatalf("Get of a %d-byte file: %v; want it corrupt, larger than 16 MiB", maxFileSize+18, err)
	}
}

// TestFileGetOfTheSameBytes: a Get of the bytes the last Get decoded gives
// the same set, and of bytes written since, the new ones.
func TestFileGetOfTheSameBytes(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	a, b := e.mint(0), e.mint(time.Hour)
	fs, ctx := e.h.file, context.Background()
	if _, err := fs.Set(ctx, "default", a); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, _, err := fs.Get(ctx, "default"); err != nil || got.AccessToken != a.AccessToken || got.IDToken != a.IDToken {
			t.Fatalf("Get: %v", err)
		}
	}
	if _, err := fs.Set(ctx, "default", b); err != nil {
		t.Fatal(err)
	}
	if got, _, err := fs.Get(ctx, "default"); err != nil || got.AccessToken != b.AccessToken {
		t.Fatalf("Get after a write: %v, or the set read before", err)
	}
}

// TestSymlinkedLockIsRefused: a lock file that is a symlink is refused,
// and what it points to keeps its bytes and mode: the helper never locks,
// tightens or stamps a file that is not its own.
func TestSymlinkedLockIsRefused(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	e.store("default", e.mint(0))
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious, and not the helper's"), 0o644)
	lock := e.h.file.LockFile("default")
	os.Remove(lock)
	if err := os.Symlink(victim, lock); err != nil {
		t.Fatal(err)
	}
	if _, err := e.get("default", 0, true); !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("refresh with a symlinked lock: %v, want a storage error", err)
	}
	markSaved(lock, "tok") // nor does a stamp go through it
	if b, _ := os.ReadFile(victim); string(b) != "precious, and not the helper's" || mode(t, victim) != 0o644 {
		t.Fatalf("the symlink's target changed: %q, mode %o", b, mode(t, victim))
	}
}

// TestTightenOnlyTheFileLocked: a lock file swapped, after it was locked,
// for a symlink or another file is not made 0600: the helper tightens the
// file it locked, through a descriptor, and no other.
func TestTightenOnlyTheFileLocked(t *testing.T) {
	dir := t.TempDir()
	lock, victim := filepath.Join(dir, "p.lock"), filepath.Join(dir, "victim")
	os.WriteFile(victim, nil, 0o644)
	for name, swap := range map[string]func() error{
		"symlink":      func() error { return os.Symlink(victim, lock) },
		"another file": func() error { return os.WriteFile(lock, nil, 0o644) },
	} {
		os.WriteFile(lock, nil, 0o644)
		held, _ := os.Open(lock) // as the lock holds it: its inode stays its own
		fi, _ := held.Stat()
		os.Remove(lock)
		if err := swap(); err != nil {
			t.Fatal(err)
		}
		tighten(lock, fi)
		held.Close()
		if mode(t, victim) != 0o644 || name == "another file" && mode(t, lock) != 0o644 {
			t.Errorf("%s: a file that was not the one locked was tightened", name)
		}
		os.Remove(lock)
	}
	os.WriteFile(lock, nil, 0o644)
	fi, _ := os.Stat(lock)
	if tighten(lock, fi); mode(t, lock) != 0o600 {
		t.Errorf("the file locked is %o, want 0600", mode(t, lock))
	}
}

func TestFileStoreSymlinks(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	os.MkdirAll(e.dir, 0o700)
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	path := e.h.file.File("default")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	// Reading does not follow it.
	if _, err := e.get("default", 0, false); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("read through a symlink: %v", err)
	}
	// Writing replaces the link, never the file it points to.
	e.store("default", e.mint(0))
	if data, _ := os.ReadFile(victim); string(data) != "precious" {
		t.Fatal("the symlink target was overwritten")
	}
	if fi, _ := os.Lstat(path); fi.Mode()&os.ModeSymlink != 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token path is %v", fi.Mode())
	}
	// A link planted at a temp name is not followed either: temp names are
	// random and opened with O_EXCL, and stale ones are removed.
	os.Symlink(victim, filepath.Join(e.dir, ".default.json.tmp-0000000000000000"))
	e.store("default", e.mint(0))
	if data, _ := os.ReadFile(victim); string(data) != "precious" {
		t.Fatal("the symlink target was overwritten")
	}
}

func TestTokenFile(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	path := filepath.Join(t.TempDir(), "sdk", "prusa_tokens.json")
	e.cfg.TokenFile = path
	e.store("anything", e.mint(0))
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatal("no lock beside the token file")
	}
	// The SDK writes with Python's json.dump: spaces after separators.
	set := e.mint(0)
	sdk := `{"access_token": "` + set.AccessToken + `", "refresh_token": "` + set.RefreshToken + `", "expires_in": 7200, "token_type": "Bearer"}`
	os.WriteFile(path, []byte(sdk), 0o600)
	tok, err := e.get("x", 0, false)
	if err != nil || tok.AccessToken != set.AccessToken {
		t.Fatalf("reading the SDK's file: %v", err)
	}
}

func TestKeyringSplitsLargeSets(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	set := e.mint(0)
	full, _ := json.Marshal(set)
	if len(full) <= 2560 {
		t.Fatalf("the emulator's set is only %d bytes; the test needs a real-sized one", len(full))
	}
	e.store("default", set)
	items := e.kr.snapshot()
	if len(items) < 2 {
		t.Fatalf("%d items for a %d-byte set", len(items), len(full))
	}
	for k, v := range items {
		if len(v) > MaxKeyringItem {
			t.Errorf("item %s has %d bytes", k, len(v))
		}
		if !strings.HasPrefix(k, KeyringService+"/default") {
			t.Errorf("item name %q does not start with the profile", k)
		}
	}
	got, _, err := e.h.keyring.Get(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	if string(a) != string(full) {
		t.Fatal("set changed on the way through the keyring")
	}
	// Replacing the set leaves no old parts behind.
	e.store("default", e.mint(0))
	if n := len(e.kr.snapshot()); n != len(items) {
		t.Fatalf("%d items after a replace, want %d", n, len(items))
	}
	// Parts that do not match the main item are detected.
	for k := range e.kr.snapshot() {
		if strings.HasSuffix(k, ":0") {
			e.kr.items[k] = `{"id_token":"x"}`
		}
	}
	if _, _, err := e.h.keyring.Get(context.Background(), "default"); !errors.Is(err, ErrStorage) {
		t.Fatalf("torn parts: %v", err)
	}
}

func TestKeyringHugeAccessToken(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	big := makeToken(t, map[string]any{"sub": "1", "exp": time.Now().Add(time.Hour).Unix(), "pad": strings.Repeat("p", 5000)})
	set := &auth.TokenSet{AccessToken: big}
	e.store("default", set)
	tok, err := e.get("default", 0, false)
	if err != nil || tok.AccessToken != big {
		t.Fatalf("get of a 7 KB access token: %v", err)
	}
}

// TestKeyringHoldsWhatStoreTakes: a set that store takes (under
// auth.MaxSetSize as MarshalJSON writes it) reads back whole from the
// keyring, an unknown field full of "<" included: the items hold the set
// as MarshalJSON wrote it, not with each "<" six bytes long (which made
// such a set more parts than Get takes).
func TestKeyringHoldsWhatStoreTakes(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	set := e.mint(time.Hour)
	set.Extra = map[string]json.RawMessage{"note": json.RawMessage(`"` + strings.Repeat("<", 25000) + `"`)}
	if set.TooLarge() {
		t.Fatal("the test's set is too large for store")
	}
	if saved, err := e.h.StoreSet(context.Background(), "default", set); err != nil || saved.Store != "keyring" {
		t.Fatalf("store: %+v %v", saved, err)
	}
	got, _, err := e.h.keyring.Get(context.Background(), "default")
	if err != nil || got.AccessToken != set.AccessToken || string(got.Extra["note"]) != string(set.Extra["note"]) {
		t.Fatalf("read back: %v", err)
	}
}

// TestKeyringKeepsAFieldNamedLikeItsIndex: an unknown field named
// "_overflow", the main item's own key for its index, is kept like any
// other, in a set small enough for one item and in a large one.
func TestKeyringKeepsAFieldNamedLikeItsIndex(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	small := &auth.TokenSet{AccessToken: e.mint(time.Hour).AccessToken}
	for name, set := range map[string]*auth.TokenSet{"small": small, "large": e.mint(time.Hour)} {
		set.Extra = map[string]json.RawMessage{overflowKey: json.RawMessage(`{"n":1}`)}
		if _, err := e.h.keyring.Set(context.Background(), "default", set); err != nil {
			t.Fatalf("%s: Set: %v", name, err)
		}
		got, _, err := e.h.keyring.Get(context.Background(), "default")
		if err != nil || string(got.Extra[overflowKey]) != `{"n":1}` || got.AccessToken != set.AccessToken {
			t.Fatalf("%s: Get: %v, the field read back as %s", name, err, got.Extra[overflowKey])
		}
		if got, _, err := e.h.keyring.Peek(context.Background(), "default"); err != nil || got.AccessToken != set.AccessToken {
			t.Fatalf("%s: Peek: %v", name, err)
		}
	}
}

// TestKeyringHoldsManyUnknownFields: a set with hundreds of unknown
// fields, which store takes, reads back whole from the keyring: their
// names do not fit the main item's reference, which then names none, and
// a cached get reads the parts too.
func TestKeyringHoldsManyUnknownFields(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	set := e.mint(time.Hour)
	set.Extra = map[string]json.RawMessage{}
	for i := range 300 {
		set.Extra[fmt.Sprintf("field_with_a_long_name_%03d", i)] = json.RawMessage(`1`)
	}
	if set.TooLarge() {
		t.Fatal("the test's set is too large for store")
	}
	if saved, err := e.h.StoreSet(context.Background(), "default", set); err != nil || saved.Store != "keyring" {
		t.Fatalf("store: %+v %v", saved, err)
	}
	for k, v := range e.kr.snapshot() {
		if len(v) > MaxKeyringItem {
			t.Errorf("item %s has %d bytes", k, len(v))
		}
	}
	got, _, err := e.h.keyring.Get(context.Background(), "default")
	if err != nil || len(got.Extra) != 300 || got.AccessToken != set.AccessToken {
		t.Fatalf("Get: %v, %d unknown fields", err, len(got.Extra))
	}
	if tok, err := e.get("default", 0, false); err != nil || tok.AccessToken != set.AccessToken {
		t.Fatalf("get: %v", err)
	}
}

// TestKeyringRefusesASetItCannotGiveBack: a set larger than the keyring's
// parts hold (a server's answer that fit could not shrink) is a storage
// error, with nothing written, rather than items Get refuses; a refresh
// then keeps the new set in the file, and get serves it from there.
func TestKeyringRefusesASetItCannotGiveBack(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	old := e.mint(30 * time.Second) // within the margin: the next get refreshes
	e.store("default", old)
	before := e.state()
	huge := *e.mint(time.Hour)
	huge.Extra = map[string]json.RawMessage{"pad": json.RawMessage(`"` + strings.Repeat("p", maxParts*MaxKeyringItem) + `"`)}
	if _, err := e.h.keyring.Set(context.Background(), "default", &huge); !errors.Is(err, ErrStorage) {
		t.Fatalf("Set of a %d-part set: %v, want a storage error", maxParts+1, err)
	}
	if e.state() != before {
		t.Fatal("the refused Set changed the keyring")
	}
	// A refresh whose answer is as large, in its access token.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := e.srv.Mint(email, time.Hour)
		c, _ := n.Access()
		big := makeToken(t, map[string]any{"sub": string(c.Subject), "exp": time.Now().Add(time.Hour).Unix(), "pad": strings.Repeat("p", maxParts*MaxKeyringItem)})
		fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"token_type":"Bearer","expires_in":3600}`, big, n.RefreshToken)
	}))
	defer srv.Close()
	e.cfg.Auth = &auth.Client{HTTP: srv.Client(), AccountURL: srv.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI}
	tok, err := e.get("default", 0, false)
	if err != nil || tok.AccessToken == old.AccessToken || tok.Store != "file" || !strings.Contains(e.warnings.String(), "did not take") {
		t.Fatalf("refreshing get: %+v %v (warnings %q); want the new token, kept in the file", tok, err, e.warnings)
	}
	again, err := e.get("default", 0, false)
	if err != nil || again.AccessToken != tok.AccessToken {
		t.Fatalf("next get: %+v %v; want the refreshed token", again, err)
	}
}

func makeToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(b) + "." + enc([]byte("sig"))
}

// dyingKeyring is a process that gets killed: after left calls, every call
// fails (a killed process makes none).
type dyingKeyring struct {
	*fakeKeyring
	left int
}

func (d *dyingKeyring) alive() error {
	if d.left <= 0 {
		return errors.New("killed")
	}
	d.left--
	return nil
}

func (d *dyingKeyring) Get(s, u string) (string, error) {
	if err := d.alive(); err != nil {
		return "", err
	}
	return d.fakeKeyring.Get(s, u)
}

func (d *dyingKeyring) Set(s, u, p string) error {
	if err := d.alive(); err != nil {
		return err
	}
	return d.fakeKeyring.Set(s, u, p)
}

func (d *dyingKeyring) Delete(s, u string) error {
	if err := d.alive(); err != nil {
		return err
	}
	return d.fakeKeyring.Delete(s, u)
}

// TestKeyringCrashAtEveryCall kills a keyring Set after each of its calls
// in turn. Every time, the keyring holds the old set or the new one whole;
// the next Set leaves exactly one set's items (nothing piles up); and
// erase removes every item of the profile.
func TestKeyringCrashAtEveryCall(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	ctx := context.Background()
	kr := newFakeKeyring()
	items := func() int { return len(kr.snapshot()) }
	healthy := &KeyringStore{IndexDir: t.TempDir(), api: kr, limit: 700} // small items: many parts
	old := e.mint(0)
	if _, err := healthy.Set(ctx, "p", old); err != nil {
		t.Fatal(err)
	}
	oneSet := items()
	if oneSet < 4 {
		t.Fatalf("only %d items: the test needs a set in several parts", oneSet)
	}
	for k := 0; ; k++ {
		dying := &KeyringStore{IndexDir: healthy.IndexDir, api: &dyingKeyring{kr, k}, limit: 700}
		next := e.mint(0)
		_, err := dying.Set(ctx, "p", next)
		got, _, gerr := healthy.Get(ctx, "p")
		if gerr != nil || got.AccessToken != old.AccessToken && got.AccessToken != next.AccessToken {
			t.Fatalf("killed after %d calls: the keyring holds neither set whole: %v", k, gerr)
		}
		// The next Set cleans up whatever the killed one left.
		old = e.mint(0)
		if _, err := healthy.Set(ctx, "p", old); err != nil {
			t.Fatal(err)
		}
		if n := items(); n != oneSet {
			t.Fatalf("killed after %d calls: %d items after the next Set, want %d", k, n, oneSet)
		}
		if err == nil {
			break // k calls were enough: every kill point was tried
		}
	}
	// A smaller set in a slot that held a larger one: the extra parts go.
	big := e.mint(0)
	big.Extra = map[string]json.RawMessage{"pad": json.RawMessage(`"` + strings.Repeat("p", 3000) + `"`)}
	for _, set := range []*auth.TokenSet{big, e.mint(0), e.mint(0)} {
		if _, err := healthy.Set(ctx, "p", set); err != nil {
			t.Fatal(err)
		}
	}
	if n := items(); n != oneSet {
		t.Fatalf("%d items after a large set and two small ones, want %d", n, oneSet)
	}
	// ... also when a killed Set left the larger set's parts in the slot
	// the next Set writes to.
	_, bigParts, _ := split(big, 700, "a")
	if _, err := (&KeyringStore{IndexDir: healthy.IndexDir, api: &dyingKeyring{kr, 1 + len(bigParts)}, limit: 700}).Set(ctx, "p", big); err == nil {
		t.Fatal("the dying Set finished")
	}
	if _, err := healthy.Set(ctx, "p", e.mint(0)); err != nil {
		t.Fatal(err)
	}
	if n := items(); n != oneSet {
		t.Fatalf("%d items after a killed large set and a small one, want %d", n, oneSet)
	}
	// A Set killed after its parts, before its main item: erase still
	// finds the parts.
	healthy.Delete(ctx, "p")
	if _, err := (&KeyringStore{IndexDir: healthy.IndexDir, api: &dyingKeyring{kr, 1 + 3}, limit: 700}).Set(ctx, "p", e.mint(0)); err == nil {
		t.Fatal("the dying Set finished")
	}
	if items() == 0 {
		t.Fatal("the dying Set wrote no parts")
	}
	if err := healthy.Delete(ctx, "p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("erase with no main item: %v, want ErrNotFound", err)
	}
	if n := items(); n != 0 {
		t.Fatalf("%d items left after erase", n)
	}
}

// TestKeyringPeekReadsTheMainItem: get's fast path reads the main item
// alone when it kept the access token and what is judged and printed with
// it, even when unknown fields push other fields out; Get still reads the
// whole set.
func TestKeyringPeekReadsTheMainItem(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	ctx := context.Background()
	set := e.mint(0)
	set.ClockOffset = 3 * time.Hour
	set.ReplacedEnv = strings.Repeat("ab", 32)
	set.Extra = map[string]json.RawMessage{"z_pad": json.RawMessage(`"` + strings.Repeat("p", 3000) + `"`)}
	e.store("default", set)
	if n := len(e.kr.snapshot()); n < 3 {
		t.Fatalf("%d items: the test needs a set in several parts", n)
	}
	e.kr.gets = 0
	got, res, err := e.h.keyring.Peek(ctx, "default")
	if err != nil || res.Store != "keyring" {
		t.Fatalf("peek: %v %+v", err, res)
	}
	if e.kr.gets != 1 {
		t.Fatalf("peek read %d items, want 1", e.kr.gets)
	}
	if got.AccessToken != set.AccessToken || got.TokenType != set.TokenType || got.ClockOffset != set.ClockOffset || got.ReplacedEnv != set.ReplacedEnv {
		t.Fatal("peek lost a field of the fast path")
	}
	if got.IDToken != "" {
		t.Fatal("the identity token was expected in a part") // the layout the test is about
	}
	full, _, err := e.h.keyring.Get(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(full)
	b, _ := json.Marshal(set)
	if string(a) != string(b) {
		t.Fatal("Get did not return the whole set")
	}
}

// TestKeyringPeekReadsPartsWhenItMust: a main item that gave away the
// access token (a huge one), or that does not say what it gave away (an
// item written before it did), is read with its parts.
func TestKeyringPeekReadsPartsWhenItMust(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	ctx := context.Background()
	big := makeToken(t, map[string]any{"sub": "1", "exp": time.Now().Add(time.Hour).Unix(), "pad": strings.Repeat("p", 5000)})
	e.store("huge", &auth.TokenSet{AccessToken: big})
	got, _, err := e.h.keyring.Peek(ctx, "huge")
	if err != nil || got.AccessToken != big {
		t.Fatalf("peek of a huge access token: %v", err)
	}

	set := e.mint(0)
	e.store("old", set)
	key := KeyringService + "/old"
	var m map[string]json.RawMessage
	json.Unmarshal([]byte(e.kr.items[key]), &m)
	var ov overflow
	json.Unmarshal(m[overflowKey], &ov)
	ov.Moved = nil
	m[overflowKey], _ = json.Marshal(ov)
	old, _ := json.Marshal(m)
	e.kr.items[key] = string(old)
	e.kr.gets = 0
	got, _, err = e.h.keyring.Peek(ctx, "old")
	if err != nil || got.IDToken != set.IDToken || e.kr.gets < 2 {
		t.Fatalf("peek of a main item with no list of moved fields: %v, %d reads", err, e.kr.gets)
	}
}

// TestKeyringTornPartsOnTheFastPath: parts that do not match their main
// item do not stop a get whose access token is valid (it reads the main
// item alone), and are a storage error for anything that needs them.
func TestKeyringTornPartsOnTheFastPath(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	set := e.mint(0)
	e.store("default", set)
	for k := range e.kr.snapshot() {
		if strings.HasSuffix(k, ":0") {
			e.kr.items[k] = `{"id_token":"x"}`
		}
	}
	tok, err := e.get("default", 0, false)
	if err != nil || tok.AccessToken != set.AccessToken {
		t.Fatalf("fast path: %v", err)
	}
	if _, err := e.get("default", 0, true); !errors.Is(err, ErrStorage) {
		t.Fatalf("forced refresh with torn parts: %v, want a storage error", err)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 0 {
		t.Fatalf("%d refreshes with torn parts", n)
	}
}

// TestStoreMovesACorruptFileAside: store over a corrupt file moves it
// aside, with its warning, as get does, rather than overwrite it unseen.
func TestStoreMovesACorruptFileAside(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	os.MkdirAll(e.dir, 0o700)
	path := e.h.file.File("default")
	os.WriteFile(path, []byte("CANARY-garbage"), 0o600)
	set := e.mint(0)
	if _, err := e.h.StoreSet(context.Background(), "default", set); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 || !strings.Contains(e.warnings.String(), "moved it to default.json.corrupt-") || strings.Contains(e.warnings.String(), "CANARY") {
		t.Fatalf("moved aside: %v, warnings %q", matches, e.warnings.String())
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != "CANARY-garbage" {
		t.Fatal("the corrupt file's bytes were not kept")
	}
	if got, _, err := e.h.file.Get(context.Background(), "default"); err != nil || got.AccessToken != set.AccessToken {
		t.Fatalf("stored: %v", err)
	}
}
