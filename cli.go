package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

const prog = "prusa-credential-helper"

// version is stamped by install.sh with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// env is what a run sees of the world; tests build their own.
type env struct {
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time
	// configDir is the parent of the file store's directory.
	configDir func() string
	// openTerminal opens the controlling terminal for prompts.
	openTerminal func() (terminal, error)
	// stdinIsTerminal reports whether stdin is a terminal (then get does
	// not read it).
	stdinIsTerminal func() bool
	// watchSignals makes ctx end on an interrupt; nil leaves it as it is.
	watchSignals func(ctx context.Context) (context.Context, context.CancelFunc)
}

// run is the program: it parses args, runs a command and turns its error
// into messages and an exit code. It is the only place that does.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(ctx, &env{
		args: args, stdin: stdin, stdout: stdout, stderr: stderr,
		getenv:          os.Getenv,
		now:             time.Now,
		configDir:       func() string { return configDir(os.Getenv) },
		openTerminal:    openTTY,
		stdinIsTerminal: func() bool { return isTerminal(stdin) },
		watchSignals: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		},
	})
}

// settings are the resolved flags and environment of a run.
type settings struct {
	command string

	profile     string // from --profile or PRUSA_PROFILE; "" if neither
	store       string
	accountURL  string
	clientID    string
	redirectURI string
	tokenFile   string
	timeout     time.Duration
	debug       bool

	format        protocol.Format
	json          bool
	email         string
	passwordStdin bool

	set map[string]bool // flags given on the command line
}

// choiceValue is a flag that takes one of a few words.
type choiceValue struct {
	v       *string
	choices []string
}

func (c choiceValue) String() string {
	if c.v == nil {
		return ""
	}
	return *c.v
}

func (c choiceValue) Set(s string) error {
	for _, ch := range c.choices {
		if s == ch {
			*c.v = s
			return nil
		}
	}
	return fmt.Errorf("want %s", strings.Join(c.choices, ", "))
}

// durationValue is a positive duration.
type durationValue struct{ v *time.Duration }

func (d durationValue) String() string {
	if d.v == nil {
		return ""
	}
	return d.v.String()
}

func (d durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return errors.New("want a positive duration such as 20s or 2m")
	}
	*d.v = v
	return nil
}

var formatNames = []string{"json", "token", "header", "env"}

func newFlagSet(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&s.profile, "profile", "", "")
	fs.Var(choiceValue{&s.store, []string{helper.ModeAuto, helper.ModeKeyring, helper.ModeFile}}, "store", "")
	fs.StringVar(&s.accountURL, "account-url", "", "")
	fs.StringVar(&s.clientID, "client-id", "", "")
	fs.StringVar(&s.redirectURI, "redirect-uri", "", "")
	fs.StringVar(&s.tokenFile, "token-file", "", "")
	fs.Var(durationValue{&s.timeout}, "timeout", "")
	fs.BoolVar(&s.debug, "debug", false, "")
	fs.Var(choiceValue{(*string)(&s.format), formatNames}, "format", "")
	fs.BoolVar(&s.json, "json", false, "")
	fs.StringVar(&s.email, "email", "", "")
	fs.BoolVar(&s.passwordStdin, "password-stdin", false, "")
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
	"version": {"json"},
	"help":    {},
}

var globalFlags = []string{"profile", "store", "account-url", "client-id", "redirect-uri", "token-file", "timeout", "debug"}

// usageError is a command line that cannot be run: unknown command or flag,
// or a flag value of the wrong kind.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parseArgs reads flags before and after the command.
func parseArgs(args []string) (*settings, []string, error) {
	s := &settings{set: map[string]bool{}}
	fs := newFlagSet(s)
	if err := fs.Parse(args); err != nil {
		return s, nil, flagError(err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return s, nil, &usageError{"no command given"}
	}
	s.command = rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return s, nil, flagError(err)
	}
	positional := fs.Args()
	fs.Visit(func(f *flag.Flag) { s.set[f.Name] = true })
	if s.command == "help" {
		return s, positional, nil
	}
	allowed, ok := commandFlags[s.command]
	if !ok {
		return s, nil, &usageError{fmt.Sprintf("unknown command %q", s.command)}
	}
	if len(positional) > 0 {
		return s, nil, &usageError{fmt.Sprintf("%s takes no arguments (got %q)", s.command, positional[0])}
	}
	for name := range s.set {
		if !contains(globalFlags, name) && !contains(allowed, name) {
			return s, nil, &usageError{fmt.Sprintf("flag --%s is not for %s", name, s.command)}
		}
	}
	if s.set["format"] && s.command != "get" && s.format != protocol.FormatJSON {
		return s, nil, &usageError{fmt.Sprintf("%s prints JSON only (--format json)", s.command)}
	}
	return s, nil, nil
}

