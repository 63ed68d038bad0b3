package main

// These tests run a real etcd (go.etcd.io/etcd/server/v3/embed) on loopback,
// with 1 and with 3 members, and drive helper.EtcdStore against the
// companion. The companion is this test binary itself, re-executed with
// companionEnv set (see TestMain): the same run() as the installed program.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
)

const companionEnv = "PRUSA_TEST_ETCD_COMPANION"

// canary is carried in every set the tests store: it must never show up
// on the companion's stderr or in an error.
const canary = "canary-etcd-set-7f3a91"

func TestMain(m *testing.M) {
	if os.Getenv(companionEnv) == "1" {
		main()
		return
	}
	os.Setenv(companionEnv, "1") // for the companions the tests start
	os.Exit(m.Run())
}

// companionPath is the companion the tests run: this test binary.
func companionPath(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// cluster is an embedded etcd of one or more members on loopback.
type cluster struct {
	t         *testing.T
	members   []*embed.Etcd
	cfgs      []*embed.Config
	endpoints []string
}

// freePort is a loopback port that nothing listens on, for etcd to bind
// once this returns. It is below Linux's ephemeral range (32768 up), which
// the kernel hands out to any process's port-0 listener or outgoing
// connection: one it gave away in that range could be taken again before
// etcd binds it ("address already in use").
func freePort(t *testing.T) int {
	givenMu.Lock()
	defer givenMu.Unlock()
	for range 1000 {
		port := 20000 + mrand.IntN(12000)
		if given[port] { // to a member that may be stopped, and restarted on it
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			given[port] = true
			return port
		}
	}
	t.Fatal("no free loopback port from 20000 to 31999")
	return 0
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{} // the ports freePort gave, never given twice
)

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var peers []string
	cfgs := make([]*embed.Config, n)
	for i := range n {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = t.TempDir()
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfg.InitialClusterToken = "test-" + t.Name()
		peers = append(peers, cfg.Name+"="+pu.String())
		c.endpoints = append(c.endpoints, cu.Host)
		cfgs[i] = cfg
	}
	var wg sync.WaitGroup
	c.members = make([]*embed.Etcd, n)
	errs := make([]error, n)
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(peers, ",")
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				errs[i] = err
				return
			}
			c.members[i] = e
			select {
			case <-e.Server.ReadyNotify():
			case <-time.After(60 * time.Second):
				errs[i] = fmt.Errorf("member %s did not become ready", cfg.Name)
			}
		}()
	}
	wg.Wait()
	c.cfgs = cfgs
	t.Cleanup(c.stopAll)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) stop(i int) {
	if c.members[i] != nil {
		c.members[i].Close()
		c.members[i] = nil
	}
}

// restart starts a stopped member again, on its ports and data.
func (c *cluster) restart(i int) {
	c.t.Helper()
	cfg := *c.cfgs[i]
	cfg.ClusterState = embed.ClusterStateFlagExisting
	e, err := embed.StartEtcd(&cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		c.t.Fatalf("member %d did not come back", i)
	}
	c.members[i] = e
}

func (c *cluster) stopAll() {
	for i := range c.members {
		c.stop(i)
	}
}

// client is a plain etcd client, for looking at what the store wrote.
func (c *cluster) client() *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// tokens mints token sets from an emulator of the account server.
type tokens struct{ srv *authtest.Server }

func newTokens(t *testing.T) *tokens {
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: "farm@example.com", Password: "pw-canary-1"}}})
	t.Cleanup(srv.Close)
	return &tokens{srv}
}

// set is a token set whose access token lives for ttl, carrying the canary.
func (k *tokens) set(ttl time.Duration) *auth.TokenSet {
	s := k.srv.Mint("farm@example.com", ttl)
	s.Extra = map[string]json.RawMessage{"note": json.RawMessage(`"` + canary + `"`)}
	return &s
}

// stores hands out EtcdStores for one cluster and prefix and checks, at
// the end of the test, that no secret reached a companion's stderr.
type stores struct {
	t         *testing.T
	endpoints []string
	prefix    string
	stderr    syncBuffer
	secrets   []string
}

func newStores(t *testing.T, endpoints []string) *stores {
	s := &stores{t: t, endpoints: endpoints, prefix: "farm"}
	t.Cleanup(func() {
		out := s.stderr.String()
		for _, secret := range append(s.secrets, canary, "pw-canary") {
			if strings.Contains(out, secret) {
				t.Errorf("a secret showed up on the companion's stderr: %q", out)
			}
		}
	})
	return s
}

func (s *stores) secret(set *auth.TokenSet) *auth.TokenSet {
	s.secrets = append(s.secrets, set.AccessToken, set.RefreshToken, set.IDToken)
	return set
}

// host is a store as one machine has it: its own cache.
func (s *stores) host() *helper.EtcdStore {
	st := &helper.EtcdStore{
		Endpoints: s.endpoints,
		Prefix:    s.prefix,
		CacheDir:  filepath.Join(s.t.TempDir(), "etcd-cache"),
		Companion: companionPath(s.t),
		LeaseTTL:  2 * time.Second,
		Stderr:    &s.stderr,
	}
	s.t.Cleanup(func() { st.Close() })
	return st
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func sameSet(t *testing.T, got, want *auth.TokenSet) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("the set read back differs from the one stored (%s, %s)", got, want)
	}
}

