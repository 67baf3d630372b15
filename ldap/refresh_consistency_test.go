package ldap

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
)

// The refresh reuses the serving directory's entries and indexes. These
// tests check, under random changes to a directory served page by page,
// that every refreshed snapshot answers every search exactly as a
// snapshot built from scratch from the same users and groups, and that a
// search running while refreshes swap snapshots sees the directory before
// a refresh or after it, never a mix.

// rdir is a directory as a core holds it, for the tests to change.
type rdir struct {
	users  []*ruser // by username, the order the core serves
	groups []*rgroup
	nextPK int
}

type ruser struct {
	pk                    int
	username, name, email string
	active, superuser     bool
	attrs                 map[string]any
	groups                []int // group pks
	updated, pwd          int   // seconds after t0
	uidSuffix             string
}

type rgroup struct {
	pk     int
	name   string
	parent int // pk, or 0
	attrs  map[string]any
}

func (d *rdir) clone() *rdir {
	n := &rdir{nextPK: d.nextPK}
	for _, u := range d.users {
		c := *u
		c.groups = slices.Clone(u.groups)
		n.users = append(n.users, &c)
	}
	for _, g := range d.groups {
		c := *g
		n.groups = append(n.groups, &c)
	}
	return n
}

func (d *rdir) group(pk int) *rgroup {
	for _, g := range d.groups {
		if g.pk == pk {
			return g
		}
	}
	return nil
}

func randomAttrs(r *rand.Rand) map[string]any {
	switch r.IntN(5) {
	case 0:
		return map[string]any{"department": fmt.Sprintf("dept%d", r.IntN(4))}
	case 1:
		return map[string]any{"phone": []any{strconv.Itoa(r.IntN(1000)), "x"}, "uidNumber": strconv.Itoa(5000 + r.IntN(50))}
	}
	return nil
}

func (d *rdir) addUser(r *rand.Rand) {
	d.nextPK++
	u := &ruser{pk: d.nextPK, username: fmt.Sprintf("u%04d", r.IntN(10000)), active: r.IntN(8) > 0,
		name: fmt.Sprintf("User %d", r.IntN(100)), attrs: randomAttrs(r), uidSuffix: strconv.Itoa(d.nextPK)}
	for _, x := range d.users {
		if x.username == u.username {
			return
		}
	}
	if r.IntN(2) == 0 {
		u.email = u.username + "@example.com"
	}
	if len(d.groups) > 0 {
		for range r.IntN(3) {
			pk := d.groups[r.IntN(len(d.groups))].pk
			if !slices.Contains(u.groups, pk) {
				u.groups = append(u.groups, pk)
			}
		}
	}
	u.superuser = r.IntN(20) == 0
	i, _ := slices.BinarySearchFunc(d.users, u.username, func(x *ruser, n string) int { return strings.Compare(x.username, n) })
	d.users = slices.Insert(d.users, i, u)
}

func (d *rdir) addGroup(r *rand.Rand) {
	d.nextPK++
	g := &rgroup{pk: d.nextPK, name: fmt.Sprintf("g%03d", r.IntN(1000)), attrs: randomAttrs(r)}
	for _, x := range d.groups {
		if x.name == g.name {
			return
		}
	}
	if len(d.groups) > 0 && r.IntN(3) == 0 {
		g.parent = d.groups[r.IntN(len(d.groups))].pk
	}
	i, _ := slices.BinarySearchFunc(d.groups, g.name, func(x *rgroup, n string) int { return strings.Compare(x.name, n) })
	d.groups = slices.Insert(d.groups, i, g)
}

// mutate changes n random things, as users and admins would.
func (d *rdir) mutate(r *rand.Rand, n int) {
	for range n {
		if len(d.users) == 0 {
			d.addUser(r)
			continue
		}
		u := d.users[r.IntN(len(d.users))]
		switch r.IntN(12) {
		case 0, 1:
			d.addUser(r)
		case 2:
			d.users = slices.DeleteFunc(d.users, func(x *ruser) bool { return x == u })
		case 3:
			u.name = fmt.Sprintf("Renamed %d", r.IntN(100))
		case 4:
			u.email = fmt.Sprintf("m%d@example.org", r.IntN(100))
		case 5:
			u.active = !u.active
		case 6:
			u.attrs = randomAttrs(r)
		case 7:
			if len(d.groups) > 0 {
				u.groups = []int{d.groups[r.IntN(len(d.groups))].pk}
			}
		case 8:
			u.updated++ // a login: only the JSON changes
		case 9:
			d.addGroup(r)
		case 10:
			if len(d.groups) > 0 {
				g := d.groups[r.IntN(len(d.groups))]
				d.groups = slices.DeleteFunc(d.groups, func(x *rgroup) bool { return x == g })
				for _, x := range d.users {
					x.groups = slices.DeleteFunc(x.groups, func(pk int) bool { return pk == g.pk })
				}
				for _, x := range d.groups {
					if x.parent == g.pk {
						x.parent = 0
					}
				}
			}
		case 11:
			if len(d.groups) > 0 {
				g := d.groups[r.IntN(len(d.groups))]
				g.attrs = randomAttrs(r)
				u.pwd++
			}
		}
	}
}

