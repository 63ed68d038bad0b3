package helper

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/zalando/go-keyring"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// KeyringService is the service name of every keyring item of the helper.
const KeyringService = "prusa-credential-helper"

// MaxKeyringItem is the most bytes one keyring item holds, on every
// platform: Windows refuses more than 2,560 and macOS' security tool about
// 3,000 after base64, so 2,048 leaves room for both.
const MaxKeyringItem = 2048

// keyringCallTimeout bounds every keyring call: a locked or absent Secret
// Service must not hang the helper.
const keyringCallTimeout = 3 * time.Second

// overflowKey marks a main item whose other fields live in part items.
const overflowKey = "_overflow"

// keyringAPI is the part of go-keyring the store uses; tests swap in fakes.
type keyringAPI interface {
	Get(service, user string) (string, error)
	Set(service, user, secret string) error
	Delete(service, user string) error
}

type goKeyring struct{}

func (goKeyring) Get(s, u string) (string, error) { return keyring.Get(s, u) }
func (goKeyring) Set(s, u, p string) error        { return keyring.Set(s, u, p) }
func (goKeyring) Delete(s, u string) error        { return keyring.Delete(s, u) }

// KeyringStore keeps token sets in the OS keyring (Secret Service, Keychain,
// Credential Manager): service "prusa-credential-helper", user = profile.
//
// A token set with real Prusa tokens is larger than one item may be, so the
// main item holds the access token and as many other fields as fit, and the
// rest (the identity token first) goes to part items named
// "<profile>:<slot>:<i>". The main item names the fields it gave away, so
// that get's fast path can tell when the main item alone answers it (see
// Peek). There are two slots, "a" and "b": a Set writes
// its parts to the slot the main item does not point to, then the main item
// (which names the slot, and a hash of the parts to check them by), then
// removes what else is in either slot. So a crash at any point leaves the
// old or the new set whole, and what a crash left behind is overwritten or
// removed by the next Set or erase: items never pile up.
type KeyringStore struct {
	// IndexDir holds the index of profile names kept in the keyring (the
	// keyring cannot list them), with no secrets.
	IndexDir string
	// Absent, when set, says why there is no keyring to try (no session
	// bus): every call fails at once with it, and only the index is read,
	// so that a profile it names is never taken for logged out.
	Absent string
	api    keyringAPI
	limit  int
}

// NewKeyringStore returns a store on the OS keyring.
func NewKeyringStore(indexDir string) *KeyringStore {
	return &KeyringStore{IndexDir: indexDir, api: defaultKeyringAPI(), limit: MaxKeyringItem}
}

// Name is "keyring".
func (s *KeyringStore) Name() string { return "keyring" }

// call runs f with a timeout: the sooner of keyringCallTimeout and ctx's
// deadline. A call that times out is left to finish in the background.
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, keyringCallTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if errors.Is(r.err, keyring.ErrNotFound) {
			return r.v, ErrNotFound
		}
		if r.err != nil {
			return r.v, &UnavailableError{Reason: unavailableReason(r.err)}
		}
		return r.v, nil
	case <-ctx.Done():
		var zero T
		return zero, &UnavailableError{Reason: "keyring did not answer in time; it may be locked", stalled: true}
	}
}

// prober is a keyringAPI that can say more about a failed call
// (secretService.Probe).
type prober interface {
	Probe() Probed
}

// Probed is what a prober found. Missing: there is no keyring to reach at
// all. Else Why, if not "", is a clearer reason than the failed call's,
// and Hint what the user can do about it.
type Probed struct {
	Missing   bool
	Why, Hint string
}

// failed is what a call that failed with err returns. The keyring's
// prober may find that there is no keyring on the session bus at all: the
// error then says so and counts as Absent's (NoBus). Or it may find a
// clearer reason than the call's own, which replaces it.
func (s *KeyringStore) failed(ctx context.Context, err error) error {
	var ue *UnavailableError
	p, ok := s.api.(prober)
	if !ok || !errors.As(err, &ue) || ue.stalled || ue.NoBus {
		return err
	}
	r, _ := call(ctx, func() (Probed, error) { return p.Probe(), nil })
	switch {
	case r.Missing:
		return &UnavailableError{Reason: r.Why, NoBus: true}
	case r.Why != "":
		return &UnavailableError{Reason: r.Why, Hint: r.Hint}
	}
	return err
}

