package radius

import (
	"encoding/binary"
	"errors"

	"layeh.com/radius"
)

// EAP (RFC 3748) codes and method types, and the RADIUS attributes that
// carry it (RFC 3579).
const (
	eapRequest  = 1
	eapResponse = 2
	eapSuccess  = 3
	eapFailure  = 4

	eapTypeIdentity   = 1
	eapTypeNak        = 3
	eapTypeGTC        = 6
	eapTypeTLS        = 13
	eapTypeTTLS       = 21
	eapTypePEAP       = 25
	eapTypeExtensions = 33

	attrState = 24
)

// maxEAPMessage bounds a reassembled EAP packet from a NAS: RADIUS packets
// are at most 4096 bytes, so this is a few attributes' worth of slack.
const maxEAPMessage = radius.MaxPacketLength

// eapPacket is one EAP packet. Type and Data are set for requests and
// responses only.
type eapPacket struct {
	Code, ID byte
	Type     byte
	Data     []byte
}

var errMalformedEAP = errors.New("malformed EAP packet")

// parseEAP decodes an EAP packet; octets past its Length are ignored.
func parseEAP(b []byte) (eapPacket, error) {
	if len(b) < 4 {
		return eapPacket{}, errMalformedEAP
	}
	l := int(binary.BigEndian.Uint16(b[2:4]))
	if l < 4 || l > len(b) {
		return eapPacket{}, errMalformedEAP
	}
	b = b[:l]
	p := eapPacket{Code: b[0], ID: b[1]}
	switch p.Code {
	case eapRequest, eapResponse:
		if l < 5 {
			return eapPacket{}, errMalformedEAP
		}
		p.Type, p.Data = b[4], b[5:]
	case eapSuccess, eapFailure:
		if l != 4 {
			return eapPacket{}, errMalformedEAP
		}
	default:
		return eapPacket{}, errMalformedEAP
	}
	return p, nil
}

// encode is the packet on the wire.
func (p eapPacket) encode() []byte {
	if p.Code == eapSuccess || p.Code == eapFailure {
		return []byte{p.Code, p.ID, 0, 4}
	}
	b := make([]byte, 5, 5+len(p.Data))
	b[0], b[1], b[4] = p.Code, p.ID, p.Type
	b = append(b, p.Data...)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	return b
}

// eapMessage joins the EAP-Message attributes of a request, in order
// (RFC 3579 3.1); false when there are none.
func eapMessage(pkt *radius.Packet) ([]byte, bool) {
	var out []byte
	found := false
	for _, avp := range pkt.Attributes {
		if avp.Type == attrEAPMessage {
			found = true
			out = append(out, avp.Attribute...)
		}
	}
	return out, found
}

// eapAttributes splits an EAP packet into EAP-Message attributes of at most
// 253 bytes each.
func eapAttributes(b []byte) radius.Attributes {
	var out radius.Attributes
	for len(b) > 0 {
		n := min(len(b), 253)
		out = append(out, &radius.AVP{Type: attrEAPMessage, Attribute: append([]byte(nil), b[:n]...)})
		b = b[n:]
	}
	return out
}
