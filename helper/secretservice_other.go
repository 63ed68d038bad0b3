//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd) || gokeyringonly

package helper

// defaultKeyringAPI is go-keyring itself where there is no Secret Service
// (Keychain, Credential Manager), and in a build with the tag gokeyringonly:
// scripts/bench.sh builds one to measure what the short Secret Service
// read saves.
func defaultKeyringAPI() keyringAPI { return goKeyring{} }
