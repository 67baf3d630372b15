package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
)

// login runs the whole browser login for url through the fake IdP and
// returns the final response.
func login(t *testing.T, e *testEnv, c *http.Client, target string) *http.Response {
	t.Helper()
	return mustGet(t, c, target, nil)
}

// TestParallelLogins: two tabs start a login at once and finish in the
// other order. authentik kept one state per session and answered the first
// tab "invalid state" (400); each login here has its own state cookie.
func TestParallelLogins(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	b := e.browser()
	nf := e.noFollow(b.Jar)
	var callbacks []string
	for _, p := range []string{"/tab1", "/tab2"} {
		resp := mustGet(t, nf, "http://app.test"+p, nil) // -> start
		resp = mustGet(t, nf, resp.Header.Get("Location"), nil)
		if resp.StatusCode != 302 {
			t.Fatalf("start: status %d", resp.StatusCode)
		}
		resp = mustGet(t, nf, resp.Header.Get("Location"), nil) // IdP approves
		callbacks = append(callbacks, resp.Header.Get("Location"))
	}
	for i := len(callbacks) - 1; i >= 0; i-- {
		resp := mustGet(t, nf, callbacks[i], nil)
		if resp.StatusCode != 302 {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("callback %d: status %d: %s", i, resp.StatusCode, body)
		}
		if want := "http://app.test/tab" + string(rune('1'+i)); resp.Header.Get("Location") != want {
			t.Fatalf("callback %d went to %q, want %q", i, resp.Header.Get("Location"), want)
		}
	}
}

func TestCallbackExchangeFails(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	nf := e.noFollow(nil)
	jarClient := e.browser()
	nf.Jar = jarClient.Jar
	resp := mustGet(t, nf, "http://app.test/outpost.goauthentik.io/start?rd=/x", nil)
	resp = mustGet(t, nf, resp.Header.Get("Location"), nil)
	e.idp.mu.Lock()
	e.idp.failNext = true
	e.idp.mu.Unlock()
	resp = mustGet(t, nf, resp.Header.Get("Location"), nil)
	body, _ := io.ReadAll(resp.Body)
	// No silent redirect back to the app (authentik's loop, §3.3): an error
	// page with a way to try again.
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "Log in again") {
		t.Fatalf("status %d body %.300s", resp.StatusCode, body)
	}
}

