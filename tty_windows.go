//go:build windows

package main

import (
	"bufio"
	"os"
)

// openTTY opens the console: CONIN$ to read, CONOUT$ to write.
func openTTY() (terminal, error) {
	in, err := os.OpenFile("CONIN$", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile("CONOUT$", os.O_WRONLY, 0)
	if err != nil {
		in.Close()
		return nil, err
	}
	return &ttyTerminal{in: in, out: out, r: bufio.NewReader(in)}, nil
}
