package proxy_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// TestReplicaProcesses runs what an operator runs: two `akoutpost run`
// processes of one outpost behind nginx as the load balancer
// (testdata/nginx-lb.conf.tmpl), sharing one session store, first Redis
// and then PostgreSQL. A login through one replica is valid on the other,
// a sign-out through one ends the session on both, and a session end sent
// by the core ends it on both. authentik keeps sessions per replica, so
// behind a load balancer its users are sent back to the login at random.
func TestReplicaProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and starts nginx, Redis and PostgreSQL")
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		testservers.Unavailable(t, "nginx not installed (apt-get install nginx)")
	}
	bin := buildCommand(t)
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"redis", func(t *testing.T) string { return "redis://" + testservers.RedisAddr(t) + "/0" }},
		{"postgres", func(t *testing.T) string { return testservers.PostgresURL(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testReplicaProcesses(t, bin, tc.store(t)) })
	}
}

func testReplicaProcesses(t *testing.T, bin, store string) {
	startEchoUpstream(t)
	core := startBlueprintCore(t, "outposttest.yaml")

	// Replica B starts once A is serving, so the two do not race to
	// create the PostgreSQL table.
	a := startReplica(t, bin, core, store)
	b := startReplica(t, bin, core, store)
	lb := startNginx(t, "nginx-lb.conf.tmpl", map[string]string{"OUTPOST_A": a, "OUTPOST_B": b})

	jar, _ := cookiejar.New(nil)
	via := func(replica string, jar http.CookieJar, follow bool) *http.Client {
		c := &http.Client{Jar: jar, Transport: &pinned{replica: replica, lb: lb}}
		if !follow {
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	status := func(c *http.Client, target string, cookie string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// waitStatus allows for the time a message takes to reach a replica.
	waitStatus := func(what string, c *http.Client, target, cookie string, want int) {
		t.Helper()
		for i := 0; ; i++ {
			got := status(c, target, cookie)
			if got == want {
				return
			}
			if i > 400 {
				t.Fatalf("%s: status %d, want %d", what, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	snapshot := func() string {
		u, _ := url.Parse("http://app.test/")
		var s []string
		for _, c := range jar.Cookies(u) {
			s = append(s, c.Name+"="+c.Value)
		}
		return strings.Join(s, "; ")
	}

	resp, body := browserLogin(t, via("a", jar, true), "http://app.test/hello", "alice", "alice-password")
	var got upstreamView
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.Headers.Get("X-Authentik-Username") != "alice" {
		t.Fatalf("login through replica A: %d %.300s", resp.StatusCode, body)
	}
	if s := status(via("b", jar, false), "http://app.test/x", ""); s != 200 {
		t.Fatalf("session from A used through B: status %d", s)
	}

	// Sign out through A; a copy of the cookies taken before must then be
	// refused by both, so the check is that the session is gone, not that
	// the browser forgot its cookie.
	copied := snapshot()
	if s := status(via("a", jar, false), "http://app.test/outpost.goauthentik.io/sign_out", ""); s != http.StatusFound {
		t.Fatalf("sign out through A: status %d", s)
	}
	for _, r := range []string{"a", "b"} {
		waitStatus("replica "+r+" after sign-out through A", via(r, nil, false), "http://app.test/x", copied, http.StatusFound)
	}

	// Log in again, through B this time; the core ends alice's sessions
	// and both replicas must refuse the session.
	jar2, _ := cookiejar.New(nil)
	jar = jar2
	if resp, body := browserLogin(t, via("b", jar, true), "http://app.test/again", "alice", "alice-password"); resp.StatusCode != 200 {
		t.Fatalf("login through replica B: %d %.300s", resp.StatusCode, body)
	}
	copied = snapshot()
	if s := status(via("a", nil, false), "http://app.test/x", copied); s != 200 {
		t.Fatalf("session from B used through A: status %d", s)
	}
	if n := core.EndSessions("alice"); n == 0 {
		t.Fatal("the core ended no session of alice")
	}
	for _, r := range []string{"a", "b"} {
		waitStatus("replica "+r+" after the core ended the session", via(r, nil, false), "http://app.test/x", copied, http.StatusFound)
	}
}

// startReplica runs `akoutpost run` for the core's proxy outpost with the
// session store and returns its HTTP address once it serves app.test.
func startReplica(t *testing.T, bin string, core *outposttest.Server, store string) string {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", itoa(freePort(t)))
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(),
		"AUTHENTIK_HOST="+core.URL(),
		"AUTHENTIK_TOKEN="+core.Token("proxy-outpost"),
		"AUTHENTIK_LISTEN__HTTP="+addr,
		"AUTHENTIK_LISTEN__HTTPS=127.0.0.1:"+itoa(freePort(t)),
		"AUTHENTIK_LISTEN__METRICS=127.0.0.1:"+itoa(freePort(t)),
		"AKOUTPOST_SESSION_STORE="+store,
	)
	var out *syncbuf.Buffer
	t.Cleanup(func() { // after the process stopped
		if t.Failed() {
			t.Logf("replica on %s:\n%s", addr, out.String())
		}
	})
	out = testservers.StartProcess(t, cmd)
	waitConfigured(t, addr, "app.test")
	return addr
}

func itoa(n int) string { return strconv.Itoa(n) }

// pinned sends every request for a .test host to the load balancer, asking
// it for one replica ("a" or "b"); other hosts (the core) are reached
// directly.
type pinned struct {
	replica, lb string
	once        sync.Once
	tr          *http.Transport
}

func (p *pinned) RoundTrip(r *http.Request) (*http.Response, error) {
	p.once.Do(func() {
		p.tr = &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			if h, _, _ := net.SplitHostPort(a); strings.HasSuffix(h, ".test") {
				a = p.lb
			}
			var d net.Dialer
			return d.DialContext(ctx, network, a)
		}}
	})
	if strings.HasSuffix(r.URL.Hostname(), ".test") {
		r = r.Clone(r.Context())
		r.Header.Set("X-Test-Replica", p.replica)
	}
	return p.tr.RoundTrip(r)
}

func (p *pinned) CloseIdleConnections() {
	if p.tr != nil {
		p.tr.CloseIdleConnections()
	}
}

// buildCommand builds cmd/akoutpost into the test's temporary directory,
// for tests that run outpost processes.
func buildCommand(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ak")
	build := exec.Command("go", "build", "-o", bin, "github.com/akoutpost/akoutpost/cmd/akoutpost")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the command: %v\n%s", err, out)
	}
	return bin
}

// startEchoUpstream starts an upstream that answers with what it received
// and names it in AKOUTPOST_PROXY_TEST_UPSTREAM, which the test
// blueprints' applications proxy to.
func startEchoUpstream(t *testing.T) {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"uri": r.RequestURI, "headers": r.Header})
	}))
	t.Cleanup(upstream.Close)
	t.Setenv("AKOUTPOST_PROXY_TEST_UPSTREAM", upstream.URL)
}

// startBlueprintCore starts the test core of testdata/name until the test
// ends.
func startBlueprintCore(t *testing.T, name string) *outposttest.Server {
	t.Helper()
	bp, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	core, err := outposttest.NewServer(bp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	return core
}