// noSecret fails if err's message carries a token or the canary.
func noSecret(t *testing.T, err error, sets ...*auth.TokenSet) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range sets {
		for _, v := range []string{s.AccessToken, s.RefreshToken, s.IDToken, canary} {
			if v != "" && strings.Contains(msg, v) {
				t.Errorf("an error carries a secret: %v", err)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 30*time.Second)
	a := s.host()

	if _, _, err := a.Get(ctx, "default"); !errors.Is(err, helper.ErrNotFound) {
		t.Fatalf("get of an absent profile: %v, want ErrNotFound", err)
	}
	if err := a.Delete(ctx, "default"); !errors.Is(err, helper.ErrNotFound) {
		t.Fatalf("delete of an absent profile: %v, want ErrNotFound", err)
	}
	if got, err := a.Profiles(ctx); err != nil || len(got) != 0 {
		t.Fatalf("list of an empty prefix: %v, %v", got, err)
	}

	set := s.secret(k.set(2 * time.Hour))
	if _, err := a.Set(ctx, "default", set); err != nil {
		t.Fatalf("set: %v", err)
	}
	other := s.secret(k.set(2 * time.Hour))
	if _, err := a.Set(ctx, "printer.lock", other); err != nil { // a profile whose name ends in .lock is a profile
		t.Fatalf("set: %v", err)
	}

	// The key holds the file store's JSON: the whole set.
	raw, err := c.client().Get(ctx, "farm/default")
	if err != nil || len(raw.Kvs) != 1 {
		t.Fatalf("farm/default in etcd: %v, %v", raw, err)
	}
	want, _ := json.Marshal(set)
	if !bytes.Equal(raw.Kvs[0].Value, want) {
		t.Errorf("farm/default holds other JSON than the set")
	}

	// Another host, with an empty cache, reads the whole set from etcd.
	b := s.host()
	got, _, err := b.Get(ctx, "default")
	if err != nil {
		t.Fatalf("get from another host: %v", err)
	}
	sameSet(t, got, set)

	// A held lock is not a profile.
	unlock, err := b.Lock(ctx, "default")
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	keys, err := c.client().Get(ctx, "farm/default.lock/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(keys.Kvs) != 1 {
		t.Fatalf("the lock is not one key under farm/default.lock/: %v, %v", keys, err)
	}
	names, err := a.Profiles(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"default", "printer.lock"}) {
		t.Errorf("list = %q, want [default printer.lock]", names)
	}
	unlock()

	if err := b.Delete(ctx, "default"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, _, err := b.Get(ctx, "default"); !errors.Is(err, helper.ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(b.CacheDir, "default.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("delete left the local cache: %v", err)
	}
	if _, _, err := a.Get(ctx, "default"); !errors.Is(err, helper.ErrNotFound) {
		t.Errorf("etcd still has the deleted key: %v", err)
	}
	if names, err := a.Profiles(ctx); err != nil || !slices.Equal(names, []string{"printer.lock"}) {
		t.Errorf("list after delete = %q, %v", names, err)
	}
}

// countingCompanion is a companion that first counts its starts in a file.
func countingCompanion(t *testing.T) (path string, starts func() int) {
	dir := t.TempDir()
	count := filepath.Join(dir, "starts")
	path = filepath.Join(dir, "companion")
	script := fmt.Sprintf("#!/bin/sh\necho start >> '%s'\nexec '%s' \"$@\"\n", count, companionPath(t))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, func() int {
		b, _ := os.ReadFile(count)
		return bytes.Count(b, []byte("start"))
	}
}

// TestCorruptValueMovedAside: a value under the profile's key that is not
// a token set is moved, byte for byte, to PREFIX/<profile>:corrupt-<time>
// (which list leaves out), with a warning that quotes none of it, and the
// profile reads as absent: the next set does not overwrite it.
func TestCorruptValueMovedAside(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 30*time.Second)
	a := s.host()
	var warnings []string
	a.Warn = func(msg string) { warnings = append(warnings, msg) }
	cli := c.client()
	bad := `{"access_token":"` + canary + `", "refresh_token": `
	if _, err := cli.Put(ctx, "farm/default", bad); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Get(ctx, "default"); !errors.Is(err, helper.ErrNotFound) {
		t.Fatalf("get of a corrupt value: %v, want ErrNotFound", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "farm/default in etcd is not a token set") ||
		!strings.Contains(warnings[0], "moved it to farm/default:corrupt-") || strings.Contains(warnings[0], canary) {
		t.Fatalf("warnings: %q", warnings)
	}
	resp, err := cli.Get(ctx, "farm/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 || !strings.HasPrefix(string(resp.Kvs[0].Key), "farm/default:corrupt-") || string(resp.Kvs[0].Value) != bad {
		t.Fatalf("after the move: %v %v, want the value alone, under farm/default:corrupt-…", resp, err)
	}
	if got, err := a.Profiles(ctx); err != nil || len(got) != 0 {
		t.Fatalf("list: %v %v, want none", got, err)
	}
	set := s.secret(k.set(2 * time.Hour))
	if _, err := a.Set(ctx, "default", set); err != nil {
		t.Fatalf("set after the move: %v", err)
	}
	if got, _, err := s.host().Get(ctx, "default"); err != nil {
		t.Fatalf("get after set: %v", err)
	} else {
		sameSet(t, got, set)
	}
	if resp, err := cli.Get(ctx, "farm/default:corrupt-", clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != bad {
		t.Fatalf("the moved value after a set: %v %v", resp, err)
	}
}

func TestCacheServesWithoutEtcd(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 30*time.Second)

	a := s.host()
	set := s.secret(k.set(2 * time.Hour))
	if _, err := a.Set(ctx, "default", set); err != nil {
		t.Fatalf("set: %v", err)
	}
	// The cache holds the access token only, 0600 in a 0700 directory.
	cache := filepath.Join(a.CacheDir, "default.json")
	b, err := os.ReadFile(cache)
	if err != nil {
		t.Fatalf("no cache after set: %v", err)
	}
	if strings.Contains(string(b), set.RefreshToken) || strings.Contains(string(b), set.IDToken) || strings.Contains(string(b), canary) {
		t.Errorf("the cache holds more than the access token")
	}
	if cached, err := auth.ParseTokenSet(b); err != nil || cached.AccessToken != set.AccessToken || cached.RefreshToken != "" {
		t.Errorf("the cache is not a token set in the file store's format: %v", err)
	}
	for path, mode := range map[string]os.FileMode{cache: 0o600, a.CacheDir: 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %04o (%v)", path, fi.Mode().Perm(), mode, err)
		}
	}
	a.Close()

	// A new process on the same host, with etcd gone: the access token
	// comes from the cache, and the companion is not even started.
	c.stopAll()
	companion, starts := countingCompanion(t)
	h := &helper.EtcdStore{Endpoints: c.endpoints, Prefix: "farm", CacheDir: a.CacheDir, Companion: companion, Stderr: &s.stderr}
	defer h.Close()
	for range 3 {
		got, _, err := h.Peek(ctx, "default")
		if err != nil {
			t.Fatalf("peek at the cache with etcd stopped: %v", err)
		}
		if got.AccessToken != set.AccessToken || got.RefreshToken != "" || got.IDToken != "" {
			t.Errorf("the cached set is not the access token alone")
		}
	}
	if n := starts(); n != 0 {
		t.Errorf("fast-path gets started the companion %d times, want 0 (no etcd request)", n)
	}

	// What needs etcd fails as unreachable, within the caller's time.
	short := ctxFor(t, 3*time.Second)
	if _, _, err := h.Get(short, "default"); !errors.Is(err, helper.ErrStoreUnreachable) {
		t.Errorf("Get with etcd stopped: %v, want ErrStoreUnreachable", err)
	} else {
		noSecret(t, err, set)
	}
	if n := starts(); n != 1 {
		t.Errorf("Get started the companion %d times, want 1", n)
	}
}

func TestExpiringCacheReadsEtcd(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 30*time.Second)

	a := s.host()
	// Valid for less than helper.MinMargin: not served from the cache.
	soon := s.secret(k.set(helper.MinMargin / 2))
	if _, err := a.Set(ctx, "default", soon); err != nil {
		t.Fatalf("set: %v", err)
	}
	a.Close()
	// Another host refreshed meanwhile.
	fresh := s.secret(k.set(2 * time.Hour))
	if _, err := s.host().Set(ctx, "default", fresh); err != nil {
		t.Fatalf("set: %v", err)
	}

	companion, starts := countingCompanion(t)
	h := &helper.EtcdStore{Endpoints: c.endpoints, Prefix: "farm", CacheDir: a.CacheDir, Companion: companion, Stderr: &s.stderr}
	defer h.Close()
	got, _, err := h.Peek(ctx, "default")
	if err != nil {
		t.Fatalf("peek: %v", err)
	}
	sameSet(t, got, fresh) // the whole set, from etcd
	if n := starts(); n != 1 {
		t.Errorf("companion started %d times, want 1", n)
	}
	h.Close()
	// ...which refilled the cache: the next process stays local.
	if got, _, err := h.Peek(ctx, "default"); err != nil || got.AccessToken != fresh.AccessToken {
		t.Errorf("peek after the refill: %v", err)
	}
	if n := starts(); n != 1 {
		t.Errorf("companion started %d times, want still 1", n)
	}

	// Get reads etcd, never the cache: the re-read under the lock before
	// a refresh sees what another host wrote, which Peek does not.
	newer := s.secret(k.set(2 * time.Hour))
	if _, err := s.host().Set(ctx, "default", newer); err != nil {
		t.Fatalf("set: %v", err)
	}
	if got, _, err := h.Peek(ctx, "default"); err != nil || got.AccessToken != fresh.AccessToken {
		t.Errorf("peek with a valid cache: %v, want the cached token", err)
	}
	unlock, err := h.Lock(ctx, "default")
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	got, _, err = h.Get(ctx, "default")
	if err != nil {
		t.Fatalf("get under the lock: %v", err)
	}
	sameSet(t, got, newer)
	unlock()
}

