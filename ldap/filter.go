package ldap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// filterOp is a filter choice, numbered as RFC 4511 tags them.
type filterOp int

const (
	opAnd        filterOp = goldap.FilterAnd
	opOr         filterOp = goldap.FilterOr
	opNot        filterOp = goldap.FilterNot
	opEqual      filterOp = goldap.FilterEqualityMatch
	opSubstrings filterOp = goldap.FilterSubstrings
	opGreater    filterOp = goldap.FilterGreaterOrEqual
	opLess       filterOp = goldap.FilterLessOrEqual
	opPresent    filterOp = goldap.FilterPresent
	opApprox     filterOp = goldap.FilterApproxMatch
	opExtensible filterOp = goldap.FilterExtensibleMatch
)

// Limits on client filters: deeper or larger filters are refused with
// adminLimitExceeded rather than evaluated.
const (
	maxFilterDepth = 32
	maxFilterNodes = 1024
)

// filterLimitError is a filter beyond maxFilterDepth or maxFilterNodes:
// well-formed, but more than the server evaluates.
type filterLimitError struct{ msg string }

func (e *filterLimitError) Error() string { return e.msg }

// filterError returns the result code and message for a filter that did
// not convert: adminLimitExceeded for one over the limits, protocolError
// for one that is malformed.
func filterError(err error) (uint16, string) {
	var le *filterLimitError
	if errors.As(err, &le) {
		return goldap.LDAPResultAdminLimitExceeded, le.msg
	}
	return goldap.LDAPResultProtocolError, "invalid filter: " + err.Error()
}

// filter is a parsed search filter.
type filter struct {
	Op       filterOp
	Children []*filter
	// Attr is the attribute description as sent, or, when it has no
	// options, the primary name of a type the schema publishes (cn for
	// commonName or 2.5.4.3).
	Attr  string
	Value string
	// Substrings.
	Initial string
	Any     []string
	Final   string
	// Extensible match: the rule as sent, and the dnAttributes flag
	// (":dn:"), which makes the values of the entry's DN count too.
	Rule         string
	DNAttributes bool

	// key is attrKey(Attr), how entries find the attribute; known says
	// whether the schema publishes its type.
	key   string
	known bool
	// kind is how Attr's values compare, fixed at parse time.
	kind matchKind
	// dnKey is Value's DN key when Value is compared as a DN and parses.
	dnKey string
	// rule is the extensible match's rule.
	rule matchRule
}

type matchKind int

const (
	matchString matchKind = iota // case-insensitive string
	matchInteger
	matchDN
)

// matchRule is a matching rule an extensible match can name.
type matchRule int

const (
	ruleEquality   matchRule = iota // none named: the attribute's equality
	ruleCaseIgnore                  // caseIgnoreMatch and its IA5, OID and boolean kin
	ruleCaseExact                   // caseExactMatch, caseExactIA5Match
	ruleDN                          // distinguishedNameMatch; AD's in-chain rule as plain DN equality
	ruleInteger                     // integerMatch
	ruleUnknown
)

// ruleOf resolves a matching rule by name or OID.
func ruleOf(s string) matchRule {
	switch strings.ToLower(s) {
	case "":
		return ruleEquality
	case "caseignorematch", "2.5.13.2", "caseignoreia5match", "1.3.6.1.4.1.1466.109.114.2",
		"objectidentifiermatch", "2.5.13.0", "booleanmatch", "2.5.13.13":
		return ruleCaseIgnore
	case "caseexactmatch", "2.5.13.5", "caseexactia5match", "1.3.6.1.4.1.1466.109.114.1":
		return ruleCaseExact
	case "distinguishednamematch", "2.5.13.1", "1.2.840.113556.1.4.1941":
		return ruleDN
	case "integermatch", "2.5.13.14":
		return ruleInteger
	}
	return ruleUnknown
}

// appliesTo reports whether rule r may be used with values of kind k
// (RFC 4511 4.5.1.7.7: otherwise the filter item is Undefined).
func (r matchRule) appliesTo(k matchKind) bool {
	switch r {
	case ruleEquality:
		return true
	case ruleCaseIgnore, ruleCaseExact:
		return k == matchString
	case ruleDN:
		return k == matchDN
	case ruleInteger:
		return k == matchInteger
	}
	return false
}

