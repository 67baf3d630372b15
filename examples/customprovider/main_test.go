package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoCore puts a rewriting proxy in front of the test core, which only
// knows proxy and LDAP outposts: the demo's proxy outpost is reported as
// type "echo", and /api/v3/outposts/echo/ serves the proxy provider
// objects. Everything else, the websocket included, passes unchanged, so
// the outpost talks to the core exactly as it would for a type the core
// knows. listedEcho records that the outpost asked for the echo list.
func echoCore(t *testing.T, core *outposttest.Server) (u string, listedEcho *atomic.Bool) {
	t.Helper()
	target, err := url.Parse(core.URL())
	if err != nil {
		t.Fatal(err)
	}
	listedEcho = new(atomic.Bool)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Accept-Encoding") // keep bodies plain for ModifyResponse
			if rest, ok := strings.CutPrefix(r.Out.URL.Path, "/api/v3/outposts/echo/"); ok {
				listedEcho.Store(true)
				r.Out.URL.Path = "/api/v3/outposts/proxy/" + rest
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.URL.Path != "/api/v3/outposts/instances/" || resp.StatusCode != http.StatusOK {
				return nil
			}
			var page map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
				return err
			}
			resp.Body.Close()
			results, _ := page["results"].([]any)
			for _, r := range results {
				if o, ok := r.(map[string]any); ok && o["type"] == "proxy" {
					o["type"] = "echo"
				}
			}
			b, err := json.Marshal(page)
			if err != nil {
				return err
			}
			resp.Body = io.NopCloser(strings.NewReader(string(b)))
			resp.ContentLength = int64(len(b))
			resp.Header.Del("Content-Length")
			return nil
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL, listedEcho
}

func TestCustomProvider(t *testing.T) {
	core, err := outposttest.NewServer(outposttest.DemoBlueprint)
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	coreURL, listedEcho := echoCore(t, core)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{CoreURL: coreURL, Token: core.Token("demo-proxy"), Type: "echo", Listener: ln})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	get := func(host, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	waitFor(t, func() bool {
		code, _ := get("whoami.localhost:9000", "/")
		return code == http.StatusOK
	})
	if !listedEcho.Load() {
		t.Error("the outpost did not list /api/v3/outposts/echo/")
	}

	tests := []struct {
		name, host, path string
		code             int
		body             string
	}{
		{"first object", "whoami.localhost:9000", "/hello", http.StatusOK, "echo whoami: GET /hello\n"},
		{"second object", "FORWARD.localhost:9000", "/x", http.StatusOK, "echo forward: GET /x\n"},
		{"unknown host", "other.localhost", "/", http.StatusNotFound, "no echo site for this host\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := get(tt.host, tt.path); code != tt.code || body != tt.body {
				t.Errorf("GET %s%s = %d %q, want %d %q", tt.host, tt.path, code, body, tt.code, tt.body)
			}
		})
	}

	t.Run("provider-specific message", func(t *testing.T) {
		waitFor(t, func() bool { return len(core.Connections("demo-proxy")) > 0 })
		if n := core.Send("demo-proxy", outpost.InstructionProviderSpecific,
			map[string]any{"announcement": "maintenance at noon"}); n == 0 {
			t.Fatal("no websocket received the message")
		}
		waitFor(t, func() bool {
			_, body := get("whoami.localhost:9000", "/")
			return strings.Contains(body, "announcement: maintenance at noon")
		})
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 200 {
		if ok() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("condition not met in time")
}