func TestSignOut(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	b := e.browser()
	login(t, e, b, "http://app.test/")
	nf := e.noFollow(b.Jar)
	resp := mustGet(t, nf, "http://app.test/outpost.goauthentik.io/sign_out", nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Path != "/application/o/app/end-session/" || loc.Query().Get("id_token_hint") == "" {
		t.Fatalf("sign_out: status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := e.p.store.(interface{ Len() int }).Len(); n != 0 {
		t.Fatalf("%d sessions left after sign out", n)
	}
	resp = mustGet(t, nf, "http://app.test/x", nil)
	if resp.StatusCode != 302 {
		t.Fatalf("after sign out: status %d", resp.StatusCode)
	}
}

// TestSessionEndMessage: the core's instruction 4 names an authentik
// session (sid); every outpost session from it ends.
func TestSessionEndMessage(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	b := e.browser()
	login(t, e, b, "http://app.test/")
	nf := e.noFollow(b.Jar)
	if resp := mustGet(t, nf, "http://app.test/x", nil); resp.StatusCode != 200 {
		t.Fatalf("before: status %d", resp.StatusCode)
	}
	err := e.p.HandleMessage(context.Background(), outpost.Message{
		Instruction: outpost.InstructionSessionEnd, Args: map[string]any{"session_id": "authentik-session-hash-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp := mustGet(t, nf, "http://app.test/x", nil); resp.StatusCode != 302 {
		t.Fatalf("after session end: status %d, want a login redirect", resp.StatusCode)
	}
	if err := e.p.HandleMessage(context.Background(), outpost.Message{Instruction: outpost.InstructionSessionEnd}); err == nil {
		t.Fatal("session end without session_id accepted")
	}
}

func TestHeaderAuth(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	e.idp.mu.Lock()
	e.idp.tokens["good-token"] = map[string]any{"sub": "svc", "preferred_username": "robot", "exp": time.Now().Add(time.Hour).Unix()}
	e.idp.appPass["robot2"] = "app-password"
	e.idp.mu.Unlock()
	nf := e.noFollow(nil)
	tests := []struct {
		name, authz, user string
		status            int
	}{
		{"bearer", "Bearer good-token", "robot", 200},
		{"basic token", "Basic " + b64("goauthentik.io/token:good-token"), "robot", 200},
		{"basic app password", "Basic " + b64("robot2:app-password"), "robot2", 200},
		{"bad bearer", "Bearer bad", "", 401},
		{"bad basic", "Basic " + b64("robot2:wrong"), "", 401},
		{"unknown scheme", "Negotiate abc", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := mustGet(t, nf, "http://app.test/api", map[string]string{"Authorization": tt.authz})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 200 {
				got := decodeEcho(t, resp)
				if got.Headers.Get("X-Authentik-Username") != tt.user || got.Headers.Get("Authorization") != "" {
					t.Fatalf("upstream user %q Authorization %q", got.Headers.Get("X-Authentik-Username"), got.Headers.Get("Authorization"))
				}
			}
		})
	}
	// The second use of a header comes from the cache, not the core.
	e.idp.mu.Lock()
	before := len(e.idp.requests)
	e.idp.mu.Unlock()
	mustGet(t, nf, "http://app.test/api", map[string]string{"Authorization": "Bearer good-token"})
	e.idp.mu.Lock()
	after := len(e.idp.requests)
	e.idp.mu.Unlock()
	if after != before {
		t.Fatalf("cached header login called the core again (%d requests)", after-before)
	}
}

func TestHeaderAuthDisabled(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test", intercept: boolPtr(false), skip: "^/open"})
	nf := e.noFollow(nil)
	// Not intercepted: no 401, a normal login redirect, and on an open path
	// the header reaches the upstream untouched.
	if resp := mustGet(t, nf, "http://app.test/api", map[string]string{"Authorization": "Bearer x"}); resp.StatusCode != 302 {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	got := decodeEcho(t, mustGet(t, nf, "http://app.test/open", map[string]string{"Authorization": "Bearer x"}))
	if got.Headers.Get("Authorization") != "Bearer x" {
		t.Fatalf("Authorization not passed through: %q", got.Headers.Get("Authorization"))
	}
}

func b64(s string) string { return basicB64(s) }

func TestSessionLifetimeFromValidity(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	raw := e.wire(app{name: "app", external: "http://app.test"})
	var m map[string]any
	json.Unmarshal(raw, &m)
	m["access_token_validity"] = 60.0
	raw, _ = json.Marshal(m)
	if err := e.p.Apply(context.Background(), outpost.Update{
		Outpost: outpost.Info{BrowserURL: e.idp.srv.URL}, Providers: []json.RawMessage{raw}}); err != nil {
		t.Fatal(err)
	}
	nf := e.noFollow(e.browser().Jar)
	resp := mustGet(t, nf, "http://app.test/outpost.goauthentik.io/start", nil)
	resp = mustGet(t, nf, resp.Header.Get("Location"), nil)
	resp = mustGet(t, nf, resp.Header.Get("Location"), nil)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == e.p.routes.Load().all[0].cookieName {
			session = c
		}
	}
	if session == nil || session.MaxAge <= 0 || session.MaxAge > 60 {
		t.Fatalf("session cookie %+v; want Max-Age within the 60s validity", session)
	}
}

// TestBrowserURL: with AUTHENTIK_HOST_BROWSER (Info.BrowserURL) on another
// host than the API, browsers are sent there, and back-channel calls
// present that host, since authentik derives the issuer from it.
func TestBrowserURL(t *testing.T) {
	e := newTestEnv(t, Config{})
	raw := e.wire(app{name: "app", external: "http://app.test"})
	if err := e.p.Apply(context.Background(), outpost.Update{
		Outpost: outpost.Info{BrowserURL: "https://browser.test"}, Providers: []json.RawMessage{raw}}); err != nil {
		t.Fatal(err)
	}
	a := e.p.routes.Load().all[0]
	for name, got := range map[string]string{"authorize": a.oauth.Endpoint.AuthURL, "end session": a.endSession} {
		if u, _ := url.Parse(got); u.Host != "browser.test" || u.Scheme != "https" {
			t.Errorf("%s URL %q not on the browser host", name, got)
		}
	}
	if u, _ := url.Parse(a.tokenURL); u.Host == "browser.test" {
		t.Errorf("token URL %q moved to the browser host; it must stay on the API host", a.tokenURL)
	}
	a.introspectToken(context.Background(), "x")
	e.idp.mu.Lock()
	defer e.idp.mu.Unlock()
	if n := len(e.idp.hosts); n == 0 || e.idp.hosts[n-1] != "browser.test" {
		t.Fatalf("back-channel Host %v, want browser.test", e.idp.hosts)
	}
}

// TestSessionKeepsClientAuthorization: a user logged in by cookie who also
// sends Authorization (to the upstream's own API) keeps it; only a header
// the outpost consumed for login is removed.
func TestSessionKeepsClientAuthorization(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	b := e.browser()
	login(t, e, b, "http://app.test/")
	got := decodeEcho(t, mustGet(t, b, "http://app.test/api", map[string]string{"Authorization": "Token upstream-own"}))
	if got.Headers.Get("Authorization") != "Token upstream-own" || got.Headers.Get("X-Authentik-Username") != "alice" {
		t.Fatalf("upstream Authorization %q user %q", got.Headers.Get("Authorization"), got.Headers.Get("X-Authentik-Username"))
	}
}
