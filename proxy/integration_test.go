package proxy_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
	"github.com/akoutpost/akoutpost/proxy"
)

// stack is a test core, an echo upstream and a running outpost whose proxy
// provider serves on a loopback listener; ".test" hosts reach it.
type stack struct {
	core     *outposttest.Server
	provider *proxy.Provider
	addr     string
	tlsAddr  string
}

func startStack(t *testing.T) *stack {
	t.Helper()
	core := startCore(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := runOutpost(t, outpost.Config{CoreURL: core.URL(), Token: core.Token("proxy-outpost"), Providers: map[string]outpost.Factory{"proxy": proxy.Factory(proxy.Config{HTTPListener: ln, HTTPSListener: tlsLn, StrictHost: true})}})
	select {
	case <-o.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the outpost never configured the proxy provider")
	}
	return &stack{core: core, provider: o.Provider().(*proxy.Provider), addr: ln.Addr().String(), tlsAddr: tlsLn.Addr().String()}
}

// startCore starts an echo upstream and the test core of
// testdata/outposttest.yaml, whose applications proxy to it.
func startCore(t *testing.T) *outposttest.Server {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"uri": r.RequestURI, "headers": r.Header})
	}))
	t.Cleanup(upstream.Close)
	t.Setenv("AKOUTPOST_PROXY_TEST_UPSTREAM", upstream.URL)
	bp, err := os.ReadFile("testdata/outposttest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	core, err := outposttest.NewServer(bp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	return core
}

// runOutpost runs an outpost for cfg (without update jitter) until the
// test ends, and returns it without waiting for its configuration.
func runOutpost(t *testing.T, cfg outpost.Config) *outpost.Outpost {
	t.Helper()
	cfg.UpdateJitter = -1
	o, err := outpost.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("outpost Run: %v", err)
		}
	})
	return o
}

func (s *stack) client(jar http.CookieJar, follow bool) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if h, _, _ := net.SplitHostPort(a); strings.HasSuffix(h, ".test") {
			a = s.addr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}}
	c := &http.Client{Jar: jar, Transport: tr}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// browserLogin opens target, fills the core's login form and returns the
// page the browser ends on.
func browserLogin(t *testing.T, c *http.Client, target, user, password string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `name="password"`) {
		t.Fatalf("expected the core's login page, got %d at %s: %.300s", resp.StatusCode, resp.Request.URL, page)
	}
	form := url.Values{"username": {user}, "password": {password}, "next": {resp.Request.URL.Query().Get("next")}}
	resp, err = c.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

type upstreamView struct {
	URI     string      `json:"uri"`
	Headers http.Header `json:"headers"`
}

