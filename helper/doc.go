// Package helper owns the credential lifecycle: where token sets live (the
// OS keyring, a 0600 file, the environment), the per-profile lock, and the
// operations the protocol commands call: Get, Store, Erase and List.
//
// Its promise is that no refresh token is ever lost or replayed: a refresh
// happens under the profile's lock, after a re-read, and its result is saved
// before the access token is handed out; a failed refresh changes nothing.
package helper