func TestStaleWriteRefused(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 30*time.Second)

	first := s.secret(k.set(helper.MinMargin / 2))
	if _, err := s.host().Set(ctx, "default", first); err != nil {
		t.Fatalf("set: %v", err)
	}
	a, b := s.host(), s.host()
	for _, h := range []*helper.EtcdStore{a, b} {
		if _, _, err := h.Get(ctx, "default"); err != nil {
			t.Fatalf("get: %v", err)
		}
	}
	won := s.secret(k.set(2 * time.Hour))
	if _, err := b.Set(ctx, "default", won); err != nil {
		t.Fatalf("set on the revision read: %v", err)
	}
	stale := s.secret(k.set(2 * time.Hour))
	_, err := a.Set(ctx, "default", stale)
	if !errors.Is(err, helper.ErrStoreConflict) || !errors.Is(err, helper.ErrStorage) {
		t.Fatalf("set on a stale revision: %v, want ErrStoreConflict and ErrStorage", err)
	}
	noSecret(t, err, stale, won)
	got, _, err := s.host().Get(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	sameSet(t, got, won)

	// The key deleted since it was read: not created again either.
	if _, _, err := a.Get(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Set(ctx, "default", stale); !errors.Is(err, helper.ErrStoreConflict) {
		t.Errorf("set over a key deleted since the read: %v, want ErrStoreConflict", err)
	}
	// And a key created since it was read absent: not overwritten.
	if _, _, err := a.Get(ctx, "default"); !errors.Is(err, helper.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := b.Set(ctx, "default", won); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Set(ctx, "default", stale); !errors.Is(err, helper.ErrStoreConflict) {
		t.Errorf("set over a key created since it was read absent: %v, want ErrStoreConflict", err)
	}
}

// rawCompanion is a companion spoken to directly, for the tests that kill
// it or take its lease away.
type rawCompanion struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     *os.File
	stdout *os.File
	out    *bufio.Reader
}

func startRaw(t *testing.T, endpoints []string, ttl string, stderr *syncBuffer) *rawCompanion {
	cmd := exec.Command(companionPath(t), "--endpoints", strings.Join(endpoints, ","), "--prefix", "farm", "--lease-ttl", ttl)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	r := &rawCompanion{t: t, cmd: cmd, in: inW, stdout: outR, out: bufio.NewReader(outR)}
	t.Cleanup(func() { inW.Close(); outR.Close(); cmd.Process.Kill(); cmd.Wait() })
	return r
}

func (r *rawCompanion) ask(req string) map[string]any {
	r.t.Helper()
	r.send(req)
	return r.answer(req)
}

func (r *rawCompanion) send(req string) {
	r.t.Helper()
	if _, err := r.in.WriteString(req + "\n"); err != nil {
		r.t.Fatal(err)
	}
}

// answer reads the answer to req, sent before.
func (r *rawCompanion) answer(req string) map[string]any {
	r.t.Helper()
	type read struct {
		line []byte
		err  error
	}
	ch := make(chan read, 1)
	go func() { line, err := r.out.ReadBytes('\n'); ch <- read{line, err} }()
	var line []byte
	select {
	case got := <-ch:
		if got.err != nil {
			r.t.Fatalf("no answer to %s: %v", req, got.err)
		}
		line = got.line
	case <-time.After(30 * time.Second): // stopped, or stuck
		r.t.Fatalf("no answer to %s in 30s", req)
	}
	var a map[string]any
	if err := json.Unmarshal(line, &a); err != nil {
		r.t.Fatalf("answer is not json: %q", line)
	}
	return a
}

func (r *rawCompanion) mustOK(req string) map[string]any {
	r.t.Helper()
	a := r.ask(req)
	if a["ok"] != true {
		r.t.Fatalf("%s: %v", req, a)
	}
	return a
}

func TestLockHolderKilled(t *testing.T) {
	c := startCluster(t, 1)
	s := newStores(t, c.endpoints)

	holder := startRaw(t, c.endpoints, "2s", &s.stderr)
	holder.mustOK(`{"op":"lock","profile":"default"}`)

	// While it is held, no one else gets it.
	b := s.host()
	_, err := b.Lock(ctxFor(t, 500*time.Millisecond), "default")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, helper.ErrStoreUnreachable) || !strings.Contains(err.Error(), "held by another process") {
		t.Fatalf("lock held by another: %v, want a timeout waiting for it", err)
	}

	// The holder is SIGKILLed in the middle of its refresh: its lease
	// expires after its TTL and the lock is free.
	holder.cmd.Process.Kill()
	holder.cmd.Wait()
	unlock, err := s.host().Lock(ctxFor(t, 20*time.Second), "default")
	if err != nil {
		t.Fatalf("lock after the holder died: %v", err)
	}
	unlock()
}

