package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

const (
	// callTimeout bounds one etcd call: etcd answers in milliseconds, and
	// a new leader is elected in about a second, so a cluster silent for
	// this long is unreachable.
	callTimeout = 5 * time.Second
	// lockTimeout bounds a lock wait when the caller gives no time.
	lockTimeout = 20 * time.Second
	// maxLine bounds a request line; a token set is about 5 KB.
	maxLine = 1 << 20
)

// request and answer are the lines of the protocol, as the helper speaks it.
type (
	request = helper.EtcdRequest
	answer  = helper.EtcdAnswer
)

// Error kinds.
const (
	kindNotFound    = helper.EtcdNotFound
	kindUnavailable = helper.EtcdUnavailable
	kindTimeout     = helper.EtcdTimeout
	kindLocked      = helper.EtcdLocked
	kindConflict    = helper.EtcdConflict
	kindAuth        = helper.EtcdAuth
	kindOther       = helper.EtcdOther
)

// failure is an error answer.
type failure struct{ kind, msg string }

func (f *failure) Error() string { return f.msg }

func fail(kind, format string, args ...any) *failure {
	return &failure{kind, fmt.Sprintf(format, args...)}
}

// server answers requests for one cluster and prefix.
type server struct {
	cfg *config

	tls         *tls.Config   // nil without TLS
	clientReady chan struct{} // closed once cli or cliErr is set
	cli         *clientv3.Client
	cliErr      error

	// base ends when the input does: a read or a lock wait in progress is
	// abandoned, and a write is finished (see do).
	base       context.Context
	cancelBase context.CancelFunc

	session *concurrency.Session
	locks   map[string]*concurrency.Mutex // held, by profile
}

func newServer(cfg *config) *server {
	s := &server{cfg: cfg, clientReady: make(chan struct{}), locks: map[string]*concurrency.Mutex{}}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	if cfg.tls() {
		info := transport.TLSInfo{TrustedCAFile: cfg.caCert, CertFile: cfg.cert, KeyFile: cfg.key}
		tc, err := info.ClientConfig()
		if err != nil {
			s.cliErr = fail(kindOther, "etcd tls settings: %s", oneLine(err))
			close(s.clientReady)
			return s
		}
		s.tls = tc
	}
	// The client is made while the first request is on its way. With
	// authentication it fetches a token, which may wait for the network.
	go func() {
		s.cli, s.cliErr = newClient(cfg, s.tls)
		close(s.clientReady)
	}()
	return s
}

func newClient(cfg *config, tc *tls.Config) (*clientv3.Client, error) {
	c := clientv3.Config{
		Endpoints:   cfg.endpoints,
		DialTimeout: callTimeout,
		Logger:      zap.NewNop(),
		TLS:         tc,
	}
	c.Username, c.Password = cfg.user, cfg.password // none: no authentication
	cli, err := clientv3.New(c)
	if err != nil {
		return nil, err
	}
	return cli, nil
}

// client waits for the etcd client, while ctx allows.
func (s *server) client(ctx context.Context) (*clientv3.Client, error) {
	select {
	case <-s.clientReady: // ready first: a ctx that ended meanwhile loses no answer
		return s.cli, s.cliErr
	default:
	}
	select {
	case <-s.clientReady:
		return s.cli, s.cliErr
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// serve answers each line of in on out, until in ends.
func (s *server) serve(in io.Reader, out io.Writer) {
	lines := make(chan []byte)
	go func() {
		defer close(lines)
		defer s.cancelBase()
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), maxLine)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	w := bufio.NewWriter(out)
	for line := range lines {
		a := s.handle(line)
		b, _ := json.Marshal(a)
		w.Write(b)
		w.WriteByte('\n')
		if w.Flush() != nil {
			return
		}
	}
}

func (s *server) handle(line []byte) *answer {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return &answer{Kind: kindOther, Error: "request is not a json object"}
	}
	start := time.Now()
	a, err := s.do(&req)
	if err != nil {
		var f *failure
		if !errors.As(err, &f) {
			f = s.classify(err)
			// The time that ran out was this program's bound on one etcd
			// call, not the caller's: etcd is unreachable.
			if f.kind == kindTimeout && (req.TimeoutMS <= 0 || time.Since(start) < time.Duration(req.TimeoutMS)*time.Millisecond) {
				f = fail(kindUnavailable, "cannot reach etcd at %s: no answer within %s", strings.Join(s.cfg.endpoints, ","), callTimeout)
			}
			if f.kind == kindTimeout || f.kind == kindUnavailable {
				if why := s.diagnose(); why != "" {
					f.msg += " (" + why + ")"
				}
			}
		}
		return &answer{Kind: f.kind, Error: f.msg}
	}
	a.OK = true
	return a
}

