package ldap_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// differentialCases is the size of the matrix of TestDifferentialSearch,
// quoted in docs/RELIABILITY.md: bases × scopes × filters × identities.
const differentialCases = 21 * 3 * 62 * 2

// TestDifferentialSearch runs one matrix of searches (bases, scopes,
// filters, a full-directory and a limited identity) against a provider
// in cached search mode and one in direct search mode, both serving the
// same directory from one core, and fails on any difference but the
// documented one: direct mode pushes equality filters on cn, mail,
// memberOf and member to the API, whose matching is exact, when the
// search base is the base DN or a container (docs/ldap.md).
//
// Direct mode once answered noSuchObject for an existing user as base
// whenever the filter matched nothing, because the push-down left the
// base entry out of what it fetched: the membership check
// -b <user DN> -s base "(memberOf=<group DN>)" failed for non-members.
func TestDifferentialSearch(t *testing.T) {
	bp, err := os.ReadFile("testdata/differential.yaml")
	if err != nil {
		t.Fatal(err)
	}
	core, err := outposttest.NewServer(bp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	modes := map[string]string{
		"cached": startOutpost(t, core, "ldap-cached"),
		"direct": startOutpost(t, core, "ldap-direct"),
	}

	grp := func(name string) string { return "cn=" + name + ",ou=groups," + base }
	bases := []struct {
		name, dn string
		leaf     bool // names or lies below a user, group or virtual group
	}{
		{"root DSE", "", false},
		{"base", base, false},
		{"base in lower case", strings.ToLower(base), false},
		{"ou=users", "ou=users," + base, false},
		{"ou=groups", "ou=groups," + base, false},
		{"ou=virtual-groups", "ou=virtual-groups," + base, false},
		{"full user", userDN("admin"), true},
		{"limited user", userDN("viewer"), true},
		{"user in another case", "CN=carol,OU=Users," + base, true},
		{"user with a comma", `cn=x\,y,ou=users,` + base, true},
		{"user without groups", userDN("dave"), true},
		{"group", grp("staff"), true},
		{"group in another case", grp("ops team"), true},
		{"virtual group", "cn=viewer,ou=virtual-groups," + base, true},
		{"missing user", userDN("nobody"), true},
		{"missing group", grp("nobody"), true},
		{"below a user", "cn=x," + userDN("admin"), true},
		{"uid instead of cn", "uid=admin,ou=users," + base, false},
		{"missing container", "ou=nothing," + base, false},
		{"below a missing container", "cn=admin,ou=nothing," + base, false},
		{"another base", "dc=example,dc=org", false},
	}
	scopes := []int{goldap.ScopeBaseObject, goldap.ScopeSingleLevel, goldap.ScopeWholeSubtree}
	filters := []string{
		"(objectClass=*)", "(objectclass=*)", "(objectClass=user)", "(objectClass=USER)", "(objectClass=group)",
		"(objectClass=posixGroup)", "(objectClass=goauthentik.io/ldap/virtual-group)", "(objectClass=nsContainer)",
		"(objectClass=top)", "(objectClass=nothing)",
		"(cn=admin)", "(cn=ADMIN)", "(CN=admin)", "(cn=Carol)", "(cn=carol)", "(cn=staff)", "(cn=Ops Team)",
		`(cn=x,y)`, "(cn=a*)", "(cn=*o*)", "(cn=*R)", "(cn=*)", "(cn~=admin)",
		"(mail=admin@goauthentik.io)", "(mail=carol@example.org)", "(mail=*)",
		"(memberOf=" + grp("staff") + ")", "(memberOf=" + grp("STAFF") + ")",
		"(memberOf=CN=staff,OU=Groups,dc=ldap,dc=goauthentik,dc=io)", "(memberOf=" + grp("admins") + ")",
		"(memberOf=" + grp("Ops Team") + ")", "(memberOf=" + grp("nothing") + ")", "(memberOf=*)",
		"(member=" + userDN("admin") + ")", "(member=" + userDN("carol") + ")", "(member=" + grp("interns") + ")",
		"(member=*)",
		"(memberUid=viewer)", "(uidNumber>=2000)", "(gidNumber<=4000)", "(sAMAccountName=viewer)",
		"(ak-superuser=TRUE)", "(ak-active=true)", "(extraAttribute=bar)", "(tags=y)", "(desc=Staff members)",
		"(displayName=Vi Ewer)", "(ou=users)", "(dc=ldap)", "(createTimestamp=*)",
		"(nonexistent=*)", "(nonexistent=x)", "(!(nonexistent=x))",
		"(&(objectClass=user)(cn=admin))", "(&(objectClass=user)(cn=ADMIN))",
		"(&(objectClass=user)(memberOf=" + grp("staff") + "))",
		"(&(objectClass=group)(member=" + userDN("viewer") + "))",
		"(|(cn=admin)(cn=viewer))", "(|(objectClass=group)(mail=*))", "(!(objectClass=user))",
		"(&(objectClass=group)(!(cn=staff)))", "(&(cn=admin)(cn=viewer))",
	}
	for _, f := range filters {
		if _, err := goldap.CompileFilter(f); err != nil {
			t.Fatalf("filter %s does not compile: %v", f, err)
		}
	}
	identities := []struct{ name, dn, password string }{
		{"full", userDN("admin"), "admin-pw"},
		{"limited", userDN("viewer"), "viewer-pw"},
	}

	var cases, differences, documented, withEntries, noSuchObject, emptySuccess int
	for _, id := range identities {
		conns := map[string]*goldap.Conn{}
		for mode, addr := range modes {
			c, err := goldap.DialURL("ldap://" + addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if err := c.Bind(id.dn, id.password); err != nil {
				t.Fatalf("%s binding to the %s provider: %v", id.name, mode, err)
			}
			conns[mode] = c
		}
		if id.name == "full" {
			waitForCachedDirectory(t, conns["cached"])
		}
		for _, b := range bases {
			for _, scope := range scopes {
				for _, f := range filters {
					cases++
					name := fmt.Sprintf("%s, base %s, scope %s, %s", id.name, b.name, goldap.ScopeMap[scope], f)
					c := searchFor(conns["cached"], b.dn, scope, f)
					d := searchFor(conns["direct"], b.dn, scope, f)
					if c.err != "" || d.err != "" {
						t.Errorf("%s: not an LDAP result: cached %q, direct %q", name, c.err, d.err)
						continue
					}
					switch {
					case len(c.entries) > 0:
						withEntries++
					case c.code == goldap.LDAPResultNoSuchObject:
						noSuchObject++
					case c.code == goldap.LDAPResultSuccess:
						emptySuccess++
					}
					if c.equal(d) {
						continue
					}
					differences++
					if !b.leaf && c.code == d.code && c.matched == d.matched && pushedDownCase(t, f, c.without(d)) {
						documented++
						continue
					}
					t.Errorf("%s: modes differ\ncached: %s\ndirect: %s", name, c, d)
				}
			}
		}
	}
	// Compare reads the same view as search.
	for _, id := range identities[:1] {
		for _, cmp := range []struct{ dn, attr, value string }{
			{userDN("admin"), "memberOf", grp("staff")},
			{userDN("viewer"), "memberOf", grp("staff")},
			{"CN=carol,OU=Users," + base, "cn", "carol"},
			{grp("staff"), "member", userDN("viewer")},
			{grp("ops team"), "member", userDN("admin")},
			{userDN("nobody"), "cn", "nobody"},
		} {
			var got []string
			for _, mode := range []string{"cached", "direct"} {
				c, err := goldap.DialURL("ldap://" + modes[mode])
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Bind(id.dn, id.password); err != nil {
					t.Fatal(err)
				}
				ok, err := c.Compare(cmp.dn, cmp.attr, cmp.value)
				c.Close()
				got = append(got, fmt.Sprintf("%v %d", ok, code(err)))
			}
			if got[0] != got[1] {
				t.Errorf("compare %s %s=%s: cached %s, direct %s", cmp.dn, cmp.attr, cmp.value, got[0], got[1])
			}
		}
	}
	t.Logf("%d cases, %d differences, %d of them the documented case-sensitive push-down; "+
		"%d with entries, %d noSuchObject, %d success without entries",
		cases, differences, documented, withEntries, noSuchObject, emptySuccess)
	if cases != differentialCases {
		t.Errorf("%d cases, docs/RELIABILITY.md says %d: update both", cases, differentialCases)
	}
	// A matrix whose searches all fail, or all find nothing, would
	// compare nothing.
	if withEntries < cases/10 || noSuchObject == 0 || emptySuccess < cases/10 || documented == 0 {
		t.Errorf("the matrix is too weak: %d with entries, %d noSuchObject, %d success without entries, %d documented",
			withEntries, noSuchObject, emptySuccess, documented)
	}
}

// waitForCachedDirectory waits until the cached provider answers from its
// directory: until then it searches as direct mode does, and (cn=carol)
// finds Carol only in the directory, which matches ignoring case.
func waitForCachedDirectory(t *testing.T, c *goldap.Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := c.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false,
			"(&(objectClass=user)(cn=carol))", []string{"1.1"}, nil))
		if err == nil && len(res.Entries) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cached provider did not load its directory: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outcome is a search's result as the differential test compares it.
type outcome struct {
	code    uint16
	matched string
	entries []string // rendered, sorted
	byText  map[string]*goldap.Entry
	err     string // set when the answer was not an LDAP result
}

func searchFor(c *goldap.Conn, base string, scope int, filter string) outcome {
	res, err := c.Search(goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 0, 0, false, filter,
		[]string{"*", "+"}, nil))
	o := outcome{byText: map[string]*goldap.Entry{}}
	if err != nil {
		var le *goldap.Error
		if !errors.As(err, &le) || le.ResultCode >= goldap.ErrorNetwork {
			o.err = err.Error()
			return o
		}
		o.code, o.matched = le.ResultCode, le.MatchedDN
	}
	if res != nil {
		for _, e := range res.Entries {
			s := renderEntry(e)
			o.entries = append(o.entries, s)
			o.byText[s] = e
		}
	}
	slices.Sort(o.entries)
	return o
}

