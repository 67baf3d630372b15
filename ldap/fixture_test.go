package ldap

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// e2eProvider is the provider of authentik's e2e test: mixed-case base,
// default start numbers.
func e2eProvider(t testing.TB) *providerConfig {
	t.Helper()
	p, err := decodeProvider(json.RawMessage(`{"pk": 1, "name": "ldap", "base_dn": "DC=ldap,DC=goauthentik,DC=io",
		"bind_flow_slug": "default-authentication-flow", "application_slug": "ldap-app",
		"uid_start_number": 2000, "gid_start_number": 4000, "search_mode": "cached", "bind_mode": "direct", "mfa_support": true}`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	t1 = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
)

// e2eDirectory mirrors authentik's e2e fixture: the outpost's service
// account (no email, no groups), an admin in a superuser group of its own
// name with a custom attribute, and an unprivileged user.
func e2eDirectory() ([]user, []group) {
	adminGroup := groupRef{PK: "6a0d7a5e-0000-4000-8000-000000000001", NumPK: 12345, Name: "akadmin-group", Superuser: true}
	users := []user{
		{PK: 3, Username: "ak-outpost-4c5e0e1f", Name: "Outpost ldap Service-Account", UID: "uid-outpost",
			Active: true, DateJoined: t0, LastUpdated: t1, PwdChanged: t0},
		{PK: 7, Username: "admin", Name: "admin", Email: "admin@goauthentik.io", UID: "uid-admin", Active: true,
			Superuser: true, Groups: []groupRef{adminGroup}, Attributes: map[string]any{"extraAttribute": "bar"},
			DateJoined: t0, LastUpdated: t1, PwdChanged: t1},
		{PK: 9, Username: "viewer", Name: "Vi Ewer", Email: "viewer@goauthentik.io", UID: "uid-viewer", Active: true,
			Groups:     []groupRef{{PK: "6a0d7a5e-0000-4000-8000-000000000002", NumPK: 23456, Name: "staff"}},
			DateJoined: t0, LastUpdated: t1, PwdChanged: t1},
	}
	groups := []group{
		{PK: adminGroup.PK, NumPK: adminGroup.NumPK, Name: adminGroup.Name, Superuser: true,
			Members: []memberRef{{PK: 7, Username: "admin"}}},
		{PK: "6a0d7a5e-0000-4000-8000-000000000002", NumPK: 23456, Name: "staff",
			Members: []memberRef{{PK: 9, Username: "viewer"}}, Children: []string{"interns"},
			Attributes: map[string]any{"goauthentik.io/ldap/desc": "Staff", "tags": []any{"a", 1.0, nil, true}}},
		{PK: "6a0d7a5e-0000-4000-8000-000000000003", NumPK: 34567, Name: "interns", Parents: []string{"staff"}},
	}
	return users, groups
}

func e2eSnapshot(t testing.TB) *snapshot {
	users, groups := e2eDirectory()
	return buildSnapshot(e2eProvider(t), users, groups, "test", true)
}

// ldif renders entries for golden files, attributes in entry order.
func ldif(entries []*entry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "dn: %s\n", e.DN)
		for _, a := range e.attributes() {
			if len(a.Values) == 0 {
				fmt.Fprintf(&b, "%s:: (no values)\n", a.Name)
			}
			for _, v := range a.Values {
				op := ""
				if a.Operational {
					op = " [operational]"
				}
				fmt.Fprintf(&b, "%s: %q%s\n", a.Name, v, op)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// golden compares got with testdata/NAME, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

// userEntry builds one user's entry on its own.
func (p *providerConfig) userEntry(u *user) *entry {
	return newBuilder(p, 1).userEntry(u)
}

// virtualGroupEntry builds the virtual group of one user on its own.
func (p *providerConfig) virtualGroupEntry(u *user) *entry {
	b := newBuilder(p, 1)
	b.userEntry(u)
	return b.virtualGroupEntry(0)
}

// attributes returns every attribute of e, in order.
func (e *entry) attributes() []attribute {
	out := make([]attribute, e.len())
	for i := range out {
		out[i] = e.attr(i)
	}
	return out
}