// TestLockKeptWhenHelperDies: a helper that goes away holding the lock
// (killed in the middle of its refresh: its request may still reach the
// account server) leaves the lock to its lease, which expires only after
// its TTL; a helper that unlocks and exits frees it at once.
func TestLockKeptWhenHelperDies(t *testing.T) {
	c := startCluster(t, 1)
	s := newStores(t, c.endpoints)

	// A lease far longer than the waits below.
	holder := startRaw(t, c.endpoints, "60s", &s.stderr)
	holder.mustOK(`{"op":"lock","profile":"default"}`)
	holder.in.Close() // the helper is gone, the lock not released
	holder.cmd.Wait()
	if _, err := s.host().Lock(ctxFor(t, 2*time.Second), "default"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock after the holder's helper died holding it: %v, want it still held", err)
	}

	clean := startRaw(t, c.endpoints, "60s", &s.stderr)
	clean.mustOK(`{"op":"lock","profile":"other"}`)
	clean.mustOK(`{"op":"unlock","profile":"other"}`)
	clean.mustOK(`{"op":"lock","profile":"other"}`)
	clean.mustOK(`{"op":"unlock","profile":"other"}`)
	clean.in.Close()
	clean.cmd.Wait()
	unlock, err := s.host().Lock(ctxFor(t, 2*time.Second), "other")
	if err != nil {
		t.Fatalf("lock after a helper unlocked and exited: %v", err)
	}
	unlock()
}

