// Command run measures get against its floors: it runs the helper and the
// reference programs interleaved (A B A B …), and prints medians, ratios,
// peak RSS and the targets. scripts/bench.sh builds everything and calls it
// inside a private keyring.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
	"github.com/prusa-credential-helper/prusa-credential-helper/auth/authtest"
)

var (
	bin  = flag.String("bin", "", "folder with the built helper and reference programs")
	runs = flag.Int("n", 100, "runs of each command (≥ 100 for the record)")
)

// sample is one measured run.
type sample struct {
	wall time.Duration
	rss  int64 // KiB
}

type command struct {
	name string
	args []string
	env  []string
	// n > 1 starts n copies at once and measures the batch.
	n       int
	samples []sample
	rss     int64
}

func (c *command) run() error {
	n := max(c.n, 1)
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = exec.Command(c.args[0], c.args[1:]...)
		cmds[i].Env = c.env
		cmds[i].Stdin = nil
		cmds[i].Stdout = new(bytes.Buffer)
	}
	start := time.Now()
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			return err
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%s: %v", c.name, err)
		}
	}
	c.samples = append(c.samples, sample{wall: time.Since(start)})
	return nil
}

// peakRSS measures the peak RSS of one run, in KiB, with /usr/bin/time:
// a child of this (large) Go program would count its parent's memory
// from before exec.
func (c *command) peakRSS() int64 {
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		return -1
	}
	var rs []int64
	for range 15 {
		cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M"}, c.args...)...)
		cmd.Env = c.env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if cmd.Run() != nil {
			return -1
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		var kb int64
		fmt.Sscan(lines[len(lines)-1], &kb)
		rs = append(rs, kb)
	}
	slices.Sort(rs)
	return rs[len(rs)/2]
}

func (c *command) median() sample {
	w := make([]time.Duration, len(c.samples))
	for i, s := range c.samples {
		w[i] = s.wall
	}
	slices.Sort(w)
	return sample{wall: w[len(w)/2], rss: c.rss}
}

// interleave runs the commands in turns, rotating who goes first.
func interleave(n int, cmds ...*command) {
	for _, c := range cmds {
		if c.n <= 1 {
			c.rss = c.peakRSS()
		}
	}
	for i := range n {
		for j := range cmds {
			c := cmds[(i+j)%len(cmds)]
			if err := c.run(); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				os.Exit(1)
			}
		}
	}
}

type row struct {
	what, ref  string
	got, floor sample
	target     float64
	rssTarget  int64 // KiB; 0: none
	ratio      float64
	note       string
	batch      bool
}

