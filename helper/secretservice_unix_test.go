//go:build ((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd) && !gokeyringonly

package helper

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zalando/go-keyring"
)

// TestLeanGetReadsWhatGoKeyringWrote: the short read and go-keyring's own
// read agree on every item go-keyring writes, and on a missing one.
func TestLeanGetReadsWhatGoKeyringWrote(t *testing.T) {
	needSecretService(t)
	service := "prusa-credential-helper-test-lean"
	values := map[string]string{
		"empty":   "",
		"short":   "x",
		"unicode": "žluťoučký kůň ✓",
		"json":    `{"access_token":"` + strings.Repeat("A", MaxKeyringItem-20) + `"}`,
		"lines":   "a\nb\r\nc\t\"d\"",
	}
	for user, v := range values {
		if err := keyring.Set(service, user, v); err != nil {
			t.Fatalf("set %s: %v", user, err)
		}
		t.Cleanup(func() { keyring.Delete(service, user) })
	}
	for user, want := range values {
		got, err := leanGet(service, user)
		if err != nil || got != want {
			t.Errorf("%s: lean read gave %d bytes, %v; want %d bytes", user, len(got), err, len(want))
		}
		if via, err := (secretService{}).Get(service, user); err != nil || via != want {
			t.Errorf("%s: Get gave %d bytes, %v", user, len(via), err)
		}
	}
	// Attributes match exactly: another user of the service is not found.
	if _, err := leanGet(service, "shor"); !errors.Is(err, keyring.ErrNotFound) {
		t.Errorf("missing item: %v, want keyring.ErrNotFound", err)
	}
	if _, err := leanGet(service+"-other", "short"); !errors.Is(err, keyring.ErrNotFound) {
		t.Errorf("other service: %v, want keyring.ErrNotFound", err)
	}
}

// TestLeanGetLockedCollection: with the login collection locked, the short
// read does not answer "not found" (the item is there, behind the lock) but
// hands over to go-keyring, which tries to unlock it. It runs in a keyring
// of its own, since locking the common one would disturb other tests.
func TestLeanGetLockedCollection(t *testing.T) {
	needSecretService(t)
	if os.Getenv("HELPER_TEST_OWN_KEYRING") != "1" {
		script, err := filepath.Abs("../scripts/with-keyring.sh")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(script, os.Args[0], "-test.run=^TestLeanGetLockedCollection$", "-test.v")
		cmd.Env = append(os.Environ(), "HELPER_TEST_OWN_KEYRING=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestLeanGetLockedCollection") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	service := "prusa-credential-helper-test-locked"
	if err := keyring.Set(service, "u", "canary-secret-value"); err != nil {
		t.Fatal(err)
	}
	if v, err := leanGet(service, "u"); err != nil || v != "canary-secret-value" {
		t.Fatalf("before locking: %d bytes, %v", len(v), err)
	}
	lock := exec.Command("dbus-send", "--session", "--print-reply", "--dest="+ssName, ssService,
		"org.freedesktop.Secret.Service.Lock", "array:objpath:"+ssLoginCollection)
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("lock: %v\n%s", err, out)
	}
	if _, err := leanGet(service, "u"); !errors.Is(err, errUseGoKeyring) {
		t.Fatalf("locked collection: %v, want errUseGoKeyring", err)
	}
	// Through the store API, the answer is go-keyring's: with no prompter
	// here, the unlock fails; it is an error, never ErrNotFound.
	_, want := keyring.Get(service, "u")
	_, got := (secretService{}).Get(service, "u")
	if want == nil || got == nil || got.Error() != want.Error() || errors.Is(got, keyring.ErrNotFound) {
		t.Fatalf("locked collection through Get: %v, want go-keyring's %v", got, want)
	}
	if strings.Contains(got.Error(), "canary") {
		t.Fatal("secret in the error")
	}
}

// BenchmarkSecretServiceGet compares the short read with go-keyring's own,
// on a real Secret Service (run through scripts/with-keyring.sh).
func BenchmarkSecretServiceGet(b *testing.B) {
	needSecretService(b)
	service := "prusa-credential-helper-bench"
	if err := keyring.Set(service, "u", strings.Repeat("v", MaxKeyringItem)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { keyring.Delete(service, "u") })
	b.Run("lean", func(b *testing.B) {
		for b.Loop() {
			if _, err := leanGet(service, "u"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-keyring", func(b *testing.B) {
		for b.Loop() {
			if _, err := keyring.Get(service, "u"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestShortReadFallsBackToGoKeyring: whatever the short read answers short
// of the secret — not found (go-keyring may keep its items in another
// layout or collection), or any error — go-keyring's own read decides, so
// that a change in go-keyring never reads as "logged out".
func TestShortReadFallsBackToGoKeyring(t *testing.T) {
	full := func(service, user string) (string, error) { return "secret of " + user, nil }
	for name, err := range map[string]error{
		"not found":      keyring.ErrNotFound,
		"use go-keyring": errUseGoKeyring,
		"other error":    errors.New("dbus: unexpected reply signature"),
	} {
		lean := func(string, string) (string, error) { return "", err }
		got, gerr := secretService{lean: lean, full: full}.Get(KeyringService, "p")
		if gerr != nil || got != "secret of p" {
			t.Errorf("%s: %q %v, want go-keyring's answer", name, got, gerr)
		}
	}
	// go-keyring's not-found is the answer only when go-keyring says so.
	lean := func(string, string) (string, error) { return "", keyring.ErrNotFound }
	none := func(string, string) (string, error) { return "", keyring.ErrNotFound }
	if _, err := (secretService{lean: lean, full: none}).Get(KeyringService, "p"); !errors.Is(err, keyring.ErrNotFound) {
		t.Errorf("both not found: %v", err)
	}
}
