package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrInvalidTokenSet is returned (wrapped) for JSON that is not a usable
// token set. Its messages name fields, never values.
var ErrInvalidTokenSet = errors.New("invalid token set")

// TokenSet is what the token endpoint returns and what the helper stores, in
// the shape of the Python SDK's dump_tokens() and of PRUSA_TOKENS_JSON. Only
// AccessToken is required. Fields the helper does not know are kept in Extra
// and written back unchanged.
type TokenSet struct {
	AccessToken      string
	RefreshToken     string
	IDToken          string
	ExpiresIn        json.Number // as received: an integer or a float
	TokenType        string
	Scope            string
	SharedSessionKey string
	Extra            map[string]json.RawMessage
}

// knownFields lists the fields of a token set in the order they are written.
var knownFields = []string{"access_token", "refresh_token", "id_token", "expires_in", "token_type", "scope", "shared_session_key"}

func (s *TokenSet) stringField(name string) *string {
	switch name {
	case "access_token":
		return &s.AccessToken
	case "refresh_token":
		return &s.RefreshToken
	case "id_token":
		return &s.IDToken
	case "token_type":
		return &s.TokenType
	case "scope":
		return &s.Scope
	case "shared_session_key":
		return &s.SharedSessionKey
	}
	return nil
}

// UnmarshalJSON reads a token set. It checks the JSON shape only (a JSON
// object whose known fields have the right types); Validate checks the JWTs.
func (s *TokenSet) UnmarshalJSON(b []byte) error {
	if s.unmarshalLean(b) {
		return nil
	}
	return s.unmarshalFull(b)
}

// unmarshalLean reads the everyday token set — what the token endpoint
// answers and what the helper writes: known fields only, strings without
// escapes, expires_in a number — without encoding/json, whose first use
// costs a fresh process more than the rest of a refresh's decoding. It
// agrees with unmarshalFull wherever it answers (FuzzTokenSet checks that);
// ok=false leaves s as it was, for unmarshalFull.
func (s *TokenSet) unmarshalLean(b []byte) (ok bool) {
	var t TokenSet
	if !walkTop(b, func(key, val []byte) bool {
		k := string(key[1 : len(key)-1])
		p := t.stringField(k)
		switch {
		case p == nil && k != "expires_in":
			return false // unknown fields are kept as compacted JSON: the full decoder
		case string(val) == "null": // as a decode into a map: the last of duplicates wins
			if p != nil {
				*p = ""
			} else {
				t.ExpiresIn = ""
			}
		case p != nil && plainString(val):
			*p = string(val[1 : len(val)-1])
		case p == nil && isNumber(val):
			t.ExpiresIn = json.Number(val)
		default:
			return false
		}
		return true
	}) {
		return false
	}
	*s = t
	return true
}

func (s *TokenSet) unmarshalFull(b []byte) error {
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidTokenSet)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return fmt.Errorf("%w: not a JSON object", ErrInvalidTokenSet)
	}
	*s = TokenSet{}
	for k, v := range m {
		v = bytes.TrimSpace(v)
		if bytes.Equal(v, []byte("null")) {
			continue
		}
		if p := s.stringField(k); p != nil {
			if err := json.Unmarshal(v, p); err != nil {
				return fmt.Errorf("%w: %s is not a string", ErrInvalidTokenSet, k)
			}
			continue
		}
		if k == "expires_in" {
			if v[0] == '"' || json.Unmarshal(v, &s.ExpiresIn) != nil {
				return fmt.Errorf("%w: expires_in is not a number", ErrInvalidTokenSet)
			}
			continue
		}
		if s.Extra == nil {
			s.Extra = make(map[string]json.RawMessage)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return fmt.Errorf("%w: not a JSON object", ErrInvalidTokenSet)
		}
		s.Extra[k] = c.Bytes()
	}
	return nil
}

