package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// hostName is the host server's own name: the reverse proxies send the
// outpost's requests to it, as to https://auth.example.com.
const hostName = "auth.example.test"

// TestForwardAuthAtTheHostsAddress: the most common embedded setup. A
// real nginx (auth_request) or Caddy (forward_auth) in front of an
// application points forward auth at the host server's own address and
// name; the host hands those requests to the outpost because it claims
// them, a browser logs in through the test core, the upstream gets the
// identity headers, and the host's own routes stay the host's.
func TestForwardAuthAtTheHostsAddress(t *testing.T) {
	for _, peer := range []struct {
		name, bin, template string
		start               func(t *testing.T, bin, conf, dir string) *exec.Cmd
	}{
		{"nginx", "nginx", "nginx.conf.tmpl", func(t *testing.T, bin, conf, dir string) *exec.Cmd {
			return exec.Command(bin, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
		}},
		{"caddy", "caddy", "Caddyfile.tmpl", func(t *testing.T, bin, conf, dir string) *exec.Cmd {
			cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
			cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
			return cmd
		}},
	} {
		t.Run(peer.name, func(t *testing.T) {
			bin, err := exec.LookPath(peer.bin)
			if err != nil {
				testservers.Unavailable(t, "%s not installed (apt-get install %s)", peer.bin, peer.bin)
			}
			host := startHost(t)
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode(map[string]any{"uri": r.RequestURI, "headers": r.Header})
			}))
			defer upstream.Close()

			dir := t.TempDir()
			port := testservers.FreePort(t)
			user := ""
			if os.Geteuid() == 0 {
				user = "user root root;"
			}
			tmpl, err := os.ReadFile(filepath.Join("testdata", peer.template))
			if err != nil {
				t.Fatal(err)
			}
			conf := strings.NewReplacer("{{DIR}}", dir, "{{PORT}}", strconv.Itoa(port), "{{USER}}", user,
				"{{UPSTREAM}}", upstream.Listener.Addr().String(), "{{HOST}}", host, "{{HOSTNAME}}", hostName,
			).Replace(string(tmpl))
			confPath := filepath.Join(dir, "conf")
			if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			addr, _ := testservers.StartPeer(t, peer.name, peer.start(t, bin, confPath, dir), port, "")

			// A browser: app3.test is the reverse proxy, the core is itself.
			jar, _ := cookiejar.New(nil)
			tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				if h, _, _ := net.SplitHostPort(a); h == "app3.test" {
					a = addr
				}
				var d net.Dialer
				return d.DialContext(ctx, network, a)
			}}
			defer tr.CloseIdleConnections()
			browser := &http.Client{Jar: jar, Transport: tr}

			resp, err := browser.Get("http://app3.test/secret?x=1")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(page), `name="password"`) {
				t.Fatalf("expected the core's login page, got %d at %s: %.300s", resp.StatusCode, resp.Request.URL, page)
			}
			form := url.Values{"username": {"alice"}, "password": {"alice-password"}, "next": {resp.Request.URL.Query().Get("next")}}
			resp, err = browser.PostForm(resp.Request.URL.String(), form)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				URI     string      `json:"uri"`
				Headers http.Header `json:"headers"`
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("after login: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
			}
			if got.URI != "/secret?x=1" || got.Headers.Get("X-Authentik-Username") != "alice" {
				t.Fatalf("upstream saw %s with %v", got.URI, got.Headers)
			}

			// Without the session, the reverse proxy sends the browser to log in.
			nf := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err = nf.Get("http://app3.test/secret")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("anonymous request through %s: status %d, want 302", peer.name, resp.StatusCode)
			}

			// The host's own routes, on its own name, stay reachable without a login.
			req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
			req.Host = hostName
			resp, err = nf.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			own, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(own), "hello from the host") {
				t.Fatalf("the host's own page: %d %q", resp.StatusCode, own)
			}
		})
	}
}

// startHost runs the example against a test core until the test ends and
// returns its address once the outposts serve their applications.
func startHost(t *testing.T) string {
	t.Helper()
	bp, err := os.ReadFile("testdata/two-outposts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	core, err := outposttest.NewServer(bp)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{CoreURL: core.URL(), Tokens: []string{core.Token("outpost-one"), core.Token("outpost-two")}, Listener: ln})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		core.Close()
	})
	addr := ln.Addr().String()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	waitFor(t, func() bool {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "app1.localhost:9000"
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusFound
	})
	return addr
}
