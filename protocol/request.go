package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxRequest is the largest request body, in bytes.
const MaxRequest = 64 << 10

// MaxMinTTL is the largest min_ttl, in seconds (a day).
const MaxMinTTL = 86400

// Request is a request on a protocol command's stdin. Every field is
// optional; an empty stdin is an empty request.
type Request struct {
	Version      int    // 0 when absent, else 1
	Profile      string // "" when absent (an empty string given is an error)
	HasProfile   bool
	MinTTL       time.Duration
	ForceRefresh bool
}

// ReadRequest reads a request of at most MaxRequest bytes: empty or
// whitespace, or one JSON object. Unknown fields are ignored; anything
// else — null, an array, two documents, trailing garbage, invalid UTF-8, a
// field of the wrong type or range, a larger body — is an InvalidRequest
// *Error that says which.
func ReadRequest(r io.Reader) (Request, error) {
	body, err := readBody(r)
	if err != nil {
		return Request{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Request{}, nil
	}
	m, err := decodeObject(body, "request")
	if err != nil {
		return Request{}, err
	}
	return requestFrom(m)
}

// readBody reads stdin up to the size limit and checks its encoding.
func readBody(r io.Reader) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r, MaxRequest+1))
	if err != nil {
		return nil, Errorf(InvalidRequest, "cannot read the request: %v", err)
	}
	if len(body) > MaxRequest {
		return nil, Errorf(InvalidRequest, "request is larger than %d KiB", MaxRequest>>10)
	}
	if !utf8.Valid(body) {
		return nil, Errorf(InvalidRequest, "request is not valid UTF-8")
	}
	return body, nil
}

// decodeObject decodes exactly one JSON object, with numbers kept as text.
func decodeObject(body []byte, what string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typ):
			return nil, Errorf(InvalidRequest, "%s is not a JSON object", what)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, Errorf(InvalidRequest, "%s is truncated JSON", what)
		case errors.As(err, &syn):
			return nil, Errorf(InvalidRequest, "%s is not valid JSON (at byte %d)", what, syn.Offset)
		default:
			return nil, Errorf(InvalidRequest, "%s is not valid JSON", what)
		}
	}
	if m == nil {
		return nil, Errorf(InvalidRequest, "%s is null, not a JSON object", what)
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return nil, Errorf(InvalidRequest, "%s has data after the JSON object", what)
	}
	return m, nil
}

func requestFrom(m map[string]json.RawMessage) (Request, error) {
	var req Request
	if raw, ok := m["version"]; ok {
		n, ok := integral(raw)
		if !ok || n != Version {
			return Request{}, Errorf(InvalidRequest, "unsupported request version (this helper speaks version %d)", Version)
		}
		req.Version = Version
	}
	var err error
	if req.Profile, req.HasProfile, err = profileField(m); err != nil {
		return Request{}, err
	}
	if raw, ok := m["min_ttl"]; ok {
		n, ok := integral(raw)
		switch {
		case !ok && raw[0] == '"':
			return Request{}, Errorf(InvalidRequest, "min_ttl must be a whole number of seconds, not a string")
		case !ok:
			return Request{}, Errorf(InvalidRequest, "min_ttl must be a whole number of seconds")
		}
		if n < 0 || n > MaxMinTTL {
			return Request{}, Errorf(InvalidRequest, "min_ttl must be between 0 and %d seconds", MaxMinTTL)
		}
		req.MinTTL = time.Duration(n) * time.Second
	}
	if raw, ok := m["force_refresh"]; ok {
		switch string(raw) {
		case "true":
			req.ForceRefresh = true
		case "false":
		default:
			return Request{}, Errorf(InvalidRequest, "force_refresh must be true or false")
		}
	}
	return req, nil
}

// integral reads a JSON number with an integral value (300, 300.0, 3e2),
// exactly, from its decimal text: 0.99999999999999999 and 1e-400 are not
// whole, though a float64 rounds them to one. An exponent beyond ±30 and a
// value beyond ±2^53 are refused.
func integral(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, false
	}
	if i := bytes.IndexAny(raw, "eE"); i >= 0 {
		if e, err := strconv.Atoi(string(raw[i+1:])); err != nil || e < -30 || e > 30 {
			return 0, false // before math/big would write out its digits
		}
	}
	r, ok := new(big.Rat).SetString(string(raw))
	if !ok || !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	n := r.Num().Int64()
	if n > 1<<53 || n < -(1<<53) {
		return 0, false
	}
	return n, true
}

// ReadTokenSetBody reads the body of store: at most MaxRequest bytes of
// valid UTF-8 holding one JSON object. It returns the object's fields and
// the profile it names, if any; the caller validates the token set.
func ReadTokenSetBody(r io.Reader) (body []byte, profile string, hasProfile bool, err error) {
	body, err = readBody(r)
	if err != nil {
		return nil, "", false, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, "", false, &Error{Code: InvalidRequest, Message: "no token set on stdin",
			Hint: "pipe in a token set: the JSON of the Python SDK's dump_tokens(), or of a token file"}
	}
	m, err := decodeObject(body, "token set")
	if err != nil {
		return nil, "", false, err
	}
	if profile, hasProfile, err = profileField(m); err != nil {
		return nil, "", false, err
	}
	if hasProfile {
		delete(m, "profile")
		body, _ = json.Marshal(m)
	}
	return body, profile, hasProfile, nil
}

// profileField reads the optional "profile" of a request or token set: a
// string, not empty.
func profileField(m map[string]json.RawMessage) (profile string, ok bool, err error) {
	raw, ok := m["profile"]
	if !ok {
		return "", false, nil
	}
	if json.Unmarshal(raw, &profile) != nil || raw[0] != '"' {
		return "", false, Errorf(InvalidRequest, "profile must be a string")
	}
	if profile == "" {
		return "", false, Errorf(InvalidRequest, "profile must not be empty")
	}
	return profile, true, nil
}
