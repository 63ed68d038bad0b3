//go:build unix

package helper

import (
	"errors"
	"io"
	"os"
	"syscall"
)

const isWindows = false

// readNoFollow reads a file, refusing a symlink in its last component so
// that a link planted at the token path is never followed into another file.
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("is a symbolic link; not following it")}
		}
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxFileSize+1))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
