package outpost_test

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

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akoutpost/akoutpost/outpost"
)

const (
	testPK    = "0c3a4d1e-8a7b-4f0e-9d61-0a1b2c3d4e5f"
	testToken = "outpost-token-0123456789abcdef"
)

func testOutpost() *fakeOutpost {
	var providers []map[string]any
	for i := range 150 { // two pages of 100
		providers = append(providers, map[string]any{"pk": i + 1, "name": fmt.Sprintf("p%d", i+1)})
	}
	return &fakeOutpost{PK: testPK, Name: "test outpost", Type: "test", Token: testToken,
		Config: map[string]any{"log_level": "info", "authentik_host": "https://auth.example"}, Providers: providers}
}

func newOutpost(t *testing.T, cfg outpost.Config) *outpost.Outpost {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.UpdateJitter == 0 {
		cfg.UpdateJitter = 10 * time.Millisecond
	}
	o, err := outpost.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return o
}

func TestNewValidates(t *testing.T) {
	p := &testProvider{typ: "test"}
	cases := []struct {
		name string
		cfg  outpost.Config
		want string
	}{
		{"no url", outpost.Config{Token: "t", Providers: factories(p)}, "core URL"},
		{"relative url", outpost.Config{CoreURL: "/x", Token: "t", Providers: factories(p)}, "core URL"},
		{"bad scheme", outpost.Config{CoreURL: "ftp://h/", Token: "t", Providers: factories(p)}, "core URL"},
		{"unparsable", outpost.Config{CoreURL: "http://h:x/", Token: "t", Providers: factories(p)}, "core URL"},
		{"no token", outpost.Config{CoreURL: "http://h/", Providers: factories(p)}, "token"},
		{"no providers", outpost.Config{CoreURL: "http://h/", Token: "t"}, "no providers"},
		{"nil factory", outpost.Config{CoreURL: "http://h/", Token: "t",
			Providers: map[string]outpost.Factory{"test": nil}}, "nil"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := outpost.New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: got %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

// The whole start-up against a core mounted under a sub-path with a query
// in AUTHENTIK_HOST: API calls, provider pagination, the websocket URL and
// the hello.
func TestStartupAndHello(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.prefix = "/sub"
	core.start("")
	p := &testProvider{typ: "test"}
	o := newOutpost(t, outpost.Config{CoreURL: core.url() + "?foo=bar", Providers: factories(p),
		Version: "2026.2.3", BuildHash: "abc123", InstanceUUID: "11111111-2222-3333-4444-555555555555"})
	runOutpost(t, o)

	eventually(t, "the first Apply", func() bool { return p.applied() > 0 })
	eventually(t, "a hello", func() bool { return len(core.helloList()) > 0 })

	u := p.last()
	if got := len(u.Providers); got != 150 {
		t.Errorf("Apply got %d provider objects, want 150 (two pages)", got)
	}
	if u.Outpost.PK != testPK || u.Outpost.Name != "test outpost" || u.Outpost.Type != "test" ||
		u.Outpost.InstanceUUID != o.InstanceUUID() || u.Outpost.Version != "2026.2.3" {
		t.Errorf("Apply got outpost info %+v", u.Outpost)
	}
	if u.Settings.AuthentikHost != "https://auth.example" || u.Settings.KubernetesReplicas != 1 {
		t.Errorf("Apply got settings %+v", u.Settings)
	}
	// The factory ran once, with everything the provider needs.
	d, built := p.lent()
	if built != 1 || d.API == nil || d.Logger == nil || d.Registerer == nil || d.Certificates == nil ||
		d.Outpost.PK != testPK || d.Settings.AuthentikHost != "https://auth.example" {
		t.Errorf("factory called %d times with %+v", built, d)
	}
	if o.Provider() != outpost.Provider(p) {
		t.Errorf("Provider() = %v, want the built provider", o.Provider())
	}
	// The core is on loopback, which browsers cannot reach: they are sent
	// to authentik_host.
	if u.Outpost.BrowserURL != "https://auth.example" {
		t.Errorf("BrowserURL = %q, want authentik_host", u.Outpost.BrowserURL)
	}

	reqs := core.requestList()
	if len(reqs) < 2 || reqs[0].Path != "/sub/api/v3/outposts/instances/" || reqs[1].Path != "/sub/api/v3/root/config/" {
		t.Errorf("first requests: %v", reqs[:min(len(reqs), 2)])
	}
	for _, r := range reqs {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			t.Errorf("%s: Authorization %q", r.Path, r.Header.Get("Authorization"))
		}
		if ua := r.Header.Get("User-Agent"); ua != "goauthentik.io/outpost/2026.2.3+abc123" {
			t.Errorf("%s: User-Agent %q", r.Path, ua)
		}
		if strings.HasSuffix(r.Path, "/outposts/test/") && r.Query.Get("page_size") != "100" {
			t.Errorf("provider list without page_size=100: %v", r.Query)
		}
	}

	h := core.helloList()[0]
	if h.Path != "/sub/ws/outpost/"+testPK+"/" {
		t.Errorf("websocket path %q", h.Path)
	}
	if h.Query.Get("foo") != "bar" || h.Query.Get("instance_uuid") != o.InstanceUUID() || h.Query.Get("attempt") != "0" {
		t.Errorf("websocket query %v", h.Query)
	}
	for _, k := range []string{"version", "buildHash", "uuid", "golangVersion", "opensslEnabled", "opensslVersion", "fipsEnabled"} {
		if _, ok := h.Args[k]; !ok {
			t.Errorf("hello lacks %q: %v", k, h.Args)
		}
	}
	if h.Args["uuid"] != o.InstanceUUID() || h.Args["version"] != "2026.2.3" || h.Args["buildHash"] != "abc123" {
		t.Errorf("hello args %v", h.Args)
	}
	eventually(t, "Connected", o.Connected)
}

func TestStartupCoreDownThenUp(t *testing.T) {
	// Reserve a port, then leave it closed: the core is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	log, logs := newLogger(slog.LevelDebug)
	p := &testProvider{typ: "test"}
	o := newOutpost(t, outpost.Config{CoreURL: "http://" + addr + "/", Providers: factories(p), Logger: log})
	runOutpost(t, o)

	const failed = "fetching outpost configuration failed, retrying"
	eventually(t, "a logged failed attempt", func() bool { return len(logs.records(failed)) > 0 })
	rec := logs.records(failed)[0]
	if d, _ := rec["retry_in"].(string); d == "" || d == "0s" {
		t.Errorf("retry log without the real delay: %v", rec)
	}
	if p.applied() != 0 {
		t.Fatal("applied a configuration while the core was down")
	}

	core := newFakeCore(t, testOutpost())
	core.start(addr)
	eventually(t, "Apply after the core came up", func() bool { return p.applied() > 0 })
	eventually(t, "Serve after the core came up", func() bool { s, _ := p.state(); return s == 1 })
	eventually(t, "a hello after the core came up", func() bool { return len(core.helloList()) > 0 })
}

// A rejected token is permanent: one clear error, then a slow retry, not a
// storm of requests (authentik retries a 403 every few seconds for weeks).
func TestTokenRejected(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	log, logs := newLogger(slog.LevelDebug)
	p := &testProvider{typ: "test"}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Token: "wrong-secret-token", Providers: factories(p), Logger: log})
	stop := runOutpost(t, o)

	eventually(t, "the permanent error logged", func() bool { return len(logs.records("failed permanently")) > 0 })
	time.Sleep(2 * time.Second) // a storm would show here
	stop()

	if n := core.count("/outposts/instances/"); n != 1 {
		t.Errorf("the outpost asked %d times with a rejected token, want 1 before its slow retry", n)
	}
	if n := len(logs.records("failed permanently")); n != 1 {
		t.Errorf("logged the permanent error %d times, want 1", n)
	}
	rec := logs.records("failed permanently")[0]
	if e, _ := rec["error"].(string); !strings.Contains(e, "403") || !strings.Contains(e, "rejected") {
		t.Errorf("error %q should say the token was rejected (403)", e)
	}
	if strings.Contains(logs.String(), "wrong-secret-token") {
		t.Error("the token appears in the logs")
	}
	if p.applied() != 0 {
		t.Error("applied a configuration with a rejected token")
	}
}