// parseFilter compiles a string filter (RFC 4515), for tests and callers
// that have one.
func parseFilter(s string) (*filter, error) {
	p, err := goldap.CompileFilter(s)
	if err != nil {
		return nil, err
	}
	return filterFromPacket(p)
}

// filterFromPacket converts a BER-encoded filter (RFC 4511 Filter) as it
// arrives in a SearchRequest. Its top level is depth 1, as the protocol
// layer counts, so both refuse the same filters for depth.
func filterFromPacket(p *ber.Packet) (*filter, error) {
	nodes := 0
	return convertFilter(p, 1, &nodes)
}

func packetString(p *ber.Packet) string {
	if p == nil || p.Data == nil {
		return ""
	}
	return string(p.Data.Bytes())
}

func convertFilter(p *ber.Packet, depth int, nodes *int) (*filter, error) {
	if p == nil {
		return nil, errors.New("missing filter")
	}
	*nodes++
	if depth > maxFilterDepth {
		return nil, &filterLimitError{fmt.Sprintf("filter nested deeper than %d levels", maxFilterDepth)}
	}
	if *nodes > maxFilterNodes {
		return nil, &filterLimitError{fmt.Sprintf("filter has more than %d elements", maxFilterNodes)}
	}
	if p.ClassType != ber.ClassContext {
		return nil, fmt.Errorf("filter element has class %d, want context-specific", p.ClassType)
	}
	f := &filter{Op: filterOp(p.Tag)}
	switch f.Op {
	case opAnd, opOr:
		for _, c := range p.Children {
			cf, err := convertFilter(c, depth+1, nodes)
			if err != nil {
				return nil, err
			}
			f.Children = append(f.Children, cf)
		}
		return f, nil
	case opNot:
		if len(p.Children) != 1 {
			return nil, errors.New("not filter needs exactly one element")
		}
		cf, err := convertFilter(p.Children[0], depth+1, nodes)
		if err != nil {
			return nil, err
		}
		f.Children = []*filter{cf}
		return f, nil
	case opEqual, opGreater, opLess, opApprox:
		if len(p.Children) != 2 {
			return nil, errors.New("attribute value assertion needs two elements")
		}
		f.Attr, f.Value = packetString(p.Children[0]), packetString(p.Children[1])
	case opPresent:
		f.Attr = packetString(p)
		if f.Attr == "" && len(p.Children) == 0 && p.Value != nil {
			f.Attr, _ = p.Value.(string)
		}
	case opSubstrings:
		if len(p.Children) != 2 {
			return nil, errors.New("substring filter needs two elements")
		}
		f.Attr = packetString(p.Children[0])
		if len(p.Children[1].Children) == 0 {
			return nil, errors.New("substring filter without substrings")
		}
		for i, c := range p.Children[1].Children {
			v := strings.ToLower(packetString(c))
			switch c.Tag {
			case goldap.FilterSubstringsInitial:
				if i != 0 {
					return nil, errors.New("substring initial not first")
				}
				f.Initial = v
			case goldap.FilterSubstringsAny:
				f.Any = append(f.Any, v)
			case goldap.FilterSubstringsFinal:
				if i != len(p.Children[1].Children)-1 {
					return nil, errors.New("substring final not last")
				}
				f.Final = v
			default:
				return nil, fmt.Errorf("unknown substring choice %d", c.Tag)
			}
		}
	case opExtensible:
		for _, c := range p.Children {
			switch c.Tag {
			case goldap.MatchingRuleAssertionMatchingRule:
				f.Rule = packetString(c)
			case goldap.MatchingRuleAssertionType:
				f.Attr = packetString(c)
			case goldap.MatchingRuleAssertionMatchValue:
				f.Value = packetString(c)
			case goldap.MatchingRuleAssertionDNAttributes:
				f.DNAttributes = berBool(c)
			}
		}
		f.rule = ruleOf(f.Rule)
	default:
		return nil, fmt.Errorf("unknown filter choice %d", p.Tag)
	}
	f.setAttribute(f.Attr)
	return f, nil
}

