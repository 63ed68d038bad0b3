package main

// The reliability suite: faults of the account server, crashes, concurrency
// and secrets, all through the real binary against the emulator. Each test
// logs its figures as "figure: …" lines; scripts/reliability.sh collects
// them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("figure: "+format, args...)
}

// TestFaultTable: every fault of the account server, through the real
// binary: the right code and exit code, a message naming the cause without
// secrets, and (on failure) the store byte for byte unchanged.
func TestFaultTable(t *testing.T) {
	retryAfter := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	type fault struct {
		name   string
		opts   authtest.Options
		faults []authtest.Fault
		login  bool     // the fault hits a login, not a refreshing get
		args   []string // extra arguments
		code   string   // "" for success
		exit   int
		msg    string
	}
	tests := []fault{
		{name: "500", faults: []authtest.Fault{{Status: 500, Body: "CANARY-body"}}, code: "server_error", exit: 75, msg: "answered 500"},
		{name: "502 twice", faults: []authtest.Fault{{Status: 502}, {Status: 502}}, code: "server_error", exit: 75, msg: "answered 502"},
		{name: "502 once, then the retry succeeds", faults: []authtest.Fault{{Status: 502}}},
		{name: "503 twice", faults: []authtest.Fault{{Status: 503}, {Status: 503}}, code: "server_error", exit: 75, msg: "answered 503"},
		{name: "503 with Retry-After 1, twice", faults: []authtest.Fault{{Status: 503, Header: retryAfter("1")}, {Status: 503, Header: retryAfter("1")}}, code: "server_error", exit: 75, msg: "answered 503"},
		{name: "503 with Retry-After 1, then success", faults: []authtest.Fault{{Status: 503, Header: retryAfter("1")}}},
		{name: "503 with Retry-After 120 (not waited for)", faults: []authtest.Fault{{Status: 503, Header: retryAfter("120")}}, code: "server_error", exit: 75, msg: "answered 503"},
		{name: "504 twice", faults: []authtest.Fault{{Status: 504}, {Status: 504}}, code: "server_error", exit: 75, msg: "answered 504"},
		{name: "429 twice", faults: []authtest.Fault{{Status: 429}, {Status: 429}}, code: "server_error", exit: 75, msg: "answered 429"},
		{name: "connection reset before the answer, twice", faults: []authtest.Fault{{Reset: true}, {Reset: true}}, code: "network_error", exit: 75, msg: "connection reset"},
		{name: "connection reset before the answer, then success", faults: []authtest.Fault{{Reset: true}}},
		{name: "connection reset mid-answer", faults: []authtest.Fault{{ResetMidBody: true, AfterProcessing: true}}, code: "network_error", exit: 75, msg: "reading answer"},
		{name: "answer never comes", faults: []authtest.Fault{{Hang: true}}, args: []string{"--timeout", "700ms"}, code: "timeout", exit: 75, msg: "timed out after 700ms"},
		{name: "200 with HTML", faults: []authtest.Fault{{Status: 200, Body: "<html><body>CANARY-maintenance</body></html>"}}, code: "server_error", exit: 75, msg: "answer is not JSON"},
		{name: "200 with truncated JSON", faults: []authtest.Fault{{Status: 200, Body: `{"access_token": "eyJhbGci`}}, code: "server_error", exit: 75, msg: "answer is not JSON"},
		{name: "200 carrying an error", faults: []authtest.Fault{{Status: 200, Body: `{"error": "server_error"}`}}, code: "server_error", exit: 75, msg: "server_error"},
		{name: "200 carrying invalid_grant", faults: []authtest.Fault{{Status: 200, Body: `{"error": "invalid_grant"}`}}, code: "login_required", exit: 4, msg: "refused"},
		{name: "invalid_grant", faults: []authtest.Fault{{Status: 400, Body: `{"error": "invalid_grant"}`}}, code: "login_required", exit: 4, msg: "refused"},
		{name: "invalid_client", faults: []authtest.Fault{{Status: 401, Body: `{"error": "invalid_client"}`}}, code: "internal", exit: 1, msg: "invalid_client"},
		{name: "login: redirect loop", opts: authtest.Options{RedirectLoop: true}, login: true, code: "server_error", exit: 75, msg: "too many redirects"},
		{name: "login: TLS failure", opts: authtest.Options{TLS: true}, login: true, code: "network_error", exit: 75, msg: "certificate"},
		{name: "login: code exchange answered 503 twice", login: true, faults: []authtest.Fault{{Status: 503}, {Status: 503}}, code: "server_error", exit: 75, msg: "answered 503"},
		{name: "login: code exchange reset twice", login: true, faults: []authtest.Fault{{Reset: true}, {Reset: true}}, code: "network_error", exit: 75, msg: "connection reset"},
	}
	passed := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.opts)
			home := t.TempDir()
			vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_HELPER_DEBUG": "1"}
			old := srv.Mint(userEmail, -time.Minute)
			stored := writeSet(t, home, "default", old)
			srv.FailToken(tt.faults...)
			var r result
			if tt.login {
				vars["PRUSA_EMAIL"], vars["PRUSA_PASSWORD"], vars["PRUSA_TOTP_SECRET"] = userEmail, userPassword, userTOTPSecret
				r = execHelper(t, home, vars, "", append([]string{"login"}, tt.args...)...)
			} else {
				r = execHelper(t, home, vars, "", append([]string{"get"}, tt.args...)...)
			}
			if r.exit != tt.exit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.exit, tt.exit, r.stderr)
			}
			assertNoTokens(t, "stderr", r.stderr, old.AccessToken, old.RefreshToken, old.IDToken)
			if strings.Contains(r.stderr, "CANARY") || strings.Contains(r.stdout, "CANARY") {
				t.Fatal("a raw body or a password reached the output")
			}
			now, _ := os.ReadFile(tokenFile(home, "default"))
			if tt.code == "" {
				var doc struct {
					AccessToken string `json:"access_token"`
				}
				json.Unmarshal([]byte(r.stdout), &doc)
				if !srv.ValidAccessToken(doc.AccessToken) || bytes.Equal(now, stored) {
					t.Fatal("success without a fresh, saved token")
				}
				passed++
				return
			}
			msgLine := strings.Split(r.stderr, "\n")
			last := ""
			for _, l := range msgLine {
				if strings.HasPrefix(l, prog+": ") && !strings.HasPrefix(l, prog+": debug:") {
					last = l
				}
			}
			if !strings.Contains(last, tt.msg) {
				t.Fatalf("message %q does not name the cause %q", last, tt.msg)
			}
			if !tt.login {
				var doc errorDoc
				if json.Unmarshal([]byte(r.stdout), &doc) != nil || doc.Code != tt.code {
					t.Fatalf("document %q, want code %s", r.stdout, tt.code)
				}
			}
			if !bytes.Equal(now, stored) {
				t.Fatal("the store changed")
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(tokenFile(home, "default")), ".*.tmp-*")); len(left) > 0 {
				t.Fatalf("temp files left behind: %v", left)
			}
			passed++
		})
	}
	figure(t, "faults tried %d, passed %d", len(tests), passed)
}

