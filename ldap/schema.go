package ldap

import "strings"

// OIDs this server implements and advertises. Unlike authentik, nothing is
// advertised that is not implemented (no sort, no VLV, no AD capabilities).
const (
	oidPagedResults = "1.2.840.113556.1.4.319"
	oidStartTLS     = "1.3.6.1.4.1.1466.20037"
	oidWhoAmI       = "1.3.6.1.4.1.4203.1.11.3"
	subschemaDN     = "cn=subschema"
)

// rootDSE is the entry at "", listing every served base DN.
func rootDSE(namingContexts []string, version string) *entry {
	return newEntry("", "", true, rootDSEAttributes(namingContexts, version))
}

func rootDSEAttributes(namingContexts []string, version string) []attribute {
	ctx := append([]string(nil), namingContexts...)
	root := []string{}
	if len(ctx) > 0 {
		root = ctx[:1]
	}
	return []attribute{
		{Name: "objectClass", Values: []string{"top"}},
		{Name: "entryDN", Values: []string{""}},
		{Name: "supportedLDAPVersion", Values: []string{"3"}},
		{Name: "supportedControl", Values: []string{oidPagedResults}},
		{Name: "supportedExtension", Values: []string{oidStartTLS, oidWhoAmI}},
		{Name: "supportedSASLMechanisms", Values: []string{}},
		{Name: "subschemaSubentry", Values: []string{subschemaDN}},
		{Name: "namingContexts", Values: ctx},
		{Name: "rootDomainNamingContext", Values: root},
		{Name: "vendorName", Values: []string{"goauthentik.io"}},
		{Name: "vendorVersion", Values: []string{"akoutpost LDAP " + version}},
	}
}

// subschemaEntry describes the attribute types and object classes the
// entries use, in RFC 4512 syntax, so schema-reading clients (ldap3 with
// get_info=ALL, Apache Directory Studio) understand them.
func subschemaEntry() *entry {
	return newEntry(subschemaDN, "cn=subschema", true, []attribute{
		{Name: "objectClass", Values: []string{"top", "subSchema"}},
		{Name: "cn", Values: []string{"subschema"}},
		{Name: "ldapSyntaxes", Values: []string{
			"( 1.3.6.1.4.1.1466.115.121.1.7 DESC 'Boolean' )",
			"( 1.3.6.1.4.1.1466.115.121.1.12 DESC 'DN' )",
			"( 1.3.6.1.4.1.1466.115.121.1.15 DESC 'Directory String' )",
			"( 1.3.6.1.4.1.1466.115.121.1.24 DESC 'Generalized Time' )",
			"( 1.3.6.1.4.1.1466.115.121.1.26 DESC 'IA5 String' )",
			"( 1.3.6.1.4.1.1466.115.121.1.27 DESC 'INTEGER' )",
			"( 1.3.6.1.4.1.1466.115.121.1.38 DESC 'OID' )",
			"( 1.3.6.1.4.1.1466.115.121.1.40 DESC 'Octet String' )",
		}},
		{Name: "attributeTypes", Values: schemaAttributeTypes},
		{Name: "objectClasses", Values: schemaObjectClasses},
	})
}

const (
	synBool   = "1.3.6.1.4.1.1466.115.121.1.7"
	synDN     = "1.3.6.1.4.1.1466.115.121.1.12"
	synString = "1.3.6.1.4.1.1466.115.121.1.15"
	synTime   = "1.3.6.1.4.1.1466.115.121.1.24"
	synIA5    = "1.3.6.1.4.1.1466.115.121.1.26"
	synInt    = "1.3.6.1.4.1.1466.115.121.1.27"
	synOID    = "1.3.6.1.4.1.1466.115.121.1.38"
)

// attributeType is one attribute type of the schema: its OID, its names
// (the first is its primary name), syntax and further RFC 4512 fields.
type attributeType struct {
	oid    string
	names  []string
	syntax string
	extra  string
}

// description renders t as an attributeTypes value (RFC 4512 4.1.2).
func (t *attributeType) description() string {
	s := "( " + t.oid + " NAME "
	if len(t.names) == 1 {
		s += "'" + t.names[0] + "'"
	} else {
		s += "("
		for _, n := range t.names {
			s += " '" + n + "'"
		}
		s += " )"
	}
	s += " SYNTAX " + t.syntax
	if t.extra != "" {
		s += " " + t.extra
	}
	return s + " )"
}

