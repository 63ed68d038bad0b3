//go:build linux

package main

import (
	"os"
	"path/filepath"
)

// configDir is $XDG_CONFIG_HOME, else ~/.config: what github.com/adrg/xdg
// answers on Linux (the other platforms use it). Linux does without the
// package so that get's fast path pays for none of its start-up work
// (reading user-dirs.dirs, computing every other XDG folder).
func configDir(getenv func(string) string) string {
	if d := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return d
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".config")
}
