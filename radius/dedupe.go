package radius

import (
	"crypto/sha256"
	"net/netip"
	"sync"
	"time"
)

// maxCachedReplies bounds the reply cache. Only requests that carried a
// valid Message-Authenticator get an entry, so only a client holding a
// secret can fill it; past the bound the oldest entries go first.
const maxCachedReplies = 1 << 16

// dupKey names a request as RFC 5080 2.2.2 does: its source and
// identifier.
type dupKey struct {
	src netip.AddrPort
	id  byte
}

// dupEntry is a request seen recently and, once answered, its reply.
type dupEntry struct {
	digest [sha256.Size]byte // of the whole request
	reply  []byte            // nil while the request is being answered
	seen   time.Time
}

// replyCache remembers recent requests so that a retransmission is
// answered with the same reply instead of running the flow again.
type replyCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[dupKey]*dupEntry
	order   []dupKey // insertion order, for expiry; may hold stale keys
	head    int      // order[:head] are expired
}

func newReplyCache(ttl time.Duration, max int, now func() time.Time) *replyCache {
	return &replyCache{ttl: ttl, max: max, now: now, entries: map[dupKey]*dupEntry{}}
}

// seen is what the cache knows of a request.
type seen int

const (
	seenNew      seen = iota // not seen: answer it (it is now recorded)
	seenRunning              // a retransmission of a request being answered: drop it
	seenAnswered             // a retransmission of an answered request: resend the reply
)

// check records the request raw from key, or reports it as a duplicate.
// A request with the same source and identifier but other content is a
// new request (the client reused the identifier) and replaces the old
// entry.
func (c *replyCache) check(key dupKey, raw []byte) (seen, []byte) {
	digest := sha256.Sum256(raw)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if e, ok := c.entries[key]; ok && e.digest == digest && now.Sub(e.seen) < c.ttl {
		if e.reply == nil {
			return seenRunning, nil
		}
		return seenAnswered, e.reply
	}
	c.entries[key] = &dupEntry{digest: digest, seen: now}
	c.order = append(c.order, key)
	return seenNew, nil
}

// answer stores the reply to the request raw from key, if that request is
// still the one recorded.
func (c *replyCache) answer(key dupKey, raw, reply []byte) {
	digest := sha256.Sum256(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && e.digest == digest {
		e.reply = reply
	}
}

// forget removes the entry of a request that will not be answered, so a
// retransmission is handled afresh.
func (c *replyCache) forget(key dupKey, raw []byte) {
	digest := sha256.Sum256(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && e.digest == digest {
		delete(c.entries, key)
	}
}

// expire drops entries older than the window, and the oldest ones past
// the bound. Callers hold c.mu.
func (c *replyCache) expire(now time.Time) {
	for c.head < len(c.order) {
		k := c.order[c.head]
		e, ok := c.entries[k]
		if ok && now.Sub(e.seen) < c.ttl && len(c.entries) < c.max {
			// The oldest entry is live. (A stale key for a replaced
			// entry can stand here until that entry expires; harmless.)
			break
		}
		if ok {
			delete(c.entries, k)
		}
		c.head++
	}
	if c.head > 1024 && c.head*2 > len(c.order) {
		c.order = append(c.order[:0:0], c.order[c.head:]...)
		c.head = 0
	}
}

// len is the number of entries, for tests.
func (c *replyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