func rtime(s int) string {
	return t0.Add(time.Duration(s) * time.Second).UTC().Format(time.RFC3339Nano)
}

func partialGroup(g *rgroup) map[string]any {
	return map[string]any{"pk": fmt.Sprintf("uuid-%d", g.pk), "num_pk": g.pk, "name": g.name,
		"is_superuser": false, "attributes": g.attrs}
}

// render is the directory's JSON as the core's list endpoints send it.
func (d *rdir) render() (users, groups []json.RawMessage) {
	mustJSON := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	for _, u := range d.users {
		var gobj []any
		for _, pk := range u.groups {
			if g := d.group(pk); g != nil {
				gobj = append(gobj, partialGroup(g))
			}
		}
		users = append(users, mustJSON(map[string]any{
			"pk": u.pk, "username": u.username, "name": u.name, "is_active": u.active, "is_superuser": u.superuser,
			"email": u.email, "uid": "uid-" + u.uidSuffix, "attributes": u.attrs, "groups_obj": gobj,
			"date_joined": rtime(0), "last_updated": rtime(u.updated), "password_change_date": rtime(u.pwd),
		}))
	}
	for _, g := range d.groups {
		members := []any{}
		for _, u := range d.users {
			if slices.Contains(u.groups, g.pk) {
				members = append(members, map[string]any{"pk": u.pk, "username": u.username})
			}
		}
		parents, children := []any{}, []any{}
		if p := d.group(g.parent); p != nil {
			parents = append(parents, partialGroup(p))
		}
		for _, c := range d.groups {
			if c.parent == g.pk {
				children = append(children, partialGroup(c))
			}
		}
		groups = append(groups, mustJSON(map[string]any{
			"pk": fmt.Sprintf("uuid-%d", g.pk), "num_pk": g.pk, "name": g.name, "is_superuser": false,
			"attributes": g.attrs, "users_obj": members, "parents_obj": parents, "children_obj": children,
		}))
	}
	return users, groups
}

// pagedCore serves /core/users/ and /core/groups/ page by page, from
// whatever directory it holds when each page is asked for.
type pagedCore struct {
	mu            sync.Mutex
	users, groups []json.RawMessage
}

func (c *pagedCore) set(d *rdir) {
	u, g := d.render()
	c.mu.Lock()
	c.users, c.groups = u, g
	c.mu.Unlock()
}

func (c *pagedCore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	items := c.users
	if strings.HasSuffix(r.URL.Path, "/core/groups/") {
		items = c.groups
	}
	c.mu.Unlock()
	size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	// Small pages, so that every listing takes several.
	size = min(max(size, 1), 7)
	page = max(page, 1)
	lo := min((page-1)*size, len(items))
	hi := min(lo+size, len(items))
	next := 0
	if hi < len(items) {
		next = page + 1
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"pagination": map[string]any{"next": next, "count": len(items), "current": page},
		"results":    append([]json.RawMessage{}, items[lo:hi]...), "autocomplete": map[string]any{},
	})
}

