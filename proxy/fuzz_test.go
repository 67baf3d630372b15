package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/akoutpost/akoutpost/outpost"
)

// fuzzApps builds one proxy-mode and one forward_domain application
// without any network.
func fuzzApps(tb testing.TB) (single, domain *application) {
	tb.Helper()
	p, err := New(outpost.Deps{}, Config{})
	if err != nil {
		tb.Fatal(err)
	}
	mk := func(m mode, ext, cd string) *application {
		u, _ := url.Parse(ext)
		a := &application{p: p, name: string(m), mode: m, external: u, clientID: "c-" + string(m),
			cookieDomain: cd, cookieName: "authentik_proxy_" + string(m), validity: 3600e9}
		if err := a.initCodecs([]byte("0123456789abcdef0123456789abcdef")); err != nil {
			tb.Fatal(err)
		}
		return a
	}
	return mk(modeProxy, "https://app.example.com", ""), mk(modeForwardDomain, "https://auth.example.com", "example.com")
}

// FuzzForwardedURL: X-Forwarded-* come from the network; parsing must not
// panic and anything accepted must be an http(s) URL with a sane host.
func FuzzForwardedURL(f *testing.F) {
	f.Add("https", "app.example.com", "/path?q=1")
	f.Add("http", "app.example.com:8080", "//evil.com/x")
	f.Add("HTTPS, http", "a.example.com, b", "/%2F/x")
	f.Add("javascript", "x", "/")
	f.Add("https", "evil.com\\@app.example.com", "/")
	f.Fuzz(func(t *testing.T, proto, host, uri string) {
		h := http.Header{}
		h.Set("X-Forwarded-Proto", proto)
		h.Set("X-Forwarded-Host", host)
		h.Set("X-Forwarded-Uri", uri)
		u, ok := forwardedURL(h, "fallback.example.com")
		if !ok {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("scheme %q accepted", u.Scheme)
		}
		if !validHost(u.Host) || u.User != nil {
			t.Fatalf("host %q accepted (user %v)", u.Host, u.User)
		}
	})
}

// FuzzCheckRedirect: whatever rd a client sends, an accepted target parses
// to the provider's own host (or one under its cookie domain), and carries
// nothing a browser might read differently.
func FuzzCheckRedirect(f *testing.F) {
	for _, s := range []string{"/x", "https://app.example.com/x?y", "//evil.com", "/\\evil.com",
		"https://evil.com", "https://app.example.com@evil.com", "https://sub.example.com/", "https://evilexample.com/",
		"http:evil.com", "/%2F%2Fevil.com", "https://app.example.com:443/", "HTTPS://APP.EXAMPLE.COM/"} {
		f.Add(s)
	}
	single, domain := fuzzApps(f)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, a := range []*application{single, domain} {
			got, ok := a.checkRedirect(raw)
			if !ok {
				continue
			}
			if strings.ContainsAny(got, "\\\t\r\n") {
				t.Fatalf("%s: accepted %q -> %q with characters browsers reinterpret", a.mode, raw, got)
			}
			u, err := url.Parse(got)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
				t.Fatalf("%s: accepted %q -> %q", a.mode, raw, got)
			}
			host := strings.ToLower(u.Hostname())
			if host != a.external.Hostname() && !(a.mode == modeForwardDomain && (host == "example.com" || strings.HasSuffix(host, ".example.com"))) {
				t.Fatalf("%s: %q leads to foreign host %q", a.mode, raw, host)
			}
		}
	})
}

// FuzzSessionCookie: a cookie is attacker-controlled; decoding must not
// panic and random input must never authenticate.
func FuzzSessionCookie(f *testing.F) {
	single, _ := fuzzApps(f)
	good, _ := single.sessionCodec.Encode(single.cookieName, "some-session-id")
	f.Add(good)
	f.Add("")
	f.Add("MTcwMDAwMDAwMHx8")
	f.Add(strings.Repeat("A", 5000))
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
		r.Header.Set("Cookie", single.cookieName+"="+v)
		if c, _, _, _ := single.loadSession(r); c != nil {
			t.Fatalf("cookie %q authenticated", v)
		}
	})
}
