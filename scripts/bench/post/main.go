// Command post sends one refresh request (the form get sends) and prints
// the answer's access token: the floor for a refreshing get.
package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
)

func main() {
	resp, err := http.PostForm(os.Args[1], url.Values{
		"grant_type": {"refresh_token"}, "client_id": {os.Args[2]}, "refresh_token": {os.Args[3]},
	})
	if err != nil {
		os.Exit(1)
	}
	defer resp.Body.Close()
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if json.NewDecoder(resp.Body).Decode(&v) != nil || v.AccessToken == "" {
		os.Exit(1)
	}
	os.Stdout.WriteString(v.AccessToken + "\n")
}