func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	msg := err.Error()
	// The flag package says "invalid value "xml" for flag -format: want …".
	msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag: --", 1)
	msg = strings.Replace(msg, " flag -", " flag --", 1)
	return &usageError{msg}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func runEnv(ctx context.Context, e *env) int {
	s, positional, err := parseArgs(e.args)
	if errors.Is(err, flag.ErrHelp) {
		topic := ""
		if s.command != "" && s.command != "help" {
			topic = s.command
		}
		io.WriteString(e.stdout, helpText(topic))
		return protocol.ExitOK
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n\n%s", prog, err, helpText(""))
		return protocol.ExitUsage
	}
	if s.command == "help" {
		topic := ""
		if len(positional) > 0 {
			topic = positional[0]
		}
		if _, ok := commandFlags[topic]; topic != "" && !ok {
			fmt.Fprintf(e.stderr, "%s: no help for unknown command %q\n\n%s", prog, topic, helpText(""))
			return protocol.ExitUsage
		}
		io.WriteString(e.stdout, helpText(topic))
		return protocol.ExitOK
	}
	if s.command == "token" {
		s.command, s.format = "get", protocol.FormatToken
	}
	if s.format == "" {
		s.format = protocol.FormatJSON
	}
	c := &cli{env: e, s: s}
	err = c.resolve()
	if err == nil {
		c.deadline = time.Now().Add(s.timeout)
		switch s.command {
		case "version":
			// version needs nothing.
		case "get", "list", "status":
			// A budget, no signals: a killed get leaves the store whole
			// (the old set or the new; the lock goes with the process).
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, c.deadline)
			defer cancel()
		case "login":
			// Interrupts end it at once, prompts included; its budget
			// starts after the email and password prompts (cli.login), so
			// that a slow typist does not spend it.
			if c.watchSignals != nil {
				var cancel context.CancelFunc
				ctx, cancel = c.watchSignals(ctx)
				defer cancel()
			}
		default:
			var cancel context.CancelFunc
			ctx, cancel = c.budget(ctx)
			defer cancel()
		}
		err = c.dispatch(ctx)
	}
	if err == nil {
		return protocol.ExitOK
	}
	var se *silentExit
	if errors.As(err, &se) {
		return se.code
	}
	pe := c.classify(err)
	if c.isProtocol() {
		protocol.WriteError(e.stdout, s.format, pe)
	}
	io.WriteString(e.stderr, pe.Stderr(prog))
	return pe.Code.ExitCode()
}

// cli is one run of a command.
type cli struct {
	*env
	s         *settings
	h         *helper.Helper
	deadline  time.Time         // the end of the --timeout budget
	envSource *helper.EnvSource // the environment's tokens, read once by resolve
}

// budget bounds ctx by the command's deadline and ends it on an interrupt.
func (c *cli) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancelTimeout := context.WithDeadline(ctx, c.deadline)
	if c.watchSignals == nil {
		return ctx, cancelTimeout
	}
	ctx, cancelSignals := c.watchSignals(ctx)
	return ctx, func() { cancelSignals(); cancelTimeout() }
}

func (c *cli) isProtocol() bool {
	switch c.s.command {
	case "get", "store", "erase", "list":
		return true
	}
	return false
}

func (c *cli) dispatch(ctx context.Context) error {
	switch c.s.command {
	case "get":
		return c.get(ctx)
	case "store":
		return c.storeCmd(ctx)
	case "erase":
		return c.erase(ctx, false)
	case "logout":
		return c.erase(ctx, true)
	case "list":
		return c.list(ctx)
	case "login":
		return c.login(ctx)
	case "status":
		return c.status(ctx)
	case "version":
		if c.s.json {
			return protocol.WriteVersion(c.stdout, version)
		}
		_, err := fmt.Fprintf(c.stdout, "%s %s (protocol %d)\n", prog, version, protocol.Version)
		return err
	}
	return fmt.Errorf("unknown command %q", c.s.command) // parseArgs refuses these
}