func TestLostLeaseDoesNotWrite(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 30*time.Second)
	cli := c.client()

	set := s.secret(k.set(2 * time.Hour))
	if _, err := s.host().Set(ctx, "default", set); err != nil {
		t.Fatal(err)
	}
	holder := startRaw(t, c.endpoints, "60s", &s.stderr)
	holder.mustOK(`{"op":"lock","profile":"default"}`)
	rev := holder.mustOK(`{"op":"get","profile":"default"}`)["revision"].(float64)

	// Its lease goes (as it would after a network partition longer than
	// the TTL), while the key itself stays at the revision it read.
	keys, err := cli.Get(ctx, "farm/default.lock/", clientv3.WithPrefix())
	if err != nil || len(keys.Kvs) != 1 {
		t.Fatalf("lock key: %v, %v", keys, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(keys.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	newSet, _ := json.Marshal(s.secret(k.set(2 * time.Hour)))
	put, _ := json.Marshal(map[string]any{"op": "put", "profile": "default", "set": string(newSet), "revision": int64(rev)})
	a := holder.ask(string(put))
	if a["ok"] != false || a["kind"] != "conflict" {
		t.Fatalf("put after the lease was lost: %v, want a conflict", a)
	}
	if strings.Contains(fmt.Sprint(a), canary) {
		t.Errorf("the answer carries the set")
	}
	got, _, err := s.host().Get(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	sameSet(t, got, set)

	// The same companion can lock again, on a new lease, and then write.
	holder.mustOK(`{"op":"lock","profile":"default"}`)
	holder.mustOK(string(put))
}

// TestLeaseLostWhileWaiting: a companion whose lease goes while it waits
// for the lock (its keep-alives did not reach etcd for longer than the TTL)
// answers unavailable, which the helper reports as exit 75, not as a
// storage error; it locks again on a new lease.
func TestLeaseLostWhileWaiting(t *testing.T) {
	c := startCluster(t, 1)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 30*time.Second)
	cli := c.client()
	holder := startRaw(t, c.endpoints, "60s", &s.stderr)
	holder.mustOK(`{"op":"lock","profile":"default"}`)
	waiter := startRaw(t, c.endpoints, "60s", &s.stderr)
	const lock = `{"op":"lock","profile":"default"}`
	waiter.send(lock)
	var keys *clientv3.GetResponse
	for {
		var err error
		keys, err = cli.Get(ctx, "farm/default.lock/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
		if err != nil {
			t.Fatal(err)
		}
		if len(keys.Kvs) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(keys.Kvs[1].Lease)); err != nil {
		t.Fatal(err)
	}
	holder.mustOK(`{"op":"unlock","profile":"default"}`)
	if a := waiter.answer(lock); a["ok"] != false || a["kind"] != kindUnavailable {
		t.Fatalf("a lock whose lease went while it waited: %v, want kind %s", a, kindUnavailable)
	}
	waiter.mustOK(lock)

	// The lease gone before the lock is asked for, its session not yet
	// told (its next keep-alive is seconds away): etcd refuses the lock's
	// key on it. The same answer, and again a new lease after it.
	waiter.mustOK(`{"op":"unlock","profile":"default"}`)
	holder.mustOK(lock)
	waiter.mustOK(`{"op":"lock","profile":"other"}`)
	other, err := cli.Get(ctx, "farm/other.lock/", clientv3.WithPrefix())
	if err != nil || len(other.Kvs) != 1 {
		t.Fatalf("the lock of other: %v %v", other, err)
	}
	waiter.mustOK(`{"op":"unlock","profile":"other"}`)
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(other.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	if a := waiter.ask(lock); a["ok"] != false || a["kind"] != kindUnavailable {
		t.Fatalf("a lock on a lease that is gone: %v, want kind %s", a, kindUnavailable)
	}
	holder.mustOK(`{"op":"unlock","profile":"default"}`)
	waiter.mustOK(lock)
}

// TestWriteOutlivesTheHelper: a write whose line arrived is carried out
// when the input ends before it runs (the helper SIGKILLed right after it
// sent a refreshed set): that set holds the only live refresh token. A
// read, or a wait for a lock, is abandoned.
func TestWriteOutlivesTheHelper(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 30*time.Second)
	old := s.secret(k.set(2 * time.Hour))
	if _, err := s.host().Set(ctx, "default", old); err != nil {
		t.Fatal(err)
	}
	other := startRaw(t, c.endpoints, "60s", &s.stderr)
	other.mustOK(`{"op":"lock","profile":"other"}`)

	cfg, err := parseConfig(strings.Join(c.endpoints, ","), "farm", 2*time.Second, nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(cfg)
	defer srv.close()
	ask := func(req any) *answer {
		b, _ := json.Marshal(req)
		return srv.handle(b)
	}
	if a := ask(map[string]any{"op": "lock", "profile": "default"}); !a.OK {
		t.Fatalf("lock: %+v", a)
	}
	rev := ask(map[string]any{"op": "get", "profile": "default"}).Revision
	newSet, _ := json.Marshal(s.secret(k.set(2 * time.Hour)))

	srv.cancelBase() // what serve does when its input ends
	if a := ask(map[string]any{"op": "get", "profile": "default"}); a.OK {
		t.Errorf("a get after the input ended: %+v, want it abandoned", a)
	}
	if a := ask(map[string]any{"op": "lock", "profile": "other", "timeout_ms": 5000}); a.OK {
		t.Errorf("a lock wait after the input ended: %+v, want it abandoned", a)
	}
	if a := ask(map[string]any{"op": "put", "profile": "default", "set": string(newSet), "revision": rev}); !a.OK {
		t.Fatalf("put after the input ended: %+v, want it written", a)
	}
	got, err := c.client().Get(ctx, "farm/default")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != string(newSet) {
		t.Fatalf("etcd after the put: %v, %v; want the refreshed set", got, err)
	}
}

func TestThreeMembersOneStopped(t *testing.T) {
	c := startCluster(t, 3)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 60*time.Second)

	// A companion already connected, holding a lease, and a new one.
	a := s.host()
	set := s.secret(k.set(helper.MinMargin / 2))
	if _, err := a.Set(ctx, "default", set); err != nil {
		t.Fatalf("set: %v", err)
	}
	unlock, err := a.Lock(ctx, "other")
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	// Stop the leader, the harder case: the others elect a new one.
	lead := -1
	for i, m := range c.members {
		if m.Server.MemberID() == m.Server.Leader() {
			lead = i
		}
	}
	if lead < 0 {
		t.Fatal("no leader")
	}
	c.stop(lead)

	for _, h := range []*helper.EtcdStore{a, s.host()} {
		unlock, err := h.Lock(ctx, "default")
		if err != nil {
			t.Fatalf("lock with the leader stopped: %v", err)
		}
		got, _, err := h.Get(ctx, "default")
		if err != nil {
			t.Fatalf("get with the leader stopped: %v", err)
		}
		sameSet(t, got, set)
		set = s.secret(k.set(helper.MinMargin / 2))
		if _, err := h.Set(ctx, "default", set); err != nil {
			t.Fatalf("set with the leader stopped: %v", err)
		}
		unlock()
		names, err := h.Profiles(ctx)
		if err != nil || !slices.Equal(names, []string{"default"}) {
			t.Errorf("list with the leader stopped: %q, %v", names, err)
		}
	}
	// The lease of the lock taken before the stop was kept alive.
	keys, err := c.client().Get(ctx, "farm/other.lock/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(keys.Kvs) != 1 {
		t.Errorf("the lock taken before the leader stopped is gone: %v, %v", keys, err)
	}
	unlock()
	if err := s.host().Delete(ctx, "default"); err != nil {
		t.Errorf("delete with the leader stopped: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	k := newTokens(t)
	// Two ports where nothing listens: every call ends as unreachable as
	// soon as the companion sees both refuse, well before the caller's
	// time (not a timeout).
	s := newStores(t, []string{fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))})
	h := s.host()
	set := s.secret(k.set(2 * time.Hour))
	calls := func(h *helper.EtcdStore) map[string]func(context.Context) error {
		return map[string]func(context.Context) error{
			"get":    func(ctx context.Context) error { _, _, err := h.Get(ctx, "default"); return err },
			"set":    func(ctx context.Context) error { _, err := h.Set(ctx, "default", set); return err },
			"delete": func(ctx context.Context) error { return h.Delete(ctx, "default") },
			"list":   func(ctx context.Context) error { _, err := h.Profiles(ctx); return err },
			"lock":   func(ctx context.Context) error { _, err := h.Lock(ctx, "default"); return err },
		}
	}
	for name, call := range calls(h) {
		err := call(ctxFor(t, 30*time.Second))
		if !errors.Is(err, helper.ErrStoreUnreachable) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with etcd refusing connections: %v, want ErrStoreUnreachable, not a timeout", name, err)
		}
		if errors.Is(err, helper.ErrNotFound) {
			t.Errorf("%s with etcd unreachable looks like a missing profile: %v", name, err)
		}
		if err != nil && (!strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "every endpoint refuses connections")) {
			t.Errorf("%s with etcd unreachable: %q does not say every endpoint refused (and so ended at once)", name, err)
		}
		noSecret(t, err, set)
	}
	// A port that takes connections and never answers: the caller's time
	// runs out (timeout).
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	quiet := newStores(t, []string{silent.Addr().String()}).host()
	for name, call := range calls(quiet) {
		err := call(ctxFor(t, 1500*time.Millisecond))
		if !errors.Is(err, helper.ErrStoreUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with etcd silent and the caller's time run out: %v, want ErrStoreUnreachable wrapping context.DeadlineExceeded (timeout)", name, err)
		}
		noSecret(t, err, set)
	}
	// With no deadline from the caller, the companion's own bound on an
	// etcd call answers: unreachable, not a timeout of the caller's.
	_, err = quiet.Profiles(context.Background())
	if !errors.Is(err, helper.ErrStoreUnreachable) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "cannot reach etcd") {
		t.Errorf("list with etcd unreachable and no deadline: %v, want ErrStoreUnreachable alone", err)
	}
	if _, err := os.Stat(filepath.Join(h.CacheDir, "default.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed set changed the local cache")
	}
}

