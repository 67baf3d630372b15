package flow

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Session is a user's logged-in session with the core, the result of a
// successful run. Its requests carry the user's session cookie.
type Session struct {
	base   *url.URL
	client *http.Client

	mu     sync.Mutex
	cookie *http.Cookie // the last authentik_session cookie the core set
}

// Get fetches path (relative to /api/v3, such as "/core/users/me/") as the
// session's user and decodes the JSON answer into out. A non-2xx answer is
// an [*Error] carrying the status.
func (s *Session) Get(ctx context.Context, path string, query url.Values, out any) error {
	return s.do(ctx, http.MethodGet, path, query, nil, out)
}

// ID identifies the session the way the core's session-end message does:
// the hex SHA-256 of the session key. The key is the "sid" claim when the
// cookie is a JWT, else the cookie's value. Empty when no session cookie
// was set.
func (s *Session) ID() string {
	s.mu.Lock()
	c := s.cookie
	s.mu.Unlock()
	if c == nil || c.Value == "" {
		return ""
	}
	key := c.Value
	if sid := jwtSID(c.Value); sid != "" {
		key = sid
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Expires is when the session cookie expires; the zero time when the
// cookie has no expiry (a browser-session cookie) or none was set.
func (s *Session) Expires() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cookie == nil {
		return time.Time{}
	}
	if s.cookie.MaxAge > 0 {
		return time.Now().Add(time.Duration(s.cookie.MaxAge) * time.Second)
	}
	return s.cookie.Expires
}

// jwtSID reads the "sid" claim of an unverified JWT. The claim is only used
// to match a later session-end message, never to trust anything.
func jwtSID(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		SID string `json:"sid"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.SID
}

// sessionTransport adds the outpost headers and remembers the session
// cookie.
type sessionTransport struct {
	next        http.RoundTripper
	token       func() string
	userAgent   string
	remoteIP    string
	certificate string // the value of HeaderOutpostCertificate, if any
	session     *Session
}

func (t *sessionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if token := t.token(); token != "" {
		r.Header.Set(HeaderOutpostToken, token)
	}
	if t.userAgent != "" {
		r.Header.Set("User-Agent", t.userAgent)
	}
	if t.remoteIP != "" {
		r.Header.Set(HeaderRemoteIP, t.remoteIP)
	}
	if t.certificate != "" {
		r.Header.Set(HeaderOutpostCertificate, t.certificate)
	}
	resp, err := t.next.RoundTrip(r)
	if resp != nil {
		for _, c := range resp.Cookies() {
			if c.Name == SessionCookie {
				t.session.mu.Lock()
				t.session.cookie = c
				t.session.mu.Unlock()
			}
		}
	}
	return resp, err
}
