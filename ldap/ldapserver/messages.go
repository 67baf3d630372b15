package ldapserver

import (
	"fmt"
	"math"

	ber "github.com/go-asn1-ber/asn1-ber"
	ldap "github.com/go-ldap/ldap/v3"
)

// OIDs the layer knows.
const (
	oidStartTLS     = "1.3.6.1.4.1.1466.20037"
	oidWhoAmI       = "1.3.6.1.4.1.4203.1.11.3"
	oidNoticeOfDisc = "1.3.6.1.4.1.1466.20036"
	oidManageDsaIT  = "2.16.840.1.113730.3.4.2"
)

// bindAuth tells how a bind authenticates.
type bindAuth int

const (
	authSimple bindAuth = iota
	authSASL
)

func parseBind(op *ber.Packet) (*BindRequest, bindAuth, error) {
	if op.TagType != ber.TypeConstructed || len(op.Children) != 3 {
		return nil, 0, malformed("BindRequest has %d elements", len(op.Children))
	}
	v, err := intValue(op.Children[0], ber.ClassUniversal, ber.TagInteger)
	if err != nil {
		return nil, 0, fmt.Errorf("bind version: %w", err)
	}
	if v < 1 || v > 127 {
		return nil, 0, malformed("bind version %d out of range", v)
	}
	dn, err := octetString(op.Children[1])
	if err != nil {
		return nil, 0, fmt.Errorf("bind name: %w", err)
	}
	req := &BindRequest{Version: int(v), DN: dn}
	auth := op.Children[2]
	if auth.ClassType != ber.ClassContext {
		return nil, 0, malformed("bind authentication is not context-tagged")
	}
	switch {
	case auth.Tag == 0 && auth.TagType == ber.TypePrimitive:
		req.Password = string(auth.Data.Bytes())
		return req, authSimple, nil
	case auth.Tag == 3 && auth.TagType == ber.TypeConstructed:
		return req, authSASL, nil
	}
	return nil, 0, malformed("unknown bind authentication choice %d", auth.Tag)
}

func parseSearch(op *ber.Packet, maxFilterDepth int) (*SearchRequest, error) {
	if op.TagType != ber.TypeConstructed || len(op.Children) != 8 {
		return nil, malformed("SearchRequest has %d elements", len(op.Children))
	}
	c := op.Children
	base, err := octetString(c[0])
	if err != nil {
		return nil, fmt.Errorf("search base: %w", err)
	}
	ints := make([]int64, 4)
	for i, tag := range []ber.Tag{ber.TagEnumerated, ber.TagEnumerated, ber.TagInteger, ber.TagInteger} {
		if ints[i], err = intValue(c[1+i], ber.ClassUniversal, tag); err != nil {
			return nil, fmt.Errorf("search parameter %d: %w", i+1, err)
		}
		if ints[i] < 0 || ints[i] > math.MaxInt32 {
			return nil, malformed("search parameter %d out of range: %d", i+1, ints[i])
		}
	}
	if ints[0] > 3 || ints[1] > 3 {
		return nil, malformed("search scope %d or deref %d unknown", ints[0], ints[1])
	}
	typesOnly, err := boolValue(c[5])
	if err != nil {
		return nil, fmt.Errorf("search typesOnly: %w", err)
	}
	if err := checkFilter(c[6], maxFilterDepth); err != nil {
		return nil, err
	}
	fs, err := ldap.DecompileFilter(c[6])
	if err != nil {
		return nil, malformed("filter does not decompile: %v", err)
	}
	if !isSequence(c[7]) {
		return nil, malformed("search attributes are not a SEQUENCE")
	}
	attrs := make([]string, 0, len(c[7].Children))
	for _, a := range c[7].Children {
		s, err := octetString(a)
		if err != nil {
			return nil, fmt.Errorf("search attribute: %w", err)
		}
		attrs = append(attrs, s)
	}
	return &SearchRequest{
		BaseDN:       base,
		Scope:        int(ints[0]),
		DerefAliases: int(ints[1]),
		SizeLimit:    int(ints[2]),
		TimeLimit:    int(ints[3]),
		TypesOnly:    typesOnly,
		Filter:       c[6],
		FilterString: fs,
		Attributes:   attrs,
	}, nil
}