func TestAuth(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	ctx := ctxFor(t, 30*time.Second)
	cli := c.client()
	// The role the documentation gives: readwrite on the prefix, no more.
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cli.UserAdd(ctx, "root", "root-pw-canary"))
	must(cli.UserGrantRole(ctx, "root", "root"))
	must(cli.RoleAdd(ctx, "prusa"))
	must(cli.RoleGrantPermission(ctx, "prusa", "farm/", clientv3.GetPrefixRangeEnd("farm/"), clientv3.PermissionType(clientv3.PermReadWrite)))
	must(cli.UserAdd(ctx, "farm", "pw-canary-etcd"))
	must(cli.UserGrantRole(ctx, "farm", "prusa"))
	must(cli.AuthEnable(ctx))

	s := newStores(t, c.endpoints)
	s.secrets = append(s.secrets, "pw-canary-etcd")
	h := s.host()
	h.Settings.User = "farm:pw-canary-etcd"
	h.LeaseTTL = time.Minute // only a revocation frees its lock in time below
	set := s.secret(k.set(2 * time.Hour))
	if _, err := h.Set(ctx, "default", set); err != nil {
		t.Fatalf("set with the documented role: %v", err)
	}
	unlock, err := h.Lock(ctx, "default")
	if err != nil {
		t.Fatalf("lock with the documented role: %v", err)
	}
	got, _, err := h.Get(ctx, "default")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	sameSet(t, got, set)
	if names, err := h.Profiles(ctx); err != nil || !slices.Equal(names, []string{"default"}) {
		t.Errorf("list with the documented role: %q, %v", names, err)
	}
	// The role may revoke the lease too: unlocking and closing the store
	// frees the lock at once (a 60 s lease would hold it past the wait).
	unlock()
	h.Close()
	h2 := s.host()
	h2.Settings.User = "farm:pw-canary-etcd"
	unlock, err = h2.Lock(ctxFor(t, 10*time.Second), "default")
	if err != nil {
		t.Fatalf("lock after the holder closed: %v", err)
	}
	unlock()

	bad := s.host()
	bad.Settings.User = "farm:wrong-pw-canary"
	_, _, err = bad.Get(ctx, "default")
	if !errors.Is(err, helper.ErrStorage) || errors.Is(err, helper.ErrNotFound) || errors.Is(err, helper.ErrStoreUnreachable) {
		t.Fatalf("get with a wrong password: %v, want a storage error", err)
	}
	if strings.Contains(err.Error(), "pw-canary") {
		t.Errorf("the error carries the password: %v", err)
	}
	if !strings.Contains(err.Error(), "authentication failed") || !errors.Is(err, helper.ErrEtcdAuth) {
		t.Errorf("the error does not say authentication failed: %v", err)
	}
	// With no user at all, the same kind of refusal.
	if _, _, err := s.host().Get(ctx, "default"); !errors.Is(err, helper.ErrEtcdAuth) {
		t.Errorf("get with no user: %v, want etcd's refusal of the user", err)
	}
}

// The companion refuses bad settings with a one-line message, and no
// password on its command line is possible: it takes none.
func TestCompanionSettings(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "--endpoints is required"},
		{[]string{"--endpoints", "h:1"}, nil, "--prefix is required"},
		{[]string{"--endpoints", "h:1,", "--prefix", "p"}, nil, "empty entry"},
		{[]string{"--endpoints", "h:1", "--prefix", "p", "--lease-ttl", "1s"}, nil, "at least 2s"},
		{[]string{"--endpoints", "h:1", "--prefix", "p", "--password", "x"}, nil, "flag provided but not defined"},
		{[]string{"--endpoints", "h:1", "--prefix", "p"}, map[string]string{"PRUSA_ETCD_USER": "nopassword"}, "user:password"},
		{[]string{"--endpoints", "h:1", "--prefix", "p"}, map[string]string{"PRUSA_ETCD_CERT": "c.pem"}, "set both or neither"},
		{[]string{"--endpoints", "h:1", "--prefix", "p"}, map[string]string{"PRUSA_ETCD_CERT": "c.pem", "PRUSA_ETCD_KEY": pemCanary}, "PRUSA_ETCD_KEY must be a file's path"},
		{[]string{"--endpoints", "h:1", "--prefix", "p"}, map[string]string{"PRUSA_ETCD_CACERT": "-----BEGIN CERTIFICATE----- CANARY"}, "PRUSA_ETCD_CACERT must be a file's path"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(tc.args, func(k string) string { return tc.env[k] }, strings.NewReader(""), &out, &errb)
		first, _, _ := strings.Cut(errb.String(), "\n")
		if code != 2 || !strings.Contains(first, tc.want) {
			t.Errorf("run(%q): exit %d, %q; want exit 2 and %q", tc.args, code, first, tc.want)
		}
		if strings.Contains(errb.String()+out.String(), "CANARY") {
			t.Errorf("run(%q) echoed a setting's value: %q", tc.args, errb.String())
		}
	}
}

// pemCanary is PEM text put where a file's path belongs: PRUSA_ETCD_KEY="$(cat key.pem)".
const pemCanary = "-----BEGIN PRIVATE KEY-----\nCANARY-key\n-----END PRIVATE KEY-----\n"

// A companion whose TLS files cannot be read answers every request with a
// clear error.
func TestCompanionBadTLS(t *testing.T) {
	var out, errb bytes.Buffer
	env := map[string]string{"PRUSA_ETCD_CACERT": filepath.Join(t.TempDir(), "missing.pem")}
	in := strings.NewReader(`{"op":"list"}` + "\n" + `{"op":"get","profile":"default"}` + "\n")
	if code := run([]string{"--endpoints", "127.0.0.1:1", "--prefix", "farm"}, func(k string) string { return env[k] }, in, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 answers, got %q", out.String())
	}
	for _, l := range lines {
		var a answer
		if err := json.Unmarshal([]byte(l), &a); err != nil || a.OK || a.Kind != kindOther || !strings.Contains(a.Error, "tls") {
			t.Errorf("answer %q: want an error about the tls settings", l)
		}
	}
	if errb.Len() != 0 {
		t.Errorf("stderr: %q", errb.String())
	}
}

func TestCompanionBadRequests(t *testing.T) {
	c := startCluster(t, 1)
	s := newStores(t, c.endpoints)
	r := startRaw(t, c.endpoints, "5s", &s.stderr)
	for req, kind := range map[string]string{
		`not json`: kindOther,
		`{"op":"frobnicate","profile":"default"}`:                    kindOther,
		`{"op":"get","profile":"../etc"}`:                            kindOther,
		`{"op":"get","profile":"default"}`:                           kindNotFound,
		`{"op":"delete","profile":"default"}`:                        kindNotFound,
		`{"op":"put","profile":"default","set":"{}"}`:                kindOther, // no revision
		`{"op":"put","profile":"default","set":"nope","revision":0}`: kindOther,
	} {
		a := r.ask(req)
		if a["ok"] != false || a["kind"] != kind {
			t.Errorf("%s: %v, want kind %s", req, a, kind)
		}
	}
	r.mustOK(`{"op":"unlock","profile":"default"}`) // not held: nothing to do
	r.mustOK(`{"op":"lock","profile":"default"}`)
	if a := r.ask(`{"op":"lock","profile":"default"}`); a["ok"] != false {
		t.Errorf("a second lock of a held profile: %v", a)
	}
}

// The helper, which serves file and keyring gets, must not link the etcd
// client or gRPC: they slow every start. Only this companion does.
func TestHelperDoesNotLinkEtcd(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, pkg := range []string{"github.com/prusa-credential-helper/prusa-credential-helper", "github.com/prusa-credential-helper/prusa-credential-helper/helper"} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v: %s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "go.etcd.io/") || strings.HasPrefix(dep, "google.golang.org/grpc") {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}

