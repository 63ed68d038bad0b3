package helper

import (
	"context"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// benchStore is a file store holding a real-sized token set.
func benchStore(b *testing.B) *FileStore {
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}})
	b.Cleanup(srv.Close)
	fs := &FileStore{Dir: b.TempDir()}
	set := srv.Mint(email, time.Hour)
	if err := fs.Set(context.Background(), "default", &set); err != nil {
		b.Fatal(err)
	}
	return fs
}

// BenchmarkFileGetAccess is the store read of get's fast path.
func BenchmarkFileGetAccess(b *testing.B) {
	fs := benchStore(b)
	for b.Loop() {
		if _, err := fs.GetAccess(context.Background(), "default"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileGet is the full read and validation of a stored set (the
// slow path's re-read).
func BenchmarkFileGet(b *testing.B) {
	fs := benchStore(b)
	for b.Loop() {
		if _, err := fs.Get(context.Background(), "default"); err != nil {
			b.Fatal(err)
		}
	}
}
