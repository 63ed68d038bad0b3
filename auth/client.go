package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Prusa Connect's public OAuth client.
const (
	DefaultAccountURL  = "https://account.prusa3d.com"
	DefaultClientID    = "MRHTlZhZqkNrrQ6FUPtjyusAz8nc59ErHXP8XkS4"
	DefaultRedirectURI = "https://connect.prusa3d.com/login/auth-callback"
)

// maxTokenBody bounds what is read of a token endpoint answer. A real
// answer is about 4 KB.
const maxTokenBody = 1 << 20

// maxRetryAfter is the longest Retry-After a refresh waits for.
const maxRetryAfter = 5 * time.Second

// Client talks to a Prusa Account server. The zero value is not usable:
// AccountURL, ClientID and RedirectURI must be set.
type Client struct {
	HTTP        *http.Client     // nil: a client with http.DefaultTransport
	AccountURL  string           // such as DefaultAccountURL, without a trailing slash
	ClientID    string           // OAuth client_id
	RedirectURI string           // the registered redirect URI; never fetched
	UserAgent   string           // sent on every request; Cloudflare refuses some defaults
	Now         func() time.Time // nil: time.Now
	// Debugf, if set, receives redacted diagnostics: methods, paths and
	// statuses, never a query, body, cookie or token.
	Debugf func(format string, args ...any)

	once sync.Once
	own  *http.Client // the client made for a Client without HTTP
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) debugf(format string, args ...any) {
	if c.Debugf != nil {
		c.Debugf(format, args...)
	}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	c.once.Do(func() { c.own = newHTTPClient(c.AccountURL) })
	return c.own
}

// newHTTPClient is the HTTP client of a Client without one: that of
// http.DefaultTransport (proxies from the environment and all), except
// that no proxy serves a loopback host (see noLoopbackProxy), that a
// proxy's refusal of a CONNECT is told by its status alone (its text may
// echo the request, Proxy-Authorization and all), and that for an http://
// account URL it connects to loopback addresses only: a name such as
// localhost is only as loopback as the resolver makes it.
func newHTTPClient(accountURL string) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = noLoopbackProxy
	t.OnProxyConnectResponse = func(_ context.Context, proxy *url.URL, _ *http.Request, resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the proxy %s refused the connection (%d %s)", proxy.Host, resp.StatusCode, http.StatusText(resp.StatusCode))
		}
		return nil
	}
	if u, err := url.Parse(accountURL); err == nil && strings.EqualFold(u.Scheme, "http") {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly}
		t.DialContext = d.DialContext
	}
	return &http.Client{Transport: t}
}

// noLoopbackProxy is the environment's proxy (http.ProxyFromEnvironment)
// for any host but this machine's own, in any spelling: that one passes
// over "localhost" in lower case alone, and would send a login to
// http://LOCALHOST, password and all, through the proxy in clear.
func noLoopbackProxy(r *http.Request) (*url.URL, error) {
	if IsLoopback(r.URL.Hostname()) {
		return nil, nil
	}
	return http.ProxyFromEnvironment(r)
}

// loopbackOnly refuses a connection to an address that is not loopback
// (net.Dialer's Control: it runs before the connection is made).
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address, and an http:// account URL is for loopback only", host)
	}
	return nil
}

func (c *Client) endpoint(path string) string {
	return strings.TrimRight(c.AccountURL, "/") + path
}

// issuer is the account server's URL as a token set records it
// (TokenSet.AccountURL): scheme and host in lower case, no default port,
// no trailing slash.
func (c *Client) issuer() string {
	if u, err := parseAccountURL(c.AccountURL); err == nil {
		return normalURL(u)
	}
	return strings.TrimRight(c.AccountURL, "/")
}

// CheckAccountURL checks an account server's URL, as given in the
// settings or recorded in a token set: https, or http on a loopback host;
// a host and nothing but printable ASCII (a host name in its xn-- form);
// no user, query or fragment.
func CheckAccountURL(raw string) error {
	_, err := parseAccountURL(raw)
	return err
}

// parseAccountURL is CheckAccountURL, returning the parsed URL.
func parseAccountURL(raw string) (*url.URL, error) {
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] >= 0x7f {
			return nil, errors.New("use printable ASCII only (a host name in its xn-- form)")
		}
	}
	if !strings.Contains(raw, "://") { // such as 127.0.0.1:8080 or localhost:8080
		return nil, fmt.Errorf("want an absolute URL such as %s (http:// for a loopback host)", DefaultAccountURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("want an absolute URL such as %s", DefaultAccountURL)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("no host")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("no user, query or fragment allowed")
	}
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		if host := u.Hostname(); !IsLoopback(host) {
			return nil, fmt.Errorf("http:// is allowed only for loopback hosts, not %s; use https://", host)
		}
		return u, nil
	}
	return nil, fmt.Errorf("scheme %q: want https://", u.Scheme)
}

