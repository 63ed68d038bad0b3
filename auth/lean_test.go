package auth

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestAccessExpiry(t *testing.T) {
	tests := []struct {
		claims string
		want   time.Time
		ok     bool
	}{
		{`{"jti":"a","sub":"1530681","exp":1795733862,"sid":"s","app":"connect","type":"access","connect_id":"7"}`, time.Unix(1795733862, 0), true},
		{`{"sub":1530681,"exp":1795733862.25}`, time.Unix(1795733862, 250e6), true},
		{` { "exp" : 5 , "x" : [ {"y": [1, "\"}"]} ] } `, time.Unix(5, 0), true},
		{`{"exp":1,"exp":2}`, time.Unix(2, 0), true},
		{`{"exp":1,"EXP":2}`, time.Unix(2, 0), true}, // encoding/json matches case-insensitively
		{`{"sub":"1"}`, time.Time{}, false},
		{`{"exp":"5"}`, time.Time{}, false},
		{`{"exp":null}`, time.Time{}, false},
		{`{"exp":-1}`, time.Time{}, false},
		{`{"exp":1e300}`, time.Time{}, false},
		{`{"exp":5,"sid":5}`, time.Time{}, false},
		{`{"exp":5,"user":{"email":"a","id":7,"avatar":{"x":1}}}`, time.Unix(5, 0), true},
		{`{"exp":5,"user":{"email":5}}`, time.Time{}, false},
		{`{"exp":5,"user":[1]}`, time.Time{}, false},
		{`{"exp":5}x`, time.Time{}, false},
		{`{"exp":5,}`, time.Time{}, false},
		{`{"exp":05}`, time.Time{}, false},
		{`{"ex\u0070":5}`, time.Time{}, false},
		{`[{"exp":5}]`, time.Time{}, false},
		// Names with diacritics, as Czech users have: taken as they are.
		{`{"exp":5,"sub":"1","user":{"first_name":"Josef","last_name":"Průša","custom_data":{"note":"žluťoučký"}}}`, time.Unix(5, 0), true},
		{"{\"exp\":5,\"user\":{\"x\":\"\xff\"}}", time.Unix(5, 0), true}, // encoding/json takes invalid UTF-8 too
		{`{"exp":5,"ſub":"1"}`, time.Time{}, false},                      // folds to "sub" in encoding/json
	}
	for _, tt := range tests {
		tok := makeJWT(rs256, tt.claims)
		got, ok := AccessExpiry(tok)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("%s: %v %v, want %v %v", tt.claims, got, ok, tt.want, tt.ok)
		}
		if ok {
			c, err := ParseJWT(tok)
			if err != nil || !c.Expiry.Time.Equal(got) {
				t.Errorf("%s: ParseJWT disagrees: %v", tt.claims, err)
			}
		}
	}
	for _, tok := range []string{"", "a.b", "a.b.c.d", makeJWT(`{"alg":"none2"}`, `{"exp":5}`), makeJWT(`{"typ":"JWT"}`, `{"exp":5}`)} {
		if _, ok := AccessExpiry(tok); ok {
			t.Errorf("%q accepted", tok)
		}
	}
}

