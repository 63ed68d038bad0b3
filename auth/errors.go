package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

// Errors callers branch on. Every error this package returns that is one of
// these wraps it, so errors.Is works.
var (
	// ErrInvalidGrant: the token endpoint refused the refresh token or the
	// authorization code (RFC 6749 §5.2 invalid_grant): spent, expired or
	// revoked. Only a new login helps.
	ErrInvalidGrant = errors.New("invalid_grant")
	// ErrServer: the account server answered with 5xx or 429, a redirect
	// from the token endpoint, something that is not a token endpoint
	// answer, or tokens of another user. Retrying later may help.
	ErrServer = errors.New("account server error")
	// ErrNetwork: no answer arrived (connection refused or reset, DNS, TLS).
	ErrNetwork = errors.New("network error")
	// ErrInvalidCredentials: the login form came back after posting the
	// email and password.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrInvalidTOTP: the TOTP form came back after posting the code.
	ErrInvalidTOTP = errors.New("invalid TOTP code")
	// ErrCSRF: the server refused a form post as a CSRF failure (403).
	ErrCSRF = errors.New("the account server refused the form (CSRF check failed)")
	// ErrUnexpectedPage: a page that is neither a login form, a TOTP form
	// nor a redirect to the redirect URI.
	ErrUnexpectedPage = errors.New("unexpected answer from the account server")
	// ErrRequestRefused: a login page answered 4xx (other than 403 and
	// 429): the request itself is wrong, most likely the account URL, the
	// client ID or the redirect URI.
	ErrRequestRefused = errors.New("the account server refused the request")
	// ErrStateMismatch: the state returned to the redirect URI is not the
	// one sent (RFC 6749 §10.12).
	ErrStateMismatch = errors.New("state returned by the account server does not match")
	// ErrTooManyRedirects: the server kept redirecting.
	ErrTooManyRedirects = errors.New("too many redirects from the account server")
	// ErrRefreshTokenExpired: the refresh token has expired (checked
	// locally, without a request).
	ErrRefreshTokenExpired = errors.New("refresh token expired")
	// ErrNoRefreshToken: the set has no refresh token to refresh with.
	ErrNoRefreshToken = errors.New("no refresh token")
	// ErrOtherServer: the set was issued by another account server than
	// the Client's, so its refresh token is not sent (see
	// OtherServerError).
	ErrOtherServer = errors.New("tokens of another account server")
)

// OtherServerError is ErrOtherServer with the server that issued the set.
type OtherServerError struct {
	Issuer string // the set's AccountURL
	Here   string // the Client's AccountURL
}

func (e *OtherServerError) Error() string {
	return fmt.Sprintf("the tokens were issued by %s, not by %s", e.Issuer, e.Here)
}

func (e *OtherServerError) Is(target error) bool { return target == ErrOtherServer }

// RetrieveError is an error answer of the token endpoint (RFC 6749 §5.2), or
// an answer that could not be read as one. It never holds the raw body.
type RetrieveError struct {
	StatusCode int    // HTTP status
	ErrorCode  string // RFC 6749 error code, such as "invalid_grant" ("unknown_error" for one that is not a code); empty if none
	RetryAfter time.Duration
	Reason     string // why the answer was not usable, when ErrorCode is empty
}

func (e *RetrieveError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token endpoint answered %d", e.StatusCode)
	if text := http.StatusText(e.StatusCode); text != "" {
		b.WriteString(" " + text)
	}
	if e.ErrorCode != "" {
		b.WriteString(" ")
		b.WriteString(e.ErrorCode)
	}
	if e.Reason != "" {
		b.WriteString(" (")
		b.WriteString(e.Reason)
		b.WriteString(")")
	}
	return b.String()
}

// isErrorCode reports whether code looks like an OAuth error code (RFC 6749
// §5.2): 1 to 40 of a-z and _. Anything else is the server's own text,
// which no message carries (nor error_description).
func isErrorCode(code string) bool {
	if code == "" || len(code) > 40 {
		return false
	}
	for _, c := range code {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// Is makes errors.Is(err, ErrInvalidGrant) and errors.Is(err, ErrServer)
// work on a RetrieveError.
func (e *RetrieveError) Is(target error) bool {
	switch target {
	case ErrInvalidGrant:
		return e.ErrorCode == "invalid_grant"
	case ErrServer:
		switch {
		case e.Temporary(), e.ErrorCode == "server_error", e.ErrorCode == "temporarily_unavailable":
			return true
		case e.ErrorCode == "":
			return e.StatusCode != 0 // an answer that is not an OAuth error
		default:
			// An error code in a 200 is a broken server, except invalid_grant,
			// which means what it says wherever it comes.
			return e.StatusCode == 200 && e.ErrorCode != "invalid_grant"
		}
	}
	return false
}

// Temporary reports whether the same request may succeed later: 5xx and 429.
func (e *RetrieveError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == 429
}

// sanitize keeps the printable characters of a server-provided text and
// shortens it, so that a hostile server cannot inject terminal escapes,
// control or format characters, or walls of text.
func sanitize(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			b.WriteString("…")
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// netError turns a transport error into ErrNetwork (refused, reset or
// closed, DNS, TLS, a proxy), keeping its cause as one short printable
// line. With unreadable, the error came from an answer's status or headers
// that arrived but could not be read: ErrServer, quoting nothing, since
// Go's client quotes a malformed status or header line, which may echo the
// request and the refresh token or password in it. Neither names the URL
// (which may carry a state or a code).
func netError(op string, u *url.URL, err error, unreadable bool) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || (errors.As(err, &ne) && ne.Timeout()):
		// context deadline or a transport timeout: keep it recognisable.
		return fmt.Errorf("%s %s: %w", op, u.Host, err)
	case unreadable:
		return fmt.Errorf("%w: %s %s: the answer is malformed or not HTTP", ErrServer, op, u.Host)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrNetwork, op, u.Host, cleanError{err})
}

// NotTLS reports whether err (an ErrNetwork) says that the server at an
// https:// URL answered without TLS: a plain-http server, such as a test
// server or the emulator.
func NotTLS(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// cleanError is an error whose message is shown as one short printable
// line.
type cleanError struct{ err error }

func (e cleanError) Error() string { return sanitize(e.err.Error(), 160) }
func (e cleanError) Unwrap() error { return e.err }

// traceAnswer returns ctx with a trace of the request made with it, and
// whether any byte of its answer arrived: a request that then fails did
// not fail for want of an answer (see netError).
func traceAnswer(ctx context.Context) (context.Context, func() bool) {
	var got atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotFirstResponseByte: func() { got.Store(true) }})
	return ctx, got.Load
}
