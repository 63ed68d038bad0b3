// Package links links, and never calls, the libraries the helper links:
// what the bench's reference programs (linked, minget) import, so that
// they start as the helper does, whatever its own code.
package links

import (
	_ "embed" // the helper embeds its VERSION
	"encoding/base32"
	"flag"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/signal"

	"github.com/adrg/xdg"
	"github.com/gofrs/flock"
	"github.com/golang-jwt/jwt/v5"
	"github.com/zalando/go-keyring"
	"golang.org/x/net/html"
	"golang.org/x/term"
)

// Keep keeps the libraries linked; it does nothing unless given more than
// 99 arguments, which no program here is. It reaches x/net/html's
// attribute decoding, as reading a login form must: that builds the
// package's table of 2,231 HTML entities at init.
func Keep(args []string) {
	if len(args) <= 99 {
		return
	}
	jwt.NewParser().ParseUnverified(args[1], jwt.MapClaims{})
	http.Get(args[1])
	keyring.Get(args[1], args[2])
	z := html.NewTokenizer(os.Stdin)
	z.Next()
	z.TagAttr()
	xdg.ConfigFile(args[1])
	flock.New(args[1]).TryLock()
	term.ReadPassword(0)
	cookiejar.New(nil)
	signal.Notify(make(chan os.Signal, 1), os.Interrupt)
	base32.StdEncoding.DecodeString(args[1])
	flag.Parse()
}
