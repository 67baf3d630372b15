package proxy

import (
	"encoding/base64"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// identityPrefix is the canonical prefix of authentik's identity headers.
const identityPrefix = "X-Authentik-"

// identityHeaders returns the headers that tell an upstream who the user
// is, with authentik's names and values. Every header is present, empty
// when the claim is, so a reverse proxy copying them always overwrites a
// client's copy.
func (a *application) identityHeaders(c *claims) http.Header {
	h := make(http.Header, 16)
	h.Set("X-authentik-username", c.PreferredUsername)
	h.Set("X-authentik-groups", strings.Join(c.Groups, "|"))
	h.Set("X-authentik-entitlements", strings.Join(c.Entitlements, "|"))
	h.Set("X-authentik-email", c.Email)
	h.Set("X-authentik-name", c.Name)
	h.Set("X-authentik-uid", c.Sub)
	h.Set("X-authentik-jwt", c.RawToken)
	h.Set("X-authentik-meta-jwks", a.jwksURL)
	h.Set("X-authentik-meta-outpost", a.outpostName)
	h.Set("X-authentik-meta-provider", a.name)
	h.Set("X-authentik-meta-app", a.slug)
	h.Set("X-authentik-meta-version", "goauthentik.io/outpost/"+a.version)
	if c.Proxy == nil {
		return h
	}
	attrs := c.Proxy.UserAttributes
	if extra, ok := attrs["additionalHeaders"].(map[string]any); ok {
		for k, v := range extra {
			if !validHeaderName(k) {
				continue
			}
			h.Set(k, headerValue(v))
		}
	}
	if a.basicAuth {
		pass, _ := attrs[a.basicPassAttr].(string)
		if pass != "" {
			user, ok := attrs[a.basicUserAttr].(string)
			if !ok {
				user = c.Email
			}
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
		}
	}
	return h
}

// headerValue renders an additionalHeaders value. authentik's outpost
// turns JSON numbers and booleans into empty strings; they are rendered
// here as written.
func headerValue(v any) string {
	switch v := v.(type) {
	case string:
		return sanitizeValue(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	default:
		return ""
	}
}

func sanitizeValue(v string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return -1
		}
		return r
	}, v)
}

func validHeaderName(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	// A user attribute must not forge the outpost's own headers.
	return !strings.HasPrefix(http.CanonicalHeaderKey(k), identityPrefix)
}

// stripClientIdentity removes every header a client could use to pose as
// an authenticated user: X-authentik-* in any spelling, and every header
// with an underscore, which nginx, CGI and others fold into a dash
// (X_authentik_username). It runs on every request, authenticated or not.
func stripClientIdentity(h http.Header) {
	const prefix = "x-authentik-"
	for k := range h {
		// EqualFold on the prefix, not ToLower of the key: this runs for
		// every header of every request and must not allocate.
		if len(k) >= len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) || strings.Contains(k, "_") {
			delete(h, k)
		}
	}
}

// identity is an authenticated user as the requests of one login use it:
// the claims and everything made from them, built once (per session for
// session cookies) and shared by concurrent requests. Read only.
type identity struct {
	c *claims
	// headers is identityHeaders(c), what forward-auth answers carry.
	headers http.Header
	// upstream is headers without the names the reverse proxy removes or
	// sets itself (hop-by-hop and forwarding headers), for proxy mode.
	upstream http.Header
	// backend is the user's backend_override, when set and usable, and
	// hostHeader the user's host_header, when set and valid.
	backend    *url.URL
	hostHeader string
}

func (a *application) newIdentity(c *claims) *identity {
	id := &identity{c: c, headers: a.identityHeaders(c)}
	id.upstream = make(http.Header, len(id.headers))
	for k, v := range id.headers {
		if !reverseProxyDrops(k) {
			id.upstream[k] = v
		}
	}
	if c.Proxy != nil {
		if c.Proxy.BackendOverride != "" {
			if o, err := parseHTTPURL(c.Proxy.BackendOverride); err == nil {
				id.backend = o
			}
		}
		if c.Proxy.HostHeader != "" && validHost(c.Proxy.HostHeader) {
			id.hostHeader = c.Proxy.HostHeader
		}
	}
	return id
}

// reverseProxyDrops reports whether httputil.ReverseProxy removes a
// (canonical) header name from the request it sends, or sets it itself:
// an identity header of that name, from additionalHeaders, never reached
// the upstream.
func reverseProxyDrops(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// maxCookieScan is the number of cookies in a request up to which
// cookieValue parses the header itself; beyond it, (*http.Request).Cookie
// applies net/http's own limit (GODEBUG httpcookiemaxnum, 3,000 by
// default).
const maxCookieScan = 1000

// cookieValue returns the value of the request's first cookie called name,
// as (*http.Request).Cookie finds it, but without allocating: this runs
// for every request. name must be a valid cookie name.
func cookieValue(r *http.Request, name string) (string, bool) {
	lines := r.Header["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxCookieScan {
		ck, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return ck.Value, true
	}
	var value string
	found := false
	for _, line := range lines {
		cookieParts(line, func(_, k, v string) bool {
			if k != name {
				return true
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if !validCookieValue(v) {
				return true
			}
			value, found = v, true
			return false
		})
		if found {
			return value, true
		}
	}
	return "", false
}

// cookieParts calls f with each non-empty part of a Cookie header line,
// trimmed, with its trimmed name and its value as sent, until f returns
// false.
func cookieParts(line string, f func(part, name, value string) bool) {
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		part = textproto.TrimString(part)
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		if !f(part, textproto.TrimString(name), value) {
			return
		}
	}
}

// validCookieValue is net/http's check of a (quote-stripped) cookie value.
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

// stripOwnCookies removes the outpost's session and state cookies from a
// request before it goes upstream: the upstream has no use for them, and
// an upstream that logs or reflects cookies must not leak them. Every
// cookie with one of those names goes, well-formed or not; the others are
// passed on as the client sent them.
func (a *application) stripOwnCookies(r *http.Request) {
	lines := r.Header["Cookie"]
	own := false
	for _, line := range lines {
		cookieParts(line, func(_, name, _ string) bool { own = a.ownCookie(name); return !own })
		if own {
			break
		}
	}
	if !own {
		return
	}
	var kept strings.Builder
	for _, line := range lines {
		cookieParts(line, func(part, name, _ string) bool {
			if !a.ownCookie(name) {
				if kept.Len() > 0 {
					kept.WriteString("; ")
				}
				kept.WriteString(part)
			}
			return true
		})
	}
	if kept.Len() == 0 {
		r.Header.Del("Cookie")
		return
	}
	r.Header.Set("Cookie", kept.String())
}

// ownCookie reports whether a cookie name is the session cookie or one of
// the login state cookies (name_login_...).
func (a *application) ownCookie(name string) bool {
	return name == a.cookieName ||
		strings.HasPrefix(name, a.cookieName) && strings.HasPrefix(name[len(a.cookieName):], "_login_")
}
