package auth

import (
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
	ID        FlexString // jti
	Subject   FlexString // sub
	Expiry    Expiry     // exp
	SessionID string     // sid
	App       string     // app
	Type      string     // type
	ConnectID FlexString // connect_id
	Audience  []string   // aud: one string or an array of them
	Issuer    string     // iss
	User      *User      // user
}

// User is the part of the identity token's "user" claim that the helper uses.
type User struct {
	ID             FlexString // id
	Email          string     // email
	FirstName      string     // first_name
	LastName       string     // last_name
	PublicUsername string     // public_username
}

// FlexString is a claim that may be a JSON string or a JSON number; either
// way it holds the text ("1530681" for both "1530681" and 1530681).
type FlexString string

// Expiry is the exp claim: seconds since the Unix epoch, an integer or a
// float, kept to the nanosecond.
type Expiry struct {
	Time time.Time
	Set  bool
}

// Unix is the floor of exp in whole seconds.
func (e Expiry) Unix() int64 { return e.Time.Unix() }

// claimsOf takes the claims the helper uses from the decoded JSON object m,
// by their exact names (RFC 7519 §4), checking each one's type. (Reading
// them from golang-jwt's MapClaims, not into a struct, spares every get
// the start-up cost of encoding/json's struct decoder: see the README's
// "Speed".)
func claimsOf(m map[string]any) (*Claims, error) {
	c := new(Claims)
	var errs []error
	str := func(o map[string]any, name string) string {
		switch v := o[name].(type) {
		case nil:
		case string:
			return v
		default:
			errs = append(errs, fmt.Errorf("claim %s has the wrong type", name))
		}
		return ""
	}
	flex := func(o map[string]any, name string) FlexString {
		switch v := o[name].(type) {
		case nil:
		case string:
			return FlexString(v)
		case json.Number:
			return numberText(v)
		default:
			errs = append(errs, fmt.Errorf("claim %s has the wrong type", name))
		}
		return ""
	}
	c.ID, c.Subject, c.ConnectID = flex(m, "jti"), flex(m, "sub"), flex(m, "connect_id")
	c.SessionID, c.App, c.Type, c.Issuer = str(m, "sid"), str(m, "app"), str(m, "type"), str(m, "iss")
	switch v := m["exp"].(type) {
	case nil:
	case json.Number:
		f, err := v.Float64()
		if err != nil || math.IsNaN(f) || f < 0 || f > maxExp {
			errs = append(errs, errors.New("claim exp is out of range"))
			break
		}
		c.Expiry = Expiry{Time: secondsToTime(f), Set: true}
	default:
		errs = append(errs, errors.New("claim exp has the wrong type"))
	}
	switch v := m["aud"].(type) {
	case nil:
	case string:
		c.Audience = []string{v}
	case []any:
		for _, a := range v {
			s, ok := a.(string)
			if !ok {
				errs = append(errs, errors.New("claim aud has the wrong type"))
				break
			}
			c.Audience = append(c.Audience, s)
		}
	default:
		errs = append(errs, errors.New("claim aud has the wrong type"))
	}
	switch u := m["user"].(type) {
	case nil:
	case map[string]any:
		c.User = &User{ID: flex(u, "id"), Email: str(u, "email"), FirstName: str(u, "first_name"), LastName: str(u, "last_name"), PublicUsername: str(u, "public_username")}
	default:
		errs = append(errs, errors.New("claim user has the wrong type"))
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return c, nil
}

// numberText is a numeric claim's text: for a whole number, its digits
// however it is written (1530681.0 and 1.530681e6 are "1530681"), so that
// a user id is the same text in every token; any other number as written.
// It works on the decimal text, exactly: no float rounds 1530681.000001 to
// a whole number. An exponent beyond ±30 is left as written.
func numberText(n json.Number) FlexString {
	s := string(n)
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e < -30 || e > 30 {
			return FlexString(s)
		}
		mant, exp = s[:i], e
	}
	neg := strings.HasPrefix(mant, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(mant, "-"), ".")
	digits := whole + frac
	point := min(max(len(whole)+exp, 0), len(digits)) // digits[:point] is the whole part
	if strings.Trim(digits[point:], "0") != "" {
		return FlexString(s) // not whole
	}
	whole = strings.TrimLeft(digits[:point]+strings.Repeat("0", max(len(whole)+exp-len(digits), 0)), "0")
	switch {
	case whole == "":
		return "0"
	case neg:
		return FlexString("-" + whole)
	}
	return FlexString(whole)
}

// secondsToTime converts seconds since the Unix epoch, kept to the
// nanosecond, to a UTC time.
func secondsToTime(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
}

// parser refuses padded segments, as golang-jwt does by default, and keeps
// numbers as written (json.Number): a numeric sub keeps its digits.
var parser = jwt.NewParser(jwt.WithJSONNumber())

var partNames = [3]string{"header", "claims", "signature"}

// ParseJWT decodes a JWT's claims without verifying its signature (the helper
// is not the audience that checks signatures; the account server is). It
// requires exactly three parts, each unpadded base64url (RFC 7515 §2) with no
// other byte (no CR or LF, which Go's base64 decoder would skip), a header
// with a known alg, JSON claims and an exp claim.
func ParseJWT(token string) (*Claims, error) {
	m := jwt.MapClaims{}
	// golang-jwt decodes every part; only a token it refuses, or one with a
	// CR or LF (which it would skip), is looked at again, to say why. With
	// WithJSONNumber it reads the claims' first JSON value and ignores what
	// follows, so the claims are checked to be that value alone.
	_, parts, err := parser.ParseUnverified(token, m)
	if err != nil || strings.ContainsAny(token, "\r\n") || !oneJSONValue(parts[1]) {
		return nil, fmt.Errorf("%w: %s", ErrMalformedJWT, whyMalformed(token))
	}
	c, err := claimsOf(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedJWT, err)
	}
	if !c.Expiry.Set {
		return nil, fmt.Errorf("%w: no exp claim", ErrMalformedJWT)
	}
	return c, nil
}

// oneJSONValue reports whether the base64url segment seg decodes to one
// JSON value, with nothing after it but white space.
func oneJSONValue(seg string) bool {
	b, err := parser.DecodeSegment(seg)
	return err == nil && json.Valid(b)
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
	return "it cannot be decoded"
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
	// sub and jti come from whoever made the token: printable and short.
	return fmt.Sprintf("jwt(sub=%s exp=%s jti=%s)", sanitize(string(c.Subject), 64), c.Expiry.Time.Format(time.RFC3339), sanitize(string(c.ID), 64))
}