// Zero outposts for a token is reported clearly and never hot-loops (upstream
// panics).
func TestNoOutpostForToken(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.emptyList = true
	core.start("")
	log, logs := newLogger(slog.LevelDebug)
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(&testProvider{typ: "test"}), Logger: log})
	stop := runOutpost(t, o)
	eventually(t, "the error logged", func() bool { return len(logs.records("failed permanently")) > 0 })
	time.Sleep(time.Second)
	stop()
	if n := core.count("/outposts/instances/"); n != 1 {
		t.Errorf("asked %d times, want 1 before the slow retry", n)
	}
	if e, _ := logs.records("failed permanently")[0]["error"].(string); !strings.Contains(e, "no outpost") {
		t.Errorf("error %q should say no outpost was found", e)
	}
}

func TestUnknownOutpostType(t *testing.T) {
	op := testOutpost()
	op.Type = "radius"
	core := newFakeCore(t, op)
	core.start("")
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(&testProvider{typ: "test"})})
	err := o.Run(context.Background())
	if !errors.Is(err, outpost.ErrUnsupportedType) || !strings.Contains(err.Error(), `"radius"`) {
		t.Fatalf("Run: %v, want ErrUnsupportedType naming radius", err)
	}
}

func TestProviderServeErrorEndsRun(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	p := &testProvider{typ: "test", serveErr: errTest}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p)})
	err := o.Run(context.Background())
	if !errors.Is(err, errTest) {
		t.Fatalf("Run: %v, want the provider's error", err)
	}
}

