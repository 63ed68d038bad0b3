//go:build unix

package helper

import (
	"errors"
	"os"
	"syscall"
)

const isWindows = false

// Open flags of readFile: refuse a symlink in the last component, and do
// not wait for a writer when the path is a FIFO.
const (
	openNoFollow = syscall.O_NOFOLLOW
	openNonBlock = syscall.O_NONBLOCK
)

func isSymlinkErr(err error) bool { return errors.Is(err, syscall.ELOOP) }

// isBusy reports a rename refused because its target is a mount point.
func isBusy(err error) bool { return errors.Is(err, syscall.EBUSY) }

// renameMayPass is false: a rename fails here for reasons that stay.
func renameMayPass(error) bool { return false }

// isReadOnlyFS reports an open refused by a read-only file system.
func isReadOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// otherOwner returns the owner of the file fi describes when that is
// another user than this process's. Root is no other user: it can act as
// anyone anyway, and gives out files on purpose (Docker's and Kubernetes'
// secrets are root's, read-only); nor is any user to root, which reads
// every user's files on purpose.
func otherOwner(fi os.FileInfo) (uid int, other bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	euid := os.Geteuid()
	return int(st.Uid), euid != 0 && st.Uid != 0 && int(st.Uid) != euid
}

// companionAttr starts the etcd companion in a process group of its own,
// so that what is sent to the helper's group (Ctrl-Z, kill -STOP -PGID)
// does not stop it: stopped, it would stop renewing its lease, and the
// lock it holds for a refresh in flight would go to another host.
func companionAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
