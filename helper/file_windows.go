//go:build windows

package helper

const isWindows = true

// Windows has no O_NOFOLLOW (its symlinks need privileges to create) and
// no FIFOs at file paths.
const (
	openNoFollow = 0
	openNonBlock = 0
)

func isSymlinkErr(error) bool { return false }

// isBusy is false: Windows has no mount points at file paths.
func isBusy(error) bool { return false }

// syncDir is a no-op: Windows cannot sync a directory handle.
func syncDir(string) {}
