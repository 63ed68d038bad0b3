//go:build windows

package helper

import (
	"errors"
	"os"
	"syscall"
)

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

// isReadOnlyFS is false, as isBusy.
func isReadOnlyFS(error) bool { return false }

// renameMayPass reports a rename refused because another process has the
// file open (a reader without FILE_SHARE_DELETE, a virus scanner): it
// passes once that process lets go.
func renameMayPass(err error) bool {
	const errorSharingViolation syscall.Errno = 32 // ERROR_SHARING_VIOLATION
	return errors.Is(err, syscall.ERROR_ACCESS_DENIED) || errors.Is(err, errorSharingViolation)
}

// syncDir is a no-op: Windows cannot sync a directory handle.
func syncDir(string) {}

// otherOwner is false: Windows guards a user's profile by its ACLs.
func otherOwner(os.FileInfo) (int, bool) { return 0, false }

// companionAttr is nil: Windows has no process groups to stop.
func companionAttr() *syscall.SysProcAttr { return nil }