// IsLoopback reports whether host is localhost or a loopback IP: a host
// that may be reached over http://.
func IsLoopback(host string) bool {
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()
}

// originOf is u's origin (RFC 6454) as a browser writes it: scheme and
// host in lower case, without the scheme's default port.
func originOf(u *url.URL) string { return normalURL(&url.URL{Scheme: u.Scheme, Host: u.Host}) }

// normalURL is u with its scheme and host in lower case, without the
// scheme's default port or a trailing slash.
func normalURL(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if port := u.Port(); scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		host = strings.TrimSuffix(host, ":"+port)
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
}

// SameServer reports whether the account URLs a and b name the same
// server: scheme and host compared in any case, the scheme's default port
// written or not, the path with or without a trailing slash. Any two
// loopback URLs count as one: they are this machine's test servers and
// emulators, whose ports come and go. A URL that CheckAccountURL refuses
// is the same only as itself.
func SameServer(a, b string) bool {
	ua, erra := parseAccountURL(a)
	ub, errb := parseAccountURL(b)
	switch {
	case erra != nil || errb != nil:
		return a == b
	case IsLoopback(ua.Hostname()) && IsLoopback(ub.Hostname()):
		return true
	}
	return normalURL(ua) == normalURL(ub)
}

// TokenURL is the token endpoint (RFC 6749 §3.2).
func (c *Client) TokenURL() string { return c.endpoint("/o/token/") }

// AuthorizeURL is the authorization endpoint (RFC 6749 §3.1).
func (c *Client) AuthorizeURL() string { return c.endpoint("/o/authorize/") }

// tokenAnswer is a usable token endpoint answer and what it tells of the
// server's clock.
type tokenAnswer struct {
	set    *TokenSet
	offset time.Duration // the server's clock minus the local one
	dated  bool          // offset is known
}

// postToken posts form to the token endpoint and returns the token set it
// answers. It retries once, after a jittered pause or the server's
// Retry-After (up to 5 s), when no answer arrived or the answer was 429,
// 502, 503 or 504, and only while ctx's deadline leaves time for it.
func (c *Client) postToken(ctx context.Context, form url.Values) (*tokenAnswer, error) {
	for attempt := 1; ; attempt++ {
		a, err := c.postTokenOnce(ctx, form)
		if err == nil || attempt == 2 {
			return a, err
		}
		wait, ok := retryWait(err)
		if !ok {
			return nil, err
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < wait+100*time.Millisecond {
			return nil, err
		}
		c.debugf("token endpoint: retrying in %s after: %v", wait.Round(time.Millisecond), err)
		if serr := sleepContext(ctx, wait); serr != nil {
			return nil, err
		}
	}
}

// retryWait says whether err may be retried and after how long.
func retryWait(err error) (time.Duration, bool) {
	jitter := 100*time.Millisecond + rand.N(300*time.Millisecond)
	var re *RetrieveError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case 429, 502, 503, 504:
		default:
			return 0, false
		}
		if re.RetryAfter > maxRetryAfter {
			return 0, false
		}
		if re.RetryAfter > 0 {
			return re.RetryAfter, true
		}
		return jitter, true
	}
	var nr noResponse
	if errors.As(err, &nr) {
		return jitter, true
	}
	return 0, false
}

// noResponse marks a transport error before any answer arrived; its message
// is the error's own.
type noResponse struct{ error }

func (e noResponse) Unwrap() error { return e.error }

// tokenClient is the HTTP client for the token endpoint: the caller's, made
// not to follow redirects, so that no token, code or verifier goes anywhere
// but TokenURL.
func (c *Client) tokenClient() *http.Client {
	hc := *c.httpClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// onceSent is ctx for a token request, except that once the request has
// its connection (it is written right after, and a cancellation then
// cannot be sure to stop it before the server has it), ctx's cancellation
// (an interrupt) no longer ends it: the server may have spent the refresh
// token or the code already, and only its answer, saved, keeps the
// session. ctx's deadline (the time budget) still does. A ctx already done
// is its error: the request is not made.
func onceSent(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	base, cancelDeadline := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		base, cancelDeadline = context.WithDeadline(base, dl)
	}
	inner, cancel := context.WithCancel(base)
	// The watch looks and cancels under mu, which the hook waits for: a
	// request is never cancelled after the hook let it go on.
	var mu sync.Mutex
	sent := false
	inner = httptrace.WithClientTrace(inner, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		mu.Lock()
		sent = true
		mu.Unlock()
	}})
	stopWatch := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		// The deadline ends base as well, as a timeout: the watch passes
		// on an interrupt alone.
		if !sent && errors.Is(ctx.Err(), context.Canceled) {
			cancel()
		}
	})
	return inner, func() { stopWatch(); cancel(); cancelDeadline() }, nil
}

