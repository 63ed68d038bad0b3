package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// terminal is where login asks for what it was not given: the controlling
// terminal, never stdout or stdin.
//
// A prompt ends early with ctx's error when ctx ends (an interrupt: the
// helper catches those during login, so the terminal must not wait for
// Enter), with the terminal's echo as it was before.
type terminal interface {
	Prompt(ctx context.Context, prompt string) (string, error)
	PromptSecret(ctx context.Context, prompt string) (string, error) // without echo
	Println(msg string)
	Close() error
}

type ttyTerminal struct {
	in  *os.File
	out *os.File
	r   *bufio.Reader
}

func (t *ttyTerminal) Prompt(ctx context.Context, prompt string) (string, error) {
	fmt.Fprint(t.out, prompt)
	line, err := readUntilDone(ctx, func() (string, error) { return t.r.ReadString('\n') })
	if ctx.Err() != nil {
		fmt.Fprintln(t.out) // what follows (interrupted) starts a line of its own
	}
	if err != nil && (err != io.EOF || line == "") {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func (t *ttyTerminal) PromptSecret(ctx context.Context, prompt string) (string, error) {
	fd := int(t.in.Fd())
	before, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	fmt.Fprint(t.out, prompt)
	line, err := readUntilDone(ctx, func() (string, error) {
		b, err := term.ReadPassword(fd)
		return string(b), err
	})
	if ctx.Err() != nil {
		term.Restore(fd, before) // ReadPassword, still reading, turned echo off
	}
	fmt.Fprintln(t.out)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// readUntilDone runs read, and returns early with ctx's error when ctx
// ends first. The read is left blocked: the command ends with ctx.
func readUntilDone(ctx context.Context, read func() (string, error)) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := read()
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (t *ttyTerminal) Println(msg string) { fmt.Fprintln(t.out, msg) }

func (t *ttyTerminal) Close() error {
	if t.out != t.in {
		t.out.Close()
	}
	return t.in.Close()
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
