package ldapserver

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Operations run on workers that outlive them, at most one per operation
// that may be in flight: when every worker exists, the next operation
// waits for one to be idle instead of starting another (a worker that has
// written its answer is not idle yet, and the client may already have
// sent the next request).
func TestWorkersBounded(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newConn(context.Background(), &settings{maxOps: 2, nextID: new(atomic.Uint64), log: slog.New(slog.DiscardHandler)}, a)
	release := make(chan struct{})
	ran := make(chan int, 3)
	for i := range 2 {
		c.sem <- struct{}{}
		// Like an operation whose answer is sent: its slot is free, its
		// worker not yet idle.
		c.onWorker(func() { <-c.sem; <-release; ran <- i })
	}
	third := make(chan struct{})
	c.sem <- struct{}{}
	go func() {
		c.onWorker(func() { ran <- 2; <-c.sem })
		close(third)
	}()
	select {
	case <-third:
		t.Fatal("a third worker started while two existed")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-third
	for range 3 {
		<-ran
	}
	if c.nworkers != 2 {
		t.Errorf("%d workers, want 2", c.nworkers)
	}
	c.cancel()
	c.workers.Wait()
}
