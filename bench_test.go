package main

import (
	"testing"
	"time"
)

// BenchmarkGetFastPath is get with a valid token in the file store, in
// process: the helper's own work on the fast path, without the process
// start (scripts/bench.sh measures that).
func BenchmarkGetFastPath(b *testing.B) {
	config := b.TempDir()
	storeIn(b, config, "default", canarySet(time.Now().Add(2*time.Hour), time.Now().Add(24*time.Hour)))
	p := newInProcess(config, map[string]string{"PRUSA_CREDENTIAL_STORE": "file"}, time.Now, nil)
	b.ReportAllocs()
	for b.Loop() {
		if p.run("", "get") != 0 {
			b.Fatal(p.stderr.String())
		}
	}
}
