package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/akoutpost/akoutpost/proxy/session"
)

// claims are what a login yields about the user: the ID-token claims
// authentik issues for proxy providers, plus the raw tokens.
type claims struct {
	Sub               string       `json:"sub"`
	Exp               int64        `json:"exp"`
	Email             string       `json:"email"`
	EmailVerified     bool         `json:"email_verified"`
	Name              string       `json:"name"`
	PreferredUsername string       `json:"preferred_username"`
	Groups            []string     `json:"groups"`
	Entitlements      []string     `json:"entitlements"`
	SID               string       `json:"sid"`
	Proxy             *proxyClaims `json:"ak_proxy"`
	// RawToken is the token passed on in X-authentik-jwt.
	RawToken string `json:"raw_token,omitempty"`
	// RawIDToken is the ID token, the id_token_hint of sign-out.
	RawIDToken string `json:"raw_id_token,omitempty"`
}

// proxyClaims is the ak_proxy claim of authentik's proxy scope.
type proxyClaims struct {
	UserAttributes  map[string]any `json:"user_attributes"`
	BackendOverride string         `json:"backend_override"`
	HostHeader      string         `json:"host_header"`
	IsSuperuser     bool           `json:"is_superuser"`
}

// pendingLogin is the content of a login's state cookie.
type pendingLogin struct {
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
}

// loginState is the OAuth2 state parameter, encrypted and signed.
type loginState struct {
	Nonce    string `json:"n"`
	Redirect string `json:"r"`
}

// maxPendingLogins bounds the state cookies one browser accumulates.
const maxPendingLogins = 8

func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loadSession returns the claims of the request's session. stale reports a
// session cookie that no longer leads to a session (tampered, expired,
// ended, another provider's), which the caller clears.
// A store that cannot answer makes storeDown true: the user is not logged
// out, only not recognised now, so the cookie stays and the caller answers
// 503 rather than sending a logged-in user to log in again.
func (a *application) loadSession(r *http.Request) (c *claims, id string, stale, storeDown bool) {
	ck, err := r.Cookie(a.cookieName)
	if err != nil {
		return nil, "", false, false
	}
	if err := a.sessionCodec.Decode(a.cookieName, ck.Value, &id); err != nil || !session.ValidID(id) {
		return nil, "", true, false
	}
	s, err := a.p.store.Load(r.Context(), id)
	if errors.Is(err, session.ErrNotFound) {
		return nil, "", true, false
	}
	if err != nil {
		a.p.logger().Error("loading session", "provider", a.name, "error", err)
		return nil, "", false, true
	}
	if s.Provider != a.clientID || !a.p.now().Before(s.Expires) {
		return nil, "", true, false
	}
	var out claims
	if err := json.Unmarshal(s.Data, &out); err != nil {
		return nil, "", true, false
	}
	return &out, id, false, false
}

// saveSession stores c in a new session and returns its cookie.
func (a *application) saveSession(ctx context.Context, c *claims) (*http.Cookie, error) {
	now := a.p.now()
	expires := now.Add(a.validity)
	if c.Exp > 0 {
		if e := time.Unix(c.Exp, 0); e.Before(expires) {
			expires = e
		}
	}
	if !expires.After(now) {
		return nil, errors.New("token already expired")
	}
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	s := session.Session{ID: randomID(), Provider: a.clientID, Subject: c.Sub, SID: c.SID, Expires: expires, Data: data}
	if err := a.p.store.Save(ctx, s); err != nil {
		return nil, err
	}
	v, err := a.sessionCodec.Encode(a.cookieName, s.ID)
	if err != nil {
		return nil, err
	}
	ck := a.cookie(a.cookieName, v, expires.Sub(now))
	ck.Expires = expires
	return ck, nil
}

// cookie builds a cookie with this application's attributes: host-only or
// cookie_domain, Secure when the external host is https, never readable by
// scripts, Lax so it travels on the top-level redirect back from login.
func (a *application) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	secs := int(maxAge / time.Second)
	if maxAge > 0 && secs == 0 {
		secs = 1
	}
	if maxAge < 0 {
		secs = -1
	}
	return &http.Cookie{
		Name: name, Value: value, Path: "/", Domain: a.cookieDomain, MaxAge: secs,
		Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
}

func (a *application) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, a.cookie(name, "", -1))
}

func (a *application) stateCookieName(nonce string) string {
	if len(nonce) > 12 {
		nonce = nonce[:12]
	}
	return a.cookieName + "_login_" + nonce
}

// expireExcessStates clears state cookies beyond maxPendingLogins-1 so a
// new one fits; a browser that starts many logins and finishes none keeps
// its cookie header bounded.
func (a *application) expireExcessStates(w http.ResponseWriter, r *http.Request) {
	prefix := a.cookieName + "_login_"
	n := 0
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, prefix) {
			n++
			if n >= maxPendingLogins {
				a.clearCookie(w, c.Name)
			}
		}
	}
}
