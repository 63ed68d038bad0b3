//go:build !windows

package main

import (
	"bufio"
	"os"
)

// openTTY opens the controlling terminal, /dev/tty.
func openTTY() (terminal, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &ttyTerminal{in: f, out: f, r: bufio.NewReader(f)}, nil
}