// kills is how many SIGKILLs TestCrashKills deals (RELIABILITY_KILLS).
func kills() int {
	if n, err := strconv.Atoi(os.Getenv("RELIABILITY_KILLS")); err == nil && n > 0 {
		return n
	}
	return 300
}

// quickest is the least time of three runs of what prepare returns
// (prepare's own work is not timed): how long an operation takes here,
// spared a run that a loaded machine slowed.
func quickest(prepare func() func()) time.Duration {
	var least time.Duration
	for range 3 {
		run := prepare()
		start := time.Now()
		run()
		if d := time.Since(start); least == 0 || d < least {
			least = d
		}
	}
	return least
}

// TestCrashKills kills store, login and refreshing get with SIGKILL at
// random points. Afterwards the store must hold the old or a new set,
// parseable, never empty, and the next get must work — or, when the kill
// fell after the server rotated the refresh token but before the process
// saved the new one, say login_required: refresh tokens rotate with no
// grace, so that token is gone for anyone (counted apart).
func TestCrashKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills hundreds of processes")
	}
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file"}
	n := kills()
	// Kill points are spread over how long each operation takes here: the
	// quickest of a few runs, so that one slow run (a loaded machine) does
	// not make most kills land after the end.
	took := map[string]time.Duration{}
	for _, op := range []string{"get", "store", "login"} {
		took[op] = quickest(func() func() {
			writeSet(t, home, "default", srv.Mint(userEmail, -time.Minute))
			b, _ := json.Marshal(srv.Mint(userEmail, 0))
			return func() {
				execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file", "PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword}, string(b), op)
			}
		})
	}
	var killed, finished, oldAfter, newAfter, absentAfter, burned, nextOK, tempSeen int
	runsDone := 0
	for i := 0; killed < n && i < 4*n; i++ {
		runsDone++
		op := []string{"get", "store", "login"}[i%3]
		old := srv.Mint(userEmail, -time.Minute)
		oldBytes := writeSet(t, home, "default", old)
		if op == "login" && i%2 == 0 {
			os.Remove(tokenFile(home, "default")) // a first login
			oldBytes = nil
		}
		args, stdin, extra := []string{op}, "", map[string]string{}
		maxDelay := took[op] + time.Millisecond
		switch op {
		case "store":
			b, _ := json.Marshal(srv.Mint(userEmail, 0))
			stdin = string(b)
		case "login":
			extra = map[string]string{"PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword}
		}
		cmd := exec.Command(binary, args...)
		cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		for k, v := range extra {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdin = strings.NewReader(stdin)
		detach(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(maxDelay))))
		cmd.Process.Kill()
		if err := cmd.Wait(); err == nil {
			finished++ // it was done before the signal
		} else {
			killed++ // killed mid-flight
		}
		// The store: old, new, or (first login) absent — never torn.
		data, err := os.ReadFile(tokenFile(home, "default"))
		switch {
		case os.IsNotExist(err) && oldBytes == nil:
			absentAfter++
		case err != nil:
			t.Fatalf("kill %d (%s): store unreadable: %v", i, op, err)
		case bytes.Equal(data, oldBytes):
			oldAfter++
		default:
			set, perr := auth.ParseTokenSet(data)
			if perr != nil || !srv.ValidAccessToken(set.AccessToken) {
				t.Fatalf("kill %d (%s): the store holds neither the old nor a new set (%d bytes): %v", i, op, len(data), perr)
			}
			newAfter++
		}
		if tmps, _ := filepath.Glob(filepath.Join(home, ".config", prog, ".*.tmp-*")); len(tmps) > 0 {
			tempSeen++
		}
		// The next get works.
		r := execHelper(t, home, vars, "", "get", "--format", "token")
		switch {
		case r.exit == 0 && srv.ValidAccessToken(strings.TrimSpace(r.stdout)):
			nextOK++
		case r.exit == 4 && oldBytes != nil && bytes.Equal(data, oldBytes) && !srv.ValidRefreshToken(old.RefreshToken):
			burned++ // killed between the server's rotation and the save
		case r.exit == 4 && os.IsNotExist(err):
			nextOK++ // a first login killed early: nothing stored, login_required is right
		default:
			t.Fatalf("kill %d (%s): next get: exit %d %q", i, op, r.exit, r.stderr)
		}
		if strings.Contains(r.stderr, "corrupt") {
			t.Fatalf("kill %d (%s): the next run found a corrupt file", i, op)
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(home, ".config", prog, ".*.tmp-*")); len(tmps) > 1 {
		t.Fatalf("%d temp files piled up", len(tmps))
	}
	figure(t, "operation times here: get %s, store %s, login %s", took["get"].Round(time.Millisecond/10), took["store"].Round(time.Millisecond/10), took["login"].Round(time.Millisecond/10))
	if killed < n {
		t.Fatalf("only %d of %d kills landed mid-flight", killed, n)
	}
	figure(t, "kills mid-flight %d (runs %d, of which done before the signal %d); store after: old %d, new %d, absent (first login) %d; torn or empty 0",
		killed, runsDone, finished, oldAfter, newAfter, absentAfter)
	figure(t, "next get worked %d of %d; refresh tokens lost to a kill between the server's rotation and the save: %d; runs that saw a temp file left by a kill: %d",
		nextOK, runsDone, burned, tempSeen)
}