func parseCompare(op *ber.Packet) (*CompareRequest, error) {
	if op.TagType != ber.TypeConstructed || len(op.Children) != 2 {
		return nil, malformed("CompareRequest has %d elements", len(op.Children))
	}
	dn, err := octetString(op.Children[0])
	if err != nil {
		return nil, fmt.Errorf("compare entry: %w", err)
	}
	ava := op.Children[1]
	if !isSequence(ava) || len(ava.Children) != 2 {
		return nil, malformed("compare assertion is not a pair")
	}
	attr, err := octetString(ava.Children[0])
	if err != nil {
		return nil, fmt.Errorf("compare attribute: %w", err)
	}
	val, err := octetString(ava.Children[1])
	if err != nil {
		return nil, fmt.Errorf("compare value: %w", err)
	}
	return &CompareRequest{DN: dn, Attribute: attr, Value: val}, nil
}

func parseExtended(op *ber.Packet) (*ExtendedRequest, error) {
	if op.TagType != ber.TypeConstructed || len(op.Children) < 1 || len(op.Children) > 2 {
		return nil, malformed("ExtendedRequest has %d elements", len(op.Children))
	}
	name, err := stringValue(op.Children[0], ber.ClassContext, 0)
	if err != nil {
		return nil, fmt.Errorf("extended requestName: %w", err)
	}
	req := &ExtendedRequest{OID: name}
	if len(op.Children) == 2 {
		v := op.Children[1]
		if v.ClassType != ber.ClassContext || v.Tag != 1 || v.TagType != ber.TypePrimitive {
			return nil, malformed("bad extended requestValue")
		}
		req.Value = append([]byte{}, v.Data.Bytes()...)
	}
	return req, nil
}

func parseAbandon(op *ber.Packet) (int64, error) {
	if op.TagType != ber.TypePrimitive {
		return 0, malformed("AbandonRequest is constructed")
	}
	return parseInt(op.Data.Bytes())
}

// control is a request control as sent.
type control struct {
	oid      string
	critical bool
	value    []byte
	hasValue bool
}

func parseControls(ps []*ber.Packet) ([]control, error) {
	out := make([]control, 0, len(ps))
	for _, p := range ps {
		if !isSequence(p) || len(p.Children) < 1 || len(p.Children) > 3 {
			return nil, malformed("bad control")
		}
		oid, err := octetString(p.Children[0])
		if err != nil {
			return nil, fmt.Errorf("control type: %w", err)
		}
		c := control{oid: oid}
		rest := p.Children[1:]
		if len(rest) > 0 && rest[0].ClassType == ber.ClassUniversal && rest[0].Tag == ber.TagBoolean {
			if c.critical, err = boolValue(rest[0]); err != nil {
				return nil, err
			}
			rest = rest[1:]
		}
		if len(rest) == 1 {
			v, err := octetString(rest[0])
			if err != nil {
				return nil, fmt.Errorf("control value: %w", err)
			}
			c.value, c.hasValue = []byte(v), true
		} else if len(rest) > 1 {
			return nil, malformed("bad control")
		}
		out = append(out, c)
	}
	return out, nil
}

// goControl converts c into go-ldap's representation. Only the paging
// control is decoded, by the layer itself, so that no nested BER is handed
// to a decoder with other limits.
func (c control) goControl(maxDepth int) (ldap.Control, error) {
	if c.oid != ldap.ControlTypePaging {
		return &ldap.ControlString{ControlType: c.oid, Criticality: c.critical, ControlValue: string(c.value)}, nil
	}
	if !c.hasValue {
		return nil, malformed("paging control without value")
	}
	p, err := decodeBER(c.value, maxDepth)
	if err != nil {
		return nil, fmt.Errorf("paging control: %w", err)
	}
	if !isSequence(p) || len(p.Children) != 2 {
		return nil, malformed("paging control value is not a pair")
	}
	size, err := intValue(p.Children[0], ber.ClassUniversal, ber.TagInteger)
	if err != nil {
		return nil, fmt.Errorf("paging size: %w", err)
	}
	if size < 0 || size > math.MaxInt32 {
		return nil, malformed("paging size %d out of range", size)
	}
	cookie, err := octetString(p.Children[1])
	if err != nil {
		return nil, fmt.Errorf("paging cookie: %w", err)
	}
	pc := ldap.NewControlPaging(uint32(size))
	if cookie != "" {
		pc.SetCookie([]byte(cookie))
	}
	return pc, nil
}
