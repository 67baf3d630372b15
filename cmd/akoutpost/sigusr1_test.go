package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// SIGUSR1 refreshes the outpost's configuration at once, as authentik's
// outpost does on the same signal: the process receives a real signal,
// and the core sees the outpost fetch its instance again.
func TestSIGUSR1Refreshes(t *testing.T) {
	core, err := outposttest.NewServer(outposttest.DemoBlueprint)
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	metrics := freeAddr(t)
	logs := &syncbuf.Buffer{}
	c := command{stdout: io.Discard, stderr: logs, usr1: usr1, getenv: envOf(map[string]string{
		"AUTHENTIK_HOST":            core.URL(),
		"AUTHENTIK_TOKEN":           core.Token("demo-proxy"),
		"AUTHENTIK_LISTEN__HTTP":    freeAddr(t),
		"AUTHENTIK_LISTEN__HTTPS":   freeAddr(t),
		"AUTHENTIK_LISTEN__METRICS": metrics,
		"AKOUTPOST_SESSION_STORE":   "memory",
	})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- c.main(ctx, []string{"run"}) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("run did not stop within 30 s")
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()

	connected := regexp.MustCompile(`(?m)^authentik_outpost_connection\{[^}]*outpost_type="proxy"[^}]*\} 1$`)
	waitFor(t, "authentik_outpost_connection 1", func() bool {
		code, body := get("http://" + metrics + "/metrics")
		return code == 200 && connected.MatchString(body)
	})
	fetches := func() int {
		n := 0
		for _, r := range core.Requests() {
			if r.Method == "GET" && r.Path == "/api/v3/outposts/instances/" {
				n++
			}
		}
		return n
	}
	// Nothing else asks for a refresh in this window: the periodic one is
	// minutes away and the core sends no update.
	before := fetches()
	time.Sleep(500 * time.Millisecond)
	if fetches() != before {
		t.Fatalf("the outpost refreshed on its own (%d, then %d fetches); the test cannot tell a signal's refresh apart", before, fetches())
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a refresh after SIGUSR1", func() bool { return fetches() > before })
}
