//go:build unix

package helper

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// TestRefreshSaveThatCannotReplaceTheFile: a refresh whose set cannot be
// renamed over the file (an immutable file, a directory made read-only
// meanwhile, a file another program holds on Windows) keeps the set in its
// temp file and serves it: the server has spent the old refresh token.
// The next locked read takes the kept set; a refresh's reservation and
// the next save do not remove it first; erase does. A mount point (a
// bind-mounted token file) is written in place.
func TestRefreshSaveThatCannotReplaceTheFile(t *testing.T) {
	failRename := func(t *testing.T, err error) {
		rename = func(string, string) error { return &os.LinkError{Op: "rename", Err: err} }
		t.Cleanup(func() { rename = os.Rename })
	}
	temps := func(e *env) []string {
		m, _ := filepath.Glob(filepath.Join(e.dir, ".default.json.tmp-*"))
		return m
	}
	t.Run("kept, then taken", func(t *testing.T) {
		e := newEnv(t, ModeFile, authtest.Options{})
		old := e.mint(30 * time.Second)
		e.store("default", old)
		before, _ := os.ReadFile(e.h.file.File("default"))
		failRename(t, syscall.EPERM)
		tok, err := e.get("default", 0, false)
		rename = os.Rename
		if err != nil || tok.AccessToken == old.AccessToken || !strings.Contains(e.warnings.String(), "kept them in ") {
			t.Fatalf("get: %v, warnings %q", err, e.warnings.String())
		}
		assertNoSecret(t, "warning", e.warnings.String(), old)
		if after, _ := os.ReadFile(e.h.file.File("default")); string(after) != string(before) || len(temps(e)) != 1 {
			t.Fatalf("the file changed, or %d temp files", len(temps(e)))
		}
		// A refresh forced by a caller the old token failed takes the
		// kept set, whose token is another than the one it read: no
		// request, and the file now holds it.
		tok2, err := e.get("default", 0, true)
		if err != nil || tok2.AccessToken != tok.AccessToken || e.srv.Count(authtest.KindTokenRefresh) != 1 {
			t.Fatalf("forced get: %v, %d refreshes", err, e.srv.Count(authtest.KindTokenRefresh))
		}
		if stored, _, err := e.h.file.Get(context.Background(), "default"); err != nil || stored.AccessToken != tok.AccessToken || len(temps(e)) != 0 {
			t.Fatalf("stored: %v, %d temp files", err, len(temps(e)))
		}
	})
	t.Run("kept within the second of the set it replaces", func(t *testing.T) {
		// A forced refresh in the second of a login: the same exp.
		e := newEnv(t, ModeFile, authtest.Options{})
		for {
			start := time.Now()
			e.store("default", e.mint(0))
			failRename(t, syscall.EPERM)
			tok, err := e.get("default", 0, true)
			rename = os.Rename
			if err != nil {
				t.Fatal(err)
			}
			if time.Now().Truncate(time.Second) != start.Truncate(time.Second) {
				continue // a second passed: try again for the same exp
			}
			if tok2, err := e.get("default", 0, true); err != nil || tok2.AccessToken != tok.AccessToken || e.srv.Count(authtest.KindTokenRefresh) < 1 {
				t.Fatalf("forced get after the kept save: %v", err)
			}
			return
		}
	})
	t.Run("kept through reservations and failed saves", func(t *testing.T) {
		e := newEnv(t, ModeFile, authtest.Options{})
		e.store("default", e.mint(30*time.Second))
		failRename(t, syscall.EPERM)
		tok, err := e.get("default", 0, false)
		if err != nil || len(temps(e)) != 1 {
			t.Fatalf("get: %v, %d temp files", err, len(temps(e)))
		}
		// A refresh's reservation, and a save that fails its rename
		// again, leave the kept set be.
		w, err := e.h.file.reserve(context.Background(), "default")
		if err != nil {
			t.Fatal(err)
		}
		w.release()
		if _, err := e.h.file.Set(context.Background(), "default", e.mint(20*time.Second)); err == nil {
			t.Fatal("Set: want the rename's error")
		}
		if set, _ := e.h.file.Kept("default", nil); set == nil || set.AccessToken != tok.AccessToken {
			t.Fatalf("the kept set is gone (%d temp files)", len(temps(e)))
		}
		// A save that lands supersedes what was kept.
		rename = os.Rename
		if _, err := e.h.file.Set(context.Background(), "default", e.mint(time.Hour)); err != nil || len(temps(e)) != 0 {
			t.Fatalf("Set: %v, %d temp files", err, len(temps(e)))
		}
	})
	t.Run("erase removes kept sets", func(t *testing.T) {
		e := newEnv(t, ModeFile, authtest.Options{})
		e.store("default", e.mint(30*time.Second))
		failRename(t, syscall.EPERM)
		if _, err := e.get("default", 0, false); err != nil {
			t.Fatal(err)
		}
		rename = os.Rename
		if _, err := e.h.Erase(context.Background(), "default"); err != nil || len(temps(e)) != 0 {
			t.Fatalf("erase: %v, %d temp files left", err, len(temps(e)))
		}
	})
	t.Run("mount point written in place", func(t *testing.T) {
		e := newEnv(t, ModeFile, authtest.Options{})
		e.store("default", e.mint(30*time.Second))
		failRename(t, syscall.EBUSY)
		tok, err := e.get("default", 0, false)
		if err != nil || e.warnings.Len() != 0 {
			t.Fatalf("get: %v, warnings %q", err, e.warnings.String())
		}
		rename = os.Rename
		fi, _ := os.Stat(e.h.file.File("default"))
		if stored, _, err := e.h.file.Get(context.Background(), "default"); err != nil || stored.AccessToken != tok.AccessToken || len(temps(e)) != 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("stored: %v, %d temp files, mode %v", err, len(temps(e)), fi.Mode())
		}
	})
}

