package ldap

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testThrottle(t *testing.T, cfg BindThrottle) (*throttle, *fakeClock) {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: t0}
	return newThrottle(cfg, clk.now), clk
}

// TestBindThrottleSteps plays sequences of binds against the throttle on
// a fake clock. Each step is a bind of a pair at a time: whether it was
// admitted to the core, how it ended, and how long its answer waits.
func TestBindThrottleSteps(t *testing.T) {
	type step struct {
		after    time.Duration // clock moves this much before the step
		dn, ip   string
		end      outcome // how an admitted bind ends
		refused  bool    // want: refused without asking the core
		wantWait time.Duration
	}
	const (
		alice = "cn=alice,ou=users,dc=x"
		bob   = "cn=bob,ou=users,dc=x"
		a     = "192.0.2.1"
		b     = "192.0.2.2"
	)
	fail := func(ip string, wait time.Duration) step {
		return step{dn: alice, ip: ip, end: outcomeFailure, wantWait: wait}
	}
	cfg := BindThrottle{MaxFailures: 3, Window: time.Minute, Lockout: 10 * time.Minute, Delay: time.Second, MaxDelay: 3 * time.Second}
	tests := []struct {
		name  string
		cfg   BindThrottle
		steps []step
	}{
		{"failures delay, then lock; the right password is refused too", cfg, []step{
			fail(a, 0), fail(a, time.Second), fail(a, 2*time.Second),
			{dn: alice, ip: a, end: outcomeSuccess, refused: true, wantWait: 3 * time.Second},
		}},
		{"another address is not locked out", cfg, []step{
			fail(a, 0), fail(a, time.Second), fail(a, 2*time.Second),
			{dn: alice, ip: b, end: outcomeSuccess},
			{dn: alice, ip: a, refused: true, wantWait: 3 * time.Second},
		}},
		{"another DN from the same address is not locked out", cfg, []step{
			fail(a, 0), fail(a, time.Second), fail(a, 2*time.Second),
			{dn: bob, ip: a, end: outcomeSuccess},
		}},
		{"a DN differing only in case is the same pair", cfg, []step{
			fail(a, 0), fail(a, time.Second), fail(a, 2*time.Second),
			{dn: strings.ToUpper(alice), ip: a, refused: true, wantWait: 3 * time.Second},
		}},
		{"a success resets the pair", cfg, []step{
			fail(a, 0), fail(a, time.Second),
			{dn: alice, ip: a, end: outcomeSuccess},
			fail(a, 0), fail(a, time.Second),
			{dn: alice, ip: a, end: outcomeSuccess},
		}},
		{"a core error is not counted", cfg, []step{
			fail(a, 0), fail(a, time.Second),
			{dn: alice, ip: a, end: outcomeOther}, {dn: alice, ip: a, end: outcomeOther},
			fail(a, 2*time.Second),
			{dn: alice, ip: a, refused: true, wantWait: 3 * time.Second},
		}},
		{"failures older than the window are forgotten", cfg, []step{
			fail(a, 0), fail(a, time.Second),
			{after: time.Minute, dn: alice, ip: a, end: outcomeFailure},
			fail(a, time.Second), fail(a, 2*time.Second),
			{dn: alice, ip: a, refused: true, wantWait: 3 * time.Second},
		}},
		{"the lockout ends", cfg, []step{
			fail(a, 0), fail(a, time.Second), fail(a, 2*time.Second),
			{after: 10*time.Minute - time.Nanosecond, dn: alice, ip: a, refused: true, wantWait: 3 * time.Second},
			{after: time.Nanosecond, dn: alice, ip: a, end: outcomeSuccess},
		}},
		{"an IPv4 address mapped into IPv6 is the IPv4 address", cfg, []step{
			fail("::ffff:"+a, 0), fail(a, time.Second), fail("::ffff:"+a, 2*time.Second),
			{dn: alice, ip: a, refused: true, wantWait: 3 * time.Second},
		}},
		{"IPv6 addresses of one /64 are one address", cfg, []step{
			fail("2001:db8::1", 0), fail("2001:db8::2", time.Second), fail("2001:db8::ffff:1", 2*time.Second),
			{dn: alice, ip: "2001:db8::3", refused: true, wantWait: 3 * time.Second},
			{dn: alice, ip: "2001:db8:0:1::1", end: outcomeSuccess},
		}},
		{"the delay doubles up to its cap", BindThrottle{MaxFailures: -1, Delay: time.Second, MaxDelay: 5 * time.Second}, []step{
			fail(a, 0), fail(a, time.Second), fail(a, 2*time.Second), fail(a, 4*time.Second),
			fail(a, 5*time.Second), fail(a, 5*time.Second), fail(a, 5*time.Second),
		}},
		{"no delay, no lockout", BindThrottle{MaxFailures: -1, Delay: -1}, []step{
			fail(a, 0), fail(a, 0), fail(a, 0), fail(a, 0), fail(a, 0), fail(a, 0),
		}},
		{"defaults: five failures lock, delays from half a second to four", BindThrottle{}, []step{
			fail(a, 0), fail(a, 500*time.Millisecond), fail(a, time.Second), fail(a, 2*time.Second), fail(a, 4*time.Second),
			{after: 5*time.Minute - time.Second, dn: alice, ip: a, refused: true, wantWait: 4 * time.Second},
			{after: time.Second, dn: alice, ip: a, end: outcomeSuccess},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, clk := testThrottle(t, tt.cfg)
			for i, st := range tt.steps {
				clk.advance(st.after)
				k := th.key(strings.ToLower(st.dn), st.ip)
				var wait time.Duration
				refused := false
				if d, locked := th.locked(k); locked {
					refused, wait = true, d
				} else {
					a, d, err := th.begin(context.Background(), k)
					switch {
					case errors.Is(err, errThrottled):
						refused, wait = true, d
					case err != nil:
						t.Fatalf("step %d: %v", i, err)
					default:
						wait = a.end(st.end)
					}
				}
				if refused != st.refused || wait != st.wantWait {
					t.Fatalf("step %d (%s from %s): refused %v, waits %v; want refused %v, waits %v",
						i, st.dn, st.ip, refused, wait, st.refused, st.wantWait)
				}
			}
		})
	}
}

