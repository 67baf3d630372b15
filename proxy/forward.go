package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// allowlisted reports whether u may be served without login, by
// skip_path_regex: the path in proxy and forward_single modes, the whole
// URL in forward_domain mode (as authentik matches them). A path that is
// not canonical (see pathForms) is never allowlisted: it needs a session,
// and is then passed on as sent.
func (a *application) allowlisted(u *url.URL) bool {
	if len(a.skip) == 0 {
		return false
	}
	forms, ok := pathForms(u.EscapedPath())
	if !ok {
		return false
	}
	for _, form := range forms {
		subject := form
		if a.mode == modeForwardDomain {
			subject = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: form, RawQuery: u.RawQuery}).String()
		}
		if !a.skipMatches(subject) {
			return false
		}
	}
	return true
}

func (a *application) skipMatches(subject string) bool {
	for _, re := range a.skip {
		if re.MatchString(subject) {
			return true
		}
	}
	return false
}

// configErrorInterval bounds how often one application logs that the
// reverse proxy in front of it is misconfigured: every check fails the same
// way until it is fixed, and one line a minute says so.
const configErrorInterval = time.Minute

// configError answers a forward-auth check whose request lacks what the
// reverse proxy should have sent: the reverse proxy's configuration is
// wrong, not the client.
func (a *application) configError(w http.ResponseWriter, what string) {
	if ok, suppressed := a.configErrors.allow(a.p.now(), configErrorInterval); ok {
		a.p.logger().Error("forward auth request unusable: check the reverse proxy configuration",
			"provider", a.name, "problem", what, "suppressed", suppressed)
	}
	http.Error(w, "configuration error", http.StatusInternalServerError)
}

// badRequest answers a forward-auth check whose original request, as the
// client sent it, cannot be judged (a request target such as "*" or
// "@evil.example/x"). That is the client's doing, so it is a 400 and a
// debug line: a client must not be able to fill the log with errors.
func (a *application) badRequest(w http.ResponseWriter, what string) {
	a.p.logger().Debug("forward auth request with an unusable original request", "provider", a.name, "problem", what)
	http.Error(w, "bad request", http.StatusBadRequest)
}

// logLimiter lets one line through per interval and counts the others.
type logLimiter struct {
	next       atomic.Int64 // unix nanoseconds before which lines are suppressed
	suppressed atomic.Int64
}

// allow reports whether a line may be logged now, and how many were
// suppressed since the last one.
func (l *logLimiter) allow(now time.Time, interval time.Duration) (bool, int64) {
	next := l.next.Load()
	if now.UnixNano() < next || !l.next.CompareAndSwap(next, now.Add(interval).UnixNano()) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// handleNginx answers nginx's auth_request (and ingress-nginx's auth-url):
// 200 with identity headers, or 401 for nginx to turn into a redirect to
// /outpost.goauthentik.io/start itself.
func (a *application) handleNginx(w http.ResponseWriter, r *http.Request) {
	var u *url.URL
	var ok bool
	if uri := r.Header.Get("X-Original-URI"); uri != "" {
		scheme := a.external.Scheme
		if p := strings.ToLower(firstValue(r.Header.Get("X-Forwarded-Proto"))); a.p.trusted(r) && (p == "http" || p == "https") {
			scheme = p
		}
		u, ok = buildURL(scheme, a.p.requestHost(r), uri)
	} else if raw := r.Header.Get("X-Original-URL"); raw != "" {
		u, ok = parseAbsolute(raw)
	} else {
		a.configError(w, "neither X-Original-URI nor X-Original-URL set")
		return
	}
	if !ok {
		a.badRequest(w, "unusable X-Original-URI or X-Original-URL")
		return
	}
	a.forwardDecision(w, r, u, true)
}

// handleTraefik answers Traefik's forwardAuth and Caddy's forward_auth,
// which describe the original request in X-Forwarded-Proto, -Host and -Uri.
func (a *application) handleTraefik(w http.ResponseWriter, r *http.Request) {
	if !a.p.trusted(r) {
		a.configError(w, "forward auth request from a peer outside TrustedProxies")
		return
	}
	if p := strings.ToLower(firstValue(r.Header.Get("X-Forwarded-Proto"))); p != "http" && p != "https" {
		a.configError(w, "X-Forwarded-Proto missing or not http or https")
		return
	}
	u, ok := forwardedURL(r.Header, r.Host)
	if !ok {
		a.badRequest(w, "unusable X-Forwarded-Host or X-Forwarded-Uri")
		return
	}
	a.forwardDecision(w, r, u, false)
}

// handleEnvoy answers Envoy's HTTP ext_authz: the original path and query
// follow /outpost.goauthentik.io/auth/envoy, the original host is Host.
func (a *application) handleEnvoy(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), pathEnvoy)
	if rest == "" {
		rest = "/"
	}
	if r.URL.RawQuery != "" {
		rest += "?" + r.URL.RawQuery
	}
	scheme := a.external.Scheme
	if p := strings.ToLower(firstValue(r.Header.Get("X-Forwarded-Proto"))); a.p.trusted(r) && (p == "http" || p == "https") {
		scheme = p
	}
	u, ok := buildURL(scheme, r.Host, rest)
	if !ok {
		a.badRequest(w, "unusable original path")
		return
	}
	a.forwardDecision(w, r, u, false)
}