func main() {
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "usage: run -bin DIR [-n RUNS]")
		os.Exit(2)
	}
	exe := func(name string) string { return filepath.Join(*bin, name) }
	work, _ := os.MkdirTemp("", "pch-bench-")
	defer os.RemoveAll(work)

	srv := authtest.NewServer(authtest.Options{
		Users:      []authtest.User{{Email: "bench@example.com", Password: "bench"}},
		AccessTTL:  30 * time.Second, // inside get's 60 s margin: every get refreshes
		NoRotation: true,             // so the same refresh token serves every run
	})
	defer srv.Close()
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "XDG_CONFIG_HOME=" + filepath.Join(work, "config"), "PRUSA_ACCOUNT_URL=" + srv.URL}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		base = append(base, "DBUS_SESSION_BUS_ADDRESS="+a)
	}
	helper := exe("prusa-credential-helper")
	store := func(profile, mode string, set auth.TokenSet) {
		b, _ := json.Marshal(set)
		cmd := exec.Command(helper, "store", "--store", mode, "--profile", profile)
		cmd.Env, cmd.Stdin = base, bytes.NewReader(b)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: store %s: %v %s\n", mode, err, out)
			os.Exit(1)
		}
	}
	valid := srv.Mint("bench@example.com", 2*time.Hour)
	store("fast", "file", valid)
	tokenFile := filepath.Join(work, "config", "prusa-credential-helper", "fast.json")

	var rows []row
	fmt.Printf("runs per command: %d (interleaved; medians)\n\n", *runs)

	// 1. The fast path, file store: the target pair on its own, with the
	// least a get can do with the same libraries (minget); then the
	// reference programs with it.
	getArgs := []string{helper, "get", "--store", "file", "--profile", "fast"}
	linked := &command{name: "linked", args: []string{exe("linked")}, env: base}
	minget := &command{name: "minget", args: []string{exe("minget"), tokenFile}, env: base}
	getFile := &command{name: "get (file)", args: getArgs, env: base}
	interleave(*runs, linked, minget, getFile)
	rows = append(rows,
		row{what: "get, valid token, file store", ref: "hello-world linking the same libraries", got: getFile.median(), floor: linked.median(), target: 1.15, rssTarget: 6 * 1024},
		row{what: "get, valid token, file store", ref: "the least a get can do with them (minget)", got: getFile.median(), floor: minget.median(), note: "for reference: the helper's own work"},
		row{what: "minget: read, decode, print", ref: "hello-world linking the same libraries", got: minget.median(), floor: linked.median(), note: "for reference: the floor of a get with these libraries"},
	)
	hello := &command{name: "hello", args: []string{exe("hello")}, env: base}
	fileread := &command{name: "fileread", args: []string{exe("fileread"), tokenFile}, env: base}
	tlsOnly := &command{name: "tlsonly", args: []string{exe("tlsonly")}, env: base}
	linked = &command{name: "linked", args: []string{exe("linked")}, env: base}
	getFile = &command{name: "get (file)", args: getArgs, env: base}
	interleave(*runs, hello, fileread, tlsOnly, linked, getFile)
	rows = append(rows,
		row{what: "get, valid token, file store", ref: "the same, among the programs below", got: getFile.median(), floor: linked.median(), note: "for reference"},
		row{what: "get, valid token, file store", ref: "Go hello-world", got: getFile.median(), floor: hello.median(), note: "for reference"},
		row{what: "get, valid token, file store", ref: "Go: read JSON file, print field", got: getFile.median(), floor: fileread.median(), note: "for reference"},
		row{what: "hello-world linking crypto/tls only", ref: "Go hello-world", got: tlsOnly.median(), floor: hello.median(), note: "for reference: the start-up cost of HTTPS alone"},
		row{what: "hello-world linking the helper's libraries", ref: "Go hello-world", got: linked.median(), floor: hello.median(), note: "for reference: the start-up floor of these libraries"},
	)

	// 2. The fast path, keyring store.
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		store("bench", "keyring", valid)
		kr := &command{name: "keyringread", args: []string{exe("keyringread"), "prusa-credential-helper", "bench"}, env: base}
		getKR := &command{name: "get (keyring)", args: []string{helper, "get", "--store", "keyring", "--profile", "bench"}, env: base}
		// The same helper built to read with go-keyring alone: what the
		// short Secret Service read buys.
		getGoKR := &command{name: "get (keyring, go-keyring reads)", args: []string{exe("prusa-credential-helper-gokeyring"), "get", "--store", "keyring", "--profile", "bench"}, env: base}
		interleave(*runs, kr, getKR, getGoKR)
		rows = append(rows,
			row{what: "get, valid token, keyring store", ref: "Go: one go-keyring read", got: getKR.median(), floor: kr.median(), target: 1.1},
			row{what: "get, valid token, keyring store", ref: "the same, reading with go-keyring alone", got: getKR.median(), floor: getGoKR.median(),
				note: fmt.Sprintf("for reference: the short Secret Service read saves %.0f%% of get", 100*(1-float64(getKR.median().wall)/float64(getGoKR.median().wall)))},
		)
	} else {
		fmt.Println("(no session bus: keyring rows skipped; run through scripts/with-keyring.sh)")
	}

	// 3. 50 at once.
	hello50 := &command{name: "50 hello", args: []string{exe("hello")}, env: base, n: 50}
	get50 := &command{name: "50 get (file)", args: []string{helper, "get", "--store", "file", "--profile", "fast"}, env: base, n: 50}
	linked50 := &command{name: "50 linked", args: []string{exe("linked")}, env: base, n: 50}
	interleave(max(*runs/3, 15), hello50, linked50, get50)
	rows = append(rows,
		row{what: "50 concurrent gets, file store", ref: "50 concurrent hello-worlds", got: get50.median(), floor: hello50.median(), batch: true, note: "for reference"},
		row{what: "50 concurrent gets, file store", ref: "50 concurrent linked hello-worlds", got: get50.median(), floor: linked50.median(), batch: true, note: "for reference"},
	)

	// 4. A refreshing get.
	expiring := srv.Mint("bench@example.com", 30*time.Second)
	store("refresh", "file", expiring)
	post := &command{name: "post", args: []string{exe("post"), srv.URL + "/o/token/", auth.DefaultClientID, expiring.RefreshToken}, env: base}
	getRefresh := &command{name: "get (refresh)", args: []string{helper, "get", "--store", "file", "--profile", "refresh"}, env: base}
	interleave(*runs, post, getRefresh)
	rows = append(rows, row{what: "get, refreshing (lock, POST, fsync'd save)", ref: "Go: one bare HTTP POST of the same request", got: getRefresh.median(), floor: post.median(), target: 1.6})

	fmt.Printf("%-44s %-44s %9s %9s %7s %8s %9s  %s\n", "command", "against", "median", "floor", "ratio", "target", "peak RSS", "")
	allMet := true
	for _, r := range rows {
		r.ratio = float64(r.got.wall) / float64(r.floor.wall)
		verdict := ""
		if r.target > 0 {
			verdict = "met"
			if r.ratio > r.target {
				verdict, allMet = fmt.Sprintf("MISSED by %.2f×", r.ratio-r.target), false
			}
		}
		rss := fmt.Sprintf("%.1f MiB", float64(r.got.rss)/1024)
		if r.batch || r.got.rss < 0 {
			rss = "-"
		}
		if r.rssTarget > 0 && r.got.rss < 0 {
			verdict += "; RSS not measured (apt-get install time)"
		} else if r.rssTarget > 0 {
			if r.got.rss > r.rssTarget {
				verdict += fmt.Sprintf("; RSS MISSED (≤ %d MiB)", r.rssTarget/1024)
				allMet = false
			} else {
				verdict += fmt.Sprintf("; RSS met (≤ %d MiB)", r.rssTarget/1024)
			}
		}
		target := "-"
		if r.target > 0 {
			target = fmt.Sprintf("≤ %.3g×", r.target)
		}
		fmt.Printf("%-44s %-44s %7.2fms %7.2fms %6.2f× %8s %9s  %s%s\n", r.what, r.ref, ms(r.got.wall), ms(r.floor.wall), r.ratio, target, rss, verdict, r.note)
	}
	fmt.Printf("%-44s %-44s %9s %9s %7s %8s %9.1f MiB (floor)\n", "", "Go hello-world", "", "", "", "", float64(hello.median().rss)/1024)
	if fi, err := os.Stat(helper); err == nil {
		v := "met"
		if fi.Size() > 10_000_000 {
			v, allMet = "MISSED", false
		}
		fmt.Printf("\nbinary (stripped, -trimpath): %.2f MB; target ≤ 10 MB: %s\n", float64(fi.Size())/1e6, v)
	}
	fmt.Printf("refresh requests served by the emulator: %d\n", srv.Count(authtest.KindTokenRefresh))
	if allMet {
		fmt.Println("all targets met")
	} else {
		fmt.Println(strings.TrimSpace("some targets missed (see above)"))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
