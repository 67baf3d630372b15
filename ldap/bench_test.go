package ldap

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// bigDirectory makes n users in n/50 groups.
func bigDirectory(n int) ([]user, []group) {
	users := make([]user, n)
	ng := max(n/50, 1)
	groups := make([]group, ng)
	for i := range groups {
		groups[i] = group{PK: fmt.Sprintf("g-%d", i), NumPK: i, Name: fmt.Sprintf("group%d", i)}
	}
	for i := range users {
		g := &groups[i%ng]
		users[i] = user{PK: i + 1, Username: fmt.Sprintf("user%d", i), Name: fmt.Sprintf("User %d", i),
			Email: fmt.Sprintf("user%d@example.com", i), UID: fmt.Sprintf("uid%d", i), Active: true,
			Groups: []groupRef{{PK: g.PK, NumPK: g.NumPK, Name: g.Name}}, DateJoined: t0, LastUpdated: t1, PwdChanged: t1}
		g.Members = append(g.Members, memberRef{PK: i + 1, Username: users[i].Username})
	}
	return users, groups
}

func BenchmarkCachedEqualitySearch(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		users, groups := bigDirectory(n)
		s := buildSnapshot(e2eProvider(b), users, groups, "bench", true)
		f, err := parseFilter("(&(objectClass=user)(uid=uid" + fmt.Sprint(n/2) + "))")
		if err != nil {
			b.Fatal(err)
		}
		q := &query{baseKey: s.prov.baseKey, scope: scopeSubtree, filter: f}
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				found := 0
				s.run(q, func(*entry) bool { found++; return true })
				if found != 1 {
					b.Fatalf("found %d", found)
				}
			}
		})
	}
}

func BenchmarkBuildSnapshot(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		users, groups := bigDirectory(n)
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buildSnapshot(e2eProvider(b), users, groups, "bench", true)
			}
		})
	}
}

func BenchmarkFilterEvaluation(b *testing.B) {
	s := e2eSnapshot(b)
	users, _ := e2eDirectory()
	e := s.prov.userEntry(&users[1])
	for _, flt := range []string{
		"(objectClass=user)",
		"(&(objectClass=user)(|(cn=adm*)(mail=*@example.com))(!(ak-active=FALSE)))",
		"(memberOf=cn=akadmin-group,ou=groups,dc=ldap,dc=goauthentik,dc=io)",
		"(modifyTimestamp>=20200101000000Z)",
	} {
		f, err := parseFilter(flt)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(flt, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.matches(e)
			}
		})
	}
}

func BenchmarkEntrySelection(b *testing.B) {
	s := e2eSnapshot(b)
	users, _ := e2eDirectory()
	e := s.prov.userEntry(&users[1])
	sel := newSelector([]string{"*", "+"}, false)
	b.ReportAllocs()
	for b.Loop() {
		sel.apply(e)
	}
}

// BenchmarkWireSearch measures whole searches over loopback with go-ldap
// as the client: one equality search, and reading every user of a
// 10,000-user directory (entry selection, BER encoding, TCP).
func BenchmarkWireSearch(b *testing.B) {
	tp := startProvider(b, "cached", "direct")
	users, groups := bigDirectory(10_000)
	users = append(users, user{PK: 7, Username: "admin", UID: "uid-admin", Active: true})
	st := tp.p.state.Load()
	st.providers[0].snap.Store(buildSnapshot(st.providers[0].cfg, users, groups, "bench", true))
	c := tp.dial(b)
	if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, filter string
		want         int
	}{
		{"equality", "(&(objectClass=user)(cn=user5000))", 1},
		{"all-users-10000", "(objectClass=user)", 10_001},
	} {
		req := goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false, bc.filter, nil, nil)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := c.Search(req)
				if err != nil || len(res.Entries) != bc.want {
					b.Fatalf("search: %v, %d entries", err, len(res.Entries))
				}
			}
			b.ReportMetric(float64(bc.want*b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkSnapshotMemory reports the heap a cached 100,000-user
// directory keeps, and what building it allocates per user. With
// SNAPSHOT_HEAP_PROFILE=FILE it also writes a heap profile while the
// snapshot is alive, for `go tool pprof -sample_index=inuse_space`: the
// -memprofile of `go test` is taken after the benchmark dropped it.
//
// SNAPSHOT_USERS sets the number of users (100,000 by default).
func BenchmarkSnapshotMemory(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("SNAPSHOT_USERS")); err == nil && v > 0 {
		n = v
	}
	users, groups := bigDirectory(n)
	var s *snapshot
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s = buildSnapshot(e2eProvider(b), users, groups, "bench", true)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-retained")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B-retained/user")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n), "allocs/user")
	}
	if path := os.Getenv("SNAPSHOT_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	runtime.KeepAlive(s)
}

// BenchmarkCachedLoad is the in-process half of bench/ldapmem.sh: a
// cached-mode refresh of 100,000 users in 10,000 groups from the test core
// over loopback HTTP, split into the fetch (requests and JSON decoding)
// and the build of the snapshot, so a CPU profile shows which side a slow
// load is on.
func BenchmarkCachedLoad(b *testing.B) {
	const nUsers, nGroups = 100_000, 10_000
	var bp strings.Builder
	bp.WriteString("version: 1\nentries:\n")
	for g := range nGroups {
		fmt.Fprintf(&bp, "  - {model: authentik_core.group, id: g%d, identifiers: {name: group%d}}\n", g, g)
	}
	for i := range nUsers {
		fmt.Fprintf(&bp, "  - {model: authentik_core.user, identifiers: {username: user%d}, attrs: {name: User %d, groups: [!KeyOf g%d]}}\n", i, i, i%nGroups)
	}
	bp.WriteString("  - {model: authentik_providers_ldap.ldapprovider, id: ldap, identifiers: {name: ldap}, attrs: {base_dn: \"" + base + "\", search_mode: cached}}\n")
	bp.WriteString("  - {model: authentik_outposts.outpost, identifiers: {name: ldap}, attrs: {type: ldap, providers: [!KeyOf ldap]}}\n")
	core, err := outposttest.NewServer([]byte(bp.String()))
	if err != nil {
		b.Fatal(err)
	}
	defer core.Close()
	u, err := url.Parse(core.URL())
	if err != nil {
		b.Fatal(err)
	}
	api, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: core.Token("ldap")})
	if err != nil {
		b.Fatal(err)
	}
	d := apiDirectory{api: api}
	ctx := context.Background()
	for b.Loop() {
		start := time.Now()
		// A first load: nothing known, every user decoded.
		l, err := d.listAll(ctx, newKnownUsers())
		if err != nil {
			b.Fatal(err)
		}
		fetched := time.Now()
		s := build(e2eProvider(b), l.users, l.groups, "bench", true)
		b.ReportMetric(fetched.Sub(start).Seconds(), "s-fetch")
		b.ReportMetric(time.Since(fetched).Seconds(), "s-build")
		if len(s.userList) != nUsers+1 { // and the outpost's service account
			b.Fatalf("%d users", len(s.userList))
		}
	}
}
