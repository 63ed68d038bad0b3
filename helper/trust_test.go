package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// lockedKeyring makes every keyring call fail as a locked or absent Secret
// Service does.
var lockedKeyring = errors.New("org.freedesktop.Secret.Error.IsLocked: collection is locked")

// serviceUnknown is what a bus with no Secret Service answers, and
// noSecretService what Missing then says.
var (
	serviceUnknown  = errors.New("org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided by any .service files")
	noSecretService = "no Secret Service (such as gnome-keyring) on the D-Bus session bus"
)

// TestNoKeyringThereIsNotLocked: a session bus with no Secret Service on
// it at all (Probe says missing) is as no session bus: with no index,
// nothing is stored, get is login_required, list empty, erase finds
// nothing, and a store goes to the file, saying why. A Secret Service
// without the collection go-keyring uses may still hold the profile (a
// keyring program whose database is closed): a storage error, with the
// probe's reason and hint. One that stalls is not probed.
func TestNoKeyringThereIsNotLocked(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAuto, authtest.Options{})
	e.kr.err, e.kr.missing, e.kr.why = serviceUnknown, true, noSecretService
	if _, err := e.get("default", 0, false); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("get: %v, want login required", err)
	}
	if list, err := e.h.List(ctx, "default"); err != nil || len(list) != 0 {
		t.Fatalf("list: %v %v, want none", list, err)
	}
	if erased, err := e.h.Erase(ctx, "default"); err != nil || erased.Any() {
		t.Fatalf("erase: %v %v, want nothing erased", erased, err)
	}
	set := e.mint(0)
	e.rebuild()
	res, err := e.h.StoreSet(ctx, "default", set)
	if err != nil || res.Store != "file" || res.Fallback != noSecretService {
		t.Fatalf("store: %+v %v, want the file store and why", res, err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, ".keyring-profiles")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the keyring's index was written: %v", err)
	}
	if tok, err := e.get("default", 0, false); err != nil || tok.AccessToken != set.AccessToken {
		t.Fatalf("get after store: %v", err)
	}

	// No collection to keep items in: it may hold the profile all the same.
	const closed = "the Secret Service on the D-Bus session bus has no login keyring open"
	e = newEnv(t, ModeAuto, authtest.Options{})
	e.kr.err, e.kr.why = errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"), closed
	_, err = e.get("default", 0, false)
	var ue *UnavailableError
	if !errors.As(err, &ue) || !strings.Contains(ue.Reason, closed) || ue.Hint != fakeProbeHint || ue.NoBus {
		t.Fatalf("no collection: get %v (%+v), want a storage error with the probe's reason and hint", err, ue)
	}
	if list, err := e.h.List(ctx, "default"); !errors.Is(err, ErrStorage) {
		t.Fatalf("no collection: list %v %v, want a storage error", list, err)
	}
	res, err = e.h.StoreSet(ctx, "default", e.mint(0))
	if err != nil || res.Store != "file" || !strings.Contains(res.Fallback, closed) {
		t.Fatalf("no collection: store %+v %v, want the file store and why", res, err)
	}

	// A keyring that does not answer in time is not probed.
	e = newEnv(t, ModeAuto, authtest.Options{})
	e.kr.hang, e.kr.missing = make(chan struct{}), true
	defer close(e.kr.hang)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := e.h.Get(short, "default", 0, false); !errors.Is(err, ErrStorage) || e.kr.asked.Load() != 0 {
		t.Fatalf("stalled: get %v (probed %d times), want a storage error, not probed", err, e.kr.asked.Load())
	}
	// In keyring mode, no keyring is a storage error that says why.
	e = newEnv(t, ModeKeyring, authtest.Options{})
	e.kr.err, e.kr.missing, e.kr.why = serviceUnknown, true, noSecretService
	if _, err := e.get("default", 0, false); !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), noSecretService) {
		t.Fatalf("keyring mode: get %v, want a storage error saying why", err)
	}
}

