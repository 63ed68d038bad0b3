package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TOTPPeriod is the time step of Prusa Account codes (RFC 6238 §4, X = 30).
const TOTPPeriod = 30 * time.Second

// TOTPDigits is the length of Prusa Account codes.
const TOTPDigits = 6

// ErrInvalidTOTPSecret is returned for a secret that is not base32.
var ErrInvalidTOTPSecret = errors.New("TOTP secret is not base32")

// DecodeTOTPSecret decodes a base32 secret as authenticator apps show it:
// case, spaces, dashes and padding do not matter.
func DecodeTOTPSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "=", "").Replace(secret))
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil || len(key) == 0 {
		return nil, ErrInvalidTOTPSecret
	}
	return key, nil
}

// TOTP returns the RFC 6238 code (HMAC-SHA-1) of key for time step counter,
// with the given number of digits (RFC 4226 §5.3 dynamic truncation).
func TOTP(key []byte, counter uint64, digits int) string {
	mac := hmac.New(sha1.New, key)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// TOTPStep returns the time step of t.
func TOTPStep(t time.Time) uint64 { return uint64(t.Unix()) / uint64(TOTPPeriod/time.Second) }

// TOTPWaitError is the ErrInvalidTOTP of a login whose code was refused
// when the next time step, whose code might pass, begins only after the
// context's deadline: a wrong secret, or a code another login used.
type TOTPWaitError struct {
	Wait time.Duration // until the next step begins, in whole seconds rounded up
}

func (e *TOTPWaitError) Error() string {
	return fmt.Sprintf("%v: the next step begins in %s, after the time left", ErrInvalidTOTP, e.Wait)
}

// wholeSeconds is d rounded up to a second, as waits are shown.
func wholeSeconds(d time.Duration) time.Duration { return (d + time.Second - 1).Truncate(time.Second) }

func (e *TOTPWaitError) Unwrap() error { return ErrInvalidTOTP }

// TOTPFromSecret returns a TOTP source for Login that computes codes from a
// base32 secret by the server's clock: now plus the clockOffset that Login
// passes. The first attempt sends the code of the current time step. The
// server refuses a code whose time step was already used (two logins
// within 30 s), so a second attempt sends the next step's code, waiting for
// that step to begin if the context's deadline allows (else it gives up
// with a TOTPWaitError); notify, if not nil, is told of the wait in one line
// before it begins. now and sleep may be nil (time.Now and a context-aware
// sleep).
func TOTPFromSecret(secret string, now func() time.Time, sleep func(context.Context, time.Duration) error, notify func(msg string)) (TOTPSource, error) {
	key, err := DecodeTOTPSecret(secret)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepContext
	}
	var first uint64
	return func(ctx context.Context, attempt int, offset time.Duration) (string, error) {
		serverNow := func() time.Time { return now().Add(offset) }
		switch attempt {
		case 1:
			first = TOTPStep(serverNow())
			return TOTP(key, first, TOTPDigits), nil
		case 2:
			next := first + 1
			start := time.Unix(int64(next)*int64(TOTPPeriod/time.Second), 0)
			if wait := start.Sub(serverNow()); wait > 0 {
				if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
					return "", &TOTPWaitError{Wait: wholeSeconds(wait)}
				}
				if notify != nil {
					notify(fmt.Sprintf("the TOTP code of this %d s step was refused (used by another login, or a wrong secret); waiting %s for the next step", TOTPPeriod/time.Second, wholeSeconds(wait)))
				}
				if err := sleep(ctx, wait); err != nil {
					return "", err
				}
			}
			return TOTP(key, max(next, TOTPStep(serverNow())), TOTPDigits), nil
		default:
			return "", ErrInvalidTOTP
		}
	}, nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
