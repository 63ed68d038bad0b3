//go:build unix

package helper

import (
	"context"
	"syscall"
	"testing"
)

// TestEtcdCompanionHasItsOwnProcessGroup: the companion does not share the
// helper's process group, so a Ctrl-Z or a kill -STOP sent to that group
// leaves it renewing the lease of a lock it holds.
func TestEtcdCompanionHasItsOwnProcessGroup(t *testing.T) {
	s := &EtcdStore{Endpoints: []string{"127.0.0.1:1"}, Prefix: "farm", CacheDir: t.TempDir(),
		Companion: fakeCompanion(t, `while read line; do echo '{"ok":true,"profiles":[]}'; done`+"\n")}
	defer s.Close()
	if _, err := s.Profiles(context.Background()); err != nil {
		t.Fatal(err)
	}
	pid := s.conn.cmd.Process.Pid
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid == syscall.Getpgrp() {
		t.Errorf("the companion (pid %d) is in the helper's process group %d", pid, pgid)
	}
	if pgid != pid {
		t.Errorf("the companion (pid %d) is in process group %d, want its own", pid, pgid)
	}
}