// TestUnreachableKeyringIsNeverLoggedOut (issue 11.4): in auto and keyring
// mode, a keyring that does not answer and may hold the profile is a
// storage error for get, status, list and erase — never "no stored
// credentials", an empty list or "nothing erased".
func TestUnreachableKeyringIsNeverLoggedOut(t *testing.T) {
	for _, mode := range []string{ModeAuto, ModeKeyring} {
		for _, how := range []string{"locked", "stalled", "gone"} {
			t.Run(mode+"/"+how, func(t *testing.T) {
				e := newEnv(t, mode, authtest.Options{})
				set := e.mint(0)
				e.store("default", set) // in the keyring; the index names it
				if _, err := os.Stat(e.h.file.File("default")); !errors.Is(err, os.ErrNotExist) {
					t.Fatal("the set should be in the keyring alone")
				}
				switch how {
				case "locked":
					e.kr.err = lockedKeyring
				case "gone": // the index names the profile: it may be in a keyring not running now
					e.kr.err, e.kr.missing, e.kr.why = serviceUnknown, true, noSecretService
				default:
					e.kr.hang = make(chan struct{})
					defer close(e.kr.hang)
				}
				ctx := func() context.Context {
					ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
					t.Cleanup(cancel)
					return ctx
				}
				check := func(what string, err error) {
					t.Helper()
					if !errors.Is(err, ErrStorage) || errors.Is(err, ErrLoginRequired) || !strings.Contains(err.Error(), "keyring") {
						t.Errorf("%s: err = %v, want a storage error naming the keyring", what, err)
					}
				}
				_, err := e.h.Get(ctx(), "default", 0, false)
				check("get", err)
				_, _, err = e.h.Status(ctx(), "default")
				check("status", err)
				list, err := e.h.List(ctx(), "default")
				check("list", err)
				if list != nil {
					t.Errorf("list answered %v", list)
				}
				erased, err := e.h.Erase(ctx(), "default")
				check("erase", err)
				if erased.Any() {
					t.Errorf("erase removed %v", erased.Removed)
				}
				assertNoSecret(t, "errors", err.Error(), set)
			})
		}
	}
}

// TestUnreachableKeyringMayHold pins down when an unreachable keyring "may
// hold" a profile in auto mode: when its index names it, or when there is
// no index and no file (nothing else is known). An index that exists and
// does not name the profile, or a set in the file, answers as it is.
func TestUnreachableKeyringMayHold(t *testing.T) {
	ctx := context.Background()
	// No index, no file: nothing is known.
	e := newEnv(t, ModeAuto, authtest.Options{})
	e.kr.err = lockedKeyring
	if _, err := e.h.Get(ctx, "default", 0, false); !errors.Is(err, ErrStorage) {
		t.Errorf("no index, no file: %v, want a storage error", err)
	}
	// An index without the profile: the keyring does not hold it.
	e.kr.err = nil
	e.store("other", e.mint(0))
	e.kr.err = lockedKeyring
	if _, err := e.h.Get(ctx, "default", 0, false); !errors.Is(err, ErrLoginRequired) {
		t.Errorf("index without the profile: %v, want login required", err)
	}
	if erased, err := e.h.Erase(ctx, "default"); err != nil || erased.Any() {
		t.Errorf("erase of a profile the index does not name: %v %v", erased, err)
	}
	// A set in the file (auto fell back while the keyring was locked).
	set := e.mint(0)
	if saved, err := e.h.StoreSet(ctx, "default", set); err != nil || saved.Store != "file" {
		t.Fatalf("fallback store: %+v %v", saved, err)
	}
	if tok, err := e.h.Get(ctx, "default", 0, false); err != nil || tok.AccessToken != set.AccessToken || tok.Store != "file" {
		t.Errorf("file set with the keyring locked: %+v %v", tok, err)
	}
	// Erase of the file copy while the index names nothing for it: done.
	if erased, err := e.h.Erase(ctx, "default"); err != nil || !erased.Any() {
		t.Errorf("erase: %v %v", erased, err)
	}
	// erase with the index naming the profile: what was removed, and what
	// could not be reached.
	e.kr.err = nil
	e.store("default", e.mint(0))
	e.kr.err = lockedKeyring
	os.WriteFile(e.h.file.File("default"), mustJSON(t, e.mint(0)), 0o600)
	erased, err := e.h.Erase(ctx, "default")
	if !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "removed it from the file store, but") || !strings.Contains(err.Error(), "cannot be reached") {
		t.Errorf("erase with the keyring locked: %v", err)
	}
	if len(erased.Removed) != 1 || erased.Removed[0] != "file" {
		t.Errorf("removed %v, want [file]", erased.Removed)
	}
}

