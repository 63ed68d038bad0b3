// Command keyringread reads one keyring item with go-keyring and prints
// it: the floor for get's fast path with the keyring store.
package main

import (
	"os"

	"github.com/zalando/go-keyring"
)

func main() {
	v, err := keyring.Get(os.Args[1], os.Args[2])
	if err != nil {
		os.Exit(1)
	}
	os.Stdout.WriteString(v + "\n")
}
