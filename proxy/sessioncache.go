package proxy

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/akoutpost/akoutpost/proxy/session"
)

// sessionCache remembers what session cookies decoded to, so that a
// request with a known cookie skips the cookie's HMAC check and decoding
// the stored claims, which were most of the outpost's own CPU time per
// request in bench/proxy.sh and bench/nginx.sh. The store is still asked
// on every request (its Check, without the payload): a session ended by
// sign-out, by authentik or on another replica ends here as soon as the
// store says so, which is at once for the memory, Redis and PostgreSQL
// stores and within session.FileRecheck for a file store whose directory
// another process changed.
//
// A session's ID and data never change (a login always makes a new
// session with a fresh random ID), so the cookie value, verified once,
// stands for the same claims until the session is gone. The cookie's own
// age limit is validity plus a minute, later than the session's expiry,
// which the store check enforces.
//
// The zero value is ready to use. It lives in one application, so a new
// configuration starts empty.
type sessionCache struct {
	mu sync.RWMutex
	m  map[string]cachedSession // by cookie value
}

type cachedSession struct {
	id    string    // the session's ID in the store
	ident *identity // shared by concurrent requests: read only
}

// sessionCacheMax bounds the cache; when full it starts over, which costs
// one decode per active session.
const sessionCacheMax = 4096

func (sc *sessionCache) get(cookie string) (cachedSession, bool) {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	e, ok := sc.m[cookie]
	return e, ok
}

func (sc *sessionCache) put(cookie string, e cachedSession) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.m == nil || len(sc.m) >= sessionCacheMax {
		sc.m = make(map[string]cachedSession)
	}
	sc.m[cookie] = e
}

func (sc *sessionCache) drop(cookie string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	delete(sc.m, cookie)
}

// session is loadSession through the cache, returning the session's
// identity (claims and headers, built once per session); the other results
// mean the same. What it returns must not be modified.
func (a *application) session(r *http.Request) (id *identity, stale, storeDown bool) {
	value, ok := cookieValue(r, a.cookieName)
	if !ok {
		return nil, false, false
	}
	if e, ok := a.sessions.get(value); ok {
		s, err := checkSession(r.Context(), a.p.store, e.id)
		switch {
		case err == nil && s.Provider == a.clientID && a.p.now().Before(s.Expires):
			return e.ident, false, false
		case err == nil || errors.Is(err, session.ErrNotFound):
			a.sessions.drop(value)
			return nil, true, false
		}
		// The store failed: loadSession below asks again and reports it.
	}
	c, sid, stale, storeDown := a.decodeSession(r.Context(), value)
	if c == nil {
		return nil, stale, storeDown
	}
	e := cachedSession{id: sid, ident: a.newIdentity(c)}
	a.sessions.put(value, e)
	return e.ident, false, false
}

// checkSession reads a session to check it, without its payload when the
// store can leave it out.
func checkSession(ctx context.Context, st session.Store, id string) (session.Session, error) {
	if c, ok := st.(session.Checker); ok {
		return c.Check(ctx, id)
	}
	return st.Load(ctx, id)
}