// TestNoBusKeyringIsNeverLoggedOut: with no session bus the keyring is not
// tried, but a profile its index names is still there: get, status, list
// and erase are storage errors that say so, and the item stays. A profile
// the index does not name, or no index at all (a machine that never had a
// keyring), is simply not stored; and a login saves to the file.
func TestNoBusKeyringIsNeverLoggedOut(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAuto, authtest.Options{})
	set := e.mint(0)
	e.store("kr", set) // with a bus: in the keyring, named by the index
	items := len(e.kr.snapshot())
	e.cfg.NoKeyring = true
	e.rebuild()
	calls := e.kr.calls.Load()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrStorage) || errors.Is(err, ErrLoginRequired) || !strings.Contains(err.Error(), `profile "kr"`) || !strings.Contains(err.Error(), "no D-Bus session bus") {
			t.Errorf("%s: err = %v, want a storage error naming the profile and the missing bus", what, err)
		}
	}
	_, err := e.h.Get(ctx, "kr", 0, false)
	check("get", err)
	_, _, err = e.h.Status(ctx, "kr")
	check("status", err)
	list, err := e.h.List(ctx, "kr")
	check("list", err)
	if list != nil {
		t.Errorf("list answered %v", list)
	}
	erased, err := e.h.Erase(ctx, "kr")
	check("erase", err)
	if erased.Any() || len(e.kr.snapshot()) != items {
		t.Errorf("erase removed %v; keyring items %d, want %d", erased.Removed, len(e.kr.snapshot()), items)
	}
	assertNoSecret(t, "errors", err.Error(), set)
	if got := e.kr.calls.Load(); got != calls {
		t.Errorf("%d keyring calls with no session bus, want none", got-calls)
	}
	if _, err := e.h.Get(ctx, "other", 0, false); !errors.Is(err, ErrLoginRequired) {
		t.Errorf("a profile the index does not name: %v, want login required", err)
	}
	saved, err := e.h.StoreSet(ctx, "other", e.mint(0))
	if err != nil || saved.Store != "file" || saved.Fallback != "no D-Bus session bus" {
		t.Errorf("store with no bus: %+v %v", saved, err)
	}

	// Keyring mode: no bus, no call either, and no set is logged out.
	e.cfg.Mode = ModeKeyring
	e.rebuild()
	calls = e.kr.calls.Load()
	_, err = e.h.Get(ctx, "kr", 0, false)
	check("keyring mode: get", err)
	_, err = e.h.Refresh(ctx, "kr")
	check("keyring mode: refresh", err)
	if got := e.kr.calls.Load(); got != calls {
		t.Errorf("keyring mode: %d keyring calls with no session bus, want none", got-calls)
	}
	var ue *UnavailableError
	if !errors.As(err, &ue) || !ue.NoBus {
		t.Errorf("the error does not say there is no bus: %#v", err)
	}
	if saved, err := e.h.StoreSet(ctx, "k2", e.mint(0)); !errors.Is(err, ErrUnavailable) || saved.Store == "file" {
		t.Errorf("keyring mode with no bus stored to %q (%v); want the keyring's error", saved.Store, err)
	}
	if _, err := os.Stat(e.h.file.File("k2")); !errors.Is(err, os.ErrNotExist) {
		t.Error("keyring mode with no bus wrote the file store")
	}
	if got := e.kr.calls.Load(); got != calls {
		t.Errorf("keyring mode: %d keyring calls with no session bus, want none", got-calls)
	}
	e.cfg.Mode = ModeAuto

	// An index that cannot be read may name the profile.
	idx := filepath.Join(e.dir, ".keyring-profiles")
	os.Rename(idx, idx+".saved")
	os.Mkdir(idx, 0o700)
	e.rebuild()
	if _, err := e.h.Get(ctx, "kr", 0, false); !errors.Is(err, ErrStorage) || errors.Is(err, ErrLoginRequired) {
		t.Errorf("unreadable index: get %v, want a storage error", err)
	}
	if erased, err := e.h.Erase(ctx, "kr"); !errors.Is(err, ErrStorage) || erased.Any() {
		t.Errorf("unreadable index: erase %v %v, want a storage error", erased, err)
	}
	os.Remove(idx)
	os.Rename(idx+".saved", idx)

	// A machine that never had a keyring: no index, nothing stored.
	fresh := newEnv(t, ModeAuto, authtest.Options{})
	fresh.cfg.NoKeyring = true
	fresh.rebuild()
	if _, err := fresh.h.Get(ctx, "default", 0, false); !errors.Is(err, ErrLoginRequired) {
		t.Errorf("no bus, no index: %v, want login required", err)
	}
	if list, err := fresh.h.List(ctx, "default"); err != nil || len(list) != 0 {
		t.Errorf("no bus, no index: list %v %v", list, err)
	}
	if erased, err := fresh.h.Erase(ctx, "default"); err != nil || erased.Any() {
		t.Errorf("no bus, no index: erase %v %v", erased, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestListKeyringModeUnreachable (issue 11.16): list --store keyring with
// no keyring to answer is a storage error, even with an empty index.
func TestListKeyringModeUnreachable(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	e.kr.err = lockedKeyring
	if list, err := e.h.List(context.Background(), "default"); !errors.Is(err, ErrStorage) {
		t.Fatalf("list = %v, %v; want a storage error", list, err)
	}
	e.kr.err = nil
	if list, err := e.h.List(context.Background(), "default"); err != nil || len(list) != 0 {
		t.Fatalf("list of a reachable, empty keyring: %v %v", list, err)
	}
}

// failingSet is a keyring that reads and deletes but will not take a Set.
type failingSet struct{ *fakeKeyring }

func (f failingSet) Set(s, u, p string) error {
	return errors.New("org.freedesktop.DBus.Error.NoReply: no reply")
}

// TestCheckWritable (issue 11.5): login checks the keyring before it asks
// for anything.
func TestCheckWritable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeKeyring, authtest.Options{})
	if where, err := e.h.CheckWritable(ctx, "default"); err != nil || where != "keyring" {
		t.Fatalf("working keyring: %q %v", where, err)
	}
	if n := len(e.kr.snapshot()); n != 0 {
		t.Fatalf("the check left %d items", n)
	}
	e.cfg.keyring = failingSet{e.kr}
	e.rebuild()
	if _, err := e.h.CheckWritable(ctx, "default"); !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "keyring will not take") {
		t.Fatalf("keyring that refuses a Set: %v", err)
	}
	// auto would fall back to the file: no error.
	e.cfg.Mode = ModeAuto
	e.rebuild()
	if where, err := e.h.CheckWritable(ctx, "default"); err != nil || where != "file" {
		t.Fatalf("auto with a keyring that refuses: %q %v", where, err)
	}
	e.cfg.Mode = ModeFile
	e.rebuild()
	if where, err := e.h.CheckWritable(ctx, "default"); err != nil || where != "file" {
		t.Fatalf("file: %q %v", where, err)
	}
}

