package helper

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// needSecretService skips a test that needs a real Secret Service unless
// scripts/with-keyring.sh started a private one (it sets
// PRUSA_TEST_SECRET_SERVICE=1). Under CI, where one must be there, it fails
// instead of skipping. Tests never touch a desktop's own keyring.
func needSecretService(t testing.TB) {
	t.Helper()
	if os.Getenv("PRUSA_TEST_SECRET_SERVICE") == "1" && os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI must run the keyring tests against a real Secret Service: run them through scripts/with-keyring.sh")
	}
	t.Skip("no private Secret Service: run through scripts/with-keyring.sh (needs gnome-keyring, dbus, libsecret-tools)")
}

// secretTool looks an item up with libsecret's secret-tool, outside Go.
func secretTool(t *testing.T, user string) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("secret-tool"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("secret-tool missing in CI")
		}
		t.Skip("secret-tool missing")
	}
	out, err := exec.Command("secret-tool", "lookup", "service", KeyringService, "username", user).Output()
	return string(out), err == nil
}

func TestSecretServiceStore(t *testing.T) {
	needSecretService(t)
	e := newEnv(t, ModeKeyring, authtest.Options{OmitIDOnRefresh: true})
	e.cfg.keyring = defaultKeyringAPI()
	e.rebuild()
	profile := "sstest-" + strings.ReplaceAll(t.Name(), "/", "-")
	t.Cleanup(func() { e.h.Erase(context.Background(), profile) })

	set := e.mint(-time.Minute)
	if saved, err := e.h.StoreSet(context.Background(), profile, set); err != nil || saved.Store != "keyring" {
		t.Fatalf("store: %+v %v", saved, err)
	}
	main, ok := secretTool(t, profile)
	if !ok || !strings.Contains(main, set.AccessToken) || len(main) > MaxKeyringItem {
		t.Fatalf("secret-tool does not see the main item (found %v, %d bytes)", ok, len(main))
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(main), &m) != nil || m[overflowKey] == nil {
		t.Fatal("a real-sized set should have been split")
	}

	tok, err := e.get(profile, 0, false)
	if err != nil || tok.AccessToken == set.AccessToken || tok.Store != "keyring" {
		t.Fatalf("refreshing get: %+v %v", tok, err)
	}
	got, _, err := e.h.keyring.Get(context.Background(), profile)
	if err != nil || got.AccessToken != tok.AccessToken || got.IDToken != set.IDToken {
		t.Fatalf("refreshed set in the keyring: %v", err)
	}
	if list, err := e.h.List(context.Background(), "default"); err != nil || len(list) != 1 || list[0].Profile != profile || list[0].Store != "keyring" {
		t.Fatalf("list: %+v %v", list, err)
	}

	erased, err := e.h.Erase(context.Background(), profile)
	if err != nil || !erased.Any() {
		t.Fatalf("erase: %v %v", erased, err)
	}
	if _, ok := secretTool(t, profile); ok {
		t.Fatal("secret-tool still finds the item after erase")
	}
	out, _ := exec.Command("secret-tool", "search", "--all", "service", KeyringService).CombinedOutput()
	if strings.Contains(string(out), profile) {
		t.Fatalf("parts left in the keyring after erase")
	}
}

// TestSecretServiceConcurrentGets: 16 processes refresh through the real
// keyring at once: one refresh.
func TestSecretServiceConcurrentGets(t *testing.T) {
	needSecretService(t)
	e := newEnv(t, ModeKeyring, authtest.Options{})
	e.cfg.keyring = defaultKeyringAPI()
	e.rebuild()
	t.Cleanup(func() { e.h.Erase(context.Background(), "default") })
	old := e.mint(-time.Minute)
	e.store("default", old)
	outs := runConcurrentGets(t, 16, e.dir, e.srv.URL, ModeKeyring)
	checkOneRefresh(t, e, outs, old)
}