// TestFleetRefreshesOnce is the helper's refresh (lock → re-read → still
// needed? → refresh → write on the revision read → unlock) on 8 hosts of 4
// processes each, every one with its own store and companion, against the
// account emulator: one refresh request, one token for all. (The same with
// the real helper binary: scripts/fleet.sh.)
func TestFleetRefreshesOnce(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 60*time.Second)
	old := s.secret(k.set(helper.MinMargin / 2))
	if _, err := s.host().Set(ctx, "default", old); err != nil {
		t.Fatal(err)
	}
	ac := &auth.Client{AccountURL: k.srv.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI}
	k.srv.ResetCounts()

	get := func(h *helper.EtcdStore) (string, error) {
		defer h.Close()
		if set, _, err := h.Peek(ctx, "default"); err != nil {
			return "", err
		} else if c, err := set.Access(); err == nil && auth.ValidFor(c.Expiry.Time, time.Now(), helper.MinMargin) {
			return set.AccessToken, nil
		}
		unlock, err := h.Lock(ctx, "default")
		if err != nil {
			return "", err
		}
		defer unlock()
		set, _, err := h.Get(ctx, "default")
		if err != nil {
			return "", err
		}
		if c, err := set.Access(); err == nil && auth.ValidFor(c.Expiry.Time, time.Now(), helper.MinMargin) {
			return set.AccessToken, nil // another process refreshed
		}
		if set.RefreshToken == "" {
			return "", errors.New("under the lock, Get gave the cache's set, not etcd's")
		}
		next, err := ac.Refresh(ctx, *set)
		if err != nil {
			return "", err
		}
		if _, err := h.Set(ctx, "default", &next); err != nil {
			return "", err
		}
		return next.AccessToken, nil
	}

	const hosts, perHost = 8, 4
	toks := make([]string, hosts*perHost)
	errs := make([]error, hosts*perHost)
	var wg sync.WaitGroup
	for i := range hosts {
		cacheDir := filepath.Join(t.TempDir(), "etcd-cache")
		for j := range perHost {
			h := s.host()
			h.CacheDir = cacheDir
			wg.Add(1)
			go func() {
				defer wg.Done()
				toks[i*perHost+j], errs[i*perHost+j] = get(h)
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("gets failed: %v", err)
	}
	if n := k.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Errorf("%d refresh requests, want 1", n)
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(toks)))
	if len(distinct) != 1 || distinct[0] == old.AccessToken {
		t.Errorf("the processes got %d tokens, want one new one", len(distinct))
	}
	s.secrets = append(s.secrets, distinct...)
}

// A Ctrl-C or a SIGTERM (sent to the whole process group) and a helper gone while a
// request is in flight (its answer meets a closed pipe) must not kill the
// companion before it ends its session: the lock it still holds is freed
// when its lease expires (a 2 s lease here), as for a helper killed in the
// middle of its refresh.
func TestCompanionSurvivesInterruptAndGoneHelper(t *testing.T) {
	c := startCluster(t, 1)
	s := newStores(t, c.endpoints)

	other := startRaw(t, c.endpoints, "60s", &s.stderr)
	other.mustOK(`{"op":"lock","profile":"busy"}`)

	holder := startRaw(t, c.endpoints, "2s", &s.stderr)
	holder.mustOK(`{"op":"lock","profile":"default"}`)
	for _, sig := range append([]os.Signal{os.Interrupt, syscall.SIGTERM}, jobControl...) { // as to the helper's whole process group
		if err := holder.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		holder.mustOK(`{"op":"list"}`) // still there
	}
	// A request that waits, then the helper goes: input and output closed.
	if _, err := holder.in.WriteString(`{"op":"lock","profile":"busy"}` + "\n"); err != nil {
		t.Fatal(err)
	}
	holder.stdout.Close()
	holder.in.Close()
	if err := holder.cmd.Wait(); err != nil {
		t.Fatalf("the companion did not end cleanly: %v", err)
	}

	unlock, err := s.host().Lock(ctxFor(t, 10*time.Second), "default")
	if err != nil {
		t.Fatalf("lock after the holder's helper went: %v", err)
	}
	unlock()
}

