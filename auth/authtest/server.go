// Package authtest is an emulator of the Prusa Account server for tests, in
// the style of net/http/httptest: NewServer starts it on loopback, URL is
// its address, Close stops it.
//
// It behaves like the real server as ../shared/PRUSA-ACCOUNT.md describes
// it: Django's login and TOTP forms with CSRF cookie, field and
// Origin/Referer checks; django-oauth-toolkit's authorize and token
// endpoints with PKCE, single-use codes, rotating refresh tokens and
// oauthlib's error answers; RS256-style JWTs with all the claims; and
// /api/v1/me/. Options choose between the variants the real server was
// reported to show, and Fault injects failures on the token endpoint. It
// counts requests by Kind so that tests can assert "exactly one refresh".
package authtest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// NextStyle is how the login and TOTP forms carry the next URL.
type NextStyle int

const (
	NextPlain   NextStyle = iota // a hidden next field holding the authorize path as is (Django)
	NextEncoded                  // a hidden next field holding it percent-encoded (what the SDK expects)
	NextOmitted                  // no next field: the server uses the query's next
)

// Options configure an emulator. The zero value gives a server like the
// real one with the defaults of Prusa Connect's client and no users.
type Options struct {
	Users       []User
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
	Next           NextStyle
	FloatExp       bool // exp claims as floats (1795733862.25) instead of integers
	NumericSub     bool // sub claims as numbers instead of strings

	// RedirectLoop: the login page redirects back to the authorize
	// endpoint, which redirects to the login page (a server that loses its
	// session): a client must give up.
	RedirectLoop bool

	Now  func() time.Time // default time.Now
	Addr string           // loopback address to listen on; default 127.0.0.1:0
	TLS  bool             // serve HTTPS with httptest's certificate (use Client)
}

// User is an account of the emulator.
type User struct {
	ID         int // default: 1530681 + its index
	Email      string
	Password   string
	TOTPSecret string // base32; empty for an account without 2FA
	FirstName  string
	LastName   string
}

// Kind names a kind of request, for Count.
type Kind string

const (
	KindAuthorize    Kind = "authorize"
	KindLoginPage    Kind = "login_page"
	KindLoginPost    Kind = "login_post"
	KindTOTPPage     Kind = "totp_page"
	KindTOTPPost     Kind = "totp_post"
	KindTokenCode    Kind = "token_code"    // POST /o/token/ grant_type=authorization_code
	KindTokenRefresh Kind = "token_refresh" // POST /o/token/ grant_type=refresh_token
	KindTokenOther   Kind = "token_other"   // any other request to /o/token/
	KindMe           Kind = "me"
	KindOther        Kind = "other"
)

// Request records one request the emulator received.
type Request struct {
	Kind     Kind
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Form     map[string][]string // the posted form, if any
}

// Server is a running emulator.
type Server struct {
	URL string // base URL, such as http://127.0.0.1:43210

	ts   *httptest.Server
	opts Options

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
// email or password, two users with one email, a non-loopback address), as
// httptest does.
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
	for i, u := range opts.Users {
		s.AddUser(u, i)
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if opts.Addr != "" {
		host, _, err := net.SplitHostPort(opts.Addr)
		if err != nil {
			panic("authtest: bad Addr: " + err.Error())
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			panic("authtest: Addr must be a loopback address, not " + opts.Addr)
		}
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			panic("authtest: listen: " + err.Error())
		}
		s.ts.Listener.Close()
		s.ts.Listener = l
	}
	if opts.TLS {
		s.ts.StartTLS()
	} else {
		s.ts.Start()
	}
	s.URL = s.ts.URL
	return s
}

// AddUser adds an account; idx only picks its default ID.
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
	return g != nil && s.opts.Now().Before(g.expires)
}

// ValidRefreshToken reports whether token is a refresh token the server
// would accept now.
func (s *Server) ValidRefreshToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.refresh[token]
	return g != nil && !g.spent && s.opts.Now().Before(g.expires)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	kind := KindOther
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
	default:
		http.NotFound(w, r)
	}
}

// redirect answers 302 to target (a path with query), relative or absolute
// as the options say.
func (s *Server) redirect(w http.ResponseWriter, target string) {
	if s.opts.AbsoluteLocation && strings.HasPrefix(target, "/") {
		target = s.URL + target
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusFound)
}

func (s *Server) origin() string { return s.URL }

func (s *Server) String() string { return fmt.Sprintf("authtest.Server(%s)", s.URL) }