func (c *Client) postTokenOnce(ctx context.Context, form url.Values) (*tokenAnswer, error) {
	u, err := url.Parse(c.TokenURL())
	if err != nil {
		return nil, err
	}
	ctx, stop, err := onceSent(ctx)
	if err != nil {
		return nil, netError("POST", u, err, false)
	}
	defer stop()
	ctx, answered := traceAnswer(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.UserAgent)
	start, sent := time.Now(), c.now()
	resp, err := c.tokenClient().Do(req)
	if err != nil {
		err = netError("POST", u, err, answered())
		if errors.Is(err, ErrNetwork) {
			err = noResponse{err}
		}
		c.debugf("POST %s: %v", u.Path, err)
		return nil, err
	}
	local := midpoint(sent, c.now())
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody+1))
	c.debugf("POST %s (grant_type=%s) → %d, %d bytes, %s", u.Path, form.Get("grant_type"), resp.StatusCode, len(body), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return nil, netError("reading answer of POST", u, err, false) // the connection failed
	}
	if len(body) > maxTokenBody {
		return nil, &RetrieveError{StatusCode: resp.StatusCode, Reason: "answer too large"}
	}
	set, err := parseTokenAnswer(resp, body)
	if err != nil {
		return nil, err
	}
	// What the helper records about a set is its own to say: an answer
	// that carries those fields does not set them.
	set.ClockOffset, set.ReplacedEnv, set.AccountURL = 0, "", ""
	a := &tokenAnswer{set: set}
	if server, ok := serverTime(resp.Header, set); ok {
		if a.offset, a.dated = estimateOffset(server, local); a.dated {
			c.debugf("clock offset (server minus local): %s", a.offset)
		}
	}
	return a, nil
}

// parseTokenAnswer reads a token endpoint answer (RFC 6749 §5.1, §5.2).
func parseTokenAnswer(resp *http.Response, body []byte) (*TokenSet, error) {
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"))
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, &RetrieveError{StatusCode: resp.StatusCode, Reason: "redirects are not followed"}
	}
	// One decoding serves both an OAuth error and a token set. A body it
	// refuses (invalid UTF-8, say) may still be an error answer: the error
	// is looked for as encoding/json finds a struct field, in any case.
	m, jerr := decodeObject(body)
	isJSON, oauthErr := jerr == nil, any(nil)
	for k, v := range m {
		if strings.EqualFold(k, "error") && v != nil {
			oauthErr = v
		}
	}
	if jerr != nil {
		var probe struct {
			Error any `json:"error"`
		}
		isJSON = json.Unmarshal(body, &probe) == nil
		oauthErr = probe.Error
	}
	if isJSON && oauthErr != nil {
		code, _ := oauthErr.(string)
		if !isErrorCode(code) {
			code = "unknown_error"
		}
		return nil, &RetrieveError{StatusCode: resp.StatusCode, ErrorCode: code, RetryAfter: retryAfter}
	}
	if resp.StatusCode != http.StatusOK {
		reason := "not an OAuth error answer"
		if !isJSON {
			reason = "answer is not JSON"
		}
		return nil, &RetrieveError{StatusCode: resp.StatusCode, Reason: reason, RetryAfter: retryAfter}
	}
	set, err := (*TokenSet)(nil), jerr
	if jerr == nil {
		set, err = validTokenSetOf(m, body)
	}
	switch {
	case err == nil:
		return set, nil
	case !isJSON && errors.Is(err, errTruncated):
		return nil, &RetrieveError{StatusCode: resp.StatusCode, Reason: "answer is not JSON: it is truncated"}
	case !isJSON:
		return nil, &RetrieveError{StatusCode: resp.StatusCode, Reason: "answer is not JSON"}
	}
	reason := strings.TrimPrefix(err.Error(), ErrInvalidTokenSet.Error()+": ")
	return nil, &RetrieveError{StatusCode: resp.StatusCode, Reason: "answer is not a usable token set: " + reason}
}

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
