package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/coder/websocket"
)

func TestProxyModeLogin(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	b := e.browser()
	resp := login(t, e, b, "http://app.test/some/path?x=1&y=%2F")
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d after login: %s", resp.StatusCode, body)
	}
	got := decodeEcho(t, resp)
	// The query string survives the login (authentik #24966).
	if got.URI != "/some/path?x=1&y=%2F" {
		t.Errorf("upstream URI = %q", got.URI)
	}
	if got.Host != "app.test" {
		t.Errorf("upstream Host = %q, want the client's", got.Host)
	}
	want := map[string]string{
		"X-Authentik-Username":      "alice",
		"X-Authentik-Groups":        "admins|staff",
		"X-Authentik-Entitlements":  "e1",
		"X-Authentik-Email":         "alice@example.test",
		"X-Authentik-Name":          "Alice Example",
		"X-Authentik-Uid":           "user-sub-1",
		"X-Authentik-Meta-Outpost":  "test-outpost",
		"X-Authentik-Meta-Provider": "app",
		"X-Authentik-Meta-App":      "app-slug",
		"X-Authentik-Meta-Version":  "goauthentik.io/outpost/0.0.0-test",
		"X-Authentik-Meta-Jwks":     e.idp.srv.URL + "/application/o/app/jwks/",
		"X-Foo":                     "bar",
		"X-Forwarded-Host":          "app.test",
	}
	for k, v := range want {
		if g := got.Headers.Get(k); g != v {
			t.Errorf("upstream %s = %q, want %q", k, g, v)
		}
	}
	if got.Headers.Get("X-Authentik-Jwt") == "" {
		t.Error("upstream got no X-Authentik-Jwt")
	}
	if ck := got.Headers.Get("Cookie"); strings.Contains(ck, "authentik_proxy_") {
		t.Errorf("the outpost's cookies reached the upstream: %q", ck)
	}
	// Session reused: the next request goes straight through.
	resp = mustGet(t, e.noFollow(b.Jar), "http://app.test/again", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second request status %d, want 200 from the session", resp.StatusCode)
	}
}

func TestProxyModeCookieAttributes(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "https://app.test", cookieDomain: ""})
	a := e.p.routes.Load().all[0]
	ck := a.cookie(a.cookieName, "v", time.Hour)
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
		t.Fatalf("cookie attributes = %+v", ck)
	}
	// authentik's name: authentik_proxy_ + 8 hex of sha256(client_id).
	if !strings.HasPrefix(a.cookieName, "authentik_proxy_") || len(a.cookieName) != len("authentik_proxy_")+8 {
		t.Fatalf("cookie name %q", a.cookieName)
	}
}

func TestProxyModeUnauthenticated(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test", skip: "^/public"})
	c := e.noFollow(nil)
	tests := []struct {
		name     string
		path     string
		hdr      map[string]string
		status   int
		location string
	}{
		{"browser is sent to start with the full URL", "/foo/bar?q=1", nil, 302,
			"http://app.test/outpost.goauthentik.io/start?rd=" + url.QueryEscape("http://app.test/foo/bar?q=1")},
		{"encoded slash stays encoded in rd", "/api/queues/%2F/q", nil, 302,
			"http://app.test/outpost.goauthentik.io/start?rd=" + url.QueryEscape("http://app.test/api/queues/%2F/q")},
		{"fetch with Accept json gets 401", "/api", map[string]string{"Accept": "application/json"}, 401, ""},
		{"XMLHttpRequest gets 401", "/api", map[string]string{"X-Requested-With": "XMLHttpRequest"}, 401, ""},
		{"non-navigation fetch gets 401", "/api", map[string]string{"Sec-Fetch-Mode": "cors"}, 401, ""},
		{"navigation still redirects", "/page", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html,application/json"}, 302, ""},
		{"bad bearer with intercept gets 401", "/api", map[string]string{"Authorization": "Bearer nope"}, 401, ""},
		{"allowlisted path is proxied", "/public/x", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustGet(t, c, "http://app.test"+tt.path, tt.hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.location != "" && resp.Header.Get("Location") != tt.location {
				t.Fatalf("Location = %q\nwant       %q", resp.Header.Get("Location"), tt.location)
			}
		})
	}
}

// TestProxyModePathsNotCleaned: authentik's router cleaned paths and
// answered 301 for "//" and "%2F" (the RabbitMQ UI broke, #12602, #7172).
// With a session, paths reach the upstream exactly as sent; without one,
// non-canonical paths need a login (TestSkipPathTraversal).
func TestProxyModePathsNotCleaned(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test", skip: "^/"})
	cookie := sessionCookie(t, e.p.routes.Load().all[0], fixedClaims())
	for _, p := range []string{"/api/queues/%2F/q", "//double//slash", "/a/./b/../c", "/x%2e%2e/y", "/public/../private/x"} {
		// A raw request line: Go's client would rewrite "//host" paths.
		r := rawRequest{method: "GET", target: p, header: map[string]string{"Host": "app.test", "Cookie": cookie}}
		status, body := r.do(t, e.srv.Listener.Addr().String())
		if status != 200 {
			t.Fatalf("%s: status %d", p, status)
		}
		var got echoed
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v: %s", p, err, body)
		}
		if got.URI != p {
			t.Errorf("upstream got %q, want %q unchanged", got.URI, p)
		}
	}
}

