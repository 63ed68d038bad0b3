package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkGetFastPath is get with a valid token in the file store, in
// process: the helper's own work on the fast path, without the process
// start (scripts/bench.sh measures that).
func BenchmarkGetFastPath(b *testing.B) {
	config := b.TempDir()
	dir := filepath.Join(config, prog)
	os.MkdirAll(dir, 0o700)
	set := canarySet(time.Now().Add(2*time.Hour), time.Now().Add(24*time.Hour))
	data, _ := json.Marshal(set)
	os.WriteFile(filepath.Join(dir, "default.json"), data, 0o600)
	vars := map[string]string{"PRUSA_CREDENTIAL_STORE": "file"}
	var stdout, stderr bytes.Buffer
	e := &env{
		args: []string{"get"}, stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return vars[k] }, now: time.Now,
		configDir: func() string { return config }, stdinIsTerminal: func() bool { return false },
		openTerminal: func() (terminal, error) { return nil, errors.New("no terminal") },
	}
	b.ReportAllocs()
	for b.Loop() {
		stdout.Reset()
		e.stdin = strings.NewReader("")
		if runEnv(context.Background(), e) != 0 {
			b.Fatal(stderr.String())
		}
	}
}
