package proxy

import (
	"encoding/base64"
	"net/http"
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

// stripOwnCookies removes the outpost's session and state cookies from a
// request before it goes upstream: the upstream has no use for them, and
// an upstream that logs or reflects cookies must not leak them.
func (a *application) stripOwnCookies(r *http.Request) {
	cookies := r.Cookies()
	if len(cookies) == 0 {
		return
	}
	kept := make([]string, 0, len(cookies))
	removed := false
	for _, c := range cookies {
		if c.Name == a.cookieName || strings.HasPrefix(c.Name, a.cookieName+"_login_") {
			removed = true
			continue
		}
		kept = append(kept, c.Name+"="+c.Value)
	}
	if !removed {
		return
	}
	r.Header.Del("Cookie")
	if len(kept) > 0 {
		r.Header.Set("Cookie", strings.Join(kept, "; "))
	}
}
