// Command minget is the linked hello-world (../linked) that also does the
// least a cached get must do with those libraries: read the token file,
// decode it with encoding/json, decode the access token's claims with
// golang-jwt, and print the answer with encoding/json. No flags, settings,
// checks or error handling: a floor for the helper's own work.
package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/prusa-credential-helper/prusa-credential-helper/scripts/bench/links"
)

func main() {
	links.Keep(os.Args)
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	var set map[string]any
	if json.Unmarshal(b, &set) != nil {
		os.Exit(1)
	}
	access, _ := set["access_token"].(string)
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(access, claims); err != nil {
		os.Exit(1)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil || time.Until(exp.Time) < time.Minute {
		os.Exit(1)
	}
	out, _ := json.Marshal(struct {
		Version        int    `json:"version"`
		Success        bool   `json:"success"`
		Profile        string `json:"profile"`
		TokenType      string `json:"token_type"`
		AccessToken    string `json:"access_token"`
		ExpiresAt      string `json:"expires_at"`
		ExpirationTime int64  `json:"expiration_time"`
	}{1, true, "default", "Bearer", access, exp.UTC().Format(time.RFC3339), exp.Unix()})
	os.Stdout.Write(append(out, '\n'))
}
