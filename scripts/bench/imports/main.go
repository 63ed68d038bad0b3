// Command imports is hello-world linked with every package the helper
// imports: the cost of the binary and its package inits alone.
package main

import (
	"os"

	_ "github.com/prusa-credential-helper/prusa-credential-helper/auth"
	_ "github.com/prusa-credential-helper/prusa-credential-helper/helper"
	_ "github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

func main() { os.Stdout.WriteString("hello\n") }
