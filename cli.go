package main

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/adrg/xdg"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

const prog = "prusa-credential-helper"

// versionFile is the release this source is: the file VERSION.
//
//go:embed VERSION
var versionFile string

// version is the release, as `version` and the User-Agent give it.
var version = strings.TrimSpace(versionFile)

// ExitInterrupted is the exit code after an interrupt (128 + SIGINT), as a
// shell gives.
const ExitInterrupted = 130

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
	// interrupts makes ctx end on an interrupt (main's
	// signal.NotifyContext), for the commands that catch one; nil: none.
	interrupts func(context.Context) (context.Context, context.CancelFunc)
}

// run is the program: it parses args, runs a command and turns its error
// into messages and an exit code. It is the only place that does.
// interrupts is main's watch for interrupts, applied to the commands that
// stop cleanly on one (see catchesInterrupts).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, interrupts func(context.Context) (context.Context, context.CancelFunc)) int {
	return runEnv(ctx, &env{
		args: args, stdin: stdin, stdout: stdout, stderr: stderr,
		interrupts:      interrupts,
		getenv:          os.Getenv,
		now:             time.Now,
		configDir:       func() string { return xdg.ConfigHome }, // native on macOS and Windows, XDG elsewhere
		openTerminal:    openTTY,
		stdinIsTerminal: func() bool { return isTerminal(stdin) },
	})
}

// checkedWriter remembers the first error of a write to stdout, so that
// every command fails when its output is lost (a full disk, a closed pipe).
type checkedWriter struct {
	w   io.Writer
	err error
}

func (cw *checkedWriter) Write(p []byte) (int, error) {
	if cw.err != nil {
		return 0, cw.err
	}
	n, err := cw.w.Write(p)
	cw.err = err
	return n, err
}

func runEnv(ctx context.Context, e *env) int {
	out := &checkedWriter{w: e.stdout}
	withOut := *e
	withOut.stdout = out
	code := runCommand(ctx, &withOut, out)
	if out.err != nil {
		fmt.Fprintf(e.stderr, "%s: cannot write the output: %s\n", prog, protocol.OneLine(out.err.Error()))
		if code == protocol.ExitOK {
			code = protocol.ExitFailure
		}
	}
	return code
}

// catchesInterrupts says whether command turns an interrupt into a clean
// stop (exit 130): login restores the terminal, and the writers stop before
// a half-done step. get and version do not: they only read, or save a
// refreshed set atomically (a killed get leaves the old set or the new
// one, whole, and its lock goes with the process), and catching signals
// would cost every get two threads, about 12% of its time (see the
// README's "Speed").
func catchesInterrupts(command string) bool {
	return command != "get" && command != "version"
}

