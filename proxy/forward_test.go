package proxy

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// fixedClaims is a logged-in user whose tokens do not change between runs,
// so forward-auth answers can be compared with golden files.
func fixedClaims() *claims {
	return &claims{
		Sub: "user-sub-1", Exp: time.Now().Add(time.Hour).Unix(), Email: "alice@example.test",
		Name: "Alice Example", PreferredUsername: "alice", Groups: []string{"admins", "staff"},
		Entitlements: []string{"e1"}, SID: "sid-1", RawToken: "raw.jwt.token",
		Proxy: &proxyClaims{UserAttributes: map[string]any{
			"additionalHeaders": map[string]any{"X-Foo": "bar"},
			"basic_user":        "alice-basic", "basic_pass": "s3cret",
		}},
	}
}

// sessionCookie stores a session for c with application a and returns the
// Cookie header value.
func sessionCookie(t testing.TB, a *application, c *claims) string {
	t.Helper()
	ck, err := a.saveSession(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return ck.Name + "=" + ck.Value
}

var (
	reState     = regexp.MustCompile(`state=[^&\s]+`)
	reChallenge = regexp.MustCompile(`code_challenge=[^&\s]+`)
	reLogin     = regexp.MustCompile(`_login_[A-Za-z0-9_-]+=[^;]+`)
	reSession   = regexp.MustCompile(`(authentik_proxy_[0-9a-f]{8})=[^;]+`)
	rePort      = regexp.MustCompile(`127\.0\.0\.1(:|%3A)[0-9]+`)
)

// render writes a response in a stable form for golden files: status,
// sorted headers with random values replaced, and the body.
func render(resp *http.Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status %d\n", resp.StatusCode)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		if k == "Date" || k == "Content-Length" {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, normalize(v))
		}
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(&b, "\n%s", normalize(string(body)))
	return b.String()
}

func normalize(v string) string {
	v = reState.ReplaceAllString(v, "state=STATE")
	v = reChallenge.ReplaceAllString(v, "code_challenge=CHALLENGE")
	v = reLogin.ReplaceAllString(v, "_login_NONCE=VALUE")
	v = reSession.ReplaceAllString(v, "$1=VALUE")
	return rePort.ReplaceAllString(v, "IDP")
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestForwardAuthGolden(t *testing.T) {
	e := newTestEnv(t, Config{},
		app{name: "single", mode: "forward_single", external: "http://fwd.test", skip: "^/skip", basic: true},
		app{name: "domain", mode: "forward_domain", external: "http://auth.dom.test", cookieDomain: "dom.test",
			skip: "^http://open\\.dom\\.test/", clientID: "client-id-dom"},
	)
	rt := e.p.routes.Load()
	single := sessionCookie(t, rt.byHost["fwd.test"], fixedClaims())
	domain := sessionCookie(t, rt.byHost["auth.dom.test"], fixedClaims())
	nf := e.noFollow(nil)
	traefik := func(proto, host, uri string) map[string]string {
		return map[string]string{"X-Forwarded-Proto": proto, "X-Forwarded-Host": host, "X-Forwarded-Uri": uri}
	}
	with := func(h map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range h {
			out[a] = b
		}
		return out
	}
	tests := []struct {
		name, url string
		hdr       map[string]string
		status    int
	}{
		{"nginx_missing_headers", "http://fwd.test" + pathNginx, nil, 500},
		{"nginx_skip", "http://fwd.test" + pathNginx, map[string]string{"X-Original-URL": "http://fwd.test/skip/x"}, 200},
		{"nginx_unauthenticated_url", "http://fwd.test" + pathNginx, map[string]string{"X-Original-URL": "http://fwd.test/app"}, 401},
		{"nginx_unauthenticated_uri", "http://fwd.test" + pathNginx, map[string]string{"X-Original-URI": "/app"}, 401},
		{"nginx_authenticated", "http://fwd.test" + pathNginx, map[string]string{"X-Original-URI": "/app", "Cookie": single, "User-Agent": "ua/1"}, 200},
		{"traefik_missing_headers", "http://fwd.test" + pathTraefik, nil, 500},
		{"traefik_skip", "http://outpost.test" + pathTraefik, traefik("http", "fwd.test", "/skip"), 200},
		{"traefik_unauthenticated", "http://outpost.test" + pathTraefik, traefik("https", "fwd.test", "/app?x=1"), 302},
		{"traefik_unauthenticated_xhr", "http://outpost.test" + pathTraefik, with(traefik("https", "fwd.test", "/app"), "Accept", "application/json"), 401},
		{"traefik_authenticated", "http://outpost.test" + pathTraefik, with(traefik("http", "fwd.test", "/app"), "Cookie", single), 200},
		{"caddy_unauthenticated", "http://outpost.test" + pathCaddy, traefik("https", "fwd.test", "/app"), 302},
		{"caddy_authenticated", "http://outpost.test" + pathCaddy, with(traefik("http", "fwd.test", "/app"), "Cookie", single), 200},
		{"envoy_skip", "http://fwd.test" + pathEnvoy + "/skip", nil, 200},
		{"envoy_unauthenticated", "http://fwd.test" + pathEnvoy + "/app?q=1", nil, 302},
		{"envoy_authenticated", "http://fwd.test" + pathEnvoy + "/app", map[string]string{"Cookie": single}, 200},
		{"domain_traefik_unauthenticated", "http://outpost.test" + pathTraefik, traefik("http", "app1.dom.test", "/x"), 302},
		{"domain_traefik_skip_full_url", "http://outpost.test" + pathTraefik, traefik("http", "open.dom.test", "/x"), 200},
		{"domain_traefik_authenticated", "http://outpost.test" + pathTraefik, with(traefik("http", "app2.dom.test", "/x"), "Cookie", domain), 200},
		{"domain_nginx_unauthenticated", "http://app1.dom.test" + pathNginx, map[string]string{"X-Original-URL": "http://app1.dom.test/app"}, 401},
		{"domain_nginx_authenticated", "http://app1.dom.test" + pathNginx, map[string]string{"X-Original-URL": "http://app1.dom.test/app", "Cookie": domain}, 200},
		{"single_unknown_path", "http://fwd.test/elsewhere", nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustGet(t, nf, tt.url, tt.hdr)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			golden(t, tt.name, render(resp))
		})
	}
}

