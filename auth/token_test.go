package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// makeJWT builds an unsigned-looking JWT with the given claims JSON.
func makeJWT(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "." + enc([]byte("CANARY-signature-0123456789"))
}

const rs256 = `{"alg":"RS256","kid":"k1","typ":"JWT"}`

func TestParseJWT(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		sub     string
		exp     time.Time
		wantErr string
	}{
		{"string sub, int exp", makeJWT(rs256, `{"jti":"a1","sub":"1530681","exp":1795733862,"sid":"s","type":"access","connect_id":"42"}`), "1530681", time.Unix(1795733862, 0), ""},
		{"number sub", makeJWT(rs256, `{"sub":1530681,"exp":1795733862}`), "1530681", time.Unix(1795733862, 0), ""},
		{"float exp", makeJWT(rs256, `{"sub":"1","exp":1795733862.25}`), "1", time.Unix(1795733862, 250e6), ""},
		{"exponent exp", makeJWT(rs256, `{"sub":"1","exp":1.7e9}`), "1", time.Unix(1700000000, 0), ""},
		{"payload with - and _ (base64url, not std)", makeJWT(rs256, `{"sub":"1","exp":1795733862,"x":"??>>~~"}`), "1", time.Unix(1795733862, 0), ""},
		{"no exp", makeJWT(rs256, `{"sub":"1"}`), "", time.Time{}, "no exp claim"},
		{"exp string", makeJWT(rs256, `{"sub":"1","exp":"1795733862"}`), "", time.Time{}, "wrong type"},
		{"exp negative", makeJWT(rs256, `{"sub":"1","exp":-5}`), "", time.Time{}, "claim exp is out of range"},
		{"exp huge", makeJWT(rs256, `{"sub":"1","exp":1e300}`), "", time.Time{}, "claim exp is out of range"},
		{"exp null", makeJWT(rs256, `{"sub":"1","exp":null}`), "", time.Time{}, "no exp claim"},
		{"sub object", makeJWT(rs256, `{"sub":{},"exp":1}`), "", time.Time{}, "claim sub has the wrong type"},
		{"sid number", makeJWT(rs256, `{"sub":"1","exp":1,"sid":5}`), "", time.Time{}, "claim sid has the wrong type"},
		{"aud array of numbers", makeJWT(rs256, `{"sub":"1","exp":1,"aud":[1]}`), "", time.Time{}, "claim aud has the wrong type"},
		{"user a string", makeJWT(rs256, `{"sub":"1","exp":1,"user":"x"}`), "", time.Time{}, "claim user has the wrong type"},
		{"user email a number", makeJWT(rs256, `{"sub":"1","exp":1,"user":{"email":1}}`), "", time.Time{}, "claim email has the wrong type"},
		{"number sub with a fraction of zero", makeJWT(rs256, `{"sub":1530681.0,"exp":1795733862}`), "1530681", time.Unix(1795733862, 0), ""},
		{"number sub with an exponent", makeJWT(rs256, `{"sub":1.530681e6,"exp":1795733862}`), "1530681", time.Unix(1795733862, 0), ""},
		{"number sub that is not whole keeps its text", makeJWT(rs256, `{"sub":1.5,"exp":1795733862}`), "1.5", time.Unix(1795733862, 0), ""},
		{"number sub a float would round to a whole one keeps its text", makeJWT(rs256, `{"sub":1530681.00000000001,"exp":1795733862}`), "1530681.00000000001", time.Unix(1795733862, 0), ""},
		{"long number sub keeps its digits", makeJWT(rs256, `{"sub":123456789012345678901234567890,"exp":1795733862}`), "123456789012345678901234567890", time.Unix(1795733862, 0), ""},
		{"claim names are case-sensitive", makeJWT(rs256, `{"SUB":"9","sub":"1","EXP":"x","exp":1795733862}`), "1", time.Unix(1795733862, 0), ""},
		{"null claims", makeJWT(rs256, `null`), "", time.Time{}, "no exp claim"},
		{"claims with data after the object", makeJWT(rs256, "{\"exp\":9999999999,\"sub\":\"1\"}\x00\xffnot json"), "", time.Time{}, "claims is not a JSON object"},
		{"claims with closing braces after the object", makeJWT(rs256, `{"exp":100}}}}`), "", time.Time{}, "claims is not a JSON object"},
		{"claims with white space after the object", makeJWT(rs256, "{\"exp\":100,\"sub\":\"1\"} \n"), "1", time.Unix(100, 0), ""},
		{"two parts", "abc.def", "", time.Time{}, "2 dot-separated parts"},
		{"empty", "", "", time.Time{}, "1 dot-separated parts"},
		{"bad base64 claims", strings.Split(makeJWT(rs256, "{}"), ".")[0] + ".!!!.sig", "", time.Time{}, "claims is not base64url"},
		{"std base64 padding", base64.StdEncoding.EncodeToString([]byte(rs256)) + ".e30=.c2ln", "", time.Time{}, "header is not base64url"},
		{"claims not JSON", makeJWT(rs256, `not json`), "", time.Time{}, "claims is not a JSON object"},
		{"claims array", makeJWT(rs256, `[1]`), "", time.Time{}, "claims is not a JSON object"},
		{"no alg", makeJWT(`{"typ":"JWT"}`, `{"exp":1}`), "", time.Time{}, "header has no alg"},
		{"unknown alg", makeJWT(`{"alg":"XX1"}`, `{"exp":1}`), "", time.Time{}, "unknown alg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseJWT(tt.token)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrMalformedJWT) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrMalformedJWT containing %q", err, tt.wantErr)
				}
				for _, part := range strings.Split(tt.token, ".") {
					if len(part) > 3 && strings.Contains(err.Error(), part) {
						t.Fatalf("error %q quotes a part of the token", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJWT: %v", err)
			}
			if string(c.Subject) != tt.sub || !c.Expiry.Time.Equal(tt.exp) {
				t.Fatalf("sub=%q exp=%v, want %q %v", c.Subject, c.Expiry.Time, tt.sub, tt.exp)
			}
		})
	}
}

