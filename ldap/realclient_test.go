package ldap_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// requireTool skips a test whose client is not installed, except in CI
// (.ci/run installs them), where a missing client is a failure.
func requireTool(t *testing.T, path string, check ...string) {
	t.Helper()
	_, err := exec.LookPath(path)
	if err == nil && len(check) > 0 {
		err = exec.Command(path, check...).Run()
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI: %v", path, err)
	}
	t.Skipf("%s not available (%v); .ci/run installs it", path, err)
}

// run runs a client with the TLS checks real deployments would configure
// turned off: the provider's certificate is the self-signed fallback.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LDAPTLS_REQCERT=never", "LDAPCONF=/dev/null", "LDAPRC=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestLdapsearch(t *testing.T) {
	requireTool(t, "ldapsearch")
	requireTool(t, "ldapwhoami")
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
			auth := append(append([]string{}, tt.args...), "-x", "-D", userDN("admin"), "-w", "admin-pw")
			out := run(t, "ldapsearch", append(auth, "-b", base, "-E", "pr=2/noprompt", "(objectClass=user)", "cn", "mail")...)
			for _, want := range []string{"dn: cn=admin,ou=users,dc=ldap,dc=goauthentik,dc=io", "mail: admin@goauthentik.io",
				"dn: cn=viewer,ou=users", "dn: cn=outsider,ou=users", "pagedresults: cookie="} {
				if !strings.Contains(out, want) {
					t.Errorf("ldapsearch output lacks %q:\n%s", want, out)
				}
			}
			who := run(t, "ldapwhoami", auth...)
			if !strings.Contains(strings.ToLower(who), "dn:cn=admin,ou=users,dc=ldap,dc=goauthentik,dc=io") {
				t.Errorf("ldapwhoami = %q", who)
			}
		})
	}
}

const ldap3Script = `
import sys
from ldap3 import Server, Connection, ALL, SUBTREE
host, port, dn, pw, base = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
server = Server(host, port=port, get_info=ALL)
conn = Connection(server, dn, pw, auto_bind=True)
assert server.schema is not None, "no schema"
assert 'goauthentik.io/ldap/user' in server.schema.object_classes, "schema lacks goauthentik.io/ldap/user"
entries = list(conn.extend.standard.paged_search(base, '(objectClass=user)', SUBTREE, attributes=['cn'], paged_size=2, generator=True))
names = sorted(e['attributes']['cn'][0] for e in entries if e['type'] == 'searchResEntry')
print(" ".join(names))
`

func TestPythonLDAP3(t *testing.T) {
	requireTool(t, "/usr/bin/python3", "-c", "import ldap3")
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	host, port, _ := strings.Cut(s.addr, ":")
	out := run(t, "/usr/bin/python3", "-c", ldap3Script, host, port, userDN("admin"), "admin-pw", base)
	for _, want := range []string{"admin", "inactive", "mfa", "outsider", "viewer"} {
		if !strings.Contains(out, want) {
			t.Errorf("ldap3 paged search lacks %s: %q", want, out)
		}
	}
}

// nslcd answers getent through the LDAP provider, inside a private mount
// namespace with its own nsswitch.conf and nslcd.conf, so the host's name
// service is untouched. authentik's users carry a hash in uid, so the
// configuration maps the login name to cn, as authentik's docs advise.
func TestNslcd(t *testing.T) {
	requireTool(t, "nslcd", "-V")
	requireTool(t, "unshare", "--version")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the nslcd test needs root for its mount namespace")
		}
		t.Skip("the nslcd test needs root for its mount namespace")
	}
	if _, err := os.Stat("/etc/nslcd.conf"); err != nil {
		t.Skipf("nslcd is not configured on this host: %v", err)
	}
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	dir := t.TempDir()
	conf := strings.Join([]string{
		"uid 0", "gid 0",
		"uri ldap://" + s.addr + "/",
		"base " + strings.ToLower(base),
		"binddn " + userDN("admin"),
		"bindpw admin-pw",
		"map passwd uid cn",
		"filter group (objectClass=posixGroup)",
		"",
	}, "\n")
	if err := os.WriteFile(dir+"/nslcd.conf", []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/nsswitch.conf", []byte("passwd: files ldap\ngroup: files ldap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -e
mkdir -p /run/nslcd
mount -t tmpfs tmpfs /run/nslcd
mount --bind "$D/nslcd.conf" /etc/nslcd.conf
mount --bind "$D/nsswitch.conf" /etc/nsswitch.conf
nslcd -n & pid=$!
i=0; while [ ! -S /run/nslcd/socket ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
getent passwd admin viewer || true
getent group staff || true
kill $pid 2>/dev/null || true
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "D="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nslcd run: %v\n%s", err, out)
	}
	for _, want := range []string{"admin:", ":/home/admin", "viewer:", "staff:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("getent output lacks %q:\n%s", want, out)
		}
	}
}
