package helper

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

const (
	email    = "canary@example.com"
	password = "CANARY-pw-helper"
)

var totpSecret = base32.StdEncoding.EncodeToString([]byte("CANARY-helper-totp"))

// fakeKeyring is an in-memory keyring that refuses items over a size limit
// (Windows' 2,560 bytes) and counts calls.
type fakeKeyring struct {
	mu    sync.Mutex
	items map[string]string
	limit int
	err   error         // returned by every call, if set
	hang  chan struct{} // calls block on it, if set
	gets  int
	calls atomic.Int32 // every call, counted before it blocks or fails
	// missing and why are what Probe says; asked counts its calls.
	missing bool
	why     string
	asked   atomic.Int32
}

func (k *fakeKeyring) Probe() Probed {
	k.asked.Add(1)
	p := Probed{Missing: k.missing, Why: k.why}
	if !k.missing && k.why != "" {
		p.Hint = fakeProbeHint
	}
	return p
}

// fakeProbeHint is the hint fakeKeyring's Probe gives with a reason.
const fakeProbeHint = "a hint of the probe's"

func newFakeKeyring() *fakeKeyring { return &fakeKeyring{items: map[string]string{}, limit: 2560} }

func (k *fakeKeyring) wait() error {
	k.calls.Add(1)
	if k.hang != nil {
		<-k.hang
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// fail makes every call fail with err from now on, from any goroutine.
func (k *fakeKeyring) fail(err error) {
	k.mu.Lock()
	k.err = err
	k.mu.Unlock()
}

func (k *fakeKeyring) Get(s, u string) (string, error) {
	if err := k.wait(); err != nil {
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gets++
	v, ok := k.items[s+"/"+u]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (k *fakeKeyring) Set(s, u, p string) error {
	if err := k.wait(); err != nil {
		return err
	}
	if len(p) > k.limit {
		return keyring.ErrSetDataTooBig
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.items[s+"/"+u] = p
	return nil
}

func (k *fakeKeyring) Delete(s, u string) error {
	if err := k.wait(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.items[s+"/"+u]; !ok {
		return keyring.ErrNotFound
	}
	delete(k.items, s+"/"+u)
	return nil
}

func (k *fakeKeyring) snapshot() map[string]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.items)
}

type env struct {
	t        *testing.T
	srv      *authtest.Server
	dir      string
	cfg      Config
	h        *Helper
	kr       *fakeKeyring
	warnings *strings.Builder
	vars     map[string]string
}

// newEnv builds a helper in mode against a fresh emulator and a temp dir.
func newEnv(t *testing.T, mode string, opts authtest.Options) *env {
	t.Helper()
	opts.Users = append(opts.Users, authtest.User{Email: email, Password: password, TOTPSecret: totpSecret})
	srv := authtest.NewServer(opts)
	t.Cleanup(srv.Close)
	dir := filepath.Join(t.TempDir(), "prusa-credential-helper")
	e := &env{t: t, srv: srv, dir: dir, kr: newFakeKeyring(), warnings: &strings.Builder{}, vars: map[string]string{}}
	e.cfg = Config{
		Mode:    mode,
		Dir:     dir,
		Warn:    func(m string) { e.warnings.WriteString(m + "\n") },
		Auth:    &auth.Client{HTTP: srv.Client(), AccountURL: srv.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "test"},
		keyring: e.kr,
	}
	if err := e.rebuild(); err != nil {
		t.Fatal(err)
	}
	return e
}

// rebuild makes e.h anew from e.cfg and the environment variables in
// e.vars, as the CLI does for each run.
func (e *env) rebuild() error {
	src, err := FromEnv(func(k string) string { return e.vars[k] })
	if err != nil {
		return err
	}
	cfg := e.cfg
	cfg.Env = src
	e.h = New(cfg)
	return nil
}

func (e *env) mint(ttl time.Duration) *auth.TokenSet {
	set := e.srv.Mint(email, ttl)
	return &set
}

func (e *env) store(profile string, set *auth.TokenSet) {
	e.t.Helper()
	if err := e.rebuild(); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.h.StoreSet(context.Background(), profile, set); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) get(profile string, minTTL time.Duration, force bool) (protocol.Token, error) {
	if err := e.rebuild(); err != nil {
		return protocol.Token{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.h.Get(ctx, profile, minTTL, force)
}

// state is everything stored: the file store directory and the keyring.
func (e *env) state() string {
	var b strings.Builder
	entries, _ := os.ReadDir(e.dir)
	for _, en := range entries {
		data, _ := os.ReadFile(filepath.Join(e.dir, en.Name()))
		fmt.Fprintf(&b, "%s %q\n", en.Name(), data)
	}
	snap := e.kr.snapshot()
	for _, k := range sortedKeys(snap) {
		fmt.Fprintf(&b, "keyring %s %q\n", k, snap[k])
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func assertNoSecret(t *testing.T, where, text string, sets ...*auth.TokenSet) {
	t.Helper()
	for _, s := range sets {
		for _, tok := range []string{s.AccessToken, s.RefreshToken, s.IDToken} {
			for _, part := range strings.Split(tok, ".") {
				if len(part) >= 8 && strings.Contains(text, part) {
					t.Errorf("%s leaks a token", where)
				}
			}
		}
	}
	if strings.Contains(text, password) {
		t.Errorf("%s leaks the password", where)
	}
}

func TestGetFastPath(t *testing.T) {
	for _, mode := range []string{ModeFile, ModeKeyring, ModeAuto} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode, authtest.Options{})
			set := e.mint(0)
			e.store("default", set)
			// Hold the profile's lock: the fast path must not need it.
			unlock, err := lockFile(context.Background(), e.h.file.LockFile("default"), false)
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()
			e.kr.mu.Lock()
			e.kr.gets = 0
			e.kr.mu.Unlock()
			items := len(e.kr.snapshot())
			tok, err := e.get("default", 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != set.AccessToken || tok.TokenType != "Bearer" {
				t.Fatal("fast path returned another token")
			}
			if n := e.srv.Count(authtest.KindTokenRefresh); n != 0 {
				t.Fatalf("%d requests on the fast path", n)
			}
			if mode != ModeFile && items < 2 {
				t.Fatalf("%d keyring items: the test needs a set in parts", items)
			}
			if mode != ModeFile && e.kr.gets != 1 {
				t.Fatalf("%d keyring reads on the fast path, want 1 (the main item, which holds the access token)", e.kr.gets)
			}
		})
	}
}

func TestGetRefreshesOnceAndSaves(t *testing.T) {
	for _, mode := range []string{ModeFile, ModeKeyring} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode, authtest.Options{OmitIDOnRefresh: true})
			old := e.mint(30 * time.Second) // inside the 60 s margin
			e.store("default", old)
			tok, err := e.get("default", 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == old.AccessToken || !e.srv.ValidAccessToken(tok.AccessToken) {
				t.Fatal("not refreshed")
			}
			stored, _, err := e.h.store.Get(context.Background(), "default")
			if err != nil || stored.AccessToken != tok.AccessToken || !e.srv.ValidRefreshToken(stored.RefreshToken) {
				t.Fatalf("refreshed set not saved: %v", err)
			}
			if stored.IDToken != old.IDToken {
				t.Fatal("the id token the refresh answer lacked was lost")
			}
			tok2, err := e.get("default", 0, false)
			if err != nil || tok2.AccessToken != tok.AccessToken {
				t.Fatalf("second get: %v", err)
			}
			if n := e.srv.Count(authtest.KindTokenRefresh); n != 1 {
				t.Fatalf("%d refreshes, want 1", n)
			}
		})
	}
}

// TestInterruptedOnceSent: a command interrupted after its refresh
// request went out (ctx cancelled) still reads the answer and saves it,
// where it belongs: the server has spent the old refresh token.
func TestInterruptedOnceSent(t *testing.T) {
	for _, mode := range []string{ModeFile, ModeKeyring} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode, authtest.Options{})
			old := e.mint(30 * time.Second) // inside the 60 s margin
			e.store("default", old)
			e.srv.FailToken(authtest.Fault{AfterProcessing: true, Pass: true, Delay: 300 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for e.srv.Count(authtest.KindTokenRefresh) == 0 {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
			tok, err := e.h.Get(ctx, "default", 0, false)
			if err != nil || tok.Store != mode {
				t.Fatalf("get: %v, from %q; want the new token, saved in %s", err, tok.Store, mode)
			}
			stored, _, err := e.h.store.Get(context.Background(), "default")
			if err != nil || stored.AccessToken != tok.AccessToken || !e.srv.ValidRefreshToken(stored.RefreshToken) || e.warnings.Len() > 0 {
				t.Fatalf("the refreshed set was not saved in %s: %v; warnings %q", mode, err, e.warnings)
			}
		})
	}
}

// TestAutoRescueSaysWhenItMovesBack: in auto mode a set the keyring did
// not take after a refresh is read from the file, as the warning says,
// and goes back with the next refresh that reaches the keyring (it is a
// refresh of the keyring's own session), not with a get.
func TestAutoRescueSaysWhenItMovesBack(t *testing.T) {
	e := newEnv(t, ModeAuto, authtest.Options{})
	e.store("default", e.mint(30*time.Second)) // inside the 60 s margin
	index := filepath.Join(e.dir, ".keyring-profiles")
	os.Remove(index)
	os.Mkdir(index, 0o700) // the keyring's Set fails: its index cannot be written
	tok, err := e.get("default", 0, false)
	if err != nil || tok.Store != "file" || !strings.Contains(e.warnings.String(), "where auto reads them until a refresh or login puts them in the keyring") {
		t.Fatalf("refresh: %v, in %q, warnings %q; want it kept in the file, until the next refresh", err, tok.Store, e.warnings)
	}
	os.Remove(index)
	os.WriteFile(index, []byte("default\n"), 0o600)
	if again, err := e.get("default", 0, false); err != nil || again.Store != "file" {
		t.Fatalf("get: %+v %v; want the kept set, from the file", again, err)
	}
	if again, err := e.get("default", 0, true); err != nil || again.Store != "keyring" {
		t.Fatalf("refresh: %+v %v; want it back in the keyring", again, err)
	}
}

// TestKeyringRescueAndMoveBack: a refreshed set the keyring will not take
// is kept in the file and moved back into the keyring by the next get
// that can; a profile that was only ever in the file (a login where there
// was no keyring) stays there when a get asks for the keyring.
func TestKeyringRescueAndMoveBack(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	e.store("default", e.mint(30*time.Second)) // inside the 60 s margin
	e.kr.limit = 10                            // the keyring refuses every write
	tok, err := e.get("default", 0, false)
	if err != nil || tok.Store != "file" || !strings.Contains(e.warnings.String(), "did not take the new tokens") || !strings.Contains(e.warnings.String(), "the next get that reaches the keyring moves them back") {
		t.Fatalf("refresh: %v, in %q, warnings %q; want it kept in the file", err, tok.Store, e.warnings)
	}
	e.kr.limit = 2560
	e.warnings.Reset()
	again, err := e.get("default", 0, false)
	if err != nil || again.AccessToken != tok.AccessToken || again.Store != "keyring" || !strings.Contains(e.warnings.String(), "back into the keyring") {
		t.Fatalf("next get: %v, from %q, warnings %q; want the set moved back", err, again.Store, e.warnings)
	}
	if _, err := os.Stat(e.h.file.File("default")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the file is left after the move back")
	}

	e.cfg.Mode = ModeFile
	e.store("fileonly", e.mint(time.Hour))
	e.cfg.Mode = ModeKeyring
	e.warnings.Reset()
	tok, err = e.get("fileonly", 0, false)
	if err != nil || tok.Store != "file" || e.warnings.Len() > 0 {
		t.Fatalf("file-only profile: %v, from %q, warnings %q; want it served from the file as it is", err, tok.Store, e.warnings)
	}
	if _, err := os.Stat(e.h.file.File("fileonly")); err != nil {
		t.Fatal("a file-only profile was moved")
	}

	// A refresh saves each where it was: a file-only profile in the
	// file, a rescued one in the keyring, and the spent file goes.
	e.cfg.Mode = ModeFile
	e.store("fileonly", e.mint(30*time.Second)) // inside the 60 s margin
	e.cfg.Mode = ModeKeyring
	e.warnings.Reset()
	tok, err = e.get("fileonly", 0, false)
	if err != nil || tok.Store != "file" || e.warnings.Len() > 0 {
		t.Fatalf("file-only refresh: %v, into %q, warnings %q; want it saved in the file", err, tok.Store, e.warnings)
	}
	if stored, _, err := e.h.file.Get(context.Background(), "fileonly"); err != nil || stored.AccessToken != tok.AccessToken {
		t.Fatalf("file-only refresh: the file does not hold the new set: %v", err)
	}
	e.store("default", e.mint(30*time.Second))
	e.kr.limit = 10
	if tok, err := e.get("default", 0, false); err != nil || tok.Store != "file" {
		t.Fatalf("rescue: %v, in %q", err, tok.Store)
	}
	e.kr.limit = 2560
	e.warnings.Reset()
	refreshes := e.srv.Count(authtest.KindTokenRefresh)
	tok, err = e.get("default", 0, true) // a refresh of the rescued set, not a move
	if e.srv.Count(authtest.KindTokenRefresh) != refreshes+1 {
		t.Fatal("the rescued set was not refreshed")
	}
	if err != nil || tok.Store != "keyring" || !strings.Contains(e.warnings.String(), "back into the keyring") {
		t.Fatalf("rescued refresh: %v, into %q, warnings %q; want it in the keyring", err, tok.Store, e.warnings)
	}
	if _, err := os.Stat(e.h.file.File("default")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the spent rescued file is left")
	}
}

func TestGetMinTTLAndForce(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	set := e.mint(10 * time.Minute)
	e.store("default", set)
	if tok, _ := e.get("default", 5*time.Minute, false); tok.AccessToken != set.AccessToken {
		t.Fatal("min_ttl 300 s refreshed a token valid for 600 s")
	}
	tok, err := e.get("default", 15*time.Minute, false)
	if err != nil || tok.AccessToken == set.AccessToken {
		t.Fatalf("min_ttl 900 s did not refresh a token valid for 600 s: %v", err)
	}
	// A refreshed token that still falls short of min_ttl is returned
	// anyway. A process started seconds after that refresh (its lock
	// file's stamp is older) refreshes it again.
	markedAt := func(t time.Time) {
		os.WriteFile(e.h.file.LockFile("default"), fmt.Appendf(nil, "%020d %s", t.UnixNano(), tokenHash(tok.AccessToken)), 0o600)
	}
	markedAt(time.Now().Add(-2 * freshWindow))
	tok2, err := e.get("default", 24*time.Hour, false)
	if err != nil || tok2.AccessToken == tok.AccessToken {
		t.Fatalf("min_ttl 1 day: %v", err)
	}
	// Within the window a min_ttl above the grant does not refresh again.
	if again, err := e.get("default", 24*time.Hour, false); err != nil || again.AccessToken != tok2.AccessToken {
		t.Fatalf("min_ttl 1 day right after a refresh: %v", err)
	}
	tok3, err := e.get("default", 0, true)
	if err != nil || tok3.AccessToken == tok2.AccessToken {
		t.Fatalf("force_refresh did not refresh: %v", err)
	}
	// A set stored since the refresh is not the refresh's: a min_ttl it
	// falls short of refreshes it.
	stored := e.mint(10 * time.Minute)
	e.store("default", stored)
	if tok4, err := e.get("default", 15*time.Minute, false); err != nil || tok4.AccessToken == stored.AccessToken {
		t.Fatalf("min_ttl 900 s right after a store of a token valid for 600 s: %v", err)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 4 {
		t.Fatalf("%d refreshes, want 4", n)
	}
}

// TestForceRefreshUsesAnotherProcessRefresh: a caller that got a 401 with
// token A asks for force_refresh; another process refreshed to B between
// its read and its lock: B is used, with no request.
func TestForceRefreshUsesAnotherProcessRefresh(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	a := e.mint(0)
	e.store("default", a)
	b, err := e.cfg.Auth.Refresh(context.Background(), *a)
	if err != nil {
		t.Fatal(err)
	}
	e.store("default", &b)
	e.srv.ResetCounts()
	tok, err := e.h.slow(context.Background(), "default", a.AccessToken, MinMargin, true)
	if err != nil || tok.AccessToken != b.AccessToken {
		t.Fatalf("force after another refresh: %v", err)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 0 {
		t.Fatalf("%d refreshes, want 0", n)
	}
}

// TestInvalidGrantRereadsStore: a process that does not take the lock (the
// Python SDK) rotates the refresh token while our refresh is in flight; our
// refresh is refused, and the re-read finds its token.
func TestInvalidGrantRereadsStore(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	old := e.mint(-time.Minute)
	e.store("default", old)
	other, err := e.cfg.Auth.Refresh(context.Background(), *old) // spends old
	if err != nil {
		t.Fatal(err)
	}
	e.srv.FailToken(authtest.Fault{Delay: 300 * time.Millisecond, AfterProcessing: true, Status: 400, Body: `{"error": "invalid_grant"}`})
	path := e.h.file.File("default")
	go func() {
		time.Sleep(100 * time.Millisecond)
		data, _ := json.Marshal(other)
		os.WriteFile(path, data, 0o600) // no lock, like the SDK
	}()
	tok, err := e.get("default", 0, false)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if tok.AccessToken != other.AccessToken {
		t.Fatal("did not use the token the other process saved")
	}
}

func TestLoginRequired(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	_, err := e.get("default", 0, false)
	if !errors.Is(err, ErrLoginRequired) || err.Error() != `no stored credentials for profile "default"` {
		t.Fatalf("nothing stored: %v", err)
	}
	set := e.mint(-time.Minute)
	e.store("default", set)
	e.srv.RevokeAll(email)
	before := e.state()
	_, err = e.get("default", 0, false)
	if !errors.Is(err, ErrLoginRequired) || !errors.Is(err, auth.ErrInvalidGrant) {
		t.Fatalf("revoked: %v", err)
	}
	if e.state() != before {
		t.Fatal("a refused refresh changed the store")
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Fatalf("%d refresh requests, want 1", n)
	}
	noRefresh := *set
	noRefresh.RefreshToken = ""
	e.store("p2", &noRefresh)
	if _, err := e.get("p2", 0, false); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("no refresh token: %v", err)
	}
}

// TestUnrefreshableValidTokenServes: a valid access token that cannot be
// renewed (no refresh token, an expired one) is returned whatever min_ttl
// asks, as a refreshed token that falls short of min_ttl is; within the
// 60 s margin, or with force_refresh (the caller says the token failed),
// it is login_required. With auto-login, a login gives the longer token
// instead, and an auto-login that fails leaves the valid token to serve.
func TestUnrefreshableValidTokenServes(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{RefreshTTL: time.Millisecond})
	set := e.mint(30 * time.Minute) // its refresh token has expired by the get
	time.Sleep(5 * time.Millisecond)
	for name, s := range map[string]*auth.TokenSet{
		"no":      {AccessToken: set.AccessToken},
		"expired": set,
	} {
		e.store(name, s)
		if tok, err := e.get(name, time.Hour, false); err != nil || tok.AccessToken != s.AccessToken {
			t.Errorf("%s refresh token, min_ttl 1 h: %v; want the stored token", name, err)
		}
		if _, err := e.get(name, 0, true); !errors.Is(err, ErrLoginRequired) {
			t.Errorf("%s refresh token, force_refresh: %v; want login required", name, err)
		}
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 0 {
		t.Fatalf("%d refresh requests, want none", n)
	}
	e.store("short", &auth.TokenSet{AccessToken: e.mint(30 * time.Second).AccessToken})
	if _, err := e.get("short", 0, false); !errors.Is(err, ErrLoginRequired) || !strings.Contains(err.Error(), "has no refresh token") {
		t.Fatalf("within the margin: %v", err)
	}
	var logins atomic.Int32
	e.cfg.Login = func(ctx context.Context) (*auth.TokenSet, error) {
		logins.Add(1)
		return nil, auth.ErrInvalidCredentials
	}
	if tok, err := e.get("no", time.Hour, false); err != nil || tok.AccessToken != set.AccessToken || logins.Load() != 1 {
		t.Fatalf("with an auto-login that fails: %v (%d logins); want the stored token", err, logins.Load())
	}
	e.cfg.Login = e.loginHook(&logins)
	if tok, err := e.get("no", time.Hour, false); err != nil || tok.AccessToken == set.AccessToken || logins.Load() != 2 {
		t.Fatalf("with auto-login: %v (%d logins); want a login's token", err, logins.Load())
	}
}

// TestFailedRefreshLeavesStoreUnchanged: whatever goes wrong, the store
// keeps its bytes.
func TestFailedRefreshLeavesStoreUnchanged(t *testing.T) {
	faults := map[string][]authtest.Fault{
		"503 twice":           {{Status: 503}, {Status: 503}},
		"500":                 {{Status: 500}},
		"reset twice":         {{Reset: true}, {Reset: true}},
		"reset mid-answer":    {{ResetMidBody: true, AfterProcessing: true}},
		"invalid_grant":       {{Status: 400, Body: `{"error": "invalid_grant"}`}},
		"HTML 200":            {{Status: 200, Body: "<html></html>"}},
		"hang past the limit": {{Hang: true}},
	}
	for name, f := range faults {
		for _, mode := range []string{ModeFile, ModeKeyring} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				e := newEnv(t, mode, authtest.Options{})
				set := e.mint(-time.Minute)
				e.store("default", set)
				before := e.state()
				e.srv.FailToken(f...)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := e.h.Get(ctx, "default", 0, false)
				if err == nil {
					t.Fatal("no error")
				}
				if e.state() != before {
					t.Fatal("the store changed")
				}
				assertNoSecret(t, "error", err.Error(), set)
			})
		}
	}
}