// TestConcurrent64 starts 64 binaries at once on an expired token: one
// refresh, one token.
func TestConcurrent64(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 64 processes")
	}
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	old := srv.Mint(userEmail, -time.Minute)
	writeSet(t, home, "default", old)
	const n = 64
	outs := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			outs[i] = execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, "", "token")
		})
	}
	close(start)
	wg.Wait()
	for i, r := range outs {
		if r.exit != 0 || r.stdout != outs[0].stdout {
			t.Fatalf("process %d: exit %d, other token %v: %s", i, r.exit, r.stdout != outs[0].stdout, r.stderr)
		}
	}
	if got := srv.Count(authtest.KindTokenRefresh); got != 1 {
		t.Fatalf("%d refresh requests, want 1", got)
	}
	figure(t, "64 concurrent gets on an expired token: %d refresh request, %d distinct tokens", srv.Count(authtest.KindTokenRefresh), 1)
}

// TestRaces runs get against store, erase and login on one profile for a
// while: no torn write, no deadlock, and the store never keeps a spent
// refresh token.
func TestRaces(t *testing.T) {
	if testing.Short() {
		t.Skip("runs hundreds of processes")
	}
	srv := newServer(t, authtest.Options{AccessTTL: 90 * time.Second}) // inside the margin soon: many refreshes
	home := t.TempDir()
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_HELPER_TIMEOUT": "10s"}
	writeSet(t, home, "default", srv.Mint(userEmail, -time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var runs, gets, getsOK, loginRequired atomic.Int64
	var wg sync.WaitGroup
	worker := func(op func() result, check func(result)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				r := op()
				runs.Add(1)
				if strings.Contains(r.stderr, "corrupt") || strings.Contains(r.stderr, "timed out") {
					t.Errorf("torn write or deadlock: %s", r.stderr)
				}
				check(r)
			}
		})
	}
	for range 4 {
		worker(func() result { return execHelper(t, home, vars, `{"min_ttl": 60}`, "get") }, func(r result) {
			gets.Add(1)
			switch r.exit {
			case 0:
				getsOK.Add(1)
			case 4:
				loginRequired.Add(1) // erased meanwhile
			default:
				t.Errorf("get: exit %d %s", r.exit, r.stderr)
			}
		})
	}
	worker(func() result {
		b, _ := json.Marshal(srv.Mint(userEmail, 0))
		return execHelper(t, home, vars, string(b), "store")
	}, func(r result) {
		if r.exit != 0 {
			t.Errorf("store: exit %d %s", r.exit, r.stderr)
		}
	})
	worker(func() result { time.Sleep(50 * time.Millisecond); return execHelper(t, home, vars, "", "erase") }, func(r result) {
		if r.exit != 0 {
			t.Errorf("erase: exit %d %s", r.exit, r.stderr)
		}
	})
	worker(func() result {
		return execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": "plain@example.com", "PRUSA_PASSWORD": userPassword}, "", "login")
	}, func(r result) {
		if r.exit != 0 {
			t.Errorf("login: exit %d %s", r.exit, r.stderr)
		}
	})
	wg.Wait()
	if data, err := os.ReadFile(tokenFile(home, "default")); err == nil {
		set, err := auth.ParseTokenSet(data)
		if err != nil {
			t.Fatalf("final store: %v", err)
		}
		if !srv.ValidRefreshToken(set.RefreshToken) {
			t.Fatal("the store keeps a spent refresh token: a rotated one was lost")
		}
	}
	figure(t, "races: %d processes (get %d: %d ok, %d login_required after an erase) against store, erase and login; torn writes 0, deadlocks 0",
		runs.Load(), gets.Load(), getsOK.Load(), loginRequired.Load())
}

