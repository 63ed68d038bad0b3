// Package auth knows the Prusa Account: the JWTs it issues and their claims,
// the token set it returns (in the shape of the Python SDK's dump_tokens),
// when a token is still valid, how to refresh it (RFC 6749 §6) and how to log
// in with a password and a TOTP code through the account's HTML forms with
// PKCE (RFC 7636).
//
// It takes an *http.Client, URLs and a clock as parameters and knows nothing
// of stores, flags or terminals.
package auth