func parseAbsolute(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !validHost(u.Host) {
		return nil, false
	}
	u.Host = strings.ToLower(u.Host)
	return u, true
}

// forwardDecision decides a forward-auth check for the original URL u.
func (a *application) forwardDecision(w http.ResponseWriter, r *http.Request, u *url.URL, nginx bool) {
	q := u.Query()
	// The login callback and sign-out can arrive inside a check (Envoy
	// always does; Traefik and Caddy when the outpost path is not routed).
	if strings.EqualFold(q.Get(callbackParam), "true") {
		a.handleCallback(w, r, q)
		return
	}
	if strings.EqualFold(q.Get(logoutParam), "true") {
		a.handleSignOut(w, r)
		return
	}
	id, via := a.authenticate(w, r)
	if id != nil {
		for k, v := range id.headers {
			w.Header()[k] = v
		}
		w.Header().Set("User-Agent", r.Header.Get("User-Agent"))
		w.WriteHeader(http.StatusOK)
		return
	}
	if a.allowlisted(u) {
		w.WriteHeader(http.StatusOK)
		return
	}
	if via == authStoreDown {
		http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
		return
	}
	if nginx {
		if strings.HasPrefix(u.Path, pathPrefix+"/") && u.Path != pathNginx && canonicalPath(u.EscapedPath()) {
			// The outpost's own endpoints, when nginx protects them too;
			// "/outpost.goauthentik.io/../x" is x to nginx's upstream.
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "unauthorized request", http.StatusUnauthorized)
		return
	}
	if via == authHeaderFailed || isScriptRequest(r) {
		http.Error(w, "unauthorized request", http.StatusUnauthorized)
		return
	}
	target := a.external.String()
	if a.hostAllowed(u.Host) {
		target = u.String()
	} else {
		a.p.logger().Warn("forwarded URL outside the provider's hosts; login returns to the external host",
			"provider", a.name, "host", truncate(u.Host, 100))
	}
	if a.mode == modeForwardDomain {
		// Log in on the authentication host, so the state cookie is set
		// where the callback lands whatever the cookie domain.
		a.redirectToStart(w, r, target)
		return
	}
	a.redirectToLogin(w, r, target)
}

// redirectToStart sends the browser to /outpost.goauthentik.io/start on the
// external host with rd=target.
func (a *application) redirectToStart(w http.ResponseWriter, r *http.Request, target string) {
	start := a.external.ResolveReference(&url.URL{Path: strings.TrimSuffix(a.external.Path, "/") + pathStart})
	start.RawQuery = url.Values{"rd": {target}}.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, start.String(), http.StatusFound)
}
