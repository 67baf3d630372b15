package ldap

import (
	ber "github.com/go-asn1-ber/asn1-ber"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// FuzzBindDN: any DN either yields a user name whose own DN parses back to
// the same name and lies under ou=users, or is refused; nothing panics.
func FuzzBindDN(f *testing.F) {
	for _, s := range []string{
		"cn=admin,ou=users,dc=ldap,dc=goauthentik,dc=io",
		`cn=a\,b,ou=users,dc=ldap,dc=goauthentik,dc=io`,
		"CN=x+uid=y,OU=Users,DC=ldap,DC=goauthentik,DC=io",
		"cn=admin,ou=groups,dc=ldap,dc=goauthentik,dc=io",
		`cn=\23\20x\20,ou=users,dc=ldap,dc=goauthentik,dc=io`,
		"", ",", "=", "cn=", `\`,
	} {
		f.Add(s)
	}
	p := e2eProvider(f)
	f.Fuzz(func(t *testing.T, dn string) {
		name, err := bindUsername(dn, p.usersKey)
		if err != nil {
			return
		}
		if name == "" {
			t.Fatalf("empty name from %q", dn)
		}
		back := p.userDN(name)
		again, err := bindUsername(back, p.usersKey)
		if err != nil || again != name {
			t.Fatalf("%q -> %q -> %q -> %q, %v", dn, name, back, again, err)
		}
		k1, _ := keyOf(dn)
		if !strings.HasSuffix(k1, ","+p.usersKey) {
			t.Fatalf("%q accepted outside ou=users (key %q)", dn, k1)
		}
	})
}

// FuzzDNKey: keys of parsed DNs never contain an unescaped separator
// inside a value, so suffix checks are exact.
func FuzzDNKey(f *testing.F) {
	for _, s := range []string{"cn=a,dc=b", `cn=a\,b,dc=c`, `cn=a\2cb,dc=c`, "cn=a+sn=b,dc=c", `cn=\#x`, "ou= spaced ,dc=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dn, err := parseDN(s)
		if err != nil {
			return
		}
		key := dnKey(dn)
		parts := 0
		if key != "" {
			parts = strings.Count(key, ",") + 1
		}
		if parts != len(dn.RDNs) {
			t.Fatalf("%q: key %q has %d parts, DN has %d RDNs", s, key, parts, len(dn.RDNs))
		}
		// Each RDN's key is exactly one "type=value" pair with no
		// unescaped separator.
		for _, part := range strings.Split(key, ",") {
			if part == "" && key != "" {
				t.Fatalf("%q: empty RDN in key %q", s, key)
			}
		}
	})
}

// FuzzFilter: any filter go-ldap compiles converts and evaluates without
// panicking, and index-assisted evaluation agrees with a scan.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{"(objectClass=user)", "(&(cn=a*)(!(mail=*)))", "(|(uidNumber>=2000)(gidNumber<=1))",
		"(memberOf:1.2.840.113556.1.4.1941:=cn=x)", "(cn~=ADMIN)", "(member=cn=viewer,ou=users,dc=ldap,dc=goauthentik,dc=io)",
		"(|(commonName=groups)(2.5.4.3=admin))", "(ou:dn:=groups)", "(:dn:caseExactMatch:=users)", "(cn;lang-en=x)"} {
		f.Add(s)
	}
	s := e2eSnapshot(f)
	scan := e2eSnapshot(f)
	scan.base.index = nil
	f.Fuzz(func(t *testing.T, text string) {
		p, err := goldap.CompileFilter(text)
		if err != nil {
			return
		}
		flt, err := filterFromPacket(p)
		if err != nil {
			return
		}
		q := &query{baseKey: s.prov.baseKey, scope: scopeSubtree, filter: flt}
		var a, b []string
		s.run(q, func(e *entry) bool { a = append(a, e.DN); return true })
		scan.run(q, func(e *entry) bool { b = append(b, e.DN); return true })
		if strings.Join(a, "|") != strings.Join(b, "|") {
			t.Fatalf("%s: index %q, scan %q", text, a, b)
		}
	})
}

// FuzzFilterPacket: arbitrary BER, as a hostile client could send inside a
// SearchRequest, converts or fails without panicking, evaluation of
// whatever converts never panics either, and a search through the indexes
// finds what a scan finds.
func FuzzFilterPacket(f *testing.F) {
	for _, s := range []string{"(objectClass=user)", "(&(cn=a*b*c)(!(uidNumber<=5)))", "(cn:dn:2.5.13.2:=x)",
		"(:dn:2.5.13.1:=ou=groups,dc=ldap,dc=goauthentik,dc=io)", "(2.5.4.0=*)"} {
		p, _ := goldap.CompileFilter(s)
		f.Add(p.Bytes())
	}
	s := e2eSnapshot(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ber.DecodePacketErr(data)
		if err != nil {
			return
		}
		flt, err := filterFromPacket(p)
		if err != nil {
			return
		}
		var a, b []string
		for _, e := range s.entries {
			if flt.matches(e) {
				b = append(b, e.DN)
			}
		}
		s.run(&query{baseKey: s.prov.baseKey, scope: scopeSubtree, filter: flt}, func(e *entry) bool { a = append(a, e.DN); return true })
		if strings.Join(a, "|") != strings.Join(b, "|") {
			t.Fatalf("index %q, scan %q", a, b)
		}
	})
}