func TestFactory(t *testing.T) {
	t.Run("an error ends Run", func(t *testing.T) {
		core := newFakeCore(t, testOutpost())
		core.start("")
		o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: map[string]outpost.Factory{
			"test": func(context.Context, outpost.Deps) (outpost.Provider, error) { return nil, errTest },
		}})
		err := o.Run(context.Background())
		if !errors.Is(err, errTest) || !strings.Contains(err.Error(), "building the test provider") {
			t.Fatalf("Run: %v, want the factory's error", err)
		}
		if o.Provider() != nil {
			t.Errorf("Provider() = %v after a failed factory", o.Provider())
		}
	})
	t.Run("only the outpost's type is built", func(t *testing.T) {
		core := newFakeCore(t, testOutpost())
		core.start("")
		p, other := &testProvider{typ: "test"}, &testProvider{typ: "other"}
		o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p, other)})
		if o.Provider() != nil {
			t.Error("a provider exists before Run")
		}
		runOutpost(t, o)
		<-o.Ready()
		if _, n := p.lent(); n != 1 {
			t.Errorf("the outpost's factory ran %d times", n)
		}
		if _, n := other.lent(); n != 0 {
			t.Errorf("the other type's factory ran %d times", n)
		}
	})
}

// httpProvider is a testProvider that serves HTTP.
type httpProvider struct{ testProvider }

func (p *httpProvider) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	io.WriteString(w, "provider")
}

// TestHandler: a host mounts o.Handler() before the provider exists;
// requests get a 503 at once, then reach the provider.
func TestHandler(t *testing.T) {
	get := func(h http.Handler) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://app.example/", nil))
		return w.Code, w.Body.String()
	}
	core := newFakeCore(t, testOutpost())
	core.start("")
	p := &httpProvider{testProvider{typ: "test"}}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p)})
	h := o.Handler()
	if code, body := get(h); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("before Run: %d %q, want 503 saying the outpost is starting", code, body)
	}
	runOutpost(t, o)
	<-o.Ready()
	if code, body := get(h); code != http.StatusOK || body != "provider" {
		t.Errorf("after Ready: %d %q, want the provider's answer", code, body)
	}
}

