package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
	"github.com/akoutpost/akoutpost/proxy"
)

// updateProviders is the provider count of issue 6's update target.
const updateProviders = 100

// updateBlueprint is a proxy outpost serving n proxy-mode providers,
// app0.test .. app(n-1).test, all in front of upstream.
func updateBlueprint(n int, upstream string) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nmetadata:\n  name: update benchmark\nentries:\n")
	for i := range n {
		fmt.Fprintf(&b, `  - model: authentik_providers_proxy.proxyprovider
    id: p%[1]d
    identifiers:
      name: app%[1]d
    attrs:
      mode: proxy
      external_host: http://app%[1]d.test
      internal_host: %[2]s
      authorization_flow: !Find [authentik_flows.flow, [slug, default-provider-authorization-implicit-consent]]
      invalidation_flow: !Find [authentik_flows.flow, [slug, default-provider-invalidation-flow]]
  - model: authentik_core.application
    identifiers:
      slug: app%[1]d
    attrs:
      name: App %[1]d
      provider: !KeyOf p%[1]d
`, i, upstream)
	}
	b.WriteString("  - model: authentik_outposts.outpost\n    identifiers:\n      name: bench-outpost\n    attrs:\n      type: proxy\n      providers: [")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "!KeyOf p%d", i)
	}
	b.WriteString("]\n")
	return []byte(b.String())
}

// BenchmarkUpdateToServing measures issue 6's "update message → new
// configuration serving" with 100 proxy providers and no update jitter:
// from the core's change of one provider (its skip_path_regex, which makes
// a path public) to the first request that the proxy answers under the new
// configuration. The time includes the core's websocket message, the
// outpost's fetch of all 100 providers and the proxy's rebuild.
func BenchmarkUpdateToServing(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream")
	}))
	defer upstream.Close()
	core, err := outposttest.NewServer(updateBlueprint(updateProviders, upstream.URL))
	if err != nil {
		b.Fatal(err)
	}
	defer core.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	o, err := outpost.New(outpost.Config{
		CoreURL: core.URL(), Token: core.Token("bench-outpost"), Providers: map[string]outpost.Factory{"proxy": proxy.Factory(proxy.Config{HTTPListener: ln, StrictHost: true})},
		UpdateJitter: -1, Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Errorf("outpost Run: %v", err)
		}
	}()
	addr := ln.Addr().String()
	c := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer c.CloseIdleConnections()
	status := func(url string) int {
		resp, err := c.Get(url)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// The last provider is the one changed; its first configuration sends
	// an anonymous browser to log in.
	last := fmt.Sprintf("app%d", updateProviders-1)
	target := "http://" + last + ".test/"
	if !waitFor(5*time.Minute, func() bool { return status(target+"private") == http.StatusFound }) {
		b.Fatal("the outpost never served the first configuration")
	}
	for i := range updateProviders {
		if got := status(fmt.Sprintf("http://app%d.test/private", i)); got != http.StatusFound {
			b.Fatalf("app%d answered %d, want a redirect to log in", i, got)
		}
	}
	var total time.Duration
	n := 0
	b.ResetTimer()
	for b.Loop() {
		n++
		path := fmt.Sprintf("public%d", n)
		start := time.Now()
		if err := core.UpdateProvider(last, map[string]any{"skip_path_regex": "^/" + path + "$"}); err != nil {
			b.Fatal(err)
		}
		if !waitFor(time.Minute, func() bool { return status(target+path) == http.StatusOK }) {
			b.Fatalf("update %d never served", n)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms/update")
}

// waitFor polls cond every millisecond until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}