// TestForwardedHostOutsideProvider: Traefik is told (via trustForwardHeader,
// or a client's own X-Forwarded-Host) about a host that is not the
// provider's. The login must not return there.
func TestForwardedHostOutsideProvider(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "single", mode: "forward_single", external: "http://fwd.test"})
	// With one provider and no strict host, the unknown host still reaches
	// it; the return URL must be the external host, not evil.test.
	resp := mustGet(t, e.noFollow(nil), "http://outpost.test"+pathTraefik,
		map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test", "X-Forwarded-Uri": "/steal"})
	if resp.StatusCode != 302 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	a := e.p.routes.Load().all[0]
	var st loginState
	if err := a.stateCodec.Decode("state", loc.Query().Get("state"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Redirect != "http://fwd.test" {
		t.Fatalf("state redirect %q, want the external host", st.Redirect)
	}
}

// TestForwardDomainLoginThroughTraefik runs a browser through a minimal
// Traefik-like reverse proxy: forwardAuth to auth/traefik, the outpost
// path routed to the outpost, and authResponseHeaders copied upstream. One
// login on the auth host covers every host under the cookie domain.
func TestForwardDomainLoginThroughTraefik(t *testing.T) {
	e := newTestEnv(t, Config{},
		app{name: "domain", mode: "forward_domain", external: "http://auth.dom.test", cookieDomain: "dom.test"})
	outpostURL := e.srv.URL
	fakeTraefik := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, pathPrefix+"/") {
			forwardTo(w, r, outpostURL+r.URL.RequestURI(), r.Header, r.Host)
			return
		}
		check, _ := http.NewRequest(http.MethodGet, outpostURL+pathTraefik, nil)
		check.Header = r.Header.Clone()
		check.Header.Set("X-Forwarded-Proto", "http")
		check.Header.Set("X-Forwarded-Host", r.Host)
		check.Header.Set("X-Forwarded-Uri", r.URL.RequestURI())
		resp, err := http.DefaultTransport.RoundTrip(check)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			return
		}
		h := r.Header.Clone()
		for k, v := range resp.Header {
			if strings.HasPrefix(k, "X-Authentik-") {
				h[k] = v
			}
		}
		forwardTo(w, r, e.upstream.URL+r.URL.RequestURI(), h, r.Host)
	}))
	defer fakeTraefik.Close()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	b := e.browser()
	b.Transport.(*http.Transport).DialContext = redirectDial(fakeTraefik.Listener.Addr().String())
	resp := mustGet(t, b, "http://app1.dom.test/page?x=1", nil)
	got := decodeEcho(t, resp)
	if got.Headers.Get("X-Authentik-Username") != "alice" || got.URI != "/page?x=1" || got.Host != "app1.dom.test" {
		t.Fatalf("after login: %+v", got)
	}
	// Another host under the domain: no new login.
	nf := &http.Client{Jar: b.Jar, Transport: b.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp = mustGet(t, nf, "http://app2.dom.test/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("second host: status %d, want 200 from the domain cookie", resp.StatusCode)
	}
}

func forwardTo(w http.ResponseWriter, r *http.Request, target string, h http.Header, host string) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, target, r.Body)
	req.Header = h
	req.Host = host
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), 502)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// TestForwardSingleLoginThroughEnvoy runs a browser through a minimal
// Envoy-like proxy: ext_authz HTTP checks on auth/envoy with the original
// path appended and only the Cookie header included, denied answers
// returned to the client, x-authentik-* copied upstream on allow. The
// callback completes inside a check, as with a real Envoy that has no
// separate outpost route.
func TestForwardSingleLoginThroughEnvoy(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "single", mode: "forward_single", external: "http://fwd.test"})
	outpostURL := e.srv.URL
	fakeEnvoy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		check, _ := http.NewRequest(http.MethodGet, outpostURL+pathEnvoy+r.URL.RequestURI(), nil)
		check.Host = r.Host
		if c := r.Header.Get("Cookie"); c != "" {
			check.Header.Set("Cookie", c)
		}
		resp, err := http.DefaultTransport.RoundTrip(check)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			return
		}
		h := r.Header.Clone()
		for k, v := range resp.Header {
			if strings.HasPrefix(k, "X-Authentik-") {
				h[k] = v
			}
		}
		forwardTo(w, r, e.upstream.URL+r.URL.RequestURI(), h, r.Host)
	}))
	defer fakeEnvoy.Close()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	b := e.browser()
	b.Transport.(*http.Transport).DialContext = redirectDial(fakeEnvoy.Listener.Addr().String())
	got := decodeEcho(t, mustGet(t, b, "http://fwd.test/page?x=%2F", nil))
	if got.Headers.Get("X-Authentik-Username") != "alice" || got.URI != "/page?x=%2F" {
		t.Fatalf("after login through envoy: %+v", got)
	}
}