// scratch builds the directory's snapshot from nothing: its JSON decoded
// and built as a first load would.
func scratch(t testing.TB, p *providerConfig, d *rdir) *snapshot {
	t.Helper()
	ujs, gjs := d.render()
	var users []user
	refs := groupRefs{}
	for _, raw := range ujs {
		u, err := decodeUser(raw, refs)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	var groups []group
	for _, raw := range gjs {
		g, err := decodeGroup(raw)
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
	}
	return buildSnapshot(p, users, groups, "test", true)
}

// consistencyQueries are searches whose answers the tests compare; keys
// adds a base-scope search of every entry the two directories hold.
func consistencyQueries(t testing.TB, p *providerConfig, r *rand.Rand, dirs ...*rdir) []*query {
	t.Helper()
	b := p.baseKey
	texts := []string{"(objectClass=*)", "(objectClass=user)", "(objectClass=group)", "(ak-active=TRUE)",
		"(mail=*)", "(department=dept1)", "(uidNumber>=5010)", "(cn=u1*)", "(memberOf=*)", "(member=*)",
		"(|(ak-superuser=TRUE)(department=dept2))", "(&(objectClass=posixAccount)(!(ak-active=TRUE)))"}
	var qs []*query
	add := func(base string, scope int, text string) {
		f, err := parseFilter(text)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, &query{baseKey: base, scope: scope, filter: f})
	}
	for _, text := range texts {
		add(b, scopeSubtree, text)
	}
	add(p.usersKey, scopeOne, "(objectClass=*)")
	add(p.groupsKey, scopeSubtree, "(cn=*)")
	// A sample of the users and groups of both directories, so that
	// changed, added and removed ones are asked for by name.
	for _, d := range dirs {
		for range 8 {
			if len(d.users) == 0 {
				break
			}
			u := d.users[r.IntN(len(d.users))]
			add(b, scopeSubtree, "(cn="+u.username+")")
			add(b, scopeSubtree, "(|(uid=uid-"+u.uidSuffix+")(mail="+u.email+"))")
			add(p.userKey(u.username), scopeBase, "(objectClass=*)")
			add(p.vgroupKey(u.username), scopeBase, "(objectClass=*)")
		}
		for range 4 {
			if len(d.groups) == 0 {
				break
			}
			g := d.groups[r.IntN(len(d.groups))]
			add(b, scopeSubtree, "(memberOf="+p.groupDN(g.name)+")")
			add(b, scopeSubtree, "(&(objectClass=group)(member=*)(cn="+g.name+"))")
			add(p.groupKey(g.name), scopeBase, "(objectClass=*)")
		}
	}
	return qs
}

// answer is a search's result: every entry's DN and attributes, in order.
func answer(s *snapshot, q *query) string {
	var sb strings.Builder
	if !s.exists(q.baseKey) {
		return "noSuchObject"
	}
	s.run(q, func(e *entry) bool {
		sb.WriteString(e.DN)
		for i := range e.len() {
			a := e.attr(i)
			sb.WriteString("|" + a.Name + "=")
			for _, v := range a.Values {
				sb.WriteString(v + "\x00")
			}
		}
		sb.WriteByte('\n')
		return true
	})
	return sb.String()
}

func answers(s *snapshot, qs []*query) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = answer(s, q)
	}
	return out
}

// checkSame fails unless got answers every query, resolves every key and
// finds every user as want does.
func checkSame(t *testing.T, step int, got, want *snapshot, d *rdir, qs []*query, wantAnswers []string) {
	t.Helper()
	if n := int(got.base.n) - len(got.stale) + len(got.dpos); n != len(got.entries) {
		t.Fatalf("step %d: %d base entries, %d stale, %d new, but %d entries", step, got.base.n, len(got.stale), len(got.dpos), len(got.entries))
	}
	// Every base entry still there has a position of its own, apart
	// from the new entries'.
	taken := make([]bool, len(got.entries))
	for _, c := range got.dpos {
		taken[c] = true
	}
	for p := range got.base.n {
		if c, ok := got.current(p); ok {
			if taken[c] {
				t.Fatalf("step %d: base entry %d moved to %d, which is taken", step, p, c)
			}
			taken[c] = true
		}
	}
	for i := range min(len(got.entries), len(want.entries)) {
		if got.entries[i].DN != want.entries[i].DN {
			t.Fatalf("step %d: entry %d is %q, want %q", step, i, got.entries[i].DN, want.entries[i].DN)
		}
	}
	for i, q := range qs {
		if l, ok := got.candidates(q.filter); ok {
			for j := 1; j < len(l); j++ {
				if l[j] <= l[j-1] {
					t.Fatalf("step %d: search %d: candidates %v not ascending", step, i, l)
				}
			}
		}
		if a := answer(got, q); a != wantAnswers[i] {
			al, wl := strings.Split(a, "\n"), strings.Split(wantAnswers[i], "\n")
			for j := range min(len(al), len(wl)) {
				if al[j] != wl[j] {
					t.Logf("line %d:\ngot  %.300s\nwant %.300s", j, al[j], wl[j])
					break
				}
			}
			t.Fatalf("step %d: search %d (base %q, scope %d) differs from a full build:\ngot  %.600s\nwant %.600s",
				step, i, q.baseKey, q.scope, a, wantAnswers[i])
		}
	}
	if len(got.entries) != len(want.entries) {
		t.Fatalf("step %d: %d entries, a full build has %d", step, len(got.entries), len(want.entries))
	}
	for i, e := range want.entries {
		if j, ok := got.find(e.Key); !ok || int(j) != i {
			t.Fatalf("step %d: find(%q) = %d, %v; want %d", step, e.Key, j, ok, i)
		}
	}
	for _, k := range []string{"cn=nobody," + got.prov.usersKey, "cn=u0000x," + got.prov.vgroupsKey} {
		if _, ok := got.find(k); ok {
			t.Fatalf("step %d: found %q", step, k)
		}
	}
	for pk := range d.nextPK + 2 {
		g, w := got.user(pk), want.user(pk)
		if (g == nil) != (w == nil) || g != nil && (g.Username != w.Username || g.version() != w.version()) {
			t.Fatalf("step %d: user(%d) = %+v, want %+v", step, pk, g, w)
		}
	}
}