// TestRefreshKeptWhenKeyringRefusesSave (issue 11.5): a refresh spent the
// old refresh token and the keyring will not take the new set: it is kept
// in a 0600 file, with a warning, and the next get moves it back.
func TestRefreshKeptWhenKeyringRefusesSave(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	old := e.mint(-time.Minute)
	e.store("default", old)
	e.cfg.keyring = failingSet{e.kr}
	tok, err := e.get("default", 0, false)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if tok.AccessToken == old.AccessToken || e.srv.ValidRefreshToken(old.RefreshToken) {
		t.Fatal("no refresh happened")
	}
	path := e.h.file.File("default")
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("rescue file mode %o", m)
	}
	kept, _, err := e.h.file.Get(context.Background(), "default")
	if err != nil || kept.AccessToken != tok.AccessToken || !e.srv.ValidRefreshToken(kept.RefreshToken) {
		t.Fatalf("the new set was not kept: %v", err)
	}
	if w := e.warnings.String(); !strings.Contains(w, "kept them in "+path) {
		t.Fatalf("no warning: %q", w)
	}
	assertNoSecret(t, "warnings", e.warnings.String(), old, kept)
	// While the keyring refuses, get serves the kept set.
	if again, err := e.get("default", 0, false); err != nil || again.AccessToken != tok.AccessToken {
		t.Fatalf("get with the keyring still refusing: %v", err)
	}
	// The keyring takes sets again: the next get moves it back.
	e.cfg.keyring = e.kr
	again, err := e.get("default", 0, false)
	if err != nil || again.AccessToken != tok.AccessToken || again.Store != "keyring" {
		t.Fatalf("get after the keyring came back: %+v %v", again, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the rescue file is still there")
	}
	inKeyring, _, err := e.h.keyring.Get(context.Background(), "default")
	if err != nil || inKeyring.RefreshToken != kept.RefreshToken {
		t.Fatalf("keyring after the move: %v", err)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
}

// TestFileRewrittenInPlace (issue 11.6): another program rewrites the token
// file in place (truncate, then write: what Python's open("w") does) every
// 10 ms; 500 gets through the real code path all succeed, and nothing is
// moved aside.
func TestFileRewrittenInPlace(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	path := filepath.Join(t.TempDir(), "prusa_tokens.json")
	e.cfg.TokenFile = path
	sets := [][]byte{mustJSON(t, e.mint(0)), mustJSON(t, e.mint(0))}
	if err := os.WriteFile(path, sets[0], 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			os.WriteFile(path, sets[i%2], 0o600) // O_TRUNC, not atomic
		}
	}()
	var failed atomic.Int32
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				src, _ := FromEnv(func(string) string { return "" })
				cfg := e.cfg
				cfg.Env = src
				h := New(cfg)
				if _, err := h.Get(context.Background(), "default", 0, false); err != nil {
					if failed.Add(1) == 1 {
						t.Errorf("goroutine %d: %v", g, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	writer.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of 500 gets failed", n)
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) > 0 {
		t.Fatalf("moved aside: %v", m)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 0 {
		t.Fatalf("%d refreshes", n)
	}
}

// TestTokenFileAlone (issue 11.8): with a token file, erase and list
// concern that file alone: not the keyring's profile of the same name,
// not the store directory.
func TestTokenFileAlone(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, ModeAuto, authtest.Options{})
	inKeyring := e.mint(0)
	e.store("default", inKeyring)
	e.store("other", e.mint(0))
	before := e.kr.snapshot()
	path := filepath.Join(t.TempDir(), "prusa_tokens.json")
	e.cfg.TokenFile = path
	e.rebuild()
	set := e.mint(0)
	if _, err := e.h.StoreSet(ctx, "default", set); err != nil {
		t.Fatal(err)
	}
	list, err := e.h.List(ctx, "default")
	if err != nil || len(list) != 1 || list[0].Profile != "default" || list[0].Store != "file" || list[0].UserID == "" {
		t.Fatalf("list with a token file: %+v %v", list, err)
	}
	erased, err := e.h.Erase(ctx, "default")
	if err != nil || len(erased.Removed) != 1 || erased.Removed[0] != "file" {
		t.Fatalf("erase: %+v %v", erased, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the token file is still there")
	}
	if after := e.kr.snapshot(); len(after) != len(before) {
		t.Fatalf("erase with a token file touched the keyring: %d items, had %d", len(after), len(before))
	}
	if list, err := e.h.List(ctx, "default"); err != nil || len(list) != 0 {
		t.Fatalf("list after erase: %+v %v", list, err)
	}
}

// TestTempCleanupLiteral (issue 11.9): the clean-up of a crashed writer's
// temp files matches names literally: a "[" in the directory's name does
// not make it a pattern that reaches another directory's temp files.
func TestTempCleanupLiteral(t *testing.T) {
	root := t.TempDir()
	other := filepath.Join(root, "ab")
	mine := filepath.Join(root, "a[b]")
	os.MkdirAll(other, 0o700)
	os.MkdirAll(mine, 0o700)
	theirs := filepath.Join(other, ".default.json.tmp-0123456789")
	os.WriteFile(theirs, []byte("another writer's"), 0o600)
	stale := filepath.Join(mine, ".default.json.tmp-9876543210")
	os.WriteFile(stale, []byte("crashed"), 0o600)
	if err := writeAtomic(filepath.Join(mine, "default.json"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Fatal("another directory's temp file was removed")
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the stale temp file of this directory was left")
	}
}

// TestMinTTLAboveGrantRefreshesOnce (issue 11.10): with min_ttl above
// what the server grants, 16 concurrent gets make one refresh: once the
// lock is held, a set another process refreshed meanwhile is used.
func TestMinTTLAboveGrantRefreshesOnce(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	e.store("default", e.mint(-time.Minute))
	toks := concurrentGets(t, e.cfg, 16, 86400*time.Second)
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatal("the gets printed different tokens")
		}
	}
}

// TestShortGrantRefreshesOnce: a server that grants access tokens shorter
// than get's 60 s margin. A get that starts just after another refreshed
// (here, the next one) is served that token, as the refresh it would make
// gives none longer: 32 gets at once make one refresh, not one per turn of
// the lock.
func TestShortGrantRefreshesOnce(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{AccessTTL: 30 * time.Second})
	e.store("default", e.mint(-time.Minute))
	first, err := New(e.cfg).Get(context.Background(), "default", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	next, err := New(e.cfg).Get(context.Background(), "default", 0, false)
	if err != nil || next.AccessToken != first.AccessToken {
		t.Fatalf("the next get: %v, same token %v", err, next.AccessToken == first.AccessToken)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
}

// concurrentGets runs n Gets of the default profile at once, each with a
// Helper of its own (as n processes would), and returns their tokens.
func concurrentGets(t *testing.T, cfg Config, n int, minTTL time.Duration) []string {
	t.Helper()
	var wg sync.WaitGroup
	toks := make([]string, n)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			tok, err := New(cfg).Get(ctx, "default", minTTL, false)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok.AccessToken
		}()
	}
	wg.Wait()
	return toks
}

// loginHook is a Config.Login that logs in to the emulator and counts.
func (e *env) loginHook(count *atomic.Int32) func(context.Context) (*auth.TokenSet, error) {
	return func(ctx context.Context) (*auth.TokenSet, error) {
		count.Add(1)
		totp, _ := auth.TOTPFromSecret(totpSecret, nil, nil, nil)
		set, err := e.cfg.Auth.Login(ctx, auth.LoginInput{Email: email, Password: password, TOTP: totp})
		return &set, err
	}
}

// TestExpiredEnvTokenHint (issue 11.12): an expired PRUSA_TOKEN says to
// unset it: a login alone does not help while it is set.
func TestExpiredEnvTokenHint(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	e.vars[EnvToken] = e.mint(-time.Second).AccessToken
	_, err := e.get("work", 0, false)
	var le *LoginRequiredError
	if !errors.As(err, &le) || le.Reason != "PRUSA_TOKEN has expired and cannot be refreshed" || le.Unset != EnvToken {
		t.Fatalf("err = %#v", err)
	}
}

// TestAutoLoginOnce (issue 12.1): with a Login hook, 32 concurrent gets
// with nothing stored make one login; the others find its set after the
// lock. OnSave sees the one save.
func TestAutoLoginOnce(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	var logins, saves atomic.Int32
	e.cfg.Login = e.loginHook(&logins)
	e.cfg.OnSave = func(_ context.Context, set *auth.TokenSet) {
		saves.Add(1)
	}
	toks := concurrentGets(t, e.cfg, 32, 0)
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
	if n := e.srv.Count(authtest.KindTokenCode); n != 1 {
		t.Fatalf("%d code exchanges, want 1", n)
	}
	for _, tok := range toks {
		if tok != toks[0] || !e.srv.ValidAccessToken(tok) {
			t.Fatal("the gets did not all print the new token")
		}
	}
	if n := saves.Load(); n != 1 {
		t.Fatalf("OnSave ran %d times, want 1", n)
	}
	// Without the hook nothing changes.
	e.cfg.Login = nil
	if _, err := e.get("other", 0, false); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("no hook: %v", err)
	}
}

