// Package protocol is the wire format of prusa-credential-helper: what a
// program that execs it writes on its stdin and reads back.
//
// On stdout a protocol command (get, store, erase, list) writes exactly one
// JSON document, on success or on error — or, for get with --format token,
// header or env, one line on success and nothing on error. On stderr it
// writes nothing on success (but for warnings a human must see), and on
// error one line of message and at most one "hint:" line. The exit code is
// 0 on success and otherwise the one of the error's Code (see ExitCode).
//
// The package does no I/O of its own beyond the readers and writers it is
// given, and can be tested with byte slices alone.
package protocol

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Version is the protocol version: the "version" of every request and
// response.
const Version = 1

// Code is an error code of the protocol.
type Code string

// The error codes.
const (
	InvalidRequest Code = "invalid_request" // bad request, setting, token set or environment token
	LoginRequired  Code = "login_required"  // nothing stored, or only a new login helps
	NetworkError   Code = "network_error"   // no answer from the account server
	Timeout        Code = "timeout"         // the --timeout budget ran out
	ServerError    Code = "server_error"    // 5xx, 429 or an unusable answer
	StorageError   Code = "storage_error"   // the store cannot be read or written
	Internal       Code = "internal"        // anything else
)

// Exit codes.
const (
	ExitOK            = 0
	ExitFailure       = 1  // storage_error, internal
	ExitUsage         = 2  // invalid_request, and usage errors
	ExitLoginRequired = 4  // login_required
	ExitTempFail      = 75 // network_error, timeout, server_error (EX_TEMPFAIL: try again later)
)

// ExitCode is the process exit code of an error with this code.
func (c Code) ExitCode() int {
	switch c {
	case InvalidRequest:
		return ExitUsage
	case LoginRequired:
		return ExitLoginRequired
	case NetworkError, Timeout, ServerError:
		return ExitTempFail
	default:
		return ExitFailure
	}
}

// Retryable reports whether the same call may succeed later unchanged.
func (c Code) Retryable() bool { return c.ExitCode() == ExitTempFail }

// Error is a protocol error: a code, a one-line message and an optional
// hint of what the user can do. Messages are lower-case with no final
// period and never hold a secret.
type Error struct {
	Code    Code
	Message string
	Hint    string // such as "run: prusa-credential-helper login"
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// JSONMessage is the message of the JSON document: the message and the
// hint, joined by "; ", on one line.
func (e *Error) JSONMessage() string {
	if e.Hint == "" {
		return OneLine(e.Message)
	}
	return OneLine(e.Message + "; " + e.Hint)
}

// Stderr is what goes to stderr: the message line, prefixed with the
// program's name, and the hint line if any.
func (e *Error) Stderr(prog string) string {
	var b strings.Builder
	b.WriteString(prog + ": " + OneLine(e.Message) + "\n")
	if e.Hint != "" {
		b.WriteString("hint: " + OneLine(e.Hint) + "\n")
	}
	return b.String()
}

// A word the user gave in the wrong place may be a secret (a token or a
// password as an argument), so a message quotes one only when it has the
// shape of a mistyped word of its kind, and else gives its length alone.
// The kinds, for Shown:
const (
	// Word: a command, a flag name, a choice such as a format (at most 24
	// lower-case letters, digits, dashes and underscores; a password or a
	// TOTP secret mostly has an upper-case letter or a sign).
	Word = "abcdefghijklmnopqrstuvwxyz0123456789-_"
	// Duration: a mistyped duration such as 20x or -5s (Word's, signs and
	// dots).
	Duration = Word + "+.µ"
	// Host: a host name or address (Word's, dots, colons and brackets).
	Host = Word + ".:[]"
)

// Like reports whether s has the shape of kind: at most 24 of its
// characters, and not 4 or more digits alone (a TOTP or backup code).
func Like(s, kind string) bool {
	if len(s) >= 4 && strings.Trim(s, "0123456789") == "" {
		return false
	}
	return utf8.RuneCountInString(s) <= 24 && !strings.ContainsFunc(s, func(r rune) bool { return !strings.ContainsRune(kind, r) })
}

// Shown is s quoted when it is Like kind, else only its length
// ("(25 characters, not shown)").
func Shown(s, kind string) string {
	if Like(s, kind) {
		return strconv.Quote(s)
	}
	n := utf8.RuneCountInString(s)
	if n == 1 {
		return "(1 character, not shown)"
	}
	return fmt.Sprintf("(%d characters, not shown)", n)
}

// Clip is OneLine(s) cut to at most n bytes (on a character boundary),
// with "…" where it was cut: for another program's error text.
func Clip(s string, n int) string {
	s = OneLine(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// OneLine makes s fit on one line: every run of line breaks (and the spaces
// around it) becomes "; ", and other control characters become spaces.
func OneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for _, l := range lines {
		l = strings.TrimSpace(strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, l))
		if l == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(l)
	}
	return b.String()
}