// setAttribute resolves the filter's attribute description through the
// schema and prepares the assertion value for comparison.
func (f *filter) setAttribute(desc string) {
	f.Attr, f.key = desc, attrKey(desc)
	if name := primaryName(f.key); name != "" {
		f.Attr, f.known = name, true
	}
	f.kind = attributeKind(f.key)
	if f.kind == matchDN || f.rule == ruleDN {
		if k, err := keyOf(f.Value); err == nil {
			f.dnKey = k
		}
	}
}

// equalityFilter is the assertion of a compare operation (RFC 4511
// 4.10): attribute desc has value.
func equalityFilter(desc, value string) *filter {
	f := &filter{Op: opEqual, Value: value}
	f.setAttribute(desc)
	return f
}

// berBool reads a BOOLEAN as go-ldap's compiler (Value) or a decoder
// (content bytes) leaves it.
func berBool(p *ber.Packet) bool {
	if v, ok := p.Value.(bool); ok {
		return v
	}
	if p.Data != nil {
		if b := p.Data.Bytes(); len(b) == 1 {
			return b[0] != 0
		}
	}
	return false
}

// tri is RFC 4511's three-valued filter result.
type tri int8

const (
	triFalse tri = iota
	triTrue
	triUndefined
)

// matches reports whether e matches f (Undefined counts as no match).
func (f *filter) matches(e *entry) bool { return f.eval(e) == triTrue }

func (f *filter) eval(e *entry) tri {
	switch f.Op {
	case opAnd:
		res := triTrue
		for _, c := range f.Children {
			switch c.eval(e) {
			case triFalse:
				return triFalse
			case triUndefined:
				res = triUndefined
			}
		}
		return res
	case opOr:
		res := triFalse
		for _, c := range f.Children {
			switch c.eval(e) {
			case triTrue:
				return triTrue
			case triUndefined:
				res = triUndefined
			}
		}
		return res
	case opNot:
		switch f.Children[0].eval(e) {
		case triTrue:
			return triFalse
		case triFalse:
			return triTrue
		}
		return triUndefined
	case opPresent:
		if f.key == "objectclass" {
			return triTrue
		}
		if _, ok := e.find(f.key); ok {
			return triTrue
		}
		return triFalse
	case opExtensible:
		return f.evalExtensible(e)
	}
	i, ok := e.find(f.key)
	if !ok {
		if f.key == "entrydn" || f.key == "distinguishedname" {
			return f.valueMatch(e.DN)
		}
		return f.absent()
	}
	return f.valuesMatch(e.attrValues(i))
}

// absent is the result of an assertion on an attribute the entry lacks:
// False for a type the schema publishes, as OpenLDAP answers; Undefined
// for one it does not know (RFC 4511 4.5.1.7), so NOT of it stays false.
func (f *filter) absent() tri {
	if f.known {
		return triFalse
	}
	return triUndefined
}

// valuesMatch is True when one of vals matches, else Undefined when one
// could not be compared, else False.
func (f *filter) valuesMatch(vals []string) tri {
	res := triFalse
	for _, v := range vals {
		switch f.valueMatch(v) {
		case triTrue:
			return triTrue
		case triUndefined:
			res = triUndefined
		}
	}
	return res
}

// valueMatch compares one value against an equality, ordering, approximate
// or substring assertion.
func (f *filter) valueMatch(v string) tri {
	switch f.Op {
	case opEqual, opApprox:
		return f.equal(v)
	case opSubstrings:
		return boolTri(substringMatch(strings.ToLower(v), f.Initial, f.Any, f.Final))
	case opGreater, opLess:
		c, ok := f.compare(v)
		if !ok {
			return triUndefined
		}
		if f.Op == opGreater {
			return boolTri(c >= 0)
		}
		return boolTri(c <= 0)
	}
	return triUndefined
}

func (f *filter) equal(v string) tri {
	switch f.kind {
	case matchInteger:
		return f.integerEqual(v)
	case matchDN:
		return f.dnEqual(v)
	}
	return boolTri(strings.EqualFold(v, f.Value))
}

func (f *filter) integerEqual(v string) tri {
	a, err1 := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	b, err2 := strconv.ParseInt(strings.TrimSpace(f.Value), 10, 64)
	if err1 != nil || err2 != nil {
		return boolTri(strings.EqualFold(v, f.Value))
	}
	return boolTri(a == b)
}

