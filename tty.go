package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// terminal is where login asks for what it was not given: the controlling
// terminal, never stdout or stdin.
type terminal interface {
	Prompt(prompt string) (string, error)
	PromptSecret(prompt string) (string, error) // without echo
	Println(msg string)
	Close() error
}

type ttyTerminal struct {
	in  *os.File
	out *os.File
	r   *bufio.Reader
}

func (t *ttyTerminal) Prompt(prompt string) (string, error) {
	fmt.Fprint(t.out, prompt)
	line, err := t.r.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func (t *ttyTerminal) PromptSecret(prompt string) (string, error) {
	fmt.Fprint(t.out, prompt)
	b, err := term.ReadPassword(int(t.in.Fd()))
	fmt.Fprintln(t.out)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
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
