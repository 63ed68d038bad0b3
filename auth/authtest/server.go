// Package authtest is an emulator of the Prusa Account server for tests, in
// the style of net/http/httptest: NewServer starts it on loopback, URL is
// its address, Close stops it.
//
// It behaves like the real server, as far as public clients' code and
// reports show it: Django's login and TOTP forms with CSRF cookie, field and
// Origin/Referer checks; django-oauth-toolkit's authorize and token
// endpoints with PKCE, single-use codes, rotating refresh tokens and
// oauthlib's error answers; RS256-style JWTs with all the claims; and
// /api/v1/me/.
//
// Its default pages are ones on which the Python Prusa Connect SDK's own
// login code works, which makes them the best evidence of the real ones:
// the first csrfmiddlewaretoken input has name before value in double
// quotes; next is percent-encoded, with no HTML entity in it; a wrong
// password answers the form again with class="invalid-feedback"; an account
// with 2FA is sent to /login/totp/, whose code field otp_token carries
// autocomplete="one-time-code"; a POST without Origin (as the SDK's TOTP
// post) or with Origin equal to the server's own is accepted; and
// /o/authorize/ needs no state. Options choose between the other variants
// the real server was reported to show (next plain or omitted, absolute
// redirects, a direct callback), and Fault injects failures on the token
// endpoint. It counts requests by Kind so that tests can assert "exactly
// one refresh".
//
// Its clock can run ahead of or behind the local one (Options.ClockOffset,
// Server.SetClockOffset), as a server seen from a machine whose clock is
// off: the Date header of every answer, the tokens' exp claims, the expiry
// checks and the TOTP steps it accepts all follow the server's clock.
// Options.Control adds a control endpoint that sets it over HTTP (see
// ControlPath).
package authtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// NextStyle is how the login and TOTP forms carry the next URL. The zero
// value, NextEncoded, is the rendering on which the Python SDK's login code
// works, and so the one the real pages have.
type NextStyle int

const (
	// NextEncoded: a hidden next field holding the authorize path
	// percent-encoded as Django's redirect_to_login quotes it
	// (/o/authorize/%3Fresponse_type%3Dcode%26client_id%3D…), with no HTML
	// entity in it. The default.
	NextEncoded NextStyle = iota
	// NextPlain: a hidden next field holding the authorize path as is, so
	// that the page escapes each & as &amp; (Django's own template).
	NextPlain
	// NextOmitted: no next field; the server uses the query's next.
	NextOmitted
)

// Options configure an emulator. The zero value gives a server like the
// real one with the defaults of Prusa Connect's client and no users: pages
// on which the Python SDK's login code works (next percent-encoded,
// relative redirects through /o/authorize/), integer exp claims, string
// sub claims and the local clock.
type Options struct {
	Users       []User // the accounts; more can be added with AddUser
	ClientID    string // default auth.DefaultClientID
	RedirectURI string // default auth.DefaultRedirectURI

	AccessTTL      time.Duration // default 7200 s
	FirstAccessTTL time.Duration // if set, the lifetime of access tokens issued by the code exchange
	RefreshTTL     time.Duration // default 30 days
	CodeTTL        time.Duration // default 60 s

	NoRotation       bool // refresh answers carry no refresh_token and the old one stays valid
	OmitIDOnRefresh  bool // refresh answers carry no id_token
	AbsoluteLocation bool // redirects carry absolute URLs (default: relative, as Django)
	// DirectCallback: a successful password (or TOTP) post redirects straight
	// to the redirect URI instead of through /o/authorize/.
	DirectCallback bool
	Next           NextStyle // how the forms carry next; default NextEncoded
	FloatExp       bool      // exp claims as floats (1795733862.25) instead of integers
	NumericSub     bool      // sub claims as numbers instead of strings

	// TrustedOrigin, if set, is the one origin (scheme://host[:port]) whose
	// Origin and Referer the login forms accept, as a Django site with
	// CSRF_TRUSTED_ORIGINS behind a proxy would; by default it is the
	// host each request was sent to (its Host header), as Django does.
	TrustedOrigin string

	// RedirectLoop: the login page redirects back to the authorize
	// endpoint, which redirects to the login page (a server that loses its
	// session): a client must give up.
	RedirectLoop bool

	// ClockOffset sets the server's clock ahead of (positive) or behind
	// (negative) the local one: the server's time is Now() + ClockOffset.
	// It shows in the Date header of every answer, in the exp claims of
	// the tokens it mints, in the expiry of codes and tokens, and in the
	// time step of the TOTP codes it accepts. SetClockOffset changes it
	// later.
	ClockOffset time.Duration

	// Control serves the control endpoints under /_emulator/ (see
	// ControlPath), which the emulator program turns on. Off by default,
	// so that a test's server answers only what the real one does.
	Control bool

	Now  func() time.Time // the local clock; default time.Now
	Addr string           // loopback address to listen on; default 127.0.0.1:0
	TLS  bool             // serve HTTPS with httptest's certificate (use Client)
}

