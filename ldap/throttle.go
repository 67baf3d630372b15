package ldap

import (
	"container/list"
	"context"
	"errors"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// BindThrottle limits failed binds per pair of bind DN and client address,
// in the manner of OpenLDAP's ppolicy overlay (the slapd attribute each
// field mirrors is named). A failure is a bind the core refused (a wrong
// password, an unknown or inactive user, a wrong MFA code): binds refused
// before asking the core (a malformed DN, an empty password) and binds the
// core could not answer are not counted. Zero values take the defaults;
// a negative value turns that part off.
//
// Each pair is counted on its own, so an address guessing a user's
// password locks out that user from that address only. IPv6 clients are
// counted by their /64, since a single host usually holds a whole /64.
// A successful bind resets its pair.
type BindThrottle struct {
	// MaxFailures is how many failures within Window lock the pair
	// (pwdMaxFailure). While locked, every bind of the pair is refused
	// with invalidCredentials, a right password too, without asking the
	// core. It also bounds how many binds of a pair may be in flight at
	// the core while it has failures: more wait for those to end.
	// Default 5; negative: never locked.
	MaxFailures int
	// Window is how long failures are remembered, from the first one
	// (pwdFailureCountInterval). Default 5 minutes.
	Window time.Duration
	// Lockout is how long a locked pair stays locked (pwdLockoutDuration);
	// its failures are forgotten when it ends. Default 5 minutes.
	Lockout time.Duration
	// Delay is how long the answer to the second failure of a pair waits
	// (pwdMinDelay); each failure after it waits twice as long as the one
	// before, up to MaxDelay. The first failure is answered at once (a
	// typo costs nothing). A bind refused because its pair is locked
	// waits as long as a failure would. Default 500 ms; negative: none.
	Delay time.Duration
	// MaxDelay caps Delay's doubling (pwdMaxDelay). Default 4 s.
	MaxDelay time.Duration
	// MaxPairs bounds how many pairs are remembered, so a flood of
	// distinct DNs and addresses takes bounded memory (about 200 bytes a
	// pair, whatever the DN's length): past it, the pairs used least recently are forgotten first.
	// Default 65,536.
	MaxPairs int
}

// Default throttle settings; see [BindThrottle].
const (
	defaultMaxFailures = 5
	defaultWindow      = 5 * time.Minute
	defaultLockout     = 5 * time.Minute
	defaultDelay       = 500 * time.Millisecond
	defaultMaxDelay    = 4 * time.Second
	defaultMaxPairs    = 65536
	throttleShards     = 16
)

// withDefaults fills zero fields and validates the rest.
func (b BindThrottle) withDefaults() (BindThrottle, error) {
	if b.Window < 0 || b.Lockout < 0 || b.MaxDelay < 0 || b.MaxPairs < 0 {
		return b, errors.New("ldap: BindThrottle's Window, Lockout, MaxDelay and MaxPairs must not be negative")
	}
	if b.MaxFailures == 0 {
		b.MaxFailures = defaultMaxFailures
	}
	if b.Window == 0 {
		b.Window = defaultWindow
	}
	if b.Lockout == 0 {
		b.Lockout = defaultLockout
	}
	if b.Delay == 0 {
		b.Delay = defaultDelay
	}
	if b.MaxDelay == 0 {
		b.MaxDelay = defaultMaxDelay
	}
	if b.MaxPairs == 0 {
		b.MaxPairs = defaultMaxPairs
	}
	return b, nil
}

// pairKey identifies a (bind DN, client address) pair by a keyed 128-bit
// hash, so a pair takes the same memory whatever the length of its DN,
// and a client cannot choose names that collide with another's pair.
type pairKey [2]uint64

// throttle holds the state of BindThrottle. Its zero value is not usable;
// see newThrottle.
type throttle struct {
	cfg    BindThrottle
	now    func() time.Time
	seeds  [2]maphash.Seed
	shards []throttleShard
}

type throttleShard struct {
	mu    sync.Mutex
	pairs map[pairKey]*list.Element // of *pairState
	lru   list.List                 // front: used most recently
	max   int
}

// pairState is what is remembered of one pair.
type pairState struct {
	key         pairKey
	failures    int       // within the window
	first       time.Time // of the window's first failure
	lockedUntil time.Time
	inFlight    int           // binds of the pair at the core
	changed     chan struct{} // closed when inFlight or failures change; nil when none wait
}

func newThrottle(cfg BindThrottle, now func() time.Time) *throttle {
	n := min(throttleShards, cfg.MaxPairs)
	t := &throttle{cfg: cfg, now: now, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		shards: make([]throttleShard, n)}
	for i := range t.shards {
		t.shards[i] = throttleShard{pairs: map[pairKey]*list.Element{}, max: cfg.MaxPairs / n}
	}
	return t
}

// key returns the pair of a bind DN key and a client address.
func (t *throttle) key(dnKey, remoteIP string) pairKey {
	// An address is hashed as its 16 bytes (tag 1), anything else that
	// names the client as it is (tag 0).
	var addr [17]byte
	if a, err := netip.ParseAddr(remoteIP); err == nil {
		a = a.Unmap()
		if a.Is6() {
			if p, err := a.Prefix(64); err == nil {
				a = p.Addr()
			}
		}
		addr[0] = 1
		b := a.As16()
		copy(addr[1:], b[:])
	}
	var k pairKey
	for i := range k {
		var h maphash.Hash
		h.SetSeed(t.seeds[i])
		h.Write(addr[:])
		if addr[0] == 0 {
			h.WriteString(remoteIP)
			h.WriteByte(0)
		}
		h.WriteString(dnKey)
		k[i] = h.Sum64()
	}
	return k
}

func (t *throttle) shard(k pairKey) *throttleShard {
	return &t.shards[k[0]%uint64(len(t.shards))]
}

// delayFor is how long the answer to failure number n (from 1) waits.
func (t *throttle) delayFor(n int) time.Duration {
	if t.cfg.Delay < 0 || n < 2 {
		return 0
	}
	d := t.cfg.Delay
	for i := 2; i < n && d < t.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.cfg.MaxDelay)
}