// TestProfilesRefreshIndependently: a held lock of one profile does not
// block another's refresh.
func TestProfilesRefreshIndependently(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	writeSet(t, home, "a", srv.Mint(userEmail, -time.Minute))
	writeSet(t, home, "b", srv.Mint(userEmail, -time.Minute))
	l := flock.New(filepath.Join(home, ".config", prog, "a.lock"))
	if err := l.Lock(); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}
	if r := execHelper(t, home, vars, "", "get", "--profile", "b", "--timeout", "5s"); r.exit != 0 {
		t.Fatalf("profile b waited for a's lock: %d %s", r.exit, r.stderr)
	}
	if r := execHelper(t, home, vars, "", "get", "--profile", "a", "--timeout", "300ms"); r.exit != 75 || !strings.Contains(r.stdout, `"code":"timeout"`) {
		t.Fatalf("profile a: %d %s", r.exit, r.stdout)
	}
}

// TestModesUnderUmask000: the token file, its directory and the lock are
// private even when the umask lets everything through.
func TestModesUnderUmask000(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	b, _ := json.Marshal(srv.Mint(userEmail, -time.Minute))
	cmd := exec.Command("sh", "-c", `umask 000; "$0" store && "$0" get >/dev/null`, binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PRUSA_ACCOUNT_URL=" + srv.URL}
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	dir := filepath.Join(home, ".config", prog)
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "default.json"): 0o600, filepath.Join(dir, "default.lock"): 0o600} {
		if got := fileMode(t, path); got != want {
			t.Errorf("%s: mode %o, want %o", filepath.Base(path), got, want)
		}
	}
}

