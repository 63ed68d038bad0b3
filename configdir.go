//go:build !linux

package main

import "github.com/adrg/xdg"

// configDir is the user's configuration folder: the native one on macOS
// and Windows (and XDG elsewhere), through github.com/adrg/xdg.
func configDir(getenv func(string) string) string { return xdg.ConfigHome }
