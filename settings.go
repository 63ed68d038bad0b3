package main

import (
	"cmp"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// Default budgets of --timeout.
const (
	defaultTimeout = 20 * time.Second
	loginTimeout   = 120 * time.Second // login, and a get or refresh that may log in (--auto-login)
)

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
			from := "PRUSA_PROFILE"
			if s.set["profile"] {
				from = "--profile"
			}
			// The value is not quoted: whatever was put there by mistake
			// (a token, a password) stays off stderr.
			return protocol.Errorf(protocol.InvalidRequest, "bad profile from %s: %v", from, err)
		}
	}
	c.setting("store", &s.store, "PRUSA_CREDENTIAL_STORE", helper.ModeAuto)
	if err := checkStore(s.store); err != nil {
		return protocol.Errorf(protocol.InvalidRequest, "PRUSA_CREDENTIAL_STORE %s: %v", cmp.Or(storeValue(s.store), "is not valid"), err)
	}
	if strings.HasPrefix(s.store, "etcd://") {
		s.etcd.endpoints, s.etcd.prefix, _ = helper.ParseEtcdURL(s.store) // checked above
		s.store = helper.ModeEtcd
	}
	if err := c.resolveEtcd(); err != nil {
		return err
	}
	c.setting("account-url", &s.accountURL, "PRUSA_ACCOUNT_URL", auth.DefaultAccountURL)
	if err := auth.CheckAccountURL(s.accountURL); err != nil {
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
	if notAPath(s.tokenFile) {
		// Every message that names the file would show it.
		return protocol.Errorf(protocol.InvalidRequest, "--token-file/PRUSA_TOKEN_FILE holds a token set or a token, not a file's path (the variables for those are PRUSA_TOKENS_JSON and PRUSA_TOKEN)")
	}
	if s.tokenFile != "" {
		if (s.set["store"] || s.store == helper.ModeEtcd) && s.store != helper.ModeFile {
			return protocol.Errorf(protocol.InvalidRequest, "--token-file uses the file store; it cannot go with --store %s", s.store)
		}
		s.store = helper.ModeFile
	}
	if err := c.resolveAutoLogin(); err != nil {
		return err
	}
	if err := c.resolveTimeout(); err != nil {
		return err
	}
	if !s.set["debug"] {
		debug, err := c.envBool("PRUSA_HELPER_DEBUG")
		if err != nil {
			return err
		}
		s.debug = debug
	}
	if err := c.resolveSaveCommand(); err != nil {
		return err
	}
	src, err := helper.FromEnv(c.getenv)
	if err != nil {
		return err
	}
	c.envSource = src
	return nil
}

// resolveTimeout sets the budget: --timeout, else PRUSA_HELPER_TIMEOUT,
// else 20 s, or login's 120 s for login and for a get or refresh that may log in.
func (c *cli) resolveTimeout() error {
	s := c.s
	if s.set["timeout"] {
		return nil
	}
	s.timeout = defaultTimeout
	if s.command == "login" || s.autoLogin && (s.command == "get" || s.command == "refresh") {
		s.timeout = loginTimeout
	}
	if v := c.getenv("PRUSA_HELPER_TIMEOUT"); v != "" {
		d, err := parseTimeout(v)
		if err != nil {
			return protocol.Errorf(protocol.InvalidRequest, "PRUSA_HELPER_TIMEOUT must be a positive duration such as 20s or 2m, not %s", protocol.Shown(v, protocol.Duration))
		}
		s.timeout = d
	}
	return nil
}

// resolveAutoLogin reads --auto-login, else PRUSA_AUTO_LOGIN.
func (c *cli) resolveAutoLogin() error {
	s := c.s
	if s.set["auto-login"] {
		s.autoLogin = s.rawAutoLogin
		return nil
	}
	var err error
	s.autoLogin, err = c.envBool("PRUSA_AUTO_LOGIN")
	return err
}

// envBool reads an on/off environment variable: 1 or true is on; 0, false
// or empty is off; anything else is refused.
func (c *cli) envBool(name string) (bool, error) {
	switch v := c.getenv(name); strings.ToLower(v) {
	case "1", "true":
		return true, nil
	case "0", "false", "":
		return false, nil
	default:
		return false, protocol.Errorf(protocol.InvalidRequest, "%s must be 1, true, 0 or false, not %s", name, protocol.Shown(v, protocol.Word))
	}
}