// TestKeptSetsOfTheirOwnProfile: a profile's temp files are "." + file +
// ".tmp-" and digits, so profile p neither takes nor removes those of a
// profile named p.json.tmp-ci; a kept temp file cut short of its
// truncation (the set, then zeros) still counts.
func TestKeptSetsOfTheirOwnProfile(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	other := e.mint(0)
	b, _ := json.Marshal(other)
	os.MkdirAll(e.dir, 0o700)
	theirs := filepath.Join(e.dir, ".p.json.tmp-ci.json.tmp-123")
	os.WriteFile(theirs, b, 0o600)
	if set, _ := e.h.file.Kept("p", nil); set != nil {
		t.Fatal("p took another profile's kept set")
	}
	if _, err := e.h.file.Set(context.Background(), "p", e.mint(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Fatal("a save of p removed another profile's kept set")
	}
	padded := filepath.Join(e.dir, ".p.json.tmp-42")
	os.WriteFile(padded, append(append([]byte{}, b...), make([]byte, 4096)...), 0o600)
	if !holdsTokenSet(padded) {
		t.Fatal("a set followed by its reservation's zeros is not kept")
	}
}

// TestKeptSetAfterAnEnvironmentRefresh: with PRUSA_TOKENS_JSON, a refresh
// whose save was kept is taken by the next locked read; the spent
// environment token is not sent again.
func TestKeptSetAfterAnEnvironmentRefresh(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	seed := e.mint(30 * time.Second)
	data, _ := json.Marshal(seed)
	e.vars[EnvTokensJSON] = string(data)
	rename = func(string, string) error { return &os.LinkError{Op: "rename", Err: syscall.EPERM} }
	t.Cleanup(func() { rename = os.Rename })
	tok, err := e.get("default", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := e.get("default", 0, false)
	if err != nil || tok2.AccessToken != tok.AccessToken || e.srv.Count(authtest.KindTokenRefresh) != 1 {
		t.Fatalf("second get: %v, %d refreshes", err, e.srv.Count(authtest.KindTokenRefresh))
	}
}

// TestStoreThatCannotReplaceTheFile: store's set is the caller's: a
// failed rename is an error, and nothing is kept to be taken later.
func TestStoreThatCannotReplaceTheFile(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	e.store("default", e.mint(0))
	rename = func(string, string) error { return &os.LinkError{Op: "rename", Err: syscall.EPERM} }
	t.Cleanup(func() { rename = os.Rename })
	if _, err := e.h.StoreSet(context.Background(), "default", e.mint(0)); !errors.Is(err, ErrStorage) || strings.Contains(err.Error(), "kept") {
		t.Fatalf("store: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(e.dir, ".default.json.tmp-*")); len(m) != 0 {
		t.Fatalf("kept: %v", m)
	}
}
