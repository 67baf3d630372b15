package ldap

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

func at(oid, names, syntax, extra string) string {
	s := "( " + oid + " NAME " + names + " SYNTAX " + syntax
	if extra != "" {
		s += " " + extra
	}
	return s + " )"
}

// schemaAttributeTypes: standard definitions (RFC 4519, 2307, 2798, AD)
// plus authentik's own under 1.3.6.1.4.1.26027.1.1.
var schemaAttributeTypes = []string{
	at("2.5.4.0", "'objectClass'", synOID, "EQUALITY objectIdentifierMatch"),
	at("2.5.4.3", "( 'cn' 'commonName' )", synString, "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch"),
	at("2.5.4.4", "( 'sn' 'surname' )", synString, "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch"),
	at("2.5.4.11", "( 'ou' 'organizationalUnitName' )", synString, "EQUALITY caseIgnoreMatch"),
	at("2.5.4.31", "'member'", synDN, "EQUALITY distinguishedNameMatch"),
	at("0.9.2342.19200300.100.1.1", "( 'uid' 'userid' )", synString, "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch"),
	at("0.9.2342.19200300.100.1.3", "( 'mail' 'rfc822Mailbox' )", synIA5, "EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch"),
	at("0.9.2342.19200300.100.1.25", "( 'dc' 'domainComponent' )", synIA5, "EQUALITY caseIgnoreIA5Match SINGLE-VALUE"),
	at("2.16.840.1.113730.3.1.241", "'displayName'", synString, "EQUALITY caseIgnoreMatch SINGLE-VALUE"),
	at("1.2.840.113556.1.4.1", "'name'", synString, "EQUALITY caseIgnoreMatch SINGLE-VALUE"),
	at("1.2.840.113556.1.4.221", "'sAMAccountName'", synString, "EQUALITY caseIgnoreMatch SINGLE-VALUE"),
	at("1.2.840.113556.1.2.102", "'memberOf'", synDN, "EQUALITY distinguishedNameMatch"),
	at("1.3.6.1.1.1.1.0", "'uidNumber'", synInt, "EQUALITY integerMatch ORDERING integerOrderingMatch SINGLE-VALUE"),
	at("1.3.6.1.1.1.1.1", "'gidNumber'", synInt, "EQUALITY integerMatch ORDERING integerOrderingMatch SINGLE-VALUE"),
	at("1.3.6.1.1.1.1.3", "'homeDirectory'", synIA5, "EQUALITY caseExactIA5Match SINGLE-VALUE"),
	at("1.3.6.1.1.1.1.12", "'memberUid'", synIA5, "EQUALITY caseExactIA5Match"),
	at("1.3.6.1.4.1.26027.1.1.2", "( 'goauthentik.io/ldap/superuser' 'ak-superuser' )", synBool, "EQUALITY booleanMatch SINGLE-VALUE"),
	at("1.3.6.1.4.1.26027.1.1.3", "( 'goauthentik.io/ldap/active' 'ak-active' )", synBool, "EQUALITY booleanMatch SINGLE-VALUE"),
	at("1.3.6.1.4.1.26027.1.1.4", "( 'goauthentik.io/ldap/sources' 'goauthentikio-user-sources' )", synString, "EQUALITY caseIgnoreMatch"),
	at("1.3.6.1.4.1.42.2.27.8.1.16", "'pwdChangedTime'", synTime, "EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"),
	at("2.5.18.1", "'createTimestamp'", synTime, "EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"),
	at("2.5.18.2", "'modifyTimestamp'", synTime, "EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"),
	at("2.5.18.10", "'subschemaSubentry'", synDN, "EQUALITY distinguishedNameMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"),
	at("1.3.6.1.1.20", "'entryDN'", synDN, "EQUALITY distinguishedNameMatch SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation"),
	at("2.5.21.5", "'attributeTypes'", synString, "USAGE directoryOperation"),
	at("2.5.21.6", "'objectClasses'", synString, "USAGE directoryOperation"),
	at("1.3.6.1.4.1.1466.101.120.16", "'ldapSyntaxes'", synString, "USAGE directoryOperation"),
	at("1.3.6.1.4.1.1466.101.120.5", "'namingContexts'", synDN, "USAGE dSAOperation"),
	at("1.3.6.1.4.1.1466.101.120.7", "'supportedExtension'", synOID, "USAGE dSAOperation"),
	at("1.3.6.1.4.1.1466.101.120.13", "'supportedControl'", synOID, "USAGE dSAOperation"),
	at("1.3.6.1.4.1.1466.101.120.14", "'supportedSASLMechanisms'", synString, "USAGE dSAOperation"),
	at("1.3.6.1.4.1.1466.101.120.15", "'supportedLDAPVersion'", synInt, "USAGE dSAOperation"),
	at("1.3.6.1.4.1.1466.101.120.4", "'vendorName'", synString, "SINGLE-VALUE NO-USER-MODIFICATION USAGE dSAOperation"),
	at("1.3.6.1.4.1.1466.101.120.6", "'vendorVersion'", synString, "SINGLE-VALUE NO-USER-MODIFICATION USAGE dSAOperation"),
	at("1.2.840.113556.1.4.2", "'rootDomainNamingContext'", synDN, "SINGLE-VALUE"),
	at("1.2.840.113556.1.4.1791", "'distinguishedName'", synDN, "EQUALITY distinguishedNameMatch SINGLE-VALUE"),
}

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