// attributeTypes: standard definitions (RFC 4519, 2307, 2798, AD) plus
// authentik's own under 1.3.6.1.4.1.26027.1.1.
var attributeTypes = []attributeType{
	{"2.5.4.0", []string{"objectClass"}, synOID, "EQUALITY objectIdentifierMatch"},
	{"2.5.4.3", []string{"cn", "commonName"}, synString, "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch"},
	{"2.5.4.4", []string{"sn", "surname"}, synString, "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch"},
	{"2.5.4.11", []string{"ou", "organizationalUnitName"}, synString, "EQUALITY caseIgnoreMatch"},
	{"2.5.4.31", []string{"member"}, synDN, "EQUALITY distinguishedNameMatch"},
	{"0.9.2342.19200300.100.1.1", []string{"uid", "userid"}, synString, "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch"},
	{"0.9.2342.19200300.100.1.3", []string{"mail", "rfc822Mailbox"}, synIA5, "EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch"},
	{"0.9.2342.19200300.100.1.25", []string{"dc", "domainComponent"}, synIA5, "EQUALITY caseIgnoreIA5Match SINGLE-VALUE"},
	{"2.16.840.1.113730.3.1.241", []string{"displayName"}, synString, "EQUALITY caseIgnoreMatch SINGLE-VALUE"},
	{"1.2.840.113556.1.4.1", []string{"name"}, synString, "EQUALITY caseIgnoreMatch SINGLE-VALUE"},
	{"1.2.840.113556.1.4.221", []string{"sAMAccountName"}, synString, "EQUALITY caseIgnoreMatch SINGLE-VALUE"},
	{"1.2.840.113556.1.2.102", []string{"memberOf"}, synDN, "EQUALITY distinguishedNameMatch"},
	{"1.3.6.1.1.1.1.0", []string{"uidNumber"}, synInt, "EQUALITY integerMatch ORDERING integerOrderingMatch SINGLE-VALUE"},
	{"1.3.6.1.1.1.1.1", []string{"gidNumber"}, synInt, "EQUALITY integerMatch ORDERING integerOrderingMatch SINGLE-VALUE"},
	{"1.3.6.1.1.1.1.3", []string{"homeDirectory"}, synIA5, "EQUALITY caseExactIA5Match SINGLE-VALUE"},
	{"1.3.6.1.1.1.1.12", []string{"memberUid"}, synIA5, "EQUALITY caseExactIA5Match"},
	{"1.3.6.1.4.1.26027.1.1.2", []string{"goauthentik.io/ldap/superuser", "ak-superuser"}, synBool, "EQUALITY booleanMatch SINGLE-VALUE"},
	{"1.3.6.1.4.1.26027.1.1.3", []string{"goauthentik.io/ldap/active", "ak-active"}, synBool, "EQUALITY booleanMatch SINGLE-VALUE"},
	{"1.3.6.1.4.1.26027.1.1.4", []string{"goauthentik.io/ldap/sources", "goauthentikio-user-sources"}, synString, "EQUALITY caseIgnoreMatch"},
	{"1.3.6.1.4.1.42.2.27.8.1.16", []string{"pwdChangedTime"}, synTime, "EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"},
	{"2.5.18.1", []string{"createTimestamp"}, synTime, "EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"},
	{"2.5.18.2", []string{"modifyTimestamp"}, synTime, "EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"},
	{"2.5.18.10", []string{"subschemaSubentry"}, synDN, "EQUALITY distinguishedNameMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"},
	{"1.3.6.1.1.20", []string{"entryDN"}, synDN, "EQUALITY distinguishedNameMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"},
	{"2.5.21.5", []string{"attributeTypes"}, synString, "USAGE directoryOperation"},
	{"2.5.21.6", []string{"objectClasses"}, synString, "USAGE directoryOperation"},
	{"1.3.6.1.4.1.1466.101.120.16", []string{"ldapSyntaxes"}, synString, "USAGE directoryOperation"},
	{"1.3.6.1.4.1.1466.101.120.5", []string{"namingContexts"}, synDN, "USAGE dSAOperation"},
	{"1.3.6.1.4.1.1466.101.120.7", []string{"supportedExtension"}, synOID, "USAGE dSAOperation"},
	{"1.3.6.1.4.1.1466.101.120.13", []string{"supportedControl"}, synOID, "USAGE dSAOperation"},
	{"1.3.6.1.4.1.1466.101.120.14", []string{"supportedSASLMechanisms"}, synString, "USAGE dSAOperation"},
	{"1.3.6.1.4.1.1466.101.120.15", []string{"supportedLDAPVersion"}, synInt, "USAGE dSAOperation"},
	{"1.3.6.1.4.1.1466.101.120.4", []string{"vendorName"}, synString, "SINGLE-VALUE NO-USER-MODIFICATION USAGE dSAOperation"},
	{"1.3.6.1.4.1.1466.101.120.6", []string{"vendorVersion"}, synString, "SINGLE-VALUE NO-USER-MODIFICATION USAGE dSAOperation"},
	{"1.2.840.113556.1.4.2", []string{"rootDomainNamingContext"}, synDN, "SINGLE-VALUE"},
	{"1.2.840.113556.1.4.1791", []string{"distinguishedName"}, synDN, "EQUALITY distinguishedNameMatch SINGLE-VALUE"},
}

