package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Format is an output format of get.
type Format string

// The output formats.
const (
	FormatJSON   Format = "json"   // one JSON document (the default)
	FormatToken  Format = "token"  // the JWT and a newline
	FormatHeader Format = "header" // Authorization: Bearer <JWT>
	FormatEnv    Format = "env"    // PRUSA_TOKEN=<JWT>, for eval, export and Makefiles
)

// Formats lists every format, in the order `version --json` gives them.
var Formats = []Format{FormatJSON, FormatToken, FormatHeader, FormatEnv}

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", errors.New("want json, token, header or env")
}

// TimeLayout is the layout of every time in the protocol: UTC, seconds.
const TimeLayout = "2006-01-02T15:04:05Z"

// FormatTime writes t as YYYY-MM-DDTHH:MM:SSZ in UTC, truncated to the
// second like expiration_time.
func FormatTime(t time.Time) string {
	return time.Unix(t.Unix(), 0).UTC().Format(TimeLayout)
}

// writeJSON writes v as one line, without escaping <, > and & (messages
// stay readable).
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Token is the answer of get. It is never the refresh token.
type Token struct {
	Profile     string
	TokenType   string
	AccessToken string
	Expiry      time.Time
	Store       string // where it came from: "keyring", "file" or an environment variable; not written
	LoggedIn    bool   // an auto-login brought it (a new session); not written
}

// String describes the answer without the token itself.
func (t Token) String() string {
	return fmt.Sprintf("protocol.Token{profile: %s, expires: %s, token: <redacted>}", t.Profile, FormatTime(t.Expiry))
}

// GoString is String, so that %#v does not print the token either.
func (t Token) GoString() string { return t.String() }

// WriteToken writes get's answer in format f.
func WriteToken(w io.Writer, f Format, t Token) error {
	switch f {
	case FormatToken:
		_, err := fmt.Fprintf(w, "%s\n", t.AccessToken)
		return err
	case FormatHeader:
		_, err := fmt.Fprintf(w, "Authorization: %s %s\n", t.TokenType, t.AccessToken)
		return err
	case FormatEnv:
		_, err := fmt.Fprintf(w, "PRUSA_TOKEN=%s\n", ShellQuote(t.AccessToken))
		return err
	}
	// Field by field: the answer of every cached get, which a struct would
	// make pay encoding/json's struct encoder start-up (see README.md, Speed).
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as writeJSON
	field := func(name, v string) {
		b.WriteString(`,"` + name + `":`)
		_ = enc.Encode(v)       // a string always encodes
		b.Truncate(b.Len() - 1) // its newline
	}
	b.WriteString(`{"version":` + strconv.Itoa(Version) + `,"success":true`)
	field("profile", t.Profile)
	field("token_type", t.TokenType)
	field("access_token", t.AccessToken)
	field("expires_at", FormatTime(t.Expiry))
	b.WriteString(`,"expiration_time":` + strconv.FormatInt(t.Expiry.Unix(), 10) + "}\n")
	_, err := w.Write(b.Bytes())
	return err
}

// ShellQuote quotes s for a POSIX shell: as it is when it holds only
// characters that never need quoting (a JWT, a plain path or URL), else in
// single quotes. The env format is so safe to eval.
func ShellQuote(s string) string {
	safe := s != "" && s[0] != '=' // zsh expands a leading =
	for i := 0; i < len(s) && safe; i++ {
		c := s[i]
		safe = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("@%+=:,./_-", c) >= 0
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// WriteStored writes store's answer.
func WriteStored(w io.Writer, profile, store string) error {
	return writeJSON(w, struct {
		Version int    `json:"version"`
		Success bool   `json:"success"`
		Profile string `json:"profile"`
		Store   string `json:"store"`
	}{Version, true, profile, store})
}

// WriteErased writes erase's answer.
func WriteErased(w io.Writer, profile string, erased bool) error {
	return writeJSON(w, struct {
		Version int    `json:"version"`
		Success bool   `json:"success"`
		Profile string `json:"profile"`
		Erased  bool   `json:"erased"`
	}{Version, true, profile, erased})
}

// Profile describes a stored profile, with no secrets. Empty fields and
// zero times are left out of the JSON.
type Profile struct {
	Profile        string
	Store          string
	UserID         string
	Email          string
	AccessExpires  time.Time
	RefreshExpires time.Time
	// ClockOffset is the set's estimate of the account server's clock
	// minus the local one: the expiries are judged by now + ClockOffset.
	// It is not written out.
	ClockOffset time.Duration
	// AccountURL is the account server that issued the set, if known
	// (auth.TokenSet.AccountURL). It is not written out.
	AccountURL string
}

type profileJSON struct {
	Profile          string  `json:"profile"`
	Store            string  `json:"store"`
	UserID           *string `json:"user_id,omitempty"` // of every set, "" for a token without sub
	Email            string  `json:"email,omitempty"`
	AccessExpiresAt  string  `json:"access_expires_at,omitempty"`
	RefreshExpiresAt string  `json:"refresh_expires_at,omitempty"`
}

func (p Profile) json() profileJSON {
	j := profileJSON{Profile: p.Profile, Store: p.Store, Email: p.Email}
	if !p.AccessExpires.IsZero() { // a set: every set has an access token, with an exp
		j.UserID, j.AccessExpiresAt = &p.UserID, FormatTime(p.AccessExpires)
	}
	if !p.RefreshExpires.IsZero() {
		j.RefreshExpiresAt = FormatTime(p.RefreshExpires)
	}
	return j
}

// WriteList writes list's answer.
func WriteList(w io.Writer, profiles []Profile) error {
	out := make([]profileJSON, 0, len(profiles))
	for _, p := range profiles {
		out = append(out, p.json())
	}
	return writeJSON(w, struct {
		Version  int           `json:"version"`
		Success  bool          `json:"success"`
		Profiles []profileJSON `json:"profiles"`
	}{Version, true, out})
}

// WriteStatus writes `status --json`: a profile, and whether a login is
// required.
func WriteStatus(w io.Writer, p Profile, loginRequired bool) error {
	j := p.json()
	return writeJSON(w, struct {
		profileJSON
		LoginRequired bool `json:"login_required"`
	}{j, loginRequired})
}

// WriteError writes an error document, in the JSON format only: the other
// formats print nothing on stdout on error, so that $(…) is empty.
func WriteError(w io.Writer, f Format, e *Error) error {
	if f != FormatJSON && f != "" {
		return nil
	}
	return writeJSON(w, struct {
		Version   int    `json:"version"`
		Success   bool   `json:"success"`
		Code      Code   `json:"code"`
		Message   string `json:"message"`
		Retryable bool   `json:"retryable"`
	}{Version, false, e.Code, e.JSONMessage(), e.Code.Retryable()})
}

// WriteVersion writes `version --json`.
func WriteVersion(w io.Writer, version string) error {
	return writeJSON(w, struct {
		Version  string   `json:"version"`
		Protocol int      `json:"protocol"`
		Formats  []Format `json:"formats"`
	}{version, Version, Formats})
}