func (f *filter) dnEqual(v string) tri {
	if strings.EqualFold(v, f.Value) {
		return triTrue
	}
	if f.dnKey == "" {
		return triFalse
	}
	k, err := keyOf(v)
	return boolTri(err == nil && k == f.dnKey)
}

// compare orders v against the assertion value: integers numerically,
// everything else (GeneralizedTime included, whose fixed format orders
// lexically) case-insensitively.
func (f *filter) compare(v string) (int, bool) {
	if f.kind == matchInteger {
		a, err1 := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		b, err2 := strconv.ParseInt(strings.TrimSpace(f.Value), 10, 64)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		switch {
		case a < b:
			return -1, true
		case a > b:
			return 1, true
		}
		return 0, true
	}
	return strings.Compare(strings.ToLower(v), strings.ToLower(f.Value)), true
}

// ruleMatch compares one value of kind k with the extensible match's rule.
func (f *filter) ruleMatch(k matchKind, v string) tri {
	if !f.rule.appliesTo(k) {
		return triUndefined
	}
	switch f.rule {
	case ruleCaseExact:
		return boolTri(v == f.Value)
	case ruleDN:
		return f.dnEqual(v)
	case ruleInteger:
		return f.integerEqual(v)
	case ruleCaseIgnore:
		return boolTri(strings.EqualFold(v, f.Value))
	}
	return f.equal(v)
}

// evalExtensible evaluates an extensible match (RFC 4511 4.5.1.7.7). With
// a type, the rule (or, without one, the type's equality) is applied to
// that attribute's values; without a type, to every attribute whose
// values the rule applies to. With dnAttributes (":dn:"), the attribute
// values of the entry's DN count too: (ou:dn:=groups) matches every entry
// below ou=groups. The rules known are the equality rules by name or OID
// and AD's LDAP_MATCHING_RULE_IN_CHAIN, evaluated as DN equality (memberOf
// is direct membership only); any other rule, or one that does not apply
// to the type, is Undefined.
func (f *filter) evalExtensible(e *entry) tri {
	if f.rule == ruleUnknown || f.key == "" && f.rule == ruleEquality {
		return triUndefined
	}
	res := triFalse
	merge := func(t tri) bool {
		switch t {
		case triTrue:
			return true
		case triUndefined:
			res = triUndefined
		}
		return false
	}
	if f.key != "" {
		if !f.rule.appliesTo(f.kind) {
			return triUndefined
		}
		if i, ok := e.find(f.key); ok {
			for _, v := range e.attrValues(i) {
				if merge(f.ruleMatch(f.kind, v)) {
					return triTrue
				}
			}
		} else if f.key == "entrydn" || f.key == "distinguishedname" {
			if merge(f.ruleMatch(f.kind, e.DN)) {
				return triTrue
			}
		} else {
			res = f.absent()
		}
	} else {
		for i := range e.len() {
			k := attributeKind(e.attrKey(i))
			if !f.rule.appliesTo(k) {
				continue
			}
			for _, v := range e.attrValues(i) {
				if merge(f.ruleMatch(k, v)) {
					return triTrue
				}
			}
		}
	}
	if f.DNAttributes && e.DN != "" {
		dn, err := parseDN(e.DN)
		if err != nil {
			return triUndefined
		}
		for _, rdn := range dn.RDNs {
			for _, ava := range rdn.Attributes {
				key := attrKey(ava.Type)
				if f.key != "" && key != f.key {
					continue
				}
				k := attributeKind(key)
				if f.key == "" && !f.rule.appliesTo(k) {
					continue
				}
				if merge(f.ruleMatch(k, ava.Value)) {
					return triTrue
				}
			}
		}
	}
	return res
}

func substringMatch(v, initial string, anys []string, final string) bool {
	if !strings.HasPrefix(v, initial) {
		return false
	}
	v = v[len(initial):]
	for _, a := range anys {
		i := strings.Index(v, a)
		if i < 0 {
			return false
		}
		v = v[i+len(a):]
	}
	return strings.HasSuffix(v, final)
}

func boolTri(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}