// TestChangeBeforeFirstConnection: a change made after the outpost fetched
// its first configuration but before its control channel was up reaches
// it without a trigger or the periodic refresh.
func TestChangeBeforeFirstConnection(t *testing.T) {
	op := testOutpost()
	core := newFakeCore(t, op)
	core.wsGate = make(chan struct{})
	core.start("")
	p := &testProvider{typ: "test"}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p), UpdateJitter: -1})
	runOutpost(t, o)
	<-o.Ready()
	core.mu.Lock()
	op.Providers = []map[string]any{{"pk": 7, "name": "changed"}}
	core.mu.Unlock()
	close(core.wsGate)
	eventually(t, "the change", func() bool { return len(p.last().Providers) == 1 })
}

func TestTriggerUpdateApplied(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	p := &testProvider{typ: "test"}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p)})
	runOutpost(t, o)
	eventually(t, "connected", func() bool { return p.applied() > 0 && core.connections() == 1 })

	core.edit(func() {
		for _, op := range core.outposts {
			op.Providers = []map[string]any{{"pk": 99, "name": "new"}}
		}
	})
	core.send(`{"instruction":0,"args":{}}`)  // ack: ignored
	core.send(`{"instruction":42,"args":{}}`) // unknown: ignored
	core.send(`{"instruction":2,"args":{}}`)
	eventually(t, "the new configuration", func() bool { return len(p.last().Providers) == 1 })
	if !strings.Contains(string(p.last().Providers[0]), `"new"`) {
		t.Errorf("applied %s", p.last().Providers[0])
	}
	if core.connections() != 1 {
		t.Error("the control channel dropped after an ack or unknown instruction")
	}

	// Provider-specific and session-end messages reach the provider.
	core.send(`{"instruction":4,"args":{"type":"event.session.end","session_id":"abc"}}`)
	eventually(t, "the session end message", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.messages) == 1 && p.messages[0].Instruction == outpost.InstructionSessionEnd &&
			p.messages[0].Args["session_id"] == "abc"
	})
}

// A refresh that fails keeps the last good configuration: Apply is not
// called with a partial one.
func TestRefreshFailureKeepsLastGood(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	p := &testProvider{typ: "test"}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p)})
	runOutpost(t, o)
	applied := settle(t, o, p)

	// Second pages fail (more than the client's retries), then a malformed
	// setting: neither may reach the provider.
	listed := core.count("/outposts/test/")
	core.edit(func() { core.fail["/outposts/test/"] = 100 })
	o.Refresh()
	// One attempt and four retries of the client, then the refresh gives up.
	eventually(t, "the failing refresh", func() bool { return core.count("/outposts/test/") >= listed+5 })
	time.Sleep(200 * time.Millisecond)
	core.edit(func() { core.fail = map[string]int{} })
	core.edit(func() { core.outposts[testToken].Config["kubernetes_replicas"] = "many" })
	before := core.count("/outposts/instances/")
	o.Refresh()
	eventually(t, "the malformed refresh", func() bool { return core.count("/outposts/instances/") > before })
	time.Sleep(200 * time.Millisecond)
	if n := p.applied(); n != applied {
		t.Fatalf("Apply called %d times, want only the %d before", n, applied)
	}
	serving, _ := p.state()
	if serving != 1 {
		t.Fatal("the provider stopped serving")
	}

	core.edit(func() { delete(core.outposts[testToken].Config, "kubernetes_replicas") })
	o.Refresh()
	eventually(t, "a good refresh", func() bool { return p.applied() == applied+1 })
}

