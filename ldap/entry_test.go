package ldap

import (
	"reflect"
	"slices"
	"testing"
)

func TestEntriesGolden(t *testing.T) {
	s := e2eSnapshot(t)
	golden(t, "entries.ldif", ldif(s.entries))
	golden(t, "rootdse.ldif", ldif([]*entry{rootDSE([]string{"dc=ldap,dc=goauthentik,dc=io"}, "test"), subschemaEntry()}))
}

func values(e *entry, name string) []string {
	if a, ok := e.get(name); ok {
		return a.Values
	}
	return nil
}

// The user entry authentik's e2e test compares, attribute by attribute.
func TestUserEntryMatchesE2E(t *testing.T) {
	s := e2eSnapshot(t)
	users, _ := e2eDirectory()
	admin := s.prov.userEntry(&users[1])
	svc := s.prov.userEntry(&users[0])
	if admin.DN != "cn=admin,ou=users,dc=ldap,dc=goauthentik,dc=io" {
		t.Errorf("DN = %q", admin.DN)
	}
	want := map[string][]string{
		"cn": {"admin"}, "sAMAccountName": {"admin"}, "name": {"admin"}, "displayName": {"admin"}, "sn": {"admin"},
		"mail": {"admin@goauthentik.io"}, "uid": {"uid-admin"},
		"objectClass": {"top", "person", "organizationalPerson", "inetOrgPerson", "user", "posixAccount", "goauthentik.io/ldap/user"},
		"uidNumber":   {"2007"}, "gidNumber": {"2007"},
		"memberOf":      {"cn=akadmin-group,ou=groups,dc=ldap,dc=goauthentik,dc=io"},
		"homeDirectory": {"/home/admin"}, "ak-active": {"TRUE"}, "ak-superuser": {"TRUE"}, "extraAttribute": {"bar"},
		"pwdChangedTime": {"20260203040506Z"}, "createTimestamp": {"20260102030405Z"}, "modifyTimestamp": {"20260203040506Z"},
	}
	if admin.len() != len(want) {
		t.Errorf("admin has %d attributes, want %d", admin.len(), len(want))
	}
	for name, vals := range want {
		if got := values(admin, name); !reflect.DeepEqual(got, vals) {
			t.Errorf("%s = %q, want %q", name, got, vals)
		}
	}
	// The service account has no email and no groups. authentik sends
	// one empty mail value and a memberOf without values; RFC 4511 4.1.7
	// allows neither, so both are left out.
	for _, name := range []string{"mail", "memberOf"} {
		if a, ok := svc.get(name); ok {
			t.Errorf("service account has %s %q, want none", name, a.Values)
		}
	}
}

// No entry holds an attribute without values, nor a non-DN attribute
// whose only value is empty: authentik sent memberOf without values for
// users in no group, supportedSASLMechanisms without values in the root
// DSE and mail: "" for users without email.
func TestNoEmptyAttributes(t *testing.T) {
	users, groups := e2eDirectory()
	users = append(users, user{PK: 11, Username: "blank", Name: "", Email: "", UID: "uid-blank",
		Attributes: map[string]any{"empty": "", "list": []any{"", "x"}, "nothing": []any{}}})
	groups = append(groups, group{PK: "g-empty", NumPK: 99, Name: "empty"})
	s := buildSnapshot(e2eProvider(t), users, groups, "test", true)
	all := append(append([]*entry{}, s.entries...), rootDSE(nil, "test"), rootDSE([]string{b}, "test"), subschemaEntry())
	for _, e := range all {
		for _, a := range e.attributes() {
			switch {
			case len(a.Values) == 0:
				t.Errorf("%q: %s has no values", e.DN, a.Name)
			case len(a.Values) == 1 && a.Values[0] == "" && attributeKind(attrKey(a.Name)) != matchDN:
				t.Errorf("%q: %s has only an empty value", e.DN, a.Name)
			}
			if slices.Contains(a.Values, "") && a.Name == "list" {
				t.Errorf("%q: custom attribute kept an empty value: %q", e.DN, a.Values)
			}
		}
	}
	bi, _ := s.find(s.prov.userKey("blank"))
	blank := s.entries[bi]
	for _, name := range []string{"mail", "name", "displayName", "sn", "memberOf", "empty", "nothing"} {
		if blank.has(name) {
			t.Errorf("user without name, email and groups has %s", name)
		}
	}
	if got := values(blank, "list"); !slices.Equal(got, []string{"x"}) {
		t.Errorf("list = %q, want the non-empty value", got)
	}
	// The root DSE keeps its DN-valued entryDN "", the root's own name.
	if got := values(rootDSE(nil, "test"), "entryDN"); !slices.Equal(got, []string{""}) {
		t.Errorf("root DSE entryDN = %q", got)
	}
}