// User is an account of the emulator.
type User struct {
	ID         int    // default: 1530681 + its index
	Email      string // the login, matched without regard to case; required
	Password   string // required
	TOTPSecret string // base32; empty for an account without 2FA
	FirstName  string // in the identity token; default Josef (with LastName Průša)
	LastName   string // in the identity token
}

// Kind names a kind of request, for Count.
type Kind string

// The kinds of request the emulator tells apart.
const (
	// KindAuthorize is any request to /o/authorize/.
	KindAuthorize Kind = "authorize"
	// KindLoginPage is a request to /login/ other than a POST.
	KindLoginPage Kind = "login_page"
	// KindLoginPost is a POST to /login/ (the email and password).
	KindLoginPost Kind = "login_post"
	// KindTOTPPage is a request to /login/totp/ other than a POST.
	KindTOTPPage Kind = "totp_page"
	// KindTOTPPost is a POST to /login/totp/ (the code).
	KindTOTPPost Kind = "totp_post"
	// KindTokenCode is a POST to /o/token/ with grant_type=authorization_code.
	KindTokenCode Kind = "token_code"
	// KindTokenRefresh is a POST to /o/token/ with grant_type=refresh_token.
	KindTokenRefresh Kind = "token_refresh"
	// KindTokenOther is any other request to /o/token/.
	KindTokenOther Kind = "token_other"
	// KindMe is any request to /api/v1/me/.
	KindMe Kind = "me"
	// KindControl is a request to the control endpoints under ControlPath
	// (counted only when Options.Control is on).
	KindControl Kind = "control"
	// KindOther is any other request (answered 404).
	KindOther Kind = "other"
)

// Request records one request the emulator received.
type Request struct {
	Kind     Kind                // what the emulator took the request for
	Method   string              // GET, POST, …
	Path     string              // the URL path, such as /login/
	RawQuery string              // the URL's query, still encoded
	Header   http.Header         // the request's headers (Origin, Referer, User-Agent, …)
	Form     map[string][]string // the posted form, if any
}

// Server is a running emulator.
type Server struct {
	URL string // base URL, such as http://127.0.0.1:43210 (the account URL to give clients)

	ts     *httptest.Server
	opts   Options
	base   string       // the URL, for the handlers
	offset atomic.Int64 // the server's clock minus the local one, in nanoseconds

	mu       sync.Mutex
	users    map[string]*userState // by lower-case email
	sessions map[string]*session   // by sessionid cookie
	codes    map[string]*authCode
	refresh  map[string]*grant // by refresh token
	access   map[string]*grant // by access token
	counts   map[Kind]int
	requests []Request
	faults   []Fault
}

type userState struct {
	User
	lastStep int64 // last TOTP time step accepted (django-otp refuses reuse)
}

type session struct {
	user       *userState
	otpPending bool // password accepted, TOTP not yet
}

