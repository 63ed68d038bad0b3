package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// settings are the resolved flags and environment of a run.
type settings struct {
	command string

	profile     string // from --profile or PRUSA_PROFILE; "" if neither
	store       string // helper.ModeAuto, ModeKeyring, ModeFile, or helper.ModeEtcd
	etcd        etcdStore
	accountURL  string
	clientID    string
	redirectURI string
	tokenFile   string
	timeout     time.Duration
	debug       bool
	autoLogin   bool
	saveCommand []string // the words of --save-command; nil if unset

	format        protocol.Format
	json          bool
	email         string
	passwordStdin bool
	all           bool          // refresh --all
	within        time.Duration // refresh --within
	version       bool          // --version

	// Raw values of the flags that resolve checks with the environment.
	rawAutoLogin   bool
	rawSaveCommand string

	set map[string]bool // flags given on the command line
}

// etcdStore is an etcd:// store and the TLS and auth settings to reach it.
type etcdStore struct {
	endpoints []string // HOST:PORT, at least one
	prefix    string   // the key prefix, without leading or trailing slash
	caCert    string   // --etcd-cacert / PRUSA_ETCD_CACERT
	cert      string   // --etcd-cert / PRUSA_ETCD_CERT
	key       string   // --etcd-key / PRUSA_ETCD_KEY
	user      string   // --etcd-user / PRUSA_ETCD_USER, user:password
}

// durationValue is a positive duration: a Go duration, or with days also
// a whole number of days.
type durationValue struct {
	v    *time.Duration
	days bool // also take 10d (refresh --within)
}

func (d durationValue) String() string {
	if d.v == nil {
		return ""
	}
	return d.v.String()
}

func (d durationValue) Set(s string) error {
	parse := parseTimeout
	if d.days {
		parse = parseDuration
	}
	v, err := parse(s)
	if err != nil {
		return err
	}
	*d.v = v
	return nil
}

// parseTimeout reads a positive Go duration (20s, 2m), for --timeout and
// PRUSA_HELPER_TIMEOUT.
func parseTimeout(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, errors.New("want a positive duration such as 20s or 2m")
	}
	return v, nil
}

// parseDuration reads a positive duration: Go's units (20s, 2m, 240h), or a
// whole number of days (10d), for refresh --within.
func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		if n, err2 := strconv.Atoi(days); err2 == nil && n > 0 && n <= 3650 {
			v, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	if err != nil || v <= 0 {
		return 0, errors.New("want a positive duration such as 240h or 10d")
	}
	return v, nil
}

func newFlagSet(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&s.profile, "profile", "", "")
	fs.Func("store", "", func(v string) error {
		s.store = v
		return checkStore(v)
	})
	fs.StringVar(&s.accountURL, "account-url", "", "")
	fs.StringVar(&s.clientID, "client-id", "", "")
	fs.StringVar(&s.redirectURI, "redirect-uri", "", "")
	fs.StringVar(&s.tokenFile, "token-file", "", "")
	fs.Var(durationValue{v: &s.timeout}, "timeout", "")
	fs.BoolVar(&s.debug, "debug", false, "")
	fs.BoolVar(&s.rawAutoLogin, "auto-login", false, "")
	fs.StringVar(&s.rawSaveCommand, "save-command", "", "")
	fs.StringVar(&s.etcd.caCert, "etcd-cacert", "", "")
	fs.StringVar(&s.etcd.cert, "etcd-cert", "", "")
	fs.StringVar(&s.etcd.key, "etcd-key", "", "")
	fs.StringVar(&s.etcd.user, "etcd-user", "", "")
	fs.BoolVar(&s.version, "version", false, "")
	fs.Func("format", "", func(v string) error {
		f, err := protocol.ParseFormat(v)
		s.format = f
		return err
	})
	fs.BoolVar(&s.json, "json", false, "")
	fs.StringVar(&s.email, "email", "", "")
	fs.BoolVar(&s.passwordStdin, "password-stdin", false, "")
	fs.BoolVar(&s.all, "all", false, "")
	fs.Var(durationValue{v: &s.within, days: true}, "within", "")
	return fs
}

// commandFlags lists, per command, the flags it takes besides the global
// ones.
var commandFlags = map[string][]string{
	"get":     {"format"},
	"token":   {},
	"store":   {"format"},
	"erase":   {"format"},
	"list":    {"format"},
	"login":   {"email", "password-stdin"},
	"logout":  {},
	"status":  {"json"},
	"refresh": {"all", "within"},
	"version": {"json"},
	"help":    {},
}

var globalFlags = []string{
	"profile", "store", "account-url", "client-id", "redirect-uri", "token-file", "timeout", "debug",
	"auto-login", "save-command", "etcd-cacert", "etcd-cert", "etcd-key", "etcd-user", "version",
}