// MarshalJSON writes the known fields in a fixed order, then the unknown
// ones sorted by name, so that a set round-trips byte for byte.
func (s TokenSet) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	field := func(k string, v []byte) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		appendString(&b, k)
		b.WriteByte(':')
		b.Write(v)
	}
	for _, k := range knownFields {
		if k == "expires_in" {
			if s.ExpiresIn != "" {
				field(k, []byte(s.ExpiresIn))
			}
			continue
		}
		if v := *s.stringField(k); v != "" {
			var vb bytes.Buffer
			appendString(&vb, v)
			field(k, vb.Bytes())
		}
	}
	keys := make([]string, 0, len(s.Extra))
	for k := range s.Extra {
		if s.stringField(k) == nil && k != "expires_in" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		field(k, s.Extra[k])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// appendString writes v as encoding/json does: as it is, quoted, when no
// byte of it needs escaping (every JWT), else through json.Marshal.
func appendString(b *bytes.Buffer, v string) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(v) // a string always marshals
			b.Write(q)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(v)
	b.WriteByte('"')
}

// ParseTokenSet reads a token set from JSON and validates it.
func ParseTokenSet(b []byte) (*TokenSet, error) {
	s := new(TokenSet)
	if !s.unmarshalLean(b) {
		if err := json.Unmarshal(b, s); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) || !errors.Is(err, ErrInvalidTokenSet) {
				return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidTokenSet)
			}
			return nil, err
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks that the set has an access token and that every JWT it
// carries decodes with an exp claim, and that the refresh token (if any)
// belongs to the same user as the access token.
func (s *TokenSet) Validate() error {
	if s.AccessToken == "" {
		return fmt.Errorf("%w: no access_token", ErrInvalidTokenSet)
	}
	accessSub, err := subjectOf(s.AccessToken)
	if err != nil {
		return fmt.Errorf("%w: access_token: %w", ErrInvalidTokenSet, err)
	}
	if s.RefreshToken != "" {
		refreshSub, err := subjectOf(s.RefreshToken)
		if err != nil {
			return fmt.Errorf("%w: refresh_token: %w", ErrInvalidTokenSet, err)
		}
		if refreshSub != accessSub {
			return fmt.Errorf("%w: refresh_token belongs to another user than access_token", ErrInvalidTokenSet)
		}
	}
	if s.IDToken != "" {
		if _, err := subjectOf(s.IDToken); err != nil {
			return fmt.Errorf("%w: id_token: %w", ErrInvalidTokenSet, err)
		}
	}
	return nil
}

// subjectOf checks that token decodes with an exp and returns its sub: with
// the lean decoder where it answers (it agrees with ParseJWT, see FuzzLean),
// else with ParseJWT, which also says what is wrong.
func subjectOf(token string) (FlexString, error) {
	if _, sub, ok := leanClaims(token); ok {
		return FlexString(sub), nil
	}
	c, err := ParseJWT(token)
	if err != nil {
		return "", err
	}
	return c.Subject, nil
}

// Merge returns the set that results from a token endpoint answer: the
// answer's fields win, and a refresh or id token the answer lacks is kept
// from s (the Python SDK merges the same way). Unknown fields of s stay
// unless the answer carries them too.
func (s TokenSet) Merge(answer TokenSet) TokenSet {
	out := s
	out.Extra = make(map[string]json.RawMessage, len(s.Extra)+len(answer.Extra))
	for k, v := range s.Extra {
		out.Extra[k] = v
	}
	for k, v := range answer.Extra {
		out.Extra[k] = v
	}
	for _, k := range knownFields {
		if k == "expires_in" {
			if answer.ExpiresIn != "" {
				out.ExpiresIn = answer.ExpiresIn
			}
			continue
		}
		if v := *answer.stringField(k); v != "" {
			*out.stringField(k) = v
		}
	}
	return out
}

// String describes the set without any secret.
func (s TokenSet) String() string {
	var b strings.Builder
	b.WriteString("auth.TokenSet{access: ")
	b.WriteString(Describe(s.AccessToken))
	b.WriteString(", refresh: ")
	b.WriteString(Describe(s.RefreshToken))
	b.WriteString(", id: ")
	b.WriteString(Describe(s.IDToken))
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v does not print secrets either.
func (s TokenSet) GoString() string { return s.String() }
