package main

import (
	"context"
	"fmt"
	"io"
)

// version is stamped by install.sh with -ldflags "-X main.version=…".
var version = "0.0.0-dev"

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == "version" {
		fmt.Fprintf(stdout, "prusa-credential-helper %s (protocol 1)\n", version)
		return 0
	}
	fmt.Fprintln(stderr, "prusa-credential-helper: the command line is not built yet")
	return 2
}
