// Command fleet is the fleet benchmark of the etcd store (scripts/fleet.sh
// builds the helper and its companion and runs it): many helper processes
// on many "hosts" share one Prusa account through one etcd.
//
// It starts the account emulator (package authtest) and an embedded etcd
// on loopback, stores a token set whose access token is about to expire,
// and starts -hosts × -per-host `get` processes at once. Each host has its
// own HOME and configuration folder (so its own local cache), and no lock
// file is common to them: only etcd's lock orders them. It checks that:
//
//   - exactly one refresh request reached the account server;
//   - no get failed (so none met invalid_grant) and every process printed
//     the same new token;
//
// and reports the p50 and p99 get times during the refresh; then runs as
// many gets again, on the fast path, and reports their times and the etcd
// requests per get (the etcd server's own gRPC count: 0 expected).
//
// Exit status 0 when every check holds, 1 otherwise.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

func main() {
	bin := flag.String("bin", "", "the helper binary, with prusa-credential-helper-etcd beside it")
	hosts := flag.Int("hosts", 8, "hosts, each with its own HOME and cache")
	perHost := flag.Int("per-host", 8, "get processes per host")
	flag.Parse()
	if *hosts < 1 || *perHost < 1 {
		fmt.Fprintln(os.Stderr, "fleet: -hosts and -per-host must be at least 1")
		os.Exit(2)
	}
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "fleet: -bin is required")
		os.Exit(2)
	}
	if err := run(*bin, *hosts, *perHost); err != nil {
		fmt.Fprintln(os.Stderr, "fleet: FAIL:", err)
		os.Exit(1)
	}
}

const email = "fleet@example.com"

