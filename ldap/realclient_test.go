package ldap_test

import (
	"errors"
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

	// Without a bind DN nslcd searches anonymously: the searches succeed
	// and find no one (issue 15), rather than failing, so nslcd neither
	// logs errors nor retries.
	anonymous := strings.Replace(strings.Replace(conf, "binddn "+userDN("admin")+"\n", "", 1), "bindpw admin-pw\n", "", 1)
	if err := os.WriteFile(dir+"/nslcd.conf", []byte(anonymous), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", strings.Replace(script, "nslcd -n &", "nslcd -d 2>&1 &", 1))
	cmd.Env = append(os.Environ(), "D="+dir)
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("anonymous nslcd run: %v\n%s", err, out)
	}
	for _, want := range []string{"ldap_simple_bind_s(NULL,NULL)", "<passwd=\"admin\"> DEBUG: ldap_result(): end of results (0 total)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("anonymous nslcd output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"admin:x:", "viewer:x:", "Insufficient access", "ldap_result() failed", "ldap_search_ext() failed"} {
		if strings.Contains(string(out), unwanted) {
			t.Errorf("anonymous nslcd output has %q:\n%s", unwanted, out)
		}
	}
}

// runStatus runs a client and returns its output and exit status, for
// clients that report an LDAP error through their status.
func runStatus(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LDAPTLS_REQCERT=never", "LDAPCONF=/dev/null", "LDAPRC=/dev/null")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return string(out), 0
}

// The protocol gaps of issue 16, as ldapsearch sees them: the :dn: flag of
// extensible match, attribute aliases and OIDs from the subschema in
// filters and attribute lists, no attribute without values, and a filter
// over the depth limit answered with a result.
func TestLdapsearchProtocolGaps(t *testing.T) {
	requireTool(t, "ldapsearch")
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	auth := []string{"-H", "ldap://" + s.addr, "-x", "-D", userDN("admin"), "-w", "admin-pw", "-LLL"}
	lower := strings.ToLower

	out := run(t, "ldapsearch", append(auth, "-b", base, "(ou:dn:=groups)", "1.1")...)
	for _, want := range []string{"dn: ou=groups,", "dn: cn=admins,ou=groups,", "dn: cn=staff,ou=groups,"} {
		if !strings.Contains(lower(out), lower(want)) {
			t.Errorf("(ou:dn:=groups) lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(lower(out), "ou=users") {
		t.Errorf("(ou:dn:=groups) found users:\n%s", out)
	}

	out = run(t, "ldapsearch", append(auth, "-b", userDN("outsider"), "-s", "base", "(&(2.5.4.0=user)(commonName=outsider))",
		"commonName", "2.5.4.4", "userid", "rfc822Mailbox", "memberOf")...)
	for _, want := range []string{"cn: outsider", "sn: Out Sider", "uid: "} {
		if !strings.Contains(out, want) {
			t.Errorf("aliases: output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"commonName:", "mail:", "memberOf:"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("aliases: output has %q (outsider has no email and no groups):\n%s", unwanted, out)
		}
	}

	deep := strings.Repeat("(!", 40) + "(cn=admin)" + strings.Repeat(")", 40)
	out, status := runStatus(t, "ldapsearch", append(auth, "-b", base, deep, "cn")...)
	if status != 11 || !strings.Contains(out, "filter nested deeper than 32 levels") {
		t.Errorf("filter nested 40 deep: status %d, want 11 (adminLimitExceeded):\n%s", status, out)
	}
}

const ldap3GapsScript = `
import sys
from ldap3 import Server, Connection, SUBTREE, BASE, NONE
host, port, dn, pw, base, outsider = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
# Without the schema, and without filling in requested attributes the
# server did not send, ldap3 shows the attributes as the server sends them.
conn = Connection(Server(host, port=port, get_info=NONE), dn, pw, auto_bind=True, return_empty_attributes=False)

def dns():
    return [r['dn'].lower() for r in conn.response if r['type'] == 'searchResEntry']

conn.search(base, '(ou:dn:=groups)', SUBTREE, attributes=['1.1'])
print('dnflag', ' '.join(sorted(d.split(',')[0] for d in dns())))

conn.search(outsider, '(2.5.4.3=OUTSIDER)', BASE, attributes=['commonName', 'surname', 'userid', 'rfc822Mailbox', 'memberOf'])
print('aliases', ' '.join(sorted(conn.response[0]['raw_attributes'].keys())))

for b, attrs in (('', ['*', '+']), (outsider, ['*', '+'])):
    conn.search(b, '(objectClass=*)', BASE, attributes=attrs)
    for name, values in conn.response[0]['raw_attributes'].items():
        # entryDN of the root DSE is the empty DN, a valid value.
        if len(values) == 0 or values == [b''] and name != 'entryDN':
            print('empty', repr(b), name)

# An equality filter is three BER elements: 25,000 make 75,001.
conn.search(base, '(|' + '(cn=a)' * 25000 + ')', SUBTREE, attributes=['cn'])
print('wide', conn.result['result'], conn.result['message'])
conn.search(base, '(cn=' + 'x' * (1200 * 1024) + ')', SUBTREE, attributes=['cn'])
print('huge', conn.result['result'], conn.result['message'])
conn.search(base, '(cn=admin)', SUBTREE, attributes=['cn'])
print('after', conn.result['result'], len(dns()))
`

// The same gaps through Python ldap3, plus filters over the size limits:
// answered adminLimitExceeded, and the connection serves on.
func TestPythonLDAP3ProtocolGaps(t *testing.T) {
	requireTool(t, "/usr/bin/python3", "-c", "import ldap3")
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	host, port, _ := strings.Cut(s.addr, ":")
	out := run(t, "/usr/bin/python3", "-c", ldap3GapsScript, host, port, userDN("admin"), "admin-pw", base, userDN("outsider"))
	for _, want := range []string{
		"dnflag cn=admins cn=staff ou=groups\n",
		"aliases cn sn uid\n",
		"wide 11 message has more than 65536 elements\n",
		"huge 11 message of ",
		"after 0 2\n", // admin's user entry and virtual group
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ldap3 output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "empty") {
		t.Errorf("attributes without values:\n%s", out)
	}
}
