package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// fakeTerminal answers prompts from a script and records what was shown.
type fakeTerminal struct {
	answers map[string][]string // prompt prefix → answers, in order
	shown   strings.Builder
	secret  []string // prompts asked without echo
	closed  bool
}

func (f *fakeTerminal) answer(prompt string) (string, error) {
	f.shown.WriteString(prompt)
	for p, as := range f.answers {
		if strings.HasPrefix(prompt, p) && len(as) > 0 {
			f.answers[p] = as[1:]
			return as[0], nil
		}
	}
	return "", errors.New("no answer scripted")
}

func (f *fakeTerminal) Prompt(_ context.Context, p string) (string, error) { return f.answer(p) }
func (f *fakeTerminal) PromptSecret(_ context.Context, p string) (string, error) {
	f.secret = append(f.secret, p)
	return f.answer(p)
}
func (f *fakeTerminal) Println(msg string) { f.shown.WriteString(msg + "\n") }
func (f *fakeTerminal) Close() error       { f.closed = true; return nil }

// TestInteractiveLogin answers the prompts on a (fake) terminal: the email,
// the password without echo, and a TOTP code that is wrong twice, then
// right.
func TestInteractiveLogin(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	key, _ := auth.DecodeTOTPSecret(userTOTPSecret)
	good := auth.TOTP(key, auth.TOTPStep(time.Now()), 6)
	tty := &fakeTerminal{answers: map[string][]string{
		"Prusa Account email": {userEmail},
		"Password for":        {userPassword},
		"TOTP code":           {"000000", "111111", good},
	}}
	config := t.TempDir()
	p := newInProcess(config, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL}, time.Now, tty)
	exit := p.run("", "login", "--store", "file")
	stdout, stderr := &p.stdout, &p.stderr
	if exit != 0 || stdout.Len() != 0 || stderr.String() != "Logged in as canary@example.com (profile default, stored in file)\n" {
		t.Fatalf("exit %d stdout %q stderr %q", exit, stdout.String(), stderr.String())
	}
	if len(tty.secret) != 1 || !strings.HasPrefix(tty.secret[0], "Password for canary@example.com") {
		t.Fatalf("the password was not asked without echo: %q", tty.secret)
	}
	if got := strings.Count(tty.shown.String(), "invalid TOTP code, try again (a code works once: after a login in this 30 s step, wait for the next one)"); got != 2 {
		t.Fatalf("%d retries announced, want 2", got)
	}
	if srv.Count(authtest.KindTOTPPost) != 3 || !tty.closed {
		t.Fatalf("%d TOTP posts, terminal closed %v", srv.Count(authtest.KindTOTPPost), tty.closed)
	}
	if _, err := os.Stat(filepath.Join(config, prog, "default.json")); err != nil {
		t.Fatal("nothing stored")
	}
	if strings.Contains(stderr.String()+stdout.String(), userPassword) || strings.Contains(stderr.String(), good) {
		t.Fatal("a secret reached stdout or stderr")
	}
}

// TestInteractiveLoginGivesUp: three wrong codes end the login with exit 4.
func TestInteractiveLoginGivesUp(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	tty := &fakeTerminal{answers: map[string][]string{"TOTP code": {"000000", "111111", "222222", "333333"}}}
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword}
	p := newInProcess(t.TempDir(), vars, time.Now, tty)
	exit := p.run("", "login", "--store", "file")
	stderr := &p.stderr
	if exit != 4 || !strings.HasPrefix(stderr.String(), "prusa-credential-helper: invalid TOTP code\nhint: a code works once") || srv.Count(authtest.KindTOTPPost) != 3 {
		t.Fatalf("exit %d stderr %q posts %d", exit, stderr.String(), srv.Count(authtest.KindTOTPPost))
	}
}

// blockingTerminal never answers: a user who has not typed yet. started
// is closed when the first prompt is shown.
type blockingTerminal struct {
	fakeTerminal
	started chan struct{}
}

func (b *blockingTerminal) wait(ctx context.Context) (string, error) {
	close(b.started)
	<-ctx.Done()
	return "", ctx.Err()
}
func (b *blockingTerminal) Prompt(ctx context.Context, _ string) (string, error) { return b.wait(ctx) }
func (b *blockingTerminal) PromptSecret(ctx context.Context, _ string) (string, error) {
	return b.wait(ctx)
}

// TestLoginInterruptedAtPrompt: an interrupt at a prompt ends login at
// once (no waiting for Enter), stores nothing and contacts no server.
func TestLoginInterruptedAtPrompt(t *testing.T) {
	for _, missing := range []string{"email", "password"} {
		t.Run(missing, func(t *testing.T) {
			srv := newServer(t, authtest.Options{})
			vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}
			delete(vars, map[string]string{"email": "PRUSA_EMAIL", "password": "PRUSA_PASSWORD"}[missing])
			tty := &blockingTerminal{started: make(chan struct{})}
			config := t.TempDir()
			p := newInProcess(config, vars, time.Now, tty)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { <-tty.started; cancel() }() // the user presses Ctrl-C at the prompt
			p.ctx = ctx
			exit := p.run("", "login", "--store", "file")
			if exit != 130 || p.stderr.String() != "prusa-credential-helper: interrupted\n" || p.stdout.Len() != 0 {
				t.Fatalf("exit %d stdout %q stderr %q", exit, p.stdout.String(), p.stderr.String())
			}
			if n := srv.Count(authtest.KindAuthorize) + srv.Count(authtest.KindLoginPost); n != 0 {
				t.Fatalf("%d requests to the server", n)
			}
			if _, err := os.Stat(filepath.Join(config, prog, "default.json")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("something stored: %v", err)
			}
		})
	}
}