// schemaAttributeTypes are the attributeTypes values of the subschema.
// Like attributeKeys, attributeKinds and primaryNames, it is computed once
// from attributeTypes and never modified.
var schemaAttributeTypes = func() []string {
	out := make([]string, len(attributeTypes))
	for i := range attributeTypes {
		out[i] = attributeTypes[i].description()
	}
	return out
}()

// attributeKeys maps each name and OID of a schema attribute type,
// lower-cased, to the type's key: its primary name, lower-cased.
var attributeKeys = func() map[string]string {
	m := make(map[string]string, 3*len(attributeTypes))
	for i := range attributeTypes {
		t := &attributeTypes[i]
		key := strings.ToLower(t.names[0])
		m[strings.ToLower(t.oid)] = key
		for _, n := range t.names {
			m[strings.ToLower(n)] = key
		}
	}
	return m
}()

// attributeKinds says how the values of a schema attribute type compare,
// from its syntax, by key.
var attributeKinds = func() map[string]matchKind {
	m := map[string]matchKind{}
	for i := range attributeTypes {
		t := &attributeTypes[i]
		switch t.syntax {
		case synDN:
			m[strings.ToLower(t.names[0])] = matchDN
		case synInt:
			m[strings.ToLower(t.names[0])] = matchInteger
		}
	}
	return m
}()

// attrKey is the key under which entries, filters, attribute selections
// and compare find an attribute description (RFC 4512 2.5): a type the
// schema publishes is found by any of its names or its OID, ignoring case
// (commonName, 2.5.4.3 and CN are all cn); any other type by its name,
// ignoring case. Options stay in the key, lower-cased: entries hold no
// attribute with options, so a description with options (cn;lang-en,
// cn;binary) names no attribute of theirs, as a server treats an option it
// does not support (RFC 4512 2.5.2).
func attrKey(desc string) string {
	base, opts, hasOpts := strings.Cut(desc, ";")
	key := strings.ToLower(base)
	if k, ok := attributeKeys[key]; ok {
		key = k
	}
	if hasOpts {
		return key + ";" + strings.ToLower(opts)
	}
	return key
}

// attributeKind says how the values of the attribute with key compare.
func attributeKind(key string) matchKind {
	return attributeKinds[key]
}

// primaryNames maps the key of each schema attribute type to its primary
// name.
var primaryNames = func() map[string]string {
	m := make(map[string]string, len(attributeTypes))
	for i := range attributeTypes {
		m[strings.ToLower(attributeTypes[i].names[0])] = attributeTypes[i].names[0]
	}
	return m
}()

// primaryName returns the schema's primary name for the attribute type
// with key, or "" for a key the schema does not know.
func primaryName(key string) string { return primaryNames[key] }

var schemaObjectClasses = []string{
	"( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
	"( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) )",
	"( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY ( ou ) )",
	"( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( uid $ mail $ displayName ) )",
	"( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL MAY ( sAMAccountName $ name $ memberOf ) )",
	"( 1.3.6.1.1.1.2.0 NAME 'posixAccount' SUP top AUXILIARY MUST ( cn $ uid $ uidNumber $ gidNumber $ homeDirectory ) )",
	"( 1.3.6.1.4.1.26027.1.1.1 NAME 'goauthentik.io/ldap/user' SUP organizationalPerson STRUCTURAL MAY ( ak-superuser $ ak-active $ sAMAccountName $ name $ memberOf $ pwdChangedTime ) )",
	"( 2.5.6.9 NAME 'groupOfNames' SUP top STRUCTURAL MUST cn MAY member )",
	"( 2.5.6.17 NAME 'groupOfUniqueNames' SUP top STRUCTURAL MUST cn )",
	"( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL MUST cn MAY ( member $ sAMAccountName $ memberOf ) )",
	"( 1.3.6.1.1.1.2.2 NAME 'posixGroup' SUP top AUXILIARY MUST ( cn $ gidNumber ) MAY memberUid )",
	"( 1.3.6.1.4.1.26027.1.1.5 NAME 'goauthentik.io/ldap/group' SUP top AUXILIARY MAY ( ak-superuser $ uid ) )",
	"( 1.3.6.1.4.1.26027.1.1.6 NAME 'goauthentik.io/ldap/virtual-group' SUP top AUXILIARY MAY ( ak-superuser $ uid ) )",
	"( 2.5.6.5 NAME 'organizationalUnit' SUP top STRUCTURAL MUST ou )",
	"( 2.16.840.1.113730.3.2.32 NAME 'nsContainer' SUP top STRUCTURAL MUST cn )",
	"( 0.9.2342.19200300.100.4.13 NAME 'domain' SUP top STRUCTURAL MUST dc )",
	"( 2.5.20.1 NAME 'subschema' AUXILIARY MAY ( attributeTypes $ objectClasses $ ldapSyntaxes ) )",
}
