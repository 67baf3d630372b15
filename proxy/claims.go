package proxy

import (
	"net/http"
	"strings"
)

// Claims reports whether r belongs to the provider, for a host that serves
// the provider beside routes of its own on one listener. A request is the
// provider's when
//   - its host is an application's external host: Host, or from a trusted
//     peer X-Forwarded-Host or the host of X-Original-URL (forward auth
//     behind Traefik, Caddy or nginx pointed at the host's own address);
//   - its host falls under a forward_domain application's cookie domain;
//   - its path is the ping endpoint or under /outpost.goauthentik.io/, on
//     any host, once the provider has an application: the forward-auth
//     endpoints, the login callback and sign-out live there.
//
// Everything else stays with the host. Unlike ServeHTTP, Claims never
// falls back to a lone application for an unknown host, whatever
// Config.StrictHost says: a host's own routes are never taken.
//
// With several proxy outposts in one host, use [Route] to pick among them.
func (p *Provider) Claims(r *http.Request) bool {
	byHost, ownPath := p.claim(r)
	return byHost || ownPath
}

// claim reports whether r names one of the provider's applications, and
// whether it is for one of the outpost's own paths.
func (p *Provider) claim(r *http.Request) (byHost, ownPath bool) {
	rt := p.routes.Load()
	if len(rt.all) == 0 {
		return false, r.URL.Path == pathPing
	}
	byHost = rt.lookup(p.requestHost(r), true) != nil
	ownPath = r.URL.Path == pathPing || r.URL.Path == pathPrefix || strings.HasPrefix(r.URL.Path, pathPrefix+"/")
	return byHost, ownPath
}

// Route returns the provider among providers that takes r: the first with
// an application for the request's host, else, for the ping endpoint and
// paths under /outpost.goauthentik.io/ on other hosts, the first with any
// application; nil when r belongs to none of them and stays with the host.
func Route(r *http.Request, providers ...*Provider) *Provider {
	var fallback *Provider
	for _, p := range providers {
		byHost, ownPath := p.claim(r)
		if byHost {
			return p
		}
		if ownPath && fallback == nil {
			fallback = p
		}
	}
	return fallback
}
