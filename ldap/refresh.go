package ldap

import (
	"context"
	"log/slog"
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

// refreshGroupPageSize is the page size of a full directory's groups,
// authentik's outposts' own (each group embeds its members).
const refreshGroupPageSize = "100"

// releaseAfterEntries is how many entries built from nothing make a
// refresh return freed memory to the operating system (about 25,000
// users).
const releaseAfterEntries = 50_000

// releaseAfterListed is how many entries a directory must have for every
// refresh of it to return freed memory (about 250,000 users): listing it
// again allocates its per-entry arrays and page buffers anew even when
// nothing changed, and at a million users that garbage kept the resident
// size 200 MiB above the live size after each refresh.
const releaseAfterListed = 500_000

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
		if p.known == nil {
			p.known = newKnownUsers()
		}
		p.known = refreshCached(ctx, p.deps.dir, p.known, cached, p.cfg.Version, p.logger())
	}
	for _, rt := range direct {
		p.forgetChangedUsers(ctx, rt)
	}
}

// refreshCached lists the directory once for the cached providers and
// installs each one's next snapshot, returning what the next refresh
// starts from. A snapshot is swapped in whole: a search sees the directory
// before a refresh or after it, never part of each.
func refreshCached(ctx context.Context, dir directory, known *knownUsers, cached []*provider, version string,
	log *slog.Logger) *knownUsers {
	start := time.Now()
	l, err := dir.listAll(ctx, known)
	if err != nil {
		log.Warn("refreshing the LDAP directory failed; serving the last good one", "error", err)
		return known
	}
	unchanged := l.digest == known.digest && known.gen > 0
	if unchanged {
		// The same JSON builds the same directory: keep the snapshots, and
		// build only those of providers that have none yet, from the
		// listing the others were built from.
		l = known.last
	}
	fresh, reused := 0, 0
	for _, rt := range cached {
		prev := rt.snap.Load()
		if unchanged && prev != nil {
			continue
		}
		snap, full := nextSnapshot(rt.cfg, prev, &l, version)
		if full {
			fresh += len(snap.entries)
		} else {
			reused += len(snap.entries) - len(snap.dpos)
		}
		rt.snap.Store(snap)
		rt.binds.forgetWhere(func(id *identity, _ time.Time) bool {
			u := snap.user(id.userPK)
			return u == nil || u.version() != id.userVersion
		})
	}
	if !unchanged {
		known = known.next(l)
	}
	log.Debug("refreshed the LDAP directory", "users", len(l.users), "groups", len(l.groups),
		"unchanged", unchanged, "built", fresh, "reused", reused, "took", time.Since(start))
	if fresh >= releaseAfterEntries || fresh+reused >= releaseAfterListed {
		// A directory built from nothing leaves the heap goal at about
		// twice its size (and the replaced one, if any, is garbage all at
		// once). Left to the runtime, that memory stays resident;
		// returning it now keeps a large outpost's resident size near its
		// live size, for one extra collection. Refreshes that reuse the
		// serving directory's entries allocate too little to need it,
		// unless the directory is very large.
		debug.FreeOSMemory()
	}
	return known
}

// forgetChangedUsers is the direct-search-mode way to notice a changed
// user: ask the core which users changed since the oldest cached bind.
func (p *Provider) forgetChangedUsers(ctx context.Context, rt *provider) {
	oldest, ok := rt.binds.oldest()
	if !ok {
		return
	}
	since := oldest.Add(-refreshSkew).UTC().Format(time.RFC3339)
	users, err := p.deps.dir.listUsers(ctx, url.Values{"last_updated__gt": {since}})
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
