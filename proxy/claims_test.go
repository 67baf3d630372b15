package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestClaims: what a host that embeds the provider must hand to it, and
// what must stay with the host.
func TestClaims(t *testing.T) {
	cfg := Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	e := newTestEnv(t, cfg,
		app{name: "app", external: "https://app.test"},
		app{name: "single", mode: "forward_single", external: "http://single.test:8080"},
		app{name: "domain", mode: "forward_domain", external: "https://auth.dom.test", cookieDomain: ".dom.test"},
	)
	const trusted, untrusted = "10.1.2.3:4567", "192.0.2.1:4567"
	for _, tc := range []struct {
		name, host, path, peer string
		header                 map[string]string
		want                   bool
	}{
		{"external host", "app.test", "/", untrusted, nil, true},
		{"external host, any case", "APP.test", "/x", untrusted, nil, true},
		{"external host with the scheme's default port", "app.test:443", "/", untrusted, nil, true},
		{"external host with its port", "single.test:8080", "/x", untrusted, nil, true},
		{"forward_single host without its port", "single.test", "/x", untrusted, nil, false},
		{"under the cookie domain", "wiki.dom.test", "/", untrusted, nil, true},
		{"the cookie domain itself", "dom.test", "/", untrusted, nil, true},
		{"a look-alike of the cookie domain", "evildom.test", "/", untrusted, nil, false},
		{"X-Forwarded-Host from a trusted peer", "host.example", "/x", trusted,
			map[string]string{"X-Forwarded-Host": "app.test"}, true},
		{"X-Forwarded-Host from an untrusted peer", "host.example", "/x", untrusted,
			map[string]string{"X-Forwarded-Host": "app.test"}, false},
		{"X-Original-URL from a trusted peer", "host.example", "/x", trusted,
			map[string]string{"X-Original-URL": "http://single.test:8080/p"}, true},
		{"nginx check on the host's own domain", "host.example", pathNginx, untrusted, nil, true},
		{"Traefik check on the host's own domain", "host.example", pathTraefik, trusted,
			map[string]string{"X-Forwarded-Host": "wiki.dom.test"}, true},
		{"Envoy check on the host's own domain", "host.example", pathEnvoy + "/x", untrusted, nil, true},
		{"callback on the host's own domain", "host.example", pathCallback, untrusted, nil, true},
		{"ping on any host", "host.example", pathPing, untrusted, nil, true},
		{"the prefix alone", "host.example", pathPrefix, untrusted, nil, true},
		{"the host's own route", "host.example", "/", untrusted, nil, false},
		{"the host's own route, a look-alike prefix", "host.example", pathPrefix + "x/y", untrusted, nil, false},
		{"the host's own route with an X-Forwarded-Host of its own", "host.example", "/admin", trusted,
			map[string]string{"X-Forwarded-Host": "other.example"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://"+tc.host+tc.path, nil)
			r.RemoteAddr = tc.peer
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			if got := e.p.Claims(r); got != tc.want {
				t.Fatalf("Claims = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestClaimsNoLoneAppFallback: ServeHTTP answers every host with a lone
// application unless StrictHost is set (authentik's standalone behaviour),
// but an embedding host's own routes must never be taken.
func TestClaimsNoLoneAppFallback(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	r := httptest.NewRequest(http.MethodGet, "http://host.example/", nil)
	if e.p.Claims(r) {
		t.Fatal("a lone application claimed the host's own route")
	}
}

// TestClaimsBeforeConfiguration: until the first configuration, only the
// ping endpoint is the outpost's.
func TestClaimsBeforeConfiguration(t *testing.T) {
	e := newTestEnv(t, Config{})
	for path, want := range map[string]bool{pathPing: true, pathNginx: false, "/": false} {
		if got := e.p.Claims(httptest.NewRequest(http.MethodGet, "http://app.test"+path, nil)); got != want {
			t.Errorf("%s: Claims = %v, want %v", path, got, want)
		}
	}
}

// TestRoute: with two outposts in one host, a request goes to the one
// whose application it names, even under /outpost.goauthentik.io/; own
// paths on other hosts go to the first; the rest to nobody.
func TestRoute(t *testing.T) {
	one := newTestEnv(t, Config{}, app{name: "one", external: "http://one.test"})
	two := newTestEnv(t, Config{}, app{name: "two", mode: "forward_single", external: "http://two.test"})
	for _, tc := range []struct {
		host, path string
		want       *Provider
	}{
		{"one.test", "/", one.p},
		{"two.test", pathCallback, two.p},
		{"two.test", pathNginx, two.p},
		{"host.example", pathNginx, one.p},
		{"host.example", pathPing, one.p},
		{"host.example", "/", nil},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://"+tc.host+tc.path, nil)
		if got := Route(r, one.p, two.p); got != tc.want {
			t.Errorf("%s%s: Route = %p, want %p (one %p, two %p)", tc.host, tc.path, got, tc.want, one.p, two.p)
		}
	}
}
