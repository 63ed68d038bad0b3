package authtest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prusa-credential-helper/prusa-credential-helper/auth"
)

// Scope is the scope the real server grants Prusa Connect.
const Scope = "basic_info connect user_operations email_lists openid"

// Issuer is the iss claim of identity tokens.
const Issuer = "https://account.prusa3d.com"

// token is django-oauth-toolkit's TokenView.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprint(w, `{"detail": "Method \"`+r.Method+`\" not allowed."}`)
		return
	}
	f, ok := s.nextFault()
	if ok && f.Pass && !f.AfterProcessing {
		if !f.wait(r) {
			return
		}
		ok = false
	}
	if ok && !f.AfterProcessing {
		f.apply(w, r, nil)
		return
	}
	status, body := s.grant(r)
	if ok && f.Pass { // carried out, then answered late
		if !f.wait(r) {
			return
		}
		ok = false
	}
	if ok {
		f.apply(w, r, body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	w.Write(body)
}

// oauthError is an oauthlib error body, with its spacing.
func oauthError(code, desc string) []byte {
	if desc == "" {
		return []byte(`{"error": "` + code + `"}`)
	}
	return []byte(`{"error": "` + code + `", "error_description": "` + desc + `"}`)
}

// grant processes a token request and returns the status and body of the
// answer.
func (s *Server) grant(r *http.Request) (int, []byte) {
	form := r.PostForm
	if form.Get("client_id") != s.opts.ClientID {
		return http.StatusUnauthorized, oauthError("invalid_client", "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	switch form.Get("grant_type") {
	case "authorization_code":
		c := s.codes[form.Get("code")]
		if c == nil || now.After(c.expires) {
			delete(s.codes, form.Get("code"))
			return http.StatusBadRequest, oauthError("invalid_grant", "")
		}
		if form.Get("code_verifier") == "" {
			return http.StatusBadRequest, oauthError("invalid_request", "Code verifier required.")
		}
		if form.Get("redirect_uri") != c.redirectURI {
			return http.StatusBadRequest, oauthError("invalid_request", "Mismatching redirect URI.")
		}
		delete(s.codes, form.Get("code")) // single use, even when the verifier is wrong
		if auth.S256Challenge(form.Get("code_verifier")) != c.challenge {
			return http.StatusBadRequest, oauthError("invalid_grant", "")
		}
		ttl := s.opts.AccessTTL
		if s.opts.FirstAccessTTL != 0 {
			ttl = s.opts.FirstAccessTTL
		}
		return http.StatusOK, s.issueLocked(c.user, newUUID(), ttl, true, true).json()
	case "refresh_token":
		rt := form.Get("refresh_token")
		g := s.refresh[rt]
		if rt == "" {
			return http.StatusBadRequest, oauthError("invalid_request", "Missing refresh token parameter.")
		}
		if g == nil || g.spent || now.After(g.expires) {
			return http.StatusBadRequest, oauthError("invalid_grant", "")
		}
		if s.opts.NoRotation {
			return http.StatusOK, s.issueLocked(g.user, g.sid, s.opts.AccessTTL, false, !s.opts.OmitIDOnRefresh).json()
		}
		g.spent = true
		return http.StatusOK, s.issueLocked(g.user, g.sid, s.opts.AccessTTL, true, !s.opts.OmitIDOnRefresh).json()
	case "":
		return http.StatusBadRequest, oauthError("unsupported_grant_type", "")
	default:
		return http.StatusBadRequest, oauthError("unsupported_grant_type", "")
	}
}

// answer is a token endpoint answer, written with the real server's field
// order and spacing.
type answer struct {
	access, refresh, id string
	expiresIn           int
	sid                 string
}

func (a answer) json() []byte {
	var b bytes.Buffer
	q := func(s string) string { v, _ := json.Marshal(s); return string(v) }
	fmt.Fprintf(&b, `{"access_token": %s, "expires_in": %d, "token_type": "Bearer", "scope": %s`, q(a.access), a.expiresIn, q(Scope))
	if a.refresh != "" {
		fmt.Fprintf(&b, `, "refresh_token": %s`, q(a.refresh))
	}
	fmt.Fprintf(&b, `, "shared_session_key": %s`, q(a.sid))
	if a.id != "" {
		fmt.Fprintf(&b, `, "id_token": %s`, q(a.id))
	}
	b.WriteString("}")
	return b.Bytes()
}

// issueLocked mints tokens for u in session sid. s.mu must be held.
func (s *Server) issueLocked(u *userState, sid string, accessTTL time.Duration, withRefresh, withID bool) answer {
	now := s.Now()
	a := answer{sid: sid, expiresIn: int(accessTTL / time.Second)}
	sub := any(strconv.Itoa(u.ID))
	if s.opts.NumericSub {
		sub = u.ID
	}
	a.access = s.jwt(map[string]any{
		"jti": newJTI(), "sub": sub, "exp": s.exp(now.Add(accessTTL)), "sid": sid,
		"app": "connect", "type": auth.TypeAccess, "connect_id": strconv.Itoa(100000 + u.ID%100000),
	})
	s.access[a.access] = &grant{user: u, sid: sid, expires: now.Add(accessTTL)}
	if withRefresh {
		a.refresh = s.jwt(map[string]any{
			"jti": newJTI(), "sub": sub, "exp": s.exp(now.Add(s.opts.RefreshTTL)), "sid": sid,
			"app": "connect", "type": auth.TypeRefresh,
		})
		s.refresh[a.refresh] = &grant{user: u, sid: sid, expires: now.Add(s.opts.RefreshTTL)}
	}
	if withID {
		a.id = s.jwt(map[string]any{
			"jti": newJTI(), "sub": sub, "exp": s.exp(now.Add(accessTTL)),
			"aud": s.opts.ClientID, "iss": Issuer, "user": userClaim(u),
		})
	}
	return a
}

func (s *Server) exp(t time.Time) any {
	if s.opts.FloatExp {
		return float64(t.UnixNano()/1e3) / 1e6 // microseconds, as Python's time.time()
	}
	return t.Unix()
}

// userClaim is the large "user" claim of identity tokens.
func userClaim(u *userState) map[string]any {
	first, last := u.FirstName, u.LastName
	if first == "" {
		first, last = "Josef", "Průša"
	}
	nick := strings.ToLower(strings.SplitN(u.Email, "@", 2)[0])
	avatar := "https://media.printables.com/media/avatars/" + strconv.Itoa(u.ID) + "/avatar_"
	return map[string]any{
		"id":              u.ID,
		"email":           u.Email,
		"language":        "en",
		"first_name":      first,
		"last_name":       last,
		"public_username": nick,
		"avatar":          avatar + "large.png",
		"avatar_small":    avatar + "small.png",
		"avatar_large":    avatar + "large.png",
		"external_service_ids": map[string]any{
			"printables":     strconv.Itoa(u.ID + 7000000),
			"prusa_connect":  strconv.Itoa(100000 + u.ID%100000),
			"prusa_eshop":    strconv.Itoa(u.ID + 2000000),
			"prusa_forum":    strconv.Itoa(u.ID + 300000),
			"prusa_academy":  strconv.Itoa(u.ID + 40000),
			"prusa_helpdesk": strconv.Itoa(u.ID + 5000),
		},
		"otp_enabled": u.TOTPSecret != "",
		"is_employee": false,
		"is_staff":    false,
		"providers":   []string{"password"},
		"department":  nil,
		"custom_data": map[string]any{
			"newsletter":          map[string]any{"printables": true, "prusa_eshop": false, "prusa_research": true},
			"preferred_currency":  "EUR",
			"preferred_units":     "metric",
			"terms_accepted_at":   "2021-03-14T15:09:26.535897+00:00",
			"privacy_accepted_at": "2021-03-14T15:09:26.535897+00:00",
			"registration_source": "prusa_connect",
			"shipping_country":    "CZ",
			"onboarding":          map[string]any{"connect": "finished", "printables": "finished", "slicer": "skipped"},
		},
	}
}

// jwt encodes claims as an RS256-style JWT: a real header, the claims, and
// 256 bytes of signature (the size of an RSA-2048 one) derived from them.
func (s *Server) jwt(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"emulator-2026","typ":"JWT"}`))
	c, _ := json.Marshal(claims)
	in := h + "." + base64.RawURLEncoding.EncodeToString(c)
	sig := make([]byte, 0, 256)
	for i := byte(0); len(sig) < 256; i++ {
		sum := sha256.Sum256(append([]byte(in), i))
		sig = append(sig, sum[:]...)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig[:256])
}

func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// me is /api/v1/me/: 200 for an access token the server issued that has
// not expired.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"detail": "Authentication credentials were not provided."}`)
		return
	}
	tok := strings.TrimPrefix(h, "Bearer ")
	s.mu.Lock()
	g := s.access[tok]
	valid := g != nil && s.Now().Before(g.expires)
	s.mu.Unlock()
	if !valid {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"detail": "Invalid token."}`)
		return
	}
	body, _ := json.Marshal(map[string]any{
		"id": g.user.ID, "public_username": strings.SplitN(g.user.Email, "@", 2)[0],
		"avatar": "https://media.printables.com/media/avatars/" + strconv.Itoa(g.user.ID) + "/avatar_large.png",
	})
	w.Write(body)
}
