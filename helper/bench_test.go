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
	if _, err := fs.Set(context.Background(), "default", &set); err != nil {
		b.Fatal(err)
	}
	return fs
}

// BenchmarkFileGet is the read and validation of a stored set: get's fast
// path in the file store.
func BenchmarkFileGet(b *testing.B) {
	fs := benchStore(b)
	for b.Loop() {
		if _, _, err := fs.Get(context.Background(), "default"); err != nil {
			b.Fatal(err)
		}
	}
}
