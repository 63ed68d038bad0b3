package auth

import (
	"testing"
	"time"
)

var benchToken = makeJWT(rs256, `{"jti":"3f2a9c","sub":"1530681","exp":1795733862,"sid":"5e55b0a1-0000-4000-8000-000000000001","app":"connect","type":"access","connect_id":"42"}`)

// BenchmarkParseJWT is the full decoder (golang-jwt, every claim).
func BenchmarkParseJWT(b *testing.B) {
	for b.Loop() {
		if _, err := ParseJWT(benchToken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidFor(b *testing.B) {
	exp, now := time.Unix(1795733862, 0), time.Unix(1795730000, 0)
	for b.Loop() {
		if !ValidFor(exp, now, time.Minute) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkParseTokenSet(b *testing.B) {
	set := []byte(`{"access_token":"` + benchToken + `","refresh_token":"` + benchToken + `","id_token":"` + benchToken + `","expires_in":7200,"token_type":"Bearer","scope":"basic_info connect"}`)
	for b.Loop() {
		if _, err := ParseTokenSet(set); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalTokenSet is what every save encodes.
func BenchmarkMarshalTokenSet(b *testing.B) {
	set, err := ParseTokenSet([]byte(`{"access_token":"` + benchToken + `","refresh_token":"` + benchToken + `","id_token":"` + benchToken + `","expires_in":7200,"token_type":"Bearer","scope":"basic_info connect","shared_session_key":"s1"}`))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := set.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
