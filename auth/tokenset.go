package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidTokenSet is returned (wrapped) for JSON that is not a usable
// token set. Its messages name fields, never values.
var ErrInvalidTokenSet = errors.New("invalid token set")

// errTruncated is the reason for JSON that ends before its value does.
var errTruncated = errors.New("token set JSON is truncated")

// TokenSet is what the token endpoint returns and what the helper stores, in
// the shape of the Python SDK's dump_tokens() and of PRUSA_TOKENS_JSON. Only
// AccessToken is required. Fields the helper does not know are kept in Extra
// and written back unchanged.
type TokenSet struct {
	AccessToken      string
	RefreshToken     string
	IDToken          string
	ExpiresIn        json.Number // as received: an integer or a float
	TokenType        string      // "Bearer" or empty
	Scope            string
	SharedSessionKey string
	// ClockOffset is the account server's clock minus the local clock, as
	// estimated from the answer that brought the set (see ServerNow). It is
	// written as "clock_offset", in seconds, and read to the millisecond.
	ClockOffset time.Duration
	// ReplacedEnv is a SHA-256 of the refresh token of the environment's
	// token set that this set replaced, if any, as its writer encodes it.
	// It is written as "replaced_env_sha256".
	ReplacedEnv string
	// AccountURL is the account server that issued the set, as set by the
	// login or refresh that brought it (Client.AccountURL); empty when
	// not known, as for a set given to store. A Client sends the set's
	// refresh token to no other server (Client.Refreshable). It is written
	// as "account_url".
	AccountURL string
	Extra      map[string]json.RawMessage

	access, refresh parsed // claims, once parsed (see Access)
}

// parsed are the claims of a token, kept once ParseJWT has read them.
type parsed struct {
	of     string // the token
	claims *Claims
}

func (p *parsed) get(token string) (*Claims, error) {
	if p.claims != nil && p.of == token {
		return p.claims, nil
	}
	c, err := ParseJWT(token)
	if err == nil {
		*p = parsed{token, c}
	}
	return c, err
}

// Access returns the access token's claims: parsed once, by Validate or by
// the first call, and again only if AccessToken has changed since.
func (s *TokenSet) Access() (*Claims, error) { return s.access.get(s.AccessToken) }

// RefreshClaims is Access for the refresh token.
func (s *TokenSet) RefreshClaims() (*Claims, error) { return s.refresh.get(s.RefreshToken) }

// knownFields lists the fields of a token set in the order they are written.
var knownFields = []string{"access_token", "refresh_token", "id_token", "expires_in", "token_type", "scope", "shared_session_key", "clock_offset", "replaced_env_sha256", "account_url"}

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
	case "replaced_env_sha256":
		return &s.ReplacedEnv
	case "account_url":
		return &s.AccountURL
	}
	return nil
}

// ServerNow is the account server's time at the local time local, by the
// set's ClockOffset: the clock by which its tokens' exp is to be judged.
func (s TokenSet) ServerNow(local time.Time) time.Time { return local.Add(s.ClockOffset) }

// UnmarshalJSON reads a token set. It checks the JSON shape only (a JSON
// object whose known fields have the right types); Validate checks the JWTs.
// A token_type of "bearer" in any case reads as "Bearer".
func (s *TokenSet) UnmarshalJSON(b []byte) error {
	set, err := decodeTokenSet(b)
	if err != nil {
		return err
	}
	*s = *set
	return nil
}

func invalidSet(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidTokenSet}, args...)...)
}

func decodeTokenSet(b []byte) (*TokenSet, error) {
	m, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	return tokenSetOf(m, b)
}

