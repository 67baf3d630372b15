package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/proxy"
)

// TestCoreAtInternalAddress: an embedded outpost reaches the core at an
// internal address (loopback, or a unix socket), where the OIDC URLs the
// core hands out are useless to browsers. Browsers must be sent to the
// outpost's authentik_host setting, live when it is edited, while the
// token exchange, JWKS and websocket stay on the internal address.
func TestCoreAtInternalAddress(t *testing.T) {
	for _, where := range []string{"loopback", "unix socket"} {
		t.Run(where, func(t *testing.T) {
			core := startCore(t)
			coreURL := core.URL()
			if where == "unix socket" {
				// Short: socket paths are limited to about 100 bytes.
				dir, err := os.MkdirTemp("", "ak")
				if err != nil {
					t.Fatal(err)
				}
				defer os.RemoveAll(dir)
				sock := filepath.Join(dir, "core.sock")
				ln, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				srv := &http.Server{Handler: core.Handler(), ReadHeaderTimeout: 10 * time.Second}
				go srv.Serve(ln)
				defer srv.Close()
				coreURL = "unix://" + sock
			}
			if err := core.UpdateOutpostConfig("proxy-outpost", map[string]any{"authentik_host": "http://auth.public.example/"}); err != nil {
				t.Fatal(err)
			}

			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			o := runOutpost(t, outpost.Config{CoreURL: coreURL, Token: core.Token("proxy-outpost"), Providers: map[string]outpost.Factory{"proxy": proxy.Factory(proxy.Config{HTTPListener: ln, StrictHost: true})}})

			// A browser: the applications are the outpost, the public
			// names of the core reach the test core's TCP listener.
			coreAddr := strings.TrimPrefix(core.URL(), "http://")
			tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				switch h, _, _ := net.SplitHostPort(a); {
				case strings.HasSuffix(h, ".test"):
					a = ln.Addr().String()
				case strings.HasSuffix(h, ".public.example"):
					a = coreAddr
				}
				var d net.Dialer
				return d.DialContext(ctx, network, a)
			}}
			defer tr.CloseIdleConnections()
			nf := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			authorizeHost := func() string {
				resp, err := nf.Get("http://app.test/outpost.goauthentik.io/start?rd=http://app.test/x")
				if err != nil {
					return err.Error()
				}
				resp.Body.Close()
				loc, err := url.Parse(resp.Header.Get("Location"))
				if err != nil || resp.StatusCode != http.StatusFound {
					return resp.Status
				}
				return loc.Host
			}
			waitUntil(t, "the outpost sends browsers to authentik_host", func() bool { return authorizeHost() == "auth.public.example" })

			// The whole login, through the public name; the outpost's
			// back-channel calls go to the internal address.
			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Jar: jar, Transport: tr}
			resp, body := browserLogin(t, browser, "http://app.test/hello", "alice", "alice-password")
			var got upstreamView
			if err := json.Unmarshal(body, &got); err != nil || got.Headers.Get("X-Authentik-Username") != "alice" {
				t.Fatalf("after login: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
			}

			// An edit in the core reaches the outpost over the websocket.
			waitUntil(t, "the control channel", o.Connected)
			if err := core.UpdateOutpostConfig("proxy-outpost", map[string]any{"authentik_host": "http://login.public.example/"}); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the edited authentik_host is followed", func() bool { return authorizeHost() == "login.public.example" })
			if err := core.UpdateOutpostConfig("proxy-outpost", map[string]any{"authentik_host_browser": "http://browser.public.example/"}); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "authentik_host_browser wins over authentik_host", func() bool { return authorizeHost() == "browser.public.example" })
			resp, err = browser.Get("http://app.test/again")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("the session did not survive the refresh: %d", resp.StatusCode)
			}
		})
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
