package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

func TestEmulatorProgram(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--user", "a@b.c:CANARY", "--user", "t@b.c:CANARY-pw:" + secret}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no URL printed: %v (stderr %q)", err, stderr.String())
	}
	base := strings.TrimSpace(line)
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("URL = %q", base)
	}
	go io.Copy(io.Discard, pr)
	c := &auth.Client{AccountURL: base, ClientID: auth.DefaultClientID, RedirectURI: auth.DefaultRedirectURI, UserAgent: "test"}
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	defer lcancel()
	totp, _ := auth.TOTPFromSecret(secret, nil, nil, nil)
	if _, err := c.Login(lctx, auth.LoginInput{Email: "t@b.c", Password: "CANARY-pw", TOTP: totp}); err != nil {
		t.Fatalf("login against the program: %v", err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestEmulatorProgramUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--user", "nocolon"}, {"--user", "a@b.c:x", "--next", "weird"}, {"--user", "a@b.c:x", "--addr", "0.0.0.0:0"}} {
		var out, errw strings.Builder
		if code := run(context.Background(), args, &out, &errw); code == 0 || out.Len() != 0 || errw.Len() == 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out.String(), errw.String())
		}
	}
}
