package proxy

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akoutpost/akoutpost/metrics"
	"github.com/akoutpost/akoutpost/outpost"
)

// cookieValue must find what (*http.Request).Cookie finds: the session
// cache is keyed by it and loadSession verifies it.
func TestCookieValueMatchesNetHTTP(t *testing.T) {
	const name = "authentik_proxy_0123abcd"
	headers := [][]string{
		nil,
		{""},
		{name + "=v1"},
		{"a=b; " + name + "=v2; c=d"},
		{"  " + name + " = v3 ;x=y"},
		{name + `="quoted"`},
		{name + `="half`},
		{name + `=bad\value; ` + name + "=good"},
		{name + "=with space"},
		{name + "=semi\x7f; " + name + "=second"},
		{name},
		{name + "="},
		{"a=1", name + "=second-line"},
		{";;;" + name + "=after-empties;;"},
		{name + "_login_abc=state; " + name + "=sess"},
		{"x" + name + "=no; " + name + "=yes"},
		{name + "==eq"},
		{"\t" + name + "=tab\t"},
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(name[:4] + `=; "\` + "\t\x00\x7f\xffab_")
	for range 5000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		headers = append(headers, []string{string(b)}, []string{name + "=" + string(b)}, []string{string(b) + name + "=" + string(b)})
	}
	for _, h := range headers {
		req := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
		if h != nil {
			req.Header["Cookie"] = h
		}
		want, err := req.Cookie(name)
		got, ok := cookieValue(req, name)
		if (err == nil) != ok || ok && got != want.Value {
			t.Fatalf("Cookie %q: cookieValue = %q, %v; net/http = %v, %v", h, got, ok, want, err)
		}
	}
}

// The outpost's own cookies never reach the upstream, whatever their form;
// the client's other cookies are passed on as sent.
func TestStripOwnCookies(t *testing.T) {
	a := &application{cookieName: "authentik_proxy_0123abcd"}
	for _, tc := range []struct {
		in   []string
		want []string // nil: no Cookie header
	}{
		{nil, nil},
		{[]string{"a=1; b=2"}, []string{"a=1; b=2"}},
		{[]string{"authentik_proxy_0123abcd=s"}, nil},
		{[]string{"a=1; authentik_proxy_0123abcd=s; b=\"q r\""}, []string{`a=1; b="q r"`}},
		{[]string{"authentik_proxy_0123abcd_login_xyz=st; z=9"}, []string{"z=9"}},
		{[]string{"authentik_proxy_0123abcd=bad\\value", "k=v"}, []string{"k=v"}},
		{[]string{" authentik_proxy_0123abcd =s ;;"}, nil},
		{[]string{"authentik_proxy_0123abcdX=other"}, []string{"authentik_proxy_0123abcdX=other"}},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
		if tc.in != nil {
			r.Header["Cookie"] = append([]string(nil), tc.in...)
		}
		a.stripOwnCookies(r)
		if got := r.Header["Cookie"]; strings.Join(got, "\n") != strings.Join(tc.want, "\n") || (got == nil) != (tc.want == nil) {
			t.Errorf("Cookie %q: after stripping %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Identity headers are added after the reverse proxy removes hop-by-hop
// headers: a client naming them in Connection cannot keep them from the
// upstream. additionalHeaders with hop-by-hop or forwarding names still
// never reach it.
func TestIdentityHeadersSurviveConnectionHeader(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	a := e.p.routes.Load().all[0]
	c := fixedClaims()
	c.Proxy.UserAttributes["additionalHeaders"] = map[string]any{
		"X-Foo": "bar", "Connection": "close", "Upgrade": "h2c", "X-Forwarded-For": "6.6.6.6",
		"Transfer-Encoding": "chunked", "Te": "trailers",
	}
	ck := sessionCookie(t, a, c)
	resp := mustGet(t, e.noFollow(nil), "http://app.test/x", map[string]string{
		"Cookie":     ck,
		"Connection": "X-Authentik-Username, X-authentik-groups, X-Foo, Authorization",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := decodeEcho(t, resp)
	for k, v := range map[string]string{"X-Authentik-Username": "alice", "X-Authentik-Groups": "admins|staff", "X-Foo": "bar"} {
		if g := got.Headers.Get(k); g != v {
			t.Errorf("upstream %s = %q, want %q", k, g, v)
		}
	}
	for _, k := range []string{"Upgrade", "Transfer-Encoding", "Te"} {
		if g, ok := got.Headers[k]; ok {
			t.Errorf("upstream got %s: %q", k, g)
		}
	}
	if g := got.Headers.Get("X-Forwarded-For"); strings.Contains(g, "6.6.6.6") {
		t.Errorf("X-Forwarded-For from additionalHeaders reached the upstream: %q", g)
	}
}

// Request metrics are observed through cached children: one series per
// method actually seen, bounded for unknown methods, and a new metrics
// registry or outpost name is not served from the cache.
func TestRequestMetricsCached(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newTestEnvDeps(t, outpost.Deps{Registerer: reg}, Config{}, app{name: "app", external: "http://app.test"})
	m := e.p.metrics
	a := e.p.routes.Load().all[0]
	ck := sessionCookie(t, a, fixedClaims())
	for _, method := range []string{"GET", "GET", "POST", "BREW", "PURGE"} {
		r := httptest.NewRequest(method, "http://app.test/", nil)
		r.Header.Set("Cookie", ck)
		w := httptest.NewRecorder()
		e.p.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d", method, w.Code)
		}
	}
	if n := testutil.CollectAndCount(m.RequestDuration); n != 3 {
		t.Errorf("%d request series, want 3 (GET, POST, other)", n)
	}
	if n := testutil.CollectAndCount(m.UpstreamResponseDuration); n != 3 {
		t.Errorf("%d upstream series, want 3", n)
	}
	for method, want := range map[string]uint64{"GET": 2, "POST": 1, "other": 2} {
		// Labels in name order: host, method, outpost_name, type.
		if got := sampleCount(t, reg, "authentik_outpost_proxy_request_duration_seconds",
			"app.test", method, "test-outpost", "app"); got != want {
			t.Errorf("request %s: %d observations, want %d", method, got, want)
		}
		// host, method, outpost_name, scheme, upstream_host.
		if got := sampleCount(t, reg, "authentik_outpost_proxy_upstream_response_duration_seconds",
			"app.test", method, "test-outpost", "http", a.internal.Host); got != want {
			t.Errorf("upstream %s: %d observations, want %d", method, got, want)
		}
	}
	// Another registry (an embedded provider's host could swap it): the
	// cached children of the first must not be used.
	m2, _ := metrics.NewProxy(prometheus.NewRegistry())
	if o := a.requestObserver(m2, "renamed", "GET"); o == a.requestObserver(m, "test-outpost", "GET") {
		t.Error("observer of another registry served from the cache")
	}
	if n := testutil.CollectAndCount(m2.RequestDuration); n != 1 {
		t.Errorf("%d series in the second registry, want 1", n)
	}
}

// sampleCount gathers reg and returns the observation count of the
// histogram called name whose label values are values, in label order.
func sampleCount(t *testing.T, reg *prometheus.Registry, name string, values ...string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(values) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetValue() != values[i] {
					continue next
				}
			}
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}