// unavailableReason says why a keyring call failed, for a human: a
// Secret Service that refuses to unlock (go-keyring's "failed to unlock
// correct collection", D-Bus's IsLocked) is named as locked.
func unavailableReason(err error) string {
	msg := protocol.Clip(err.Error(), 200)
	if l := strings.ToLower(msg); strings.Contains(l, "unlock") || strings.Contains(l, "islocked") {
		return "the keyring is locked: " + msg
	}
	return "keyring: " + msg
}

// UnavailableError is a keyring that cannot be reached: it matches both
// ErrStorage and ErrUnavailable, and Reason says why for a human.
type UnavailableError struct {
	Reason  string
	NoBus   bool   // there is no keyring to reach: no session bus, or no Secret Service on it
	Hint    string // what the user can do, when known better than "unlock the keyring"
	stalled bool   // the call did not answer in time
}

func (e *UnavailableError) Error() string {
	return ErrStorage.Error() + ": " + e.Reason
}

func (e *UnavailableError) Is(target error) bool {
	return target == ErrStorage || target == ErrUnavailable
}

// mayHold is an unreachable keyring that may hold the profile, said the way
// a user reads it; did says what was done meanwhile ("" for nothing).
func mayHold(err error, profile, did string) error {
	reason, noBus := err.Error(), false
	var ue *UnavailableError
	if errors.As(err, &ue) {
		reason, noBus = ue.Reason, ue.NoBus
	}
	hint := ""
	if ue != nil {
		hint = ue.Hint
	}
	return &UnavailableError{Reason: fmt.Sprintf("%sthe keyring, which may hold profile %q, cannot be reached (%s)", did, profile, reason), NoBus: noBus, Hint: hint}
}

// noKeyring reports whether err says there is no keyring to reach at all
// (no session bus, or no Secret Service on it).
func noKeyring(err error) bool {
	var ue *UnavailableError
	return errors.As(err, &ue) && ue.NoBus
}

// absent is the error of every call to a keyring that is Absent.
func (s *KeyringStore) absent() error {
	if s.Absent == "" {
		return nil
	}
	return &UnavailableError{Reason: s.Absent, NoBus: true}
}

func (s *KeyringStore) get(ctx context.Context, user string) (string, error) {
	if err := s.absent(); err != nil {
		return "", err
	}
	v, err := call(ctx, func() (string, error) { return s.api.Get(KeyringService, user) })
	return v, s.failed(ctx, err)
}

func (s *KeyringStore) set(ctx context.Context, user, secret string) error {
	if err := s.absent(); err != nil {
		return err
	}
	if len(secret) > s.limit {
		return fmt.Errorf("%w: keyring item of %d bytes", ErrStorage, len(secret)) // never: split keeps items small
	}
	_, err := call(ctx, func() (struct{}, error) { return struct{}{}, s.api.Set(KeyringService, user, secret) })
	return s.failed(ctx, err)
}

func (s *KeyringStore) del(ctx context.Context, user string) error {
	if err := s.absent(); err != nil {
		return err
	}
	_, err := call(ctx, func() (struct{}, error) { return struct{}{}, s.api.Delete(KeyringService, user) })
	return s.failed(ctx, err)
}

type overflow struct {
	Gen  string `json:"gen"`  // hash of the parts' content
	N    int    `json:"n"`    // how many parts
	Slot string `json:"slot"` // "a" or "b"
	// Moved names the fields that are in the parts; nil in main items
	// written before it was recorded.
	Moved []string `json:"moved,omitempty"`
}

// fastFields are what get's fast path reads of a set: the access token, and
// what is judged and printed with it. split moves them last, after the
// access token.
var fastFields = []string{"access_token", "token_type", "clock_offset", "replaced_env_sha256"}

// keepsFast reports whether the main item kept every field of fastFields.
func (ov *overflow) keepsFast() bool {
	return ov.Moved != nil && !slices.ContainsFunc(ov.Moved, func(k string) bool { return slices.Contains(fastFields, k) })
}

// slots are where parts go, in turn.
var slots = [2]string{"a", "b"}

// maxParts bounds the parts of one set.
const maxParts = 64

func partName(profile, slot string, i int) string {
	return profile + ":" + slot + ":" + strconv.Itoa(i)
}