// TestBindThrottleParallel checks that parallel connections guess no
// faster than one: a pair with failures has only as many binds at the
// core as it has failures left, and the others wait.
func TestBindThrottleParallel(t *testing.T) {
	th, _ := testThrottle(t, BindThrottle{MaxFailures: 3})
	k := th.key("cn=alice", "192.0.2.1")
	ctx := context.Background()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	var in []*attempt
	for range 3 {
		a, _, err := th.begin(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, a)
	}
	// A fourth would wait; with its context ended it gives up at once.
	if _, _, err := th.begin(gone, k); !errors.Is(err, context.Canceled) {
		t.Fatalf("a fourth parallel bind was admitted (err %v)", err)
	}
	in[0].end(outcomeFailure)
	// One failure leaves two binds at the core: still none admitted.
	if _, _, err := th.begin(gone, k); !errors.Is(err, context.Canceled) {
		t.Fatalf("a bind beyond the failures left was admitted (err %v)", err)
	}
	// A waiting bind is admitted when one in flight succeeds.
	admitted := make(chan error, 1)
	go func() {
		a, _, err := th.begin(ctx, k)
		if err == nil {
			a.end(outcomeSuccess)
		}
		admitted <- err
	}()
	in[1].end(outcomeSuccess)
	if err := <-admitted; err != nil {
		t.Fatalf("a waiting bind after a success: %v", err)
	}
	in[2].end(outcomeOther)
	if n := th.pairs(); n != 0 {
		t.Errorf("%d pairs remembered after success, want 0", n)
	}
}