// setting resolves a setting: the flag if given, else the environment
// variable if not empty, else the default.
func (c *cli) setting(flagName string, flagValue *string, envName, def string) {
	if c.s.set[flagName] {
		return
	}
	if v := c.getenv(envName); v != "" {
		*flagValue = v
		return
	}
	*flagValue = def
}

// resolve fills the settings from the environment and checks them all, so
// that a bad one is an invalid_request before anything else happens.
func (c *cli) resolve() error {
	s := c.s
	if !s.set["profile"] {
		s.profile = c.getenv("PRUSA_PROFILE")
	}
	if s.set["profile"] || s.profile != "" {
		if err := helper.CheckProfile(s.profile); err != nil {
			return protocol.Errorf(protocol.InvalidRequest, "bad profile: %v", err)
		}
	}
	c.setting("store", &s.store, "PRUSA_CREDENTIAL_STORE", helper.ModeAuto)
	if (choiceValue{new(string), []string{helper.ModeAuto, helper.ModeKeyring, helper.ModeFile}}).Set(s.store) != nil {
		return protocol.Errorf(protocol.InvalidRequest, "PRUSA_CREDENTIAL_STORE must be auto, keyring or file, not %q", s.store)
	}
	c.setting("account-url", &s.accountURL, "PRUSA_ACCOUNT_URL", auth.DefaultAccountURL)
	if err := checkAccountURL(s.accountURL); err != nil {
		return protocol.Errorf(protocol.InvalidRequest, "bad account URL: %v", err)
	}
	s.accountURL = strings.TrimRight(s.accountURL, "/")
	c.setting("client-id", &s.clientID, "PRUSA_CLIENT_ID", auth.DefaultClientID)
	if s.clientID == "" {
		return protocol.Errorf(protocol.InvalidRequest, "the client ID is empty")
	}
	c.setting("redirect-uri", &s.redirectURI, "PRUSA_REDIRECT_URI", auth.DefaultRedirectURI)
	if u, err := url.Parse(s.redirectURI); err != nil || u.Scheme == "" || u.Host == "" {
		return protocol.Errorf(protocol.InvalidRequest, "bad redirect URI: want an absolute URL")
	}
	c.setting("token-file", &s.tokenFile, "PRUSA_TOKEN_FILE", "")
	if s.set["token-file"] && s.tokenFile == "" {
		return protocol.Errorf(protocol.InvalidRequest, "--token-file is empty")
	}
	if s.tokenFile != "" {
		if s.set["store"] && s.store != helper.ModeFile {
			return protocol.Errorf(protocol.InvalidRequest, "--token-file uses the file store; it cannot go with --store %s", s.store)
		}
		s.store = helper.ModeFile
	}
	if !s.set["timeout"] {
		s.timeout = 20 * time.Second
		if s.command == "login" {
			s.timeout = 120 * time.Second
		}
		if v := c.getenv("PRUSA_HELPER_TIMEOUT"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return protocol.Errorf(protocol.InvalidRequest, "PRUSA_HELPER_TIMEOUT must be a positive duration such as 20s, not %q", v)
			}
			s.timeout = d
		}
	}
	if !s.set["debug"] {
		s.debug = c.getenv("PRUSA_HELPER_DEBUG") == "1"
	}
	src, err := helper.FromEnv(c.getenv)
	if err != nil {
		return err
	}
	c.envSource = src
	return nil
}

// checkAccountURL requires https, or http on a loopback host.
func checkAccountURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("no host")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("no user, query or fragment allowed")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("http:// is allowed only for loopback hosts, not %s; use https://", host)
	}
	return fmt.Errorf("scheme %q: want https://", u.Scheme)
}

// helper builds the credential lifecycle for the settings.
func (c *cli) helper() *helper.Helper {
	if c.h != nil {
		return c.h
	}
	c.h = helper.New(helper.Config{
		Mode:      c.s.store,
		Dir:       filepath.Join(c.configDir(), prog),
		TokenFile: c.s.tokenFile,
		NoKeyring: helper.SessionBusAbsent(c.getenv),
		Auth:      c.authClient(),
		Env:       c.envSource,
		Now:       c.now,
		Debugf:    c.debugf(),
		Warn:      func(msg string) { fmt.Fprintf(c.stderr, "%s: %s\n", prog, msg) },
	})
	return c.h
}

func (c *cli) authClient() *auth.Client {
	return &auth.Client{
		AccountURL:  c.s.accountURL,
		ClientID:    c.s.clientID,
		RedirectURI: c.s.redirectURI,
		UserAgent:   prog + "/" + version + " (" + runtime.GOOS + "; " + runtime.GOARCH + ")",
		Now:         c.now,
		Debugf:      c.debugf(),
	}
}

