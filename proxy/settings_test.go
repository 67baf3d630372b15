package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// setProxyClaims replaces the ak_proxy claim the fake identity provider
// issues to the next login.
func setProxyClaims(e *testEnv, akProxy map[string]any) {
	e.idp.mu.Lock()
	defer e.idp.mu.Unlock()
	e.idp.user["ak_proxy"] = akProxy
}

// applyEdited applies a's wire form after edit changed it.
func (e *testEnv) applyEdited(a app, edit func(map[string]any)) {
	e.t.Helper()
	var w map[string]any
	if err := json.Unmarshal(e.wire(a), &w); err != nil {
		e.t.Fatal(err)
	}
	edit(w)
	b, _ := json.Marshal(w)
	if err := applyTo(e, e.p, []json.RawMessage{b}); err != nil {
		e.t.Fatalf("Apply: %v", err)
	}
}

// internal_host_ssl_validation: an https internal_host with a self-signed
// certificate is refused (502) while validation is on, authentik's
// default, and reached when the provider turns it off.
func TestInternalHostSSLValidation(t *testing.T) {
	tlsUpstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "tls")
		echo(w, r)
	}))
	t.Cleanup(tlsUpstream.Close)
	for _, tc := range []struct {
		name     string
		validate any // the setting as the core sends it; nil leaves it out
		want     int
	}{
		{"on", true, http.StatusBadGateway},
		{"left out", nil, http.StatusBadGateway},
		{"off", false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, Config{})
			a := app{name: "app", external: "http://app.test"}
			e.applyEdited(a, func(w map[string]any) {
				w["internal_host"] = tlsUpstream.URL
				if tc.validate == nil {
					delete(w, "internal_host_ssl_validation")
				} else {
					w["internal_host_ssl_validation"] = tc.validate
				}
			})
			resp := login(t, e, e.browser(), "http://app.test/hello")
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusOK {
				if resp.Header.Get("X-Upstream") != "tls" {
					t.Errorf("the answer did not come from the TLS upstream: %v", resp.Header)
				}
				if got := decodeEcho(t, resp); got.URI != "/hello" || got.Headers.Get("X-Authentik-Username") != "alice" {
					t.Errorf("TLS upstream got %+v", got)
				}
			}
		})
	}
}

// backend_override in the ak_proxy claim sends that user's requests to
// another upstream, as authentik's outpost does; a value that is not an
// http(s) URL is ignored and internal_host serves.
func TestBackendOverride(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "override")
		echo(w, r)
	}))
	t.Cleanup(other.Close)
	for _, tc := range []struct {
		name, override, want string
	}{
		{"override", other.URL, "override"},
		{"not http", "ftp://" + other.Listener.Addr().String(), ""},
		{"with credentials", "http://u:p@" + other.Listener.Addr().String(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
			setProxyClaims(e, map[string]any{"user_attributes": map[string]any{}, "backend_override": tc.override})
			resp := login(t, e, e.browser(), "http://app.test/path?q=1")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("X-Upstream"); got != tc.want {
				t.Errorf("answered by %q, want %q", got, tc.want)
			}
			got := decodeEcho(t, resp)
			if got.URI != "/path?q=1" || got.Host != "app.test" || got.Headers.Get("X-Authentik-Username") != "alice" {
				t.Errorf("upstream got %+v", got)
			}
		})
	}
}

// host_header in the ak_proxy claim replaces the Host the upstream sees;
// an invalid one is ignored and the client's Host is kept.
func TestHostHeader(t *testing.T) {
	for _, tc := range []struct {
		name, header, want string
	}{
		{"set", "internal.example:8080", "internal.example:8080"},
		{"invalid", "evil.example/path", "app.test"},
		{"empty", "", "app.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
			setProxyClaims(e, map[string]any{"user_attributes": map[string]any{}, "host_header": tc.header})
			got := decodeEcho(t, login(t, e, e.browser(), "http://app.test/"))
			if got.Host != tc.want {
				t.Errorf("upstream Host = %q, want %q", got.Host, tc.want)
			}
		})
	}
}

// Outbound basic auth takes the user name from basic_auth_user_attribute
// and, when the user has no such attribute, the user's email, as
// authentik's outpost does; without a password attribute no Authorization
// header is sent.
func TestBasicAuthOutboundEmailFallback(t *testing.T) {
	for _, tc := range []struct {
		name          string
		attrs         map[string]any
		user, pass    string
		authorization bool
	}{
		{"user attribute", map[string]any{"basic_user": "alice-basic", "basic_pass": "s3cret"}, "alice-basic", "s3cret", true},
		{"email fallback", map[string]any{"basic_pass": "s3cret"}, "alice@example.test", "s3cret", true},
		{"no password", map[string]any{"basic_user": "alice-basic"}, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test", basic: true})
			setProxyClaims(e, map[string]any{"user_attributes": tc.attrs})
			got := decodeEcho(t, login(t, e, e.browser(), "http://app.test/"))
			user, pass, ok := (&http.Request{Header: got.Headers}).BasicAuth()
			if ok != tc.authorization || user != tc.user || pass != tc.pass {
				t.Errorf("upstream basic auth = %q %q %v, want %q %q %v", user, pass, ok, tc.user, tc.pass, tc.authorization)
			}
		})
	}
}
