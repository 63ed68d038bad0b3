package authtest

import (
	"cmp"
	"crypto/rand"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

const csrfChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomChars returns n random characters of csrfChars.
func randomChars(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = csrfChars[int(b[i])%len(csrfChars)]
	}
	return string(b)
}

// maskCSRF gives the 64-character form token of a 32-character cookie
// secret, as Django's _mask_cipher_secret does.
func maskCSRF(secret string) string {
	mask := randomChars(32)
	out := make([]byte, 32)
	for i := range 32 {
		out[i] = csrfChars[(strings.IndexByte(csrfChars, secret[i])+strings.IndexByte(csrfChars, mask[i]))%len(csrfChars)]
	}
	return mask + string(out)
}

func unmaskCSRF(token string) (string, bool) {
	if len(token) != 64 {
		return "", false
	}
	mask, cipher := token[:32], token[32:]
	out := make([]byte, 32)
	for i := range 32 {
		m, c := strings.IndexByte(csrfChars, mask[i]), strings.IndexByte(csrfChars, cipher[i])
		if m < 0 || c < 0 {
			return "", false
		}
		out[i] = csrfChars[(c-m+len(csrfChars))%len(csrfChars)]
	}
	return string(out), true
}

// csrfSecret returns the request's csrftoken cookie, setting a new one when
// there is none.
func (s *Server) csrfSecret(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie("csrftoken"); err == nil && len(c.Value) == 32 {
		return c.Value
	}
	v := randomChars(32)
	http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: v, Path: "/", SameSite: http.SameSiteLaxMode, Secure: s.opts.TLS})
	return v
}

// checkCSRF does what Django's CsrfViewMiddleware does on a POST: Origin,
// then (for HTTPS) Referer, then the cookie and the form token.
func (s *Server) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	fail := func(reason string) bool {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		template.Must(template.New("").Parse(forbiddenPage)).Execute(w, reason)
		return false
	}
	// Django compares with the host the request was sent to (its Host
	// header), so http://localhost:PORT works as well as 127.0.0.1.
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	good := cmp.Or(s.opts.TrustedOrigin, scheme+"://"+r.Host)
	if o := r.Header.Get("Origin"); o != "" && o != good {
		return fail("Origin checking failed - " + o + " does not match any trusted origins.")
	}
	if ref := r.Header.Get("Referer"); ref != "" || r.TLS != nil {
		u, err := url.Parse(ref)
		if ref == "" {
			return fail("Referer checking failed - no Referer.")
		}
		if err != nil || u.Scheme+"://"+u.Host != good {
			return fail("Referer checking failed - does not match any trusted origins.")
		}
	}
	c, err := r.Cookie("csrftoken")
	if err != nil {
		return fail("CSRF cookie not set.")
	}
	got, ok := unmaskCSRF(r.PostForm.Get("csrfmiddlewaretoken"))
	if !ok || got != c.Value {
		return fail("CSRF token incorrect.")
	}
	return true
}

// sessionOf returns the request's session, if any.
func (s *Server) sessionOf(r *http.Request) *session {
	c, err := r.Cookie("sessionid")
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[c.Value]
}

func (s *Server) newSession(w http.ResponseWriter, u *userState, otpPending bool) {
	id := randomChars(32)
	s.mu.Lock()
	s.sessions[id] = &session{user: u, otpPending: otpPending}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.opts.TLS})
}

// djangoQuote percent-encodes like Python's urllib.parse.quote(s, safe="/"),
// which Django's redirect_to_login uses for next.
func djangoQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}

// nextOf is Django's LoginView redirect target: POST next, else GET next,
// kept only when it is a local path.
func nextOf(r *http.Request) string {
	next := r.PostForm.Get("next")
	if next == "" {
		next = r.URL.Query().Get("next")
	}
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	return next
}

// authorize is django-oauth-toolkit's AuthorizationView for a client whose
// authorization is skipped (Prusa Connect).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.opts.ClientID {
		errorPage(w, http.StatusBadRequest, "Invalid client_id parameter value.")
		return
	}
	if ru := q.Get("redirect_uri"); ru != "" && ru != s.opts.RedirectURI {
		errorPage(w, http.StatusBadRequest, "Mismatching redirect URI.")
		return
	}
	sess := s.sessionOf(r)
	if sess == nil || sess.otpPending {
		s.redirect(w, r, "/login/?next="+djangoQuote(r.URL.RequestURI()))
		return
	}
	s.authorizeFor(w, q, sess.user)
}