func TestWebsocketReconnect(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	p := &testProvider{typ: "test"}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p)})
	runOutpost(t, o)
	eventually(t, "connected", func() bool { return o.Connected() && len(core.helloList()) > 0 })
	applied := p.applied()

	core.dropWebsockets(websocket.StatusServiceRestart)
	eventually(t, "a reconnect", func() bool {
		for _, h := range core.helloList() {
			if h.Query.Get("attempt") == "1" {
				return true
			}
		}
		return false
	})
	eventually(t, "Connected again", o.Connected)
	eventually(t, "a refresh after the reconnect", func() bool { return p.applied() > applied })
	if serving, serves := p.state(); serving != 1 || serves != 1 {
		t.Errorf("provider serving=%d serves=%d, want one uninterrupted Serve", serving, serves)
	}
}

func TestLogLevelLive(t *testing.T) {
	cases := []struct {
		name     string
		managed  string
		levelVar bool
		want     bool // debug enabled after log_level=debug
	}{
		{"standalone", "", false, true},
		{"standalone with LevelVar", "", true, true},
		{"embedded keeps the host's level", outpost.EmbeddedManaged, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op := testOutpost()
			op.Managed = c.managed
			core := newFakeCore(t, op)
			core.start("")
			cfg := outpost.Config{CoreURL: core.url()}
			if c.levelVar {
				lv := new(slog.LevelVar)
				cfg.LogLevel = lv
				cfg.Logger, _ = newLogger(lv)
			} else {
				// The host's handler shows everything; log_level filters.
				cfg.Logger, _ = newLogger(outpost.LevelTrace)
				if c.managed != "" {
					cfg.Logger, _ = newLogger(slog.LevelInfo)
				}
			}
			p := &testProvider{typ: "test"}
			cfg.Providers = factories(p)
			o := newOutpost(t, cfg)
			runOutpost(t, o)
			n := settle(t, o, p)
			p.mu.Lock()
			before := p.debugSeen[n-1]
			p.mu.Unlock()
			if before {
				t.Fatal("debug enabled with log_level=info")
			}
			core.edit(func() { op.Config["log_level"] = "debug" })
			core.send(`{"instruction":2,"args":{}}`)
			eventually(t, "another apply", func() bool { return p.applied() == n+1 })
			p.mu.Lock()
			got := p.debugSeen[n]
			p.mu.Unlock()
			if got != c.want {
				t.Fatalf("debug enabled = %v after log_level=debug, want %v", got, c.want)
			}
		})
	}
}

