package proxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akoutpost/akoutpost/outpost"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestServeHTTPAndHTTPS(t *testing.T) {
	httpLn, httpsLn := listen(t), listen(t)
	p, err := New(outpost.Deps{}, Config{HTTPListener: httpLn, HTTPSListener: httpsLn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()

	resp, err := http.Get("http://" + httpLn.Addr().String() + pathPing)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("ping over HTTP: %d", resp.StatusCode)
	}

	// No certificate for the name: the generated fallback.
	conn, err := tls.Dial("tcp", httpsLn.Addr().String(), &tls.Config{ServerName: "app.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	conn.Close()
	if cn != "authentik default certificate" {
		t.Fatalf("fallback certificate CN %q", cn)
	}

	// An application's certificate is chosen by SNI, port ignored.
	own, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	own.Leaf.Subject.CommonName = "own"
	p.routes.Store(&routes{certs: map[string]*tls.Certificate{"app.test": own}})
	conn, err = tls.Dial("tcp", httpsLn.Addr().String(), &tls.Config{ServerName: "APP.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	got := conn.ConnectionState().PeerCertificates[0].Raw
	conn.Close()
	if string(got) != string(own.Certificate[0]) {
		t.Fatal("SNI app.test did not get the application's certificate")
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr}).Get("https://" + httpsLn.Addr().String() + pathPing)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.ProtoMajor != 2 {
		t.Fatalf("ping over HTTPS: %d %s", resp.StatusCode, resp.Proto)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}

// TestServeDrains: a request in flight when the context ends completes.
func TestServeDrains(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test", skip: "^/"})
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	})}
	upLn := listen(t)
	go slow.Serve(upLn)
	defer slow.Close()
	a := e.p.routes.Load().all[0]
	a.internal.Host = upLn.Addr().String()

	ln := listen(t)
	p := e.p
	p.cfg.HTTPListener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	body := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/slow", nil)
		req.Host = "app.test"
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			body <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body <- string(b)
	}()
	<-entered
	cancel()
	// Serve must still be draining: the request has not finished.
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if b := <-body; b != "finished" {
		t.Fatalf("in-flight request got %q", b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestServeWithoutListeners(t *testing.T) {
	p, _ := New(outpost.Deps{}, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Serve(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"short secret":     {CookieSecret: []byte("short")},
		"negative timeout": {ShutdownTimeout: -1},
	} {
		if _, err := New(outpost.Deps{}, cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestMetricsBoundedHosts: the host label holds configured hosts only; a
// client inventing hosts cannot grow the series (authentik labelled by the
// raw Host header).
func TestMetricsBoundedHosts(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newTestEnvDeps(t, outpost.Deps{Registerer: reg}, Config{StrictHost: true})
	raw := []json.RawMessage{e.wire(app{name: "app", external: "http://app.test", skip: "^/"})}
	if err := e.p.Apply(context.Background(), outpost.Update{
		Outpost:   outpost.Info{Name: "test-outpost", BrowserURL: e.idp.srv.URL},
		Providers: raw,
	}); err != nil {
		t.Fatal(err)
	}
	nf := e.noFollow(nil)
	mustGet(t, nf, "http://app.test/x", nil)
	for i := range 5 {
		mustGet(t, nf, "http://random"+string(rune('a'+i))+".test/", nil)
	}
	mustGet(t, nf, "http://app.test"+pathPing, nil)
	mustGet(t, nf, "http://app.test/x", map[string]string{"X-Method": "x"})
	n, err := testutil.GatherAndCount(reg, "authentik_outpost_proxy_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	// app.test/app, other/app, other/ping.
	if n != 3 {
		t.Fatalf("%d request duration series, want 3", n)
	}
	if n, _ := testutil.GatherAndCount(reg, "authentik_outpost_proxy_upstream_response_duration_seconds"); n != 1 {
		t.Fatalf("%d upstream series, want 1", n)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.HasPrefix(l.GetValue(), "random") {
					t.Fatalf("client-chosen host in a label: %v", l)
				}
			}
		}
	}
}
