package auth

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func FuzzParseJWT(f *testing.F) {
	f.Add(makeJWT(rs256, `{"jti":"a","sub":"1530681","exp":1795733862,"sid":"s","app":"connect","type":"access","connect_id":"1"}`))
	f.Add(makeJWT(rs256, `{"sub":1530681,"exp":1795733862.5,"user":{"id":1,"email":"a@b.c"}}`))
	f.Add(makeJWT(rs256, `{"exp":1e300}`))
	f.Add(makeJWT(`{"alg":"none"}`, `{}`))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	f.Add(makeJWT(rs256, `{"exp":5}`) + "\r\nX-Injected: evil")
	f.Add(makeJWT(rs256, `{"exp":100}}}}`))
	f.Add(makeJWT(rs256, `{"sub":"a\u001b[2J\nb","jti":"x\r\ny\u0085","exp":5}`))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ParseJWT(token)
		if err != nil {
			if c != nil {
				t.Fatal("claims with an error")
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			if len(token) > 12 && strings.Contains(err.Error(), token) {
				t.Fatal("error quotes the token")
			}
			return
		}
		if strings.Count(token, ".") != 2 || strings.ContainsAny(token, "\r\n=+/ ") {
			t.Fatalf("accepted a token that is not three base64url parts: %q", token)
		}
		if !c.Expiry.Set || c.Expiry.Time.Unix() < 0 {
			t.Fatalf("accepted a token without a sane exp: %v", c.Expiry)
		}
		// Its claims are one JSON object, as encoding/json reads one.
		claims, _ := parser.DecodeSegment(strings.Split(token, ".")[1])
		var m map[string]any
		if err := json.Unmarshal(claims, &m); err != nil || m == nil {
			t.Fatalf("accepted claims that are not one JSON object: %q", claims)
		}
		if d := Describe(token); strings.ContainsFunc(d, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(d) > 200 {
			t.Fatalf("Describe = %q: not one short printable line", d)
		}
	})
}

func FuzzTokenSet(f *testing.F) {
	a := makeJWT(rs256, `{"sub":"1","exp":1795733862}`)
	f.Add([]byte(`{"access_token":"` + a + `","refresh_token":"` + a + `","expires_in":7200,"x":[1,{"y":null}]}`))
	f.Add([]byte(`{"access_token":"` + a + `","expires_in":7200.5,"token_type":"Bearer","scope":"basic_info"}`))
	f.Add([]byte(`{"access_token":5}`))
	f.Add([]byte(`null`))
	f.Add([]byte("{\"access_token\":\"\xff\"}"))
	f.Add([]byte(`{"access_token":"a","access_token":null,"expires_in":1,"expires_in":null, "token_type" : "Bearer" }`))
	f.Add([]byte(`{"id_token":"x<y","scope":"a&b","refresh_token":"\u00e9"}`))
	f.Add([]byte(`{"access_token":"a","clock_offset":-10800,"replaced_env_sha256":"00","token_type":"bearer"}`))
	f.Add([]byte(`{"access_token": "ey`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s TokenSet
		if err := json.Unmarshal(b, &s); err != nil {
			if _, perr := ParseTokenSet(b); perr == nil {
				t.Fatalf("ParseTokenSet takes what json.Unmarshal refuses: %v", err)
			}
			return
		}
		if s.TokenType != "" && strings.EqualFold(s.TokenType, "bearer") && s.TokenType != "Bearer" {
			t.Fatalf("token_type %q not normalised", s.TokenType)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal of a parsed set: %v", err)
		}
		var again TokenSet
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(knownOnly(s), knownOnly(again)) || len(s.Extra) != len(again.Extra) {
			t.Fatalf("round trip changed the set:\n%s\n%s", b, out)
		}
		out2, _ := json.Marshal(again)
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip not stable:\n%s\n%s", out, out2)
		}
		// What the stores write: MarshalJSON's own bytes, which json.Marshal
		// above only checked and compacted.
		direct, err := s.MarshalJSON()
		var compact bytes.Buffer
		if err != nil || json.Compact(&compact, direct) != nil || !bytes.Equal(compact.Bytes(), direct) {
			t.Fatalf("MarshalJSON gave %s (%v): not compact, valid JSON", direct, err)
		}
		var fromDirect TokenSet
		if err := json.Unmarshal(direct, &fromDirect); err != nil || !reflect.DeepEqual(knownOnly(fromDirect), knownOnly(again)) || len(fromDirect.Extra) != len(again.Extra) {
			t.Fatalf("MarshalJSON's bytes read back otherwise (%v):\n%s\n%s", err, direct, out)
		}
		// The known fields come out as encoding/json writes a struct of them.
		known, _ := json.Marshal(knownOnly(s))
		if ref := structEncoding(s); !bytes.Equal(known, ref) {
			t.Fatalf("known fields written as\n%s\nnot as a struct's\n%s", known, ref)
		}
		if err := s.Validate(); err != nil && strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
	})
}

// structEncoding is s's known fields as encoding/json writes a struct.
func structEncoding(s TokenSet) []byte {
	var offset json.Number
	if s.ClockOffset != 0 {
		offset = json.Number(strconv.FormatFloat(s.ClockOffset.Seconds(), 'f', -1, 64))
	}
	b, _ := json.Marshal(struct {
		AccessToken      string      `json:"access_token,omitempty"`
		RefreshToken     string      `json:"refresh_token,omitempty"`
		IDToken          string      `json:"id_token,omitempty"`
		ExpiresIn        json.Number `json:"expires_in,omitempty"`
		TokenType        string      `json:"token_type,omitempty"`
		Scope            string      `json:"scope,omitempty"`
		SharedSessionKey string      `json:"shared_session_key,omitempty"`
		ClockOffset      json.Number `json:"clock_offset,omitempty"`
		ReplacedEnv      string      `json:"replaced_env_sha256,omitempty"`
	}{s.AccessToken, s.RefreshToken, s.IDToken, s.ExpiresIn, s.TokenType, s.Scope, s.SharedSessionKey, offset, s.ReplacedEnv})
	return b
}

// knownOnly is s without its unknown fields (which json.Marshal re-escapes).
func knownOnly(s TokenSet) TokenSet {
	s.Extra = nil
	return s
}

func FuzzParseForms(f *testing.F) {
	f.Add(`<form id="recaptcha_form" method="post"><input type="hidden" name="csrfmiddlewaretoken" value="x"><input type="hidden" name="next" value="/o/authorize/?a=b&amp;c=d"><input type="email" name="email"><input type="password" name="password"></form>`)
	f.Add(`<form method=post><input name=otp_token autocomplete=one-time-code><textarea name=t>hi</textarea><select name=s><option value=1><option value=2 selected></select></form>`)
	f.Add(`<form><form><input name=a></form></form><input name=outside>`)
	f.Add(`<div><div><div><form action="/x"><input type=checkbox name=c checked>`)
	f.Fuzz(func(t *testing.T, page string) {
		forms, err := ParseForms(strings.NewReader(page))
		if err != nil && err != errTooManyFields {
			t.Fatalf("ParseForms: %v", err)
		}
		for i := range forms {
			_ = forms[i].Values()
			_ = forms[i].HasPassword()
			_ = forms[i].IsTOTP()
		}
	})
}
