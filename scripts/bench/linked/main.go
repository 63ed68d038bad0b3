// Command linked is hello-world that links (but does not call) the
// libraries the helper links (see ../links): the start-up floor of any Go
// program that can do what the helper does, whatever its own code.
// TestBenchLinksHelpersLibraries keeps the list whole. adrg/xdg reads the
// environment and user-dirs.dirs at init.
package main

import (
	"os"

	"github.com/prusa-credential-helper/prusa-credential-helper/scripts/bench/links"
)

func main() {
	links.Keep(os.Args)
	os.Stdout.WriteString("hello\n")
}
