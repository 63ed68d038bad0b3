package auth

import (
	"context"
	"encoding/base32"
	"errors"
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
	next, err := TOTPFromSecret(secret, func() time.Time { return now }, sleep)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c1, _ := next(ctx, 1)
	c2, err := next(ctx, 2)
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
	if _, err := next(ctx, 3); !errors.Is(err, ErrInvalidTOTP) {
		t.Fatalf("third attempt: %v, want ErrInvalidTOTP", err)
	}
}

func TestTOTPFromSecretRespectsDeadline(t *testing.T) {
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	now := time.Unix(1111111091, 0)
	next, _ := TOTPFromSecret(secret, func() time.Time { return now }, func(context.Context, time.Duration) error {
		t.Fatal("slept past the deadline")
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next(ctx, 1)
	if _, err := next(ctx, 2); !errors.Is(err, ErrInvalidTOTP) {
		t.Fatalf("err = %v, want ErrInvalidTOTP when the wait does not fit the budget", err)
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
