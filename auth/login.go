package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// MaxTOTPAttempts is how many TOTP codes Login sends before it gives up.
const MaxTOTPAttempts = 3

// Limits of the login dance.
const (
	maxRedirects = 10
	maxPages     = 12      // form pages in one login: login, TOTP and its retries, with room
	maxPageBody  = 4 << 20 // bytes of one HTML page
)

// LoginInput is what a password login needs. Its String method hides the
// password.
type LoginInput struct {
	Email    string
	Password string
	// TOTP gives the codes to send when the server shows its TOTP form.
	// Nil when the account is known to have no 2FA.
	TOTP TOTPSource
}

// TOTPSource returns the code to send the attempt-th time (from 1) the
// server shows its TOTP form; attempt > 1 means the previous code was
// refused. clockOffset is the account server's clock minus the local one
// (Client.Now), estimated from the Date headers of the login pages; zero
// when they agree or nothing is known. A source that computes codes adds it
// to the local time (see TOTPFromSecret). It returns an error to give up
// (ErrInvalidTOTP to say the code was wrong).
type TOTPSource func(ctx context.Context, attempt int, clockOffset time.Duration) (string, error)

func (in LoginInput) String() string {
	return fmt.Sprintf("auth.LoginInput{Email: %q, Password: <redacted>}", in.Email)
}
func (in LoginInput) GoString() string { return in.String() }

// Login logs in with an email, a password and, where the account asks for
// one, a TOTP code, the way a browser does on the account's HTML forms, and
// returns the token set. It runs the authorization code flow with PKCE S256
// (RFC 7636) and a random state (RFC 6749 §10.12), follows redirects on the
// account's own origin only, posts every field of each form back, and stops
// at the redirect to the redirect URI without fetching it. The set's
// ClockOffset is estimated from the code exchange's answer, else from the
// login pages.
func (c *Client) Login(ctx context.Context, in LoginInput) (TokenSet, error) {
	base, err := url.Parse(c.AccountURL)
	if err != nil || base.Host == "" {
		return TokenSet{}, fmt.Errorf("login: bad account URL")
	}
	cb, err := url.Parse(c.RedirectURI)
	if err != nil || cb.Host == "" {
		return TokenSet{}, fmt.Errorf("login: bad redirect URI")
	}
	jar, _ := cookiejar.New(nil)
	hc := *c.httpClient()
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &loginSession{c: c, hc: &hc, origin: base.Scheme + "://" + base.Host, site: originOf(base), callback: cb}

	verifier, state := NewVerifier(), randomString(24)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ClientID},
		"redirect_uri":          {c.RedirectURI},
		"code_challenge_method": {"S256"},
		"code_challenge":        {S256Challenge(verifier)},
		"state":                 {state},
	}
	au, err := url.Parse(c.AuthorizeURL() + "?" + q.Encode())
	if err != nil {
		return TokenSet{}, fmt.Errorf("login: %w", err)
	}
	pg, err := s.do(ctx, http.MethodGet, au, nil, nil)
	if err != nil {
		return TokenSet{}, fmt.Errorf("login: %w", err)
	}
	postedPassword, totpAttempts := false, 0
	for pages := 0; pg.callback == nil; pages++ {
		if pages >= maxPages {
			return TokenSet{}, fmt.Errorf("login: %w: too many form pages", ErrUnexpectedPage)
		}
		form, kind, err := pg.loginForm()
		if err != nil {
			if !postedPassword && errors.Is(err, errNoForm) {
				// Before the email is posted the page is the same for
				// every account: one without a form is the site's
				// (maintenance, a challenge page, a new design).
				return TokenSet{}, fmt.Errorf("login: %w: the login page has no login form", ErrUnexpectedPage)
			}
			return TokenSet{}, fmt.Errorf("login: %w: %w", ErrUnexpectedPage, err)
		}
		vals := form.Values()
		switch kind {
		case formPassword:
			if postedPassword {
				return TokenSet{}, fmt.Errorf("login: %w", ErrInvalidCredentials)
			}
			if err := fillPassword(form, vals, in); err != nil {
				return TokenSet{}, fmt.Errorf("login: %w: %w", ErrUnexpectedPage, err)
			}
			postedPassword = true
		case formTOTP:
			field := form.Fields[form.totpField()].Name
			if field == "" { // no code made, none spent
				return TokenSet{}, fmt.Errorf("login: %w: the one-time code field has no name", ErrUnexpectedPage)
			}
			totpAttempts++
			if totpAttempts > MaxTOTPAttempts || in.TOTP == nil {
				return TokenSet{}, fmt.Errorf("login: %w", ErrInvalidTOTP)
			}
			code, err := in.TOTP(ctx, totpAttempts, s.offset)
			if err != nil {
				return TokenSet{}, fmt.Errorf("login: %w", err)
			}
			vals.Set(field, strings.TrimSpace(code))
		}
		target, err := form.ActionURL(pg.url)
		if err != nil {
			return TokenSet{}, fmt.Errorf("login: %w: the form's action is not a URL", ErrUnexpectedPage)
		}
		if originOf(target) != s.site {
			// Never post a password or code to another origin than the account's.
			return TokenSet{}, fmt.Errorf("login: %w: the form posts to %s", ErrUnexpectedPage, s.elsewhere(target))
		}
		if v := vals.Get("next"); v != "" {
			vals.Set("next", decodeNext(v))
		}
		pg, err = s.do(ctx, http.MethodPost, target, vals, pg.url)
		if err != nil {
			return TokenSet{}, fmt.Errorf("login: %w", err)
		}
	}

	cq := pg.callback.Query()
	if e := cq.Get("error"); e != "" {
		return TokenSet{}, fmt.Errorf("login: %w: authorization refused (%s)", ErrUnexpectedPage, sanitize(e, 64))
	}
	if cq.Get("state") != state {
		return TokenSet{}, fmt.Errorf("login: %w", ErrStateMismatch)
	}
	code := cq.Get("code")
	if code == "" {
		return TokenSet{}, fmt.Errorf("login: %w: redirect without a code", ErrUnexpectedPage)
	}
	answer, err := c.postToken(ctx, url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {c.ClientID},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {c.RedirectURI},
	})
	if err != nil {
		return TokenSet{}, fmt.Errorf("login: code exchange: %w", err)
	}
	set := *answer.set
	set.AccountURL = c.issuer()
	set.ClockOffset = s.offset
	if answer.dated {
		set.ClockOffset = answer.offset
	}
	return c.fit(set), nil
}

