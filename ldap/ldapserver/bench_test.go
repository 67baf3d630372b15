package ldapserver

import (
	"fmt"
	"testing"

	ldap "github.com/go-ldap/ldap/v3"
)

// benchEntry is shaped like an authentik user entry.
func benchEntry() *Entry {
	e := &Entry{DN: "cn=alice,ou=users,dc=ldap,dc=goauthentik,dc=io"}
	add := func(t string, v ...string) { e.Attributes = append(e.Attributes, Attribute{Type: t, Values: v}) }
	add("cn", "alice")
	add("uid", "4c2f1a0e8e6b4f6a9d1b2c3d4e5f60718293a4b5c6d7e8f9")
	add("sAMAccountName", "alice")
	add("name", "Alice Example")
	add("displayName", "Alice Example")
	add("mail", "alice@example.org")
	add("objectClass", "top", "person", "organizationalPerson", "inetOrgPerson", "user", "posixAccount", "goauthentik.io/ldap/user")
	add("uidNumber", "2001")
	add("gidNumber", "2001")
	add("homeDirectory", "/home/alice")
	add("ak-active", "TRUE")
	add("ak-superuser", "FALSE")
	var groups []string
	for i := range 10 {
		groups = append(groups, fmt.Sprintf("cn=group%d,ou=groups,dc=ldap,dc=goauthentik,dc=io", i))
	}
	add("memberOf", groups...)
	return e
}

func BenchmarkEncodeEntry(b *testing.B) {
	e := benchEntry()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = len(encodeEntry(42, e, false))
	}
	b.SetBytes(int64(n))
}

func BenchmarkDecodeSearchRequest(b *testing.B) {
	f, err := ldap.CompileFilter("(&(objectClass=user)(|(cn=alice)(mail=alice@*)(memberOf=cn=admins,ou=groups,dc=ldap,dc=goauthentik,dc=io)))")
	if err != nil {
		b.Fatal(err)
	}
	var bld builder
	bld.beginMessage(7, tagSearchRequest)
	bld.string(classUniversal|tagOctetString, "dc=ldap,dc=goauthentik,dc=io")
	bld.int(classUniversal|tagEnumerated, 2)
	bld.int(classUniversal|tagEnumerated, 0)
	bld.int(classUniversal|tagInteger, 0)
	bld.int(classUniversal|tagInteger, 0)
	bld.buf = append(bld.buf, classUniversal|tagBoolean, 1, 0)
	bld.raw(f.Bytes())
	bld.begin(classUniversal | tagSequence)
	for _, a := range []string{"cn", "mail", "memberOf"} {
		bld.string(classUniversal|tagOctetString, a)
	}
	bld.end()
	bld.endMessage(nil)
	msg := bld.buf
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		m, err := decodeMessage(msg, DefaultMaxFilterDepth+5)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseSearch(m.op, DefaultMaxFilterDepth); err != nil {
			b.Fatal(err)
		}
	}
}