// readMain reads and decodes the main item: its fields, and where its
// overflow parts are.
func (s *KeyringStore) readMain(ctx context.Context, profile string) (map[string]json.RawMessage, *overflow, error) {
	v, err := s.get(ctx, profile)
	if err != nil {
		return nil, nil, err
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(v), &m) != nil || m == nil {
		return nil, nil, fmt.Errorf("%w: keyring item %q is not a token set", ErrStorage, profile)
	}
	var ov *overflow
	if raw, ok := m[overflowKey]; ok {
		ov = new(overflow)
		if json.Unmarshal(raw, ov) != nil || ov.N < 1 || ov.N > maxParts || ov.Gen == "" || !slices.Contains(slots[:], ov.Slot) {
			return nil, nil, fmt.Errorf("%w: keyring item %q has a bad part index", ErrStorage, profile)
		}
		delete(m, overflowKey)
	}
	return m, ov, nil
}

// Get reads the main item and its parts, and checks that the parts are the
// ones it names.
func (s *KeyringStore) Get(ctx context.Context, profile string) (*auth.TokenSet, Result, error) {
	set, err := s.get1(ctx, profile, false)
	if err == nil {
		s.held(profile)
	}
	return set, Result{Store: "keyring"}, err
}

// Peek is Get for get's fast path: where the main item kept the access
// token and the fields read with it (fastFields), it reads that one item
// and not the parts, so the set it returns may lack the fields that went
// to them (the identity token first). Anything that needs the whole set
// (a refresh, a save, list, status) uses Get.
func (s *KeyringStore) Peek(ctx context.Context, profile string) (*auth.TokenSet, Result, error) {
	set, err := s.get1(ctx, profile, true)
	if err == nil {
		s.held(profile)
	}
	return set, Result{Store: "keyring"}, err
}

// held adds a profile just read from the keyring to an index that does not
// name it. The keyring is the login session's, the index one config
// folder's: a profile saved by a run with another folder is named here
// once a run here reads it, so that a keyring that later cannot be reached
// still counts as holding it (MayHold), not as logged out. With no index,
// none is made: MayHold's rule for no index covers the profile already.
// It is best effort: a read stays a read when the index cannot be written.
func (s *KeyringStore) held(profile string) {
	if s.IndexDir == "" {
		return
	}
	if _, err := os.Stat(s.indexFile()); err != nil {
		return
	}
	if names, err := s.Profiles(); err != nil || slices.Contains(names, profile) {
		return
	}
	s.index(profile, true)
}

func (s *KeyringStore) get1(ctx context.Context, profile string, mainOnly bool) (*auth.TokenSet, error) {
	m, ov, err := s.readMain(ctx, profile)
	if err != nil {
		return nil, err
	}
	if ov != nil && !(mainOnly && ov.keepsFast()) {
		var blob strings.Builder
		for i := range ov.N {
			part, err := s.get(ctx, partName(profile, ov.Slot, i))
			if errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("%w: keyring part %d of profile %q is missing", ErrStorage, i, profile)
			}
			if err != nil {
				return nil, err
			}
			blob.WriteString(part)
		}
		if genOf([]byte(blob.String())) != ov.Gen {
			return nil, fmt.Errorf("%w: keyring parts of profile %q do not match their index", ErrStorage, profile)
		}
		var rest map[string]json.RawMessage
		if json.Unmarshal([]byte(blob.String()), &rest) != nil {
			return nil, fmt.Errorf("%w: keyring parts of profile %q are not JSON", ErrStorage, profile)
		}
		for k, v := range rest {
			m[k] = v
		}
	}
	set, err := auth.ParseTokenSet(encode(m))
	if err != nil {
		return nil, fmt.Errorf("%w: keyring item of profile %q: %s", ErrStorage, profile, reason(err))
	}
	return set, nil
}

func genOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// moveOrder is the order in which fields leave the main item when it is too
// large: an unknown field that has the index's name first (the index takes
// its place), the identity token, then other unknown fields, the refresh
// token and the rest, and fastFields last, so that a main item that kept
// the access token kept all of them.
func moveOrder(m map[string]json.RawMessage) []string {
	order := []string{overflowKey, "id_token"}
	last := []string{"refresh_token", "scope", "shared_session_key", "expires_in"}
	last = append(last, fastFields...)
	var extra []string
	for k := range m {
		if !slices.Contains(order, k) && !slices.Contains(last, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	return append(append(order, extra...), last...)
}

// split lays a token set out as a main item and part items in slot, each
// at most limit bytes. A set that needs more than maxParts parts is an
// error: Get would refuse its index.
func split(set *auth.TokenSet, limit int, slot string) (main string, parts []string, _ error) {
	full, err := set.MarshalJSON()
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if _, clash := set.Extra[overflowKey]; len(full) <= limit && !clash {
		return string(full), nil, nil
	}
	var m map[string]json.RawMessage
	json.Unmarshal(full, &m)
	// fits reports whether what is left of m fits one item with the
	// reference it gains, at its widest N.
	fits := func(names []string) bool {
		ref, _ := json.Marshal(overflow{Gen: strings.Repeat("0", 12), N: maxParts, Slot: slot, Moved: names})
		return len(encode(m))+len(`,"`+overflowKey+`":`)+len(ref) <= limit
	}
	moved := map[string]json.RawMessage{}
	var names []string
	for _, k := range moveOrder(m) {
		v, ok := m[k]
		if !ok {
			continue
		}
		moved[k] = v
		names = append(names, k)
		delete(m, k)
		if fits(names) {
			break
		}
	}
	if !fits(names) {
		// Too many fields to name (hundreds of unknown ones): every one
		// went, and the main item names none, so every read takes the
		// parts too.
		names = nil
	}
	blob := encode(moved)
	if len(blob) > maxParts*limit {
		return "", nil, fmt.Errorf("%w: the token set is %d bytes, more than %d keyring items of %d bytes hold", ErrStorage, len(full), maxParts, limit)
	}
	gen := genOf(blob)
	for len(blob) > 0 {
		n := min(limit, len(blob))
		parts = append(parts, string(blob[:n]))
		blob = blob[n:]
	}
	m[overflowKey], _ = json.Marshal(overflow{Gen: gen, N: len(parts), Slot: slot, Moved: names})
	return string(encode(m)), parts, nil // within limit: fits said so
}

// encode is json.Marshal of a set's fields without its HTML escapes: the
// items hold them as MarshalJSON wrote them, and as TooLarge measured them,
// not with each "<" of an unknown field six bytes long.
func encode(v map[string]json.RawMessage) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // raw values from MarshalJSON: valid
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Set writes the parts to the slot the current main item does not use,
// then the main item, then removes every other part of the profile.
func (s *KeyringStore) Set(ctx context.Context, profile string, set *auth.TokenSet) (Result, error) {
	return Result{Store: "keyring"}, s.set1(ctx, profile, set)
}

func (s *KeyringStore) set1(ctx context.Context, profile string, set *auth.TokenSet) error {
	_, old, err := s.readMain(ctx, profile) // a corrupt main item is overwritten
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	existed := !errors.Is(err, ErrNotFound)
	slot := slots[0]
	if old != nil && old.Slot == slots[0] {
		slot = slots[1]
	}
	main, parts, err := split(set, s.limit, slot)
	if err != nil {
		return err
	}
	// The index first: one that names a profile the keyring lacks costs a
	// storage error while the keyring is away; a profile in the keyring
	// the index lacks would read as logged out then.
	added, err := s.index(profile, true)
	if err != nil {
		return err
	}
	// A new profile whose main item surely was not written leaves the
	// index as it was: else, with the keyring away, every later command
	// would take it for one the keyring may hold. A call that did not
	// answer in time may yet have written it.
	unindex := func(err error) error {
		var ue *UnavailableError
		if added && !existed && !(errors.As(err, &ue) && ue.stalled) {
			s.index(profile, false)
		}
		return err
	}
	for i, p := range parts {
		if err := s.set(ctx, partName(profile, slot, i), p); err != nil {
			return unindex(err)
		}
	}
	if err := s.set(ctx, profile, main); err != nil {
		return unindex(err)
	}
	s.sweep(ctx, profile, slot, len(parts))
	s.sweep(ctx, profile, otherSlot(slot), 0)
	return nil
}

func otherSlot(slot string) string {
	if slot == slots[0] {
		return slots[1]
	}
	return slots[0]
}

// sweep removes the parts of the profile in slot from the from-th on.
// Parts are written from 0 up, so they end at the first one missing.
func (s *KeyringStore) sweep(ctx context.Context, profile, slot string, from int) {
	for i := from; i < maxParts; i++ {
		if s.del(ctx, partName(profile, slot, i)) != nil {
			return
		}
	}
}

// Delete removes the main item and its parts.
func (s *KeyringStore) Delete(ctx context.Context, profile string) error {
	_, _, err := s.readMain(ctx, profile) // a corrupt main item is deleted
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	found := !errors.Is(err, ErrNotFound)
	if found {
		if err := s.del(ctx, profile); err != nil {
			return err
		}
	}
	// Parts too, including any a crashed Set left with no main item.
	for _, slot := range slots {
		s.sweep(ctx, profile, slot, 0)
	}
	if _, err := s.index(profile, false); err != nil || !found { // a stale index entry goes too
		return cmp.Or(err, ErrNotFound)
	}
	return nil
}

// CheckWritable writes and removes a small item named after the profile:
// login calls it before it asks for anything, so that a keyring that will
// not take a set fails before a session is made that would be lost.
func (s *KeyringStore) CheckWritable(ctx context.Context, profile string) error {
	name := profile + ":check"
	if err := s.set(ctx, name, "{}"); err != nil {
		return err
	}
	if err := s.del(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// Reachable reports, as an error, whether the keyring answers at all.
func (s *KeyringStore) Reachable(ctx context.Context) error {
	_, err := s.get(ctx, ":reachable")
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// MayHold reports whether a keyring whose call failed with err may hold
// the profile. Every Set adds its profile to the index and every Delete
// removes it, so an index that exists and does not name the profile says
// the keyring does not hold it; an index that cannot be read may name it.
// With no index, the keyring may hold the profile when nothing else does
// (elsewhere false), unless there is none to reach (Absent, or err says
// so): then it has never held anything here.
func (s *KeyringStore) MayHold(profile string, elsewhere bool, err error) bool {
	names, ierr := s.Profiles()
	if ierr != nil {
		return true
	}
	if _, serr := os.Stat(s.indexFile()); errors.Is(serr, os.ErrNotExist) {
		return !elsewhere && s.Absent == "" && !noKeyring(err)
	} else if serr != nil {
		return true
	}
	return slices.Contains(names, profile)
}

// indexFile lists the profiles kept in the keyring, one name a line.
func (s *KeyringStore) indexFile() string { return filepath.Join(s.IndexDir, ".keyring-profiles") }

// Profiles lists the profiles the index says are in the keyring.
func (s *KeyringStore) Profiles() ([]string, error) {
	b, err := readFile(s.indexFile()) // never a FIFO's wait
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, unwrapPath(err))
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if CheckProfile(l) == nil {
			out = append(out, l)
		}
	}
	return out, nil
}

// index adds or removes a profile in the index, under the index's lock,
// and reports whether that changed it.
func (s *KeyringStore) index(profile string, add bool) (bool, error) {
	if s.IndexDir == "" {
		return false, nil
	}
	if err := os.MkdirAll(s.IndexDir, 0o700); err != nil {
		return false, fmt.Errorf("%w: %w", ErrStorage, unwrapPath(err))
	}
	l := flock.New(s.indexFile()+".lock", flock.SetPermissions(0o600))
	if err := l.Lock(); err != nil {
		return false, fmt.Errorf("%w: lock keyring index: %w", ErrStorage, unwrapPath(err))
	}
	defer l.Unlock()
	names, err := s.Profiles()
	if err != nil {
		return false, err
	}
	if slices.Contains(names, profile) == add {
		return false, nil
	}
	if add {
		names = append(names, profile)
		slices.Sort(names)
	} else {
		names = slices.DeleteFunc(names, func(n string) bool { return n == profile })
	}
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString(n + "\n")
	}
	return true, writeAtomic(s.indexFile(), b.Bytes())
}

// SessionBusAbsent reports whether, on Linux and the BSDs, there is no
// D-Bus session bus to reach a Secret Service through: then the keyring is
// not even tried (go-keyring would fail trying to autolaunch one).
func SessionBusAbsent(getenv func(string) string) bool {
	switch runtime.GOOS {
	case "darwin", "windows", "ios", "android", "plan9", "js", "wasip1":
		return false
	}
	if getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return false
	}
	_, err := os.Stat("/run/user/" + strconv.Itoa(os.Getuid()) + "/bus")
	return err != nil
}
