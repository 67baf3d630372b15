package ldap_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLdapwhoamiBindDNs binds with OpenLDAP's ldapwhoami and ldapsearch
// using bind DNs that cannot name a user, and ones with unescaped spaces,
// and checks what the client shows: result code 34 with the reason for
// the first, success as the user for the second (docs/ldap.md, "Bind
// DN").
func TestLdapwhoamiBindDNs(t *testing.T) {
	requireTool(t, "ldapwhoami")
	requireTool(t, "ldapsearch")
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	tests := []struct {
		name, tool, dn string
		ok             bool
		want           []string // in the client's output
	}{
		{"hex cn", "ldapwhoami", "cn=#0c0561646d696e,ou=users," + base, false,
			[]string{"Invalid DN syntax (34)", "#hex form"}},
		{"hex cn cut short", "ldapwhoami", "cn=#0561,ou=users," + base, false,
			[]string{"Invalid DN syntax (34)", "not a valid DN"}},
		{"empty RDN", "ldapsearch", "cn=admin,,ou=users," + base, false,
			[]string{"Invalid DN syntax (34)", "not a valid DN"}},
		{"empty cn", "ldapwhoami", "cn=,ou=users," + base, false,
			[]string{"Invalid DN syntax (34)", "empty"}},
		{"well-formed, other base", "ldapwhoami", "cn=admin,ou=users,dc=example,dc=org", false,
			[]string{"Invalid credentials (49)"}},
		{"spaces around the cn", "ldapwhoami", "cn= admin ,ou=users," + base, true,
			[]string{"dn:cn= admin ,ou=users,"}},
		{"spaces around separators", "ldapsearch", "cn = admin, ou=users, " + base, true,
			[]string{"dn: cn=admin,ou=users,dc=ldap,dc=goauthentik,dc=io"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"-H", "ldap://" + s.addr, "-x", "-D", tt.dn, "-w", "admin-pw"}
			if tt.tool == "ldapsearch" {
				args = append(args, "-b", userDN("admin"), "-s", "base", "(objectClass=*)", "cn")
			}
			cmd := exec.Command(tt.tool, args...)
			cmd.Env = append(os.Environ(), "LDAPCONF=/dev/null", "LDAPRC=/dev/null")
			out, err := cmd.CombinedOutput()
			if (err == nil) != tt.ok {
				t.Fatalf("%s -D %q: %v, want success %v\n%s", tt.tool, tt.dn, err, tt.ok, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("%s -D %q output lacks %q:\n%s", tt.tool, tt.dn, w, out)
				}
			}
		})
	}
}