// decodeObject decodes b, which must be one JSON object, into generic
// values, with numbers as written (json.Number).
func decodeObject(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, invalidSet("not valid UTF-8")
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	err := dec.Decode(&m)
	var syn *json.SyntaxError
	switch {
	case err == io.EOF:
		return nil, invalidSet("token set JSON is empty")
	case err == io.ErrUnexpectedEOF:
		return nil, invalidSet("%w", errTruncated)
	case errors.As(err, &syn):
		return nil, invalidSet("token set is not valid JSON (at byte %d)", syn.Offset)
	case err != nil || m == nil:
		return nil, invalidSet("not a JSON object")
	case len(bytes.TrimSpace(b[dec.InputOffset():])) > 0:
		return nil, invalidSet("token set has data after the JSON object")
	}
	return m, nil
}

// tokenSetOf reads a token set from m, the object decodeObject decoded
// from b.
func tokenSetOf(m map[string]any, b []byte) (*TokenSet, error) {
	s := new(TokenSet)
	unknown := false
	for k, v := range m {
		if v == nil {
			continue
		}
		if p := s.stringField(k); p != nil {
			str, ok := v.(string)
			if !ok {
				return nil, invalidSet("%s is not a string", k)
			}
			*p = str
			continue
		}
		switch k {
		case "expires_in":
			n, ok := v.(json.Number)
			if !ok {
				return nil, invalidSet("expires_in is not a number")
			}
			s.ExpiresIn = n
		case "clock_offset":
			// Only an estimate: one that cannot be used is dropped (the
			// next answer gives a new one), never a reason to call the
			// set corrupt and lose it.
			if n, ok := v.(json.Number); ok {
				if f, err := n.Float64(); err == nil && math.Abs(f) <= maxClockOffset.Seconds() {
					s.ClockOffset = time.Duration(math.Round(f*1e3)) * time.Millisecond
				}
			}
		default:
			unknown = true
		}
	}
	if unknown {
		// Fields the helper does not know are written back as they came:
		// read them again, raw.
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(b, &raw) // it decoded above
		s.Extra = make(map[string]json.RawMessage)
		for k, v := range raw {
			if slices.Contains(knownFields, k) || string(v) == "null" {
				continue
			}
			var c bytes.Buffer
			_ = json.Compact(&c, v)
			s.Extra[k] = c.Bytes()
		}
	}
	if strings.EqualFold(s.TokenType, "bearer") {
		s.TokenType = "Bearer"
	}
	return s, nil
}

// MarshalJSON writes the known fields in a fixed order, then the unknown
// ones sorted by name, so that a set round-trips byte for byte. Each value
// is encoded by encoding/json on its own: a struct would cost a fresh
// process its encoder's start-up on every save. Its output is compact and
// valid, so the stores call it directly: json.Marshal(s) would only check
// and copy it again (about 0.15 ms of a refresh, in a fresh process).
func (s TokenSet) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 512+len(s.AccessToken)+len(s.RefreshToken)+len(s.IDToken)), '{') // a real set in one allocation
	add := func(name string, v []byte) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(name) // a string always marshals
		b = append(append(append(b, k...), ':'), v...)
	}
	for _, k := range knownFields {
		var v []byte
		var err error
		switch p := s.stringField(k); {
		case p != nil && *p != "":
			v, err = json.Marshal(*p)
		case k == "expires_in" && s.ExpiresIn != "":
			v, err = json.Marshal(s.ExpiresIn) // checks that it is a number
		case k == "clock_offset" && s.ClockOffset != 0:
			v = strconv.AppendFloat(nil, s.ClockOffset.Seconds(), 'f', -1, 64)
		}
		if err != nil {
			return nil, err
		}
		if v != nil {
			add(k, v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Extra)) {
		if slices.Contains(knownFields, k) {
			continue
		}
		var v bytes.Buffer
		if json.Compact(&v, s.Extra[k]) != nil {
			return nil, fmt.Errorf("field %s is not valid JSON", sanitize(k, 64))
		}
		add(k, v.Bytes())
	}
	return append(b, '}'), nil
}

// ParseTokenSet reads a token set from JSON and validates it.
func ParseTokenSet(b []byte) (*TokenSet, error) {
	m, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	return validTokenSetOf(m, b)
}