func renderEntry(e *goldap.Entry) string {
	var b strings.Builder
	b.WriteString("dn: " + e.DN + "\n")
	attrs := slices.Clone(e.Attributes)
	slices.SortFunc(attrs, func(x, y *goldap.EntryAttribute) int {
		return strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name))
	})
	for _, a := range attrs {
		vals := slices.Sorted(slices.Values(a.Values))
		fmt.Fprintf(&b, "%s: %q\n", a.Name, vals)
	}
	return b.String()
}

func (o outcome) equal(p outcome) bool {
	return o.code == p.code && o.matched == p.matched && slices.Equal(o.entries, p.entries)
}

// without returns the entries of o missing from p, or nil if p has an
// entry that o lacks.
func (o outcome) without(p outcome) []*goldap.Entry {
	var missing []*goldap.Entry
	for _, s := range o.entries {
		if !slices.Contains(p.entries, s) {
			missing = append(missing, o.byText[s])
		}
	}
	for _, s := range p.entries {
		if !slices.Contains(o.entries, s) {
			return nil
		}
	}
	return missing
}

func (o outcome) String() string {
	dns := make([]string, 0, len(o.entries))
	for _, s := range o.entries {
		dns = append(dns, o.byText[s].DN)
	}
	return fmt.Sprintf("code %d, matched %q, entries %q", o.code, o.matched, dns)
}