func TestEnvTokensJSON(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	seed := e.mint(-time.Minute)
	data, _ := json.Marshal(seed)
	e.vars[EnvTokensJSON] = string(data)
	tok, err := e.get("default", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := e.h.file.Get(context.Background(), "default")
	if err != nil || stored.AccessToken != tok.AccessToken {
		t.Fatalf("refreshed environment set not saved: %v", err)
	}
	// Later calls use the stored successor: no refresh, no replay of the
	// spent refresh token in the environment.
	for range 3 {
		tok2, err := e.get("default", 0, false)
		if err != nil || tok2.AccessToken != tok.AccessToken {
			t.Fatalf("later get: %v", err)
		}
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	// A valid environment set of another session wins over the stored one.
	fresh := e.mint(0)
	data, _ = json.Marshal(fresh)
	e.vars[EnvTokensJSON] = string(data)
	if tok3, _ := e.get("default", 0, false); tok3.AccessToken != fresh.AccessToken {
		t.Fatal("a valid PRUSA_TOKENS_JSON of a new session was not used")
	}
}

func TestEnvToken(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	set := e.mint(90 * time.Second)
	e.vars[EnvToken] = set.AccessToken
	tok, err := e.get("default", time.Hour, false) // min_ttl does not apply: it cannot be refreshed
	if err != nil || tok.AccessToken != set.AccessToken || tok.Store != EnvToken {
		t.Fatalf("PRUSA_TOKEN: %v", err)
	}
	e.vars[EnvToken] = e.mint(-time.Second).AccessToken
	if _, err := e.get("default", 0, false); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("expired PRUSA_TOKEN: %v", err)
	}
	good, _ := json.Marshal(e.mint(0))
	for _, vars := range []map[string]string{
		{EnvToken: "not-a-jwt"},
		{EnvToken: " \n"},
		{EnvTokensJSON: `{"refresh_token": 1}`},
		// Each is checked, whichever would be used.
		{EnvToken: "not-a-jwt", EnvTokensJSON: string(good)},
		{EnvToken: set.AccessToken, EnvTokensJSON: `{"refresh_token": 1}`},
	} {
		e.vars = vars
		_, err := e.get("default", 0, false)
		bad := EnvTokensJSON
		if len(vars) == 1 && vars[EnvToken] != "" || vars[EnvToken] == "not-a-jwt" {
			bad = EnvToken
		}
		if !errors.Is(err, ErrInvalidEnv) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: err = %v, want ErrInvalidEnv naming %s", vars, err, bad)
		}
	}
}

