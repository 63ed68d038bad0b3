package auth

import (
	"context"
	"fmt"
	"net/url"
)

// Refreshable says, without a request, why set cannot be refreshed: an
// *OtherServerError for a set that another account server issued (a
// refresh token goes back to the server that issued it, and to no other;
// an auto-login does not replace the set elsewhere either),
// ErrNoRefreshToken, ErrRefreshTokenExpired (by the server's clock, see
// TokenSet.ServerNow) or a malformed refresh token. It returns nil when a
// refresh request can be tried.
func (c *Client) Refreshable(set TokenSet) error {
	// The server first: a set of another server is that server's to renew,
	// by a refresh or a login there, whatever state its tokens are in.
	if set.AccountURL != "" && !SameServer(set.AccountURL, c.AccountURL) {
		return &OtherServerError{Issuer: set.AccountURL, Here: c.issuer()}
	}
	if set.RefreshToken == "" {
		return ErrNoRefreshToken
	}
	refresh, err := set.RefreshClaims()
	if err != nil {
		return fmt.Errorf("refresh token: %w", err)
	}
	if !ValidFor(refresh.Expiry.Time, set.ServerNow(c.now()), 0) {
		return ErrRefreshTokenExpired
	}
	return nil
}

// Refresh exchanges the set's refresh token for a new token set (RFC 6749
// §6) and returns it merged into set: a refresh or id token that the answer
// lacks is kept, and ClockOffset is the one estimated from the answer.
// Refresh tokens rotate on every use, so the caller must save the result
// before using it.
//
// An expired or missing refresh token fails here without a request
// (ErrRefreshTokenExpired, ErrNoRefreshToken). The errors of the request are
// ErrInvalidGrant, ErrServer (5xx, 429, a redirect, an unusable answer, an
// answer for another user), ErrNetwork, context.DeadlineExceeded, or another
// *RetrieveError.
func (c *Client) Refresh(ctx context.Context, set TokenSet) (TokenSet, error) {
	if err := c.Refreshable(set); err != nil {
		return TokenSet{}, err
	}
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {c.ClientID},
		"refresh_token": {set.RefreshToken},
	}
	answer, err := c.postToken(ctx, form)
	if err != nil {
		return TokenSet{}, fmt.Errorf("refresh: %w", err)
	}
	stored, err := set.Access()
	if err != nil {
		stored, err = set.RefreshClaims() // Refreshable parsed it; Validate gives both one sub
	}
	if got, _ := answer.set.Access(); err != nil || got.Subject != stored.Subject { // the answer is validated
		return TokenSet{}, fmt.Errorf("refresh: %w: the answer's access token is for another user than the stored one", ErrServer)
	}
	out := set.Merge(*answer.set)
	out.AccountURL = c.issuer()
	if answer.dated {
		out.ClockOffset = answer.offset
	}
	return c.fit(out), nil
}
