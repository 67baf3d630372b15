package ldapserver

import (
	ber "github.com/go-asn1-ber/asn1-ber"
	ldap "github.com/go-ldap/ldap/v3"
)

// checkFilter verifies that p is a Filter as RFC 4511 4.5.1.7 defines it,
// nested at most maxDepth filters deep (a deeper one is a *limitError), so
// that a handler walking
// SearchRequest.Filter (or ldap.DecompileFilter) finds every child it
// expects and never indexes past the end. It also gives the dnAttributes
// flag of an extensible match the bool Value that go-ldap reads.
func checkFilter(p *ber.Packet, maxDepth int) error {
	return checkFilterAt(p, 1, maxDepth)
}

func checkFilterAt(p *ber.Packet, depth, maxDepth int) error {
	if depth > maxDepth {
		return overLimit("filter nested deeper than %d levels", maxDepth)
	}
	if p.ClassType != ber.ClassContext {
		return malformed("filter element is not context-tagged")
	}
	constructed := p.TagType == ber.TypeConstructed
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr:
		// An empty and/or is absolute true/false (RFC 4526).
		if !constructed {
			return malformed("and/or filter is primitive")
		}
		for _, c := range p.Children {
			if err := checkFilterAt(c, depth+1, maxDepth); err != nil {
				return err
			}
		}
		return nil
	case ldap.FilterNot:
		if !constructed || len(p.Children) != 1 {
			return malformed("not filter must hold one filter")
		}
		return checkFilterAt(p.Children[0], depth+1, maxDepth)
	case ldap.FilterEqualityMatch, ldap.FilterGreaterOrEqual, ldap.FilterLessOrEqual, ldap.FilterApproxMatch:
		if !constructed || len(p.Children) != 2 {
			return malformed("attribute value assertion must be a pair")
		}
		for _, c := range p.Children {
			if _, err := octetString(c); err != nil {
				return err
			}
		}
		return nil
	case ldap.FilterSubstrings:
		return checkSubstrings(p)
	case ldap.FilterPresent:
		if constructed {
			return malformed("present filter is constructed")
		}
		return nil
	case ldap.FilterExtensibleMatch:
		return checkExtensible(p)
	}
	return malformed("unknown filter choice %d", p.Tag)
}

func checkSubstrings(p *ber.Packet) error {
	if p.TagType != ber.TypeConstructed || len(p.Children) != 2 {
		return malformed("substrings filter must be a pair")
	}
	if _, err := octetString(p.Children[0]); err != nil {
		return err
	}
	subs := p.Children[1]
	if !isSequence(subs) || len(subs.Children) == 0 {
		return malformed("substrings filter has no substrings")
	}
	last := len(subs.Children) - 1
	for i, s := range subs.Children {
		if s.ClassType != ber.ClassContext || s.TagType != ber.TypePrimitive {
			return malformed("bad substring")
		}
		switch s.Tag {
		case ldap.FilterSubstringsInitial:
			if i != 0 {
				return malformed("initial substring not first")
			}
		case ldap.FilterSubstringsAny:
		case ldap.FilterSubstringsFinal:
			if i != last {
				return malformed("final substring not last")
			}
		default:
			return malformed("unknown substring choice %d", s.Tag)
		}
	}
	return nil
}

// checkExtensible checks a MatchingRuleAssertion: [1] matchingRule, [2]
// type, [3] matchValue, [4] dnAttributes, in this order, the value
// required and the rule or the type present.
func checkExtensible(p *ber.Packet) error {
	if p.TagType != ber.TypeConstructed || len(p.Children) == 0 || len(p.Children) > 4 {
		return malformed("bad extensible match")
	}
	prev := ber.Tag(0)
	seen := map[ber.Tag]bool{}
	for _, c := range p.Children {
		if c.ClassType != ber.ClassContext || c.TagType != ber.TypePrimitive || c.Tag <= prev || c.Tag > 4 {
			return malformed("bad extensible match element")
		}
		prev = c.Tag
		seen[c.Tag] = true
		if c.Tag == ldap.MatchingRuleAssertionDNAttributes {
			b := c.Data.Bytes()
			if len(b) != 1 {
				return malformed("bad dnAttributes")
			}
			c.Value = b[0] != 0
		}
	}
	if !seen[ldap.MatchingRuleAssertionMatchValue] || (!seen[ldap.MatchingRuleAssertionMatchingRule] && !seen[ldap.MatchingRuleAssertionType]) {
		return malformed("extensible match lacks a value, or both rule and type")
	}
	return nil
}

// parseFilter decodes a BER-encoded search filter with the checks the
// server applies to SearchRequest.Filter, and returns it with its RFC 4515
// text. It is the filter path of parseSearch on its own, for fuzzing.
func parseFilter(b []byte, maxDepth int) (*ber.Packet, string, error) {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxFilterDepth
	}
	p, err := decodeBER(b, maxDepth+2)
	if err != nil {
		return nil, "", err
	}
	if err := checkFilter(p, maxDepth); err != nil {
		return nil, "", err
	}
	s, err := ldap.DecompileFilter(p)
	if err != nil {
		return nil, "", malformed("filter does not decompile: %v", err)
	}
	return p, s, nil
}