// authorizeFor answers an authorize request of a logged-in user: a redirect
// to the redirect URI with a code, or with an error.
func (s *Server) authorizeFor(w http.ResponseWriter, q url.Values, u *userState) {
	back := url.Values{}
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	switch {
	case q.Get("response_type") != "code":
		back.Set("error", "unsupported_response_type")
	case q.Get("code_challenge") == "":
		back.Set("error", "invalid_request")
		back.Set("error_description", "Code challenge required.")
	case q.Get("code_challenge_method") != "S256":
		back.Set("error", "invalid_request")
		back.Set("error_description", "Transform algorithm not supported.")
	default:
		code := randomChars(30)
		s.mu.Lock()
		s.codes[code] = &authCode{user: u, challenge: q.Get("code_challenge"), redirectURI: s.opts.RedirectURI, expires: s.Now().Add(s.opts.CodeTTL)}
		s.mu.Unlock()
		back.Set("code", code)
	}
	w.Header().Set("Location", s.opts.RedirectURI+"?"+back.Encode())
	w.WriteHeader(http.StatusFound)
}

// afterLogin sends a logged-in user on: to next, or (DirectCallback)
// straight to the redirect URI when next is an authorize request.
func (s *Server) afterLogin(w http.ResponseWriter, r *http.Request, next string, u *userState) {
	if s.opts.DirectCallback {
		if nu, err := url.Parse(next); err == nil && nu.Path == "/o/authorize/" {
			q := nu.Query()
			if q.Get("client_id") == s.opts.ClientID {
				s.authorizeFor(w, q, u)
				return
			}
		}
	}
	s.redirect(w, r, next)
}

type formData struct {
	CSRF      string
	Next      string
	WithNext  bool
	Email     string
	Error     string
	RecaptKey string
}

func (s *Server) formData(w http.ResponseWriter, r *http.Request, next string) formData {
	d := formData{CSRF: maskCSRF(s.csrfSecret(w, r)), WithNext: s.opts.Next != NextOmitted, Next: next}
	if s.opts.Next == NextEncoded {
		d.Next = djangoQuote(next)
	}
	return d
}

