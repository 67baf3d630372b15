package proxy

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// cannedTransport writes each request as the transport would and answers
// with a small fixed response, so BenchmarkProxyHandler measures the
// proxy's own work without the network or an upstream.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	bw := bufio.NewWriterSize(io.Discard, 4096)
	if err := r.Write(bw); err != nil {
		return nil, err
	}
	bw.Flush()
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Length": {"24"}, "Date": {"Sun, 29 Nov 2026 09:00:00 GMT"}},
		ContentLength: 24,
		Body:          io.NopCloser(strings.NewReader("hello from the upstream\n")),
		Request:       r,
	}, nil
}

// BenchmarkProxyHandler is the proxy-side CPU of an authenticated
// proxy-mode request (router, session, headers, metrics, ReverseProxy and
// request serialisation) next to a plain httputil.ReverseProxy doing the
// same with no auth, both with a canned upstream.
func BenchmarkProxyHandler(b *testing.B) {
	e := newTestEnv(b, Config{})
	if err := e.apply(app{name: "app", external: "http://app.test"}); err != nil {
		b.Fatal(err)
	}
	a := e.p.routes.Load().all[0]
	a.upstream.Transport = &timedTransport{a: a, rt: cannedTransport{}}
	c := fixedClaims()
	c.RawToken = strings.Repeat("x", 1000)
	ck := sessionCookie(b, a, c)
	target, _ := url.Parse("http://127.0.0.1:1")
	baseline := plainProxy(target, cannedTransport{})
	for _, bc := range []struct {
		name   string
		h      http.Handler
		cookie string
	}{{"outpost", e.p, ck}, {"baseline", baseline, ""}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
				r.RemoteAddr = "127.0.0.1:40000"
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
	}
}
