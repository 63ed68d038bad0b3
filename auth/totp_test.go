package auth

import (
	"context"
	"encoding/base32"
	"errors"
	"slices"
	"testing"
	"time"
)

// RFC 6238 Appendix B, SHA-1 rows, with the RFC's seed and 8 digits.
func TestTOTPRFC6238Vectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, v := range []struct {
		t    int64
		code string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		if got := TOTP(key, TOTPStep(time.Unix(v.t, 0)), 8); got != v.code {
			t.Errorf("T=%d: got %s, want %s", v.t, got, v.code)
		}
	}
	// RFC 4226 Appendix D: 6-digit HOTP values of the same key.
	for i, want := range []string{"755224", "287082", "359152", "969429", "338314"} {
		if got := TOTP(key, uint64(i), 6); got != want {
			t.Errorf("counter %d: got %s, want %s", i, got, want)
		}
	}
}

func TestDecodeTOTPSecret(t *testing.T) {
	want := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	for _, s := range []string{want, "gezd gnbv gy3t qojq gezd gnbv gy3t qojq", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ===="} {
		key, err := DecodeTOTPSecret(s)
		if err != nil || string(key) != "12345678901234567890" {
			t.Errorf("DecodeTOTPSecret(%q) = %q, %v", s, key, err)
		}
	}
	for _, s := range []string{"", "not base32!", "11111111"} {
		if _, err := DecodeTOTPSecret(s); !errors.Is(err, ErrInvalidTOTPSecret) {
			t.Errorf("DecodeTOTPSecret(%q): err = %v", s, err)
		}
	}
}

func TestTOTPFromSecretRetriesWithNextStep(t *testing.T) {
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	now := time.Unix(1111111091, 0) // 11 s into step 37037036
	var slept time.Duration
	sleep := func(_ context.Context, d time.Duration) error { slept += d; now = now.Add(d); return nil }
	var notes []string
	next, err := TOTPFromSecret(secret, func() time.Time { return now }, sleep, func(msg string) { notes = append(notes, msg) })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c1, _ := next(ctx, 1, 0)
	if len(notes) != 0 {
		t.Fatalf("notes before any wait: %q", notes)
	}
	c2, err := next(ctx, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := DecodeTOTPSecret(secret)
	if c1 != TOTP(key, 37037036, 6) || c2 != TOTP(key, 37037037, 6) {
		t.Fatalf("codes %s %s, want steps 37037036 and 37037037", c1, c2)
	}
	if slept != 19*time.Second {
		t.Fatalf("slept %v, want 19s (to the start of the next step)", slept)
	}
	if want := []string{"the TOTP code of this 30 s step was refused (used by another login, or a wrong secret); waiting 19s for the next step"}; !slices.Equal(notes, want) {
		t.Fatalf("notes %q, want %q", notes, want)
	}
	if _, err := next(ctx, 3, 0); !errors.Is(err, ErrInvalidTOTP) {
		t.Fatalf("third attempt: %v, want ErrInvalidTOTP", err)
	}
}

func TestTOTPFromSecretRespectsDeadline(t *testing.T) {
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	now := time.Unix(1111111091, 0)
	next, _ := TOTPFromSecret(secret, func() time.Time { return now }, func(context.Context, time.Duration) error {
		t.Fatal("slept past the deadline")
		return nil
	}, func(msg string) { t.Fatalf("announced a wait it does not make: %s", msg) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next(ctx, 1, 0)
	_, err := next(ctx, 2, 0)
	var we *TOTPWaitError
	if !errors.Is(err, ErrInvalidTOTP) || !errors.As(err, &we) || we.Wait != 19*time.Second {
		t.Fatalf("err = %v, want a TOTPWaitError (an ErrInvalidTOTP) of 19s when the wait does not fit the budget", err)
	}
}

// TestTOTPFromSecretUsesServerClock: the code is that of the server's time
// step, the local clock plus the offset Login passes, and so is the wait.
func TestTOTPFromSecretUsesServerClock(t *testing.T) {
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	key, _ := DecodeTOTPSecret(secret)
	server := time.Unix(1111111091, 0) // 11 s into step 37037036
	for _, offset := range []time.Duration{3 * time.Hour, -3 * time.Hour} {
		local := server.Add(-offset)
		var slept time.Duration
		next, _ := TOTPFromSecret(secret, func() time.Time { return local }, func(_ context.Context, d time.Duration) error {
			slept += d
			local = local.Add(d)
			return nil
		}, nil)
		c1, _ := next(context.Background(), 1, offset)
		c2, _ := next(context.Background(), 2, offset)
		if c1 != TOTP(key, 37037036, 6) || c2 != TOTP(key, 37037037, 6) || slept != 19*time.Second {
			t.Errorf("offset %v: codes %s %s after %v, want the server's steps 37037036 and 37037037 after 19s", offset, c1, c2, slept)
		}
	}
}

// RFC 7636 Appendix B.
func TestS256ChallengeRFC7636(t *testing.T) {
	if got := S256Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("challenge = %s", got)
	}
	v := NewVerifier()
	if len(v) != 43 || v == NewVerifier() {
		t.Fatalf("verifier %q: want 43 random characters", v)
	}
}

func TestWholeSeconds(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{16*time.Second + time.Millisecond: 17 * time.Second, 17 * time.Second: 17 * time.Second, time.Nanosecond: time.Second} {
		if got := wholeSeconds(d); got != want {
			t.Errorf("wholeSeconds(%s) = %s, want %s", d, got, want)
		}
	}
}