func (c *cli) debugf() func(string, ...any) {
	if !c.s.debug {
		return nil
	}
	return func(format string, args ...any) {
		fmt.Fprintf(c.stderr, "%s: debug: %s\n", prog, fmt.Sprintf(format, args...))
	}
}

// checkKeyringReachable refuses --store keyring where there is no session
// bus to reach a keyring through.
func (c *cli) checkKeyringReachable() error {
	if c.s.store == helper.ModeKeyring && helper.SessionBusAbsent(c.getenv) {
		return &protocol.Error{Code: protocol.StorageError,
			Message: "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset), so no keyring can be reached",
			Hint:    "use --store file, or start a session with a Secret Service"}
	}
	return nil
}

// profileFor decides the profile: the request's, else the flag's or
// environment's, else "default"; both given and different is an error.
func (c *cli) profileFor(reqProfile string, hasReq bool) (string, error) {
	if hasReq {
		if err := helper.CheckProfile(reqProfile); err != nil {
			return "", protocol.Errorf(protocol.InvalidRequest, "bad profile in the request: %v", err)
		}
		if c.s.profile != "" && c.s.profile != reqProfile {
			return "", protocol.Errorf(protocol.InvalidRequest, "the request's profile %q differs from --profile/PRUSA_PROFILE %q", reqProfile, c.s.profile)
		}
		return reqProfile, nil
	}
	if c.s.profile != "" {
		return c.s.profile, nil
	}
	return "default", nil
}

// classify turns any error into a protocol error with a safe message.
func (c *cli) classify(err error) *protocol.Error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	msg := err.Error()
	loginHint := "run: " + prog + " login"
	if c.s.profile != "" && c.s.profile != "default" {
		loginHint += " --profile " + c.s.profile
	}
	var re *auth.RetrieveError
	switch {
	case errors.Is(err, helper.ErrInvalidEnv), errors.Is(err, auth.ErrInvalidTokenSet), errors.Is(err, auth.ErrInvalidTOTPSecret):
		return &protocol.Error{Code: protocol.InvalidRequest, Message: msg}
	case errors.Is(err, helper.ErrLoginRequired):
		if le := (*helper.LoginRequiredError)(nil); errors.As(err, &le) && le.Unset != "" {
			loginHint = "unset " + le.Unset + ", then " + loginHint
		}
		return &protocol.Error{Code: protocol.LoginRequired, Message: msg, Hint: loginHint}
	case errors.Is(err, auth.ErrInvalidCredentials):
		return &protocol.Error{Code: protocol.LoginRequired, Message: "invalid email or password"}
	case errors.Is(err, auth.ErrInvalidTOTP):
		return &protocol.Error{Code: protocol.LoginRequired, Message: "invalid TOTP code"}
	case errors.Is(err, context.DeadlineExceeded):
		what := strings.TrimSuffix(msg, ": context deadline exceeded")
		return &protocol.Error{Code: protocol.Timeout, Message: fmt.Sprintf("timed out after %s (%s)", c.s.timeout, what), Hint: "try again later, or give more time with --timeout"}
	case errors.Is(err, context.Canceled):
		return &protocol.Error{Code: protocol.Internal, Message: "interrupted"}
	case errors.Is(err, auth.ErrNetwork):
		return &protocol.Error{Code: protocol.NetworkError, Message: "cannot reach the account server: " + msg}
	case errors.Is(err, auth.ErrServer), errors.Is(err, auth.ErrTooManyRedirects), errors.Is(err, auth.ErrCSRF), errors.Is(err, auth.ErrUnexpectedPage):
		return &protocol.Error{Code: protocol.ServerError, Message: msg}
	case errors.Is(err, helper.ErrStorage):
		return &protocol.Error{Code: protocol.StorageError, Message: msg}
	case errors.As(err, &re) && re.ErrorCode == "invalid_client":
		return &protocol.Error{Code: protocol.Internal, Message: msg, Hint: "check --client-id / PRUSA_CLIENT_ID"}
	case errors.Is(err, auth.ErrPasswordLoginUnavailable):
		return &protocol.Error{Code: protocol.Internal, Message: msg, Hint: "accounts that sign in with Google or a passkey cannot log in here; set a password on the account first"}
	}
	return &protocol.Error{Code: protocol.Internal, Message: msg}
}