// login is Django's LoginView with the account's email form.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	next := nextOf(r)
	if s.opts.RedirectLoop {
		s.redirect(w, r, next)
		return
	}
	switch r.Method {
	case http.MethodGet:
		d := s.formData(w, r, next)
		render(w, http.StatusOK, loginPage, d)
	case http.MethodPost:
		if !s.checkCSRF(w, r) {
			return
		}
		s.mu.Lock()
		u := s.users[strings.ToLower(r.PostForm.Get("email"))]
		s.mu.Unlock()
		if u == nil || r.PostForm.Get("password") != u.Password {
			d := s.formData(w, r, next)
			d.Email = r.PostForm.Get("email")
			d.Error = "Please enter a correct email and password. Note that both fields may be case-sensitive."
			render(w, http.StatusOK, loginPage, d)
			return
		}
		if u.TOTPSecret != "" {
			s.newSession(w, u, true)
			s.redirect(w, r, "/login/totp/?next="+djangoQuote(next))
			return
		}
		s.newSession(w, u, false)
		s.afterLogin(w, r, next, u)
	default:
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// totp is the second step for accounts with 2FA, like django-otp's
// OTPTokenForm: a code of the current time step ±1, never of a step
// already used.
func (s *Server) totp(w http.ResponseWriter, r *http.Request) {
	next := nextOf(r)
	sess := s.sessionOf(r)
	if sess == nil || !sess.otpPending {
		s.redirect(w, r, "/login/?next="+djangoQuote(next))
		return
	}
	switch r.Method {
	case http.MethodGet:
		render(w, http.StatusOK, totpPage, s.formData(w, r, next))
	case http.MethodPost:
		if !s.checkCSRF(w, r) {
			return
		}
		if !s.acceptTOTP(sess.user, strings.TrimSpace(r.PostForm.Get("otp_token"))) {
			d := s.formData(w, r, next)
			d.Error = "Invalid token. Please make sure you have entered it correctly."
			render(w, http.StatusOK, totpPage, d)
			return
		}
		s.mu.Lock()
		sess.otpPending = false
		s.mu.Unlock()
		s.afterLogin(w, r, next, sess.user)
	default:
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (s *Server) acceptTOTP(u *userState, code string) bool {
	key, err := auth.DecodeTOTPSecret(u.TOTPSecret)
	if err != nil || len(code) != auth.TOTPDigits {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := int64(auth.TOTPStep(s.Now()))
	for step := now - 1; step <= now+1; step++ {
		if step > u.lastStep && auth.TOTP(key, uint64(step), auth.TOTPDigits) == code {
			u.lastStep = step
			return true
		}
	}
	return false
}

func render(w http.ResponseWriter, status int, t *template.Template, d any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate, private")
	w.WriteHeader(status)
	t.Execute(w, d)
}

func errorPage(w http.ResponseWriter, status int, msg string) {
	render(w, status, template.Must(template.New("").Parse(`<!DOCTYPE html><html><head><title>Error | Prusa Account</title></head><body><h1>Error: {{.}}</h1></body></html>`)), msg)
}

const forbiddenPage = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>403 Forbidden</title></head>
<body><h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. Request aborted.</p><p>{{.}}</p></body></html>`

var loginPage = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in | Prusa Account</title>
<link rel="stylesheet" href="/static/css/main.css">
<script src="https://www.google.com/recaptcha/api.js?render=explicit" async defer></script>
</head>
<body>
<nav class="navbar"><a class="navbar-brand" href="/">Prusa Account</a></nav>
<main class="container">
<h1>Log in</h1>
<form id="recaptcha_form" method="post">
<input type="hidden" name="csrfmiddlewaretoken" value="{{.CSRF}}">
{{if .WithNext}}<input type="hidden" name="next" value="{{.Next}}">
{{end}}<div class="mb-3">
<label for="id_email" class="form-label">E-mail</label>
<input type="email" name="email" class="form-control{{if .Error}} is-invalid{{end}}" id="id_email" autocomplete="email" maxlength="254" required value="{{.Email}}">
</div>
<div class="mb-3">
<label for="id_password" class="form-label">Password</label>
<input type="password" name="password" class="form-control{{if .Error}} is-invalid{{end}}" id="id_password" autocomplete="current-password" required>
{{if .Error}}<div class="invalid-feedback">{{.Error}}</div>{{end}}
</div>
<div class="form-check"><input type="checkbox" name="remember" id="id_remember" class="form-check-input"><label for="id_remember">Remember me</label></div>
<input type="hidden" name="g-recaptcha-response" id="g-recaptcha-response" value="">
<button type="submit" class="btn btn-primary g-recaptcha" data-sitekey="6Lc-emulator">Log in</button>
</form>
<form method="get" action="/login/google/"><button type="submit" class="btn btn-outline">Sign in with Google</button></form>
<p><a href="/password/reset/">Forgot password?</a> · <a href="/register/">Create account</a></p>
</main>
</body>
</html>
`))

var totpPage = template.Must(template.New("totp").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Two-factor authentication | Prusa Account</title>
</head>
<body>
<main class="container">
<h1>Two-factor authentication</h1>
<p>Enter the code from your authenticator app, or one of your backup codes.</p>
<form method="post" class="otp-form">
<input type="hidden" name="csrfmiddlewaretoken" value="{{.CSRF}}">
{{if .WithNext}}<input type="hidden" name="next" value="{{.Next}}">
{{end}}<input type="text" name="otp_token" id="id_otp_token" class="form-control{{if .Error}} is-invalid{{end}}" autocomplete="one-time-code" inputmode="numeric" maxlength="6" required autofocus>
{{if .Error}}<div class="invalid-feedback">{{.Error}}</div>{{end}}
<button type="submit" class="btn btn-primary">Verify</button>
</form>
</main>
</body>
</html>
`))