func (s *server) do(req *request) (*answer, error) {
	switch req.Op {
	case "get", "put", "delete", "moveaside", "list", "lock", "unlock":
	default:
		return nil, fail(kindOther, "unknown op")
	}
	if req.Op != "list" && !validProfile(req.Profile) {
		return nil, fail(kindOther, "%s: not a valid profile name", req.Op)
	}
	wait := lockTimeout
	if req.TimeoutMS > 0 {
		wait = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	if req.Op != "lock" {
		wait = min(wait, callTimeout)
	}
	// A write the helper sent is carried out even if the helper is gone
	// meanwhile (SIGKILLed, say): a put holds a refreshed set whose old
	// refresh token the account server has spent, and would be lost.
	base := s.base
	switch req.Op {
	case "put", "delete", "moveaside":
		base = context.WithoutCancel(base)
	}
	ctx, cancel := context.WithTimeout(base, wait)
	defer cancel()
	ctx, stop := s.untilAllRefuse(ctx)
	defer stop()
	a, err := s.op(ctx, req)
	if err != nil && errors.Is(context.Cause(ctx), errAllRefuse) {
		return nil, fail(kindUnavailable, "cannot reach etcd at %s: %v (%s)", strings.Join(s.cfg.endpoints, ","), errAllRefuse, s.diagnose())
	}
	return a, err
}

// op runs one request with ctx.
func (s *server) op(ctx context.Context, req *request) (*answer, error) {
	cli, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	switch req.Op {
	case "get":
		return s.get(ctx, cli, req.Profile)
	case "put":
		return s.put(ctx, cli, req)
	case "delete":
		return s.delete(ctx, cli, req.Profile)
	case "moveaside":
		return s.moveAside(ctx, cli, req)
	case "list":
		return s.list(ctx, cli)
	case "lock":
		return s.lock(ctx, cli, req.Profile)
	case "unlock":
		return s.unlock(ctx, req.Profile)
	}
	return nil, fail(kindOther, "unknown op")
}

func (s *server) key(profile string) string     { return s.cfg.prefix + "/" + profile }
func (s *server) lockKey(profile string) string { return s.cfg.prefix + "/" + profile + ".lock" }

func (s *server) get(ctx context.Context, cli *clientv3.Client, profile string) (*answer, error) {
	resp, err := cli.Get(ctx, s.key(profile))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, fail(kindNotFound, "%s: no such key", s.key(profile))
	}
	kv := resp.Kvs[0]
	return &answer{Set: string(kv.Value), Revision: kv.ModRevision}, nil
}

