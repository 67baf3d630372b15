package ldap

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"io"
	"sync"
	"time"
)

// maxCachedBinds bounds the cache; when full, expired entries are dropped
// and then the soonest to expire.
const maxCachedBinds = 100_000

// bindCache remembers successful binds for cached bind mode. Unlike
// authentik's, it never remembers a failure, never holds the password (only
// an HMAC of it under a per-process key and a per-entry salt), bounds every
// entry by the session's expiry and a TTL, and forgets entries on session
// end and when the user changes.
type bindCache struct {
	mu      sync.Mutex
	key     [32]byte
	entries map[string]*cachedBind // by bind DN key
	ttl     time.Duration
	now     func() time.Time
	macs    sync.Pool // of hash.Hash: HMAC-SHA256 under key
}

type cachedBind struct {
	salt    [16]byte
	digest  [32]byte
	expires time.Time
	stored  time.Time
	id      identity
}

func newBindCache(ttl time.Duration, now func() time.Time) *bindCache {
	c := &bindCache{entries: map[string]*cachedBind{}, ttl: ttl, now: now}
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	rand.Read(c.key[:])
	return c
}

func (c *bindCache) digest(salt [16]byte, password string) [32]byte {
	// Keyed HMAC states are reused: setting up the key's inner and outer
	// pads was half the cost of a cached bind. Reset returns a state to
	// just after the key.
	m, _ := c.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, c.key[:])
	}
	m.Write(salt[:])
	io.WriteString(m, password)
	var out [32]byte
	m.Sum(out[:0])
	m.Reset()
	c.macs.Put(m)
	return out
}

// lookup returns the identity of a remembered bind of dnKey with password.
func (c *bindCache) lookup(dnKey, password string) (identity, bool) {
	c.mu.Lock()
	e := c.entries[dnKey]
	c.mu.Unlock()
	if e == nil {
		return identity{}, false
	}
	if !c.now().Before(e.expires) {
		c.forget(dnKey, e)
		return identity{}, false
	}
	d := c.digest(e.salt, password)
	if !hmac.Equal(d[:], e.digest[:]) {
		return identity{}, false
	}
	return e.id, true
}

// store remembers a successful bind until sessionExpires (zero: no
// session expiry) or the TTL, whichever comes first.
func (c *bindCache) store(dnKey, password string, id identity, sessionExpires time.Time) {
	now := c.now()
	exp := now.Add(c.ttl)
	if !sessionExpires.IsZero() && sessionExpires.Before(exp) {
		exp = sessionExpires
	}
	if !now.Before(exp) {
		return
	}
	e := &cachedBind{expires: exp, stored: now, id: id}
	rand.Read(e.salt[:])
	e.digest = c.digest(e.salt, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedBinds {
		c.evictLocked(now)
	}
	c.entries[dnKey] = e
}

func (c *bindCache) forget(dnKey string, e *cachedBind) {
	c.mu.Lock()
	if c.entries[dnKey] == e {
		delete(c.entries, dnKey)
	}
	c.mu.Unlock()
}

func (c *bindCache) evictLocked(now time.Time) {
	var soonestKey string
	var soonest time.Time
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
			continue
		}
		if soonestKey == "" || e.expires.Before(soonest) {
			soonestKey, soonest = k, e.expires
		}
	}
	if len(c.entries) >= maxCachedBinds {
		delete(c.entries, soonestKey)
	}
}

// forgetWhere drops the entries whose identity matches drop; it returns
// how many were dropped.
func (c *bindCache) forgetWhere(drop func(id *identity, stored time.Time) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, e := range c.entries {
		if drop(&e.id, e.stored) {
			delete(c.entries, k)
			n++
		}
	}
	return n
}

// oldest returns when the oldest entry was stored, and false when empty.
func (c *bindCache) oldest() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t time.Time
	for _, e := range c.entries {
		if t.IsZero() || e.stored.Before(t) {
			t = e.stored
		}
	}
	return t, !t.IsZero()
}

func (c *bindCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
