package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func BenchmarkSessionLookup(b *testing.B) {
	single, _ := fuzzApps(b)
	ck := sessionCookie(b, single, fixedClaims())
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	r.Header.Set("Cookie", ck)
	b.ReportAllocs()
	for b.Loop() {
		if c, _, _, _ := single.loadSession(r); c == nil {
			b.Fatal("no session")
		}
	}
}

// BenchmarkSessionLookupCached is the lookup requests make once a cookie
// has been seen: the session cache, then the store's check.
func BenchmarkSessionLookupCached(b *testing.B) {
	single, _ := fuzzApps(b)
	ck := sessionCookie(b, single, fixedClaims())
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	r.Header.Set("Cookie", ck)
	b.ReportAllocs()
	for b.Loop() {
		if id, _, _ := single.session(r); id == nil {
			b.Fatal("no session")
		}
	}
}

func BenchmarkIdentityHeaders(b *testing.B) {
	single, _ := fuzzApps(b)
	single.basicAuth, single.basicUserAttr, single.basicPassAttr = true, "basic_user", "basic_pass"
	c := fixedClaims()
	b.ReportAllocs()
	for b.Loop() {
		if h := single.identityHeaders(c); len(h) < 12 {
			b.Fatal("headers missing")
		}
	}
}

// BenchmarkForwardAuthDecision measures a whole authenticated Traefik
// check through the provider's router: host lookup, cookie, session,
// headers.
func BenchmarkForwardAuthDecision(b *testing.B) {
	e := newTestEnv(b, Config{})
	if err := e.apply(app{name: "single", mode: "forward_single", external: "http://fwd.test"}); err != nil {
		b.Fatal(err)
	}
	ck := sessionCookie(b, e.p.routes.Load().all[0], fixedClaims())
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "http://outpost.test"+pathTraefik, nil)
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", "fwd.test")
		r.Header.Set("X-Forwarded-Uri", "/app")
		r.Header.Set("Cookie", ck)
		w := httptest.NewRecorder()
		e.p.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkProxyRequest measures an authenticated proxy-mode request from
// the router to a small upstream over loopback, next to a plain
// httputil.ReverseProxy with a large idle pool in front of the same
// upstream: bench/proxy.sh's comparison without the client side, for
// profiles (-cpuprofile) and allocation counts.
func BenchmarkProxyRequest(b *testing.B) {
	e := newTestEnv(b, Config{})
	// An upstream of its own, set up before it starts (changing a running
	// server's Config is a data race).
	e.upstream = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("hello from the upstream\n"))
	}))
	// Connections the upstream accepted: more than a few means an idle
	// pool drops connections and requests dial.
	var conns atomic.Int64
	e.upstream.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	e.upstream.Start()
	b.Cleanup(e.upstream.Close)
	if err := e.apply(app{name: "app", external: "http://app.test"}); err != nil {
		b.Fatal(err)
	}
	ck := sessionCookie(b, e.p.routes.Load().all[0], fixedClaims())
	target, _ := url.Parse(e.upstream.URL)
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096}
	b.Cleanup(tr.CloseIdleConnections)
	baseline := plainProxy(target, tr)
	for _, bc := range []struct {
		name   string
		h      http.Handler
		cookie string
	}{{"outpost", e.p, ck}, {"baseline", baseline, ""}} {
		b.Run(bc.name, func(b *testing.B) {
			conns.Store(0)
			cpu0 := processCPU(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
					if bc.cookie != "" {
						r.Header.Set("Cookie", bc.cookie)
					}
					w := httptest.NewRecorder()
					bc.h.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
			// CPU time (both sides, upstream included) rather than wall
			// time, which a shared machine stretches.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(conns.Load()), "upstream-conns")
		})
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// plainProxy is the baseline of the proxy benchmarks: ReverseProxy to
// target with pooled buffers and no authentication.
func plainProxy(target *url.URL, rt http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host },
		Transport:  rt,
		BufferPool: &bufferPool{},
	}
}