// runCommand runs the command line; out is e.stdout, checked.
func runCommand(ctx context.Context, e *env, out *checkedWriter) int {
	s, positional, err := parseArgs(e.args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		topic := ""
		if _, ok := commandFlags[s.command]; ok && s.command != "help" {
			topic = s.command
		}
		io.WriteString(e.stdout, helpText(topic))
		return protocol.ExitOK
	case err != nil:
		io.WriteString(e.stderr, usageLines(err, s.command))
		return protocol.ExitUsage
	case s.version:
		s.command = "version"
	case s.command == "help":
		topic := ""
		if len(positional) > 0 {
			topic = positional[0]
		}
		if _, ok := commandFlags[topic]; topic != "" && !ok {
			io.WriteString(e.stderr, usageLines(errors.New("no help for unknown command "+protocol.Shown(topic, protocol.Word)), ""))
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
	if e.interrupts != nil && catchesInterrupts(s.command) {
		var stop context.CancelFunc
		ctx, stop = e.interrupts(ctx)
		defer stop()
	}
	c := &cli{env: e, s: s}
	interrupted := ctx.Err
	err = c.resolve()
	if err == nil {
		if s.command != "login" { // login's budget starts after its prompts
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.timeout)
			defer cancel()
		}
		err = c.dispatch(ctx)
	}
	if err == nil {
		return protocol.ExitOK
	}
	if out.err != nil && errors.Is(err, out.err) {
		return protocol.ExitFailure // runEnv says why
	}
	return c.report(err, interrupted() != nil)
}

// report turns a command's error into its messages and exit code: the
// JSON document on stdout (protocol commands), one line of message and at
// most one hint line on stderr.
func (c *cli) report(err error, interrupted bool) int {
	var se *silentExit
	if errors.As(err, &se) {
		return se.code
	}
	pe, code := c.classify(err), 0
	if interrupted {
		// Whatever the error says (a read, a request or a lock wait cut
		// short), the cause is the interrupt.
		pe, code = &protocol.Error{Code: protocol.Internal, Message: "interrupted"}, ExitInterrupted
		if (c.s.command == "erase" || c.s.command == "logout") && c.s.store == helper.ModeEtcd {
			// The companion carries out a delete it has read: the key may
			// be gone while this host's cache still serves its token.
			pe.Hint = "etcd may have removed it already: run " + c.s.command + " again to finish"
		}
	}
	if c.isProtocol() {
		protocol.WriteError(c.stdout, c.s.format, pe)
	}
	if c.warned.Load() && pe.Hint != "" {
		// An error gives one line and at most one hint line: after a
		// warning (a corrupt file moved aside), its hint joins its line.
		joined := *pe
		joined.Message, joined.Hint = pe.Message+"; "+pe.Hint, ""
		pe = &joined
	}
	io.WriteString(c.stderr, pe.Stderr(prog))
	if code != 0 {
		return code
	}
	return pe.Code.ExitCode()
}

// unsetFirst is how to log in (how), after what to do about the
// environment variable whose token set is refused or expired, if any: a
// login saves to the store, which get does not read while it is set.
func unsetFirst(variable, how string) string {
	switch variable {
	case "":
		return how
	case helper.EnvTokensJSON: // a CI job cannot log in, but can be given a new set
		return "give " + variable + " a new token set, or unset it and " + how
	}
	// The store may hold a set that serves: then unsetting is enough.
	return "unset " + variable + ", then, if a login is still needed, " + how
}

// cli is one run of a command.
type cli struct {
	*env
	s         *settings
	h         *helper.Helper
	envSource *helper.EnvSource // the environment's tokens, read once by resolve
	warned    atomic.Bool       // a warning is on stderr (see report)
}

func (c *cli) isProtocol() bool {
	switch c.s.command {
	case "get", "store", "erase", "list":
		return true
	}
	return false
}

func (c *cli) dispatch(ctx context.Context) error {
	if c.s.store == helper.ModeEtcd && c.s.command != "version" {
		// The companion runs for the whole command (its lease holds the
		// lock); a missing one is said before any prompt or request. get
		// need not look for it: a cached token serves without it, and
		// its first call says the same.
		es := c.helper().Etcd()
		defer es.Close()
		if c.s.command != "get" {
			if err := es.Check(); err != nil {
				return err
			}
		}
	}
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
	case "refresh":
		return c.refresh(ctx)
	case "version":
		if c.s.json {
			return protocol.WriteVersion(c.stdout, version)
		}
		_, err := fmt.Fprintf(c.stdout, "%s %s (protocol %d)\n", prog, version, protocol.Version)
		return err
	}
	return errors.New("unknown command " + protocol.Shown(c.s.command, protocol.Word)) // parseArgs refuses these
}

// storeDir is the file store's directory (the keyring's index is there too).
func (c *cli) storeDir() string { return filepath.Join(c.configDir(), prog) }

// etcdURL is the etcd:// store of the settings, as given ("" for none).
func (s *settings) etcdURL() string {
	if s.etcd.prefix == "" {
		return ""
	}
	return "etcd://" + strings.Join(s.etcd.endpoints, ",") + "/" + s.etcd.prefix
}

// helper builds the credential lifecycle for the settings.
func (c *cli) helper() *helper.Helper {
	if c.h != nil {
		return c.h
	}
	cfg := helper.Config{
		Mode:      c.s.store,
		Dir:       c.storeDir(),
		TokenFile: c.s.tokenFile,
		NoKeyring: helper.SessionBusAbsent(c.getenv),
		Auth:      c.authClient(),
		Env:       c.envSource,
		Now:       c.now,
		Debugf:    c.debugf(),
		Warn:      c.warn,
		OnSave:    c.saveHook(),
	}
	if c.s.autoLogin {
		cfg.Login = c.autoLogin
	}
	if c.s.store == helper.ModeEtcd {
		e := c.s.etcd
		cfg.Etcd = &helper.EtcdStore{
			Endpoints: e.endpoints, Prefix: e.prefix,
			CacheDir: helper.EtcdCacheDir(cfg.Dir, e.endpoints, e.prefix),
			Settings: helper.EtcdSettings{CACert: e.caCert, Cert: e.cert, Key: e.key, User: e.user},
			Timeout:  c.s.timeout,
			Warn:     cfg.Warn,
		}
	}
	c.h = helper.New(cfg)
	return c.h
}

