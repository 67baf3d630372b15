package outpost_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
)

// AUTHENTIK_INSECURE lets the API and the websocket accept a self-signed
// core; without it both refuse, and an untrusted certificate is not
// retried in a storm by the client.
func TestInsecureTLS(t *testing.T) {
	core := newFakeCore(t, testOutpost())
	core.tls = true
	core.start("")
	if !strings.HasPrefix(core.url(), "https://") {
		t.Fatal("fake core is not on https")
	}

	t.Run("insecure", func(t *testing.T) {
		p := &testProvider{typ: "test"}
		o := newOutpost(t, outpost.Config{CoreURL: core.url(), Insecure: true, Providers: factories(p)})
		runOutpost(t, o)
		eventually(t, "apply and websocket over TLS", func() bool { return p.applied() > 0 && o.Connected() })
	})
	t.Run("verified", func(t *testing.T) {
		log, logs := newLogger(slog.LevelDebug)
		p := &testProvider{typ: "test"}
		before := core.count("/outposts/instances/")
		o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p), Logger: log})
		stop := runOutpost(t, o)
		eventually(t, "the certificate error", func() bool {
			return len(logs.records("fetching outpost configuration failed")) > 0
		})
		stop()
		if e, _ := logs.records("fetching outpost configuration failed")[0]["error"].(string); !strings.Contains(e, "certificate") {
			t.Errorf("error %q should name the certificate problem", e)
		}
		if p.applied() != 0 {
			t.Error("applied a configuration from an unverified core")
		}
		// The TLS handshake fails before any request reaches the handler.
		if n := core.count("/outposts/instances/") - before; n != 0 {
			t.Errorf("%d requests reached the core", n)
		}
	})
}

// slowProvider blocks its second Apply until released.
type slowProvider struct {
	testProvider
	release chan struct{}
	once    sync.Once
}

func (p *slowProvider) Apply(ctx context.Context, u outpost.Update) error {
	if p.applied() == 1 {
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.testProvider.Apply(ctx, u)
}

// Hellos keep their 10 s schedule while a refresh is stuck: upstream sends
// them from the loop that refreshes, so a slow refresh made the core show
// the outpost as unhealthy.
func TestHelloDuringSlowRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a periodic hello (10 s)")
	}
	core := newFakeCore(t, testOutpost())
	core.start("")
	p := &slowProvider{testProvider: testProvider{typ: "test"}, release: make(chan struct{})}
	o := newOutpost(t, outpost.Config{CoreURL: core.url(), Providers: factories(p)})
	defer close(p.release)
	runOutpost(t, o)
	eventually(t, "first apply and hello", func() bool { return p.applied() == 1 && len(core.helloList()) == 1 })
	core.send(`{"instruction":2,"args":{}}`) // the refresh blocks in Apply
	eventually(t, "the refresh to start", func() bool { return core.count("/outposts/instances/") == 2 })
	deadline := time.Now().Add(25 * time.Second)
	for len(core.helloList()) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if len(core.helloList()) < 2 {
		t.Fatal("no periodic hello while a refresh was stuck")
	}
	if p.applied() != 1 {
		t.Fatal("the stuck refresh finished early; the test proves nothing")
	}
}