// decodeNext percent-decodes a login form's next field once when it is
// rendered encoded (as the Python SDK expects), and leaves a plain one as
// it is (as Django renders it): either way the result is the authorize path
// with its query.
func decodeNext(v string) string {
	if strings.Contains(v, "?") {
		return v
	}
	if d, err := url.QueryUnescape(v); err == nil {
		return d
	}
	return v
}

// fillPassword sets the email and password fields of a login form.
func fillPassword(f *Form, vals url.Values, in LoginInput) error {
	email := ""
	for _, fl := range f.Fields {
		if fl.Name == "" {
			continue
		}
		switch {
		case fl.Type == "password":
			vals.Set(fl.Name, in.Password)
		case email == "" && (fl.Type == "email" || fl.Name == "email" || fl.Name == "username" || fl.Name == "login"):
			email = fl.Name
		}
	}
	if email == "" {
		return errors.New("the login form has no email field")
	}
	vals.Set(email, in.Email)
	return nil
}

type formKind int

const (
	formPassword formKind = iota + 1
	formTOTP
)

var errNoForm = errors.New("page has no login or TOTP form")

// page is an HTML answer of the account server, or the redirect to the
// redirect URI that ends the dance.
type page struct {
	url      *url.URL
	forms    []Form
	callback *url.URL
}

