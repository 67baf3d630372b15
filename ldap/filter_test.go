package ldap

import (
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

const b = "dc=ldap,dc=goauthentik,dc=io"

// searchDNs runs a query over s and returns the DNs found.
func searchDNs(t *testing.T, s *snapshot, base string, scope int, flt string) []string {
	t.Helper()
	f, err := parseFilter(flt)
	if err != nil {
		t.Fatalf("parseFilter(%q): %v", flt, err)
	}
	key, err := keyOf(base)
	if err != nil {
		t.Fatal(err)
	}
	var dns []string
	s.run(&query{baseKey: key, scope: scope, filter: f}, func(e *entry) bool {
		dns = append(dns, e.DN)
		return true
	})
	return dns
}

func TestFilterEvaluation(t *testing.T) {
	users := []string{"cn=ak-outpost-4c5e0e1f,ou=users," + b, "cn=admin,ou=users," + b, "cn=viewer,ou=users," + b}
	tests := []struct {
		filter string
		want   []string
	}{
		{"(objectClass=user)", users},
		{"(OBJECTCLASS=USER)", users},
		{"(objectClass=*)", nil}, // checked by count below
		{"(cn=admin)", []string{users[1], "cn=admin,ou=virtual-groups," + b}},
		{"(cn=ADMIN)", []string{users[1], "cn=admin,ou=virtual-groups," + b}},
		{"(&(objectClass=user)(uid=uid-viewer))", users[2:3]},
		{"(mail=admin@GOAUTHENTIK.io)", users[1:2]},
		{"(&(objectClass=user)(cn=vie*))", users[2:3]},
		{"(&(objectClass=person)(cn=a*n))", []string{"cn=admin,ou=users," + b}},
		{"(cn=*dmi*)", []string{users[1], "cn=akadmin-group,ou=groups," + b, "cn=admin,ou=virtual-groups," + b}},
		{"(cn=a*x*n)", nil},
		{"(&(objectClass=user)(cn=*r))", users[2:3]},
		{"(&(objectClass=user)(!(cn=admin)))", []string{users[0], users[2]}},
		// authentik's "last objectClass wins" bug made this return groups only.
		{"(&(|(objectClass=user)(objectClass=group))(|(cn=admin)(cn=staff)))", []string{users[1], "cn=staff,ou=groups," + b, "cn=admin,ou=virtual-groups," + b}},
		{"(uidNumber>=2007)", users[1:3]},
		{"(uidNumber<=2007)", users[0:2]},
		{"(&(objectClass=user)(uidNumber<=900))", nil},
		{"(modifyTimestamp>=20260101000000Z)", users},
		{"(modifyTimestamp>=20270101000000Z)", nil},
		{"(createTimestamp<=20260102030405Z)", users},
		{"(&(objectClass=user)(cn~=ADMIN))", users[1:2]},
		{"(memberOf=cn=staff,ou=groups," + b + ")", []string{users[2], "cn=interns,ou=groups," + b}},
		{"(&(objectClass=user)(memberOf=CN=Staff, OU=Groups, DC=ldap,DC=goauthentik,DC=io))", users[2:3]},
		{"(&(objectClass=goauthentik.io/ldap/group)(member=cn=viewer,ou=users," + b + "))", []string{"cn=staff,ou=groups," + b}},
		{"(&(objectClass=group)(member=cn=viewer,ou=users," + b + "))", []string{"cn=staff,ou=groups," + b, "cn=viewer,ou=virtual-groups," + b}},
		{"(&(objectClass=posixGroup)(memberUid=viewer))", []string{"cn=staff,ou=groups," + b, "cn=viewer,ou=virtual-groups," + b}},
		{"(gidNumber=2009)", []string{users[2], "cn=viewer,ou=virtual-groups," + b}},
		{"(gidNumber=02009)", []string{users[2], "cn=viewer,ou=virtual-groups," + b}},
		{"(memberOf:1.2.840.113556.1.4.1941:=cn=akadmin-group,ou=groups," + b + ")", users[1:2]},
		{"(&(objectClass=user)(cn:=admin))", users[1:2]},
		// Unknown matching rule: Undefined, and NOT Undefined is Undefined.
		{"(cn:1.2.3.4:=admin)", nil},
		{"(!(cn:1.2.3.4:=admin))", nil},
		// Missing attribute: Undefined; NOT does not turn it true.
		{"(&(objectClass=user)(!(noSuchAttr=x)))", nil},
		{"(&(objectClass=user)(noSuchAttr=*))", nil},
		{"(&(objectClass=user)(!(noSuchAttr=*)))", users},
		{"(extraAttribute=bar)", users[1:2]},
		{"(ak-superuser=TRUE)", []string{users[1], "cn=akadmin-group,ou=groups," + b}},
		{"(ak-superuser=true)", []string{users[1], "cn=akadmin-group,ou=groups," + b}},
		{"(|(cn=nobody)(mail=nobody@x))", nil},
		{"(entryDN=cn=admin,ou=users," + b + ")", users[1:2]},
		// A type the schema publishes is found by any of its names and by
		// its OID, ignoring case.
		{"(commonName=admin)", []string{users[1], "cn=admin,ou=virtual-groups," + b}},
		{"(2.5.4.3=ADMIN)", []string{users[1], "cn=admin,ou=virtual-groups," + b}},
		{"(&(objectClass=user)(userid=uid-viewer))", users[2:3]},
		{"(0.9.2342.19200300.100.1.1=uid-viewer)", []string{users[2], "cn=viewer,ou=virtual-groups," + b}},
		{"(surName=vi ewer)", users[2:3]},
		{"(rfc822Mailbox=admin@goauthentik.io)", users[1:2]},
		{"(&(2.5.4.0=user)(uidNumber>=2007))", users[1:3]},
		{"(&(objectClass=user)(1.3.6.1.1.1.1.0<=2003))", users[0:1]},
		{"(goauthentik.io/ldap/superuser=TRUE)", []string{users[1], "cn=akadmin-group,ou=groups," + b}},
		{"(memberof=CN=staff,ou=groups," + b + ")", []string{users[2], "cn=interns,ou=groups," + b}},
		// The containers' commonName is cn.
		{"(cn=groups)", []string{"ou=groups," + b}},
		{"(organizationalUnitName=users)", []string{"ou=users," + b}},
		// Options name no attribute of these entries.
		{"(cn;lang-en=admin)", nil},
		{"(cn;binary=*)", nil},
		// An attribute the schema publishes and the entry lacks is False,
		// so NOT of it is True: the service account has no mail.
		{"(&(objectClass=user)(!(mail=admin@goauthentik.io)))", []string{users[0], users[2]}},
		{"(&(objectClass=user)(!(memberOf=cn=staff,ou=groups," + b + ")))", users[0:2]},
		// :dn: makes the values of the entry's DN count (RFC 4511
		// 4.5.1.7.7): every entry under ou=groups, and the container.
		{"(ou:dn:=groups)", []string{"ou=groups," + b, "cn=akadmin-group,ou=groups," + b, "cn=staff,ou=groups," + b, "cn=interns,ou=groups," + b}},
		{"(ou=groups)", []string{"ou=groups," + b}},
		{"(&(objectClass=user)(ou:dn:=USERS))", users},
		{"(&(objectClass=group)(organizationalUnitName:dn:caseIgnoreMatch:=virtual-groups))", []string{"cn=ak-outpost-4c5e0e1f,ou=virtual-groups," + b, "cn=admin,ou=virtual-groups," + b, "cn=viewer,ou=virtual-groups," + b}},
		{"(&(objectClass=user)(cn:dn:=viewer))", users[2:3]},
		{"(&(objectClass=user)(dc:dn:=goauthentik))", users},
		{"(&(objectClass=user)(dc:=goauthentik))", nil},
		// A rule without a type applies to every attribute it suits.
		{"(:caseExactMatch:=Vi Ewer)", users[2:3]},
		{"(&(objectClass=group)(:dn:2.5.13.2:=groups))", []string{"cn=akadmin-group,ou=groups," + b, "cn=staff,ou=groups," + b, "cn=interns,ou=groups," + b}},
		{"(:distinguishedNameMatch:=cn=interns,ou=groups," + b + ")", []string{"cn=staff,ou=groups," + b}},
		// caseExactMatch is exact; a rule that does not suit the type is
		// Undefined.
		{"(&(objectClass=user)(sn:caseExactMatch:=vi ewer))", nil},
		{"(&(objectClass=user)(sn:2.5.13.5:=Vi Ewer))", users[2:3]},
		{"(&(objectClass=user)(memberOf:caseIgnoreMatch:=cn=staff,ou=groups," + b + "))", nil},
		{"(&(objectClass=user)(uidNumber:integerMatch:=02009))", users[2:3]},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			s := e2eSnapshot(t)
			got := searchDNs(t, s, b, scopeSubtree, tt.filter)
			if tt.filter == "(objectClass=*)" {
				if len(got) != len(s.entries) {
					t.Errorf("got %d entries, want all %d", len(got), len(s.entries))
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			// The indexed and the scanning path agree.
			s.base.index = nil
			if scan := searchDNs(t, s, b, scopeSubtree, tt.filter); !slices.Equal(scan, got) {
				t.Errorf("scan got %q, index got %q", scan, got)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	s := e2eSnapshot(t)
	tests := []struct {
		base  string
		scope int
		want  int
		first string
	}{
		{b, scopeBase, 1, "DC=ldap,DC=goauthentik,DC=io"},
		{"DC=LDAP, dc=goauthentik,dc=io", scopeBase, 1, "DC=ldap,DC=goauthentik,DC=io"},
		{b, scopeOne, 3, "ou=users," + b},
		{"ou=users," + b, scopeOne, 3, "cn=ak-outpost-4c5e0e1f,ou=users," + b},
		{"ou=Users," + b, scopeSubtree, 4, "ou=users," + b},
		{"ou=users," + b, scopeChildren, 3, "cn=ak-outpost-4c5e0e1f,ou=users," + b},
		{"cn=admin,ou=users," + b, scopeBase, 1, "cn=admin,ou=users," + b},
		{"cn=admin,ou=users," + b, scopeOne, 0, ""},
		{"cn=nobody,ou=users," + b, scopeBase, 0, ""},
		{b, scopeSubtree, len(s.entries), "DC=ldap,DC=goauthentik,DC=io"},
	}
	for _, tt := range tests {
		got := searchDNs(t, s, tt.base, tt.scope, "(objectClass=*)")
		if len(got) != tt.want || len(got) > 0 && got[0] != tt.first {
			t.Errorf("base %q scope %d: got %d entries %q, want %d starting %q", tt.base, tt.scope, len(got), got, tt.want, tt.first)
		}
	}
}

// A comma escaped in a name must not make an entry look like a child of
// another one: scope checks work on parsed DNs, not string splits.
func TestScopeEscapedComma(t *testing.T) {
	p := e2eProvider(t)
	s := buildSnapshot(p, []user{{PK: 1, Username: "x,ou=users"}, {PK: 2, Username: "y"}}, nil, "test", true)
	got := searchDNs(t, s, "ou=users,"+b, scopeOne, "(objectClass=user)")
	if len(got) != 2 {
		t.Errorf("one-level under ou=users = %q, want both users", got)
	}
	if got := searchDNs(t, s, `cn=x\,ou=users,ou=users,`+b, scopeBase, "(objectClass=*)"); len(got) != 1 {
		t.Errorf("base search of escaped DN = %q", got)
	}
}

func TestFilterParseErrors(t *testing.T) {
	for _, f := range []string{"", "(", "(cn=a", "(&(cn=a)", "cn=a)", "(cn=\\zz)"} {
		if _, err := parseFilter(f); err == nil {
			t.Errorf("parseFilter(%q) succeeded", f)
		}
	}
	// Filters over the limits are refused with adminLimitExceeded, not
	// as malformed: 32 levels pass, 33 do not; 1024 elements pass, 1025
	// do not.
	nested := func(levels int) string {
		return strings.Repeat("(!", levels-1) + "(cn=a)" + strings.Repeat(")", levels-1)
	}
	wide := func(n int) string { return "(|" + strings.Repeat("(cn=a)", n-1) + ")" }
	for _, tt := range []struct {
		filter string
		code   uint16
	}{
		{nested(32), 0},
		{nested(33), goldap.LDAPResultAdminLimitExceeded},
		{nested(40), goldap.LDAPResultAdminLimitExceeded},
		{wide(1024), 0},
		{wide(1025), goldap.LDAPResultAdminLimitExceeded},
	} {
		_, err := parseFilter(tt.filter)
		code := uint16(0)
		if err != nil {
			code, _ = filterError(err)
		}
		if code != tt.code {
			t.Errorf("filter of %d bytes: code %d (%v), want %d", len(tt.filter), code, err, tt.code)
		}
	}
	p, _ := goldap.CompileFilter("(cn=a)")
	p.Tag = 12 // no such filter choice
	if code, msg := filterError(func() error { _, err := filterFromPacket(p); return err }()); code != goldap.LDAPResultProtocolError || !strings.Contains(msg, "invalid filter") {
		t.Errorf("malformed filter: %d %q", code, msg)
	}
}

func TestSelector(t *testing.T) {
	s := e2eSnapshot(t)
	users, _ := e2eDirectory()
	admin := s.prov.userEntry(&users[1])
	names := func(attrs []ldapserver.Attribute) []string {
		var out []string
		for _, a := range attrs {
			out = append(out, a.Type)
		}
		return out
	}
	tests := []struct {
		name  string
		attrs []string
		has   []string
		lacks []string
		count int
	}{
		{"empty list is all user attributes", nil, []string{"cn", "memberOf"}, []string{"createTimestamp"}, 15},
		{"star", []string{"*"}, []string{"cn"}, []string{"pwdChangedTime"}, 15},
		{"plus", []string{"+"}, []string{"createTimestamp", "modifyTimestamp", "pwdChangedTime"}, []string{"cn"}, 3},
		{"star and plus", []string{"*", "+"}, []string{"cn", "createTimestamp"}, nil, 18},
		{"only cn", []string{"cn"}, []string{"cn"}, []string{"uid"}, 1},
		{"case-insensitive", []string{"CN", "MAIL"}, []string{"cn", "mail"}, nil, 2},
		{"1.1", []string{"1.1"}, nil, []string{"cn"}, 0},
		{"by name operational", []string{"modifyTimestamp"}, []string{"modifyTimestamp"}, nil, 1},
		{"comma separated", []string{"uid, cn", "sn"}, []string{"uid", "cn", "sn"}, nil, 3},
		// Aliases and OIDs select the attribute, returned under the
		// entry's name, as OpenLDAP answers.
		{"alias", []string{"commonName", "SURNAME", "userid", "rfc822Mailbox"}, []string{"cn", "sn", "uid", "mail"}, []string{"commonName"}, 4},
		{"OID", []string{"2.5.4.3", "2.5.4.0", "1.3.6.1.1.1.1.0"}, []string{"cn", "objectClass", "uidNumber"}, nil, 3},
		{"alias and name once", []string{"cn", "commonName", "2.5.4.3"}, []string{"cn"}, nil, 1},
		{"operational by OID", []string{"2.5.18.1"}, []string{"createTimestamp"}, nil, 1},
		{"options select nothing", []string{"cn;lang-en", "mail;binary"}, nil, []string{"cn", "mail"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := names(newSelector(tt.attrs, false).apply(admin))
			if len(got) != tt.count {
				t.Errorf("got %d attributes %q, want %d", len(got), got, tt.count)
			}
			for _, h := range tt.has {
				if !slices.Contains(got, h) {
					t.Errorf("missing %s in %q", h, got)
				}
			}
			for _, l := range tt.lacks {
				if slices.Contains(got, l) {
					t.Errorf("unexpected %s in %q", l, got)
				}
			}
		})
	}
	for _, a := range newSelector([]string{"cn"}, true).apply(admin) {
		if a.Values != nil {
			t.Error("typesOnly returned values")
		}
	}
	// The root DSE answers "+" too.
	if got := newSelector([]string{"+"}, false).apply(rootDSE([]string{b}, "x")); len(got) == 0 {
		t.Error("root DSE returned nothing for +")
	}
}

func TestRestrictedView(t *testing.T) {
	users, _ := e2eDirectory()
	v := restrictedView(e2eProvider(t), &users[2], "test")
	got := searchDNs(t, v, "ou=users,"+b, scopeSubtree, "(objectClass=user)")
	if !slices.Equal(got, []string{"cn=viewer,ou=users," + b}) {
		t.Errorf("users seen = %q", got)
	}
	got = searchDNs(t, v, b, scopeSubtree, "(objectClass=group)")
	if !slices.Equal(got, []string{"cn=staff,ou=groups," + b, "cn=viewer,ou=virtual-groups," + b}) {
		t.Errorf("groups seen = %q", got)
	}
	si, _ := v.find("cn=staff,ou=groups," + b)
	staff := v.entries[si]
	if m := values(staff, "member"); !slices.Equal(m, []string{"cn=viewer,ou=users," + b}) {
		t.Errorf("staff members seen = %q, want only the user", m)
	}
	if m := values(staff, "memberOf"); len(m) != 0 {
		t.Errorf("staff parents seen = %q", m)
	}
}