// validTokenSetOf is ParseTokenSet of b, which decodeObject decoded as m.
func validTokenSetOf(m map[string]any, b []byte) (*TokenSet, error) {
	s, err := tokenSetOf(m, b)
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks that the set has an access token, that every JWT it
// carries is well-formed with an exp claim (ParseJWT), that the refresh
// token (if any) belongs to the same user as the access token, that the
// token type (if any) is Bearer, and that the account URL (if any) passes
// CheckAccountURL.
func (s *TokenSet) Validate() error {
	if s.AccessToken == "" {
		return invalidSet("no access_token")
	}
	if s.TokenType != "" && !strings.EqualFold(s.TokenType, "bearer") {
		return invalidSet("token_type is not Bearer")
	}
	if s.AccountURL != "" {
		if err := CheckAccountURL(s.AccountURL); err != nil {
			return invalidSet("account_url: %v", err)
		}
	}
	access, err := s.Access()
	if err != nil {
		return invalidSet("access_token: %w", err)
	}
	if s.RefreshToken != "" {
		refresh, err := s.RefreshClaims()
		if err != nil {
			return invalidSet("refresh_token: %w", err)
		}
		if refresh.Subject != access.Subject {
			return invalidSet("refresh_token belongs to another user than access_token")
		}
	}
	if s.IDToken != "" {
		if _, err := ParseJWT(s.IDToken); err != nil {
			return invalidSet("id_token: %w", err)
		}
	}
	return nil
}

// Merge returns the set that results from a token endpoint answer: the
// answer's fields win, and a field the answer lacks (a refresh or id token,
// the clock offset, ReplacedEnv, AccountURL) is kept from s (the Python SDK merges the
// same way). Unknown fields of s stay unless the answer carries them too.
func (s TokenSet) Merge(answer TokenSet) TokenSet {
	out := s
	out.Extra = make(map[string]json.RawMessage, len(s.Extra)+len(answer.Extra))
	maps.Copy(out.Extra, s.Extra)
	maps.Copy(out.Extra, answer.Extra)
	for _, k := range knownFields {
		if p := answer.stringField(k); p != nil && *p != "" {
			*out.stringField(k) = *p
		}
	}
	if answer.ExpiresIn != "" {
		out.ExpiresIn = answer.ExpiresIn
	}
	if answer.ClockOffset != 0 {
		out.ClockOffset = answer.ClockOffset
	}
	if answer.AccessToken != "" {
		out.access = answer.access
	}
	if answer.RefreshToken != "" {
		out.refresh = answer.refresh
	}
	return out
}

// MaxSetSize bounds a token set as the helper keeps it, in bytes of its
// JSON: every store keeps and reads back a set this large, and store takes
// no larger one. A real set is about 5 KB.
const MaxSetSize = 64 << 10

// TooLarge reports whether the set's JSON exceeds MaxSetSize.
func (s TokenSet) TooLarge() bool {
	b, err := s.MarshalJSON()
	return err != nil || len(b) > MaxSetSize
}

// fit makes a set that an answer brought fit MaxSetSize, so that it can
// be read back once saved: first without the fields the helper does not
// know, then without its identity token. A set too large even so is kept
// as it is: the server has spent what it replaced, and the file store
// reads back far more.
func (c *Client) fit(s TokenSet) TokenSet {
	if !s.TooLarge() {
		return s
	}
	s.Extra = nil
	dropped := "its unknown fields"
	if s.TooLarge() {
		s.IDToken, dropped = "", "its unknown fields and identity token"
	}
	c.debugf("the new set exceeds %d bytes: dropped %s", MaxSetSize, dropped)
	return s
}

// String describes the set without any secret.
func (s TokenSet) String() string {
	return "auth.TokenSet{access: " + Describe(s.AccessToken) + ", refresh: " + Describe(s.RefreshToken) + ", id: " + Describe(s.IDToken) + "}"
}

// GoString is String, so that %#v does not print secrets either.
func (s TokenSet) GoString() string { return s.String() }
