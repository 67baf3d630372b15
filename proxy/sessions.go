package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
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
	// RawIDToken is the ID token of the login, when there was one. It is
	// not kept in the session: sign-out passes RawToken as id_token_hint, as
	// authentik's own outpost does, and a second copy of the user's claims
	// per session would double the session's size.
	RawIDToken string `json:"-"`
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
	value, ok := cookieValue(r, a.cookieName)
	if !ok {
		return nil, "", false, false
	}
	return a.decodeSession(r.Context(), value)
}

// decodeSession is loadSession for the session cookie's value.
func (a *application) decodeSession(ctx context.Context, value string) (c *claims, id string, stale, storeDown bool) {
	if err := a.sessionCodec.Decode(a.cookieName, value, &id); err != nil || !session.ValidID(id) {
		return nil, "", true, false
	}
	s, err := a.p.store.Load(ctx, id)
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
	out, err := decodeClaims(s.Data, a.clientID)
	if err != nil {
		return nil, "", true, false
	}
	return out, id, false, false
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
	data, err := encodeClaims(c, a.clientID)
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

// Session payloads come in three forms. A login's claims are the payload
// of the JWT in RawToken, so the session keeps only that token, in binary:
// a form byte, the header's length and content, the payload's length and
// content, then the raw signature. In packedForm header and payload are
// their JSON through [packDict.pack] (a session of about 400 bytes where
// the token is 1.3 KB); in tokenForm, for JSON pack cannot take, the header
// is its base64 text and the payload its JSON. Claims that are not their
// token's payload (introspected tokens, hand-built tests) are kept as JSON,
// which is also how older sessions were stored; JSON never starts with a
// form byte.
const (
	tokenForm  = 1
	packedForm = 2
)

// encodeClaims returns the session payload of c for the provider whose
// client ID is clientID.
func encodeClaims(c *claims, clientID string) ([]byte, error) {
	if b, ok := encodeToken(c, packDict{extra: clientID}); ok {
		return b, nil
	}
	return json.Marshal(c)
}

// encodeToken packs c.RawToken when c is exactly its decoded payload and
// every segment's base64 re-encodes to the same text, so loading gives back
// the very token authentik signed.
func encodeToken(c *claims, d packDict) ([]byte, bool) {
	parts := splitJWT(c.RawToken)
	if parts == nil {
		return nil, false
	}
	var seg [3][]byte
	enc := base64.RawURLEncoding.Strict()
	for i, p := range parts {
		b, err := enc.DecodeString(p)
		if err != nil || enc.EncodeToString(b) != p {
			return nil, false
		}
		seg[i] = b
	}
	var back claims
	if json.Unmarshal(seg[1], &back) != nil {
		return nil, false
	}
	back.RawToken, back.RawIDToken = c.RawToken, c.RawIDToken
	if !reflect.DeepEqual(&back, c) {
		return nil, false
	}
	form, header, payload := byte(packedForm), seg[0], seg[1]
	ph, ok1 := d.pack(header)
	pp, ok2 := d.pack(payload)
	if ok1 && ok2 {
		header, payload = ph, pp
	} else {
		form, header = tokenForm, []byte(parts[0])
	}
	out := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(header)+len(payload)+len(seg[2]))
	out = append(out, form)
	out = binary.AppendUvarint(out, uint64(len(header)))
	out = append(out, header...)
	out = binary.AppendUvarint(out, uint64(len(payload)))
	out = append(out, payload...)
	out = append(out, seg[2]...)
	// What is stored must give back the token: check once here rather
	// than find out at every request.
	if got, err := decodeClaims(out, d.extra); err != nil || got.RawToken != c.RawToken {
		return nil, false
	}
	return out, true
}

// decodeClaims reverses encodeClaims.
func decodeClaims(data []byte, clientID string) (*claims, error) {
	var c claims
	if len(data) == 0 || (data[0] != tokenForm && data[0] != packedForm) {
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("decoding session claims: %w", err)
		}
		return &c, nil
	}
	header, rest, ok := cutSized(data[1:])
	if !ok {
		return nil, errors.New("decoding session token: truncated header")
	}
	payload, sig, ok := cutSized(rest)
	if !ok {
		return nil, errors.New("decoding session token: truncated payload")
	}
	enc := base64.RawURLEncoding
	if data[0] == packedForm {
		d := packDict{extra: clientID}
		h, err := d.unpack(header)
		if err != nil {
			return nil, fmt.Errorf("decoding session token header: %w", err)
		}
		header = enc.AppendEncode(nil, h)
		if payload, err = d.unpack(payload); err != nil {
			return nil, fmt.Errorf("decoding session token payload: %w", err)
		}
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("decoding session token payload: %w", err)
	}
	var tok strings.Builder
	tok.Grow(len(header) + 2 + enc.EncodedLen(len(payload)) + enc.EncodedLen(len(sig)))
	tok.Write(header)
	tok.WriteByte('.')
	writeBase64(&tok, payload)
	tok.WriteByte('.')
	writeBase64(&tok, sig)
	c.RawToken = tok.String()
	return &c, nil
}

// writeBase64 writes src to b in unpadded base64url through a small buffer,
// so a token is built in one allocation: this runs on every request.
func writeBase64(b *strings.Builder, src []byte) {
	var buf [64]byte
	for len(src) > 0 {
		n := min(len(src), 48) // whole 3-byte groups: chunks join seamlessly
		base64.RawURLEncoding.Encode(buf[:], src[:n])
		b.Write(buf[:base64.RawURLEncoding.EncodedLen(n)])
		src = src[n:]
	}
}

// cutSized splits a uvarint-length-prefixed field off the front of b.
func cutSized(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// splitJWT returns the three segments of a compact JWS, or nil.
func splitJWT(raw string) []string {
	parts := strings.SplitN(raw, ".", 4)
	if len(parts) != 3 {
		return nil
	}
	return parts
}
