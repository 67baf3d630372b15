package outposttest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// bigBlueprint is a directory of n users in n/10 groups with an LDAP
// outpost, the shape bench/genblueprint writes.
func bigBlueprint(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nentries:\n")
	ng := max(n/10, 1)
	for g := range ng {
		fmt.Fprintf(&b, "  - {model: authentik_core.group, id: g%d, identifiers: {name: group%d}}\n", g, g)
	}
	for i := range n {
		fmt.Fprintf(&b, "  - {model: authentik_core.user, identifiers: {username: user%d}, attrs: {name: User %d, password: pw, groups: [!KeyOf g%d]}}\n", i, i, i%ng)
	}
	b.WriteString("  - {model: authentik_providers_ldap.ldapprovider, id: ldap, identifiers: {name: ldap}, attrs: {base_dn: \"dc=ldap,dc=goauthentik,dc=io\"}}\n")
	b.WriteString("  - {model: authentik_outposts.outpost, identifiers: {name: ldap}, attrs: {type: ldap, providers: [!KeyOf ldap]}}\n")
	return []byte(b.String())
}

// BenchmarkDirectoryPage measures one page of the users and groups lists
// an LDAP outpost in cached mode reads, at 100,000 users: a full load is
// a thousand user pages, so each must not cost a pass of sorting or a
// scan of every user per group.
func BenchmarkDirectoryPage(b *testing.B) {
	s, err := NewUnstartedServer(Config{Blueprint: bigBlueprint(100_000)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	token := s.Token("ldap")
	for _, bc := range []struct{ name, path string }{
		{"users", "/api/v3/core/users/?page_size=100&include_groups=true&page="},
		{"groups", "/api/v3/core/groups/?page_size=100&include_users=true&include_children=true&include_parents=true&page="},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			page := 0
			for b.Loop() {
				page = page%90 + 1
				req := httptest.NewRequest(http.MethodGet, bc.path+fmt.Sprint(page), nil)
				req.Header.Set("Authorization", "Bearer "+token)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					body, _ := io.ReadAll(rec.Body)
					b.Fatalf("page %d: %d %s", page, rec.Code, body)
				}
			}
		})
	}
}