func TestStoreValidates(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{Users: []authtest.User{{ID: 99, Email: "other@example.com", Password: "x"}}})
	good := e.mint(0)
	e.store("default", good)
	before := e.state()
	other := e.srv.Mint("other@example.com", 0)
	bad := []*auth.TokenSet{
		{},
		{AccessToken: "garbage"},
		{AccessToken: good.AccessToken, RefreshToken: other.RefreshToken},
		{AccessToken: good.AccessToken, IDToken: "a.b.c"},
		// Under 64 KiB as given, over it as stored (encoding/json writes
		// each "<" as \u003c): no store could give it back whole.
		{AccessToken: good.AccessToken, Scope: strings.Repeat("<", auth.MaxSetSize/6+1)},
		// An unknown field that is not JSON: no store could read it back.
		{AccessToken: good.AccessToken, Extra: map[string]json.RawMessage{"x": json.RawMessage(`{"a":`)}},
	}
	for i, s := range bad {
		if _, err := e.h.StoreSet(context.Background(), "default", s); !errors.Is(err, auth.ErrInvalidTokenSet) {
			t.Errorf("bad set %d: err = %v", i, err)
		}
	}
	if e.state() != before {
		t.Fatal("a refused set changed the store")
	}
}

func TestEraseEveryStore(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	set := e.mint(0)
	e.store("default", set)
	if _, err := e.h.keyring.Set(context.Background(), "default", set); err != nil {
		t.Fatal(err)
	}
	erased, err := e.h.Erase(context.Background(), "default")
	if err != nil || !erased.Any() {
		t.Fatalf("erase: %v %v", erased, err)
	}
	if len(e.kr.snapshot()) != 0 {
		t.Fatalf("keyring items left: %v", sortedKeys(e.kr.snapshot()))
	}
	if _, err := os.Stat(e.h.file.File("default")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("file left")
	}
	if _, err := os.Stat(e.h.file.LockFile("default")); err != nil {
		t.Fatal("the lock file was deleted")
	}
	erased, err = e.h.Erase(context.Background(), "default")
	if err != nil || erased.Any() {
		t.Fatalf("second erase: %v %v", erased, err)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	a := e.mint(0)
	e.store("work", a)
	b := e.mint(0)
	if _, err := e.h.keyring.Set(context.Background(), "home", b); err != nil {
		t.Fatal(err)
	}
	noID := *b
	noID.IDToken, noID.RefreshToken = "", ""
	e.store("ci", &noID)
	list, err := e.h.List(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Profile != "ci" || list[1].Profile != "home" || list[1].Store != "keyring" || list[2].Profile != "work" || list[2].Store != "file" {
		t.Fatalf("list = %+v", list)
	}
	if list[2].Email != email || list[2].UserID != "1530681" || list[2].AccessExpires.IsZero() || list[2].RefreshExpires.IsZero() {
		t.Fatalf("entry = %+v", list[2])
	}
	if list[0].Email != "" || !list[0].RefreshExpires.IsZero() {
		t.Fatalf("entry without id/refresh token = %+v", list[0])
	}
	idx, _ := os.ReadFile(filepath.Join(e.dir, ".keyring-profiles"))
	assertNoSecret(t, "keyring index", string(idx), a, b)
}

func TestAutoFallsBackToFile(t *testing.T) {
	e := newEnv(t, ModeAuto, authtest.Options{})
	e.kr.err = errors.New(`Object does not exist at path "/org/freedesktop/secrets/collection/login"`)
	set := e.mint(0)
	saved, err := e.h.StoreSet(context.Background(), "default", set)
	if err != nil || saved.Store != "file" {
		t.Fatalf("store: %+v %v", saved, err)
	}
	if !strings.Contains(saved.Fallback, "collection/login") || saved.Path != e.h.file.File("default") {
		t.Fatalf("fallback: %+v", saved)
	}
	tok, err := e.get("default", 0, false)
	if err != nil || tok.AccessToken != set.AccessToken || tok.Store != "file" {
		t.Fatalf("get: %+v %v", tok, err)
	}
	// The keyring comes back: a store goes there, and the file copy goes.
	e.kr.err = nil
	saved, err = e.h.StoreSet(context.Background(), "default", set)
	if err != nil || saved.Store != "keyring" || saved.Fallback != "" {
		t.Fatalf("store: %+v %v", saved, err)
	}
	if _, err := os.Stat(e.h.file.File("default")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stale file copy left behind")
	}
}

func TestAutoNoSessionBus(t *testing.T) {
	getenv := func(string) string { return "" }
	if os.Getenv("XDG_RUNTIME_DIR") == "" && SessionBusAbsent(getenv) != true {
		if _, err := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid())); err != nil {
			t.Fatal("no DBUS_SESSION_BUS_ADDRESS and no /run/user/UID/bus, but the bus is not seen as absent")
		}
	}
	if SessionBusAbsent(func(string) string { return "unix:path=/x" }) {
		t.Fatal("a set DBUS_SESSION_BUS_ADDRESS is seen as absent")
	}
	// With the keyring skipped, auto is the file store, and never hangs.
	e := newEnv(t, ModeAuto, authtest.Options{})
	e.kr.hang = make(chan struct{}) // a keyring call would block forever
	defer close(e.kr.hang)
	e.cfg.NoKeyring = true
	e.rebuild()
	set := e.mint(0)
	saved, err := e.h.StoreSet(context.Background(), "default", set)
	if err != nil || saved.Store != "file" || saved.Fallback != "no D-Bus session bus" {
		t.Fatalf("store: %+v %v", saved, err)
	}
}

