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

// Limits on client filters: deeper or larger filters are refused rather
// than evaluated.
const (
	maxFilterDepth = 32
	maxFilterNodes = 1024
)

// filter is a parsed search filter.
type filter struct {
	Op       filterOp
	Children []*filter
	Attr     string
	Value    string
	// Substrings.
	Initial string
	Any     []string
	Final   string
	// Extensible match.
	Rule string

	// kind is how Attr's values compare, fixed at parse time.
	kind matchKind
	// dnKey is Value's DN key when kind is matchDN and Value parses.
	dnKey string
}

type matchKind int

const (
	matchString matchKind = iota // case-insensitive string
	matchInteger
	matchDN
)

// attributeKind says how an attribute's values are compared.
func attributeKind(name string) matchKind {
	switch strings.ToLower(name) {
	case "uidnumber", "gidnumber", "supportedldapversion":
		return matchInteger
	case "member", "memberof", "entrydn", "distinguishedname", "namingcontexts",
		"subschemasubentry", "rootdomainnamingcontext":
		return matchDN
	}
	return matchString
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
// arrives in a SearchRequest.
func filterFromPacket(p *ber.Packet) (*filter, error) {
	nodes := 0
	return convertFilter(p, 0, &nodes)
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
	if depth > maxFilterDepth || *nodes > maxFilterNodes {
		return nil, errors.New("filter too complex")
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
	case opNot:
		if len(p.Children) != 1 {
			return nil, errors.New("not filter needs exactly one element")
		}
		cf, err := convertFilter(p.Children[0], depth+1, nodes)
		if err != nil {
			return nil, err
		}
		f.Children = []*filter{cf}
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
			v := packetString(c)
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
			}
		}
	default:
		return nil, fmt.Errorf("unknown filter choice %d", p.Tag)
	}
	f.kind = attributeKind(f.Attr)
	// Substrings compare case-insensitively; lower the assertion once.
	f.Initial, f.Any, f.Final = strings.ToLower(f.Initial), lowerAll(f.Any), strings.ToLower(f.Final)
	if f.kind == matchDN && (f.Op == opEqual || f.Op == opApprox || f.Op == opExtensible) {
		if k, err := keyOf(f.Value); err == nil {
			f.dnKey = k
		}
	}
	return f, nil
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
		if strings.EqualFold(f.Attr, "objectClass") {
			return triTrue
		}
		if a, ok := e.get(f.Attr); ok && len(a.Values) > 0 {
			return triTrue
		}
		return triFalse
	case opExtensible:
		return f.evalExtensible(e)
	}
	a, ok := e.get(f.Attr)
	if !ok {
		if strings.EqualFold(f.Attr, "entryDN") || strings.EqualFold(f.Attr, "distinguishedName") {
			return f.valueMatch(e.DN)
		}
		// An attribute the entry lacks: Undefined, so NOT of it stays false.
		return triUndefined
	}
	res := triFalse
	for _, v := range a.Values {
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
		a, err1 := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		b, err2 := strconv.ParseInt(strings.TrimSpace(f.Value), 10, 64)
		if err1 != nil || err2 != nil {
			return boolTri(strings.EqualFold(v, f.Value))
		}
		return boolTri(a == b)
	case matchDN:
		if strings.EqualFold(v, f.Value) {
			return triTrue
		}
		if f.dnKey == "" {
			return triFalse
		}
		k, err := keyOf(v)
		return boolTri(err == nil && k == f.dnKey)
	}
	return boolTri(strings.EqualFold(v, f.Value))
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

// evalExtensible supports the rules clients send in practice: none (plain
// equality on the attribute), the equality rules by name or OID, and AD's
// LDAP_MATCHING_RULE_IN_CHAIN, evaluated as plain equality (memberOf is
// direct membership only). Anything else is Undefined, as RFC 4511 says.
func (f *filter) evalExtensible(e *entry) tri {
	switch strings.ToLower(f.Rule) {
	case "", "caseignorematch", "2.5.13.2", "distinguishednamematch", "2.5.13.1",
		"caseexactmatch", "2.5.13.5", "1.2.840.113556.1.4.1941":
	default:
		return triUndefined
	}
	if f.Attr == "" {
		return triUndefined
	}
	eq := *f
	eq.Op = opEqual
	return eq.eval(e)
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

func lowerAll(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

func boolTri(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}
