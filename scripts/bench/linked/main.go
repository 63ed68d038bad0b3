// Command linked is hello-world that links (but does not call) the
// libraries the helper links — net/http with TLS, golang-jwt, go-keyring,
// x/net/html, adrg/xdg, gofrs/flock, x/term, and the standard packages the
// helper adds to theirs: the start-up floor of any Go program that can do
// what the helper does, whatever its own code. TestBenchLinksHelpersLibraries
// keeps the list whole. It reaches x/net/html's attribute decoding, as
// reading a login form must: that builds the package's table of 2,231 HTML
// entities at init (the standard library's html package builds its own on
// first use). adrg/xdg reads the environment and user-dirs.dirs at init.
package main

import (
	"encoding/base32"
	"flag"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/signal"
	"regexp"

	"github.com/adrg/xdg"
	"github.com/gofrs/flock"
	"github.com/golang-jwt/jwt/v5"
	"github.com/zalando/go-keyring"
	"golang.org/x/net/html"
	"golang.org/x/term"
)

func main() {
	if len(os.Args) > 99 { // never: keeps the libraries linked
		jwt.NewParser().ParseUnverified(os.Args[1], jwt.MapClaims{})
		http.Get(os.Args[1])
		keyring.Get(os.Args[1], os.Args[2])
		z := html.NewTokenizer(os.Stdin)
		z.Next()
		z.TagAttr()
		xdg.ConfigFile(os.Args[1])
		flock.New(os.Args[1]).TryLock()
		term.ReadPassword(0)
		cookiejar.New(nil)
		signal.Notify(make(chan os.Signal, 1), os.Interrupt)
		regexp.MustCompile(os.Args[1])
		base32.StdEncoding.DecodeString(os.Args[1])
		flag.Parse()
	}
	os.Stdout.WriteString("hello\n")
}
