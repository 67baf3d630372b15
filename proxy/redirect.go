package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// checkRedirect validates a post-login target and returns it absolute.
// Accepted: a path on the external host ("/x"), or an absolute http(s) URL
// whose host is the external host (proxy, forward_single) or falls under
// the cookie domain on a dot boundary (forward_domain). Everything else is
// refused, so neither rd, nor the state, nor X-Forwarded-* can send a
// browser to another site.
func (a *application) checkRedirect(raw string) (string, bool) {
	if raw == "" || len(raw) > 4096 {
		return "", false
	}
	for _, c := range raw {
		// Browsers treat "\" as "/" and ignore tabs and newlines, which
		// turns "/\evil.com" or "/\t/evil.com" into another host.
		if c == '\\' || c < 0x20 || c == 0x7f {
			return "", false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return "", false
	}
	if u.Scheme == "" && u.Host == "" {
		if !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") {
			return "", false
		}
		return a.external.Scheme + "://" + a.external.Host + raw, true
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", false
	}
	if !a.hostAllowed(u.Host) {
		return "", false
	}
	return u.String(), true
}

// hostAllowed reports whether host (with optional port) may be redirected
// to or served for this application.
func (a *application) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	if host == a.external.Host {
		return true
	}
	if a.mode != modeForwardDomain {
		return false
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	if name == a.external.Hostname() {
		return true
	}
	return underDomain(name, a.domainSuffix())
}

// underDomain reports whether name is domain or a subdomain of it. The dot
// boundary matters: "evilexample.com" is not under "example.com" (authentik
// compares plain string suffixes).
func underDomain(name, domain string) bool {
	if domain == "" || name == "" {
		return false
	}
	return name == domain || strings.HasSuffix(name, "."+domain)
}

// trusted reports whether r's peer may set X-Forwarded-* headers.
func (p *Provider) trusted(r *http.Request) bool {
	if p.cfg.TrustedProxies == nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, pfx := range p.cfg.TrustedProxies {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// firstValue returns the first element of a comma-separated header value
// (proxies append to X-Forwarded-* lists), trimmed.
func firstValue(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// requestHost is the host a request is for: X-Forwarded-Host from a trusted
// peer, else the host of its X-Original-URL, else Host; lower case, port
// kept. The documented nginx snippet sets Host to $host, which drops the
// port, but X-Original-URL to $http_host, which keeps it: without the
// second, an external host with a port is never found behind nginx.
func (p *Provider) requestHost(r *http.Request) string {
	if p.trusted(r) {
		if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" && validHost(h) {
			return strings.ToLower(h)
		}
		if raw := r.Header.Get("X-Original-URL"); raw != "" {
			if u, err := url.Parse(raw); err == nil && u.Host != "" && validHost(u.Host) {
				return strings.ToLower(u.Host)
			}
		}
	}
	return strings.ToLower(r.Host)
}

// validHost accepts host[:port] made of the characters a DNS name, an IPv4
// or a bracketed IPv6 address with a port may contain.
func validHost(h string) bool {
	if h == "" || len(h) > 300 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// forwardedURL builds the original request's URL from Traefik's and
// Caddy's X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri. A
// missing or unusable header is an error: the reverse proxy is
// misconfigured.
func forwardedURL(h http.Header, fallbackHost string) (*url.URL, bool) {
	proto := strings.ToLower(firstValue(h.Get("X-Forwarded-Proto")))
	if proto != "http" && proto != "https" {
		return nil, false
	}
	host := firstValue(h.Get("X-Forwarded-Host"))
	if host == "" {
		host = fallbackHost
	}
	if !validHost(host) {
		return nil, false
	}
	uri := h.Get("X-Forwarded-Uri")
	if uri == "" {
		uri = "/"
	}
	return buildURL(proto, host, uri)
}

// buildURL joins scheme, host and a request URI (path and query) without
// cleaning the path.
func buildURL(scheme, host, uri string) (*url.URL, bool) {
	if !strings.HasPrefix(uri, "/") {
		return nil, false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return nil, false
	}
	u.Scheme = scheme
	u.Host = strings.ToLower(host)
	return u, true
}

// isScriptRequest reports whether a request comes from a script rather than
// a page navigation. Such requests get 401: a redirect to a login page is
// useless to them and shows up as a CORS error (authentik #5603, #6576).
func isScriptRequest(r *http.Request) bool {
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") || r.Header.Get("Upgrade") != "" {
		return true
	}
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html") {
		return true
	}
	switch r.Header.Get("Sec-Fetch-Mode") {
	case "", "navigate", "nested-navigate":
		return false
	}
	return true
}