func TestUserEntryOverrides(t *testing.T) {
	p := e2eProvider(t)
	tests := []struct {
		name     string
		attrs    map[string]any
		uid, gid string
	}{
		{"none", nil, "2005", "2005"},
		{"string uid", map[string]any{"uidNumber": "10001"}, "10001", "10001"},
		{"string gid", map[string]any{"gidNumber": "500"}, "2005", "500"},
		// authentik ignores JSON numbers for the derivation (#9533); we do not.
		{"number uid", map[string]any{"uidNumber": 10002.0}, "10002", "10002"},
		{"fractional ignored", map[string]any{"uidNumber": 1.5}, "1.5", "2005"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &user{PK: 5, Username: "u", Attributes: tt.attrs}
			e := p.userEntry(u)
			if got := values(e, "uidNumber"); !slices.Equal(got, []string{tt.uid}) {
				t.Errorf("uidNumber = %q, want %s", got, tt.uid)
			}
			if got := values(e, "gidNumber"); !slices.Equal(got, []string{tt.gid}) {
				t.Errorf("gidNumber = %q, want %s", got, tt.gid)
			}
			if got := values(p.virtualGroupEntry(u), "gidNumber"); tt.name != "fractional ignored" && !slices.Equal(got, []string{tt.gid}) {
				t.Errorf("virtual group gidNumber = %q, want %s", got, tt.gid)
			}
		})
	}
}

func TestFlattenAttributes(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		user string
		want []attribute
	}{
		{"nil value dropped", map[string]any{"foo": nil}, "", nil},
		{"string", map[string]any{"foo": "bar"}, "", []attribute{{Name: "foo", Values: []string{"bar"}}}},
		{"string list", map[string]any{"foo": []any{"bar"}}, "", []attribute{{Name: "foo", Values: []string{"bar"}}}},
		{"mixed list", map[string]any{"foo": []any{"foo", 6.0, nil, false, 1.5}}, "", []attribute{{Name: "foo", Values: []string{"foo", "6", "false", "1.5"}}}},
		{"key mapping", map[string]any{"goauthentik.io/user/sources": "x"}, "", []attribute{{Name: "goauthentikio-user-sources", Values: []string{"x"}}}},
		{"nested object", map[string]any{"settings": map[string]any{"locale": "en", "theme": map[string]any{"x": "y"}}}, "",
			[]attribute{{Name: "settings-locale", Values: []string{"en"}}, {Name: "settings-theme-x", Values: []string{"y"}}}},
		{"object in list is JSON", map[string]any{"foo": []any{map[string]any{"a": 1.0}}}, "", []attribute{{Name: "foo", Values: []string{`{"a":1}`}}}},
		{"username substitution", map[string]any{"homeDirectory": "/srv/%s"}, "bob", []attribute{{Name: "homeDirectory", Values: []string{"/srv/bob"}}}},
		{"no substitution for groups", map[string]any{"x": "%s"}, "", []attribute{{Name: "x", Values: []string{"%s"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := flattenAttributes(tt.in, tt.user)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// Custom attributes win over built-in ones, as in authentik.
	e := e2eProvider(t).userEntry(&user{PK: 1, Username: "x", Attributes: map[string]any{"homeDirectory": "/custom/%s"}})
	if got := values(e, "homeDirectory"); !slices.Equal(got, []string{"/custom/x"}) {
		t.Errorf("homeDirectory = %q", got)
	}
}

func TestEscapedNames(t *testing.T) {
	p := e2eProvider(t)
	tests := []struct{ name, dn string }{
		{"plain", "cn=plain,ou=users,dc=ldap,dc=goauthentik,dc=io"},
		{"a,b", `cn=a\,b,ou=users,dc=ldap,dc=goauthentik,dc=io`},
		{"a+b=c", `cn=a\+b\=c,ou=users,dc=ldap,dc=goauthentik,dc=io`},
		{" lead", `cn=\ lead,ou=users,dc=ldap,dc=goauthentik,dc=io`},
		{"#hash", `cn=\#hash,ou=users,dc=ldap,dc=goauthentik,dc=io`},
		{`back\slash"`, `cn=back\\slash\",ou=users,dc=ldap,dc=goauthentik,dc=io`},
	}
	for _, tt := range tests {
		dn := p.userDN(tt.name)
		if dn != tt.dn {
			t.Errorf("userDN(%q) = %q, want %q", tt.name, dn, tt.dn)
		}
		// The DN parses back to the same key and user name.
		k, err := keyOf(dn)
		if err != nil || k != p.userKey(tt.name) {
			t.Errorf("keyOf(%q) = %q, %v; want %q", dn, k, err, p.userKey(tt.name))
		}
		name, err := bindUsername(dn, p.usersKey)
		if err != nil || name != tt.name {
			t.Errorf("bindUsername(%q) = %q, %v", dn, name, err)
		}
	}
}
