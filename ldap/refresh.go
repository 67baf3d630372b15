package ldap

import (
	"context"
	"net/url"
	"runtime/debug"
	"time"
)

// refreshSkew allows for the core's clock running behind ours when asking
// which users changed since a bind was cached.
const refreshSkew = time.Minute

// refreshUserPageSize is the page size of a full directory's users. The
// client's default of 100 makes a 100,000-user directory a thousand
// round trips, most of the load time; 500 users (each with its groups
// embedded) stay far below the client's limit on a response.
const refreshUserPageSize = "500"

// releaseAfterEntries is how many replaced entries make a refresh return
// freed memory to the operating system (about 25,000 users).
const releaseAfterEntries = 50_000

// refresh fetches the whole directory for the providers in cached search
// mode and swaps their snapshots atomically; a failed fetch keeps the last
// good snapshots. It then forgets cached binds of users that changed.
func (p *Provider) refresh(ctx context.Context, st *state) {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	var cached, direct []*provider
	for _, rt := range st.providers {
		if rt.cfg.CachedSearch {
			cached = append(cached, rt)
		} else if rt.cfg.CachedBind {
			direct = append(direct, rt)
		}
	}
	if len(cached) > 0 {
		start := time.Now()
		if p.known == nil {
			p.known = newKnownUsers()
		}
		l, err := p.lent().dir.listAll(ctx, p.known)
		if err != nil {
			p.logger().Warn("refreshing the LDAP directory failed; serving the last good one", "error", err)
		} else {
			unchanged := l.digest == p.known.digest
			replaced, built := 0, 0
			for _, rt := range cached {
				if unchanged && rt.snap.Load() != nil {
					// The same JSON builds the same directory.
					continue
				}
				snap := buildSnapshot(rt.cfg, l.users, l.groups, p.cfg.Version, true)
				built++
				if old := rt.snap.Swap(snap); old != nil {
					replaced += len(old.entries)
				}
				rt.binds.forgetWhere(func(id *identity, _ time.Time) bool {
					u := snap.users[id.userPK]
					return u == nil || u.version() != id.userVersion
				})
			}
			if !unchanged {
				p.known = p.known.next(l)
			}
			p.logger().Debug("refreshed the LDAP directory", "users", len(l.users), "groups", len(l.groups),
				"unchanged", unchanged, "built", built, "took", time.Since(start))
			if replaced >= releaseAfterEntries {
				// The replaced directories are garbage all at once. Left to
				// the runtime, that memory stays resident: the heap goal
				// was set while old and new were both alive, about twice
				// the directory. Returning it now keeps a large outpost's
				// resident size near its live size between refreshes, for
				// one extra collection every refresh interval.
				debug.FreeOSMemory()
			}
		}
	}
	for _, rt := range direct {
		p.forgetChangedUsers(ctx, rt)
	}
}

// forgetChangedUsers is the direct-search-mode way to notice a changed
// user: ask the core which users changed since the oldest cached bind.
func (p *Provider) forgetChangedUsers(ctx context.Context, rt *provider) {
	oldest, ok := rt.binds.oldest()
	if !ok {
		return
	}
	since := oldest.Add(-refreshSkew).UTC().Format(time.RFC3339)
	users, err := p.lent().dir.listUsers(ctx, url.Values{"last_updated__gt": {since}})
	if err != nil {
		p.logger().Warn("checking cached binds for changed users failed", "error", err)
		return
	}
	changed := make(map[int]string, len(users))
	for _, u := range users {
		changed[u.PK] = u.version()
	}
	rt.binds.forgetWhere(func(id *identity, _ time.Time) bool {
		v, ok := changed[id.userPK]
		return ok && (id.userVersion == "" || v != id.userVersion)
	})
}
