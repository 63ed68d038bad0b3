// Command prusa-credential-helper-etcd is the etcd store of
// prusa-credential-helper, in a program of its own so that the helper,
// which serves file and keyring gets, does not link the etcd client (gRPC
// alone makes a Go program start several times slower). The helper starts
// it only for an etcd:// store, keeps it for one command, and speaks to it
// over its standard input and output; people do not run it.
//
// Usage:
//
//	prusa-credential-helper-etcd --endpoints HOST:PORT[,HOST:PORT...] --prefix PREFIX [--lease-ttl 5s]
//
// TLS and etcd authentication come from the environment, never from the
// command line (where other users could read a password):
//
//	PRUSA_ETCD_CACERT  CA certificate file that signs the etcd servers' certificates
//	PRUSA_ETCD_CERT    client certificate file
//	PRUSA_ETCD_KEY     client key file
//	PRUSA_ETCD_USER    user:password for etcd authentication
//
// Any of the first three turns TLS on.
//
// # Keys
//
// A profile's token set is the key PREFIX/<profile>, holding the JSON of
// the helper's file store. Its lock is a
// go.etcd.io/etcd/client/v3/concurrency Mutex on PREFIX/<profile>.lock (so
// its keys are PREFIX/<profile>.lock/<lease id>), on a session lease of
// --lease-ttl (whole seconds, at least 2): a holder that dies without
// unlocking frees the lock when its lease expires. A companion that sees
// its input end (the helper exited) revokes its lease at once when it holds
// no lock; a lock still held means the helper died in the middle of a
// refresh, whose request may yet reach the account server, so the lock
// stays until the lease expires. A write (put, delete, moveaside) whose
// line arrived before the input ended is carried out all the same: a put
// holds a refreshed set whose old refresh token the server has spent.
//
// With etcd authentication on, the user needs a role with readwrite
// permission on the prefix range PREFIX/ (etcdctl role grant-permission
// ROLE readwrite --prefix=true PREFIX/); leases need no permission.
//
// # Protocol
//
// One JSON object per line each way: a request on standard input, then its
// answer on standard output, in order. Requests:
//
//	{"op":"get","profile":"default"}
//	{"op":"lock","profile":"default"}
//	{"op":"put","profile":"default","set":"{\"access_token\":...}","revision":41}
//	{"op":"delete","profile":"default"}
//	{"op":"moveaside","profile":"default","revision":41}
//	{"op":"list"}
//	{"op":"unlock","profile":"default"}
//
// Each may carry "timeout_ms", the time left to the caller: the companion
// answers within it. Without it, a lock waits at most 20 s. A single etcd
// call waits at most 5 s either way, so a cluster that does not answer is
// reported as unreachable rather than waited for.
//
// Answers:
//
//	{"ok":true,"set":"{...}","revision":41}   get: the set's JSON and the key's ModRevision
//	{"ok":true,"revision":57}                 put: the key's new ModRevision
//	{"ok":true,"key":"farm/default:corrupt-…"} moveaside: where the value went
//	{"ok":true,"profiles":["a","b"]}          list: the profiles under PREFIX/, without lock keys
//	{"ok":true}                               lock, unlock, delete
//	{"ok":false,"kind":"KIND","error":"one line, lower case"}
//
// put writes only if the key's ModRevision is still "revision" (0: the key
// must be absent), and, while this companion holds the profile's lock, only
// if the lock is still its own: a holder whose lease expired does not
// write. moveaside moves the key's value, if its ModRevision is still
// "revision", to PREFIX/<profile>:corrupt-<UTC time>, for a value that is
// not a token set. get, put and delete take the key as it is when they run; lock
// waits for the profile's lock, unlock releases it.
//
// Kinds: not_found (no such key), unavailable (etcd cannot be reached or
// has no leader), timeout (the caller's time ran out before etcd
// answered), locked (the caller's time ran out while another process held
// the lock), conflict (the key changed since it was
// read, or the lock was lost), auth (etcd refused the credentials or the
// permission), other (anything else, such as an unreadable certificate or
// a bad request).
//
// Messages, on standard error and in answers, never carry a token set or a
// password; standard error stays empty unless the program itself fails.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/grpclog"
)

