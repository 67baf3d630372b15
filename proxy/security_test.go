package proxy

import (
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestForgedIdentityHeadersStripped: a client that sends its own
// X-authentik-username (in any spelling, or with underscores that nginx or
// CGI fold into dashes) must never reach the upstream with it, logged in or
// not, allowlisted path or not. authentik passed them through on
// allowlisted paths.
func TestForgedIdentityHeadersStripped(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test", skip: "^/public"})
	forged := map[string]string{
		"X-Authentik-Username": "mallory",
		"x-authentik-groups":   "admins",
		"X_authentik_username": "mallory",
		"X-Authentik_uid":      "0",
	}
	check := func(t *testing.T, got echoed, wantUser string) {
		t.Helper()
		if u := got.Headers.Get("X-Authentik-Username"); u != wantUser {
			t.Errorf("X-Authentik-Username = %q, want %q", u, wantUser)
		}
		for k := range got.Headers {
			if strings.Contains(k, "_") {
				t.Errorf("underscore header %q reached the upstream", k)
			}
		}
		if g := got.Headers.Get("X-Authentik-Groups"); strings.Contains(g, "admins") && wantUser == "" {
			t.Errorf("forged groups reached the upstream: %q", g)
		}
	}
	t.Run("allowlisted, anonymous", func(t *testing.T) {
		resp := mustGet(t, e.noFollow(nil), "http://app.test/public/x", forged)
		check(t, decodeEcho(t, resp), "")
	})
	t.Run("logged in", func(t *testing.T) {
		b := e.browser()
		login(t, e, b, "http://app.test/")
		resp := mustGet(t, b, "http://app.test/private", forged)
		check(t, decodeEcho(t, resp), "alice")
	})
}

// TestCallbackWrongState: a callback whose state was not made by this
// provider (forged, or from another provider) is a 400 with the HTML
// error page, not a login.
func TestCallbackWrongState(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	for _, state := range []string{"", "garbage", "eyJhbGciOiJIUzI1NiJ9.e30.x"} {
		resp := mustGet(t, e.noFollow(nil), "http://app.test/outpost.goauthentik.io/callback?X-authentik-auth-callback=true&code=c&state="+url.QueryEscape(state), nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(string(body), "Login failed") {
			t.Fatalf("state %q: status %d, type %q, body %.200s", state, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if resp.Header.Get("Set-Cookie") != "" && strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=") &&
			!strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("a session was created: %s", resp.Header.Get("Set-Cookie"))
		}
	}
}

// TestCallbackWithoutStateCookie: a valid state arriving in a browser that
// did not start the login (login CSRF, or cookies lost) is refused; the
// page offers a fresh login back to the validated target.
func TestCallbackWithoutStateCookie(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	starter := e.noFollow(nil)
	resp := mustGet(t, starter, "http://app.test/outpost.goauthentik.io/start?rd=/x", nil)
	resp = mustGet(t, starter, resp.Header.Get("Location"), nil)
	cb := resp.Header.Get("Location")
	other := e.noFollow(nil) // another browser, no cookies
	resp = mustGet(t, other, cb, nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "another browser") ||
		!strings.Contains(string(body), url.QueryEscape("http://app.test/x")) {
		t.Fatalf("status %d body %.300s", resp.StatusCode, body)
	}
}

// TestOpenRedirectRefused: rd, the state and forwarded headers must not
// send a browser off-site after login.
func TestOpenRedirectRefused(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	for _, rd := range []string{
		"https://evil.test/", "//evil.test/x", "/\\evil.test", "http://app.test@evil.test/",
		"javascript:alert(1)", "http://evil.test\\@app.test/", "/\t/evil.test", "http://app.test.evil.test/",
		"http:evil.test",
	} {
		t.Run(rd, func(t *testing.T) {
			b := e.browser()
			nf := e.noFollow(b.Jar)
			resp := mustGet(t, nf, "http://app.test/outpost.goauthentik.io/start?rd="+url.QueryEscape(rd), nil)
			resp = mustGet(t, nf, resp.Header.Get("Location"), nil)
			resp = mustGet(t, nf, resp.Header.Get("Location"), nil)
			if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://app.test" {
				t.Fatalf("after login: status %d Location %q; want the external host", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	t.Run("same host accepted", func(t *testing.T) {
		b := e.browser()
		nf := e.noFollow(b.Jar)
		resp := mustGet(t, nf, "http://app.test/outpost.goauthentik.io/start?rd="+url.QueryEscape("http://app.test/deep?q=1"), nil)
		resp = mustGet(t, nf, resp.Header.Get("Location"), nil)
		resp = mustGet(t, nf, resp.Header.Get("Location"), nil)
		if resp.Header.Get("Location") != "http://app.test/deep?q=1" {
			t.Fatalf("Location %q", resp.Header.Get("Location"))
		}
	})
}

// TestTamperedOrExpiredCookie: a cookie that was altered, or whose session
// expired, sends the user to login and is cleared; it never authenticates.
func TestTamperedOrExpiredCookie(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newTestEnv(t, Config{Now: clock}, app{name: "app", external: "http://app.test"})
	b := e.browser()
	login(t, e, b, "http://app.test/")
	u, _ := url.Parse("http://app.test/")
	var session *http.Cookie
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == e.p.routes.Load().all[0].cookieName {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after login")
	}
	nf := e.noFollow(nil)
	tamper := []byte(session.Value)
	tamper[len(tamper)/2] ^= 1
	resp := mustGet(t, nf, "http://app.test/x", map[string]string{"Cookie": session.Name + "=" + string(tamper)})
	if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Set-Cookie"), session.Name+"=;") {
		t.Fatalf("tampered cookie: status %d Set-Cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	resp = mustGet(t, nf, "http://app.test/x", map[string]string{"Cookie": session.Name + "=" + session.Value})
	if resp.StatusCode != 200 {
		t.Fatalf("valid cookie: status %d", resp.StatusCode)
	}
	now = now.Add(2 * time.Hour) // past the token's exp and the validity
	resp = mustGet(t, nf, "http://app.test/x", map[string]string{"Cookie": session.Name + "=" + session.Value})
	if resp.StatusCode != 302 {
		t.Fatalf("expired session: status %d, want a login redirect", resp.StatusCode)
	}
}

// TestHostCannotSelectAnotherProvidersSession: a session made for provider
// A, presented to provider B (by Host, X-Forwarded-Host, or renaming the
// cookie to B's name) is worthless there.
func TestHostCannotSelectAnotherProvidersSession(t *testing.T) {
	e := newTestEnv(t, Config{},
		app{name: "a", external: "http://a.test"},
		app{name: "b", external: "http://b.test", clientID: "client-id-b"},
	)
	b := e.browser()
	login(t, e, b, "http://a.test/")
	rt := e.p.routes.Load()
	aName, bName := rt.byHost["a.test"].cookieName, rt.byHost["b.test"].cookieName
	u, _ := url.Parse("http://a.test/")
	var val string
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == aName {
			val = c.Value
		}
	}
	if val == "" {
		t.Fatal("no session for a")
	}
	nf := e.noFollow(nil)
	for name, hdr := range map[string]map[string]string{
		"Host b, a's cookie":             {"Cookie": aName + "=" + val},
		"Host b, a's cookie as b's name": {"Cookie": bName + "=" + val},
		"X-Forwarded-Host b":             {"Cookie": bName + "=" + val, "X-Forwarded-Host": "b.test"},
	} {
		target := "http://b.test/x"
		if hdr["X-Forwarded-Host"] != "" {
			target = "http://a.test/x"
		}
		resp := mustGet(t, nf, target, hdr)
		if resp.StatusCode != 302 {
			t.Errorf("%s: status %d, want a login redirect", name, resp.StatusCode)
		}
	}
	// The session itself also names its provider: even a cookie encoded
	// with b's keys around a's session ID is refused.
	a := rt.byHost["a.test"]
	var id string
	if err := a.sessionCodec.Decode(aName, val, &id); err != nil {
		t.Fatal(err)
	}
	forged, _ := rt.byHost["b.test"].sessionCodec.Encode(bName, id)
	resp := mustGet(t, nf, "http://b.test/x", map[string]string{"Cookie": bName + "=" + forged})
	if resp.StatusCode != 302 {
		t.Errorf("a's session under b's keys: status %d, want a login redirect", resp.StatusCode)
	}
}

// TestTrustedProxies: with TrustedProxies set, a client outside them
// cannot choose the application with X-Forwarded-Host, nor drive the
// forward-auth endpoints.
func TestTrustedProxies(t *testing.T) {
	e := newTestEnv(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		app{name: "a", external: "http://a.test", skip: "^/"},
		app{name: "b", mode: "forward_single", external: "http://b.test", clientID: "client-id-b"},
	)
	nf := e.noFollow(nil)
	resp := mustGet(t, nf, "http://a.test/x", map[string]string{"X-Forwarded-Host": "b.test"})
	if resp.StatusCode != 200 {
		t.Fatalf("X-Forwarded-Host from an untrusted peer was honoured: status %d", resp.StatusCode)
	}
	resp = mustGet(t, nf, "http://b.test"+pathTraefik, map[string]string{
		"X-Forwarded-Proto": "https", "X-Forwarded-Host": "b.test", "X-Forwarded-Uri": "/"})
	if resp.StatusCode != 500 {
		t.Fatalf("forward auth from an untrusted peer: status %d, want 500", resp.StatusCode)
	}
	got := decodeEcho(t, mustGet(t, nf, "http://a.test/x", map[string]string{"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"}))
	if got.Headers.Get("X-Forwarded-For") != "127.0.0.1" || got.Headers.Get("X-Forwarded-Proto") != "http" {
		t.Fatalf("untrusted X-Forwarded-* passed on: %v", got.Headers)
	}
}
