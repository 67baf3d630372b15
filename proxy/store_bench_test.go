package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/proxy/session"
)

// BenchmarkProxyHandlerStore is BenchmarkProxyHandler's authenticated
// request served with the memory store and with the file store a user who
// sets nothing gets, in alternating batches of 256 requests so that drift
// on a shared machine hits both alike. It reports the CPU time of a
// request with each and memory-ns/file-ns, the file store's speed as a
// fraction of the memory store's (issue 13: >= 0.95). A third side is the
// file store as it was before it had Check, reading the session's file on
// every request (file-reads).
func BenchmarkProxyHandlerStore(b *testing.B) {
	file, err := session.NewFile(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	reads, err := session.NewFile(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	type side struct {
		h      http.Handler
		cookie string
		spent  time.Duration
		n      int
	}
	var sides []*side
	for _, st := range []session.Store{&session.Memory{}, file, loadOnly{reads}} {
		e := newTestEnv(b, Config{SessionStore: st})
		if err := e.apply(app{name: "app", external: "http://app.test"}); err != nil {
			b.Fatal(err)
		}
		a := e.p.routes.Load().all[0]
		a.upstream.Transport = &timedTransport{a: a, rt: cannedTransport{}}
		c := fixedClaims()
		c.RawToken = strings.Repeat("x", 1000)
		sides = append(sides, &side{h: e.p, cookie: sessionCookie(b, a, c)})
	}
	serve := func(s *side) {
		r := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("Cookie", s.cookie)
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
	for _, s := range sides {
		serve(s) // the first request decodes the cookie
	}
	b.ReportAllocs()
	const batch = 256
	for i := 0; b.Loop(); i++ {
		s := sides[i/batch%len(sides)]
		start := time.Now()
		serve(s)
		s.spent += time.Since(start)
		s.n++
	}
	ns := make([]float64, len(sides))
	for i, s := range sides {
		if s.n == 0 {
			return
		}
		ns[i] = float64(s.spent.Nanoseconds()) / float64(s.n)
	}
	b.ReportMetric(ns[0], "memory-ns/req")
	b.ReportMetric(ns[1], "file-ns/req")
	b.ReportMetric(ns[0]/ns[1], "file-speed/memory")
	b.ReportMetric(ns[0]/ns[2], "file-reads-speed/memory")
}

// loadOnly hides a store's Check, so the proxy loads the whole session
// from it on every request.
type loadOnly struct{ session.Store }