// runConsistency refreshes a directory through steps of random changes,
// with searches running throughout.
func runConsistency(t *testing.T, seed uint64, steps, users int) {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	p := e2eProvider(t)
	d := &rdir{}
	for range 4 + users/20 {
		d.addGroup(r)
	}
	for range users {
		d.addUser(r)
	}
	core := &pagedCore{}
	core.set(d)
	srv := httptest.NewServer(core)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	api, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: "test", RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	dir := apiDirectory{api: api}
	rt := &provider{cfg: p, binds: newBindCache(time.Minute, time.Now)}
	log := slog.New(slog.DiscardHandler)
	known := refreshCached(context.Background(), dir, newKnownUsers(), []*provider{rt}, "test", log)
	prevDir, prevScratch := d, scratch(t, p, d)
	qs0 := consistencyQueries(t, p, r, d)
	checkSame(t, 0, rt.snap.Load(), prevScratch, d, qs0, answers(prevScratch, qs0))
	var overlays, rebases, fulls int
	for step := 1; step <= steps; step++ {
		next := prevDir.clone()
		// Mostly a few changes; now and then many, to rebuild.
		n := 1 + r.IntN(3)
		switch r.IntN(10) {
		case 0:
			n = 0
		case 1:
			n = users / 8
		case 2:
			n = users
		}
		next.mutate(r, n)
		nextScratch := scratch(t, p, next)
		qs := consistencyQueries(t, p, r, prevDir, next)
		before, after := answers(prevScratch, qs), answers(nextScratch, qs)

		// Searches run while the refresh swaps the snapshot: each one,
		// on the snapshot it loaded, must answer as the old or the new
		// directory does.
		var stop atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan string, 4)
		for w := range 3 {
			wg.Go(func() {
				// Searches until the refresh is done, at most 300.
				for n, i := 0, w; n < 300 && !stop.Load(); n, i = n+1, (i+3)%len(qs) {
					// Yield, so that the refresh runs beside the
					// searches on a small machine.
					runtime.Gosched()
					a := answer(rt.snap.Load(), qs[i])
					if a != before[i] && a != after[i] {
						select {
						case errs <- fmt.Sprintf("step %d: search %d answered neither as before nor as after the refresh:\n%.600s", step, i, a):
						default:
						}
						return
					}
				}
			})
		}
		old := rt.snap.Load()
		core.set(next)
		known = refreshCached(context.Background(), dir, known, []*provider{rt}, "test", log)
		stop.Store(true)
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatal(e)
		}
		cur := rt.snap.Load()
		switch {
		case cur == old:
		case cur.base == old.base:
			overlays++
		case !cur.overlay.empty():
			t.Fatalf("step %d: a new base with an overlay", step)
		case len(cur.entries) > 0 && len(old.entries) > 0 && cur.entries[entryPositions] == old.entries[entryPositions] && cur.base != old.base:
			rebases++
		default:
			fulls++
		}
		checkSame(t, step, cur, nextScratch, next, qs, after)
		// The old snapshot still answers as the old directory.
		for i, q := range qs {
			if a := answer(old, q); a != before[i] {
				t.Fatalf("step %d: the replaced snapshot changed: search %d", step, i)
			}
		}
		prevDir, prevScratch = next, nextScratch
	}
	t.Logf("seed %d: %d refreshes: %d with an overlay, %d rebased, %d built from nothing", seed, steps, overlays, rebases, fulls)
	if steps >= 40 && overlays == 0 {
		t.Errorf("no refresh reused the serving directory")
	}
}

func TestRefreshConsistency(t *testing.T) {
	for _, tt := range []struct {
		seed         uint64
		steps, users int
	}{
		{1, 60, 120},
		{2, 60, 40},
		{3, 30, 300},
		{4, 30, 3},
	} {
		t.Run(fmt.Sprintf("seed=%d", tt.seed), func(t *testing.T) {
			runConsistency(t, tt.seed, tt.steps, tt.users)
		})
	}
}

func FuzzRefreshConsistency(f *testing.F) {
	for _, s := range []uint64{5, 6, 7} {
		f.Add(s, uint8(60))
	}
	f.Fuzz(func(t *testing.T, seed uint64, users uint8) {
		runConsistency(t, seed, 8, int(users))
	})
}
