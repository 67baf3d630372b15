package outpost_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// These tests run the outpost against the shared test core (package
// outposttest) loaded with the demo blueprint, as a real deployment would
// run against authentik. The fake core of fakecore_test.go covers the
// corners the test core does not expose.

func startTestCore(t *testing.T) *outposttest.Server {
	t.Helper()
	s, err := outposttest.NewServer(outposttest.DemoBlueprint)
	if err != nil {
		t.Fatalf("test core: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTestCoreDownThenUp(t *testing.T) {
	s := startTestCore(t)
	s.Stop()
	p := &testProvider{typ: "proxy"}
	o := newOutpost(t, outpost.Config{CoreURL: s.URL() + "/", Token: s.Token("demo-proxy"), Providers: factories(p)})
	runOutpost(t, o)
	time.Sleep(500 * time.Millisecond)
	if p.applied() != 0 {
		t.Fatal("applied a configuration while the core was down")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitConnected(waitCtx(t), "demo-proxy", 1); err != nil {
		t.Fatalf("never connected: %v", err)
	}
	eventually(t, "Apply", func() bool { return p.applied() > 0 })
	if n := len(p.last().Providers); n != 2 {
		t.Errorf("demo-proxy has %d provider objects, want 2", n)
	}
	h := s.Hellos("demo-proxy")[0]
	if h.InstanceUUID != o.InstanceUUID() || h.Args["uuid"] != o.InstanceUUID() {
		t.Errorf("hello %+v", h)
	}
}

func TestTestCoreTokenRejected(t *testing.T) {
	s := startTestCore(t)
	log, logs := newLogger(slog.LevelDebug)
	o := newOutpost(t, outpost.Config{CoreURL: s.URL(), Token: "not-a-token", Logger: log,
		Providers: factories(&testProvider{typ: "proxy"})})
	stop := runOutpost(t, o)
	eventually(t, "the permanent error", func() bool { return len(logs.records("failed permanently")) > 0 })
	time.Sleep(2 * time.Second)
	stop()
	if n := s.RequestCount("/api/v3/outposts/instances/"); n != 1 {
		t.Errorf("%d requests with a rejected token, want 1", n)
	}
	if strings.Contains(logs.String(), "not-a-token") {
		t.Error("the token appears in the logs")
	}
}

func TestTestCoreLiveChanges(t *testing.T) {
	s := startTestCore(t)
	p := &testProvider{typ: "proxy"}
	o := newOutpost(t, outpost.Config{CoreURL: s.URL(), Token: s.Token("demo-proxy"),
		Logger:    slog.New(slog.NewJSONHandler(new(logBuffer), &slog.HandlerOptions{Level: outpost.LevelTrace})),
		Providers: factories(p)})
	runOutpost(t, o)
	if err := s.WaitConnected(waitCtx(t), "demo-proxy", 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first Apply", func() bool { return p.applied() > 0 })

	// log_level changes live through a triggered update.
	if err := s.UpdateOutpostConfig("demo-proxy", map[string]any{"log_level": "debug"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "log_level=debug applied", func() bool {
		p.mu.Lock()
		debug := p.debugSeen[len(p.debugSeen)-1]
		p.mu.Unlock()
		return debug && p.last().Settings.LogLevel == "debug"
	})

	// A provider change reaches the provider through the core's trigger.
	if err := s.UpdateProvider("whoami", map[string]any{"external_host": "http://changed.localhost:9000"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the changed provider", func() bool {
		for _, raw := range p.last().Providers {
			if strings.Contains(string(raw), "changed.localhost") {
				return true
			}
		}
		return false
	})

	// The websocket drops; the outpost reconnects with attempt=1 and
	// refreshes, and the provider serves throughout.
	applied := p.applied()
	s.DropWebsockets()
	err := s.WaitFor(waitCtx(t), "demo-proxy", func(cs []outposttest.Connection) bool {
		for _, c := range cs {
			if c.Attempt >= 1 && c.Closed.IsZero() && c.Hellos > 0 {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
	eventually(t, "a refresh after the reconnect", func() bool { return p.applied() > applied })
	if serving, serves := p.state(); serving != 1 || serves != 1 {
		t.Errorf("serving=%d serves=%d, want one uninterrupted Serve", serving, serves)
	}
}

func TestTestCoreTwoOutpostsOneRegistry(t *testing.T) {
	s := startTestCore(t)
	reg := prometheus.NewRegistry()
	pp, pl := &testProvider{typ: "proxy"}, &testProvider{typ: "ldap"}
	op := newOutpost(t, outpost.Config{CoreURL: s.URL(), Token: s.Token("demo-proxy"), Registerer: reg,
		Providers: factories(pp, pl)})
	ol := newOutpost(t, outpost.Config{CoreURL: s.URL(), Token: s.Token("demo-ldap"), Registerer: reg,
		Providers: factories(pp, pl)})
	runOutpost(t, op)
	runOutpost(t, ol)
	eventually(t, "both applied and connected", func() bool {
		return pp.applied() > 0 && pl.applied() > 0 && op.Connected() && ol.Connected() &&
			testutil.CollectAndCount(reg, "authentik_outpost_connection") == 2
	})
	if n := testutil.CollectAndCount(reg, "authentik_outpost_info"); n != 2 {
		t.Errorf("%d info series, want 2", n)
	}
	if pl.last().Outpost.Type != "ldap" || pp.last().Outpost.Type != "proxy" {
		t.Error("an outpost ran the provider of the other type")
	}
}
