package ldap_test

import (
	"strings"
	"testing"
)

// LDAP clients send the bind DN in whatever case the user typed.
// authentik's identification stage matches the user case-insensitively
// (case_insensitive_matching, default true), so cn=ADMIN binds as admin
// against a real core; the test core now does the same, and the bound
// connection reads as the user it is.
func TestLdapsearchBindDNCase(t *testing.T) {
	requireTool(t, "ldapsearch")
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	for _, dn := range []string{"cn=ADMIN,ou=users," + base, "CN=Admin,OU=Users," + strings.ToUpper(base)} {
		out := run(t, "ldapsearch", "-H", "ldap://"+s.addr, "-x", "-LLL", "-D", dn, "-w", "admin-pw",
			"-b", base, "(cn=admin)", "cn", "mail")
		for _, want := range []string{"dn: cn=admin,ou=users,dc=ldap,dc=goauthentik,dc=io", "mail: admin@goauthentik.io"} {
			if !strings.Contains(out, want) {
				t.Errorf("bound as %s: output lacks %q:\n%s", dn, want, out)
			}
		}
		if _, status := runStatus(t, "ldapsearch", "-H", "ldap://"+s.addr, "-x", "-D", dn, "-w", "wrong", "-b", base, "(cn=admin)"); status != 49 {
			t.Errorf("bound as %s with a wrong password: status %d, want 49", dn, status)
		}
	}
}
