package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "  \t\n ", want: nil},
		{in: "gh secret set PRUSA_TOKENS_JSON", want: []string{"gh", "secret", "set", "PRUSA_TOKENS_JSON"}},
		{in: "  a   b\tc\nd  ", want: []string{"a", "b", "c", "d"}},
		{in: `sh -c 'cat > "$HOME/x"'`, want: []string{"sh", "-c", `cat > "$HOME/x"`}},
		{in: `a 'b c' "d e"`, want: []string{"a", "b c", "d e"}},
		{in: `a'b'"c"d`, want: []string{"abcd"}},
		{in: `'' ""`, want: []string{"", ""}},
		{in: `a\ b`, want: []string{"a b"}},
		{in: `a\|b \$x \'`, want: []string{"a|b", "$x", "'"}},
		{in: "a\\\nb", want: []string{"ab"}},
		{in: `"a\\b\"c\$d\` + "`" + `e"`, want: []string{`a\b"c$d` + "`" + "e"}},
		{in: `"a\nb\x"`, want: []string{`a\nb\x`}}, // other backslashes stay in double quotes
		{in: "\"a\\\nb\"", want: []string{"ab"}},
		{in: `'a\b'`, want: []string{`a\b`}},
		{in: `'$x | y'`, want: []string{"$x | y"}},
		{in: `"| > < & ; ( )"`, want: []string{"| > < & ; ( )"}},
		{in: `cp /dev/stdin ~/x* ?`, want: []string{"cp", "/dev/stdin", "~/x*", "?"}}, // no globbing or tilde
		{in: "/bin/saver a#b #c", want: []string{"/bin/saver", "a#b"}},
		{in: "a #c | d\nb # e", want: []string{"a", "b"}}, // a comment ends at the newline
		{in: "#all a comment", want: nil},
		{in: `a \#b '#c' "#d" ''#e`, want: []string{"a", "#b", "#c", "#d", "#e"}},
		{in: "a#", want: []string{"a#"}},
		{in: `a 'b`, wantErr: "unterminated single quote"},
		{in: `a "b`, wantErr: "unterminated double quote"},
		{in: `a "b\"`, wantErr: "unterminated double quote"},
		{in: `a\`, wantErr: "a backslash ends the command"},
		{in: `cat | tee x`, wantErr: "unquoted |"},
		{in: `cat > x`, wantErr: "unquoted >"},
		{in: `cat < x`, wantErr: "unquoted <"},
		{in: `a; b`, wantErr: "unquoted ;"},
		{in: `a && b`, wantErr: "unquoted &"},
		{in: `(a)`, wantErr: "unquoted ("},
		// No expansion: as written, and inside quotes whatever they hold.
		{in: `echo $HOME "$HOME/x" $ a$`, want: []string{"echo", "$HOME", "$HOME/x", "$", "a$"}},
		{in: "echo \"`id -u` $(a b) ${A:-a b}\" '`x`'", want: []string{"echo", "`id -u` $(a b) ${A:-a b}", "`x`"}},
		// A shell reads these as one word, spaces and all: refused.
		{in: "echo `a b`", wantErr: "unquoted `"},
		{in: `echo $(a b)`, wantErr: "unquoted $("},
		{in: `echo ${A:-a b}`, wantErr: "unquoted ${"},
		{in: `sh -c "cat > \"$DIR/set.json\""`, want: []string{"sh", "-c", `cat > "$DIR/set.json"`}},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: %q, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// runSave runs a save command on a canary set and returns the warnings.
func runSave(t *testing.T, timeout time.Duration, argv ...string) (*auth.TokenSet, []string) {
	t.Helper()
	set, warnings, _ := runSaveDebug(t, timeout, argv...)
	return set, warnings
}

// canaryTokenSet is canarySet (valid for an hour, its refresh token for a
// day) as the helper holds it.
func canaryTokenSet(t *testing.T) *auth.TokenSet {
	t.Helper()
	b, _ := json.Marshal(canarySet(time.Now().Add(time.Hour), time.Now().Add(24*time.Hour)))
	set, err := auth.ParseTokenSet(b)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// runSaveDebug is runSave with --debug: it returns the debug lines too.
func runSaveDebug(t *testing.T, timeout time.Duration, argv ...string) (*auth.TokenSet, []string, []string) {
	t.Helper()
	set := canaryTokenSet(t)
	var warnings, debug []string
	sc := &saveCommand{argv: argv, timeout: timeout,
		warn:   func(m string) { warnings = append(warnings, m) },
		debugf: func(format string, args ...any) { debug = append(debug, fmt.Sprintf(format, args...)) }}
	sc.run(context.Background(), set)
	return set, warnings, debug
}

func needSh(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh on this system to run a save command with")
	}
}

// TestSaveCommandGetsTheSet: the command reads the set, as JSON, on stdin.
func TestSaveCommandGetsTheSet(t *testing.T) {
	needSh(t)
	out := filepath.Join(t.TempDir(), "saved.json")
	set, warnings := runSave(t, 0, "sh", "-c", `cat > "$1"`, "sh", out)
	if len(warnings) != 0 {
		t.Fatalf("warnings: %q", warnings)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(set)
	if string(got) != string(want) {
		t.Fatalf("the command got %d bytes, not the set's %d", len(got), len(want))
	}
}

// TestSaveCommandGetsNoSecrets: the command inherits the environment but
// for the variables that hold secrets (a password, a TOTP secret or code,
// tokens, etcd's user:password): the new set on stdin is all it needs, and
// what it prints on stderr may reach a warning.
func TestSaveCommandGetsNoSecrets(t *testing.T) {
	needSh(t)
	secrets := []string{"PRUSA_PASSWORD", "PRUSA_TOTP_SECRET", "PRUSA_TOTP_CODE", "PRUSA_TOKENS_JSON", "PRUSA_TOKEN", "PRUSA_ETCD_USER"}
	for _, name := range secrets {
		t.Setenv(name, "CANARY-"+name)
	}
	t.Setenv("PRUSA_PROFILE_OF_THE_JOB", "kept")
	out := filepath.Join(t.TempDir(), "env")
	if _, warnings := runSave(t, 0, "sh", "-c", `env > "$1"`, "sh", out); len(warnings) != 0 {
		t.Fatalf("warnings: %q", warnings)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(got), "\n") {
		if name, _, _ := strings.Cut(line, "="); strings.Contains(line, "CANARY") {
			t.Errorf("the save command inherited %s", name)
		}
	}
	if !strings.Contains(string(got), "PRUSA_PROFILE_OF_THE_JOB=kept") || !strings.Contains(string(got), "PATH=") {
		t.Fatal("the save command did not get the rest of the environment")
	}
}

// TestSaveCommandOutputNotPassedOn: a command that echoes the set on its
// stdout and stderr and fails leaks none of it: the warning is one line
// with its exit status, and nothing it wrote. With --debug, its stderr's
// first line shows, redacted.
func TestSaveCommandOutputNotPassedOn(t *testing.T) {
	needSh(t)
	set, warnings, debug := runSaveDebug(t, 0, "sh", "-c", `echo "gh: bad credentials"; echo CANARY-OUTPUT >&2; tr -d '\n' | tee /dev/stderr; echo; echo second line >&2; exit 3`)
	if len(warnings) != 1 {
		t.Fatalf("warnings: %q", warnings)
	}
	w := warnings[0]
	if w != "save command sh failed: exit status 3 (the tokens are saved in the store all the same)" {
		t.Fatalf("warning %q, want the exit status alone", w)
	}
	if len(debug) != 1 || debug[0] != "save command sh wrote on stderr: CANARY-OUTPUT" {
		t.Fatalf("debug: %q, want stderr's first line", debug)
	}
	// With a token first, it is redacted.
	set, _, debug = runSaveDebug(t, 0, "sh", "-c", `tr -d '\n' >&2; echo >&2; exit 3`)
	if len(debug) != 1 || !strings.Contains(debug[0], "<redacted>") {
		t.Fatalf("debug: %q, want a redacted line", debug)
	}
	assertNoTokens(t, "the debug line", debug[0], set.AccessToken, set.RefreshToken, set.IDToken)
	if strings.Contains(debug[0], set.SharedSessionKey) {
		t.Fatalf("the debug line leaks the set: %q", debug[0])
	}
}

// TestSaveCommandLongLineCutAfterRedacting: a first line longer than the
// debug line keeps is cut after the set's values are redacted, so a value
// that crosses the cut leaves no piece behind.
func TestSaveCommandLongLineCutAfterRedacting(t *testing.T) {
	needSh(t)
	set, _, debug := runSaveDebug(t, 0, "sh", "-c", `sid=$(sed -n 's/.*"shared_session_key":"\([^"]*\)".*/\1/p'); printf '%s%s\n' "$1" "$sid" >&2; exit 1`, "sh", strings.Repeat("no ", 64))
	if len(debug) != 1 {
		t.Fatalf("debug: %q", debug)
	}
	if strings.Contains(debug[0], set.SharedSessionKey[:8]) || !strings.Contains(debug[0], "no no") {
		t.Fatalf("debug line %q", debug[0])
	}
}

// TestRedact: what a failing save command prints keeps its words and loses
// every token of the set and whatever looks like a token.
func TestRedact(t *testing.T) {
	set := &auth.TokenSet{AccessToken: "CANARY-ACCESS", RefreshToken: "CANARY-REFRESH.lEpmTNq2rLA8J_5KxesH05kz", SharedSessionKey: "0b7c-CANARY-SESSION"}
	for _, c := range []struct{ in, want string }{
		{"gh: bad credentials (HTTP 401)", "gh: bad credentials (HTTP 401)"},
		{"cannot write /home/u/.config/prusa-credential-helper/default.json: v1.2.3", "cannot write /home/u/.config/prusa-credential-helper/default.json: v1.2.3"},
		{"got CANARY-ACCESS and CANARY-REFRESH, session 0b7c-CANARY-SESSION", "got <redacted> and <redacted>, session <redacted>"},
		{"bad token xeyJhbGciOi.e30.sig!", "bad token <redacted>!"},
		{"key=ABCDEFGHIJKLMNOPQRSTUVWX;", "key=<redacted>;"},
		{"key=ABCDEFGHIJKLMNOPQRSTUVW;", "key=ABCDEFGHIJKLMNOPQRSTUVW;"},
		{"part abcdefgh.ijklmnop end", "part <redacted> end"},
		{"part abcdefg.ijklmnop end", "part abcdefg.ijklmnop end"},
		{"a.abcdefgh.x.ijklmnop and abcdefgh.x.ijklmnop.ok", "a.abcdefgh.x.ijklmnop and abcdefgh.x.ijklmnop.ok"},
		{"été: ABCDEFGHIJKLMNOPQRSTUVWXYZ", "été: <redacted>"},
		{"the signature cut up: lEpmTNq2rLA8J_5K, then xesH05kz", "the signature cut up: <redacted>, then xesH05kz"},
		{"a piece: xxlEpmTNq2rLA8Jyy", "a piece: <redacted>"},
		{"11 characters are not a piece: lEpmTNq2rLA", "11 characters are not a piece: lEpmTNq2rLA"},
		{"", ""},
	} {
		if got := redact(c.in, set); got != c.want {
			t.Errorf("redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestSaveCommandTimeout: a command that does not end is killed at the
// timeout, and said so.
func TestSaveCommandTimeout(t *testing.T) {
	needSh(t)
	_, warnings := runSave(t, 200*time.Millisecond, "sh", "-c", "sleep 30")
	if len(warnings) != 1 || !strings.Contains(warnings[0], "killed after 200ms") {
		t.Fatalf("warnings: %q", warnings)
	}
}

// TestSaveCommandMissing: a command that is not installed is a warning.
func TestSaveCommandMissing(t *testing.T) {
	_, warnings := runSave(t, 0, "prusa-no-such-command-7f3a")
	if len(warnings) != 1 || !strings.Contains(warnings[0], "save command prusa-no-such-command-7f3a failed: not found") {
		t.Fatalf("warnings: %q", warnings)
	}
}

// TestSaveCommandOutlivesTheBudget: a get whose --timeout budget is spent
// by the time the set is saved still hands the set on, and so does a
// refresh interrupted before the command started (while its request was
// out); an interrupt while the command runs stops it.
func TestSaveCommandOutlivesTheBudget(t *testing.T) {
	needSh(t)
	set := canaryTokenSet(t)
	out := filepath.Join(t.TempDir(), "saved.json")
	var warnings []string
	sc := &saveCommand{argv: []string{"sh", "-c", `cat > "$1"`, "sh", out}, warn: func(m string) { warnings = append(warnings, m) }}
	spent, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	sc.run(spent, set)
	want, _ := json.Marshal(set)
	if got, err := os.ReadFile(out); err != nil || string(got) != string(want) || len(warnings) != 0 {
		t.Fatalf("after the budget: %d bytes (want %d), %v, warnings %q", len(got), len(want), err, warnings)
	}
	os.Remove(out)
	before, cancel := context.WithCancel(context.Background())
	cancel()
	sc.run(before, set)
	if got, err := os.ReadFile(out); err != nil || string(got) != string(want) || len(warnings) != 0 {
		t.Fatalf("after an interrupt before it: %d bytes (want %d), %v, warnings %q", len(got), len(want), err, warnings)
	}
	during, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	sc.argv = []string{"sh", "-c", "sleep 30"}
	sc.run(during, set)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "interrupted") {
		t.Fatalf("after an interrupt while it ran: warnings %q", warnings)
	}
}

// TestSaveHook: the hook of --save-command warns on stderr, on one line,
// and there is none without the setting.
func TestSaveHook(t *testing.T) {
	if c := newCLI(t, nil, nil, "get"); c.saveHook() != nil {
		t.Fatal("a hook without --save-command")
	}
	c := newCLI(t, nil, nil, "--save-command", "prusa-no-such-command-7f3a 'an arg'", "get")
	var stderr strings.Builder
	c.stderr = &stderr
	set := canaryTokenSet(t)
	c.saveHook()(context.Background(), set)
	if stderr.String() != prog+": warning: save command prusa-no-such-command-7f3a failed: not found (the tokens are saved in the store all the same)\n" {
		t.Fatalf("stderr %q", stderr.String())
	}
}