// usageError is a command line that cannot be run: unknown command or flag,
// or a flag value of the wrong kind.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parseArgs reads flags before and after the command.
func parseArgs(args []string) (*settings, []string, error) {
	s := &settings{set: map[string]bool{}}
	fs := newFlagSet(s)
	help, err := parseFlags(fs, args)
	if err != nil {
		return s, nil, flagError(err, fs, args)
	}
	rest := fs.Args()
	if len(rest) > 0 {
		s.command = rest[0]
		h, err := parseFlags(fs, rest[1:])
		if err != nil {
			return s, nil, flagError(err, fs, rest[1:])
		}
		help = help || h
	}
	positional := fs.Args()
	fs.Visit(func(f *flag.Flag) { s.set[f.Name] = true })
	if s.command == "help" {
		return s, positional, nil
	}
	allowed, known := commandFlags[s.command]
	switch {
	case s.command != "" && !known:
		return s, nil, &usageError{"unknown command " + protocol.Shown(s.command, protocol.Word)}
	case help:
		return s, nil, flag.ErrHelp // --help before or after a command: its help
	case s.version:
		return s, nil, nil
	case s.command == "":
		return s, nil, &usageError{"no command given"}
	}
	if len(positional) > 0 {
		// Not quoted: a word in the wrong place may be a secret.
		msg := fmt.Sprintf("%s takes no arguments (got %d)", s.command, len(positional))
		switch s.command {
		case "store", "get", "erase":
			msg += "; a request or token set goes on stdin"
		case "login":
			msg += "; the email goes with --email, and the password on stdin with --password-stdin"
		}
		return s, nil, &usageError{msg}
	}
	for name := range s.set {
		if !slices.Contains(globalFlags, name) && !slices.Contains(allowed, name) {
			return s, nil, &usageError{fmt.Sprintf("flag --%s is not for %s", name, s.command)}
		}
	}
	if s.set["format"] && s.command != "get" && s.format != protocol.FormatJSON {
		return s, nil, &usageError{fmt.Sprintf("%s prints JSON only (--format json)", s.command)}
	}
	if s.set["within"] && !s.all {
		return s, nil, &usageError{"--within goes with --all"}
	}
	return s, nil, nil
}

// parseFlags parses args with fs as far as the first word that is not a
// flag, going on past -h or --help, and reports whether one was given.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	for {
		err := fs.Parse(args)
		if !errors.Is(err, flag.ErrHelp) {
			return help, err
		}
		help, args = true, fs.Args()
	}
}

// flagError rewords the flag package's errors, which it gave parsing
// args with fs: an unknown flag is named as it was given (-p, --p), a
// known one with two dashes.
func flagError(err error, fs *flag.FlagSet, args []string) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	msg := err.Error()
	// The flag package says `flag provided but not defined: -bogus`,
	// `invalid value "xml" for flag -format: want …`, `invalid boolean
	// value "maybe" for -debug: parse error` and `flag needs an argument:
	// -profile`.
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		if !protocol.Like(name, protocol.Word) {
			return &usageError{"unknown flag " + protocol.Shown(name, protocol.Word)} // a secret given as -SECRET
		}
		return &usageError{"unknown flag " + spelled(fs, args, name)}
	}
	if word, ok := strings.CutPrefix(msg, "bad flag syntax: "); ok {
		return &usageError{"bad flag syntax: " + protocol.Shown(word, protocol.Word)}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if value, name, ok := cutQuoted(rest, " for -"); ok {
			name, _, _ = strings.Cut(name, ":")
			return &usageError{fmt.Sprintf("invalid value %s for --%s: want true or false", protocol.Shown(value, protocol.Word), name)}
		}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if value, tail, ok := cutQuoted(rest, " for flag -"); ok {
			shown := protocol.Shown(value, protocol.Duration)
			if strings.HasPrefix(tail, "store:") {
				if shown = storeValue(value); shown == "" { // an etcd URL may have a password in it
					return &usageError{"invalid --" + tail}
				}
			}
			return &usageError{"invalid value " + shown + " for --" + tail}
		}
	}
	msg = strings.Replace(msg, " for flag -", " for --", 1)
	msg = strings.Replace(msg, "flag needs an argument: -", "flag needs a value: --", 1)
	return &usageError{msg}
}

// cutQuoted cuts s, which starts with a Go-quoted string (as the flag
// package quotes values), into the string's value and what follows sep.
func cutQuoted(s, sep string) (value, after string, ok bool) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil || !strings.HasPrefix(s[len(q):], sep) {
		return "", "", false
	}
	value, _ = strconv.Unquote(q)
	return value, s[len(q)+len(sep):], true
}

// spelled is how args gave the flag called name: -name or --name. It reads
// args as the flag package does, up to the first argument that is not a
// flag, skipping the values of the flags that take one.
func spelled(fs *flag.FlagSet, args []string, name string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' || a == "--" {
			break
		}
		dashes := "-"
		if a[1] == '-' {
			dashes = "--"
		}
		n, _, hasValue := strings.Cut(a[len(dashes):], "=")
		if n == name {
			return dashes + name
		}
		if f := fs.Lookup(n); f != nil && !hasValue && !isBoolFlag(f) {
			i++ // its value
		}
	}
	return "--" + name
}

// isBoolFlag says whether f takes no value (--debug rather than --debug=true).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// usageLines is what a usage error prints on stderr: one line, naming the
// problem and where to read more.
func usageLines(err error, command string) string {
	topic := ""
	if _, ok := commandFlags[command]; ok && command != "help" {
		topic = " " + command
	}
	return fmt.Sprintf("%s: %s (see: %s help%s)\n", prog, protocol.OneLine(err.Error()), prog, topic)
}