// put writes the set if the key is still at the revision read (0: absent)
// and, while this companion holds the profile's lock, the lock is still
// its own.
func (s *server) put(ctx context.Context, cli *clientv3.Client, req *request) (*answer, error) {
	if req.Revision == nil || *req.Revision < 0 {
		return nil, fail(kindOther, "put: revision is required")
	}
	if req.Set == "" || !json.Valid([]byte(req.Set)) {
		return nil, fail(kindOther, "put: set is not json")
	}
	key := s.key(req.Profile)
	var cmps []clientv3.Cmp
	if *req.Revision == 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
	} else {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", *req.Revision))
	}
	m, err := s.heldLock(req.Profile)
	if err != nil {
		return nil, err
	}
	if m != nil {
		cmps = append(cmps, m.IsOwner())
	}
	txn := cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, req.Set))
	if m != nil {
		txn = txn.Else(clientv3.OpGet(m.Key(), clientv3.WithKeysOnly()))
	}
	resp, err := txn.Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		if m != nil && len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			return nil, s.lost(req.Profile, "not written")
		}
		return nil, fail(kindConflict, "%s changed since it was read; not written", key)
	}
	return &answer{Revision: resp.Header.Revision}, nil
}

// lost forgets a lock whose key is gone (its lease expired or was revoked)
// and the session it was on.
func (s *server) lost(profile, what string) *failure {
	clear(s.locks) // every lock was on the lease that is gone
	if s.session != nil {
		s.session.Orphan()
		s.session = nil
	}
	return fail(kindConflict, "lost the lock %s: its lease expired; %s", s.lockKey(profile), what)
}

// heldLock returns the profile's lock if this companion holds it, or a
// conflict if it held it and lost it with its lease.
func (s *server) heldLock(profile string) (*concurrency.Mutex, error) {
	m := s.locks[profile]
	if m == nil {
		return nil, nil
	}
	select {
	case <-s.session.Done():
		return nil, s.lost(profile, "not written")
	default:
	}
	return m, nil
}

func (s *server) delete(ctx context.Context, cli *clientv3.Client, profile string) (*answer, error) {
	key := s.key(profile)
	m, err := s.heldLock(profile)
	if err != nil {
		return nil, err
	}
	var resp *clientv3.DeleteResponse
	if m == nil {
		resp, err = cli.Delete(ctx, key)
	} else {
		var tr *clientv3.TxnResponse
		tr, err = cli.Txn(ctx).If(m.IsOwner()).Then(clientv3.OpDelete(key)).Commit()
		if err == nil && !tr.Succeeded {
			return nil, s.lost(profile, "not deleted")
		}
		if err == nil {
			resp = (*clientv3.DeleteResponse)(tr.Responses[0].GetResponseDeleteRange())
		}
	}
	if err != nil {
		return nil, err
	}
	if resp.Deleted == 0 {
		return nil, fail(kindNotFound, "%s: no such key", key)
	}
	return &answer{}, nil
}

// moveAside moves the profile's value, which the helper read at the
// revision given and found not to be a token set, to
// PREFIX/<profile>:corrupt-<UTC time>, if it is still at that revision:
// kept, as the file store keeps a corrupt file, and out of list (no
// profile name holds a colon). The answer's Key names the copy.
func (s *server) moveAside(ctx context.Context, cli *clientv3.Client, req *request) (*answer, error) {
	if req.Revision == nil || *req.Revision <= 0 {
		return nil, fail(kindOther, "moveaside: revision is required")
	}
	key := s.key(req.Profile)
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].ModRevision != *req.Revision {
		return nil, fail(kindConflict, "%s changed since it was read; not moved", key)
	}
	aside := key + ":corrupt-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", *req.Revision)).
		Then(clientv3.OpPut(aside, string(resp.Kvs[0].Value)), clientv3.OpDelete(key)).Commit()
	if err != nil {
		return nil, err
	}
	if !txn.Succeeded {
		return nil, fail(kindConflict, "%s changed since it was read; not moved", key)
	}
	return &answer{Key: aside}, nil
}

// list gives the profiles under the prefix. Lock keys hold a slash after
// the profile's name (PREFIX/<profile>.lock/<lease>), and profile names
// hold none, so they are left out.
func (s *server) list(ctx context.Context, cli *clientv3.Client) (*answer, error) {
	pfx := s.cfg.prefix + "/"
	resp, err := cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), pfx)
		if validProfile(name) {
			out = append(out, name)
		}
	}
	return &answer{Profiles: out}, nil
}

