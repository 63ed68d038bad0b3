package helper

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// Environment variables that carry tokens, in the Python SDK's order.
const (
	EnvTokensJSON = "PRUSA_TOKENS_JSON" // a full token set
	EnvToken      = "PRUSA_TOKEN"       // a bare access token; cannot be refreshed
)

// secretVariables hold secrets: the tokens, and the inputs of a login and
// of etcd's auth.
var secretVariables = []string{EnvTokensJSON, EnvToken, "PRUSA_PASSWORD", "PRUSA_TOTP_SECRET", "PRUSA_TOTP_CODE", "PRUSA_ETCD_USER"}

// ChildEnviron is environ (os.Environ's shape) without the variables that
// hold secrets: what a program the helper starts (the save command, the
// etcd companion) inherits. It gets a secret only where it is handed one.
func ChildEnviron(environ []string) []string {
	return slices.DeleteFunc(slices.Clone(environ), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.ContainsFunc(secretVariables, func(v string) bool { return strings.EqualFold(v, name) })
	})
}

// ErrInvalidEnv is returned (wrapped) for a token variable that is set but
// does not hold what it should. It is never silently skipped.
var ErrInvalidEnv = errors.New("invalid token in the environment")

// envError is an ErrInvalidEnv with a message that names the variable.
type envError struct{ msg string }

func (e *envError) Error() string        { return e.msg }
func (e *envError) Is(target error) bool { return target == ErrInvalidEnv }

// EnvSource is a token set taken from the environment.
type EnvSource struct {
	Var    string // EnvTokensJSON or EnvToken
	Set    *auth.TokenSet
	Access *auth.Claims
}

// Bare reports whether the source is a bare access token (PRUSA_TOKEN).
func (e *EnvSource) Bare() bool { return e.Var == EnvToken }

// FromEnv reads PRUSA_TOKENS_JSON, else PRUSA_TOKEN. It returns nil when
// neither is set (an empty value counts as unset). Both are checked
// whichever is used: a bad one is an error, never skipped.
func FromEnv(getenv func(string) string) (*EnvSource, error) {
	var full *EnvSource
	if v := getenv(EnvTokensJSON); v != "" {
		set, err := auth.ParseTokenSet([]byte(v))
		if err != nil {
			return nil, &envError{fmt.Sprintf("%s is not a valid token set: %s", EnvTokensJSON, reason(err))}
		}
		c, _ := set.Access() // parsed by ParseTokenSet
		full = &EnvSource{Var: EnvTokensJSON, Set: set, Access: c}
	}
	var bare *EnvSource
	if raw := getenv(EnvToken); raw != "" {
		v := strings.TrimSpace(raw) // a token read from a file keeps its newline
		if v == "" {
			return nil, &envError{EnvToken + " is not a JWT: it holds white space alone"}
		}
		c, err := auth.ParseJWT(v)
		if err != nil {
			return nil, &envError{fmt.Sprintf("%s is not a JWT: %s", EnvToken, strings.TrimPrefix(err.Error(), auth.ErrMalformedJWT.Error()+": "))}
		}
		bare = &EnvSource{Var: EnvToken, Set: &auth.TokenSet{AccessToken: v, TokenType: "Bearer"}, Access: c}
	}
	if full != nil {
		return full, nil
	}
	return bare, nil
}
