package ldap

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
)

// maxDNLength bounds DNs parsed from clients; real ones are far shorter.
const maxDNLength = 4096

// escapeDNValue escapes an attribute value for a DN string as RFC 4514
// section 2.4 requires, so that a username or group name containing ",",
// "+" or "=" yields one unambiguous RDN.
func escapeDNValue(v string) string {
	if v == "" {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' || c == '=':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == 0:
			b.WriteString(`\00`)
		case (c == ' ' || c == '#') && i == 0, c == ' ' && i == len(v)-1:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// keyValue is an attribute value as it appears in a DN key: lower-cased,
// with every character that could separate RDNs hex-escaped. Keys compare
// with ==, and "," only ever separates RDNs, so suffix checks are exact.
func keyValue(v string) string {
	v = strings.ToLower(v)
	if !strings.ContainsAny(v, ",+\"\\<>;=# \x00") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case ',', '+', '"', '\\', '<', '>', ';', '=', '#', ' ', 0:
			fmt.Fprintf(&b, `\%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// rdnKey is one RDN's key.
func rdnKey(attr, value string) string {
	return keyValue(attr) + "=" + keyValue(value)
}

// dnKey is the canonical key of a parsed DN: types and values lower-cased,
// values escaped by [keyValue], no spaces. Multi-valued RDNs keep their
// order (a client sending them in another order gets no match, which is
// acceptable for the DNs this provider serves).
func dnKey(dn *goldap.DN) string {
	parts := make([]string, 0, len(dn.RDNs))
	for _, rdn := range dn.RDNs {
		vals := make([]string, 0, len(rdn.Attributes))
		for _, a := range rdn.Attributes {
			vals = append(vals, rdnKey(a.Type, a.Value))
		}
		parts = append(parts, strings.Join(vals, "+"))
	}
	return strings.Join(parts, ",")
}

// parseDN parses a client-sent DN, bounded in size.
func parseDN(s string) (*goldap.DN, error) {
	if len(s) > maxDNLength {
		return nil, errors.New("DN too long")
	}
	dn, err := goldap.ParseDN(s)
	if err != nil {
		return nil, fmt.Errorf("invalid DN: %w", err)
	}
	// RFC 4514 DNs are UTF-8. A hex escape such as \80 decodes to a
	// byte that is not, and such a value could not name a user or group
	// in the core, nor survive being written back into a DN.
	for _, rdn := range dn.RDNs {
		for _, a := range rdn.Attributes {
			if !utf8.ValidString(a.Value) {
				return nil, fmt.Errorf("invalid DN: value of %s is not UTF-8", a.Type)
			}
		}
	}
	return dn, nil
}

// keyOf parses s and returns its key.
func keyOf(s string) (string, error) {
	dn, err := parseDN(s)
	if err != nil {
		return "", err
	}
	return dnKey(dn), nil
}

// under reports whether key is base itself or below it.
func under(key, base string) bool {
	if base == "" {
		return true
	}
	return key == base || strings.HasSuffix(key, ","+base)
}

// parentKey returns the key without its first RDN.
func parentKey(key string) string {
	if i := strings.IndexByte(key, ','); i >= 0 {
		return key[i+1:]
	}
	return ""
}

// bindDNError says why a DN cannot be a bind DN. syntax is true when the
// DN cannot name a user whatever the directory holds (it does not parse,
// or its cn is empty or in hex form): the bind is refused with
// invalidDNSyntax. Otherwise the DN names something other than a user
// (another container, another attribute than cn) and the bind is refused
// with invalidCredentials, as a wrong password is.
type bindDNError struct {
	syntax bool
	msg    string
}

func (e *bindDNError) Error() string { return e.msg }

// bindUsername extracts USER from a bind DN cn=USER,ou=users,BASE, where
// usersKey is the key of ou=users,BASE. Anything else is a *bindDNError:
// the incumbent took the first cn of any DN under the base, so
// cn=bob,ou=groups,BASE bound as bob.
//
// Spaces around "=", "," and "+" are ignored, as RFC 2253 required of
// parsers and OpenLDAP does: cn= alice names alice. RFC 4514 forbids
// producing them unescaped but lets a server accept other
// representations (section 3); a name that starts or ends with a space
// is written escaped, cn=\ alice. The hex form (cn=#0C05...) is refused:
// RFC 4514 (section 2.4) uses it only for attribute types given as OIDs
// or values with no string form, a user name has one, and the decoded
// BER would have to be checked for a string type this parser does not
// report.
func bindUsername(bindDN, usersKey string) (string, error) {
	dn, err := parseDN(bindDN)
	if err != nil {
		return "", &bindDNError{syntax: true, msg: invalidBindDN(err)}
	}
	if len(dn.RDNs) < 2 {
		return "", &bindDNError{msg: "bind DN is not under ou=users"}
	}
	first := dn.RDNs[0]
	if len(first.Attributes) != 1 || !strings.EqualFold(first.Attributes[0].Type, "cn") {
		return "", &bindDNError{msg: "bind DN does not start with a single cn"}
	}
	rest := &goldap.DN{RDNs: dn.RDNs[1:]}
	if dnKey(rest) != usersKey {
		return "", &bindDNError{msg: "bind DN is not under ou=users"}
	}
	if firstValueIsHex(bindDN) {
		return "", &bindDNError{syntax: true,
			msg: "the cn of a bind DN must be a string, not the #hex form of RFC 4514: write cn=USER"}
	}
	name := first.Attributes[0].Value
	if name == "" {
		return "", &bindDNError{syntax: true, msg: "the cn of the bind DN is empty"}
	}
	return name, nil
}

// invalidBindDN is the message for a bind DN that parseDN refused.
func invalidBindDN(err error) string {
	return "the bind DN is not a valid DN (RFC 4514): " + strings.TrimPrefix(err.Error(), "invalid DN: ")
}

// firstValueIsHex reports whether the value of a DN's first attribute is
// in the hex form "#...". An attribute type holds no "=" and no escapes,
// so the first "=" ends it.
func firstValueIsHex(dn string) bool {
	i := strings.IndexByte(dn, '=')
	return i >= 0 && strings.HasPrefix(strings.TrimLeft(dn[i+1:], " "), "#")
}