func (c *cli) authClient() *auth.Client {
	return &auth.Client{
		AccountURL:  c.s.accountURL,
		ClientID:    c.s.clientID,
		RedirectURI: c.s.redirectURI,
		UserAgent:   prog + "/" + version,
		Now:         c.now,
		Debugf:      c.debugf(),
	}
}

func (c *cli) debugf() func(string, ...any) {
	if !c.s.debug {
		return nil
	}
	return func(format string, args ...any) {
		fmt.Fprintf(c.stderr, "%s: debug: %s\n", prog, protocol.OneLine(fmt.Sprintf(format, args...)))
	}
}

// totpHint says what to do about a refused TOTP code, by where it came
// from.
func (c *cli) totpHint(err error) string {
	var we *auth.TOTPWaitError
	switch {
	case errors.As(err, &we):
		return fmt.Sprintf("check PRUSA_TOTP_SECRET, or give more time with --timeout: the next code, for when another login used this one, comes in %s, after the time --timeout %s left", we.Wait, c.s.timeout)
	case c.getenv("PRUSA_TOTP_CODE") != "":
		return "a code works once and changes every 30 s: set PRUSA_TOTP_CODE to a fresh one"
	case c.getenv("PRUSA_TOTP_SECRET") != "":
		// Tried at two steps: a wrong secret, or logins that used both.
		return "check PRUSA_TOTP_SECRET; logins to one account use up its codes, one per 30 s step: run at most two at once"
	}
	return "a code works once and changes every 30 s: use the next one, from a device whose clock is right"
}