// TestNoSecretsAnywhere runs every command and scenario with --debug and
// looks for the canary tokens (and each of their parts), the password and
// the TOTP codes on stderr, in the emulator's view of query strings, and in
// every file but the store.
func TestNoSecretsAnywhere(t *testing.T) {
	srv := newServer(t, authtest.Options{FirstAccessTTL: 30 * time.Second})
	home := t.TempDir()
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_HELPER_DEBUG": "1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range vars {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	var stderr, stdoutNoToken strings.Builder
	runs := 0
	do := func(v map[string]string, stdin string, args ...string) result {
		r := execHelper(t, home, v, stdin, args...)
		runs++
		stderr.WriteString(r.stderr)
		if args[0] != "get" && args[0] != "token" {
			stdoutNoToken.WriteString(r.stdout)
		}
		return r
	}
	key, _ := auth.DecodeTOTPSecret(userTOTPSecret)
	var codes []string
	for d := -2; d <= 3; d++ {
		codes = append(codes, auth.TOTP(key, uint64(int64(auth.TOTPStep(time.Now()))+int64(d)), 6))
	}
	do(with("PRUSA_EMAIL", userEmail, "PRUSA_TOTP_SECRET", userTOTPSecret), userPassword+"\n", "login", "--password-stdin")
	do(with("PRUSA_EMAIL", userEmail, "PRUSA_PASSWORD", userPassword, "PRUSA_TOTP_CODE", "000000"), "", "login", "--profile", "wrong-code")
	do(with("PRUSA_EMAIL", userEmail, "PRUSA_PASSWORD", "CANARY-wrong-password"), "", "login", "--profile", "wrong-pw")
	do(vars, "", "get")                                                     // refresh: the login's token lives 30 s
	do(vars, `{"force_refresh": true}`, "get")                              // forced refresh
	do(vars, "", "get", "--format", "header")                               // fast path
	do(vars, "", "status")                                                  //
	do(vars, "", "status", "--json")                                        //
	do(vars, "", "list")                                                    //
	minted := srv.Mint(userEmail, -time.Minute)                             //
	b, _ := json.Marshal(minted)                                            //
	do(vars, string(b), "store", "--profile", "ci")                         //
	do(with("PRUSA_TOKENS_JSON", string(b)), "", "get", "--profile", "env") // env set refreshed, saved
	do(with("PRUSA_TOKEN", minted.AccessToken), "", "get")                  // expired bare token
	srv.FailToken(authtest.Fault{Status: 500}, authtest.Fault{Status: 200, Body: `{"error": "invalid_grant"}`})
	do(vars, "", "get", "--profile", "ci")
	do(vars, "", "get", "--profile", "ci")
	do(vars, "", "erase", "--profile", "ci")
	do(vars, "", "logout", "--profile", "env")

	// Every token the emulator issued in this test, and each part of it.
	var tokens []string
	for _, set := range []string{tokenFile(home, "default")} {
		data, _ := os.ReadFile(set)
		var s auth.TokenSet
		json.Unmarshal(data, &s)
		tokens = append(tokens, s.AccessToken, s.RefreshToken, s.IDToken)
	}
	tokens = append(tokens, minted.AccessToken, minted.RefreshToken, minted.IDToken)
	for _, req := range srv.Requests() {
		if req.Form != nil {
			tokens = append(tokens, req.Form["refresh_token"]...)
		}
	}
	assertNoTokens(t, "stderr", stderr.String(), tokens...)
	assertNoTokens(t, "stdout of commands other than get", stdoutNoToken.String(), tokens...)
	for _, s := range append([]string{userPassword, "CANARY-wrong-password"}, codes...) {
		if strings.Contains(stderr.String(), s) || strings.Contains(stdoutNoToken.String(), s) {
			t.Errorf("a password or TOTP code reached the output")
		}
	}
	queries := 0
	for _, req := range srv.Requests() {
		queries++
		for _, s := range append(append([]string{userPassword}, codes...), tokens...) {
			if s != "" && strings.Contains(req.RawQuery, s) {
				t.Errorf("%s %s carries a secret in its query", req.Method, req.Path)
			}
		}
	}
	files := 0
	filepath.Walk(home, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || strings.HasSuffix(path, ".json") {
			return nil // the store's own files hold tokens by design
		}
		files++
		data, _ := os.ReadFile(path)
		assertNoTokens(t, "file "+filepath.Base(path), string(data), tokens...)
		return nil
	})
	if !strings.Contains(stderr.String(), "debug:") {
		t.Fatal("no diagnostics: --debug did nothing")
	}
	figure(t, "secrets: %d runs with --debug, %d requests' queries, %d non-store files searched for %d tokens (3 parts each), the password and %d TOTP codes: leaks 0",
		runs, queries, files, len(tokens), len(codes))
	_ = fmt.Sprint()
}

