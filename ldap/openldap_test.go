package ldap_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// slapdLDIF holds three users of testdata/e2e.yaml as OpenLDAP stores them
// (inetOrgPerson, with the attributes the provider derives: cn from the
// username, sn from the name, mail when there is one).
const slapdLDIF = `dn: dc=ldap,dc=goauthentik,dc=io
objectClass: domain
dc: ldap

dn: ou=users,dc=ldap,dc=goauthentik,dc=io
objectClass: organizationalUnit
ou: users

dn: cn=admin,ou=users,dc=ldap,dc=goauthentik,dc=io
objectClass: inetOrgPerson
cn: admin
sn: admin
mail: admin@goauthentik.io

dn: cn=viewer,ou=users,dc=ldap,dc=goauthentik,dc=io
objectClass: inetOrgPerson
cn: viewer
sn: Vi Ewer
mail: viewer@goauthentik.io

dn: cn=outsider,ou=users,dc=ldap,dc=goauthentik,dc=io
objectClass: inetOrgPerson
cn: outsider
sn: Out Sider
`

// startSlapd runs OpenLDAP's slapd (Debian's slapd, which .ci/run
// installs) on a loopback port with slapdLDIF and returns its address.
func startSlapd(t *testing.T) string {
	t.Helper()
	const slapd, slapadd = "/usr/sbin/slapd", "/usr/sbin/slapadd"
	requireTool(t, slapd, "-VV")
	dir := t.TempDir()
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
database mdb
suffix "dc=ldap,dc=goauthentik,dc=io"
directory %[1]s
access to * by * read
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.ldif"), []byte(slapdLDIF), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(slapadd, "-q", "-f", filepath.Join(dir, "slapd.conf"), "-l", filepath.Join(dir, "data.ldif")).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(slapd, "-f", filepath.Join(dir, "slapd.conf"), "-h", "ldap://"+addr+"/", "-d", "0")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := goldap.DialURL("ldap://" + addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The same searches against OpenLDAP and the provider give the same
// entries, and the same attributes under the same names: attribute
// aliases, OIDs and options, the :dn: flag, matching rules, and assertions
// on attributes an entry lacks. Only the users OpenLDAP holds are compared
// (the provider's entries carry more: virtual groups, authentik's
// attributes).
func TestSameAnswersAsOpenLDAP(t *testing.T) {
	slapd := startSlapd(t)
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	theirs, err := goldap.DialURL("ldap://" + slapd)
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	ours := s.dial(t)
	if err := ours.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	// Both sides hold ou=users and these three users; the provider more.
	const scope = "(|(ou=users)(cn=admin)(cn=viewer)(cn=outsider))"
	tests := []struct {
		filter string
		attrs  []string
	}{
		{"(commonName=admin)", []string{"commonName", "2.5.4.4", "rfc822Mailbox", "cn;lang-en"}},
		{"(2.5.4.3=ADMIN)", []string{"cn"}},
		{"(surname=vi ewer)", []string{"surname", "mail"}},
		{"(rfc822Mailbox=admin@goauthentik.io)", []string{"mail"}},
		{"(cn=outsider)", []string{"mail", "cn", "SN"}},
		{"(mail=*)", []string{"1.1"}},
		{"(!(mail=admin@goauthentik.io))", []string{"1.1"}},
		{"(2.5.4.0=inetOrgPerson)", []string{"1.1"}},
		{"(ou:dn:=users)", []string{"1.1"}},
		{"(:dn:caseIgnoreMatch:=USERS)", []string{"1.1"}},
		{"(cn:dn:=viewer)", []string{"1.1"}},
		{"(cn;lang-en=admin)", []string{"1.1"}},
		{"(sn:caseExactMatch:=Vi Ewer)", []string{"1.1"}},
		{"(sn:caseExactMatch:=vi ewer)", []string{"1.1"}},
		{"(sn:2.5.13.2:=VI EWER)", []string{"1.1"}},
		{"(:caseExactMatch:=Out Sider)", []string{"1.1"}},
	}
	describe := func(c *goldap.Conn, filter string, attrs []string) string {
		res, err := c.Search(goldap.NewSearchRequest("ou=users,"+base, goldap.ScopeWholeSubtree, 0, 0, 0, false,
			"(&"+scope+filter+")", attrs, nil))
		if err != nil {
			return "error: " + err.Error()
		}
		var out []string
		for _, e := range res.Entries {
			line := strings.ToLower(e.DN)
			for _, a := range e.Attributes {
				line += " " + a.Name + "=" + strings.Join(a.Values, "|")
			}
			out = append(out, line)
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	for _, tt := range tests {
		want := describe(theirs, tt.filter, tt.attrs)
		if got := describe(ours, tt.filter, tt.attrs); got != want {
			t.Errorf("%s %q:\nOpenLDAP:\n%s\nprovider:\n%s", tt.filter, tt.attrs, want, got)
		}
	}
}
