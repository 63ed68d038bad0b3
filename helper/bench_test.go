package helper

import (
	"context"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

// BenchmarkFileGetAccess is the store read of get's fast path.
func BenchmarkFileGetAccess(b *testing.B) {
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}})
	defer srv.Close()
	fs := &FileStore{Dir: b.TempDir()}
	set := srv.Mint(email, time.Hour)
	fs.Set(context.Background(), "default", &set)
	for b.Loop() {
		if _, err := fs.GetAccess(context.Background(), "default"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileGet is the full read and validation of a stored set (the
// slow path's re-read).
func BenchmarkFileGet(b *testing.B) {
	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: password}}})
	defer srv.Close()
	fs := &FileStore{Dir: b.TempDir()}
	set := srv.Mint(email, time.Hour)
	fs.Set(context.Background(), "default", &set)
	for b.Loop() {
		if _, err := fs.Get(context.Background(), "default"); err != nil {
			b.Fatal(err)
		}
	}
}