// TestBindThrottleMemoryBound floods the throttle with failures of
// distinct long DNs from distinct addresses: it remembers at most
// MaxPairs pairs, holds none of their names, and still locks the pair
// under attack, which stays among the pairs used most recently
// (touched once every 200 new pairs, a fifth of MaxPairs).
func TestBindThrottleMemoryBound(t *testing.T) {
	const maxPairs = 1000
	th, _ := testThrottle(t, BindThrottle{MaxPairs: maxPairs, MaxFailures: 3, Delay: -1})
	victim := th.key("cn=victim,ou=users,dc=x", "192.0.2.1")
	fail := func(k pairKey) {
		if a, _, err := th.begin(context.Background(), k); err == nil {
			a.end(outcomeFailure)
		}
	}
	long := strings.Repeat("x", 1024)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const flood = 100_000
	for i := range flood {
		fail(th.key(fmt.Sprintf("cn=%s%d,ou=users,dc=x", long, i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)))
		if i%200 == 0 {
			fail(victim)
		}
		if n := th.pairs(); n > maxPairs {
			t.Fatalf("after %d distinct pairs %d are remembered, more than MaxPairs %d", i+1, n, maxPairs)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// A flood of 100 MiB of names must leave at most 512 bytes a
	// remembered pair (a name is 1 KiB here).
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("the heap grew by %d bytes for %d remembered pairs", grown, th.pairs())
	if grown > maxPairs*512 {
		t.Errorf("the heap grew by %d bytes for %d remembered pairs, more than 512 a pair", grown, maxPairs)
	}
	if _, locked := th.locked(victim); !locked {
		t.Error("the pair under attack was forgotten in the flood")
	}
}

func TestBindThrottleConfig(t *testing.T) {
	for _, bad := range []BindThrottle{{Window: -1}, {Lockout: -1}, {MaxDelay: -1}, {MaxPairs: -1}} {
		if _, err := New(testDeps(t), Config{BindThrottle: bad}); err == nil {
			t.Errorf("New accepted %+v", bad)
		}
	}
	p, err := New(testDeps(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := BindThrottle{MaxFailures: 5, Window: 5 * time.Minute, Lockout: 5 * time.Minute,
		Delay: 500 * time.Millisecond, MaxDelay: 4 * time.Second, MaxPairs: 65536}
	if p.cfg.BindThrottle != want {
		t.Errorf("defaults = %+v, want %+v", p.cfg.BindThrottle, want)
	}
}

// TestBindThrottleProvider drives the provider's binds against the fake
// core: a guessed password is delayed, then refused without asking the
// core, with the same answer as a wrong password; other addresses and
// other users are untouched; the metric counts the refusals.
func TestBindThrottleProvider(t *testing.T) {
	for _, mode := range []string{"direct", "cached"} {
		t.Run(mode, func(t *testing.T) {
			clk := &fakeClock{t: time.Now()}
			var mu sync.Mutex
			var waits []time.Duration
			tp := startProviderWith(t, "direct", mode, func(c *Config) {
				c.Now = clk.now
				c.BindThrottle = BindThrottle{MaxFailures: 3, Lockout: time.Minute, Delay: time.Second, MaxDelay: 2 * time.Second}
			})
			tp.p.wait = func(_ context.Context, d time.Duration) {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
			}
			flows := func() int { return tp.core.requestCount("POST /api/v3/flows/executor/") }
			bind := func(pw, ip string) bindResult {
				return tp.p.bind(context.Background(), userDN("admin"), pw, ip, nil)
			}
			wrong := bind("wrong", "192.0.2.1")
			if mode == "cached" {
				// The right password, so the cache holds it.
				if r := bind("admin-pw", "192.0.2.9"); r.code != 0 {
					t.Fatalf("right password = %d", r.code)
				}
				mu.Lock()
				waits = waits[:1]
				mu.Unlock()
			}
			for range 2 {
				if r := bind("wrong", "192.0.2.1"); r.code != goldap.LDAPResultInvalidCredentials {
					t.Fatalf("wrong password = %d", r.code)
				}
			}
			before := flows()
			for _, pw := range []string{"wrong", "admin-pw"} {
				r := bind(pw, "192.0.2.1")
				if r.code != wrong.code || r.msg != wrong.msg {
					t.Errorf("locked bind with %q = %d %q, want the wrong password's %d %q", pw, r.code, r.msg, wrong.code, wrong.msg)
				}
				if r.reason != "throttled" {
					t.Errorf("locked bind's reason = %q", r.reason)
				}
			}
			if n := flows() - before; n != 0 {
				t.Errorf("locked binds made %d flow requests, want 0", n)
			}
			mu.Lock()
			got := fmt.Sprint(waits)
			mu.Unlock()
			if want := "[0s 1s 2s 2s 2s]"; got != want {
				t.Errorf("answers waited %s, want %s", got, want)
			}
			if r := bind("admin-pw", "192.0.2.2"); r.code != 0 {
				t.Errorf("another address, right password = %d %s", r.code, r.msg)
			}
			if r := tp.p.bind(context.Background(), userDN("viewer"), "viewer-pw", "192.0.2.1", nil); r.code != 0 {
				t.Errorf("another user from the locked address = %d %s", r.code, r.msg)
			}
			clk.advance(time.Minute)
			if r := bind("admin-pw", "192.0.2.1"); r.code != 0 {
				t.Errorf("after the lockout, right password = %d %s", r.code, r.msg)
			}
			if n := tp.p.throttle.pairs(); n != 0 {
				t.Errorf("%d pairs remembered after every pair succeeded", n)
			}

			// Over the wire, the metric counts a throttled bind.
			tp.p.wait = func(context.Context, time.Duration) {}
			c := tp.dial(t)
			for range 4 {
				c.Bind(userDN("viewer"), "wrong")
			}
			rejected := tp.p.deps.metrics.RequestsRejected
			if n := testutil.ToFloat64(rejected.WithLabelValues("test-outpost", "bind", "throttled", "ldap-app")); n != 1 {
				t.Errorf("throttled binds counted %v, want 1", n)
			}
			if n := testutil.ToFloat64(rejected.WithLabelValues("test-outpost", "bind", "invalid_credentials", "ldap-app")); n != 3 {
				t.Errorf("wrong passwords counted %v, want 3", n)
			}
		})
	}
}

// BenchmarkBindThrottleCachedBind is what the throttle adds to a cached
// bind: the pair's key, the lockout check and the reset after success.
func BenchmarkBindThrottleCachedBind(b *testing.B) {
	cfg, _ := BindThrottle{}.withDefaults()
	th := newThrottle(cfg, time.Now)
	dn := "cn=alice,ou=users,dc=ldap,dc=goauthentik,dc=io"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := th.key(dn, "192.0.2.1")
			if _, locked := th.locked(k); locked {
				b.Fatal("locked")
			}
			th.succeeded(k)
		}
	})
}