// TestAutoLoginReplacesEnvSet (issue 12.1): PRUSA_TOKENS_JSON's refresh
// token is refused; the auto-login's set records which environment set it
// replaced, and while the environment carries that set, the stored one is
// used: one login, not one per get.
func TestAutoLoginReplacesEnvSet(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	seed := e.mint(-time.Minute)
	e.srv.RevokeAll(email)
	e.vars[EnvTokensJSON] = string(mustJSON(t, seed))
	var logins atomic.Int32
	e.cfg.Login = e.loginHook(&logins)
	first, err := e.get("default", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := e.h.file.Get(context.Background(), "default")
	if err != nil || stored.ReplacedEnv != envHash(seed) {
		t.Fatalf("the stored set does not name the set it replaced: %v", err)
	}
	raw, _ := os.ReadFile(e.h.file.File("default"))
	if strings.Contains(string(raw), seed.RefreshToken) {
		t.Fatal("the replaced refresh token itself was stored")
	}
	for range 3 {
		tok, err := e.get("default", 0, false)
		if err != nil || tok.AccessToken != first.AccessToken {
			t.Fatalf("later get: %v", err)
		}
	}
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
}

// TestRefreshNow (issue 12.4): Refresh refreshes a valid set now, and
// refuses a profile with nothing stored.
func TestRefreshNow(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{RefreshTTL: 3 * 24 * time.Hour})
	set := e.mint(0)
	e.store("soon", set)
	e.store("later", e.mint(0))
	e.cfg.Now = func() time.Time { return time.Now() }
	e.rebuild()
	tok, err := e.h.Refresh(context.Background(), "soon")
	if err != nil || tok.AccessToken == set.AccessToken {
		t.Fatalf("refresh: %v", err)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Fatalf("%d refreshes", n)
	}
	if _, err := e.h.Refresh(context.Background(), "none"); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("refresh of nothing: %v", err)
	}
	// RefreshDue judges again under the lock: "later" has 3 days left, so
	// within 2 days it is not due (as when another process refreshed it
	// since refresh --all listed it), and within 4 days it is.
	tok, refreshed, err := e.h.RefreshDue(context.Background(), "later", 48*time.Hour)
	if err != nil || refreshed || tok.AccessToken == "" || e.srv.Count(authtest.KindTokenRefresh) != 1 {
		t.Fatalf("not due: refreshed %v, %v, %d refreshes", refreshed, err, e.srv.Count(authtest.KindTokenRefresh))
	}
	if _, refreshed, err := e.h.RefreshDue(context.Background(), "later", 96*time.Hour); err != nil || !refreshed || e.srv.Count(authtest.KindTokenRefresh) != 2 {
		t.Fatalf("due: refreshed %v, %v", refreshed, err)
	}
}

