package auth

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The lean decoders below serve get's fast path, which runs in a fresh
// process each time: there, the first use of encoding/json's reflection
// costs more than all the rest of the path. They accept a subset of what
// ParseJWT and encoding/json accept, agree with them on it (FuzzLean checks
// that), and answer ok=false for anything else, so the caller falls back to
// the full decoders.

// AccessExpiry returns the exp claim of a JWT, decoding nothing else: three
// base64url parts, a header with a known alg, and claims whose exp is a
// number. Claims that ParseJWT types strictly are checked too, so that a
// token accepted here is accepted there.
func AccessExpiry(token string) (exp time.Time, ok bool) {
	exp, _, ok = leanClaims(token)
	return exp, ok
}

// ExpiryOf returns a JWT's exp claim: from the lean decoder where it answers
// (it agrees with ParseJWT, see FuzzLean), else from ParseJWT, which also
// says what is wrong with a token it refuses.
func ExpiryOf(token string) (time.Time, error) {
	if exp, ok := AccessExpiry(token); ok {
		return exp, nil
	}
	c, err := ParseJWT(token)
	if err != nil {
		return time.Time{}, err
	}
	return c.Expiry.Time, nil
}

// leanClaims is AccessExpiry that also gives the sub claim, as ParseJWT's
// Claims.Subject would hold it.
func leanClaims(token string) (exp time.Time, sub string, ok bool) {
	h, rest, ok1 := strings.Cut(token, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 {
		return time.Time{}, "", false
	}
	header, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return time.Time{}, "", false
	}
	alg, ok := TopLevelString(header, "alg")
	if !ok || jwt.GetSigningMethod(alg) == nil {
		return time.Time{}, "", false
	}
	claims, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return time.Time{}, "", false
	}
	var rawExp []byte
	ok = walkTop(claims, func(key, val []byte) bool {
		switch strings.ToLower(string(key[1 : len(key)-1])) { // encoding/json matches fields case-insensitively
		case "exp":
			if !isNumber(val) {
				return false
			}
			rawExp = val
		case "sub":
			switch {
			case string(val) == "null":
				sub = ""
			case isNumber(val):
				sub = string(val)
			case plainString(val):
				sub = string(val[1 : len(val)-1])
			default:
				return false
			}
		case "jti", "connect_id":
			return isFlexString(val)
		case "sid", "app", "type", "iss", "aud":
			return val[0] == '"' || string(val) == "null"
		case "user":
			return string(val) == "null" || val[0] == '{' && walkTop(val, func(k, v []byte) bool {
				switch strings.ToLower(string(k[1 : len(k)-1])) {
				case "id":
					return isFlexString(v)
				case "email", "first_name", "last_name", "public_username":
					return v[0] == '"' || string(v) == "null"
				}
				return true
			})
		}
		return true
	})
	if !ok || rawExp == nil {
		return time.Time{}, "", false
	}
	f, err := strconv.ParseFloat(string(rawExp), 64)
	if err != nil || f < 0 || f > maxExp {
		return time.Time{}, "", false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), sub, true
}

// plainString: a JSON string (with its quotes) that decodes to its bytes as
// they are: no escapes, valid UTF-8.
func plainString(v []byte) bool {
	return v[0] == '"' && bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v)
}

// isFlexString: what a FlexString accepts.
func isFlexString(v []byte) bool { return v[0] == '"' || isNumber(v) || string(v) == "null" }

func isNumber(v []byte) bool { return v[0] == '-' || v[0] >= '0' && v[0] <= '9' }

// TopLevelString returns the value of key (matched exactly, as a decode
// into a map does) at the top level of a JSON object, when it is a string
// without escapes in valid UTF-8 (as every JWT is). The last of duplicate
// keys wins.
func TopLevelString(doc []byte, key string) (string, bool) {
	var found []byte
	ok := walkTop(doc, func(k, v []byte) bool {
		if string(k) == `"`+key+`"` {
			found = v
		}
		return true
	})
	if !ok || found == nil || !plainString(found) {
		return "", false
	}
	return string(found[1 : len(found)-1]), true
}

// walkTop checks that doc is one well-formed JSON object and calls f with
// each top-level key (with its quotes) and raw value, until f returns false.
// Keys with escapes or non-ASCII bytes make it give up: it returns false.
func walkTop(doc []byte, f func(key, val []byte) bool) bool {
	s := scanner{b: doc}
	s.space()
	if !s.eat('{') {
		return false
	}
	s.space()
	if s.eat('}') {
		return s.end()
	}
	for {
		s.space()
		k, ok := s.str(true)
		if !ok || bytes.IndexByte(k, '\\') >= 0 {
			return false
		}
		s.space()
		if !s.eat(':') {
			return false
		}
		s.space()
		start := s.i
		if !s.value(0) || !f(k, s.b[start:s.i]) {
			return false
		}
		s.space()
		if s.eat(',') {
			continue
		}
		return s.eat('}') && s.end()
	}
}

// scanner is a strict, minimal JSON syntax walker.
type scanner struct {
	b []byte
	i int
}

const maxDepth = 64

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str reads a string, returning it with its quotes. It refuses control
// characters, and with ascii also any byte over 0x7f: keys the decoders
// match must be ASCII, since encoding/json folds case with Unicode rules
// ("ſub" matches "sub"). Other bytes over 0x7f are kept as they are; a
// caller that extracts a value checks it is valid UTF-8 (encoding/json
// would replace invalid bytes).
func (s *scanner) str(ascii bool) ([]byte, bool) {
	start := s.i
	if !s.eat('"') {
		return nil, false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:s.i], true
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, false
					}
				}
				s.i += 6
			default:
				return nil, false
			}
		case c < 0x20 || c >= 0x80 && ascii:
			return nil, false
		default:
			s.i++
		}
	}
	return nil, false
}

func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.str(false)
		return ok
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.i++
		s.space()
		if s.eat(closer) {
			return true
		}
		for {
			s.space()
			if c == '{' {
				if _, ok := s.str(false); !ok {
					return false
				}
				s.space()
				if !s.eat(':') {
					return false
				}
				s.space()
			}
			if !s.value(depth + 1) {
				return false
			}
			s.space()
			if s.eat(',') {
				continue
			}
			return s.eat(closer)
		}
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
				s.i += len(lit)
				return true
			}
		}
		return false
	}
}

// number reads a JSON number (RFC 8259 §6).
func (s *scanner) number() bool {
	start := s.i
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') {
		if !s.digits() {
			return false
		}
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return s.i > start
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