// expireLocked forgets a pair's failures once its window or lockout has
// passed. The shard's lock is held.
func (t *throttle) expireLocked(ps *pairState, now time.Time) {
	switch {
	case !ps.lockedUntil.IsZero():
		if !now.Before(ps.lockedUntil) {
			ps.lockedUntil, ps.failures, ps.first = time.Time{}, 0, time.Time{}
		}
	case ps.failures > 0 && !now.Before(ps.first.Add(t.cfg.Window)):
		ps.failures, ps.first = 0, time.Time{}
	}
}

// getLocked returns the state of k, creating it when create is set (and
// evicting the pair used least recently when the shard is full). The
// shard's lock is held.
func (s *throttleShard) getLocked(k pairKey, create bool) *pairState {
	if el := s.pairs[k]; el != nil {
		s.lru.MoveToFront(el)
		return el.Value.(*pairState)
	}
	if !create {
		return nil
	}
	for len(s.pairs) >= s.max {
		old := s.lru.Back()
		ps := old.Value.(*pairState)
		s.lru.Remove(old)
		delete(s.pairs, ps.key)
		// Binds of an evicted pair still in flight end on the detached
		// state; whoever waits on it is woken to look again.
		ps.wake()
	}
	ps := &pairState{key: k}
	s.pairs[k] = s.lru.PushFront(ps)
	return ps
}

func (ps *pairState) wake() {
	if ps.changed != nil {
		close(ps.changed)
		ps.changed = nil
	}
}

// locked reports whether binds of k are refused now, and how long such a
// refusal waits before it is answered.
func (t *throttle) locked(k pairKey) (time.Duration, bool) {
	if t.cfg.MaxFailures < 0 {
		return 0, false
	}
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.getLocked(k, false)
	if ps == nil {
		return 0, false
	}
	t.expireLocked(ps, t.now())
	if ps.lockedUntil.IsZero() {
		return 0, false
	}
	return t.delayFor(ps.failures + 1), true
}

