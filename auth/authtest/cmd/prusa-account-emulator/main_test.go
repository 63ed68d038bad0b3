package main

import (
	"bufio"
	"context"
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// syncBuffer is a strings.Builder safe to write from the program's
// goroutine while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProgram runs the program with args and returns its URL (the first
// line of stdout), its stderr and a stop function that checks it exits 0.
func startProgram(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, pw, stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no URL printed: %v (stderr %q)", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d", code)
		}
	})
	base := strings.TrimSuffix(line, "\n")
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.ContainsAny(base, " \t") {
		t.Fatalf("first line of stdout = %q, want the URL alone", line)
	}
	return base, stderr
}

func TestEmulatorProgram(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	base, stderr := startProgram(t, "--addr", "127.0.0.1:0", "--user", "a@b.c:CANARY", "--user", "t@b.c:CANARY-pw:"+secret)
	c := &auth.Client{AccountURL: base, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "test"}
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	totp, _ := auth.TOTPFromSecret(secret, nil, nil, nil)
	if _, err := c.Login(lctx, auth.LoginInput{Email: "t@b.c", Password: "CANARY-pw", TOTP: totp}); err != nil {
		t.Fatalf("login against the program: %v", err)
	}
	want := "serving " + base + " with a@b.c, t@b.c (2FA)\nlog in with (with PRUSA_PASSWORD set, and PRUSA_TOTP_SECRET for 2FA, or at the prompts):\n  PRUSA_ACCOUNT_URL=" + base + " PRUSA_EMAIL=a@b.c prusa-credential-helper login --store file\nthen get a token with:\n  PRUSA_ACCOUNT_URL=" + base + " prusa-credential-helper get --store file\n"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(stderr.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) { // it is written just after the URL
			t.Fatalf("stderr %q, want %q", stderr.String(), want)
		}
	}
	if strings.Contains(stderr.String(), "CANARY") || strings.Contains(stderr.String(), secret) {
		t.Fatal("a password or secret of --user shows on stderr")
	}
}

func TestEmulatorProgramUsage(t *testing.T) {
	for _, args := range [][]string{{"--user", ":CANARY-pw"}, {"--user", "a@b.c:x", "CANARY-extra"}, {"--user", "nocolon"}, {"--user", "a@b.c:x", "--next", "weird"}, {"--user", "a@b.c:x", "--addr", "0.0.0.0:0"}, {"--clock-offset", "3 hours"}, {"--nope"}, {"extra"}, {"--user", "a@b.c:CANARY-pw:notbase32!"}} {
		var out, errw strings.Builder
		code := run(context.Background(), args, &out, &errw)
		if code != 2 || out.Len() != 0 || errw.Len() == 0 || strings.Count(errw.String(), "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", args, code, out.String(), errw.String())
		}
		if strings.Contains(errw.String(), "CANARY") {
			t.Errorf("%q: stderr %q echoes a password or an argument", args, errw.String())
		}
	}
}

func TestEmulatorProgramHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		var out, errw strings.Builder
		if code := run(context.Background(), []string{arg}, &out, &errw); code != 0 {
			t.Errorf("%s: exit %d, want 0", arg, code)
		}
		for _, want := range []string{"Usage: prusa-account-emulator", "-user", "-next", "-clock-offset", "/_emulator/clock"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: usage lacks %q:\n%s", arg, want, out.String())
			}
		}
	}
}

