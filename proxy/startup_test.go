package proxy_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
	"github.com/akoutpost/akoutpost/proxy"
)

// TestBrokenProviderAtStart is the story of an outpost that never became
// ready: its second provider had an invalid skip_path_regex, so Apply
// returned an error, the outpost took the whole initial configuration as
// failed and retried it for ever, and a request for the valid application
// waited on an accepted connection nobody served. One broken provider
// object must be refused alone, with the log naming it, while the others
// serve; and while nothing valid is configured, requests get a prompt 503.
func TestBrokenProviderAtStart(t *testing.T) {
	t.Run("one of two broken", func(t *testing.T) {
		s := startOutpost(t, map[string]map[string]any{"fwd": {"skip_path_regex": "^/public/(["}})
		select {
		case <-s.outpost.Ready():
		case <-time.After(20 * time.Second):
			t.Fatalf("the outpost never became ready; log:\n%s", s.logs.String())
		}
		if status, _ := s.get(t, "app.test", "/"); status != http.StatusFound {
			t.Fatalf("the valid application: status %d, want 302 to log in", status)
		}
		if status, _ := s.get(t, "fwd.test", "/outpost.goauthentik.io/auth/nginx"); status != http.StatusBadRequest {
			t.Fatalf("the refused application: status %d, want 400 (no such host)", status)
		}
		log := s.logs.String()
		if !strings.Contains(log, "some provider objects were refused") || !strings.Contains(log, `"refused":["fwd"]`) ||
			strings.Contains(log, "initial configuration failed") {
			t.Fatalf("the log does not tell what happened:\n%s", log)
		}
	})

	t.Run("all broken, then fixed", func(t *testing.T) {
		s := startOutpost(t, map[string]map[string]any{
			"app": {"skip_path_regex": "(["}, "fwd": {"skip_path_regex": "(["},
		})
		var status int
		var body string
		waitUntil(t, "the outpost answers", func() bool {
			status, body = s.get(t, "app.test", "/")
			return status != 0
		})
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "serves no application yet") {
			t.Fatalf("with every provider refused: %d %q, want 503 saying why", status, body)
		}
		select {
		case <-s.outpost.Ready():
			t.Fatal("Ready with every provider object refused")
		default:
		}
		// The fix reaches the outpost as the core's trigger on the control
		// channel, which must be up to hear it.
		waitUntil(t, "the control channel", s.outpost.Connected)
		if err := s.core.UpdateProvider("app", map[string]any{"skip_path_regex": "^/public/"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.outpost.Ready():
		case <-time.After(20 * time.Second):
			t.Fatalf("not ready after the provider was fixed; log:\n%s", s.logs.String())
		}
		if status, _ := s.get(t, "app.test", "/"); status != http.StatusFound {
			t.Fatalf("after the fix: status %d, want 302", status)
		}
	})
}

type startedOutpost struct {
	core    *outposttest.Server
	outpost *outpost.Outpost
	addr    string
	logs    *syncbuf.Buffer
}

// startOutpost runs the integration blueprint's outpost with the given
// provider attributes changed first, and does not wait for it.
func startOutpost(t *testing.T, edits map[string]map[string]any) *startedOutpost {
	t.Helper()
	core := startCore(t)
	for name, attrs := range edits {
		if err := core.UpdateProvider(name, attrs); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	o := runOutpost(t, outpost.Config{CoreURL: core.URL(), Token: core.Token("proxy-outpost"),
		Providers: map[string]outpost.Factory{"proxy": proxy.Factory(proxy.Config{HTTPListener: ln, StrictHost: true})}, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	return &startedOutpost{core: core, outpost: o, addr: ln.Addr().String(), logs: logs}
}

// get asks the outpost for host+path with a short timeout: no request may
// wait for configuration. A status of 0 means no answer in time.
func (s *startedOutpost) get(t *testing.T, host, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+path, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