// errThrottled refuses a bind whose pair is locked.
var errThrottled = errors.New("ldap: too many failed binds")

// attempt is one bind of a pair on its way to the core.
type attempt struct {
	t  *throttle
	k  pairKey
	ps *pairState
}

// begin admits a bind of k to the core. It returns errThrottled when the
// pair is locked, or ctx's error when ctx ends while the bind waits for
// others of its pair; the delay is how long a refusal waits.
func (t *throttle) begin(ctx context.Context, k pairKey) (*attempt, time.Duration, error) {
	s := t.shard(k)
	for {
		s.mu.Lock()
		ps := s.getLocked(k, true)
		t.expireLocked(ps, t.now())
		if t.cfg.MaxFailures >= 0 {
			if !ps.lockedUntil.IsZero() {
				d := t.delayFor(ps.failures + 1)
				s.mu.Unlock()
				return nil, d, errThrottled
			}
			// A pair with failures has only as many binds at the core
			// as it has failures left, so parallel connections guess no
			// faster than one; a pair without failures (a service
			// account binding from a busy pool) has MaxFailures.
			if ps.inFlight >= t.cfg.MaxFailures-ps.failures {
				if ps.changed == nil {
					ps.changed = make(chan struct{})
				}
				ch := ps.changed
				s.mu.Unlock()
				select {
				case <-ch:
					continue
				case <-ctx.Done():
					return nil, 0, ctx.Err()
				}
			}
		}
		ps.inFlight++
		s.mu.Unlock()
		return &attempt{t: t, k: k, ps: ps}, 0, nil
	}
}

// outcome is how a bind the core answered ended.
type outcome int

const (
	outcomeOther   outcome = iota // not a verdict on the password: not counted
	outcomeSuccess                // resets the pair
	outcomeFailure                // counted
)

// end records how the attempt ended and returns how long a failure's
// answer waits.
func (a *attempt) end(o outcome) time.Duration {
	s := a.t.shard(a.k)
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := a.ps
	ps.inFlight--
	defer ps.wake()
	var d time.Duration
	switch o {
	case outcomeSuccess:
		ps.failures, ps.first, ps.lockedUntil = 0, time.Time{}, time.Time{}
	case outcomeFailure:
		now := a.t.now()
		a.t.expireLocked(ps, now)
		if ps.failures == 0 {
			ps.first = now
		}
		ps.failures++
		if a.t.cfg.MaxFailures >= 0 && ps.failures >= a.t.cfg.MaxFailures && ps.lockedUntil.IsZero() {
			ps.lockedUntil = now.Add(a.t.cfg.Lockout)
		}
		d = a.t.delayFor(ps.failures)
	}
	s.forgetIdleLocked(a.k, ps)
	return d
}

// forgetIdleLocked drops a pair that has nothing to remember: no
// failures and no bind in flight. The shard's lock is held.
func (s *throttleShard) forgetIdleLocked(k pairKey, ps *pairState) {
	if ps.failures != 0 || !ps.lockedUntil.IsZero() || ps.inFlight != 0 {
		return
	}
	if el := s.pairs[k]; el != nil && el.Value == ps {
		s.lru.Remove(el)
		delete(s.pairs, k)
	}
}

// succeeded resets k after a bind that succeeded without the core (a
// cached bind).
func (t *throttle) succeeded(k pairKey) {
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	el := s.pairs[k]
	if el == nil {
		return
	}
	ps := el.Value.(*pairState)
	ps.failures, ps.first, ps.lockedUntil = 0, time.Time{}, time.Time{}
	ps.wake()
	s.forgetIdleLocked(k, ps)
}

// pairs returns how many pairs are remembered.
func (t *throttle) pairs() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.pairs)
		s.mu.Unlock()
	}
	return n
}

// wait waits d or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}
