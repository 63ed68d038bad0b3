// Command fileread reads a JSON token file and prints one field: the floor
// for get's fast path with the file store.
package main

import (
	"encoding/json"
	"os"
)

func main() {
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(b, &v) != nil {
		os.Exit(1)
	}
	os.Stdout.WriteString(v.AccessToken + "\n")
}
