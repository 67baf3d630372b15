package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
)

// identityKey is the request context key of the *identity handleProxy
// passes to rewrite and upstreamError.
type identityKey struct{}

// handleProxy serves proxy mode: authenticate, then pass the request to
// internal_host with identity headers, or send the browser to login.
func (a *application) handleProxy(w http.ResponseWriter, r *http.Request) {
	id, via := a.authenticate(w, r)
	if id == nil && !a.allowlisted(r.URL) {
		switch {
		case via == authStoreDown:
			a.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
				"Your session cannot be checked right now. Please try again in a moment.")
		case via == authHeaderFailed:
			a.errorPage(w, r, http.StatusUnauthorized, "Unauthenticated",
				"The credentials in the Authorization header were not accepted.")
		case isScriptRequest(r):
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "unauthorized request", http.StatusUnauthorized)
		default:
			// The raw path (a %2F stays encoded) and the query string are
			// kept in the return URL.
			target := a.external.Scheme + "://" + a.external.Host +
				strings.TrimSuffix(a.external.Path, "/") + r.URL.EscapedPath()
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			if _, ok := a.checkRedirect(target); !ok {
				target = a.external.String()
			}
			a.redirectToStart(w, r, target)
		}
		return
	}
	if id != nil {
		if via == authHeader {
			// The client's own credentials were consumed by the login; the
			// upstream gets identity headers instead.
			r.Header.Del("Authorization")
		}
		// rewrite adds the identity headers to the outgoing request.
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
	}
	a.stripOwnCookies(r)
	a.upstream.ServeHTTP(w, r)
}

// initUpstream builds the reverse proxy for proxy mode.
func (a *application) initUpstream() {
	rt := a.p.transports.get(a.insecureUpstream)
	a.upstream = &httputil.ReverseProxy{
		Rewrite:   a.rewrite,
		Transport: &timedTransport{a: a, rt: rt},
		// FlushInterval stays 0: ReverseProxy already streams server-sent
		// events and bodies of unknown length (chunked streams, long polls
		// writing as they go) at once. -1 would also flush every ordinary
		// response's headers early from a timer goroutine: a second write
		// syscall per response, the largest cost in bench/proxy.sh's
		// profile.
		ErrorHandler: a.upstreamError,
		BufferPool:   &a.p.buffers,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("X-Powered-By", "goauthentik.io")
			limitWebsocket(resp, maxWebsocketFrame, a.p.logger(), a.name, &a.p.websockets)
			return nil
		},
		ErrorLog: nil,
	}
}

// rewrite sends the request to internal_host (or the user's
// backend_override) keeping path, query and the client's Host, adds the
// identity headers, and sets X-Forwarded-*.
func (a *application) rewrite(pr *httputil.ProxyRequest) {
	target := a.internal
	id, _ := pr.In.Context().Value(identityKey{}).(*identity)
	if id != nil && id.backend != nil {
		target = id.backend
	}
	pr.Out.URL.Scheme = target.Scheme
	pr.Out.URL.Host = target.Host
	pr.Out.Host = pr.In.Host
	if id != nil {
		if id.hostHeader != "" {
			pr.Out.Host = id.hostHeader
		}
		// The identity headers join the outgoing request here, after
		// ReverseProxy has removed hop-by-hop headers: a client naming them
		// in its Connection header cannot make them disappear. The map is
		// made with room for all of them and X-Forwarded-*, so it never
		// grows. Values are shared with other requests; nothing downstream
		// writes to them (Set replaces a slice, Add of a full slice copies).
		h := make(http.Header, len(pr.Out.Header)+len(id.upstream)+4)
		for k, v := range pr.Out.Header {
			h[k] = v
		}
		for k, v := range id.upstream {
			h[k] = v
		}
		pr.Out.Header = h
	}
	if a.p.trusted(pr.In) {
		// A trusted proxy in front already described the original request:
		// keep its story and append the peer.
		xff := pr.In.Header.Get("X-Forwarded-For")
		proto := strings.ToLower(firstValue(pr.In.Header.Get("X-Forwarded-Proto")))
		host := firstValue(pr.In.Header.Get("X-Forwarded-Host"))
		pr.SetXForwarded()
		if xff != "" {
			pr.Out.Header.Set("X-Forwarded-For", xff+", "+pr.Out.Header.Get("X-Forwarded-For"))
		}
		if proto == "http" || proto == "https" {
			pr.Out.Header.Set("X-Forwarded-Proto", proto)
		}
		if host != "" && validHost(host) {
			pr.Out.Header.Set("X-Forwarded-Host", host)
		}
		return
	}
	pr.SetXForwarded()
}

func (a *application) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client went away; nobody to answer.
		return
	}
	a.p.logger().Warn("upstream request failed", "provider", a.name, "upstream", a.internal.Host, "error", err)
	msg := "Failed to connect to backend."
	if id, _ := r.Context().Value(identityKey{}).(*identity); id != nil && id.c.Proxy != nil && id.c.Proxy.IsSuperuser {
		msg = "Error proxying to upstream server: " + err.Error()
	}
	a.errorPage(w, r, http.StatusBadGateway, "Bad Gateway", msg)
}

// timedTransport observes upstream round trips.
type timedTransport struct {
	a  *application
	rt http.RoundTripper
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.rt.RoundTrip(r)
	t.a.upstreamObserver(t.a.p.metrics, r.Method).Observe(time.Since(start).Seconds())
	return resp, err
}

// transportCache shares upstream transports (and their connection pools)
// across applications and configuration refreshes.
type transportCache struct {
	mu sync.Mutex
	m  map[bool]*http.Transport
}

func (c *transportCache) get(insecure bool) *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m[insecure]; ok {
		return t
	}
	if c.m == nil {
		c.m = make(map[bool]*http.Transport)
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	// Usually one internal_host takes all the traffic: an idle pool per host
	// smaller than the peak of concurrent requests would close connections
	// after each burst and dial them again in the next.
	t := &http.Transport{
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: insecure}, //nolint:gosec // internal_host_ssl_validation=false asks for it
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	c.m[insecure] = t
	return t
}

func (c *transportCache) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.m {
		t.CloseIdleConnections()
	}
}
