// Command linked is hello-world that links (but does not call) the
// libraries the helper must link — net/http with TLS, golang-jwt,
// go-keyring, x/net/html: the start-up floor of any Go program that can do
// what the helper does, whatever its own code. It reaches x/net/html's
// attribute decoding, as reading a login form must: that builds the
// package's table of 2,231 HTML entities at init (the standard library's
// html package builds its own on first use).
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
		z := html.NewTokenizer(os.Stdin)
		z.Next()
		z.TagAttr()
	}
	os.Stdout.WriteString("hello\n")
}
