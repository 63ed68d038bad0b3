//go:build unix

package helper

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// TestFIFOsDoNotHang: a FIFO planted as the keyring's profile index or as
// a profile's lock file is read without waiting for a writer that never
// comes: list is a storage error, and get serves the stored set.
func TestFIFOsDoNotHang(t *testing.T) {
	e := newEnv(t, ModeAuto, authtest.Options{})
	e.store("default", e.mint(time.Hour))
	os.Remove(filepath.Join(e.dir, ".keyring-profiles"))
	if err := syscall.Mkfifo(filepath.Join(e.dir, ".keyring-profiles"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(e.h.file.LockFile("default"))
	if err := syscall.Mkfifo(e.h.file.LockFile("default"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.h.List(context.Background(), "")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStorage) {
			t.Fatalf("list with a FIFO as the index: %v, want a storage error", err)
		}
	case <-time.After(30 * time.Second): // a guard against a hang, not a measure
		t.Fatal("list waits on the FIFO")
	}
	go func() {
		_, err := e.get("default", 0, false)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("get with a FIFO as the lock file: %v", err)
		}
	case <-time.After(30 * time.Second): // a guard against a hang, not a measure
		t.Fatal("get waits on the FIFO")
	}
}

// TestNonRegularTokenPath (issue 11.7): a FIFO or a device at the token
// path is a storage error at once — on the fast path and for status —
// never a hang.
func TestNonRegularTokenPath(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	for name, path := range map[string]string{"fifo": fifo, "device": os.DevNull} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, ModeFile, authtest.Options{})
			e.cfg.TokenFile = path
			e.rebuild()
			done := make(chan error, 2)
			go func() {
				_, err := e.h.Get(context.Background(), "default", 0, false)
				done <- err
				_, _, err = e.h.Status(context.Background(), "default")
				done <- err
			}()
			for _, what := range []string{"get", "status"} {
				select {
				case err := <-done:
					if !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "not a regular file") {
						t.Errorf("%s: %v, want a storage error saying it is not a regular file", what, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s hangs on a %s", what, name)
				}
			}
		})
	}
}
