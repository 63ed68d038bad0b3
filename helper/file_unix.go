//go:build unix

package helper

import (
	"errors"
	"os"
	"syscall"
)

const isWindows = false

// readNoFollow reads a file, refusing a symlink in its last component so
// that a link planted at the token path is never followed into another file.
// It uses plain system calls: an *os.File would start Go's network poller
// (epoll, an eventfd and a waiting thread), which costs get's fast path more
// than the read itself.
func readNoFollow(path string) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		if err == syscall.ELOOP {
			err = errors.New("is a symbolic link; not following it")
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 8192)
	for len(buf) <= maxFileSize {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil // larger than any token set: the caller finds it corrupt
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