// resolveSaveCommand splits --save-command, else PRUSA_SAVE_COMMAND, into
// words (see splitWords).
func (c *cli) resolveSaveCommand() error {
	s := c.s
	name, raw := "--save-command", s.rawSaveCommand
	if !s.set["save-command"] {
		name, raw = "PRUSA_SAVE_COMMAND", c.getenv("PRUSA_SAVE_COMMAND")
		if raw == "" {
			return nil
		}
	}
	words, err := splitWords(raw)
	if err != nil {
		return protocol.Errorf(protocol.InvalidRequest, "bad %s: %v", name, err)
	}
	if len(words) == 0 {
		return protocol.Errorf(protocol.InvalidRequest, "%s names no command", name)
	}
	s.saveCommand = words
	return nil
}

// resolveEtcd reads the TLS and auth settings of an etcd:// store. They are
// checked whatever the store, so that a typo does not wait for the day the
// store is etcd.
func (c *cli) resolveEtcd() error {
	e := &c.s.etcd
	c.setting("etcd-cacert", &e.caCert, "PRUSA_ETCD_CACERT", "")
	c.setting("etcd-cert", &e.cert, "PRUSA_ETCD_CERT", "")
	c.setting("etcd-key", &e.key, "PRUSA_ETCD_KEY", "")
	c.setting("etcd-user", &e.user, "PRUSA_ETCD_USER", "")
	for _, f := range []struct{ flag, env, v string }{
		{"etcd-cacert", "PRUSA_ETCD_CACERT", e.caCert}, {"etcd-cert", "PRUSA_ETCD_CERT", e.cert}, {"etcd-key", "PRUSA_ETCD_KEY", e.key},
	} {
		if strings.ContainsAny(f.v, "\r\n") || strings.Contains(f.v, "-----BEGIN") {
			// Never the value: PRUSA_ETCD_KEY="$(cat key.pem)" is a private key.
			return protocol.Errorf(protocol.InvalidRequest, "--%s (%s) must be a file's path, not the PEM text itself", f.flag, f.env)
		}
	}
	if (e.cert == "") != (e.key == "") {
		return protocol.Errorf(protocol.InvalidRequest, "--etcd-cert and --etcd-key (PRUSA_ETCD_CERT, PRUSA_ETCD_KEY) go together")
	}
	if e.user != "" {
		if user, pass, ok := strings.Cut(e.user, ":"); !ok || user == "" || pass == "" { // as the companion requires
			// Never the value: it holds a password.
			return protocol.Errorf(protocol.InvalidRequest, "--etcd-user (PRUSA_ETCD_USER) must be user:password")
		}
	}
	return nil
}

// storeValue is a --store value that is not valid, as a message may show
// it: an etcd:// URL not at all ("": what is wrong with it follows, and
// etcd://user:password@… or etcd://user:password/… holds a password),
// anything else in a mistyped choice's shape only.
func storeValue(v string) string {
	if strings.HasPrefix(v, "etcd://") {
		return ""
	}
	return protocol.Shown(v, protocol.Word)
}

// notAPath reports whether a --token-file value is JSON or a JWT rather
// than a path: a token set or token put in the wrong variable.
func notAPath(v string) bool {
	if strings.ContainsAny(v, "{}\"\n") {
		return true
	}
	parts := strings.Split(v, ".")
	return len(parts) == 3 && len(v) > 64 && !strings.ContainsAny(v, "/\\") // a JWT: base64url, no slash
}

// checkStore checks a --store value: auto, keyring, file or an etcd:// URL.
func checkStore(v string) error {
	switch v {
	case helper.ModeAuto, helper.ModeKeyring, helper.ModeFile:
		return nil
	}
	if strings.HasPrefix(v, "etcd://") {
		_, _, err := helper.ParseEtcdURL(v)
		return err
	}
	return errors.New("want auto, keyring, file or etcd://HOST:PORT/PREFIX")
}
