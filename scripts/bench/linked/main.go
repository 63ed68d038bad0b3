// Command linked is hello-world that links (but does not call) the
// libraries the helper must link — net/http with TLS, golang-jwt,
// go-keyring, x/net/html: the start-up floor of any Go program that can do
// what the helper does, whatever its own code.
package main

import (
	"net/http"
	"os"

	"github.com/golang-jwt/jwt/v5"
	"github.com/zalando/go-keyring"
	"golang.org/x/net/html"
)

func main() {
	if len(os.Args) > 99 { // never: keeps the libraries linked
		jwt.NewParser().ParseUnverified(os.Args[1], jwt.MapClaims{})
		http.Get(os.Args[1])
		keyring.Get(os.Args[1], os.Args[2])
		html.NewTokenizer(os.Stdin).Next()
	}
	os.Stdout.WriteString("hello\n")
}
