package helper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// TestMain lets the test binary act as a helper process: the concurrency
// tests start many real OS processes of it.
func TestMain(m *testing.M) {
	if os.Getenv("HELPER_TEST_CHILD") == "get" {
		os.Exit(childGet())
	}
	os.Exit(m.Run())
}

// childGet runs one Get in mode HELPER_TEST_MODE against HELPER_TEST_URL,
// after a start signal, and prints the token.
func childGet() int {
	dir := os.Getenv("HELPER_TEST_DIR")
	mode := os.Getenv("HELPER_TEST_MODE")
	h := New(Config{
		Mode:      mode,
		Dir:       dir,
		NoKeyring: mode != ModeKeyring,
		Auth:      &auth.Client{AccountURL: os.Getenv("HELPER_TEST_URL"), ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "test"},
	})
	fmt.Println("ready")
	for {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := h.Get(ctx, "default", 0, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Println(tok.AccessToken)
	return 0
}

// runConcurrentGets starts n processes that call Get at the same instant
// and returns what each printed.
func runConcurrentGets(t *testing.T, n int, dir, url, mode string) []string {
	t.Helper()
	type proc struct {
		cmd    *exec.Cmd
		out    *bufio.Reader
		stderr *strings.Builder
	}
	procs := make([]proc, n)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "HELPER_TEST_CHILD=get", "HELPER_TEST_DIR="+dir, "HELPER_TEST_URL="+url, "HELPER_TEST_MODE="+mode)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = proc{cmd, bufio.NewReader(stdout), &stderr}
	}
	for _, p := range procs {
		if line, err := p.out.ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("child did not start: %q %v", line, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	outs := make([]string, n)
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			b, _ := io.ReadAll(p.out)
			if err := p.cmd.Wait(); err != nil {
				t.Errorf("child %d: %v: %s", i, err, p.stderr.String())
			}
			outs[i] = strings.TrimSpace(string(b))
		})
	}
	wg.Wait()
	os.Remove(filepath.Join(dir, "go"))
	return outs
}

// TestConcurrentGetsRefreshOnce: 32 processes call get at once on an
// expired token: one refresh request, and all print the same new token.
func TestConcurrentGetsRefreshOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 32 processes")
	}
	e := newEnv(t, ModeFile, authtest.Options{})
	old := e.mint(-time.Minute)
	e.store("default", old)
	outs := runConcurrentGets(t, 32, e.dir, e.srv.URL, ModeFile)
	checkOneRefresh(t, e, outs, old)
	stored, _, err := e.h.file.Get(context.Background(), "default")
	if err != nil || stored.AccessToken != outs[0] {
		t.Fatalf("stored set is not the printed one: %v", err)
	}
}

func checkOneRefresh(t *testing.T, e *env, outs []string, old *auth.TokenSet) {
	t.Helper()
	if n := e.srv.Count(authtest.KindTokenRefresh); n != 1 {
		t.Fatalf("%d refresh requests, want exactly 1", n)
	}
	for i, o := range outs {
		if o != outs[0] {
			t.Fatalf("process %d printed another token", i)
		}
	}
	if outs[0] == old.AccessToken || !e.srv.ValidAccessToken(outs[0]) {
		t.Fatal("the printed token is not the refreshed one")
	}
}