// TestRefreshKeptWhenEtcdGoesDown: etcd stops while a refresh is in
// flight. The server has spent the old refresh token, so the new set is
// kept on the host (0600) instead of lost, its access token is served, and
// the host's next refresh writes it to etcd (at the revision it read,
// under the lock) before refreshing with it. Until then another host finds
// only the spent set.
func TestRefreshKeptWhenEtcdGoesDown(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	old := s.secret(k.set(helper.MinMargin / 2))
	if _, err := s.host().Set(ctxFor(t, 30*time.Second), "default", old); err != nil {
		t.Fatal(err)
	}
	ac := &auth.Client{AccountURL: k.srv.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "test"}
	var warnings syncBuffer
	newHelper := func(st *helper.EtcdStore) *helper.Helper {
		return helper.New(helper.Config{Etcd: st, Dir: t.TempDir(), Auth: ac, Warn: func(m string) { warnings.Write([]byte(m + "\n")) }})
	}
	a := s.host()
	k.srv.ResetCounts()
	k.srv.FailToken(authtest.Fault{Delay: 2 * time.Second, Pass: true})
	done := make(chan error, 1)
	var tok string
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		got, err := newHelper(a).Get(ctx, "default", 0, false)
		tok = got.AccessToken
		done <- err
	}()
	for k.srv.Count(authtest.KindTokenRefresh) == 0 { // the request is sent, held the 2 s
		select {
		case err := <-done:
			t.Fatalf("get ended before its refresh request: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	c.stop(0)
	if err := <-done; err != nil {
		t.Fatalf("get with etcd gone during the refresh: %v", err)
	}
	a.Close()
	s.secrets = append(s.secrets, tok)
	if k.srv.ValidRefreshToken(old.RefreshToken) || !k.srv.ValidAccessToken(tok) {
		t.Fatal("the test needs the refresh to have spent the old token and served a new one")
	}
	rescue := filepath.Join(a.CacheDir, ".rescue-default.json")
	kept, err := os.ReadFile(rescue)
	if fi, serr := os.Stat(rescue); err != nil || serr != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("the new set was not kept 0600 on the host: %v", err)
	}
	var k1 struct {
		Tokens auth.TokenSet `json:"tokens"`
	}
	if err := json.Unmarshal(kept, &k1); err != nil || k1.Tokens.AccessToken != tok {
		t.Fatalf("the kept file does not hold the served set: %v", err)
	}
	s.secret(&k1.Tokens)
	if w := warnings.String(); !strings.Contains(w, rescue) || strings.Contains(w, tok) {
		t.Fatalf("warning %q: want the kept file named, and no token", w)
	}

	c.restart(0)
	// Another host finds the spent set: it cannot refresh.
	b := s.host()
	_, err = newHelper(b).Get(ctxFor(t, 30*time.Second), "default", 0, false)
	b.Close()
	if !errors.Is(err, helper.ErrLoginRequired) {
		t.Fatalf("another host, before the push: %v, want login required", err)
	}
	// This host's next get that reads etcd (its cache gone here) writes the
	// kept set, and serves it: it is valid, so no refresh.
	os.Remove(filepath.Join(a.CacheDir, "default.json"))
	k.srv.ResetCounts()
	a2 := s.host()
	a2.CacheDir = a.CacheDir
	got, err := newHelper(a2).Get(ctxFor(t, 30*time.Second), "default", 0, false)
	a2.Close()
	if err != nil || got.AccessToken != tok || k.srv.Count(authtest.KindTokenRefresh) != 0 {
		t.Fatalf("get on the host that kept the set: %v (or another token, or a refresh)", err)
	}
	if _, err := os.Stat(rescue); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the kept set is still there after it was written: %v", err)
	}
	// And the other host serves it from etcd, and can refresh it.
	b2 := s.host()
	got, err = newHelper(b2).Get(ctxFor(t, 30*time.Second), "default", 0, false)
	if err != nil || got.AccessToken != tok {
		t.Fatalf("another host after the push: %v", err)
	}
	next, err := newHelper(b2).Refresh(ctxFor(t, 30*time.Second), "default")
	b2.Close()
	if err != nil {
		t.Fatalf("another host's refresh after the push: %v", err)
	}
	s.secrets = append(s.secrets, next.AccessToken)

	// A kept set whose key was written since (here by the other host's
	// refresh) is dropped, not written over the newer set.
	stale, _ := json.Marshal(map[string]any{"revision": 1, "tokens": k1.Tokens})
	if err := os.WriteFile(rescue, stale, 0o600); err != nil {
		t.Fatal(err)
	}
	a3 := s.host()
	a3.CacheDir = a.CacheDir
	again, err := newHelper(a3).Refresh(ctxFor(t, 30*time.Second), "default")
	a3.Close()
	if err != nil {
		t.Fatalf("refresh with a stale kept set: %v", err)
	}
	s.secrets = append(s.secrets, again.AccessToken)
	if _, err := os.Stat(rescue); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a stale kept set was not dropped")
	}
	// What decides is etcd's revision, not the set the helper picks: with a
	// set of another session in PRUSA_TOKENS_JSON (which get prefers to
	// etcd's), a kept set whose key is unchanged is written all the same.
	ctx := ctxFor(t, 30*time.Second)
	kv, err := c.client().Get(ctx, "farm/default")
	if err != nil || len(kv.Kvs) != 1 {
		t.Fatalf("reading etcd: %v", err)
	}
	r2 := s.secret(k.set(2 * time.Hour))
	kept2, _ := json.Marshal(map[string]any{"revision": kv.Kvs[0].ModRevision, "tokens": r2})
	if err := os.WriteFile(rescue, kept2, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(a.CacheDir, "default.json"))
	envSet, _ := json.Marshal(s.secret(k.set(-time.Minute)))
	env, err := helper.FromEnv(func(v string) string {
		if v == "PRUSA_TOKENS_JSON" {
			return string(envSet)
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	a4 := s.host()
	a4.CacheDir = a.CacheDir
	h4 := helper.New(helper.Config{Etcd: a4, Dir: t.TempDir(), Auth: ac, Env: env, Warn: func(m string) { warnings.Write([]byte(m + "\n")) }})
	got, err = h4.Get(ctx, "default", 0, false)
	a4.Close()
	if err != nil || got.AccessToken != r2.AccessToken {
		t.Fatalf("get with PRUSA_TOKENS_JSON and a kept set: %v (or not the kept set's token)", err)
	}
	if kv, err := c.client().Get(ctx, "farm/default"); err != nil || !strings.Contains(string(kv.Kvs[0].Value), r2.RefreshToken) {
		t.Fatalf("etcd does not hold the kept set: %v", err)
	}

	if strings.Count(warnings.String(), "wrote the refreshed tokens") != 2 {
		t.Fatalf("warnings %q: want one push", warnings.String())
	}
	for _, secret := range s.secrets {
		if strings.Contains(warnings.String(), secret) {
			t.Fatal("a warning carries a token")
		}
	}
}

// TestClockOffsetStaysOnItsHost: two hosts share a set, and host A's clock
// is 3 h behind. Each judges the set by its own estimate of its clock's
// offset, never by the other's through etcd: one refresh per expiry, and a
// token that A holds for good for 5 h is not one the server gives 2 h.
func TestClockOffsetStaysOnItsHost(t *testing.T) {
	c := startCluster(t, 1)
	k := newTokens(t)
	s := newStores(t, c.endpoints)
	ctx := ctxFor(t, 60*time.Second)
	if _, err := s.host().Set(ctx, "default", k.set(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	behind := func() time.Time { return time.Now().Add(-3 * time.Hour) }
	a, b := s.host(), s.host()
	get := func(st *helper.EtcdStore, now func() time.Time, minTTL time.Duration, force bool) {
		t.Helper()
		ac := &auth.Client{AccountURL: k.srv.URL, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, Now: now}
		h := helper.New(helper.Config{Dir: t.TempDir(), Etcd: st, Auth: ac, Now: now})
		if _, err := h.Get(ctx, "default", minTTL, force); err != nil {
			t.Fatal(err)
		}
	}
	refreshes := func(want int) {
		t.Helper()
		if n := k.srv.Count(authtest.KindTokenRefresh); n != want {
			t.Fatalf("%d refresh requests, want %d", n, want)
		}
	}
	get(a, behind, 0, true) // A refreshes, and learns its clock is 3 h behind
	refreshes(1)
	raw, err := c.client().Get(ctx, "farm/default")
	if err != nil || len(raw.Kvs) != 1 {
		t.Fatalf("etcd holds %d keys, %v", len(raw.Kvs), err)
	}
	if strings.Contains(string(raw.Kvs[0].Value), "clock_offset") {
		t.Error("the set in etcd carries A's clock offset")
	}
	for range 3 {
		get(b, time.Now, 0, false) // good for 2 h by B's clock, which is right
	}
	get(a, behind, 0, false)
	refreshes(1)
	get(b, time.Now, 0, true) // B refreshes: the set in etcd is B's now
	refreshes(2)
	get(a, behind, 3*time.Hour, false) // B's token: refreshed since A last read
	refreshes(2)
	get(a, behind, 3*time.Hour, false) // 2 h left by the server's clock, not 5 h: A refreshes
	refreshes(3)
}
