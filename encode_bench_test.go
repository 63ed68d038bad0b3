package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/protocol"
)

// The answer of get used to be written by hand, on the grounds that in a
// fresh process the first use of encoding/json is costly.
// BenchmarkColdAnswerEncoding measures what that saved: each round runs
// the built binary's get (file store, valid token) once, and a fresh test
// process twice, which writes one answer, either by hand (the code below,
// as it was) or with encoding/json (protocol.WriteToken), and says how long
// that took. It reports the medians and the saving as a share of a whole
// get. The saving was 0.7 to 1.7% of a get, well below the 10% that would
// keep a hand-written encoder, so it went.
func BenchmarkColdAnswerEncoding(b *testing.B) {
	home := b.TempDir()
	storeIn(b, filepath.Join(home, ".config"), "default", canarySet(time.Now().Add(2*time.Hour), time.Now().Add(24*time.Hour)))
	var gets, hands, jsons []float64
	for b.Loop() {
		start := time.Now()
		if r := execHelperB(b, home, "get"); r != 0 {
			b.Fatalf("get: exit %d", r)
		}
		gets = append(gets, float64(time.Since(start).Nanoseconds()))
		hands = append(hands, coldEncode(b, "hand"))
		jsons = append(jsons, coldEncode(b, "json"))
	}
	get, hand, js := median(gets), median(hands), median(jsons)
	b.ReportMetric(get, "get-ns")
	b.ReportMetric(hand, "hand-ns")
	b.ReportMetric(js, "json-ns")
	b.ReportMetric(100*(js-hand)/get, "saving-%-of-get")
}

// coldEncodeChild is the child of BenchmarkColdAnswerEncoding (TestMain
// runs it): it writes one answer and prints how long that took.
func coldEncodeChild(how string) {
	tok := protocol.Token{Profile: "default", TokenType: "Bearer", AccessToken: strings.Repeat("a", 900), Expiry: time.Now()}
	start := time.Now()
	if how == "hand" {
		handWriteToken(io.Discard, tok)
	} else {
		protocol.WriteToken(io.Discard, protocol.FormatJSON, tok)
	}
	fmt.Printf("cold-encode-ns %d\n", time.Since(start).Nanoseconds())
}

func coldEncode(b *testing.B, how string) float64 {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PCH_COLD_ENCODE="+how)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("child: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "cold-encode-ns "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	b.Fatalf("child said %q", out)
	return 0
}

func execHelperB(b *testing.B, home string, args ...string) int {
	cmd := exec.Command(binary, args...)
	cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PRUSA_CREDENTIAL_STORE=file"}
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		b.Fatal(err)
	}
	return 0
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

// handWriteToken is the hand-written JSON answer that protocol used to
// have, kept here only for the comparison.
func handWriteToken(w io.Writer, t protocol.Token) error {
	b := make([]byte, 0, 160+len(t.AccessToken))
	b = append(b, `{"version":1,"success":true,"profile":`...)
	b = strconv.AppendQuote(b, t.Profile) // JWTs and profile names are plain ASCII
	b = append(b, `,"token_type":`...)
	b = strconv.AppendQuote(b, t.TokenType)
	b = append(b, `,"access_token":`...)
	b = strconv.AppendQuote(b, t.AccessToken)
	b = append(b, `,"expires_at":"`...)
	b = append(b, protocol.FormatTime(t.Expiry)...)
	b = append(b, `","expiration_time":`...)
	b = strconv.AppendInt(b, t.Expiry.Unix(), 10)
	b = append(b, "}\n"...)
	_, err := w.Write(b)
	return err
}