func TestBasicAuthOutbound(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test", basic: true})
	b := e.browser()
	got := decodeEcho(t, login(t, e, b, "http://app.test/"))
	user, pass, ok := (&http.Request{Header: got.Headers}).BasicAuth()
	if !ok || user != "alice-basic" || pass != "s3cret" {
		t.Fatalf("upstream basic auth = %q %q %v", user, pass, ok)
	}
}

func TestWebsocketPassThrough(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	b := e.browser()
	login(t, e, b, "http://app.test/")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws://app.test/ws", &websocket.DialOptions{HTTPClient: b})
	if err != nil {
		t.Fatalf("dial: %v (resp %v)", err, resp)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := conn.Read(ctx)
	if err != nil || string(msg) != "alice:ping" {
		t.Fatalf("read %q %v", msg, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

func TestRouting(t *testing.T) {
	e := newTestEnv(t, Config{},
		app{name: "a", external: "http://a.test"},
		app{name: "b", external: "http://b.test", clientID: "client-id-b"},
	)
	nf := e.noFollow(nil)
	if resp := mustGet(t, nf, "http://unknown.test/outpost.goauthentik.io/ping", nil); resp.StatusCode != 204 {
		t.Fatalf("ping: %d", resp.StatusCode)
	}
	resp := mustGet(t, nf, "http://unknown.test/", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "no app for hostname") {
		t.Fatalf("unknown host: %d %s", resp.StatusCode, body)
	}
	// Host with the default port is the same host.
	if resp := mustGet(t, nf, "http://a.test/x", map[string]string{"Host": "a.test:80"}); resp.StatusCode != 302 {
		t.Fatalf("a.test:80: %d", resp.StatusCode)
	}
}

func TestSingleAppFallback(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "a", external: "http://a.test"})
	if resp := mustGet(t, e.noFollow(nil), "http://other.test/x", nil); resp.StatusCode != 302 {
		t.Fatalf("single app, unknown host: %d, want the app's login redirect", resp.StatusCode)
	}
	strict := newTestEnv(t, Config{StrictHost: true}, app{name: "a", external: "http://a.test"})
	if resp := mustGet(t, strict.noFollow(nil), "http://other.test/x", nil); resp.StatusCode != 400 {
		t.Fatalf("strict, unknown host: %d, want 400", resp.StatusCode)
	}
}

func TestApplySkipsBadProviders(t *testing.T) {
	e := newTestEnv(t, Config{})
	err := e.apply(
		app{name: "good", external: "http://good.test"},
		app{name: "bad-host", external: "not a url", clientID: "c2"},
		app{name: "bad-regex", external: "http://r.test", skip: "([", clientID: "c3"},
		app{name: "bad-mode", external: "http://m.test", mode: "teleport", clientID: "c4"},
		app{name: "dup", external: "http://good.test", clientID: "c5"},
	)
	if err == nil {
		t.Fatal("Apply reported no error for bad providers")
	}
	for _, name := range []string{"bad-host", "bad-regex", "bad-mode", "dup"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %q: %v", name, err)
		}
	}
	rt := e.p.routes.Load()
	if len(rt.all) != 1 || rt.all[0].name != "good" {
		t.Fatalf("loaded %d applications", len(rt.all))
	}
	if err := e.p.Apply(context.Background(), outpost.Update{Providers: []json.RawMessage{[]byte(`{`)}}); err == nil {
		t.Fatal("undecodable provider accepted")
	}
}

// TestApplyKeepsLastGoodProvider: a provider that fails to rebuild on a
// refresh (here: its regex turned invalid) keeps serving its previous
// configuration instead of disappearing.
func TestApplyKeepsLastGoodProvider(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test", skip: "^/open"})
	if err := e.apply(app{name: "app", external: "http://app.test", skip: "(["}); err == nil {
		t.Fatal("bad regex accepted")
	}
	rt := e.p.routes.Load()
	if len(rt.all) != 1 || rt.all[0].skip[0].String() != "^/open" {
		t.Fatalf("previous configuration not kept: %d apps", len(rt.all))
	}
}

func TestStreamingPassThrough(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test", skip: "^/stream"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://app.test/stream", nil)
	resp, err := e.noFollow(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first streamed line %q, %v (is the proxy buffering?)", line, err)
	}
}