func main() {
	// gRPC logs connection errors on stderr by default: the answers say
	// what went wrong, and stderr stays the helper's.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
	// The helper's end of the pipes decides when to stop: a Ctrl-C reaches
	// the whole process group, and so does a SIGTERM from systemd,
	// timeout(1) or a CI runner (the helper finishes a refresh whose
	// request is out, under the lock this program holds); the answer to a
	// helper that is gone hits a closed pipe. Any of these would kill this
	// program before it revokes its lease: the lock would go while the
	// helper still counts on it, or stay held until the lease expires. A
	// Ctrl-Z would stop it, and its lease with it: the lock would go to
	// another host, which would send the refresh token this one's helper
	// has spent. (The helper starts it in a group of its own too.)
	signal.Ignore(append([]os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE}, jobControl...)...)
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("prusa-credential-helper-etcd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	endpoints := fs.String("endpoints", "", "")
	prefix := fs.String("prefix", "", "")
	ttl := fs.Duration("lease-ttl", defaultLeaseTTL, "")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "prusa-credential-helper-etcd: %v\n%s", err, usage)
		return 2
	}
	cfg, err := parseConfig(*endpoints, *prefix, *ttl, fs.Args(), getenv)
	if err != nil {
		fmt.Fprintf(stderr, "prusa-credential-helper-etcd: %v\n%s", err, usage)
		return 2
	}
	srv := newServer(cfg)
	defer srv.close()
	srv.serve(stdin, stdout)
	return 0
}

const usage = `usage: prusa-credential-helper-etcd --endpoints HOST:PORT[,HOST:PORT...] --prefix PREFIX [--lease-ttl 5s]
The etcd store of prusa-credential-helper, which starts it and speaks to it on
stdin and stdout; TLS and auth come from PRUSA_ETCD_CACERT, PRUSA_ETCD_CERT,
PRUSA_ETCD_KEY and PRUSA_ETCD_USER (user:password).
`

const defaultLeaseTTL = 5 * time.Second

// config is what the companion is started with.
type config struct {
	endpoints         []string
	prefix            string
	leaseTTL          int // seconds
	caCert, cert, key string
	user, password    string // empty without PRUSA_ETCD_USER
}

// tls reports whether the companion talks TLS to etcd: with a CA or a
// client certificate.
func (c *config) tls() bool { return c.caCert != "" || c.cert != "" }

func parseConfig(endpoints, prefix string, ttl time.Duration, rest []string, getenv func(string) string) (*config, error) {
	if len(rest) > 0 {
		return nil, fmt.Errorf("unexpected argument %q", rest[0])
	}
	c := &config{prefix: strings.TrimSuffix(prefix, "/")}
	if endpoints == "" {
		return nil, fmt.Errorf("--endpoints is required")
	}
	for _, ep := range strings.Split(endpoints, ",") {
		if ep == "" {
			return nil, fmt.Errorf("--endpoints has an empty entry")
		}
		c.endpoints = append(c.endpoints, ep)
	}
	if c.prefix == "" {
		return nil, fmt.Errorf("--prefix is required")
	}
	if ttl < 2*time.Second || ttl%time.Second != 0 {
		return nil, fmt.Errorf("--lease-ttl must be whole seconds, at least 2s")
	}
	c.leaseTTL = int(ttl / time.Second)
	c.caCert, c.cert, c.key = getenv("PRUSA_ETCD_CACERT"), getenv("PRUSA_ETCD_CERT"), getenv("PRUSA_ETCD_KEY")
	for name, v := range map[string]string{"PRUSA_ETCD_CACERT": c.caCert, "PRUSA_ETCD_CERT": c.cert, "PRUSA_ETCD_KEY": c.key} {
		if strings.ContainsAny(v, "\r\n") || strings.Contains(v, "-----BEGIN") {
			return nil, fmt.Errorf("%s must be a file's path, not the PEM text itself", name) // never the value: it may be a private key
		}
	}
	if (c.cert == "") != (c.key == "") {
		return nil, fmt.Errorf("PRUSA_ETCD_CERT and PRUSA_ETCD_KEY go together: set both or neither")
	}
	if u := getenv("PRUSA_ETCD_USER"); u != "" {
		name, pass, ok := strings.Cut(u, ":")
		if !ok || name == "" || pass == "" {
			return nil, fmt.Errorf("PRUSA_ETCD_USER must be user:password")
		}
		c.user, c.password = name, pass
	}
	return c, nil
}