// interruptedOnceSent makes srv carry out its next token request but answer
// it late, and returns a context cancelled (an interrupt) as soon as srv
// has a request of kind: while the answer is on its way.
func interruptedOnceSent(t *testing.T, srv *authtest.Server, kind authtest.Kind) context.Context {
	srv.FailToken(authtest.Fault{AfterProcessing: true, Pass: true, Delay: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for srv.Count(kind) == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	return ctx
}

// TestLoginInterruptedAfterTheCodeExchange: an interrupt once the code
// exchange is out no longer loses the login: the code is spent, so the
// answer is read and the set saved, and login succeeds.
func TestLoginInterruptedAfterTheCodeExchange(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}
	config := t.TempDir()
	p := newInProcess(config, vars, time.Now, nil)
	ctx := interruptedOnceSent(t, srv, authtest.KindTokenCode) // the user presses Ctrl-C while the answer is on its way
	p.ctx = ctx
	if exit := p.run("", "login", "--store", "file"); exit != 0 || !strings.Contains(p.stderr.String(), "Logged in as") {
		t.Fatalf("exit %d stderr %q; want the login saved", exit, p.stderr.String())
	}
	var set auth.TokenSet
	b, _ := os.ReadFile(filepath.Join(config, prog, "default.json"))
	if err := json.Unmarshal(b, &set); err != nil || !srv.ValidRefreshToken(set.RefreshToken) || ctx.Err() == nil {
		t.Fatalf("stored: %v; want the login's live set, saved after the interrupt", err)
	}
}

// TestRefreshInterruptedOnceSentHandsTheSetOn: a refresh interrupted
// while its request is out saves the new set and runs the save command
// with it (on an ephemeral CI runner that command's copy is the one that
// lives on), exit 0, without an "interrupted" warning.
func TestRefreshInterruptedOnceSentHandsTheSetOn(t *testing.T) {
	needSh(t)
	srv := newServer(t, authtest.Options{})
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}
	config := t.TempDir()
	if p := newInProcess(config, vars, time.Now, nil); p.run("", "login", "--store", "file") != 0 {
		t.Fatalf("login: %s", p.stderr.String())
	}
	out := filepath.Join(t.TempDir(), "handed-on.json")
	p := newInProcess(config, vars, time.Now, nil)
	ctx := interruptedOnceSent(t, srv, authtest.KindTokenRefresh) // the job is cancelled while the answer is on its way
	p.ctx = ctx
	exit := p.run("", "refresh", "--store", "file", "--save-command", `sh -c 'cat > "$1"' sh `+out)
	var handed auth.TokenSet
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &handed); exit != 0 || err != nil || !srv.ValidRefreshToken(handed.RefreshToken) || ctx.Err() == nil || strings.Contains(p.stderr.String(), "interrupted") {
		t.Fatalf("exit %d, handed on %d bytes (%v), stderr %q; want the live set handed on", exit, len(b), err, p.stderr.String())
	}
}

// TestServerEchoesNotLogged: a server (or something on the way) that
// sends, after its answer, bytes echoing the login's form on the idle
// connection makes Go's HTTP client log them: the helper shows none.
func TestServerEchoesNotLogged(t *testing.T) {
	var state string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet:
			state = r.URL.Query().Get("state")
			io.WriteString(w, `<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="x"><input name="email"><input type="password" name="password"></form>`)
		case r.URL.Path == "/o/token/":
			time.Sleep(200 * time.Millisecond) // the client's reader sees the echo meanwhile
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error": "invalid_grant"}`)
		default:
			body, _ := io.ReadAll(r.Body)
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 302 Found\r\nLocation: %s?code=c&state=%s\r\nContent-Length: 0\r\n\r\necho %s", auth.DefaultRedirectURI, state, body)
			buf.Flush()
			time.Sleep(500 * time.Millisecond)
		}
	}))
	defer hs.Close()
	r := execHelper(t, t.TempDir(), map[string]string{"PRUSA_ACCOUNT_URL": hs.URL, "PRUSA_EMAIL": "echo@example.com", "PRUSA_PASSWORD": "CANARY-echoed-pw"}, "", "login", "--store", "file")
	if r.exit == 0 || strings.Contains(r.stderr, "CANARY") || strings.Contains(r.stderr, "echo@example.com") || strings.Contains(r.stderr, "Unsolicited") {
		t.Fatalf("exit %d stderr %q: want a failed login that shows nothing the server echoed", r.exit, r.stderr)
	}
}