// TestDiskFullKeepsRefreshToken: when the store cannot take the refreshed
// set (here: a file size limit of 2,048 bytes, which a real set exceeds, as
// a full disk would refuse it), get fails before its request spends the
// refresh token: the server sees no refresh, the store and its directory
// are as they were, and once there is room again the same refresh token
// works.
func TestDiskFullKeepsRefreshToken(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("no sh")
	}
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}
	old := srv.Mint(userEmail, -time.Minute)
	stored := writeSet(t, home, "default", old)
	dir := filepath.Dir(tokenFile(home, "default"))
	before, _ := os.ReadDir(dir)

	cmd := exec.Command(sh, "-c", `ulimit -f 4 && exec "$0" "$@"`, binary, "get", "--store", "file")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PRUSA_ACCOUNT_URL=" + srv.URL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("with no room: %v; stderr %q", err, stderr.String())
	}
	var doc errorDoc
	if json.Unmarshal(stdout.Bytes(), &doc) != nil || doc.Code != "storage_error" || !strings.Contains(stderr.String(), "no room to write") {
		t.Fatalf("document %q, stderr %q", stdout.String(), stderr.String())
	}
	assertNoTokens(t, "stderr", stderr.String(), old.AccessToken, old.RefreshToken, old.IDToken)
	if n := srv.Count(authtest.KindTokenRefresh); n != 0 {
		t.Fatalf("%d refresh requests: the refresh token was spent with nowhere to save its successor", n)
	}
	if now, _ := os.ReadFile(tokenFile(home, "default")); !bytes.Equal(now, stored) {
		t.Fatal("the store changed")
	}
	after, _ := os.ReadDir(dir)
	for _, e := range after {
		if e.Name() != "default.lock" && !slices.ContainsFunc(before, func(b os.DirEntry) bool { return b.Name() == e.Name() }) {
			t.Fatalf("%s left behind", e.Name())
		}
	}

	r := execHelper(t, home, vars, "", "get", "--store", "file")
	if r.exit != 0 || srv.Count(authtest.KindTokenRefresh) != 1 {
		t.Fatalf("with room again: exit %d, %d refreshes; stderr %q", r.exit, srv.Count(authtest.KindTokenRefresh), r.stderr)
	}

	// With an expired refresh token nothing is sent and nothing saved: a
	// full disk does not hide that a login is needed.
	past := time.Now().Add(-time.Hour)
	storeIn(t, filepath.Join(home, ".config"), "default", canarySet(past, past))
	cmd = exec.Command(sh, "-c", `ulimit -f 4 && exec "$0" "$@"`, binary, "get", "--store", "file")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PRUSA_ACCOUNT_URL=" + srv.URL}
	stdout.Reset()
	cmd.Stdout = &stdout
	err = cmd.Run()
	if !errors.As(err, &ee) || ee.ExitCode() != 4 || !strings.Contains(stdout.String(), `"code":"login_required"`) {
		t.Fatalf("expired refresh token, no room: %v %q", err, stdout.String())
	}
}