// TestAutoFastPathSkipsAStalledKeyring: in auto mode, a set in the file
// (where auto put it while the keyring did not answer) serves a get without
// a keyring call, so a Secret Service that stalls costs a file user
// nothing. A refresh still reads both stores.
func TestAutoFastPathSkipsAStalledKeyring(t *testing.T) {
	e := newEnv(t, ModeAuto, authtest.Options{})
	e.kr.err = errors.New("org.freedesktop.DBus.Error.ServiceUnknown")
	set := e.mint(time.Hour)
	e.store("default", set) // falls back to the file
	e.kr.hang = make(chan struct{})
	defer close(e.kr.hang)
	before := e.kr.calls.Load()
	tok, err := e.get("default", 0, false)
	if err != nil || tok.AccessToken != set.AccessToken || tok.Store != "file" {
		t.Fatalf("get: %+v %v", tok, err)
	}
	if n := e.kr.calls.Load() - before; n != 0 {
		t.Fatalf("the fast path called the keyring %d times", n)
	}
}

// TestSaveStamp: the stamp a save leaves in the lock file reads back, in
// place of a stamp of any width written before, and leaves the lock file
// as it was otherwise (0600, a lock file still).
func TestSaveStamp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "default.lock")
	unlock, err := lockFile(context.Background(), path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	stamp := fmt.Sprintf("%020d %s", 1795733862123456789, tokenHash("tok"))
	for _, before := range []string{"", stamp, "00000000000000000123", "not a stamp at all, and longer than one: not one at all"} {
		os.WriteFile(path, []byte(before), 0o600)
		if savedSince(path, time.Unix(0, 0), "tok") != (before == stamp) || savedSince(path, time.Unix(0, 0), "other") {
			t.Fatalf("savedSince over %q", before)
		}
		start := time.Now()
		markSaved(path, "tok")
		if !savedSince(path, start, "tok") || savedSince(path, time.Now().Add(time.Second), "tok") || savedSince(path, start, "other") {
			t.Fatalf("after markSaved over %q: savedSince is wrong", before)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode %o", fi.Mode().Perm())
	}
	// Where the lock is not a file (the etcd store's), the stamp makes one.
	absent := filepath.Join(t.TempDir(), "etcd.lock")
	start := time.Now()
	markSaved(absent, "tok")
	if fi, err := os.Stat(absent); err != nil || fi.Mode().Perm() != 0o600 || !savedSince(absent, start, "tok") {
		t.Fatalf("stamp without a lock file: %v", err)
	}
}

// TestUnavailableReason: a keyring that will not unlock is called locked
// in what the user reads (login's fallback note, storage errors).
func TestUnavailableReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"), "the keyring is locked: failed to unlock correct collection"},
		{lockedKeyring, "the keyring is locked: org.freedesktop.Secret.Error.IsLocked"},
		{errors.New("The name org.freedesktop.secrets was not provided by any .service files"), "keyring: The name org.freedesktop.secrets"},
	} {
		if got := unavailableReason(c.err); !strings.HasPrefix(got, c.want) {
			t.Errorf("unavailableReason(%q) = %q, want it to start %q", c.err, got, c.want)
		}
	}
}