type authCode struct {
	user        *userState
	challenge   string
	redirectURI string
	expires     time.Time
}

type grant struct {
	user    *userState
	sid     string
	expires time.Time
	spent   bool
}

// NewServer starts an emulator. It panics on misuse (a user without an
// email or password, a bad TOTP secret, two users with one email, a
// non-loopback address), as httptest does.
func NewServer(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = auth.DefaultClientID
	}
	if opts.RedirectURI == "" {
		opts.RedirectURI = auth.DefaultRedirectURI
	}
	if opts.AccessTTL == 0 {
		opts.AccessTTL = 7200 * time.Second
	}
	if opts.RefreshTTL == 0 {
		opts.RefreshTTL = 30 * 24 * time.Hour
	}
	if opts.CodeTTL == 0 {
		opts.CodeTTL = 60 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:     opts,
		users:    map[string]*userState{},
		sessions: map[string]*session{},
		codes:    map[string]*authCode{},
		refresh:  map[string]*grant{},
		access:   map[string]*grant{},
		counts:   map[Kind]int{},
	}
	s.offset.Store(int64(opts.ClockOffset))
	for i, u := range opts.Users {
		s.AddUser(u, i)
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if opts.Addr != "" {
		if err := CheckAddr(opts.Addr); err != nil {
			panic("authtest: Addr: " + err.Error())
		}
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			panic("authtest: listen: " + err.Error())
		}
		s.ts.Listener.Close()
		s.ts.Listener = l
	}
	// The handlers read base, set before they can run (the race detector
	// cannot see the ordering through a socket when another process, such
	// as a test's python3, makes the requests).
	s.base = "http://" + s.ts.Listener.Addr().String()
	if opts.TLS {
		s.base = "https://" + s.ts.Listener.Addr().String()
		s.ts.StartTLS()
	} else {
		s.ts.Start()
	}
	s.URL = s.base
	return s
}

// CheckAddr checks that addr (Options.Addr) is HOST:PORT with a loopback
// host: the emulator listens nowhere else.
func CheckAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if !auth.IsLoopback(host) {
		return errors.New("want a loopback address, such as 127.0.0.1:8080")
	}
	return nil
}

// SetClockOffset moves the server's clock to the local clock plus d, as
// Options.ClockOffset does; it is safe to call while requests are served.
//
// A TOTP code's time step is then judged by the new clock, so the record
// of the last step each account used (a code of an earlier step is
// refused, as django-otp does) is cleared: a clock set back does not lock
// the accounts out until it catches up.
func (s *Server) SetClockOffset(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset.Store(int64(d))
	for _, u := range s.users {
		u.lastStep = 0
	}
}

// ClockOffset returns how far the server's clock is ahead of the local
// one (negative: behind).
func (s *Server) ClockOffset() time.Duration { return time.Duration(s.offset.Load()) }

// Now returns the server's time: the local clock (Options.Now) plus the
// clock offset.
func (s *Server) Now() time.Time { return s.opts.Now().Add(s.ClockOffset()) }