// lock waits for the profile's lock, on this companion's session lease
// (made, or made again after it expired, here).
func (s *server) lock(ctx context.Context, cli *clientv3.Client, profile string) (*answer, error) {
	if m, _ := s.heldLock(profile); m != nil { // a lost one is forgotten
		// Held, as far as the session knows: make sure the key is still there.
		resp, err := cli.Get(ctx, m.Key(), clientv3.WithKeysOnly())
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) != 0 {
			return nil, fail(kindOther, "lock: %s is already held here", s.lockKey(profile))
		}
		s.lost(profile, "")
	}
	if err := s.ensureSession(ctx, cli); err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(s.session, s.lockKey(profile))
	// First a try, bounded as any one etcd call, so that an etcd that does
	// not answer is told apart from a lock that another process holds.
	tctx, cancel := context.WithTimeout(ctx, callTimeout)
	err := m.TryLock(tctx)
	cancel()
	if err == nil {
		s.locks[profile] = m
		return &answer{}, nil
	}
	if leaseGone(err) {
		return nil, s.lostWaiting(profile)
	}
	if !errors.Is(err, concurrency.ErrLocked) {
		return nil, err
	}
	if err := m.Lock(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fail(kindLocked, "waiting for the lock %s, held by another process", s.lockKey(profile))
		}
		if leaseGone(err) {
			return nil, s.lostWaiting(profile)
		}
		return nil, err
	}
	s.locks[profile] = m
	return &answer{}, nil
}

// leaseGone reports whether err says that the session's lease is gone: the
// mutex found its key deleted, or etcd refused a key on the lease.
func leaseGone(err error) bool {
	return errors.Is(err, concurrency.ErrSessionExpired) || errors.Is(err, rpctypes.ErrLeaseNotFound)
}

// lostWaiting is a lock that lost its lease before it was taken: the
// keep-alives did not reach etcd for longer than the TTL, so etcd is (or
// was) out of reach, and a retry, on a new lease, may well succeed.
func (s *server) lostWaiting(profile string) *failure {
	s.lost(profile, "")
	return fail(kindUnavailable, "lost the lease while waiting for the lock %s: etcd did not hear from this host in time", s.lockKey(profile))
}

func (s *server) ensureSession(ctx context.Context, cli *clientv3.Client) error {
	if s.session != nil {
		select {
		case <-s.session.Done():
			s.session = nil
		default:
			return nil
		}
	}
	// The lease is granted under the request's time; the session (its
	// keep-alive) lives as long as the program, not the request.
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	lease, err := cli.Grant(ctx, int64(s.cfg.leaseTTL))
	if err != nil {
		return err
	}
	sess, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(s.cfg.leaseTTL))
	if err != nil {
		return err
	}
	s.session = sess
	return nil
}

func (s *server) unlock(ctx context.Context, profile string) (*answer, error) {
	m := s.locks[profile]
	if m == nil {
		return &answer{}, nil
	}
	delete(s.locks, profile)
	if err := m.Unlock(ctx); err != nil {
		return nil, err
	}
	return &answer{}, nil
}

// close ends the session and closes the client. With no lock held it
// revokes the session's lease at once. A lock still held means the helper
// went away in the middle of a refresh (killed, say) without unlocking:
// its request may still reach the account server, so the lock stays until
// the lease expires (its TTL, a few seconds, once the keep-alives stop)
// and only then may another host refresh.
func (s *server) close() {
	s.cancelBase()
	select {
	case <-s.clientReady:
	case <-time.After(time.Second):
		return
	}
	if s.cli == nil {
		return
	}
	if s.session != nil {
		s.session.Orphan()
		if len(s.locks) == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.cli.Revoke(ctx, s.session.Lease())
			cancel()
		}
	}
	s.cli.Close()
}

