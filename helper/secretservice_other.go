//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package helper

// defaultKeyringAPI is go-keyring itself where there is no Secret Service
// (Keychain, Credential Manager).
func defaultKeyringAPI() keyringAPI { return goKeyring{} }
