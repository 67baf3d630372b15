package reconcile

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akoutpost/akoutpost/outpost"
)

// apiCore serves the part of authentik's API the controller reads, with
// schema.yml's paths and fields, from objects a test edits.
type apiCore struct {
	mu       sync.Mutex
	token    string
	outposts []map[string]any
	docker   []map[string]any
	kube     []map[string]any
	keys     map[string]string // token identifier -> key
	down     bool
	srv      *httptest.Server
}

func newAPICore(t *testing.T) *apiCore {
	c := &apiCore{token: "admin-api-token", keys: map[string]string{}}
	mux := http.NewServeMux()
	list := func(get func() []map[string]any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			items := slices.Clone(get())
			c.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{
				"pagination": map[string]any{"next": 0, "previous": 0, "count": len(items), "current": 1,
					"total_pages": 1, "start_index": 1, "end_index": len(items)},
				"results": items, "autocomplete": map[string]any{},
			})
		}
	}
	mux.HandleFunc("GET /api/v3/outposts/instances/", list(func() []map[string]any { return c.outposts }))
	mux.HandleFunc("GET /api/v3/outposts/service_connections/docker/", list(func() []map[string]any { return c.docker }))
	mux.HandleFunc("GET /api/v3/outposts/service_connections/kubernetes/", list(func() []map[string]any { return c.kube }))
	mux.HandleFunc("GET /api/v3/core/tokens/{id}/view_key/", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		key, ok := c.keys[r.PathValue("id")]
		c.mu.Unlock()
		if !ok {
			http.Error(w, `{"detail":"Not found."}`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"key": key})
	})
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		down := c.down
		c.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+c.token {
			http.Error(w, `{"detail":"Token invalid/expired"}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *apiCore) client(t *testing.T) *outpost.Client {
	t.Helper()
	u, _ := url.Parse(c.srv.URL)
	cl, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: c.token, RetryMax: -1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (c *apiCore) edit(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

func TestControllerDocker(t *testing.T) {
	e := dockerEngine(t)
	cnt := e.counter(t)
	core := newAPICore(t)
	const pk = "66666666-93c5-4d6a-b7e0-5f21c8d9a3b4"
	const conn = "d0c0e000-0000-4000-8000-000000000001"
	core.edit(func() {
		core.docker = []map[string]any{{"pk": conn, "name": "local engine", "local": false, "url": cnt.host(),
			"tls_verification": nil, "tls_authentication": nil, "component": "ak-service-connection-docker-form",
			"verbose_name": "Docker Service-Connection", "verbose_name_plural": "Docker Service-Connections",
			"meta_model_name": "authentik_outposts.dockerserviceconnection"}}
		core.outposts = []map[string]any{{
			"pk": pk, "name": "Controller LDAP", "type": "ldap", "providers": []int{},
			"providers_obj": []any{}, "service_connection": conn, "service_connection_obj": nil,
			"refresh_interval_s": 300, "token_identifier": "ak-outpost-" + pk + "-api", "managed": nil,
			"config": map[string]any{"authentik_host": "http://core.example/", "container_image": testImage,
				"docker_network": "host", "docker_labels": map[string]any{"env": "test"}},
		}}
		core.keys["ak-outpost-"+pk+"-api"] = "the-outpost-token-key"
	})
	reg := prometheus.NewRegistry()
	ctl, err := NewController(ControllerConfig{Client: core.client(t), Registerer: reg, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d := newDocker(t, "unix://"+e.sock, conn)
		d.Delete(context.Background(), pk)
	})
	ctx := contextTimeout(t, 2*time.Minute)
	name := "ak-outpost-controller-ldap"

	ctl.Poll(ctx)
	st := ctl.Status()
	if len(st.Outposts) != 1 || st.Outposts[0].Result != "ok" || !slices.Equal(st.Outposts[0].Objects.Created, []string{"container/" + name}) {
		t.Fatalf("status after the first poll: %+v", st)
	}
	c := inspect(t, e, name)
	if !slices.Contains(c.Config.Env, "AUTHENTIK_TOKEN=the-outpost-token-key") || c.Config.Labels["env"] != "test" {
		t.Fatalf("container env %v labels %v", c.Config.Env, c.Config.Labels)
	}
	if strings.Contains(mustJSON(t, st), "the-outpost-token-key") {
		t.Fatal("the status holds the token")
	}

	// Nothing changed: the next polls write nothing (the interval has not
	// passed, and the reconcile itself would write nothing either).
	before := cnt.writes.Load()
	ctl.Poll(ctx)
	ctl.Poll(ctx)
	if n := cnt.writes.Load() - before; n != 0 {
		t.Fatalf("unchanged polls wrote %d times", n)
	}

	// An edit in the core is applied at the next poll.
	core.edit(func() { core.outposts[0]["config"].(map[string]any)["docker_labels"] = map[string]any{"env": "prod"} })
	ctl.Poll(ctx)
	if got := inspect(t, e, name); got.Config.Labels["env"] != "prod" {
		t.Fatalf("label after the edit: %q", got.Config.Labels["env"])
	}

	// A container removed by hand is back after the interval's reconcile.
	ctl.cfg.Interval = time.Millisecond
	if _, err := e.cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	ctl.Poll(ctx)
	if got := inspect(t, e, name); !got.State.Running {
		t.Fatal("the removed container was not restored")
	}

	// The core fails: the status says so and nothing is removed.
	core.edit(func() { core.down = true })
	ctl.Poll(ctx)
	if st := ctl.Status(); st.PollError == "" {
		t.Fatalf("no poll error while the core is down: %+v", st)
	}
	inspect(t, e, name)
	core.edit(func() { core.down = false })

	// The outpost no longer names the connection: its container goes.
	core.edit(func() { core.outposts[0]["service_connection"] = nil })
	ctl.Poll(ctx)
	if _, err := e.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err == nil {
		t.Fatal("the container is still there")
	}
	if st := ctl.Status(); st.Outposts[0].Result != "removed" {
		t.Fatalf("status after removal: %+v", st.Outposts)
	}
	if n := testutil.ToFloat64(ctl.metrics.reconciles.WithLabelValues(KindDocker, "ok")); n < 4 {
		t.Errorf("akoutpost_controller_reconciles_total{kind=docker,result=ok} = %v", n)
	}

	// Run stops when its context ends.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ctl.Run(runCtx) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// An outpost whose token cannot be read, or whose connection cannot be
// reached, is reported in the status and retried; the controller goes on
// with the others.
func TestControllerReportsFailures(t *testing.T) {
	core := newAPICore(t)
	const conn = "d0c0e000-0000-4000-8000-000000000002"
	core.edit(func() {
		core.docker = []map[string]any{{"pk": conn, "name": "nowhere", "local": false, "url": "unix:///nonexistent/docker.sock"}}
		core.outposts = []map[string]any{
			{"pk": "77777777-93c5-4d6a-b7e0-5f21c8d9a3b4", "name": "No token", "type": "ldap", "providers": []int{},
				"service_connection": conn, "token_identifier": "missing", "config": map[string]any{}},
			{"pk": "88888888-93c5-4d6a-b7e0-5f21c8d9a3b4", "name": "No engine", "type": "ldap", "providers": []int{},
				"service_connection": conn, "token_identifier": "t2", "config": map[string]any{"container_image": "x:1"}},
		}
		core.keys["t2"] = "secret-key-t2"
	})
	ctl, err := NewController(ControllerConfig{Client: core.client(t), Poll: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := contextTimeout(t, time.Minute)
	ctl.Poll(ctx)
	st := ctl.Status()
	if len(st.Outposts) != 2 {
		t.Fatalf("status %+v", st)
	}
	for _, o := range st.Outposts {
		if o.Result != "error" || o.Error == "" || strings.Contains(o.Error, "secret-key-t2") || o.Failures != 1 {
			t.Errorf("%s: %+v", o.Name, o)
		}
	}
	if !strings.Contains(st.Outposts[1].Error, "token missing") {
		t.Errorf("error for the missing token: %q", st.Outposts[1].Error)
	}
	ctl.Poll(ctx) // within the backoff: not retried
	if st := ctl.Status(); st.Outposts[0].Failures != 1 {
		t.Errorf("retried before the backoff: %+v", st.Outposts[0])
	}
	// Fixing the outpost in the core retries it at once, backoff or not.
	core.edit(func() { core.outposts[0]["token_identifier"] = "missing2" })
	ctl.Poll(ctx)
	if st := ctl.Status(); st.Outposts[1].Failures != 2 || !strings.Contains(st.Outposts[1].Error, "missing2") {
		t.Errorf("a changed outpost was not retried at once: %+v", st.Outposts[1])
	}
	rec := httptest.NewRecorder()
	ctl.ServeHTTP(rec, httptest.NewRequest("GET", StatusPath, nil))
	var got Status
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Outposts) != 2 {
		t.Fatalf("JSON status %s: %v", rec.Body, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An engine that accepts connections and never answers delays the poll by
// the reconcile timeout, not forever.
func TestControllerHungEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "hung.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	core := newAPICore(t)
	const conn = "d0c0e000-0000-4000-8000-000000000003"
	core.edit(func() {
		core.docker = []map[string]any{{"pk": conn, "name": "hung", "local": false, "url": "unix://" + sock}}
		core.outposts = []map[string]any{{"pk": "abababab-93c5-4d6a-b7e0-5f21c8d9a3b4", "name": "Stuck", "type": "ldap",
			"providers": []int{}, "service_connection": conn, "token_identifier": "t", "config": map[string]any{"container_image": "x:1"}}}
		core.keys["t"] = "k"
	})
	ctl, err := NewController(ControllerConfig{Client: core.client(t), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.closeAll()
	start := time.Now()
	ctl.Poll(contextTimeout(t, time.Minute))
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a poll against a hung engine took %v", d)
	}
	st := ctl.Status()
	if len(st.Outposts) != 1 || st.Outposts[0].Result != "error" || !strings.Contains(st.Outposts[0].Error, "deadline") {
		t.Fatalf("status %+v", st)
	}
	if len(st.Connections) != 1 || st.Connections[0].Error == "" {
		t.Fatalf("connection status %+v", st.Connections)
	}
}