// TestCrashKillsKeyring kills refreshing gets mid-flight on the real
// Secret Service (a set there is a main item and part items, written parts
// first). After every kill the next get must work, or — when the kill fell
// between the server's rotation and the save — say login_required; never a
// torn set (storage_error).
func TestCrashKillsKeyring(t *testing.T) {
	needSecretService(t)
	if testing.Short() {
		t.Skip("kills dozens of processes")
	}
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "DBUS_SESSION_BUS_ADDRESS": os.Getenv("DBUS_SESSION_BUS_ADDRESS"),
		"PRUSA_CREDENTIAL_STORE": "keyring", "PRUSA_PROFILE": "kill-keyring"}
	t.Cleanup(func() { execHelper(t, home, vars, "", "erase") })
	store := func() auth.TokenSet {
		old := srv.Mint(userEmail, -time.Minute)
		b, _ := json.Marshal(old)
		if r := execHelper(t, home, vars, string(b), "store"); r.exit != 0 {
			t.Fatalf("store: %d %s", r.exit, r.stderr)
		}
		return old
	}
	took := quickest(func() func() { // a refreshing get, as above
		store()
		return func() { execHelper(t, home, vars, "", "get") }
	})

	n := max(kills()/5, 20)
	var killed, finished, nextOK, burned int
	for i := 0; killed < n && i < 4*n; i++ {
		old := store()
		cmd := exec.Command(binary, "get")
		cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		detach(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(took + time.Millisecond))))
		cmd.Process.Kill()
		if cmd.Wait() == nil {
			finished++
		} else {
			killed++
		}
		r := execHelper(t, home, vars, "", "get", "--format", "token")
		switch {
		case r.exit == 0 && srv.ValidAccessToken(strings.TrimSpace(r.stdout)):
			nextOK++
		case r.exit == 4 && !srv.ValidRefreshToken(old.RefreshToken):
			burned++
		default:
			t.Fatalf("kill %d: next get: exit %d %q", i, r.exit, r.stderr)
		}
	}
	if killed < n {
		t.Fatalf("only %d of %d kills landed mid-flight", killed, n)
	}
	count := func() int {
		out, _ := exec.Command("secret-tool", "search", "--all", "service", "prusa-credential-helper").CombinedOutput()
		return strings.Count(string(out), "attribute.username = kill-keyring")
	}
	// What a kill leaves behind (parts in the slot the main item does not
	// use) is removed by the next write: never more than both slots hold,
	// and after a store exactly one set.
	items := count()
	store()
	one := count()
	if items > 1+2*(one-1) {
		t.Fatalf("%d items of the profile in the keyring after the kills; one set takes %d: they pile up", items, one)
	}
	store()
	if again := count(); again != one {
		t.Fatalf("%d items after a second store, want %d", again, one)
	}
	if r := execHelper(t, home, vars, "", "erase"); r.exit != 0 || count() != 0 {
		t.Fatalf("erase: exit %d, %d items left", r.exit, count())
	}
	figure(t, "keyring kills mid-flight %d (done before the signal %d; a refreshing get takes %s here): next get worked %d, refresh tokens lost between rotation and save %d, torn sets 0; items of the profile left in the keyring: %d",
		killed, finished, took.Round(time.Millisecond/10), nextOK, burned, items)
}
