package proxy

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/outpost"
)

// TestForwardAuthLogHygiene: a forward-auth check whose original request
// cannot be used (X-Forwarded-Uri "x", "@evil.example/x", or "*" as
// Traefik sends for OPTIONS *) used to answer 500 "configuration error"
// and log one ERROR line per request, so any client could flood the log.
// Such requests are the client's: 400 and a debug line. A true
// configuration error (the reverse proxy sends no original URL at all) is
// still a 500, logged once per interval with the count it suppressed.
func TestForwardAuthLogHygiene(t *testing.T) {
	var logs syncbuf.Buffer
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newTestEnvDeps(t, outpost.Deps{Logger: logger}, Config{Now: clock},
		app{name: "single", mode: "forward_single", external: "http://single.test"})
	addr := e.srv.Listener.Addr().String()

	malformed := []rawRequest{
		{method: "GET", target: pathNginx, header: map[string]string{"Host": "single.test", "X-Original-URI": "x"}},
		{method: "GET", target: pathNginx, header: map[string]string{"Host": "single.test", "X-Original-URI": "@evil.example/x"}},
		{method: "GET", target: pathNginx, header: map[string]string{"Host": "single.test", "X-Original-URL": "javascript:alert(1)"}},
		{method: "GET", target: pathTraefik, header: map[string]string{"Host": "single.test", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "single.test", "X-Forwarded-Uri": "*", "X-Forwarded-Method": "OPTIONS"}},
		{method: "GET", target: pathTraefik, header: map[string]string{"Host": "single.test", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "single.test", "X-Forwarded-Uri": "x"}},
		{method: "GET", target: pathCaddy, header: map[string]string{"Host": "single.test", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "single.test", "X-Forwarded-Uri": "@evil.example/x"}},
		{method: "GET", target: pathTraefik, header: map[string]string{"Host": "single.test", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "bad host", "X-Forwarded-Uri": "/"}},
	}
	for i := range 1000 {
		r := malformed[i%len(malformed)]
		if status, body := r.do(t, addr); status != 400 {
			t.Fatalf("%s %v: status %d, want 400: %.100s", r.target, r.header, status, body)
		}
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 0 {
		t.Fatalf("1000 malformed checks logged %d ERROR lines, want 0", n)
	}
	if n := strings.Count(logs.String(), "unusable original request"); n != 1000 {
		t.Fatalf("%d debug lines for 1000 malformed checks, want 1000", n)
	}

	missing := rawRequest{method: "GET", target: pathNginx, header: map[string]string{"Host": "single.test"}}
	for range 1000 {
		if status, _ := missing.do(t, addr); status != 500 {
			t.Fatalf("check without X-Original-URI: status %d, want 500", status)
		}
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
		t.Fatalf("1000 misconfigured checks logged %d ERROR lines, want 1 per interval", n)
	}
	mu.Lock()
	now = now.Add(configErrorInterval)
	mu.Unlock()
	missing.do(t, addr)
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 2 || !strings.Contains(logs.String(), `"suppressed":999`) {
		t.Fatalf("after the interval: %d ERROR lines (want 2), the second counting 999 suppressed:\n%.2000s", n, logs.String())
	}
}
