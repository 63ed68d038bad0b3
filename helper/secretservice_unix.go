//go:build ((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd) && !gokeyringonly

package helper

import (
	"errors"
	"os"
	"slices"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"

	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// The Secret Service API (https://specifications.freedesktop.org/secret-service/)
// names go-keyring uses for the items it writes.
const (
	ssName            = "org.freedesktop.secrets"
	ssService         = "/org/freedesktop/secrets"
	ssLoginCollection = "/org/freedesktop/secrets/collection/login"
	// gnome-keyring's collection kept in memory only, which go-keyring
	// never uses.
	ssSessionCollection = "/org/freedesktop/secrets/collection/session"
)

// errUseGoKeyring: the lean read met something only go-keyring's full
// sequence handles (a locked or missing login collection, a locked item).
var errUseGoKeyring = errors.New("secret service: use go-keyring")

// secretService reads go-keyring's items with fewer D-Bus round trips than
// go-keyring, and writes and deletes through go-keyring itself. It stays
// because it earns it: README.md ("Speed") gives what it saves of a whole
// keyring `get`, as scripts/bench.sh measures it.
//
// go-keyring's Get makes seven calls one after another (Collections,
// Unlock, SearchItems, OpenSession, Unlock, GetSecret, Close); on an
// unlocked login collection, which is the everyday case, three of them
// answer nothing new. The short read sends SearchItems, the collection's
// Locked property and OpenSession at once, then GetSecret. On not-found or
// any error it asks go-keyring itself, so that an item go-keyring keeps
// elsewhere or otherwise (a locked collection, another layout) never reads
// as "logged out".
type secretService struct {
	goKeyring
	lean func(service, user string) (string, error) // nil: leanGet
	full func(service, user string) (string, error) // nil: go-keyring's Get
}

func defaultKeyringAPI() keyringAPI { return secretService{} }

func (s secretService) Get(service, user string) (string, error) {
	lean, full := s.lean, s.full
	if lean == nil {
		lean = leanGet
	}
	if full == nil {
		full = keyring.Get
	}
	if v, err := lean(service, user); err == nil {
		return v, nil
	}
	return full(service, user)
}

// leanGet is one item's secret, read the short way, or errUseGoKeyring.
func leanGet(service, user string) (string, error) {
	conn, err := dbus.SessionBus() // the one go-keyring uses too: one connection per process
	if err != nil {
		return "", err
	}
	svc := conn.Object(ssName, ssService)
	login := conn.Object(ssName, ssLoginCollection)
	search := login.Go("org.freedesktop.Secret.Collection.SearchItems", 0, nil,
		map[string]string{"service": service, "username": user})
	locked := login.Go("org.freedesktop.DBus.Properties.Get", 0, nil,
		"org.freedesktop.Secret.Collection", "Locked")
	open := svc.Go("org.freedesktop.Secret.Service.OpenSession", 0, nil, "plain", dbus.MakeVariant(""))
	<-search.Done
	<-locked.Done
	<-open.Done

	var session dbus.ObjectPath
	var ignored dbus.Variant
	if err := open.Store(&ignored, &session); err != nil {
		return "", err
	}
	defer conn.Object(ssName, session).Go("org.freedesktop.Secret.Session.Close", dbus.FlagNoReplyExpected, nil)

	var isLocked dbus.Variant
	if err := locked.Store(&isLocked); err != nil {
		return "", errUseGoKeyring // no login collection: go-keyring uses the default alias
	}
	if b, ok := isLocked.Value().(bool); !ok || b {
		// gnome-keyring still finds locked items (and then refuses their
		// secret), but the specification lets a service leave them out of
		// a search: "not found" must not come from a locked collection.
		return "", errUseGoKeyring
	}
	var items []dbus.ObjectPath
	if err := search.Store(&items); err != nil {
		return "", errUseGoKeyring
	}
	if len(items) == 0 {
		return "", keyring.ErrNotFound
	}
	var secret struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}
	err = conn.Object(ssName, items[0]).Call("org.freedesktop.Secret.Item.GetSecret", 0, session).Store(&secret)
	if err != nil {
		return "", errUseGoKeyring // a locked item
	}
	return string(secret.Value), nil
}

// Probe looks at the session bus after a call failed. missing: there is no
// keyring that could hold an item of go-keyring's, which keeps them in the
// login collection, else in the default one: no program owns the Secret
// Service's name and none can be started for it; or it is a gnome-keyring
// with no keyring at all but its in-memory session collection (started on
// demand where no login keyring was ever made, as on a server reached over
// SSH; gnome-keyring lists every keyring it has, locked or not). Else why,
// if not "", is a clearer reason than the call's: a Secret Service with
// neither a login nor a default collection, such as a keyring program
// whose database is closed, which may hold the profile all the same. What
// it cannot tell is neither. A session bus that cannot be reached is
// neither, with its own reason and hint.
func (secretService) Probe() Probed {
	conn, err := dbus.SessionBus()
	if err != nil {
		return deadBus(err)
	}
	bus := conn.BusObject()
	var owned bool
	if bus.Call("org.freedesktop.DBus.NameHasOwner", 0, ssName).Store(&owned) != nil {
		return Probed{}
	}
	if !owned {
		var names []string
		if bus.Call("org.freedesktop.DBus.ListActivatableNames", 0).Store(&names) == nil && !slices.Contains(names, ssName) {
			return Probed{Missing: true, Why: "no Secret Service (such as gnome-keyring) on the D-Bus session bus"}
		}
	}
	svc := conn.Object(ssName, ssService)
	v, err := svc.GetProperty("org.freedesktop.Secret.Service.Collections")
	if err != nil {
		return Probed{}
	}
	paths, ok := v.Value().([]dbus.ObjectPath)
	if !ok || slices.Contains(paths, ssLoginCollection) {
		return Probed{}
	}
	var alias dbus.ObjectPath
	if svc.Call("org.freedesktop.Secret.Service.ReadAlias", 0, "default").Store(&alias) != nil || alias != "/" {
		return Probed{}
	}
	if slices.Equal(paths, []dbus.ObjectPath{ssSessionCollection}) {
		return Probed{Missing: true, Why: "the gnome-keyring on the D-Bus session bus has no keyring (no login keyring was ever made here)"}
	}
	return Probed{Why: "the Secret Service on the D-Bus session bus has no login keyring open: none was made here, or it is closed", Hint: noCollectionHint}
}

// noCollectionHint is the hint for a Secret Service without the
// collection go-keyring keeps items in.
const noCollectionHint = "open or unlock your keyring; where there is none, a login saves to the file store"

// deadBus is the probe of a session bus that cannot be connected to: most
// often a DBUS_SESSION_BUS_ADDRESS left from an older login (a long-lived
// tmux or screen session), whose bus has gone. The keyring may still hold
// the profile, in the session that has it.
func deadBus(err error) Probed {
	hint := "run this in the session that has the keyring"
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		hint = "DBUS_SESSION_BUS_ADDRESS names a bus that is gone (one left from an older login, as in a long-lived tmux or screen session?): " + hint
	}
	return Probed{Why: "the D-Bus session bus does not answer: " + protocol.Clip(err.Error(), 200), Hint: hint}
}
