package reliability

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakDuration is how long the soak's load runs: AKOUTPOST_SOAK_DURATION
// (a Go duration), else 60s.
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("AKOUTPOST_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("AKOUTPOST_SOAK_DURATION: %v", err)
		}
		return d
	}
	return 60 * time.Second
}

// settledGoroutines waits until the goroutine count is at most limit and
// returns the last count seen.
func settledGoroutines(limit int) int {
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := goroutines()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutines counts the goroutines but those of idle keep-alive
// connections to the core: the outposts keep up to 256 of them for 90 s
// on purpose, so that load does not open a connection per core call.
func goroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if len(g) > 0 && !bytes.Contains(g, []byte("net/http.(*persistConn)")) {
			count++
		}
	}
	return count
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestSoak mixes proxy requests, forward-auth checks, LDAP binds and
// searches (cached and direct) with configuration updates, directory
// changes and websocket drops for soakDuration. Nothing a client does may
// fail: the injected events are ones an outpost must absorb, and both
// websockets reconnect afterwards. Afterwards the
// goroutines and the heap return to their levels from before the load,
// with the outposts still running, and again once everything stopped.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak skipped with -short")
	}
	duration := soakDuration(t)
	startGoroutines := goroutines()
	startHeap := heapAlloc()

	t.Run("load", func(t *testing.T) {
		s := startStack(t, stackOptions{keepLog: func(line []byte) bool {
			return bytes.Contains(line, []byte(`"level":"WARN"`)) || bytes.Contains(line, []byte(`"level":"ERROR"`))
		}})
		jar := s.login(t, "http://app.test/soak", "alice", alicePassword)
		fj := s.forwardLogin(t, "alice", alicePassword)
		time.Sleep(time.Second) // let the logins' connections go idle
		readyGoroutines := goroutines()
		// The test core runs in this process and logs up to 100,000
		// requests; the heap checks are about the outposts, so the log is
		// emptied before each.
		s.core.ResetRequests()
		readyHeap := heapAlloc()

		var (
			proxyOK, forwardOK, bindOK, searchOK atomic.Int64
			updates, drops                       atomic.Int64
			errMu                                sync.Mutex
			errs                                 []string
		)
		fail := func(format string, a ...any) {
			errMu.Lock()
			defer errMu.Unlock()
			if len(errs) < 20 {
				errs = append(errs, fmt.Sprintf(format, a...))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), duration)
		defer cancel()
		var wg sync.WaitGroup
		worker := func(f func(i int)) {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					f(i)
				}
			})
		}
		for range 2 {
			worker(func(i int) {
				code, body, err := s.get(jar, fmt.Sprintf("http://app.test/soak/%d", i))
				if err != nil || code != 200 || len(body) == 0 {
					fail("proxy request: %d %v", code, err)
					return
				}
				proxyOK.Add(1)
			})
		}
		worker(func(i int) {
			if code, err := s.forwardAuth(fj, fmt.Sprintf("/soak/%d", i)); err != nil || code != 200 {
				fail("forward auth with session: %d %v", code, err)
				return
			}
			if code, err := s.forwardAuth(nil, "/soak"); err != nil || code != 302 {
				fail("forward auth without session: %d %v", code, err)
				return
			}
			forwardOK.Add(2)
		})
		for _, p := range []struct{ dn, base string }{{binderCachedDN, "dc=cached,dc=test"}, {binderDirectDN, "dc=direct,dc=test"}} {
			worker(func(i int) {
				l, err := s.ldap()
				if err != nil {
					fail("ldap dial: %v", err)
					return
				}
				defer l.Close()
				if err := l.Bind(p.dn, binderPassword); err != nil {
					fail("bind %s: %v", p.dn, err)
					return
				}
				bindOK.Add(1)
				for range 3 {
					if _, err := s.search(l, p.base, "(objectClass=user)"); err != nil {
						fail("search %s: %v", p.base, err)
						return
					}
					searchOK.Add(1)
				}
			})
		}
		// The chaos: a change every 500ms, cycling through the kinds.
		wg.Go(func() {
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				var err error
				switch i % 4 {
				case 0:
					err = s.core.UpdateProvider("fwd", map[string]any{"skip_path_regex": fmt.Sprintf("^/never-%d", i)})
					updates.Add(1)
				case 1:
					err = s.core.UpdateUser("alice", map[string]any{"email": fmt.Sprintf("alice-%d@example.com", i)})
					s.core.TriggerUpdate("rel-ldap")
					updates.Add(1)
				case 2:
					// Only a connection that exists can be dropped; the
					// outposts back off between reconnects (1s doubling to
					// 2 min until a connection lasts a minute), so most
					// ticks find them still away.
					if s.proxyOut.Connected() || s.ldapOut.Connected() {
						s.core.DropWebsockets()
						drops.Add(1)
					}
				case 3:
					err = s.core.UpdateOutpostConfig("rel-proxy", map[string]any{"refresh_interval": fmt.Sprintf("minutes=%d", 5+i%3)})
					updates.Add(1)
				}
				if err != nil {
					fail("injecting change %d: %v", i, err)
				}
			}
		})
		wg.Wait()
		total := proxyOK.Load() + forwardOK.Load() + bindOK.Load() + searchOK.Load()
		t.Logf("soak %s: %d proxy requests, %d forward-auth checks, %d LDAP binds, %d LDAP searches (%d operations, %.0f/s); %d config updates, %d websocket drops injected",
			duration, proxyOK.Load(), forwardOK.Load(), bindOK.Load(), searchOK.Load(), total, float64(total)/duration.Seconds(), updates.Load(), drops.Load())
		for _, e := range errs {
			t.Error(e)
		}
		// The outposts' own view: warnings are expected around websocket
		// drops; errors are not.
		warns, errors := s.count(`"level":"WARN"`), s.count(`"level":"ERROR"`)
		t.Logf("outpost logs during the soak: %d warnings, %d errors", warns, errors)
		if errors > 0 {
			t.Errorf("%d error log lines during the soak, first: %.500s", errors, s.logs.String())
		}
		if proxyOK.Load() == 0 || forwardOK.Load() == 0 || bindOK.Load() == 0 || searchOK.Load() == 0 || drops.Load() == 0 {
			t.Fatal("some part of the load never ran")
		}
		// Let the last reconnect finish before counting; its backoff may
		// have reached the 2 minute maximum.
		eventuallyWithin(t, "websockets reconnected", 150*time.Second, func() error {
			if !s.proxyOut.Connected() || !s.ldapOut.Connected() {
				return fmt.Errorf("not connected")
			}
			return nil
		})
		// With the outposts still running: back to the level before the load.
		// A little slack covers keep-alive connections still closing.
		g := settledGoroutines(readyGoroutines + 5)
		s.core.ResetRequests()
		h := heapAlloc()
		t.Logf("outposts running: goroutines %d before the load, %d after; heap %d KiB before, %d KiB after",
			readyGoroutines, g, readyHeap>>10, h>>10)
		if g > readyGoroutines+5 {
			t.Errorf("goroutines did not return to baseline: %d before the load, %d after", readyGoroutines, g)
		}
		if h > readyHeap+32<<20 {
			t.Errorf("heap grew from %d KiB to %d KiB over the soak", readyHeap>>10, h>>10)
		}
	})
	// Everything stopped: back to the level before the stack existed.
	g := settledGoroutines(startGoroutines + 2)
	h := heapAlloc()
	t.Logf("all stopped: goroutines %d at start, %d at end; heap %d KiB at start, %d KiB at end", startGoroutines, g, startHeap>>10, h>>10)
	if g > startGoroutines+2 {
		t.Errorf("goroutines did not return to baseline after shutdown: %d at start, %d at end", startGoroutines, g)
	}
	if h > startHeap+16<<20 {
		t.Errorf("heap did not return near baseline after shutdown: %d KiB at start, %d KiB at end", startHeap>>10, h>>10)
	}
}
