package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEmbedded(t *testing.T) {
	bp, err := os.ReadFile("testdata/two-outposts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	core, err := outposttest.NewServer(bp)
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{
			CoreURL:  core.URL(),
			Tokens:   []string{core.Token("outpost-one"), core.Token("outpost-two")},
			Listener: ln,
		})
	}()
	base := "http://" + ln.Addr().String()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(host, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// Wait until both outposts have their configuration: until then their
	// hosts fall through to the host's routes.
	waitFor(t, func() bool {
		return get("app1.localhost:9000", "/").StatusCode == http.StatusFound &&
			get("app2.localhost:9000", "/").StatusCode == http.StatusFound
	})

	t.Run("other hosts reach the host's routes", func(t *testing.T) {
		for _, host := range []string{"example.org", "app3.localhost:9000", ln.Addr().String()} {
			req, _ := http.NewRequest("GET", base+"/", nil)
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "hello from the host") {
				t.Errorf("host %s: %d %q, want the host's page", host, resp.StatusCode, body)
			}
		}
	})

	t.Run("provider hosts are sent to log in at the core", func(t *testing.T) {
		for _, host := range []string{"app1.localhost:9000", "app2.localhost:9000"} {
			// The provider first sends the browser to its own start path,
			// which then redirects to the core's authorize endpoint.
			resp := get(host, "/some/page")
			loc, err := resp.Location()
			if resp.StatusCode != http.StatusFound || err != nil {
				t.Fatalf("host %s: %d %v, want 302", host, resp.StatusCode, err)
			}
			resp = get(host, loc.RequestURI())
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("host %s start: %d, want 302", host, resp.StatusCode)
			}
			if l := resp.Header.Get("Location"); !strings.HasPrefix(l, core.URL()) {
				t.Errorf("host %s start: Location %q, want the core %s", host, l, core.URL())
			}
		}
	})

	t.Run("one /metrics shows host and outposts", func(t *testing.T) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(body)
		if !strings.Contains(text, "host_requests_total") {
			t.Error("/metrics lacks the host's own metric")
		}
		for _, name := range []string{"outpost-one", "outpost-two"} {
			if !hasSeries(text, "authentik_outpost_info", name) {
				t.Errorf("/metrics lacks authentik_outpost_info for %s:\n%s", name, text)
			}
		}
	})

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// hasSeries reports whether the exposition has a sample of metric whose
// labels mention value.
func hasSeries(text, metric, value string) bool {
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, metric+"{") && strings.Contains(line, `"`+value+`"`) {
			return true
		}
	}
	return false
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
