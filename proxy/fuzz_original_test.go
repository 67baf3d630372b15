package proxy

import (
	"strings"
	"testing"
)

// FuzzOriginalURL: nginx's auth_request sends the original URL in
// X-Original-URL, which a client can influence. Whatever is accepted is an
// absolute http(s) URL with a sane, lower-cased host and no user info, so
// a later redirect cannot be steered to another origin.
func FuzzOriginalURL(f *testing.F) {
	f.Add("https://app.example.com/path?q=1")
	f.Add("http://APP.example.com:8080//evil.com/x")
	f.Add("https://evil.com\\@app.example.com/")
	f.Add("javascript:alert(1)")
	f.Add("https://user:pw@app.example.com/")
	f.Add("//app.example.com/")
	f.Fuzz(func(t *testing.T, raw string) {
		u, ok := parseAbsolute(raw)
		if !ok {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("scheme %q accepted from %q", u.Scheme, raw)
		}
		if !validHost(u.Host) || u.Host != strings.ToLower(u.Host) {
			t.Fatalf("host %q accepted from %q", u.Host, raw)
		}
	})
}

// FuzzBuildURL: Envoy and Traefik hand the outpost a request URI and a
// host separately; the joined URL keeps the given host and never takes a
// host or scheme from the URI.
func FuzzBuildURL(f *testing.F) {
	f.Add("app.example.com", "/path?q=1")
	f.Add("app.example.com", "//evil.com/x")
	f.Add("app.example.com", "http://evil.com/")
	f.Add("APP.example.com:443", "/%2e%2e/%2F?x=%00")
	f.Fuzz(func(t *testing.T, host, uri string) {
		u, ok := buildURL("https", host, uri)
		if !ok {
			return
		}
		if u.Scheme != "https" || u.Host != strings.ToLower(host) || u.User != nil {
			t.Fatalf("buildURL(%q, %q) = %s", host, uri, u)
		}
	})
}
