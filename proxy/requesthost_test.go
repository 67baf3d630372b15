package proxy

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/akoutpost/akoutpost/outpost"
)

// TestRequestHost: behind nginx's documented snippet the outpost location
// gets Host $host (port lost) and X-Original-URL with $http_host (port
// kept); the application is found by the latter. Both forwarded values
// count only from a trusted peer, so a client cannot pick an application
// by sending them itself.
func TestRequestHost(t *testing.T) {
	p, err := New(outpost.Deps{}, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, host, forwarded, original, want string
	}{
		{name: "Host only", remote: "192.0.2.1:1", host: "App.Test:8080", want: "app.test:8080"},
		{name: "trusted X-Forwarded-Host", remote: "10.0.0.1:1", host: "app.test", forwarded: "fwd.test:81", original: "http://other.test:82/", want: "fwd.test:81"},
		{name: "trusted X-Original-URL keeps the port", remote: "10.0.0.1:1", host: "app.test", original: "http://app.test:8080/x?y", want: "app.test:8080"},
		{name: "unparsable X-Original-URL ignored", remote: "10.0.0.1:1", host: "app.test", original: "http://%zz/", want: "app.test"},
		{name: "X-Original-URL without host ignored", remote: "10.0.0.1:1", host: "app.test", original: "/relative", want: "app.test"},
		{name: "untrusted X-Original-URL ignored", remote: "192.0.2.1:1", host: "app.test", original: "http://other.test/", want: "app.test"},
		{name: "untrusted X-Forwarded-Host ignored", remote: "192.0.2.1:1", host: "app.test", forwarded: "other.test", want: "app.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr, r.Host = tc.remote, tc.host
			if tc.forwarded != "" {
				r.Header.Set("X-Forwarded-Host", tc.forwarded)
			}
			if tc.original != "" {
				r.Header.Set("X-Original-URL", tc.original)
			}
			if got := p.requestHost(r); got != tc.want {
				t.Errorf("requestHost = %q, want %q", got, tc.want)
			}
		})
	}
}