// TestLoginChecksTheFileStoreFirst: a file store that cannot take the set
// (its directory is a file here; a read-only one does the same for a
// user) fails login before any request: no session is made only to be
// lost.
func TestLoginChecksTheFileStoreFirst(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	config := filepath.Join(home, ".config")
	os.MkdirAll(config, 0o700)
	if err := os.WriteFile(filepath.Join(config, prog), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, store := range []string{"file", "auto"} {
		r := execHelper(t, home, map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}, "", "login", "--store", store)
		if r.exit != 1 || !strings.Contains(r.stderr, filepath.Join(config, prog)) {
			t.Fatalf("--store %s: exit %d stderr %q; want storage_error naming the store", store, r.exit, r.stderr)
		}
		if n := srv.Count(authtest.KindAuthorize) + srv.Count(authtest.KindLoginPost); n != 0 {
			t.Fatalf("--store %s: %d requests to the server before the store was found unusable", store, n)
		}
	}
}

// TestLoginSaysItReplacedAnotherAccount: a login into a profile that held
// another account's tokens says so; a login as the same account does not.
func TestLoginSaysItReplacedAnotherAccount(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	home := t.TempDir()
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file", "PRUSA_PASSWORD": userPassword}
	login := func(email string) string {
		t.Helper()
		vars["PRUSA_EMAIL"] = email
		r := execHelper(t, home, vars, "", "login")
		if r.exit != 0 {
			t.Fatalf("login as %s: %d %s", email, r.exit, r.stderr)
		}
		return r.stderr
	}
	if out := login("plain@example.com"); strings.Contains(out, "note:") {
		t.Errorf("a first login: %q", out)
	}
	if out := login("plain@example.com"); strings.Contains(out, "note:") {
		t.Errorf("a login as the same account: %q", out)
	}
	vars["PRUSA_TOTP_SECRET"] = userTOTPSecret
	if out := login(userEmail); !strings.Contains(out, "note: profile default held the tokens of plain@example.com (user ") || !strings.Contains(out, "which this login replaced") {
		t.Errorf("a login as another account: %q", out)
	}
}

// TestUserAgent: every request, of a login and of a refresh, carries the
// User-Agent prusa-credential-helper/<version>, exactly.
func TestUserAgent(t *testing.T) {
	srv := newServer(t, authtest.Options{AccessTTL: 30 * time.Second})
	home := t.TempDir()
	vars := map[string]string{"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CREDENTIAL_STORE": "file", "PRUSA_EMAIL": userEmail, "PRUSA_PASSWORD": userPassword, "PRUSA_TOTP_SECRET": userTOTPSecret}
	if r := execHelper(t, home, vars, "", "login"); r.exit != 0 {
		t.Fatalf("login: %d %s", r.exit, r.stderr)
	}
	if r := execHelper(t, home, vars, "", "get"); r.exit != 0 {
		t.Fatalf("refreshing get: %d %s", r.exit, r.stderr)
	}
	v := execHelper(t, home, nil, "", "version", "--json")
	var ver struct{ Version string }
	if err := json.Unmarshal([]byte(v.stdout), &ver); err != nil || ver.Version == "" {
		t.Fatalf("version --json: %q %v", v.stdout, err)
	}
	reqs := srv.Requests()
	if srv.Count(authtest.KindTokenRefresh) != 1 || len(reqs) < 5 {
		t.Fatalf("%d requests, %d refreshes: want a login and a refresh", len(reqs), srv.Count(authtest.KindTokenRefresh))
	}
	for _, r := range reqs {
		if ua := r.Header.Get("User-Agent"); ua != prog+"/"+ver.Version {
			t.Errorf("%s %s: User-Agent %q, want %q", r.Method, r.Path, ua, prog+"/"+ver.Version)
		}
	}
}

// TestLoginRefusedRequest: a login page that answers 400 or 404 (an
// account URL with a path, a wrong client ID) is no passing trouble of the
// server: internal (exit 1), with a hint that names the settings, not
// "retry later" (75).
func TestLoginRefusedRequest(t *testing.T) {
	srv := newServer(t, authtest.Options{})
	for name, vars := range map[string]map[string]string{
		"account URL with a path": {"PRUSA_ACCOUNT_URL": srv.URL + "/login/"},
		"wrong client ID":         {"PRUSA_ACCOUNT_URL": srv.URL, "PRUSA_CLIENT_ID": "bogus"},
	} {
		vars["PRUSA_EMAIL"], vars["PRUSA_PASSWORD"], vars["PRUSA_TOTP_SECRET"] = userEmail, userPassword, userTOTPSecret
		r := execHelper(t, t.TempDir(), vars, "", "login", "--store", "file")
		if r.exit != 1 || !strings.Contains(r.stderr, "the account server refused the request") || !strings.Contains(r.stderr, "\nhint: check the account URL") {
			t.Errorf("%s: exit %d, stderr %q; want 1 and a hint naming the settings", name, r.exit, r.stderr)
		}
		assertNoTokens(t, name, r.stderr, userPassword)
	}
}
