package ldap

import (
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

func TestAttrKey(t *testing.T) {
	tests := []struct{ desc, key string }{
		{"cn", "cn"},
		{"CN", "cn"},
		{"commonName", "cn"},
		{"2.5.4.3", "cn"},
		{"surname", "sn"},
		{"userid", "uid"},
		{"rfc822Mailbox", "mail"},
		{"2.5.4.0", "objectclass"},
		{"memberof", "memberof"},
		{"1.2.840.113556.1.2.102", "memberof"},
		{"ak-superuser", "goauthentik.io/ldap/superuser"},
		{"goauthentik.io/ldap/superuser", "goauthentik.io/ldap/superuser"},
		{"extraAttribute", "extraattribute"},
		{"commonName;Lang-EN", "cn;lang-en"},
		{"cn;binary", "cn;binary"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := attrKey(tt.desc); got != tt.key {
			t.Errorf("attrKey(%q) = %q, want %q", tt.desc, got, tt.key)
		}
	}
	// Every name and OID the subschema publishes resolves to its type.
	for i := range attributeTypes {
		at := &attributeTypes[i]
		want := strings.ToLower(at.names[0])
		for _, n := range append([]string{at.oid}, at.names...) {
			if got := attrKey(strings.ToUpper(n)); got != want {
				t.Errorf("attrKey(%q) = %q, want %q", n, got, want)
			}
		}
		if primaryName(want) != at.names[0] {
			t.Errorf("primaryName(%q) = %q", want, primaryName(want))
		}
	}
	if attributeKind("member") != matchDN || attributeKind("uidnumber") != matchInteger || attributeKind("cn") != matchString {
		t.Error("attribute kinds do not follow the syntaxes")
	}
}

// Aliases and OIDs the subschema publishes work over the wire, in both
// search modes: in filters (in direct mode, pushed down to the API as the
// attribute's primary name), in the attribute list of a search and in
// compare. Entries come back under the server's names. No attribute is
// sent without values, except to a typesOnly search.
func TestAttributeAliasesOverTheWire(t *testing.T) {
	for _, mode := range []string{"cached", "direct"} {
		t.Run(mode, func(t *testing.T) { testAttributeAliases(t, mode) })
	}
}

func testAttributeAliases(t *testing.T, searchMode string) {
	tp := startProvider(t, searchMode, "direct")
	c := tp.dial(t)
	if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(&(2.5.4.0=user)(commonName=admin))", []string{"surname", "2.5.4.3", "RFC822MAILBOX", "userid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("search = %+v, %v", res, err)
	}
	var names []string
	for _, a := range res.Entries[0].Attributes {
		names = append(names, a.Name)
		if len(a.Values) == 0 {
			t.Errorf("%s sent without values", a.Name)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"cn", "mail", "sn", "uid"}) {
		t.Errorf("attributes = %q, want cn mail sn uid", names)
	}
	if searchMode == "direct" {
		tp.core.mu.Lock()
		pushed := slices.ContainsFunc(tp.core.requests, func(r string) bool {
			return strings.HasPrefix(r, "GET /api/v3/core/users/?") && strings.Contains(r, "username=admin")
		})
		tp.core.mu.Unlock()
		if !pushed {
			t.Error("(commonName=admin) was not pushed down to the API as username=admin")
		}
	}

	// typesOnly sends the types that exist, without values.
	res, err = c.Search(goldap.NewSearchRequest(userDN("admin"), goldap.ScopeBaseObject, 0, 0, 0, true,
		"(objectClass=*)", []string{"commonName", "memberOf", "noSuchAttribute"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("typesOnly search = %+v, %v", res, err)
	}
	names = names[:0]
	for _, a := range res.Entries[0].Attributes {
		names = append(names, a.Name)
		if len(a.Values) != 0 {
			t.Errorf("typesOnly: %s sent with values", a.Name)
		}
	}
	if !slices.Equal(names, []string{"cn", "memberOf"}) {
		t.Errorf("typesOnly attributes = %q", names)
	}

	// A user without email and groups: no mail, no memberOf.
	res, err = c.Search(goldap.NewSearchRequest(userDN("mfa"), goldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=*)", []string{"*", "+"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("search mfa = %+v, %v", res, err)
	}
	for _, a := range res.Entries[0].Attributes {
		if len(a.Values) == 0 || strings.EqualFold(a.Name, "mail") || strings.EqualFold(a.Name, "memberOf") {
			t.Errorf("mfa: %s = %q", a.Name, a.Values)
		}
	}
	if _, err := c.Compare(userDN("mfa"), "memberOf", "cn=staff,ou=groups,"+base); resultCode(err) != goldap.LDAPResultNoSuchAttribute {
		t.Errorf("compare memberOf of a user in no group: %v, want noSuchAttribute", err)
	}

	for _, tt := range []struct {
		attr, value string
		want        uint16
	}{
		{"commonName", "ADMIN", goldap.LDAPResultCompareTrue},
		{"2.5.4.3", "admin", goldap.LDAPResultCompareTrue},
		{"rfc822Mailbox", "admin@goauthentik.io", goldap.LDAPResultCompareTrue},
		{"surname", "nobody", goldap.LDAPResultCompareFalse},
		{"1.2.840.113556.1.2.102", "cn=nobody,ou=groups," + base, goldap.LDAPResultCompareFalse},
		{"cn;lang-en", "admin", goldap.LDAPResultNoSuchAttribute},
		{"noSuchAttribute", "x", goldap.LDAPResultNoSuchAttribute},
	} {
		ok, err := c.Compare(userDN("admin"), tt.attr, tt.value)
		got := uint16(goldap.LDAPResultCompareFalse)
		switch {
		case err != nil:
			got = resultCode(err)
		case ok:
			got = goldap.LDAPResultCompareTrue
		}
		if got != tt.want {
			t.Errorf("compare %s=%s: %d (%v), want %d", tt.attr, tt.value, got, err, tt.want)
		}
	}
}