// pushedDownCase reports whether entries missing from a direct-mode
// result are the documented difference: each holds a value of an
// equality item that direct mode pushes to the API (on cn, mail,
// memberOf or member, alone or in a top-level AND) which equals the
// asserted value only when case is ignored.
func pushedDownCase(t *testing.T, filter string, missing []*goldap.Entry) bool {
	t.Helper()
	if len(missing) == 0 {
		return false
	}
	p, err := goldap.CompileFilter(filter)
	if err != nil {
		t.Fatal(err)
	}
	items := []*ber.Packet{p}
	if p.Tag == goldap.FilterAnd {
		items = p.Children
	}
	type assertion struct{ attr, value string }
	var pushed []assertion
	for _, it := range items {
		if it.Tag != goldap.FilterEqualityMatch || len(it.Children) != 2 {
			continue
		}
		attr := strings.ToLower(it.Children[0].Data.String())
		if attr == "cn" || attr == "mail" || attr == "memberof" || attr == "member" {
			pushed = append(pushed, assertion{attr, it.Children[1].Data.String()})
		}
	}
	for _, e := range missing {
		explained := false
		for _, a := range pushed {
			for _, v := range e.GetEqualFoldAttributeValues(a.attr) {
				if v != a.value && strings.EqualFold(v, a.value) {
					explained = true
				}
			}
		}
		if !explained {
			return false
		}
	}
	return true
}

// startOutpost runs the outpost name of core with an LDAP provider on
// loopback and returns the plain listener's address once the provider
// answers.
func startOutpost(t *testing.T, core *outposttest.Server, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o, err := outpost.New(outpost.Config{CoreURL: core.URL(), Token: core.Token(name),
		Providers: map[string]outpost.Factory{"ldap": ldap.Factory(ldap.Config{LDAPListener: ln, Token: core.Token(name), Version: "test"})}, Registerer: prometheus.NewRegistry(), UpdateJitter: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("outpost %s: %v", name, err)
		}
	})
	select {
	case <-o.Ready():
	case <-time.After(20 * time.Second):
		t.Fatalf("outpost %s never became ready", name)
	}
	return ln.Addr().String()
}