func TestTopLevelString(t *testing.T) {
	tests := []struct {
		doc, want string
		ok        bool
	}{
		{`{"access_token":"abc","refresh_token":"def"}`, "abc", true},
		{`{"old":{"access_token":"nested"},"access_token":"top"}`, "top", true},
		{`{"old":{"access_token":"nested"}}`, "", false},
		{`{"access_token":"a","access_token":"b"}`, "b", true},
		{`{"Access_Token":"x"}`, "", false},
		{`{"access_token":"a\"b"}`, "", false},
		{`{"access_token":5}`, "", false},
		{`{"access_token":"a"`, "", false},
		{`{"access_token":"a"} {}`, "", false},
		{"{\"access_token\":\"\xff\"}", "", false},
	}
	for _, tt := range tests {
		got, ok := TopLevelString([]byte(tt.doc), "access_token")
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: %q %v, want %q %v", tt.doc, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzLean: where the lean decoders answer, the full ones agree.
func FuzzLean(f *testing.F) {
	f.Add(`{"alg":"RS256"}`, `{"exp":1795733862,"sub":"1","sid":"s"}`)
	f.Add(`{"alg":"HS256","typ":"JWT"}`, `{"exp":1.5,"EXP":2,"aud":"x","user":null}`)
	f.Add(`{"alg":"RS256"}`, `{"exp":5,"x":[{"y":"\u00e9"}],"jti":7}`)
	f.Add(`{"alg":"RS256","kid":"k"}`, `{"exp":5,"sub":1530681,"aud":"c","user":{"id":7,"email":"a@b.c","custom_data":{"k":[1]}}}`)
	f.Add(`{"alg":"RS256"}`, `{"exp":5,"SUB":"a","sub":"b","user":{"ID":"x","Email":null}}`)
	f.Add(`{"alg":"RS256"}`, `{"exp":5,"sub":"Průša","user":{"first_name":"Josef","last_name":"Průša","email":"\u017e@b.c"}}`)
	f.Add(`{"alg":"RS256"}`, "{\"exp\":5,\"sub\":\"a\xffb\",\"x\":\"\xc3\"}")
	f.Add(`{"alg":"RS256"}`, `{"exp":5,"sub":"a","ſub":"b","Sub":"c"}`)
	f.Fuzz(func(t *testing.T, header, claims string) {
		tok := makeJWT(header, claims)
		if exp, sub, ok := leanClaims(tok); ok {
			c, err := ParseJWT(tok)
			if err != nil {
				t.Fatalf("lean accepted what ParseJWT refuses: %v", err)
			}
			if !c.Expiry.Time.Equal(exp) || string(c.Subject) != sub {
				t.Fatalf("exp %v sub %q, ParseJWT %v %q", exp, sub, c.Expiry.Time, c.Subject)
			}
		}
		doc := []byte(claims)
		if v, ok := TopLevelString(doc, "exp"); ok {
			var m map[string]json.RawMessage
			var s string
			if json.Unmarshal(doc, &m) != nil || json.Unmarshal(m["exp"], &s) != nil || s != v {
				t.Fatalf("TopLevelString %q disagrees with encoding/json", v)
			}
		}
	})
}

// TestTokenSetLean: which token sets the lean decoder takes, and that it
// then reads them as the full decoder does.
func TestTokenSetLean(t *testing.T) {
	a := makeJWT(rs256, `{"sub":"1","exp":5,"user":{"last_name":"Průša"}}`)
	tests := []struct {
		doc  string
		lean bool
	}{
		{`{"access_token":"` + a + `","expires_in":7200,"token_type":"Bearer","scope":"basic_info connect","refresh_token":"` + a + `","shared_session_key":"k","id_token":"` + a + `"}`, true},
		{`{"access_token":"a","expires_in":7200.5}`, true},
		{` {"access_token" : "a" , "scope":"Průša"} `, true},
		{`{"access_token":"a","access_token":null}`, true}, // the last of duplicates wins, as in a map
		{`{"access_token":"a","expires_in":null}`, true},
		{`{"access_token":"a","x":1}`, false},    // unknown fields: kept, compacted, by the full decoder
		{`{"access_token":"a\/b"}`, false},       // escapes
		{"{\"access_token\":\"a\xffb\"}", false}, // invalid UTF-8 (the full decoder replaces it)
		{`{"access_token":5}`, false},
		{`{"expires_in":"5"}`, false},
		{`{"access_token":"a"}{}`, false},
		{`null`, false},
	}
	for _, tt := range tests {
		var lean, full TokenSet
		ok := lean.unmarshalLean([]byte(tt.doc))
		if ok != tt.lean {
			t.Errorf("%s: lean %v, want %v", tt.doc, ok, tt.lean)
		}
		if ok && (full.unmarshalFull([]byte(tt.doc)) != nil || !reflect.DeepEqual(lean, full)) {
			t.Errorf("%s: the full decoder reads it otherwise", tt.doc)
		}
	}
}