// TestEmulatorProgramDemo starts the program with no --user, takes the
// login command it prints, runs it in a shell with the helper built from
// this module, and gets a token with the get command it prints.
func TestEmulatorProgramDemo(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the helper: %v", err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("a POSIX shell is needed to paste the printed command: %v", err)
	}
	bin := t.TempDir()
	build := exec.Command(goBin, "build", "-tags", "nethttpomithttp2", "-o", filepath.Join(bin, "prusa-credential-helper"), ".")
	build.Dir = "../../../.." // the module root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the helper: %v\n%s", err, out)
	}

	base, stderr := startProgram(t)
	login, get := "", ""
	deadline := time.Now().Add(10 * time.Second)
	for login == "" || get == "" {
		lines := strings.Split(stderr.String(), "\n")
		for i, l := range lines {
			if i+1 < len(lines) && l == "log in with:" {
				login = strings.TrimSpace(lines[i+1])
			}
			if i+1 < len(lines) && l == "then get a token with:" {
				get = strings.TrimSpace(lines[i+1])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login and get commands on stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{demoEmail, demoPassword, demoSecret, base} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	want := "PRUSA_ACCOUNT_URL=" + base + " PRUSA_EMAIL=" + demoEmail + " PRUSA_PASSWORD=" + demoPassword + " PRUSA_TOTP_SECRET=" + demoSecret + " prusa-credential-helper login --store file"
	if login != want {
		t.Errorf("login command\n%s\nwant\n%s", login, want)
	}

	home := t.TempDir()
	paste := func(line string) (string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sh, "-c", line)
		cmd.Env = []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
		cmd.Stdin = strings.NewReader("")
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\nstderr: %s", line, err, errb.String())
		}
		return out.String(), errb.String()
	}
	paste(login)
	out, _ := paste(get)
	var ans struct {
		Success     bool   `json:"success"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(out), &ans); err != nil || !ans.Success || ans.AccessToken == "" {
		t.Fatalf("get answered %d bytes that are no successful token answer (%v)", len(out), err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me/", nil)
	req.Header.Set("Authorization", "Bearer "+ans.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the token from get: /api/v1/me/ answered %d", resp.StatusCode)
	}
}

// TestEmulatorProgramClock checks --clock-offset and the control endpoint.
func TestEmulatorProgramClock(t *testing.T) {
	base, _ := startProgram(t, "--clock-offset", "3h", "--user", "a@b.c:x")
	serverTime := func(resp *http.Response) time.Time {
		t.Helper()
		d, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
		}
		return d
	}
	near := func(got time.Time, offset time.Duration) bool {
		d := got.Sub(time.Now().Add(offset))
		return d > -5*time.Second && d < 5*time.Second
	}
	resp, err := http.Get(base + "/login/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := serverTime(resp); !near(got, 3*time.Hour) {
		t.Fatalf("with --clock-offset 3h the Date header is %v (local time %v)", got, time.Now().UTC())
	}
	resp, err = http.Post(base+"/_emulator/clock?offset=-3h", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Offset, Now string }
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || st.Offset != "-3h0m0s" {
		t.Fatalf("POST /_emulator/clock: %d %+v %v", resp.StatusCode, st, err)
	}
	resp, err = http.Get(base + "/o/token/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := serverTime(resp); !near(got, -3*time.Hour) {
		t.Fatalf("after offset=-3h the Date header is %v (local time %v)", got, time.Now().UTC())
	}
	resp, err = http.Post(base+"/_emulator/clock?offset=soon", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad offset: %d, want 400", resp.StatusCode)
	}
}

// TestEmulatorProgramDocListsEveryFlag keeps the package doc comment (which
// the docs copy) in step with the flags the program defines.
func TestEmulatorProgramDocListsEveryFlag(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil || f.Doc == nil {
		t.Fatalf("no package doc comment in main.go: %v", err)
	}
	doc := f.Doc.Text()
	var out, errw strings.Builder
	run(context.Background(), []string{"--help"}, &out, &errw)
	flags := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		name := strings.Fields(line)[0][1:]
		flags++
		if !strings.Contains(doc, "--"+name+" ") && !strings.Contains(doc, "--"+name+"\n") {
			t.Errorf("the package doc does not list --%s", name)
		}
	}
	if flags < 11 {
		t.Fatalf("found %d flags in the usage, want at least 11:\n%s", flags, out.String())
	}
	if !strings.Contains(doc, "/_emulator/clock") {
		t.Error("the package doc does not list the control endpoint")
	}
}
