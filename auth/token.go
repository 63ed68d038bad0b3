package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrMalformedJWT is returned (wrapped) for a string that is not a JWT with
// JSON claims and an exp claim. Its messages never contain the token.
var ErrMalformedJWT = errors.New("malformed JWT")

// Token types as found in the "type" claim of Prusa Account tokens.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
)

// maxExp bounds the exp claim to a sane range (year 5138), so that every
// accepted exp converts to a time.Time without overflow.
const maxExp = 1e11

// Claims are the claims of any Prusa Account JWT (RFC 7519): access, refresh
// and identity tokens share jti, sub and exp; the others are set where the
// token type carries them.
type Claims struct {
	ID        FlexString       `json:"jti"`
	Subject   FlexString       `json:"sub"`
	Expiry    Expiry           `json:"exp"`
	SessionID string           `json:"sid"`
	App       string           `json:"app"`
	Type      string           `json:"type"`
	ConnectID FlexString       `json:"connect_id"`
	Audience  jwt.ClaimStrings `json:"aud"`
	Issuer    string           `json:"iss"`
	User      *User            `json:"user"`
}

// User is the part of the identity token's "user" claim that the helper uses.
type User struct {
	ID             FlexString `json:"id"`
	Email          string     `json:"email"`
	FirstName      string     `json:"first_name"`
	LastName       string     `json:"last_name"`
	PublicUsername string     `json:"public_username"`
}

// The methods below make Claims a jwt.Claims for jwt.Parser.ParseUnverified.

func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) {
	if !c.Expiry.Set {
		return nil, nil
	}
	return jwt.NewNumericDate(c.Expiry.Time), nil
}
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error)  { return nil, nil }
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *Claims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c *Claims) GetSubject() (string, error)             { return string(c.Subject), nil }
func (c *Claims) GetAudience() (jwt.ClaimStrings, error)  { return c.Audience, nil }

// FlexString is a claim that may be a JSON string or a JSON number; either
// way it holds the text ("1530681" for both "1530681" and 1530681).
type FlexString string

// UnmarshalJSON accepts a string, a number or null.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = FlexString(v)
		return nil
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil || len(b) == 0 {
			return errors.New("want a string or a number")
		}
		*s = FlexString(n.String())
		return nil
	}
}

// Expiry is the exp claim: seconds since the Unix epoch, an integer or a
// float, kept to the nanosecond.
type Expiry struct {
	Time time.Time
	Set  bool
}

// UnmarshalJSON accepts a JSON number between 0 and 1e11.
func (e *Expiry) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*e = Expiry{}
		return nil
	}
	var n json.Number
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] == '"' || json.Unmarshal(b, &n) != nil {
		return errors.New("exp is not a number")
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxExp {
		return errors.New("exp is out of range")
	}
	*e = Expiry{Time: secondsToTime(f), Set: true}
	return nil
}

// secondsToTime converts seconds since the Unix epoch, kept to the
// nanosecond, to a UTC time.
func secondsToTime(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
}

// Unix is the floor of exp in whole seconds.
func (e Expiry) Unix() int64 { return e.Time.Unix() }

// parser refuses padded segments, as golang-jwt does by default.
var parser = jwt.NewParser()

var partNames = [3]string{"header", "claims", "signature"}

// ParseJWT decodes a JWT's claims without verifying its signature (the helper
// is not the audience that checks signatures; the account server is). It
// requires exactly three parts, each unpadded base64url (RFC 7515 §2) with no
// other byte (no CR or LF, which Go's base64 decoder would skip), a header
// with a known alg, JSON claims and an exp claim.
func ParseJWT(token string) (*Claims, error) {
	c := new(Claims)
	// golang-jwt decodes every part; only a token it refuses, or one with a
	// CR or LF (which it would skip), is looked at again, to say why.
	if _, _, err := parser.ParseUnverified(token, c); err != nil || strings.ContainsAny(token, "\r\n") {
		return nil, fmt.Errorf("%w: %s", ErrMalformedJWT, whyMalformed(token))
	}
	if !c.Expiry.Set {
		return nil, fmt.Errorf("%w: no exp claim", ErrMalformedJWT)
	}
	return c, nil
}

// whyMalformed says what is wrong with a token that ParseJWT refuses,
// without quoting any of it.
func whyMalformed(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Sprintf("%d dot-separated parts, want 3", len(parts))
	}
	for i, p := range parts {
		if _, err := base64.RawURLEncoding.DecodeString(p); err != nil || strings.ContainsAny(p, "\r\n") {
			return partNames[i] + " is not base64url"
		}
	}
	var header, claims map[string]json.RawMessage
	for i, m := range []*map[string]json.RawMessage{&header, &claims} {
		b, _ := parser.DecodeSegment(parts[i]) // checked above
		if json.Unmarshal(b, m) != nil || *m == nil {
			return partNames[i] + " is not a JSON object"
		}
	}
	if _, ok := header["alg"]; !ok {
		return "header has no alg"
	}
	var alg string
	if json.Unmarshal(header["alg"], &alg) != nil || jwt.GetSigningMethod(alg) == nil {
		return "header has an unknown alg"
	}
	return "claims have a field of the wrong type"
}

// ExpiryOf returns a JWT's exp claim, or what ParseJWT finds wrong with it.
func ExpiryOf(token string) (time.Time, error) {
	c, err := ParseJWT(token)
	if err != nil {
		return time.Time{}, err
	}
	return c.Expiry.Time, nil
}

// ValidFor reports whether a token that expires at exp is still valid at now
// for more than margin: it must not expire within the margin.
func ValidFor(exp, now time.Time, margin time.Duration) bool {
	return exp.Sub(now) > margin
}

// Describe gives a JWT as its non-secret claims, for diagnostics: the
// signature and the payload never show.
func Describe(token string) string {
	if token == "" {
		return "jwt(none)"
	}
	c, err := ParseJWT(token)
	if err != nil {
		return "jwt(malformed)"
	}
	return fmt.Sprintf("jwt(sub=%s exp=%s jti=%s)", c.Subject, c.Expiry.Time.Format(time.RFC3339), c.ID)
}