func TestIntegrationProxyModeWithTestCore(t *testing.T) {
	s := startStack(t)
	jar, _ := cookiejar.New(nil)
	b := s.client(jar, true)
	defer b.CloseIdleConnections()
	resp, body := browserLogin(t, b, "http://app.test/hello?x=1", "alice", "alice-password")
	if resp.StatusCode != 200 {
		t.Fatalf("after login: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	var got upstreamView
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("upstream answer: %v: %.300s", err, body)
	}
	if got.URI != "/hello?x=1" || got.Headers.Get("X-Authentik-Username") != "alice" ||
		got.Headers.Get("X-Authentik-Email") != "alice@example.com" || got.Headers.Get("X-Team") != "platform" ||
		got.Headers.Get("X-Authentik-Meta-Provider") != "app" || got.Headers.Get("X-Authentik-Meta-Outpost") != "proxy-outpost" {
		t.Fatalf("upstream saw %s %v", got.URI, got.Headers)
	}
	sid := jwtClaim(t, got.Headers.Get("X-Authentik-Jwt"), "sid")

	// A script presenting the access token as Bearer, without cookies, is
	// let in after the core's introspection says the token is active.
	api := s.client(nil, false)
	defer api.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "http://app.test/api", nil)
	req.Header.Set("Authorization", "Bearer "+got.Headers.Get("X-Authentik-Jwt"))
	r0, err := api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var viaBearer upstreamView
	json.NewDecoder(r0.Body).Decode(&viaBearer)
	r0.Body.Close()
	if r0.StatusCode != 200 || viaBearer.Headers.Get("X-Authentik-Username") != "alice" || viaBearer.Headers.Get("Authorization") != "" {
		t.Fatalf("bearer request: %d user %q", r0.StatusCode, viaBearer.Headers.Get("X-Authentik-Username"))
	}
	req.Header.Set("Authorization", "Bearer not-a-token")
	if r0, err = api.Do(req); err != nil {
		t.Fatal(err)
	}
	r0.Body.Close()
	if r0.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad bearer: %d, want 401", r0.StatusCode)
	}

	// The core ends the authentik session: instruction 4 over the
	// websocket ends the outpost session.
	nf := s.client(jar, false)
	defer nf.CloseIdleConnections()
	r, err := nf.Get("http://app.test/again")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("session not usable before session end: %d", r.StatusCode)
	}
	s.core.Send("proxy-outpost", outpost.InstructionSessionEnd, map[string]any{"session_id": sid})
	for i := 0; ; i++ {
		r, err := nf.Get("http://app.test/again")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusFound {
				break
			}
		}
		if i > 400 {
			t.Fatal("session still valid after the core's session end")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestIntegrationSignOut: sign_out ends the outpost session and sends the
// browser to the core's end-session endpoint of the application.
func TestIntegrationSignOut(t *testing.T) {
	s := startStack(t)
	jar, _ := cookiejar.New(nil)
	b := s.client(jar, true)
	defer b.CloseIdleConnections()
	if resp, body := browserLogin(t, b, "http://app.test/", "alice", "alice-password"); resp.StatusCode != 200 {
		t.Fatalf("login: %d %.200s", resp.StatusCode, body)
	}
	nf := s.client(jar, false)
	defer nf.CloseIdleConnections()
	resp, err := nf.Get("http://app.test/outpost.goauthentik.io/sign_out")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasSuffix(loc.Path, "/application/o/app/end-session/") ||
		loc.Query().Get("id_token_hint") == "" {
		t.Fatalf("sign_out: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, err = nf.Get("http://app.test/"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/outpost.goauthentik.io/start") {
		t.Fatalf("after sign out: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestIntegrationForwardAuthWithTestCore(t *testing.T) {
	s := startStack(t)
	jar, _ := cookiejar.New(nil)
	b := s.client(jar, true)
	defer b.CloseIdleConnections()
	// A browser hits the app behind Traefik; Traefik asks auth/traefik and
	// relays the redirect. Here the test plays Traefik's part by hand.
	check := func() *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://outpost.test/outpost.goauthentik.io/auth/traefik", nil)
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Set("X-Forwarded-Host", "fwd.test")
		req.Header.Set("X-Forwarded-Uri", "/page")
		u, _ := url.Parse("http://fwd.test/")
		for _, c := range jar.Cookies(u) {
			req.AddCookie(c)
		}
		nf := s.client(nil, false)
		defer nf.CloseIdleConnections()
		resp, err := nf.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := check()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("unauthenticated check: %d", resp.StatusCode)
	}
	u, _ := url.Parse("http://fwd.test/")
	jar.SetCookies(u, resp.Cookies())
	// The browser follows the check's redirect into the login; after it,
	// the callback on fwd.test (routed to the outpost) sets the session
	// and sends the browser to /page, which only Traefik would serve: the
	// outpost answers 404 there, which is fine for this test.
	login, _ := browserLogin(t, b, resp.Header.Get("Location"), "alice", "alice-password")
	if login.Request.URL.String() != "http://fwd.test/page" {
		t.Fatalf("login ended at %s", login.Request.URL)
	}
	resp = check()
	if resp.StatusCode != 200 || resp.Header.Get("X-Authentik-Username") != "alice" {
		t.Fatalf("authenticated check: %d user %q", resp.StatusCode, resp.Header.Get("X-Authentik-Username"))
	}
}

func jwtClaim(t *testing.T, jwt, name string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("X-Authentik-Jwt %q is not a JWT", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	v, _ := m[name].(string)
	if v == "" {
		t.Fatalf("JWT has no %s claim: %s", name, b)
	}
	return v
}

// TestIntegrationCertificateBySNI: the provider's certificate, fetched
// from the core through the outpost, is served for its host name; other
// names get the generated fallback.
func TestIntegrationCertificateBySNI(t *testing.T) {
	s := startStack(t)
	cn := func(name string) string {
		conn, err := tls.Dial("tcp", s.tlsAddr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := cn("other.test"); got != "authentik default certificate" {
		t.Fatalf("fallback certificate CN %q", got)
	}
	if got := cn("app.test"); got == "authentik default certificate" {
		t.Fatal("app.test got the fallback, not the provider's certificate")
	}
}
