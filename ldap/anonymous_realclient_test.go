package ldap_test

import (
	"strings"
	"testing"
)

// `ldapsearch -x -b "" -s base +` binds anonymously (an empty DN and
// password, RFC 4513 5.1.1) and reads the root DSE's operational
// attributes. authentik's outpost answers the bind with 50 and nothing.
// Every other search of an anonymous connection stays refused.
func TestLdapsearchAnonymousRootDSE(t *testing.T) {
	requireTool(t, "ldapsearch")
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"plain", []string{"-H", "ldap://" + s.addr}},
		{"StartTLS", []string{"-H", "ldap://" + s.addr, "-ZZ"}},
		{"LDAPS", []string{"-H", "ldaps://" + s.addrs}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			anon := append(append([]string{}, tt.args...), "-x", "-LLL")
			out := run(t, "ldapsearch", append(anon, "-b", "", "-s", "base", "+")...)
			for _, want := range []string{"namingContexts: dc=ldap,dc=goauthentik,dc=io", "supportedControl: ",
				"supportedExtension: ", "supportedLDAPVersion: 3", "subschemaSubentry: cn=subschema"} {
				if !strings.Contains(out, want) {
					t.Errorf("root DSE lacks %q:\n%s", want, out)
				}
			}
			out = run(t, "ldapsearch", append(anon, "-b", "cn=subschema", "-s", "base", "objectClasses")...)
			if !strings.Contains(out, "goauthentik.io/ldap/user") {
				t.Errorf("anonymous schema read lacks goauthentik.io/ldap/user:\n%s", out)
			}
			out, status := runStatus(t, "ldapsearch", append(anon, "-b", base, "(objectClass=user)", "cn")...)
			if status != 0 || strings.Contains(out, "dn: ") {
				t.Errorf("anonymous directory search: status %d, want success with no entries:\n%s", status, out)
			}
		})
	}
}

// ldap3 with get_info=ALL reads the root DSE and the schema right after
// an anonymous bind, before the application binds as anyone.
const ldap3AnonymousScript = `
import sys
from ldap3 import Server, Connection, ALL, SUBTREE
host, port, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
server = Server(host, port=port, get_info=ALL)
conn = Connection(server, auto_bind=True)
info = server.info
assert info is not None, "no server info"
print("naming", " ".join(info.naming_contexts))
print("versions", " ".join(str(v) for v in info.supported_ldap_versions))
print("controls", len(info.supported_controls))
print("extensions", len(info.supported_extensions))
print("subschema", server.schema is not None and 'goauthentik.io/ldap/user' in server.schema.object_classes)
ok = conn.search(base, '(objectClass=user)', SUBTREE, attributes=['cn'])
# search() is False when nothing was found; result 0 says the search succeeded.
print("search", ok, conn.result['result'], len(conn.entries))
`

func TestPythonLDAP3AnonymousServerInfo(t *testing.T) {
	requireTool(t, "/usr/bin/python3", "-c", "import ldap3")
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	host, port, _ := strings.Cut(s.addr, ":")
	out := run(t, "/usr/bin/python3", "-c", ldap3AnonymousScript, host, port, base)
	for _, want := range []string{"naming dc=ldap,dc=goauthentik,dc=io\n", "versions 3\n", "subschema True\n",
		"search False 0 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("ldap3 output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"controls 0\n", "extensions 0\n"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("ldap3 output has %q:\n%s", unwanted, out)
		}
	}
}