// AddUser adds an account; idx only picks its default ID (1530681 + idx).
// It panics on a user without an email or password, a bad TOTP secret or
// an email already taken.
func (s *Server) AddUser(u User, idx int) {
	if u.Email == "" || u.Password == "" {
		panic("authtest: a user needs an email and a password")
	}
	if u.TOTPSecret != "" {
		if _, err := auth.DecodeTOTPSecret(u.TOTPSecret); err != nil {
			panic("authtest: bad TOTP secret for " + u.Email)
		}
	}
	if u.ID == 0 {
		u.ID = 1530681 + idx
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(u.Email)
	if _, dup := s.users[key]; dup {
		panic("authtest: two users with email " + u.Email)
	}
	s.users[key] = &userState{User: u}
}

// Close shuts the server down, ending any request still open.
func (s *Server) Close() {
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// Client returns an HTTP client that trusts the server's certificate (with
// TLS) and has no cookie jar.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Count returns how many requests of kind the server received.
func (s *Server) Count(k Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[k]
}

// Requests returns a copy of every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResetCounts forgets the counted and recorded requests.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
	s.requests = nil
}

// RevokeAll revokes every refresh and access token of a user, as signing
// out of Connect in a browser does.
func (s *Server) RevokeAll(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range []map[string]*grant{s.refresh, s.access} {
		for k, g := range m {
			if strings.EqualFold(g.user.Email, email) {
				delete(m, k)
			}
		}
	}
}

// Mint issues a token set for a user as a completed login would, without
// the login dance, for tests that start logged in. accessTTL 0 means the
// server's default; a negative one gives an already expired access token.
func (s *Server) Mint(email string, accessTTL time.Duration) auth.TokenSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[strings.ToLower(email)]
	if u == nil {
		panic("authtest: Mint: no user " + email)
	}
	if accessTTL == 0 {
		accessTTL = s.opts.AccessTTL
	}
	a := s.issueLocked(u, newUUID(), accessTTL, true, true)
	set, err := auth.ParseTokenSet(a.json())
	if err != nil {
		panic("authtest: Mint: " + err.Error())
	}
	return *set
}

// ValidAccessToken reports whether the server issued token and it has not
// expired: what /api/v1/me/ checks.
func (s *Server) ValidAccessToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.access[token]
	return g != nil && s.Now().Before(g.expires)
}

// ValidRefreshToken reports whether token is a refresh token the server
// would accept now.
func (s *Server) ValidRefreshToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.refresh[token]
	return g != nil && !g.spent && s.Now().Before(g.expires)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// net/http would date the answer by the local clock: use the server's.
	w.Header().Set("Date", s.Now().UTC().Format(http.TimeFormat))
	kind := KindOther
	if s.opts.Control && strings.HasPrefix(r.URL.Path, ControlPath) {
		kind = KindControl
	}
	switch r.URL.Path {
	case "/o/authorize/":
		kind = KindAuthorize
	case "/login/":
		kind = KindLoginPage
		if r.Method == http.MethodPost {
			kind = KindLoginPost
		}
	case "/login/totp/":
		kind = KindTOTPPage
		if r.Method == http.MethodPost {
			kind = KindTOTPPost
		}
	case "/o/token/":
		kind = KindTokenOther
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			_ = r.ParseForm()
			switch r.PostForm.Get("grant_type") {
			case "authorization_code":
				kind = KindTokenCode
			case "refresh_token":
				kind = KindTokenRefresh
			}
		}
	case "/api/v1/me/":
		kind = KindMe
	}
	if r.Method == http.MethodPost && r.PostForm == nil {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		_ = r.ParseForm()
	}
	s.mu.Lock()
	s.counts[kind]++
	rec := Request{Kind: kind, Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone()}
	if r.PostForm != nil {
		rec.Form = make(map[string][]string, len(r.PostForm))
		for k, v := range r.PostForm {
			rec.Form[k] = slices.Clone(v)
		}
	}
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	switch kind {
	case KindAuthorize:
		s.authorize(w, r)
	case KindLoginPage, KindLoginPost:
		s.login(w, r)
	case KindTOTPPage, KindTOTPPost:
		s.totp(w, r)
	case KindTokenCode, KindTokenRefresh, KindTokenOther:
		s.token(w, r)
	case KindMe:
		s.me(w, r)
	case KindControl:
		s.control(w, r)
	default:
		http.NotFound(w, r)
	}
}

// redirect answers 302 to target (a path with query), relative or absolute
// as the options say: absolute on the host the request named, as Django's
// build_absolute_uri makes it.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, target string) {
	if s.opts.AbsoluteLocation && strings.HasPrefix(target, "/") {
		target = strings.SplitN(s.base, "://", 2)[0] + "://" + r.Host + target
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusFound)
}

func (s *Server) origin() string { return s.base }

// String names the server by its URL.
func (s *Server) String() string { return fmt.Sprintf("authtest.Server(%s)", s.URL) }