func TestExpiryUnixIsFloor(t *testing.T) {
	c, err := ParseJWT(makeJWT(rs256, `{"exp":1795733862.999}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Expiry.Unix(); got != 1795733862 {
		t.Fatalf("Unix() = %d, want the floor 1795733862", got)
	}
}

func TestIdentityClaims(t *testing.T) {
	c, err := ParseJWT(makeJWT(rs256, `{"jti":"j","sub":"7","exp":2,"aud":"client","iss":"https://account.prusa3d.com","user":{"id":7,"email":"a@b.c","first_name":"A","avatar":"x","custom_data":{"k":[1,2]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.User == nil || c.User.Email != "a@b.c" || c.User.ID != "7" || len(c.Audience) != 1 || c.Audience[0] != "client" || c.Issuer != "https://account.prusa3d.com" {
		t.Fatalf("claims = %+v", c)
	}
}

func TestValidFor(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	margin := 60 * time.Second
	tests := []struct {
		name string
		exp  time.Time
		want bool
	}{
		{"expires exactly at the margin", now.Add(margin), false},
		{"1ns beyond the margin", now.Add(margin + time.Nanosecond), true},
		{"1ns inside the margin", now.Add(margin - time.Nanosecond), false},
		{"already expired", now.Add(-time.Second), false},
		{"far future", now.Add(2 * time.Hour), true},
	}
	for _, tt := range tests {
		if got := ValidFor(tt.exp, now, margin); got != tt.want {
			t.Errorf("%s: ValidFor = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !ValidFor(now.Add(time.Nanosecond), now, 0) || ValidFor(now, now, 0) {
		t.Error("zero margin: valid until the instant of expiry, not at it")
	}
}

func TestTokenSetRoundTrip(t *testing.T) {
	access := makeJWT(rs256, `{"sub":"1530681","exp":1795733862,"sid":"s1"}`)
	refresh := makeJWT(rs256, `{"sub":"1530681","exp":1798325862,"sid":"s1"}`)
	in := `{"zeta": [1, 2], "access_token": "` + access + `", "expires_in": 7200, "token_type": "Bearer", "scope": "basic_info connect", "refresh_token": "` + refresh + `", "shared_session_key": "s1", "alpha": {"b": 1}}`
	set, err := ParseTokenSet([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"access_token":"` + access + `","refresh_token":"` + refresh + `","expires_in":7200,"token_type":"Bearer","scope":"basic_info connect","shared_session_key":"s1","alpha":{"b":1},"zeta":[1,2]}`
	if string(out) != want {
		t.Fatalf("marshal:\n got %s\nwant %s", out, want)
	}
	again, err := ParseTokenSet(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := json.Marshal(again)
	if string(out2) != string(out) {
		t.Fatalf("second round trip differs:\n%s\n%s", out, out2)
	}
	// What the stores write: MarshalJSON's bytes as they are, the same but
	// for unknown fields, which keep what json.Marshal would escape.
	if direct, err := set.MarshalJSON(); err != nil || string(direct) != want {
		t.Fatalf("MarshalJSON: %v\n got %s\nwant %s", err, direct, want)
	}
	html, err := ParseTokenSet([]byte(`{"access_token":"` + access + `", "note": { "a": "x<y&z" }}`))
	if err != nil {
		t.Fatal(err)
	}
	if direct, err := html.MarshalJSON(); err != nil || string(direct) != `{"access_token":"`+access+`","note":{"a":"x<y&z"}}` {
		t.Fatalf("MarshalJSON of an unknown field with < and &: %v, %s", err, direct)
	}
}

// TestTokenSetUnusableClockOffset: a clock_offset that cannot be used is
// dropped, never a reason to refuse the set (a stored set read as corrupt
// is moved aside: its refresh token would be lost).
func TestTokenSetUnusableClockOffset(t *testing.T) {
	access := makeJWT(rs256, `{"sub":"1","exp":1795733862}`)
	for _, v := range []string{`"5"`, `1e300`, `-4e9`, `null`, `{}`} {
		s, err := ParseTokenSet([]byte(`{"access_token":"` + access + `","clock_offset":` + v + `}`))
		if err != nil || s.ClockOffset != 0 || s.AccessToken != access {
			t.Errorf("clock_offset %s: %v, offset %v", v, err, s.ClockOffset)
		}
	}
	s, err := ParseTokenSet([]byte(`{"access_token":"` + access + `","clock_offset":-10800}`))
	if err != nil || s.ClockOffset != -3*time.Hour {
		t.Errorf("clock_offset -10800: %v, offset %v", err, s.ClockOffset)
	}
}

func TestTokenSetInvalid(t *testing.T) {
	access := makeJWT(rs256, `{"sub":"1","exp":1795733862}`)
	other := makeJWT(rs256, `{"sub":"2","exp":1795733862}`)
	tests := []struct{ name, body, want string }{
		{"null", `null`, "not a JSON object"},
		{"array", `[]`, "not a JSON object"},
		{"string", `"x"`, "not a JSON object"},
		{"truncated", `{"access_token": "ey`, "token set JSON is truncated"},
		{"truncated after a key", `{"access_token":`, "token set JSON is truncated"},
		{"truncated object", `{"access_token":"` + access + `"`, "token set JSON is truncated"},
		{"empty", ``, "token set JSON is empty"},
		{"blank", " \n", "token set JSON is empty"},
		{"garbage", `{"access_token":}`, "not valid JSON (at byte 17)"},
		{"trailing garbage", `{"access_token":"` + access + `"}x`, "data after the JSON object"},
		{"two documents", `{"access_token":"` + access + `"} {}`, "data after the JSON object"},
		{"token_type not Bearer", `{"access_token":"` + access + `","token_type":"mac"}`, "token_type is not Bearer"},
		{"replaced_env_sha256 not a string", `{"access_token":"` + access + `","replaced_env_sha256":5}`, "replaced_env_sha256 is not a string"},
		{"access with CR LF in its signature", `{"access_token":"` + access + `\r\nX-Injected: evil"}`, "access_token: malformed JWT: signature is not base64url"},
		{"no access token", `{"refresh_token":"` + access + `"}`, "no access_token"},
		{"access not a string", `{"access_token":5}`, "access_token is not a string"},
		{"expires_in a string", `{"access_token":"` + access + `","expires_in":"7200"}`, "expires_in is not a number"},
		{"access malformed", `{"access_token":"abc"}`, "access_token: malformed JWT"},
		{"refresh of another user", `{"access_token":"` + access + `","refresh_token":"` + other + `"}`, "another user"},
		{"id malformed", `{"access_token":"` + access + `","id_token":"a.b.c"}`, "id_token: malformed JWT"},
		{"invalid UTF-8", "{\"access_token\":\"\xff\"}", "UTF-8"},
		{"account_url not a string", `{"access_token":"` + access + `","account_url":1}`, "account_url is not a string"},
		{"account_url not a URL", `{"access_token":"` + access + `","account_url":"account.prusa3d.com"}`, "account_url: want an absolute URL"},
		{"account_url of another scheme", `{"access_token":"` + access + `","account_url":"ftp://account.prusa3d.com"}`, "account_url: scheme \"ftp\""},
		{"account_url with a password", `{"access_token":"` + access + `","account_url":"https://u:CANARY@account.prusa3d.com"}`, "account_url: no user"},
		{"account_url not ASCII", `{"access_token":"` + access + `","account_url":"https://accounts.İnternal.example"}`, "account_url: use printable ASCII"},
		{"account_url http elsewhere", `{"access_token":"` + access + `","account_url":"http://account.prusa3d.com"}`, "account_url: http:// is allowed only for loopback"},
	}
	for _, tt := range tests {
		_, err := ParseTokenSet([]byte(tt.body))
		if err == nil || !errors.Is(err, ErrInvalidTokenSet) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrInvalidTokenSet containing %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), access) {
			t.Errorf("%s: error quotes the token", tt.name)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("%s: error of more than one line: %q", tt.name, err)
		}
	}
}

func TestMergeKeepsWhatTheAnswerLacks(t *testing.T) {
	old := TokenSet{AccessToken: "a1", RefreshToken: "r1", IDToken: "i1", Scope: "s", ClockOffset: time.Hour, ReplacedEnv: "e1", Extra: map[string]json.RawMessage{"x": []byte("1")}}
	got := old.Merge(TokenSet{AccessToken: "a2", ExpiresIn: "7200"})
	if got.AccessToken != "a2" || got.RefreshToken != "r1" || got.IDToken != "i1" || got.ExpiresIn != "7200" || string(got.Extra["x"]) != "1" {
		t.Fatalf("merge = %#v", got)
	}
	if got.ClockOffset != time.Hour || got.ReplacedEnv != "e1" {
		t.Fatalf("merge lost the clock offset or ReplacedEnv: %v %q", got.ClockOffset, got.ReplacedEnv)
	}
	if got = old.Merge(TokenSet{AccessToken: "a2", ClockOffset: -time.Hour}); got.ClockOffset != -time.Hour {
		t.Fatalf("merge kept the old clock offset over the answer's: %v", got.ClockOffset)
	}
	got = old.Merge(TokenSet{AccessToken: "a3", RefreshToken: "r3"})
	if got.RefreshToken != "r3" || got.IDToken != "i1" {
		t.Fatalf("merge with a new refresh token = %+v", got)
	}
}

func TestTokenSetRedacts(t *testing.T) {
	access := makeJWT(rs256, `{"sub":"1","exp":1795733862,"jti":"J1"}`)
	set := TokenSet{AccessToken: access, RefreshToken: "garbage-CANARY"}
	for _, s := range []string{set.String(), set.GoString()} {
		if strings.Contains(s, "CANARY") || strings.Contains(s, strings.Split(access, ".")[1]) {
			t.Fatalf("String leaks a secret: %s", s)
		}
		if !strings.Contains(s, "sub=1") || !strings.Contains(s, "jti=J1") {
			t.Fatalf("String = %s, want the claims", s)
		}
	}
}

// TestParseJWTRefusesBadParts: every part must be unpadded base64url and
// nothing else, so that no CR, LF or header line rides in a token.
func TestParseJWTRefusesBadParts(t *testing.T) {
	good := strings.Split(makeJWT(rs256, `{"sub":"1","exp":1795733862}`), ".")
	with := func(i int, part string) string {
		p := slices.Clone(good)
		p[i] = part
		return strings.Join(p, ".")
	}
	tests := []struct{ name, token, want string }{
		{"two parts", good[0] + "." + good[1], "2 dot-separated parts"},
		{"four parts", strings.Join(append(slices.Clone(good), good[2]), "."), "4 dot-separated parts"},
		{"header injection in the signature", with(2, good[2]+"\r\nX-Injected: evil"), "signature is not base64url"},
		{"CR LF alone in the signature", with(2, good[2][:4]+"\r\n"+good[2][4:]), "signature is not base64url"},
		{"LF in the signature", with(2, good[2]+"\n"), "signature is not base64url"},
		{"CR in the header", with(0, "\r"+good[0]), "header is not base64url"},
		{"LF in the claims", with(1, good[1][:3]+"\n"+good[1][3:]), "claims is not base64url"},
		{"CR LF in the claims", with(1, good[1]+"\r\n"), "claims is not base64url"},
		{"space in the signature", with(2, good[2]+" x"), "signature is not base64url"},
		{"standard base64 + and /", with(2, "ab+/"), "signature is not base64url"},
		{"padding", with(2, base64.URLEncoding.EncodeToString([]byte("sig"))+"="), "signature is not base64url"},
		{"padded header", with(0, base64.URLEncoding.EncodeToString([]byte(rs256))), "header is not base64url"},
		{"impossible length", with(2, "abcde"), "signature is not base64url"},
		{"non-ASCII", with(2, "sïg"), "signature is not base64url"},
	}
	for _, tt := range tests {
		_, err := ParseJWT(tt.token)
		if !errors.Is(err, ErrMalformedJWT) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("%s: error of more than one line: %q", tt.name, err)
		}
		set := TokenSet{AccessToken: tt.token}
		if err := set.Validate(); !errors.Is(err, ErrInvalidTokenSet) {
			t.Errorf("%s: Validate = %v, want it refused", tt.name, err)
		}
	}
	if _, err := ParseJWT(strings.Join(good, ".")); err != nil {
		t.Fatalf("the good token: %v", err)
	}
	if _, err := ParseJWT(with(2, "")); err != nil {
		t.Fatalf("an empty signature part is base64url: %v", err)
	}
}

func TestTokenTypeIsBearer(t *testing.T) {
	access := makeJWT(rs256, `{"sub":"1","exp":1795733862}`)
	for _, tt := range []string{"bearer", "BEARER", "Bearer"} {
		set, err := ParseTokenSet([]byte(`{"access_token":"` + access + `","token_type":"` + tt + `"}`))
		if err != nil || set.TokenType != "Bearer" {
			t.Errorf("%s: %v %q, want Bearer", tt, err, set.TokenType)
		}
	}
	for _, tt := range []string{"mac", "Bearer\r\nX: y", "DPoP"} {
		b, _ := json.Marshal(map[string]string{"access_token": access, "token_type": tt})
		if _, err := ParseTokenSet(b); !errors.Is(err, ErrInvalidTokenSet) || !strings.Contains(err.Error(), "token_type is not Bearer") {
			t.Errorf("%q: err = %v", tt, err)
		}
	}
}

func TestTokenSetNewFieldsRoundTrip(t *testing.T) {
	access := makeJWT(rs256, `{"sub":"1","exp":1795733862}`)
	sum := strings.Repeat("ab", 32)
	in := `{"access_token":"` + access + `","clock_offset":-10800,"replaced_env_sha256":"` + sum + `","account_url":"https://account.prusa3d.com","x":1}`
	set, err := ParseTokenSet([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if set.ClockOffset != -3*time.Hour || set.ReplacedEnv != sum || set.AccountURL != DefaultAccountURL || len(set.Extra) != 1 {
		t.Fatalf("set = %+v", *set)
	}
	out, _ := json.Marshal(set)
	if string(out) != in {
		t.Fatalf("marshal:\n got %s\nwant %s", out, in)
	}
	set.ClockOffset = 1500 * time.Millisecond
	out, _ = json.Marshal(set)
	if again, err := ParseTokenSet(out); err != nil || again.ClockOffset != set.ClockOffset || !strings.Contains(string(out), `"clock_offset":1.5,`) {
		t.Fatalf("fractional offset: %s → %v %v", out, again, err)
	}
	set.ClockOffset, set.ReplacedEnv = 0, ""
	if out, _ = json.Marshal(set); strings.Contains(string(out), "clock_offset") || strings.Contains(string(out), "replaced_env") {
		t.Fatalf("zero fields written: %s", out)
	}
	if now := time.Unix(1795730000, 0); !(TokenSet{ClockOffset: -3 * time.Hour}).ServerNow(now).Equal(now.Add(-3 * time.Hour)) {
		t.Fatal("ServerNow does not add the offset")
	}
}

// TestClaimsFollowTheirToken: the claims a set keeps once parsed are
// always those of the token it holds now, through copies and Merge.
func TestClaimsFollowTheirToken(t *testing.T) {
	tok := func(sub string, exp int) string {
		return makeJWT(rs256, fmt.Sprintf(`{"sub":%q,"exp":%d}`, sub, exp))
	}
	s := TokenSet{AccessToken: tok("1", 100), RefreshToken: tok("1", 200)}
	if c, err := s.Access(); err != nil || c.Expiry.Unix() != 100 {
		t.Fatalf("Access: %v %v", c, err)
	}
	if c, err := s.RefreshClaims(); err != nil || c.Expiry.Unix() != 200 {
		t.Fatalf("RefreshClaims: %v %v", c, err)
	}
	cp := s
	cp.AccessToken, cp.RefreshToken = tok("1", 101), "not a jwt"
	if c, err := cp.Access(); err != nil || c.Expiry.Unix() != 101 {
		t.Fatalf("Access of a copy with another token: %v %v", c, err)
	}
	if _, err := cp.RefreshClaims(); err == nil {
		t.Fatal("RefreshClaims kept the claims of a token the set no longer holds")
	}
	answer := TokenSet{AccessToken: tok("1", 300)}
	if err := answer.Validate(); err != nil {
		t.Fatal(err)
	}
	m := s.Merge(answer)
	a, _ := m.Access()
	r, _ := m.RefreshClaims()
	if a.Expiry.Unix() != 300 || r.Expiry.Unix() != 200 {
		t.Fatalf("merged claims: access exp %d, refresh exp %d", a.Expiry.Unix(), r.Expiry.Unix())
	}
}

// TestNumberText: a numeric claim that is a whole number reads as its
// digits however it is written, exactly (no float rounding); any other
// number, and one with an exponent beyond ±30, as written.
func TestNumberText(t *testing.T) {
	for in, want := range map[string]string{
		"1530681": "1530681", "1530681.0": "1530681", "1.530681e6": "1530681", "1.530681E+6": "1530681",
		"15306810e-1": "1530681", "1530681.00000000001": "1530681.00000000001", "1.5": "1.5",
		"-0": "0", "-0.0": "0", "0": "0", "0.0e-5": "0", "-12.0": "-12", "-1e2": "-100",
		"1e30": "1000000000000000000000000000000", "1e31": "1e31", "1e-31": "1e-31",
		"123456789012345678901234567890": "123456789012345678901234567890", "12345678901234567.0": "12345678901234567",
		"5e-1": "5e-1", "100e-2": "1", "1.25e1": "1.25e1", "1.20e1": "12", "0.5": "0.5",
	} {
		if got := string(numberText(json.Number(in))); got != want {
			t.Errorf("numberText(%s) = %s, want %s", in, got, want)
		}
	}
}