// loginForm finds the one password form or the one TOTP form of the page.
func (p *page) loginForm() (*Form, formKind, error) {
	var found *Form
	var kind formKind
	for i := range p.forms {
		f := &p.forms[i]
		k := formKind(0)
		switch {
		case f.IsTOTP():
			k = formTOTP
		case f.HasPassword():
			k = formPassword
		default:
			continue
		}
		if found != nil {
			return nil, 0, errors.New("page has more than one login form")
		}
		found, kind = f, k
	}
	if found == nil {
		return nil, 0, errNoForm
	}
	return found, kind, nil
}

type loginSession struct {
	c        *Client
	hc       *http.Client
	origin   string // the account's origin as the Origin header gives it
	site     string // origin, normalised (originOf), to compare with
	callback *url.URL
	offset   time.Duration // the server's clock minus the local one, by the last answer's Date
}

// elsewhere says where u, off the account's origin, leads: to plain http
// on the account's host, or to another site.
func (s *loginSession) elsewhere(u *url.URL) string {
	if strings.EqualFold(u.Scheme, "http") && originOf(&url.URL{Scheme: "https", Host: u.Host}) == s.site {
		return "plain http"
	}
	if u.Host == "" { // javascript:, data:
		return "another site"
	}
	return "another site (" + sanitize(u.Host, 64) + ")"
}

// shownPath is u's path as messages show it: a redirect's, which the
// server chose, cut to printable characters and shortened.
func shownPath(u *url.URL) string { return sanitize(u.Path, 64) }

func (s *loginSession) isCallback(u *url.URL) bool {
	return originOf(u) == originOf(s.callback) && u.Path == s.callback.Path
}

// do sends a request and follows redirects on the account's origin until a
// page or the redirect URI. form, if not nil, is posted with a Referer of
// referer and an Origin of the account.
func (s *loginSession) do(ctx context.Context, method string, u *url.URL, form url.Values, referer *url.URL) (*page, error) {
	for hops := 0; ; hops++ {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		rctx, answered := traceAnswer(ctx)
		req, err := http.NewRequestWithContext(rctx, method, u.String(), body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", s.c.UserAgent)
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", s.origin)
			req.Header.Set("Referer", referer.String())
		}
		sent := s.c.now()
		resp, err := s.hc.Do(req)
		if err != nil {
			return nil, netError(method, u, err, answered())
		}
		if server, ok := serverTime(resp.Header, nil); ok {
			if d, ok := estimateOffset(server, midpoint(sent, s.c.now())); ok {
				s.offset = d
			}
		}
		s.c.debugf("%s %s → %d", method, shownPath(u), resp.StatusCode)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
			resp.Body.Close()
			next, err := u.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, fmt.Errorf("%w: bad redirect", ErrUnexpectedPage)
			}
			if s.isCallback(next) {
				return &page{url: u, callback: next}, nil
			}
			if originOf(next) != s.site {
				return nil, fmt.Errorf("%w: redirected to %s", ErrUnexpectedPage, s.elsewhere(next))
			}
			if hops >= maxRedirects {
				return nil, ErrTooManyRedirects
			}
			method, u, form = http.MethodGet, next, nil
			continue
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusForbidden && method == http.MethodPost:
			return nil, ErrCSRF
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			return nil, fmt.Errorf("%w: %s %s answered %d", ErrServer, method, shownPath(u), resp.StatusCode)
		case resp.StatusCode >= 400 && resp.StatusCode != http.StatusForbidden:
			return nil, fmt.Errorf("%w: %s %s answered %d", ErrRequestRefused, method, shownPath(u), resp.StatusCode)
		case resp.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("%w: %s %s answered %d", ErrUnexpectedPage, method, shownPath(u), resp.StatusCode)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBody+1))
		if err != nil {
			return nil, netError("reading "+method, u, err, false) // the connection failed
		}
		if len(b) > maxPageBody {
			return nil, fmt.Errorf("%w: page larger than %d bytes", ErrUnexpectedPage, maxPageBody)
		}
		forms, err := ParseForms(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnexpectedPage, err)
		}
		return &page{url: u, forms: forms}, nil
	}
}