// TestAutoWithGoKeyringMock uses go-keyring's own mock provider. The mock
// replaces the provider for the whole process, for good, so the test runs
// in a child process of its own and the real-keyring tests keep the real
// provider.
func TestAutoWithGoKeyringMock(t *testing.T) {
	if os.Getenv("HELPER_TEST_KEYRING_MOCK") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAutoWithGoKeyringMock$", "-test.v")
		cmd.Env = append(os.Environ(), "HELPER_TEST_KEYRING_MOCK=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestAutoWithGoKeyringMock") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	keyring.MockInit()
	e := newEnv(t, ModeAuto, authtest.Options{})
	e.cfg.keyring = goKeyring{}
	e.rebuild()
	set := e.mint(0)
	if saved, err := e.h.StoreSet(context.Background(), "default", set); err != nil || saved.Store != "keyring" {
		t.Fatalf("store with a working keyring: %+v %v", saved, err)
	}
	if v, err := keyring.Get(KeyringService, "default"); err != nil || !strings.Contains(v, set.AccessToken) {
		t.Fatalf("item not in the (mock) keyring: %v", err)
	}
	keyring.MockInitWithError(errors.New("dbus: connection refused"))
	if saved, err := e.h.StoreSet(context.Background(), "default", set); err != nil || saved.Store != "file" {
		t.Fatalf("store with a failing keyring: %+v %v", saved, err)
	}
	keyring.MockInit()
}