// classify turns an etcd error into an answer's kind and message.
func (s *server) classify(err error) *failure {
	where := strings.Join(s.cfg.endpoints, ",")
	switch {
	case errors.Is(err, context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded,
		errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost):
		return fail(kindTimeout, "no answer from etcd at %s in time", where)
	case errors.Is(err, context.Canceled):
		return fail(kindOther, "cancelled")
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrPermissionDenied),
		errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrUserEmpty),
		errors.Is(err, rpctypes.ErrAuthNotEnabled), errors.Is(err, rpctypes.ErrAuthOldRevision),
		status.Code(err) == codes.Unauthenticated, status.Code(err) == codes.PermissionDenied:
		return fail(kindAuth, "etcd at %s refused: %s", where, oneLine(err))
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrNotCapable),
		errors.Is(err, rpctypes.ErrStopped), errors.Is(err, rpctypes.ErrLeaderChanged),
		status.Code(err) == codes.Unavailable:
		return fail(kindUnavailable, "cannot reach etcd at %s: %s", where, oneLine(err))
	}
	return fail(kindOther, "etcd at %s: %s", where, oneLine(err))
}

// refusedAfter is how long a call runs before it looks whether every
// endpoint refuses connections (etcd is down, or not at those ports): then
// the call ends at once, rather than wait out its time.
const refusedAfter = 250 * time.Millisecond

var errAllRefuse = errors.New("every endpoint refuses connections")

// untilAllRefuse returns ctx, ended with errAllRefuse (context.Cause) if
// the call is still running after refusedAfter and every endpoint refuses
// a connection; stop releases it.
func (s *server) untilAllRefuse(ctx context.Context) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(refusedAfter, func() {
		if s.allRefuse() {
			cancel(errAllRefuse)
		}
	})
	return ctx, func() { t.Stop(); cancel(nil) }
}

func (s *server) allRefuse() bool {
	for _, ep := range s.cfg.endpoints {
		conn, err := net.DialTimeout("tcp", ep, diagnoseTimeout)
		if err == nil {
			conn.Close()
			return false
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return false
		}
	}
	return true
}

// diagnoseTimeout bounds the look at a connection that diagnose takes.
const diagnoseTimeout = 300 * time.Millisecond

// diagnose says why etcd does not answer where a connection of its own
// shows it: refused, or a TLS handshake that fails (either side's
// certificate). "" when every endpoint seems to accept.
func (s *server) diagnose() string {
	whys := make([]string, len(s.cfg.endpoints))
	var wg sync.WaitGroup
	for i, ep := range s.cfg.endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			whys[i] = s.probe(ep)
		}()
	}
	wg.Wait()
	var out []string
	for i, why := range whys {
		if why != "" {
			out = append(out, s.cfg.endpoints[i]+": "+why)
		}
	}
	return strings.Join(out, "; ")
}

func (s *server) probe(ep string) string {
	deadline := time.Now().Add(diagnoseTimeout)
	conn, err := net.DialTimeout("tcp", ep, diagnoseTimeout)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return oneLine(err)
	}
	defer conn.Close()
	if s.tls == nil {
		return ""
	}
	conf := s.tls.Clone()
	if conf.ServerName == "" {
		conf.ServerName, _, _ = net.SplitHostPort(ep)
	}
	conf.NextProtos = []string{"h2"}
	tc := tls.Client(conn, conf)
	tc.SetDeadline(deadline)
	if err := tc.Handshake(); err != nil {
		return oneLine(err)
	}
	// A server that wants a client certificate refuses it after the
	// handshake (TLS 1.3): its alert arrives on the first read.
	var b [1]byte
	if _, err := tc.Read(b[:]); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return oneLine(err)
		}
	}
	return ""
}

// oneLine is err's text on one line, at most 300 bytes.
func oneLine(err error) string { return protocol.Clip(err.Error(), 300) }

func validProfile(name string) bool { return helper.CheckProfile(name) == nil }
