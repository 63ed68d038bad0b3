package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// saveCommandTimeout is how long a --save-command may run.
const saveCommandTimeout = 30 * time.Second

// splitWords splits a --save-command into words the way a POSIX shell
// does, but with no expansion of any kind, so that the command can be run
// without a shell:
//
//   - words are separated by unquoted spaces, tabs and newlines;
//   - 'single quotes' keep everything inside as it is;
//   - "double quotes" keep everything inside as it is, except that \\, \",
//     \$ and \` stand for the character after the backslash, and a
//     backslash before a newline removes both;
//   - outside quotes, a backslash keeps the next character as it is (and a
//     backslash before a newline removes both);
//   - an unquoted # at the start of a word begins a comment: the rest of
//     the line is ignored (a # inside a word, a#b, is part of it).
//
// Nothing is expanded: $NAME, globs (* ? [) and ~ are passed as they are,
// and so is everything inside quotes. What a shell would split otherwise
// than these rules do, or not pass on as words at all, is refused when not
// quoted or escaped, rather than passed on where a shell's meaning was
// meant: the operators | & ; < > ( ), and ` $( ${, whose substitutions a
// shell reads as one word whatever spaces they hold. A user who wants a
// shell writes sh -c '…'.
func splitWords(s string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	end := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			end()
		case c == '#' && !inWord:
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				j = len(s) - i
			}
			i += j // the newline, or the end
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("a backslash ends the command")
			}
			i++
			if s[i] != '\n' {
				word.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			word.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += 1 + j
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				c := s[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`\n", s[i+1]) >= 0 {
					i++
					if s[i] != '\n' {
						word.WriteByte(s[i])
					}
					continue
				}
				word.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("unterminated double quote")
			}
		case c == '`' || c == '$' && strings.HasPrefix(s[i+1:], "(") || c == '$' && strings.HasPrefix(s[i+1:], "{"):
			what := s[i : i+1]
			if c == '$' {
				what = s[i : i+2]
			}
			return nil, fmt.Errorf("unquoted %s: a shell would substitute it, as one word whatever spaces it holds; nothing is substituted here (quote it, or use sh -c '…')", what)
		case strings.IndexByte("|&;<>()", c) >= 0:
			return nil, fmt.Errorf("unquoted %c: no pipes or redirections are done (quote it, or use sh -c '…')", c)
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	end()
	return words, nil
}

// saveCommand runs --save-command after a save, with the new set on stdin.
type saveCommand struct {
	argv    []string
	timeout time.Duration                    // saveCommandTimeout, unless a test says otherwise
	warn    func(msg string)                 // one line on stderr
	debugf  func(format string, args ...any) // --debug's diagnostics; may be nil
}

// saveHook is what runs --save-command after each successful save (login,
// refresh, store): nil when it is not set. Its failures are warnings on
// stderr.
func (c *cli) saveHook() func(ctx context.Context, set *auth.TokenSet) {
	if c.s.saveCommand == nil {
		return nil
	}
	sc := &saveCommand{argv: c.s.saveCommand, warn: func(msg string) { c.warnf("%s", msg) }, debugf: c.debugf()}
	return sc.run
}

// run runs the command without a shell and waits for it, for at most its
// timeout. Its output is not passed on: stdout is discarded, and stderr
// shows only with --debug, its first line with every token of the set and
// every token-looking string in it redacted (both may echo the set). A
// failure is a warning that shows the exit status.
//
// The command has its own timeout: the end of ctx's deadline does not cut
// it short (the set is saved by then, and handing it on is what the next
// job needs), but an interrupt (ctx canceled) while it runs does. An
// interrupt that came before (while the request was out, which a refresh
// and a login finish) does not: the set it hands on replaces one whose
// refresh token the server has spent; a new one then does. It is killed
// with the processes it started.
func (sc *saveCommand) run(ctx context.Context, set *auth.TokenSet) {
	body, err := set.MarshalJSON()
	if err != nil {
		sc.warn("save command not run: " + err.Error())
		return
	}
	timeout := sc.timeout
	if timeout <= 0 {
		timeout = saveCommandTimeout
	}
	runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	var interrupted atomic.Bool
	if ctx.Err() == nil {
		stop := context.AfterFunc(ctx, func() {
			if ctx.Err() == context.Canceled {
				interrupted.Store(true)
				cancel()
			}
		})
		defer stop()
	} else {
		// ctx tells of the interrupt that came before, and of no other
		// (the command has a process group of its own, so a terminal's
		// Ctrl-C does not reach it): a new one stops it.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		go func() {
			select {
			case <-sig:
				interrupted.Store(true)
				cancel()
			case <-runCtx.Done():
			}
		}()
	}
	cmd := exec.CommandContext(runCtx, sc.argv[0], sc.argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = helper.ChildEnviron(os.Environ()) // the new set is all it needs
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second // a child that keeps stderr open does not hold us
	killProcessGroup(cmd)
	err = cmd.Run()
	if err == nil {
		return
	}
	what := err.Error()
	switch {
	case interrupted.Load():
		what = "interrupted"
	case runCtx.Err() != nil:
		what = fmt.Sprintf("killed after %s", timeout)
	case errors.Is(err, exec.ErrNotFound):
		what = "not found"
	}
	// Cut after redacting: a cut token would no longer match. (stderr
	// itself is cut at 4 KiB; a token cut there leaves a piece, which
	// redact finds from 12 characters on.)
	if line := protocol.Clip(redact(firstLine(stderr.Bytes()), set), 200); line != "" && sc.debugf != nil {
		sc.debugf("save command %s wrote on stderr: %s", sc.argv[0], line)
	}
	sc.warn(fmt.Sprintf("save command %s failed: %s (the tokens are saved in the store all the same)", sc.argv[0], what))
}

// limitedBuffer keeps the first 4 KiB written to it and drops the rest.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// firstLine is the first non-blank line of b.
func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// redact removes from s every value of the set and anything that looks like
// a token: a run of base64url characters and dots holding a JWT header
// ("eyJ"), a piece of 24 or more characters, two pieces of 8 or more
// joined by a dot, or 12 characters in a row of one of the set's values (a
// piece of a token, cut out). (Such a run is redacted whole.) s is at most
// 4 KiB (limitedBuffer), which bounds the search.
func redact(s string, set *auth.TokenSet) string {
	var secrets []string
	for _, v := range []string{set.AccessToken, set.RefreshToken, set.IDToken, set.SharedSessionKey} {
		if v != "" {
			s = strings.ReplaceAll(s, v, "<redacted>")
			secrets = append(secrets, v)
		}
	}
	var b strings.Builder
	for s != "" {
		start := strings.IndexFunc(s, isTokenChar)
		if start < 0 {
			start = len(s)
		}
		b.WriteString(s[:start])
		s = s[start:]
		end := strings.IndexFunc(s, func(r rune) bool { return !isTokenChar(r) })
		if end < 0 {
			end = len(s)
		}
		if run := s[:end]; looksLikeToken(run) || holdsPieceOf(run, secrets) {
			b.WriteString("<redacted>")
		} else {
			b.WriteString(run)
		}
		s = s[end:]
	}
	return b.String() // warnf makes it one line
}

func isTokenChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
}

// holdsPieceOf reports whether run holds 12 characters in a row of one of
// secrets.
func holdsPieceOf(run string, secrets []string) bool {
	const n = 12
	for i := 0; i+n <= len(run); i++ {
		for _, v := range secrets {
			if strings.Contains(v, run[i:i+n]) {
				return true
			}
		}
	}
	return false
}

// looksLikeToken reports whether a run of token characters is (or holds)
// what may be a token or a part of one.
func looksLikeToken(run string) bool {
	if strings.Contains(run, "eyJ") {
		return true
	}
	long := 0 // pieces of 8 or more in a row
	for piece := range strings.SplitSeq(run, ".") {
		switch {
		case len(piece) >= 24:
			return true
		case len(piece) >= 8:
			if long++; long == 2 {
				return true
			}
		default:
			long = 0
		}
	}
	return false
}