func TestKeyringTimeout(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	e.kr.hang = make(chan struct{})
	defer close(e.kr.hang)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.h.Get(ctx, "default", 0, false)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckProfile(t *testing.T) {
	for _, ok := range []string{"default", "a", "work.2", "CI_runner-1", strings.Repeat("x", 64)} {
		if err := CheckProfile(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "..", "../etc/passwd", "a/b", `a\b`, "a b", "ünï", strings.Repeat("x", 65), "a:b", "nul\x00"} {
		if CheckProfile(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTokenSetRedactedInErrors(t *testing.T) {
	var b bytes.Buffer
	e := newEnv(t, ModeFile, authtest.Options{})
	set := e.mint(0)
	fmt.Fprintf(&b, "%v %+v %#v", set, *set, set)
	assertNoSecret(t, "formatting", b.String(), set)
}

// TestEnvSetOfAnotherUser: an expired PRUSA_TOKENS_JSON of another user
// than the profile's stored login is not refreshed (its save would replace
// that login): invalid_request naming the variable, nothing sent, nothing
// changed. A valid one is still served, and one of the same user still
// refreshes over the stored set.
func TestEnvSetOfAnotherUser(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{Users: []authtest.User{{ID: 99, Email: "other@example.com", Password: "x"}}})
	mine := e.mint(time.Hour)
	e.store("default", mine)
	path := e.h.file.File("default")
	before, _ := os.ReadFile(path)
	theirs := e.srv.Mint("other@example.com", -time.Minute)
	data, _ := json.Marshal(theirs)
	e.vars[EnvTokensJSON] = string(data)
	_, err := e.get("default", 0, false)
	if !errors.Is(err, ErrInvalidEnv) || !strings.Contains(err.Error(), EnvTokensJSON) || !strings.Contains(err.Error(), "--profile") {
		t.Fatalf("err = %v, want an invalid environment naming %s", err, EnvTokensJSON)
	}
	assertNoSecret(t, "error", err.Error(), &theirs)
	if after, _ := os.ReadFile(path); string(after) != string(before) || e.srv.Count(authtest.KindTokenRefresh) != 0 || !e.srv.ValidRefreshToken(theirs.RefreshToken) {
		t.Fatal("the other user's set was refreshed, or the stored login changed")
	}
	valid := e.srv.Mint("other@example.com", time.Hour)
	data, _ = json.Marshal(valid)
	e.vars[EnvTokensJSON] = string(data)
	if tok, err := e.get("default", 0, false); err != nil || tok.AccessToken != valid.AccessToken {
		t.Fatalf("a valid PRUSA_TOKENS_JSON of another user: %v", err)
	}
	seed := e.mint(-time.Minute) // the stored user's, of another session
	data, _ = json.Marshal(seed)
	e.vars[EnvTokensJSON] = string(data)
	if _, err := e.get("default", 0, false); err != nil || e.srv.Count(authtest.KindTokenRefresh) != 1 {
		t.Fatalf("the same user's expired set: %v, %d refreshes", err, e.srv.Count(authtest.KindTokenRefresh))
	}
}

// TestEnvRefreshNeedsAStore: an expired PRUSA_TOKENS_JSON is not refreshed
// when the store cannot be reached: the refresh would spend the refresh
// token and the new one could not be saved.
func TestEnvRefreshNeedsAStore(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	e.kr.err = errors.New("dbus: no Secret Service")
	seed := e.mint(-time.Minute)
	data, _ := json.Marshal(seed)
	e.vars[EnvTokensJSON] = string(data)
	if _, err := e.get("default", 0, false); !errors.Is(err, ErrStorage) {
		t.Fatalf("err = %v, want a storage error", err)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 0 || !e.srv.ValidRefreshToken(seed.RefreshToken) {
		t.Fatal("the refresh token was spent with nowhere to keep its successor")
	}
	// A valid environment set needs no store at all.
	fresh := e.mint(0)
	data, _ = json.Marshal(fresh)
	e.vars[EnvTokensJSON] = string(data)
	if tok, err := e.get("default", 0, false); err != nil || tok.AccessToken != fresh.AccessToken {
		t.Fatalf("valid PRUSA_TOKENS_JSON with no store: %v", err)
	}
}

// TestFailedRefreshSaysTheTokenIsStillValid: a refresh that fails for the
// server's or the network's sake, of a token not yet expired, says how long
// that token is still valid (status calls it valid; get keeps a margin).
func TestFailedRefreshSaysTheTokenIsStillValid(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	e.store("default", e.mint(30*time.Second))
	e.srv.FailToken(authtest.Fault{Status: 503}, authtest.Fault{Status: 503})
	_, err := e.get("default", 0, false)
	if !errors.Is(err, auth.ErrServer) || !strings.Contains(err.Error(), "the stored access token is valid for another ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
	// A forced refresh of a token outside the margin says so, not that it
	// is within it.
	e.store("default", e.mint(time.Hour))
	e.srv.FailToken(authtest.Fault{Status: 503}, authtest.Fault{Status: 503})
	_, err = e.get("default", 0, true)
	if !errors.Is(err, auth.ErrServer) || !strings.Contains(err.Error(), "still valid for another ") || strings.Contains(err.Error(), "margin") {
		t.Fatalf("forced: err = %v", err)
	}
	e.store("default", e.mint(30*time.Second))
	e.srv.FailToken(authtest.Fault{Status: 400, Body: `{"error":"invalid_grant"}`})
	e.srv.RevokeAll(email)
	if _, err := e.get("default", 0, false); !errors.Is(err, ErrLoginRequired) || strings.Contains(err.Error(), "valid for another") {
		t.Fatalf("a refused refresh: %v", err)
	}
}

// TestChildEnviron: a program the helper starts inherits the environment
// without the variables that hold secrets.
func TestChildEnviron(t *testing.T) {
	in := []string{"PATH=/bin", "PRUSA_PASSWORD=CANARY-pw", "PRUSA_TOTP_SECRET=CANARY", "PRUSA_TOTP_CODE=123456", "PRUSA_TOKENS_JSON={}",
		"PRUSA_TOKEN=CANARY.a.b", "PRUSA_ETCD_USER=u:CANARY", "prusa_password=CANARY", "PRUSA_PROFILE=ci", "PRUSA_PASSWORDS_FILE=/f", "HOME=/h"}
	got := ChildEnviron(in)
	if want := []string{"PATH=/bin", "PRUSA_PROFILE=ci", "PRUSA_PASSWORDS_FILE=/f", "HOME=/h"}; !slices.Equal(got, want) {
		t.Fatalf("ChildEnviron = %q, want %q", got, want)
	}
	if in[1] != "PRUSA_PASSWORD=CANARY-pw" {
		t.Fatal("ChildEnviron changed its argument")
	}
}

// TestAutoNewerFileSetWins: a set saved to the file while the keyring did
// not answer is the one read when the keyring is back, though the older
// set in the keyring has an access token that lives longer (here: a
// store of a short-lived set; a refresh's rescue in the same second as the
// keyring's set, a tie, goes to the file too).
// TestAutoRefreshLeavesAFileProfileInTheFile: in auto mode, a refresh
// saves a set where it found it. A profile in the file (saved while the
// keyring was away, or with --store file, even of a profile the keyring
// held) stays in the file once the keyring answers again, so the host's
// runs without the keyring go on finding it.
func TestAutoRefreshLeavesAFileProfileInTheFile(t *testing.T) {
	e := newEnv(t, ModeAuto, authtest.Options{})
	away := errors.New(`Object does not exist at path "/org/freedesktop/secrets/collection/login"`)
	e.kr.err = away
	old := e.mint(30 * time.Second) // within the margin: the next get refreshes
	if saved, err := e.h.StoreSet(context.Background(), "default", old); err != nil || saved.Store != "file" {
		t.Fatalf("store with the keyring away: %+v %v", saved, err)
	}
	e.kr.err = nil
	tok, err := e.get("default", 0, false)
	if err != nil || tok.AccessToken == old.AccessToken || tok.Store != "file" {
		t.Fatalf("get: %+v %v; want a refreshed token, saved in the file", tok, err)
	}
	if set, _, err := e.h.file.Get(context.Background(), "default"); err != nil || set.AccessToken != tok.AccessToken {
		t.Fatalf("the file after the refresh: %v", err)
	}
	e.kr.mu.Lock()
	n := len(e.kr.items)
	e.kr.mu.Unlock()
	if n != 0 {
		t.Fatalf("the keyring holds %d items; want none", n)
	}

	// A profile the keyring held, logged in again with --store file (a
	// new session): the keyring's set, of the old session, is no reason to
	// move the file's there. (A refresh the keyring did not take, of the
	// keyring's own session, goes back: TestAutoRescueSaysWhenItMovesBack.)
	if saved, err := e.h.StoreSet(context.Background(), "kr", e.mint(2*time.Hour)); err != nil || saved.Store != "keyring" {
		t.Fatalf("store: %+v %v", saved, err)
	}
	auto := e.h
	e.cfg.Mode = ModeFile
	if err := e.rebuild(); err != nil {
		t.Fatal(err)
	}
	if saved, err := e.h.StoreSet(context.Background(), "kr", e.mint(30*time.Second)); err != nil || saved.Store != "file" {
		t.Fatalf("store --store file: %+v %v", saved, err)
	}
	tok, err = auto.Get(context.Background(), "kr", 0, false)
	if err != nil || tok.Store != "file" {
		t.Fatalf("auto get: %+v %v; want a refreshed token, saved in the file", tok, err)
	}
	if again, err := e.h.Get(context.Background(), "kr", 0, false); err != nil || again.AccessToken != tok.AccessToken {
		t.Fatalf("get --store file after it: %+v %v", again, err)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 2 {
		t.Fatalf("%d refresh requests, want 2", n)
	}
}

// TestInvalidGrantWithTheStoreAwayIsNoLogin: a refresh refused as
// invalid_grant is looked up once more in the store, in case another
// process rotated the token; a store that does not answer then is its own
// error (storage_error here), never login_required: a store that does not
// answer is never read as logged out.
func TestInvalidGrantWithTheStoreAwayIsNoLogin(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	e.store("default", e.mint(30*time.Second)) // within the margin: the next get refreshes
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.kr.fail(errors.New("dbus: connection closed")) // the keyring goes while the request is out
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant"}`)
	}))
	defer hs.Close()
	e.cfg.Auth = &auth.Client{HTTP: hs.Client(), AccountURL: hs.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI}
	_, err := e.get("default", 0, false)
	if errors.Is(err, ErrLoginRequired) || !errors.Is(err, ErrStorage) {
		t.Fatalf("err = %v; want the keyring's storage error, not login required", err)
	}
}

// TestInvalidGrantNamesBothServers: loopback account servers on two ports
// count as one (the emulator restarted), so a refresh at the other one is
// tried; its refusal names both, not the token alone.
func TestInvalidGrantNamesBothServers(t *testing.T) {
	e := newEnv(t, ModeFile, authtest.Options{})
	set := e.mint(30 * time.Second) // within the margin: the next get refreshes
	set.AccountURL = e.srv.URL
	e.store("default", set)
	other := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}})
	defer other.Close()
	e.cfg.Auth = &auth.Client{HTTP: other.Client(), AccountURL: other.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI}
	_, err := e.get("default", 0, false)
	if !errors.Is(err, ErrLoginRequired) || !strings.Contains(err.Error(), "was refused (expired, revoked or already used) by "+other.URL+"; the tokens came from "+e.srv.URL) {
		t.Fatalf("err = %v; want login required, naming both servers", err)
	}
}

func TestOtherLoopback(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"http://127.0.0.1:1000", "http://127.0.0.1:2000", true},
		{"http://127.0.0.1:1000", "http://localhost:1000", true},
		{"http://127.0.0.1:1000", "http://127.0.0.1:1000/", false},
		{"http://127.0.0.1", "http://127.0.0.1:80", false},
		{"https://account.example.com", "https://Account.Example.com:443", false},
		{"https://account.prusa3d.com", "http://127.0.0.1:1000", false},
		{"", "http://127.0.0.1:1000", false},
	} {
		if got := otherLoopback(tt.a, tt.b); got != tt.want {
			t.Errorf("otherLoopback(%q, %q) = %t, want %t", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestAutoNewerFileSetWins(t *testing.T) {
	e := newEnv(t, ModeAuto, authtest.Options{})
	older := e.mint(2 * time.Hour)
	if saved, err := e.h.StoreSet(context.Background(), "default", older); err != nil || saved.Store != "keyring" {
		t.Fatalf("store: %+v %v", saved, err)
	}
	e.kr.err = errors.New(`Object does not exist at path "/org/freedesktop/secrets/collection/login"`)
	newer := e.mint(30 * time.Second)
	if saved, err := e.h.StoreSet(context.Background(), "default", newer); err != nil || saved.Store != "file" {
		t.Fatalf("store with the keyring away: %+v %v", saved, err)
	}
	e.kr.err = nil
	set, res, err := e.h.store.Get(context.Background(), "default")
	if err != nil || set.AccessToken != newer.AccessToken || res.Store != "file" {
		t.Fatalf("read with both stores holding a set: %v from %q; want the newer set, from the file", err, res.Store)
	}
}

// TestAutoUnreadableFileIsNotPassedOver: a file that holds a set the
// keyring failed to take is newer than the keyring's; while it cannot be
// read, the keyring's older set (whose refresh token the server has spent)
// is not served or refreshed in its place.
func TestAutoUnreadableFileIsNotPassedOver(t *testing.T) {
	e := newEnv(t, ModeAuto, authtest.Options{})
	if saved, err := e.h.StoreSet(context.Background(), "default", e.mint(2*time.Hour)); err != nil || saved.Store != "keyring" {
		t.Fatalf("store: %+v %v", saved, err)
	}
	e.kr.err = errors.New(`Object does not exist at path "/org/freedesktop/secrets/collection/login"`)
	if saved, err := e.h.StoreSet(context.Background(), "default", e.mint(30*time.Second)); err != nil || saved.Store != "file" {
		t.Fatalf("store with the keyring away: %+v %v", saved, err)
	}
	e.kr.err = nil
	file := filepath.Join(e.dir, "default.json")
	if err := os.Rename(file, file+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(file, 0o700); err != nil { // unreadable as a file, even by root
		t.Fatal(err)
	}
	if set, res, err := e.h.store.Get(context.Background(), "default"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("read with the file unreadable: %v from %q (set %v); want the file's error", err, res.Store, set != nil)
	}
	before := e.srv.Count(authtest.KindTokenRefresh)
	if _, err := e.h.Get(context.Background(), "default", time.Hour, false); err == nil || errors.Is(err, ErrLoginRequired) {
		t.Fatalf("get with the file unreadable: %v; want a storage error", err)
	}
	if n := e.srv.Count(authtest.KindTokenRefresh) - before; n != 0 {
		t.Fatalf("%d refresh requests with the file unreadable; want none", n)
	}
}

// TestAutoListWithTheKeyringAway: in auto mode, with no profile index and
// nothing in the file, a keyring that does not answer may hold profiles:
// list is a storage error, as get is, not an empty list. With a file
// profile or an index that names none, it lists what it knows.
func TestAutoListWithTheKeyringAway(t *testing.T) {
	e := newEnv(t, ModeAuto, authtest.Options{})
	e.kr.err = errors.New(`Object does not exist at path "/org/freedesktop/secrets/collection/login"`)
	if err := e.rebuild(); err != nil {
		t.Fatal(err)
	}
	if list, err := e.h.List(context.Background(), ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("list with the keyring away and no index: %v, %v; want the keyring's error", list, err)
	}
	if _, err := e.h.Get(context.Background(), "default", 0, false); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("get: %v; want the keyring's error, as list", err)
	}
	e.store("default", e.mint(time.Hour)) // to the file: the keyring is away
	if list, err := e.h.List(context.Background(), ""); err != nil || len(list) != 1 || list[0].Store != "file" {
		t.Fatalf("list with a file profile: %+v, %v", list, err)
	}
}

// TestKeyringIndexBeforeItems: the profile index is written before the
// keyring items, so a save whose index write fails leaves nothing in the
// keyring that the index does not name (such a profile would read as
// logged out while the keyring is away).
func TestKeyringIndexBeforeItems(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	os.MkdirAll(filepath.Join(e.dir, ".keyring-profiles"), 0o700) // an index that cannot be written
	if _, err := e.h.StoreSet(context.Background(), "default", e.mint(time.Hour)); err == nil {
		t.Fatal("store with an index that cannot be written succeeded")
	}
	e.kr.mu.Lock()
	defer e.kr.mu.Unlock()
	if len(e.kr.items) != 0 {
		t.Fatalf("the keyring holds %d items the index does not name", len(e.kr.items))
	}
}

// TestKeyringRefusedNewProfileLeavesNoIndex: a first save that the keyring
// refuses takes the profile out of the index again, so that with the
// keyring away later the profile is not one it "may hold"; a refused save
// of a profile the keyring holds, or one whose call did not answer in
// time (it may yet have written), leaves it named.
func TestKeyringRefusedNewProfileLeavesNoIndex(t *testing.T) {
	e := newEnv(t, ModeKeyring, authtest.Options{})
	ks := e.h.keyring
	ctx := context.Background()
	named := func(profile string) bool {
		names, err := ks.Profiles()
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(names, profile)
	}
	if _, err := ks.Set(ctx, "held", e.mint(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.kr.limit = 10 // reads answer, writes are refused
	if _, err := ks.Set(ctx, "new", e.mint(time.Hour)); !errors.Is(err, ErrStorage) {
		t.Fatalf("refused Set: %v", err)
	}
	if named("new") {
		t.Error("a refused first save left the profile in the index")
	}
	if _, err := ks.Set(ctx, "held", e.mint(time.Hour)); !errors.Is(err, ErrStorage) {
		t.Fatalf("refused Set: %v", err)
	}
	if !named("held") {
		t.Error("a refused save of a held profile took it out of the index")
	}
	os.Remove(ks.indexFile()) // lost, with "held" in the keyring
	if _, err := ks.Set(ctx, "held", e.mint(time.Hour)); !errors.Is(err, ErrStorage) {
		t.Fatalf("refused Set: %v", err)
	}
	if !named("held") {
		t.Error("a refused save of a held profile the index had lost left it out")
	}
	// The read that finds no item answers; the write does not, in time.
	e.kr.limit = 2560
	hang := make(chan struct{})
	defer close(hang)
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	ks.api = &slowSetKeyring{fakeKeyring: e.kr, hang: hang}
	if _, err := ks.Set(tctx, "stalled", e.mint(time.Hour)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stalled Set: %v", err)
	}
	if !named("stalled") {
		t.Error("a save that did not answer in time took the profile out of the index")
	}
}

// slowSetKeyring is a fakeKeyring whose writes block until hang closes.
type slowSetKeyring struct {
	*fakeKeyring
	hang chan struct{}
}

func (k *slowSetKeyring) Set(s, u, p string) error {
	<-k.hang
	return k.fakeKeyring.Set(s, u, p)
}
