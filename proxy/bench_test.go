package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
