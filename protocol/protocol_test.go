package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReadRequest(t *testing.T) {
	tests := []struct {
		in      string
		want    Request
		wantErr string
	}{
		{in: "", want: Request{}},
		{in: " \n\t ", want: Request{}},
		{in: `{}`, want: Request{}},
		{in: `{"version": 1, "profile": "work", "min_ttl": 300, "force_refresh": true, "extra": {"x": [1]}}`, want: Request{Version: 1, Profile: "work", HasProfile: true, MinTTL: 300 * time.Second, ForceRefresh: true}},
		{in: `{"min_ttl": 300.0}`, want: Request{MinTTL: 300 * time.Second}},
		{in: `{"min_ttl": 3e2}`, want: Request{MinTTL: 300 * time.Second}},
		{in: `{"min_ttl": 0}`, want: Request{}},
		{in: `{"min_ttl": 86400}`, want: Request{MinTTL: 86400 * time.Second}},
		{in: `{"min_ttl": 86401}`, wantErr: "between 0 and 86400"},
		{in: `{"min_ttl": -1}`, wantErr: "between 0 and 86400"},
		{in: `{"min_ttl": 1.5}`, wantErr: "whole number"},
		{in: `{"min_ttl": "300"}`, wantErr: "whole number of seconds, not a string"},
		{in: `{"min_ttl": null}`, wantErr: "whole number"},
		{in: `{"min_ttl": 1e400}`, wantErr: "whole number"},
		// Exactly, as written: a float64 rounds each of these to a whole
		// number, or into range.
		{in: `{"min_ttl": 0.99999999999999999}`, wantErr: "whole number"},
		{in: `{"min_ttl": 86400.00000000000001}`, wantErr: "whole number"},
		{in: `{"min_ttl": 1e-400}`, wantErr: "whole number"},
		{in: `{"min_ttl": 300.000}`, want: Request{MinTTL: 300 * time.Second}},
		{in: `{"min_ttl": 0.3e3}`, want: Request{MinTTL: 300 * time.Second}},
		{in: `{"min_ttl": 30000E-2}`, want: Request{MinTTL: 300 * time.Second}},
		{in: `{"min_ttl": -0}`, want: Request{}},
		{in: `{"min_ttl": 1e31}`, wantErr: "whole number"},
		{in: `{"version": 1.00000000000000001}`, wantErr: "unsupported request version"},
		{in: `{"version": 2}`, wantErr: "unsupported request version"},
		{in: `{"version": "1"}`, wantErr: "unsupported request version"},
		{in: `{"version": 1.0}`, want: Request{Version: 1}},
		{in: `{"profile": ""}`, wantErr: "profile must not be empty"},
		{in: `{"profile": 5}`, wantErr: "profile must be a string"},
		{in: `{"force_refresh": "yes"}`, wantErr: "force_refresh must be true or false"},
		{in: `{"force_refresh": 1}`, wantErr: "force_refresh must be true or false"},
		{in: `null`, wantErr: "null"},
		{in: `[]`, wantErr: "not a JSON object"},
		{in: `"x"`, wantErr: "not a JSON object"},
		{in: `{} {}`, wantErr: "data after the JSON object"},
		{in: `{}x`, wantErr: "data after the JSON object"},
		{in: `{"a":`, wantErr: "truncated"},
		{in: `{'a':1}`, wantErr: "not valid JSON"},
		{in: "{\"profile\": \"\xff\"}", wantErr: "UTF-8"},
		{in: `{"profile": "` + strings.Repeat("a", MaxRequest) + `"}`, wantErr: "larger than 64 KiB"},
	}
	for _, tt := range tests {
		got, err := ReadRequest(strings.NewReader(tt.in))
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		if tt.wantErr != "" {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != InvalidRequest || !strings.Contains(pe.Message, tt.wantErr) {
				t.Errorf("%q: err = %v, want invalid_request %q", name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %+v, %v; want %+v", name, got, err, tt.want)
		}
	}
	// Exactly 64 KiB is allowed.
	body := `{"x":"` + strings.Repeat("a", MaxRequest-8) + `"}`
	if _, err := ReadRequest(strings.NewReader(body)); err != nil || len(body) != MaxRequest {
		t.Errorf("a %d-byte request: %v", len(body), err)
	}
}

func TestExitCodes(t *testing.T) {
	want := map[Code]struct {
		exit      int
		retryable bool
	}{
		InvalidRequest: {2, false}, LoginRequired: {4, false}, NetworkError: {75, true},
		Timeout: {75, true}, ServerError: {75, true}, StorageError: {1, false}, Internal: {1, false},
	}
	for c, w := range want {
		if c.ExitCode() != w.exit || c.Retryable() != w.retryable {
			t.Errorf("%s: exit %d retryable %v, want %d %v", c, c.ExitCode(), c.Retryable(), w.exit, w.retryable)
		}
	}
}

func TestWriteToken(t *testing.T) {
	tok := Token{Profile: "default", TokenType: "Bearer", AccessToken: "aaa.bbb-_.ccc", Expiry: time.Unix(1795733862, 900e6)}
	want := map[Format]string{
		FormatJSON:   `{"version":1,"success":true,"profile":"default","token_type":"Bearer","access_token":"aaa.bbb-_.ccc","expires_at":"2026-11-26T22:57:42Z","expiration_time":1795733862}` + "\n",
		FormatToken:  "aaa.bbb-_.ccc\n",
		FormatHeader: "Authorization: Bearer aaa.bbb-_.ccc\n",
		FormatEnv:    "PRUSA_TOKEN=aaa.bbb-_.ccc\n",
	}
	for f, w := range want {
		var b bytes.Buffer
		if err := WriteToken(&b, f, tok); err != nil || b.String() != w {
			t.Errorf("%s: %q, want %q", f, b.String(), w)
		}
	}
	var b bytes.Buffer
	tok.AccessToken = "a'b $(rm -rf ~)"
	WriteToken(&b, FormatEnv, tok)
	if b.String() != `PRUSA_TOKEN='a'\''b $(rm -rf ~)'`+"\n" {
		t.Errorf("env format of a hostile token: %q", b.String())
	}
}

// FuzzWriteToken: get's answer, written field by field, is byte for byte
// what encoding/json writes for the same struct, whatever the values hold.
func FuzzWriteToken(f *testing.F) {
	f.Add("default", "Bearer", "aaa.bbb-_.ccc", int64(1795733862))
	f.Add(`p<&>"\é`+"\x00\u2028", "Bearer\n", "<script>&amp;\xff", int64(-1))
	f.Add("", "", "", int64(0))
	f.Fuzz(func(t *testing.T, profile, tokenType, access string, exp int64) {
		tok := Token{Profile: profile, TokenType: tokenType, AccessToken: access, Expiry: time.Unix(exp, 0)}
		var got, want bytes.Buffer
		if err := WriteToken(&got, FormatJSON, tok); err != nil {
			t.Fatal(err)
		}
		writeJSON(&want, struct {
			Version        int    `json:"version"`
			Success        bool   `json:"success"`
			Profile        string `json:"profile"`
			TokenType      string `json:"token_type"`
			AccessToken    string `json:"access_token"`
			ExpiresAt      string `json:"expires_at"`
			ExpirationTime int64  `json:"expiration_time"`
		}{Version, true, tok.Profile, tok.TokenType, tok.AccessToken, FormatTime(tok.Expiry), tok.Expiry.Unix()})
		if got.String() != want.String() {
			t.Errorf("got  %s\nwant %s", got.String(), want.String())
		}
	})
}

func TestWriteError(t *testing.T) {
	e := &Error{Code: LoginRequired, Message: `no stored credentials for profile "default"`, Hint: "run: prusa-credential-helper login"}
	var b bytes.Buffer
	WriteError(&b, FormatJSON, e)
	want := `{"version":1,"success":false,"code":"login_required","message":"no stored credentials for profile \"default\"; run: prusa-credential-helper login","retryable":false}` + "\n"
	if b.String() != want {
		t.Errorf("got %s", b.String())
	}
	for _, f := range []Format{FormatToken, FormatHeader, FormatEnv} {
		b.Reset()
		WriteError(&b, f, e)
		if b.Len() != 0 {
			t.Errorf("%s: an error printed %q on stdout", f, b.String())
		}
	}
	if got := e.Stderr("p"); got != "p: no stored credentials for profile \"default\"\nhint: run: prusa-credential-helper login\n" {
		t.Errorf("stderr %q", got)
	}
	if got := (&Error{Message: "a\nb"}).Stderr("p"); strings.Count(got, "\n") != 1 {
		t.Errorf("multi-line message: %q", got)
	}
}

func TestWriteListAndStatus(t *testing.T) {
	var b bytes.Buffer
	WriteList(&b, nil)
	if b.String() != `{"version":1,"success":true,"profiles":[]}`+"\n" {
		t.Errorf("empty list: %s", b.String())
	}
	b.Reset()
	WriteStatus(&b, Profile{Profile: "default", Store: "keyring"}, true)
	if b.String() != `{"profile":"default","store":"keyring","login_required":true}`+"\n" {
		t.Errorf("status: %s", b.String())
	}
	// A set whose access token has no sub still has a user_id: a string.
	exp := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b.Reset()
	WriteList(&b, []Profile{{Profile: "p", Store: "file", AccessExpires: exp}})
	if b.String() != `{"version":1,"success":true,"profiles":[{"profile":"p","store":"file","user_id":"","access_expires_at":"2026-12-01T12:00:00Z"}]}`+"\n" {
		t.Errorf("list of a set without sub: %s", b.String())
	}
}

func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{"", "{}", `{"version":1,"profile":"a","min_ttl":300,"force_refresh":true}`, `null`, `[1]`, `{"min_ttl":1e9}`, "{\"a\":\"\xff\"}", `{} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ReadRequest(bytes.NewReader(b))
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != InvalidRequest {
				t.Fatalf("error %v is not an invalid_request", err)
			}
			return
		}
		if req.MinTTL < 0 || req.MinTTL > MaxMinTTL*time.Second || (req.Version != 0 && req.Version != 1) || (req.HasProfile && req.Profile == "") {
			t.Fatalf("accepted an out-of-range request %+v", req)
		}
	})
}

func TestShown(t *testing.T) {
	for _, tt := range []struct{ in, kind, want string }{
		{"renew", Word, `"renew"`},
		{"", Word, `""`},
		{"yaml", Word, `"yaml"`},
		{"no_such_command", Word, `"no_such_command"`},
		{"cmd2", Word, `"cmd2"`},
		{"definitely-not-a-command", Word, `"definitely-not-a-command"`},
		{strings.Repeat("a", 25), Word, "(25 characters, not shown)"},
		{"Hunter2024", Word, "(10 characters, not shown)"},
		{"XML", Word, "(3 characters, not shown)"},
		{"JBSWY3DPEHPK3PXP", Word, "(16 characters, not shown)"},
		{"pa$$word", Word, "(8 characters, not shown)"},
		{"pass word", Word, "(9 characters, not shown)"},
		{`{"access_token":"x"}`, Word, "(20 characters, not shown)"},
		{"eyJhbGciOiJSUzI1NiJ9.eyJ", Word, "(24 characters, not shown)"},
		{"průša", Word, "(5 characters, not shown)"},
		{"a\nb", Word, "(3 characters, not shown)"},
		{"!", Word, "(1 character, not shown)"},
		{"482913", Word, "(6 characters, not shown)"},
		{"482913", Duration, "(6 characters, not shown)"},
		{"123", Word, `"123"`},
		{"20", Duration, `"20"`},
		{"-5s", Duration, `"-5s"`},
		{"1.5h", Duration, `"1.5h"`},
		{"10µs", Duration, `"10µs"`},
		{"Soon", Duration, "(4 characters, not shown)"},
		{"[::1]", Host, `"[::1]"`},
		{"etcd-1.farm", Host, `"etcd-1.farm"`},
		{"Hunter2", Host, "(7 characters, not shown)"},
	} {
		if got := Shown(tt.in, tt.kind); got != tt.want {
			t.Errorf("Shown(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