func TestTwoOutpostsShareRegistry(t *testing.T) {
	a, b := testOutpost(), testOutpost()
	b.PK, b.Name, b.Token = "9f8e7d6c-5b4a-4321-8765-fedcba987654", "second outpost", "second-token"
	core := newFakeCore(t, a, b)
	core.start("")
	reg := prometheus.NewRegistry()
	pa, pb := &testProvider{typ: "test"}, &testProvider{typ: "test"}
	oa := newOutpost(t, outpost.Config{CoreURL: core.url(), Token: a.Token, Providers: factories(pa),
		Registerer: reg, Version: "1.0", InstanceUUID: "aaaaaaaa-0000-0000-0000-000000000001"})
	ob := newOutpost(t, outpost.Config{CoreURL: core.url(), Token: b.Token, Providers: factories(pb),
		Registerer: reg, Version: "1.0", InstanceUUID: "bbbbbbbb-0000-0000-0000-000000000002"})
	stopA := runOutpost(t, oa)
	runOutpost(t, ob)
	eventually(t, "both connected", func() bool {
		return oa.Connected() && ob.Connected() && pa.applied() > 0 && pb.applied() > 0 &&
			testutil.CollectAndCount(reg, "authentik_outpost_connection") == 2
	})
	eventually(t, "both connection gauges at 1", func() bool {
		return testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP authentik_outpost_connection Connection status
# TYPE authentik_outpost_connection gauge
authentik_outpost_connection{outpost_name="second outpost",outpost_type="test",uuid="bbbbbbbb-0000-0000-0000-000000000002"} 1
authentik_outpost_connection{outpost_name="test outpost",outpost_type="test",uuid="aaaaaaaa-0000-0000-0000-000000000001"} 1
`), "authentik_outpost_connection") == nil
	})
	want := `
# HELP authentik_outpost_info Outpost info
# TYPE authentik_outpost_info gauge
authentik_outpost_info{build="",outpost_name="second outpost",outpost_type="test",uuid="bbbbbbbb-0000-0000-0000-000000000002",version="1.0"} 1
authentik_outpost_info{build="",outpost_name="test outpost",outpost_type="test",uuid="aaaaaaaa-0000-0000-0000-000000000001",version="1.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "authentik_outpost_info"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "authentik_outpost_last_update"); n != 2 {
		t.Errorf("%d last_update series, want 2", n)
	}
	// A stopped outpost takes its series with it; the other keeps its own.
	stopA()
	if n := testutil.CollectAndCount(reg, "authentik_outpost_info"); n != 1 {
		t.Errorf("%d info series after one outpost stopped, want 1", n)
	}
}

// The standalone metrics endpoint: ping and the core gauges, on the
// outpost's private registry.
func TestMetricsListener(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.start("")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &testProvider{typ: "test"}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p), MetricsListener: ln,
		Version: "2026.2.3", BuildHash: "abc", InstanceUUID: "cccccccc-0000-0000-0000-000000000003"})
	runOutpost(t, o)
	eventually(t, "connected", func() bool { return p.applied() > 0 && o.Connected() })

	base := "http://" + ln.Addr().String()
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		req, _ := http.NewRequest(method, base+"/outpost.goauthentik.io/ping", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("%s ping: %s", method, resp.Status)
		}
	}
	eventually(t, "gauges", func() bool {
		return testutil.GatherAndCompare(o.Gatherer(), strings.NewReader(`
# HELP authentik_outpost_connection Connection status
# TYPE authentik_outpost_connection gauge
authentik_outpost_connection{outpost_name="test outpost",outpost_type="test",uuid="cccccccc-0000-0000-0000-000000000003"} 1
# HELP authentik_outpost_info Outpost info
# TYPE authentik_outpost_info gauge
authentik_outpost_info{build="abc",outpost_name="test outpost",outpost_type="test",uuid="cccccccc-0000-0000-0000-000000000003",version="2026.2.3"} 1
`), "authentik_outpost_connection", "authentik_outpost_info") == nil
	})
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, n := data, len(data)
	for _, name := range []string{"authentik_outpost_info{", "authentik_outpost_connection{", "authentik_outpost_last_update{"} {
		if !strings.Contains(string(body[:n]), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if strings.Contains(string(body[:n]), "go_goroutines") {
		t.Error("/metrics has Go runtime metrics; only cmd registers those")
	}
}

func TestFactoryOf(t *testing.T) {
	p := &testProvider{typ: "test"}
	ok := outpost.FactoryOf(func(outpost.Deps) (*testProvider, error) { return p, nil })
	if got, err := ok(context.Background(), outpost.Deps{}); err != nil || got != outpost.Provider(p) {
		t.Errorf("FactoryOf = %v, %v; want the provider", got, err)
	}
	failing := outpost.FactoryOf(func(outpost.Deps) (*testProvider, error) { return nil, errTest })
	// A nil *testProvider must not come back as a non-nil interface.
	if got, err := failing(context.Background(), outpost.Deps{}); !errors.Is(err, errTest) || got != nil {
		t.Errorf("failing FactoryOf = %#v, %v; want nil and the error", got, err)
	}
	d := outpost.Deps{}.WithDefaults()
	if d.Logger == nil || d.Registerer == nil {
		t.Errorf("WithDefaults left %+v", d)
	}
}