// warnPlainEtcd warns, in the commands a person runs (login, status), of
// an etcd store on another machine reached without TLS: its token sets,
// refresh tokens and all, cross the network in clear.
func (c *cli) warnPlainEtcd() {
	e := c.s.etcd
	if c.s.store != helper.ModeEtcd || e.caCert != "" || e.cert != "" {
		return
	}
	for _, ep := range e.endpoints {
		if host, _, err := net.SplitHostPort(ep); err != nil || !auth.IsLoopback(host) {
			c.warnf("etcd at %s is reached without TLS: the token sets cross the network in clear; give etcd's CA with --etcd-cacert or PRUSA_ETCD_CACERT", ep)
			return
		}
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
	var re *auth.RetrieveError
	var lr *helper.LoginRequiredError
	switch {
	case errors.Is(err, helper.ErrInvalidEnv), errors.Is(err, auth.ErrInvalidTokenSet), errors.Is(err, auth.ErrInvalidTOTPSecret):
		return &protocol.Error{Code: protocol.InvalidRequest, Message: msg}
	case errors.As(err, &lr):
		hint := unsetFirst(lr.Unset, "run: "+c.commandLine("login", cmp.Or(lr.Profile, c.s.profile)))
		if lr.Issuer != "" {
			hint = "to use them, set --account-url " + protocol.ShellQuote(lr.Issuer) + " (or PRUSA_ACCOUNT_URL); to log in at this server, " + hint
		}
		return &protocol.Error{Code: protocol.LoginRequired, Message: msg, Hint: hint}
	case errors.Is(err, helper.ErrLoginRequired):
		return &protocol.Error{Code: protocol.LoginRequired, Message: msg, Hint: "run: " + c.commandLine("login", c.s.profile)}
	case errors.Is(err, auth.ErrInvalidCredentials):
		return &protocol.Error{Code: protocol.LoginRequired, Message: "invalid email or password", Hint: "check them, and that --account-url / PRUSA_ACCOUNT_URL is the account server"}
	case errors.Is(err, auth.ErrInvalidTOTP):
		return &protocol.Error{Code: protocol.LoginRequired, Message: "invalid TOTP code", Hint: c.totpHint(err)}
	case errors.Is(err, context.DeadlineExceeded):
		what := strings.TrimSuffix(msg, ": context deadline exceeded")
		return &protocol.Error{Code: protocol.Timeout, Message: fmt.Sprintf("timed out after %s (%s)", c.s.timeout, what), Hint: "try again later, or give more time with --timeout"}
	case errors.Is(err, context.Canceled):
		return &protocol.Error{Code: protocol.Internal, Message: "interrupted"}
	case errors.Is(err, helper.ErrStoreUnreachable):
		return &protocol.Error{Code: protocol.NetworkError, Message: msg, Hint: "check that the etcd cluster answers, or try again later"}
	case errors.Is(err, auth.ErrNetwork):
		hint := "check the network and --account-url, or try again later"
		if auth.NotTLS(err) {
			fix := "check --account-url"
			if u, perr := url.Parse(c.s.accountURL); perr == nil && auth.IsLoopback(u.Hostname()) {
				fix = "a test server on this machine (such as the emulator) takes http://"
			}
			hint = "the server at the account URL does not speak https: " + fix
		}
		return &protocol.Error{Code: protocol.NetworkError, Message: "cannot reach the account server: " + msg, Hint: hint}
	case errors.Is(err, auth.ErrRequestRefused):
		// Not the server's passing trouble: a retry gets the same answer.
		return &protocol.Error{Code: protocol.Internal, Message: msg,
			Hint: "check the account URL (--account-url / PRUSA_ACCOUNT_URL: the server's root, such as https://account.prusa3d.com), --client-id / PRUSA_CLIENT_ID and --redirect-uri / PRUSA_REDIRECT_URI"}
	case errors.Is(err, auth.ErrServer), errors.Is(err, auth.ErrTooManyRedirects), errors.Is(err, auth.ErrCSRF), errors.Is(err, auth.ErrUnexpectedPage):
		return &protocol.Error{Code: protocol.ServerError, Message: msg}
	case errors.Is(err, helper.ErrUnavailable):
		hint := "unlock the keyring and try again"
		if ue := (*helper.UnavailableError)(nil); errors.As(err, &ue) && ue.Hint != "" {
			hint = ue.Hint
		} else if ue != nil && ue.NoBus {
			hint = "run this in the session that has the keyring (its D-Bus session bus, DBUS_SESSION_BUS_ADDRESS); on a machine without one, see docs/stores.md, a keyring on a headless machine"
		}
		return &protocol.Error{Code: protocol.StorageError, Message: msg, Hint: hint}
	case errors.Is(err, helper.ErrEtcdAuth):
		hint := "etcd asks for a user: set PRUSA_ETCD_USER (user:password), or pass --etcd-user"
		if c.s.etcd.user != "" {
			hint = "check the etcd user's password, and that its role has readwrite on the prefix " + protocol.ShellQuote(c.s.etcd.prefix+"/") + " (docs/stores.md, the role the prefix needs)"
		}
		return &protocol.Error{Code: protocol.StorageError, Message: msg, Hint: hint}
	case errors.Is(err, helper.ErrStorage) && errors.Is(err, fs.ErrPermission):
		return &protocol.Error{Code: protocol.StorageError, Message: msg, Hint: "check that this user may read and write the store's folder and files (ls -la on the folder named above)"}
	case errors.Is(err, helper.ErrStorage):
		return &protocol.Error{Code: protocol.StorageError, Message: msg}
	case errors.As(err, &re) && re.ErrorCode == "invalid_client":
		return &protocol.Error{Code: protocol.Internal, Message: msg, Hint: "check --client-id / PRUSA_CLIENT_ID"}
	}
	return &protocol.Error{Code: protocol.Internal, Message: msg}
}

// commandLine is the command line of command (login, refresh) for the
// profile, with the flags of this run that say where its tokens are (the
// store, the token file, the account server and client, etcd's TLS
// files): run as told, it serves this command. Other settings from the
// environment are left out, since that environment applies to it too (a
// profile other than default is always named); the etcd user is never
// shown, for its password: the line says to add it.
func (c *cli) commandLine(command, profile string) string {
	line := prog + " " + command
	if profile != "" && profile != "default" {
		line += " --profile " + profile
	}
	s := c.s
	add := func(flag, value string) {
		if s.set[flag] {
			line += " --" + flag + " " + protocol.ShellQuote(value)
		}
	}
	store := s.store
	if store == helper.ModeEtcd {
		store = s.etcdURL()
	}
	add("store", store)
	add("token-file", s.tokenFile)
	add("account-url", s.accountURL)
	add("client-id", s.clientID)
	add("redirect-uri", s.redirectURI)
	add("etcd-cacert", s.etcd.caCert)
	add("etcd-cert", s.etcd.cert)
	add("etcd-key", s.etcd.key)
	if s.set["etcd-user"] {
		line += " (and your --etcd-user)"
	}
	return line
}

// warnf writes a one-line warning on stderr.
func (c *cli) warnf(format string, args ...any) {
	c.warn("warning: " + protocol.OneLine(fmt.Sprintf(format, args...)))
}

// warn writes the helper's one-line message msg on stderr.
func (c *cli) warn(msg string) {
	c.warned.Store(true)
	fmt.Fprintf(c.stderr, "%s: %s\n", prog, msg)
}
