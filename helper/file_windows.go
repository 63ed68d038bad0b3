//go:build windows

package helper

import (
	"io"
	"os"
)

const isWindows = true

// readNoFollow reads a file. Windows has no O_NOFOLLOW; its symlinks need
// privileges to create.
func readNoFollow(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxFileSize+1))
}

// syncDir is a no-op: Windows cannot sync a directory handle.
func syncDir(string) {}
