package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// populated returns a registry with every family of the package and one
// sample in each.
func populated(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	o, err := metrics.NewOutpost(reg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := metrics.NewProxy(reg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := metrics.NewLDAP(reg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := metrics.NewFlow(reg)
	if err != nil {
		t.Fatal(err)
	}
	o.Info.WithLabelValues("o", "proxy", "u", "2026.2.3", "").Set(1)
	o.Connection.WithLabelValues("o", "proxy", "u").Set(1)
	o.LastUpdate.WithLabelValues("o", "proxy", "u", "2026.2.3", "").Set(1.7e9)
	p.RequestDuration.WithLabelValues("o", "GET", metrics.OtherHost, "app").Observe(0.1)
	p.UpstreamResponseDuration.WithLabelValues("o", "GET", "http", "app.example", "10.0.0.1:80").Observe(0.2)
	l.RequestDuration.WithLabelValues("o", "bind", "ldap-app").Observe(0.01)
	l.RequestsRejected.WithLabelValues("o", "bind", "invalid_credentials", "ldap-app").Inc()
	f.GetSeconds.WithLabelValues("ak-stage-identification", "default-authentication-flow").Observe(0.05)
	f.PostSeconds.WithLabelValues("ak-stage-password", "default-authentication-flow").Observe(0.05)
	return reg
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(metrics.Handler(populated(t)))
	defer srv.Close()

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, srv.URL+metrics.PingPath, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
			t.Errorf("%s ping: %s with %d body bytes, want 204 and none", method, resp.Status, len(body))
		}
	}

	resp, err := http.Get(srv.URL + metrics.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`authentik_outpost_info{build="",outpost_name="o",outpost_type="proxy",uuid="u",version="2026.2.3"} 1`,
		`authentik_outpost_proxy_request_duration_seconds_count{host="other",method="GET",outpost_name="o",type="app"} 1`,
		`authentik_outpost_ldap_requests_rejected_total{app="ldap-app",outpost_name="o",reason="invalid_credentials",type="bind"} 1`,
		`authentik_outpost_flow_timing_post_seconds_count{flow="default-authentication-flow",stage="ak-stage-password"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	resp, err = http.Get(srv.URL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/other: %s", resp.Status)
	}
}

// `promtool check metrics` must report nothing on our exposition.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is required in CI (Debian package prometheus)")
		}
		t.Skip("promtool not installed (Debian package prometheus); skipping the lint of /metrics")
	}
	srv := httptest.NewServer(metrics.Handler(populated(t)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + metrics.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// Two users of one registry share the families; a conflicting collector
// under the same name is an error, not a panic.
func TestRegistrationReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := metrics.NewOutpost(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := metrics.NewOutpost(reg)
	if err != nil {
		t.Fatalf("second NewOutpost on one registry: %v", err)
	}
	a.Info.WithLabelValues("a", "proxy", "1", "v", "").Set(1)
	b.Info.WithLabelValues("b", "ldap", "2", "v", "").Set(1)
	if n := testutil.CollectAndCount(reg, "authentik_outpost_info"); n != 2 {
		t.Errorf("%d info series, want 2", n)
	}
	for _, f := range []func(prometheus.Registerer) error{
		func(r prometheus.Registerer) error { _, err := metrics.NewProxy(r); return err },
		func(r prometheus.Registerer) error { _, err := metrics.NewLDAP(r); return err },
		func(r prometheus.Registerer) error { _, err := metrics.NewFlow(r); return err },
	} {
		if err := f(reg); err != nil {
			t.Fatal(err)
		}
		if err := f(reg); err != nil {
			t.Fatalf("second registration: %v", err)
		}
	}

	clash := prometheus.NewRegistry()
	clash.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "authentik_outpost_info", Help: "x"}))
	if _, err := metrics.NewOutpost(clash); err == nil {
		t.Fatal("NewOutpost accepted a clashing collector")
	}
	if _, err := metrics.NewOutpost(nil); err != nil {
		t.Fatalf("nil registerer: %v", err)
	}

	a.Connection.WithLabelValues("a", "proxy", "1").Set(1)
	a.Forget("1")
	if n := testutil.CollectAndCount(reg, "authentik_outpost_info"); n != 1 {
		t.Errorf("%d info series after Forget, want 1", n)
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, ln, prometheus.NewRegistry()) }()
	resp, err := http.Get("http://" + ln.Addr().String() + metrics.PingPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("ping: %s", resp.Status)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after its context ended: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener is still open after Serve returned")
	}
	if err := metrics.Serve(context.Background(), nil, nil); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("Serve(nil listener): %v", err)
	}
}
