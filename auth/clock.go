package auth

import (
	"net/http"
	"time"
)

// clockTolerance is how far apart the server's clock and the local one may
// be and still count as agreeing: the estimates below have a resolution of
// one second, and a request's latency blurs them further.
const clockTolerance = 2 * time.Second

// maxClockOffset bounds clock_offset: a board without a real-time clock may
// boot in 1970, and anything further off than this is no clock at all.
const maxClockOffset = 100 * 365 * 24 * time.Hour

// estimateOffset returns the server's clock minus the local one, in whole
// seconds, from server, the server's time at local time local; zero when
// the two agree within clockTolerance. ok is false for a difference beyond
// maxClockOffset: no estimate, rather than one that a set cannot keep.
func estimateOffset(server, local time.Time) (d time.Duration, ok bool) {
	if server.Before(local.Add(-maxClockOffset)) || server.After(local.Add(maxClockOffset)) {
		return 0, false
	}
	d = server.Sub(local).Round(time.Second)
	if d.Abs() <= clockTolerance {
		return 0, true
	}
	return d, true
}

// serverTime is the server's time when it answered: when set carries a new
// access token and its expires_in, the token's issue time (exp −
// expires_in); else the Date header (RFC 9110 §6.6.1), which is truncated
// to the second, plus half a second.
func serverTime(h http.Header, set *TokenSet) (time.Time, bool) {
	if set != nil && set.ExpiresIn != "" {
		in, err := set.ExpiresIn.Float64()
		access, aerr := set.Access()
		if err == nil && aerr == nil && in > 0 && in < 1e9 {
			return access.Expiry.Time.Add(-time.Duration(in * float64(time.Second))), true
		}
	}
	t, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return time.Time{}, false
	}
	return t.Add(time.Second / 2), true
}

// midpoint is halfway between a and b: the local time to pair with a time
// the server took while handling a request sent at a and answered at b.
func midpoint(a, b time.Time) time.Time { return a.Add(b.Sub(a) / 2) }