func run(bin string, hosts, perHost int) error {
	work, err := os.MkdirTemp("", "fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	srv := authtest.NewServer(authtest.Options{Users: []authtest.User{{Email: email, Password: "fleet-password"}}})
	defer srv.Close()
	etcd, endpoint, err := startEtcd(filepath.Join(work, "etcd"))
	if err != nil {
		return err
	}
	defer etcd.Close()

	// The fleet's one set: its access token expires in 30 s, within the
	// helper's 60 s margin, so every get wants a refresh.
	old := srv.Mint(email, 30*time.Second)
	data, err := json.Marshal(old)
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = cli.Put(ctx, "fleet/default", string(data))
	cancel()
	cli.Close() // so that the count of etcd requests below is the helpers' alone
	if err != nil {
		return err
	}

	store := "etcd://" + endpoint + "/fleet"
	envs := make([][]string, hosts)
	for h := range hosts {
		home := filepath.Join(work, fmt.Sprintf("host%d", h))
		if err := os.MkdirAll(home, 0o700); err != nil {
			return err
		}
		envs[h] = []string{
			"HOME=" + home,
			"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
			"PATH=" + os.Getenv("PATH"),
			"PRUSA_CREDENTIAL_STORE=" + store,
			"PRUSA_ACCOUNT_URL=" + srv.URL,
			"PRUSA_HELPER_TIMEOUT=60s",
		}
	}

	var failures []string
	srv.ResetCounts()
	refresh := fleetGets(bin, envs, perHost)
	refreshes := srv.Count(authtest.KindTokenRefresh)
	tokens := map[string]int{}
	for _, r := range refresh {
		if r.err != nil {
			failures = append(failures, fmt.Sprintf("a get failed: %v: %s", r.err, firstLine(r.stderr)))
			continue
		}
		tokens[r.token]++
	}
	if refreshes != 1 {
		failures = append(failures, fmt.Sprintf("%d refresh requests, want exactly 1", refreshes))
	}
	if len(tokens) != 1 {
		failures = append(failures, fmt.Sprintf("the processes printed %d different tokens, want 1", len(tokens)))
	}
	for tok := range tokens {
		if tok == old.AccessToken {
			failures = append(failures, "the processes printed the old token")
		} else if !srv.ValidAccessToken(tok) {
			failures = append(failures, "the processes printed a token the server did not issue")
		}
	}
	// A refresh answered invalid_grant ends as login_required (exit 4).
	invalidGrant := count(refresh, func(r result) bool {
		var ee *exec.ExitError
		return errors.As(r.err, &ee) && ee.ExitCode() == 4
	})
	if invalidGrant > 0 {
		failures = append(failures, fmt.Sprintf("%d gets ended in login_required (a refresh answered invalid_grant)", invalidGrant))
	}

	// The fast path: every host's cache now holds the new token.
	before, err := etcdRequests(endpoint)
	if err != nil {
		return err
	}
	srv.ResetCounts()
	fast := fleetGets(bin, envs, perHost)
	after, err := etcdRequests(endpoint)
	if err != nil {
		return err
	}
	for _, r := range fast {
		if r.err != nil {
			failures = append(failures, fmt.Sprintf("a fast-path get failed: %v: %s", r.err, firstLine(r.stderr)))
		} else if _, ok := tokens[r.token]; !ok {
			failures = append(failures, "a fast-path get printed another token")
		}
	}
	if n := srv.Count(authtest.KindTokenRefresh); n != 0 {
		failures = append(failures, fmt.Sprintf("fast-path gets made %d refresh requests", n))
	}
	var noisy int
	var first string
	for _, r := range slices.Concat(refresh, fast) {
		if r.err == nil && r.stderr != "" {
			if noisy++; noisy == 1 {
				first = firstLine(r.stderr)
			}
		}
	}
	if noisy > 0 {
		failures = append(failures, fmt.Sprintf("%d successful gets wrote on stderr, such as: %s", noisy, first))
	}
	perGet := float64(after-before) / float64(len(fast))
	if after != before {
		failures = append(failures, fmt.Sprintf("fast-path gets made %d etcd requests, want 0", after-before))
	}

	n := hosts * perHost
	fmt.Printf("fleet: %d hosts x %d processes = %d gets, one etcd at %s, account emulator at %s\n", hosts, perHost, n, endpoint, srv.URL)
	fmt.Printf("refresh:   %d refresh request(s), %d invalid_grant, %d distinct token(s) printed, %d get(s) failed\n",
		refreshes, invalidGrant, len(tokens), count(refresh, func(r result) bool { return r.err != nil }))
	p50, p99 := percentiles(refresh)
	fmt.Printf("refresh:   get p50 %s  p99 %s\n", p50, p99)
	p50, p99 = percentiles(fast)
	fmt.Printf("fast path: get p50 %s  p99 %s\n", p50, p99)
	fmt.Printf("fast path: %.2f etcd requests per get (%d in all)\n", perGet, after-before)
	if len(failures) > 0 {
		return errors.New(strings.Join(slices.Compact(failures), "; "))
	}
	fmt.Println("fleet: PASS")
	return nil
}

type result struct {
	token, stderr string
	took          time.Duration
	err           error
}

// fleetGets starts perHost gets on every host at once and waits for them.
func fleetGets(bin string, envs [][]string, perHost int) []result {
	var wg sync.WaitGroup
	out := make([]result, len(envs)*perHost)
	start := make(chan struct{})
	for h, env := range envs {
		for p := range perHost {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(bin, "--format", "token", "get")
				cmd.Env = env
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				<-start
				t0 := time.Now()
				err := cmd.Run()
				out[h*perHost+p] = result{strings.TrimSpace(stdout.String()), stderr.String(), time.Since(t0), err}
			}()
		}
	}
	close(start)
	wg.Wait()
	return out
}

func percentiles(rs []result) (p50, p99 time.Duration) {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = r.took
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(100 * time.Microsecond)
	}
	return at(0.50), at(0.99)
}

func count(rs []result, f func(result) bool) int {
	n := 0
	for _, r := range rs {
		if f(r) {
			n++
		}
	}
	return n
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startEtcd(dir string) (*embed.Etcd, string, error) {
	cp, err := freePort()
	if err != nil {
		return nil, "", err
	}
	pp, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cfg := embed.NewConfig()
	cfg.Name = "fleet"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", cp)}
	pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", pp)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", errors.New("etcd did not become ready")
	}
	return e, cu.Host, nil
}

// etcdRequests is the number of gRPC calls the etcd server has started
// (its grpc_server_started_total, from /metrics).
func etcdRequests(endpoint string) (int64, error) {
	resp, err := http.Get("http://" + endpoint + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var total float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "grpc_server_started_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("etcd metrics: %q", line)
		}
		total += v
		found = true
	}
	if !found {
		return 0, errors.New("etcd metrics have no grpc_server_started_total")
	}
	return int64(total), sc.Err()
}
