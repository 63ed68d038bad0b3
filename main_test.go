package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// binary is the helper built once for the tests that exec it.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if how := os.Getenv("PCH_COLD_ENCODE"); how != "" { // a child of BenchmarkColdAnswerEncoding
		coldEncodeChild(how)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "pch-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "prusa-credential-helper")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	out, err := exec.Command("go", "build", "-tags", "nethttpomithttp2", "-o", binary, ".").CombinedOutput() // as install.sh builds it
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the helper: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the helper did.
type result struct {
	stdout, stderr string
	exit           int
}

// execHelper runs the built binary with a clean environment: only PATH, a
// temp HOME and XDG_CONFIG_HOME, no session bus (so auto means the file
// store), plus vars. It runs in a new session, with no controlling
// terminal, as CI does.
func execHelper(t *testing.T, home string, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	return execHelperAs(t, nil, home, vars, stdin, args...)
}

// execHelperAs is execHelper with the binary run through a wrapper
// command, such as setpriv to run it as another user (nil: none).
func execHelperAs(t *testing.T, wrapper []string, home string, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append(append(slices.Clone(wrapper), binary), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	detach(cmd)
	err := cmd.Run()
	exit := 0
	if ee, ok := err.(*exec.ExitError); ok {
		exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running the helper: %v", err)
	}
	return result{stdout.String(), stderr.String(), exit}
}

// storeIn writes v, as JSON, as the profile's file of the file store under
// config (the folder that holds prusa-credential-helper/), and returns the
// bytes written.
func storeIn(tb testing.TB, config, profile string, v any) []byte {
	tb.Helper()
	b, _ := json.Marshal(v)
	dir := filepath.Join(config, prog)
	os.MkdirAll(dir, 0o700)
	if err := os.WriteFile(filepath.Join(dir, profile+".json"), b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return b
}

// inProcess runs the helper inside the test process: its environment
// variables, config folder, clock and terminal are the test's.
type inProcess struct {
	env            *env
	ctx            context.Context // nil: context.Background()
	stdout, stderr bytes.Buffer
}

// newInProcess builds one; tty nil means there is no terminal.
func newInProcess(config string, vars map[string]string, now func() time.Time, tty terminal) *inProcess {
	p := &inProcess{}
	p.env = &env{
		stdout: &p.stdout, stderr: &p.stderr,
		getenv:          func(k string) string { return vars[k] },
		now:             now,
		configDir:       func() string { return config },
		stdinIsTerminal: func() bool { return false },
		openTerminal: func() (terminal, error) {
			if tty == nil {
				return nil, errors.New("no terminal")
			}
			return tty, nil
		},
	}
	return p
}

// run runs one command line with stdin and returns its exit code; stdout
// and stderr hold what it printed.
func (p *inProcess) run(stdin string, args ...string) int {
	p.stdout.Reset()
	p.stderr.Reset()
	p.env.args, p.env.stdin = args, strings.NewReader(stdin)
	ctx := p.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return runEnv(ctx, p.env)
}

// jwtFor builds a canary JWT: fixed claims, a recognisable signature.
func jwtFor(claims map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	c, _ := json.Marshal(claims)
	return enc([]byte(`{"alg":"RS256","kid":"`+fmt.Sprint(claims["jti"])+`","typ":"JWT"}`)) + "." + enc(c) + "." + enc([]byte("CANARY-SIGNATURE-"+fmt.Sprint(claims["jti"])))
}

// canarySet is a deterministic token set for golden tests.
func canarySet(accessExp, refreshExp time.Time) map[string]any {
	sid := "5e55b0a1-0000-4000-8000-000000000001"
	return map[string]any{
		"access_token":       jwtFor(map[string]any{"jti": "CANARY-access", "sub": "1530681", "exp": accessExp.Unix(), "sid": sid, "app": "connect", "type": "access", "connect_id": "42"}),
		"refresh_token":      jwtFor(map[string]any{"jti": "CANARY-refresh", "sub": "1530681", "exp": refreshExp.Unix(), "sid": sid, "app": "connect", "type": "refresh"}),
		"id_token":           jwtFor(map[string]any{"jti": "CANARY-id", "sub": "1530681", "exp": accessExp.Unix(), "aud": "client", "iss": "https://account.prusa3d.com", "user": map[string]any{"id": 1530681, "email": "canary@example.com"}}),
		"expires_in":         7200,
		"token_type":         "Bearer",
		"scope":              "basic_info connect user_operations email_lists openid",
		"shared_session_key": sid,
	}
}

// assertNoTokens fails when text holds any JWT of set, or one of its parts.
func assertNoTokens(t *testing.T, where, text string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		for _, part := range strings.Split(tok, ".") {
			if len(part) >= 8 && strings.Contains(text, part) {
				t.Errorf("%s holds (part of) a token", where)
			}
		}
	}
}

func setTokens(set map[string]any) []string {
	var out []string
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if v, ok := set[k].(string); ok {
			out = append(out, v)
		}
	}
	return out
}