// TestKeyringReadNamesTheProfileInTheIndex: the keyring is the session's,
// the index one config folder's. A profile that a run with another folder
// saved, read here, is added to this folder's index, so that a keyring
// that then stops answering is a storage error for it, not "logged out".
// Where there is no index, a read makes none.
func TestKeyringReadNamesTheProfileInTheIndex(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	index := filepath.Join(e.dir, ".keyring-profiles")
	e.store("other", e.mint(0))
	work := e.mint(0)
	e.store("work", work)
	if err := os.WriteFile(index, []byte("other\n"), 0o600); err != nil { // as saved from another folder
		t.Fatal(err)
	}
	if tok, err := e.get("work", 0, false); err != nil || tok.AccessToken != work.AccessToken {
		t.Fatalf("get: %v", err)
	}
	if b, _ := os.ReadFile(index); string(b) != "other\nwork\n" {
		t.Fatalf("index after the read: %q, want both profiles", b)
	}
	e.kr.err = errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'")
	if _, err := e.get("work", 0, false); !errors.Is(err, ErrStorage) || errors.Is(err, ErrLoginRequired) {
		t.Fatalf("locked keyring: get %v, want a storage error", err)
	}

	e.kr.err = nil
	os.Remove(index)
	if _, err := e.get("work", 0, false); err != nil {
		t.Fatalf("get with no index: %v", err)
	}
	if _, err := os.Stat(index); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read made an index: %v", err)
	}
}
