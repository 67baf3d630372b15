package ldapserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// protocolError is a message the layer cannot accept: it ends the
// connection with a notice of disconnection (RFC 4511 4.1.1).
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "ldapserver: protocol error: " + e.msg }

func malformed(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// limitError is a message over one of the server's limits (its size, its
// nesting, its number of elements) whose framing is intact, so that the
// stream can go on after it. When id and op are known (known), the reader
// answers a search (or write request) with adminLimitExceeded and reads
// on; any other request over a limit ends the connection with a notice of
// disconnection, as a malformed one does.
type limitError struct {
	msg   string
	id    int64
	op    uint8
	known bool
	// nesting marks BER nested deeper than the decoder's bound, which in
	// a search means its filter.
	nesting bool
}

func (e *limitError) Error() string { return "ldapserver: limit exceeded: " + e.msg }

func overLimit(format string, args ...any) error {
	return &limitError{msg: fmt.Sprintf(format, args...)}
}

// maxSkipFactor bounds the messages the reader reads past: up to this many
// times Server.MaxMessageSize. Reading past costs time but no memory.
const maxSkipFactor = 16

// Tag numbers of the LDAPMessage protocolOp CHOICE (RFC 4511 4.2-4.14).
const (
	tagBindRequest      = 0
	tagBindResponse     = 1
	tagUnbindRequest    = 2
	tagSearchRequest    = 3
	tagSearchEntry      = 4
	tagSearchDone       = 5
	tagModifyRequest    = 6
	tagModifyResponse   = 7
	tagAddRequest       = 8
	tagAddResponse      = 9
	tagDelRequest       = 10
	tagDelResponse      = 11
	tagModDNRequest     = 12
	tagModDNResponse    = 13
	tagCompareRequest   = 14
	tagCompareResponse  = 15
	tagAbandonRequest   = 16
	tagSearchReference  = 19
	tagExtendedRequest  = 23
	tagExtendedResponse = 24
)

// readEnvelope reads one LDAPMessage from r, checking its tag and length
// before allocating for its content. first is called once the first byte
// has arrived, so that the caller can switch from the idle deadline to the
// read deadline. A message longer than maxSize but at most maxSkipFactor
// times as long is read past without being kept, and reported as a
// *limitError holding its message ID and operation.
func readEnvelope(r *bufio.Reader, maxSize int, first func()) ([]byte, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	first()
	if tag != 0x30 {
		return nil, malformed("message tag 0x%02x is not a SEQUENCE", tag)
	}
	l0, err := r.ReadByte()
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	hdr := []byte{tag, l0}
	var n int
	switch {
	case l0 < 0x80:
		n = int(l0)
	case l0 == 0x80:
		return nil, malformed("indefinite length, which LDAP forbids")
	default:
		k := int(l0 & 0x7f)
		if k > 4 {
			return nil, malformed("message length of %d bytes exceeds the limit of %d bytes", k, maxSize)
		}
		for range k {
			b, err := r.ReadByte()
			if err != nil {
				return nil, unexpectedEOF(err)
			}
			hdr = append(hdr, b)
			n = n<<8 | int(b)
		}
	}
	if n > maxSize {
		return nil, skipMessage(r, hdr, n, maxSize)
	}
	buf := make([]byte, len(hdr)+n)
	copy(buf, hdr)
	if _, err := io.ReadFull(r, buf[len(hdr):]); err != nil {
		return nil, unexpectedEOF(err)
	}
	return buf, nil
}

// skipMessage reads past the content of an oversized message of n bytes
// whose header hdr has been read, and returns the *limitError that
// answers it; a message too long to read past, or whose message ID and
// operation cannot be found, is a protocol error.
func skipMessage(r *bufio.Reader, hdr []byte, n, maxSize int) error {
	msg := fmt.Sprintf("message of %d bytes exceeds the limit of %d bytes", n, maxSize)
	if n/maxSkipFactor > maxSize {
		return malformed("%s", msg)
	}
	// The message ID and the operation's tag come first: at most 2+8+1
	// bytes.
	prefix := make([]byte, len(hdr), len(hdr)+16)
	copy(prefix, hdr)
	prefix = prefix[:len(hdr)+min(n, 16)]
	if _, err := io.ReadFull(r, prefix[len(hdr):]); err != nil {
		return unexpectedEOF(err)
	}
	id, op, ok := peekMessage(prefix)
	if !ok {
		return malformed("%s", msg)
	}
	if _, err := r.Discard(n - min(n, 16)); err != nil {
		return unexpectedEOF(err)
	}
	return &limitError{msg: msg, id: id, op: op, known: true}
}

// peekMessage finds the message ID and the protocolOp tag at the start of
// an LDAPMessage (all of it, or its first bytes), without decoding the
// rest.
func peekMessage(b []byte) (id int64, op uint8, ok bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return 0, 0, false
	}
	i := 2
	if b[1]&0x80 != 0 {
		i += int(b[1] & 0x7f)
	}
	if len(b) < i+2 || b[i] != 0x02 {
		return 0, 0, false
	}
	n := int(b[i+1])
	if n < 1 || n > 8 || len(b) < i+2+n+1 {
		return 0, 0, false
	}
	v, err := parseInt(b[i+2 : i+2+n])
	if err != nil || v < 0 || v > math.MaxInt32 {
		return 0, 0, false
	}
	t := b[i+2+n]
	if t&0xc0 != 0x40 || t&0x1f == 0x1f {
		return 0, 0, false
	}
	return v, t & 0x1f, true
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decodeBER decodes exactly one BER element filling b into a go-asn1-ber
// packet tree. Unlike ber.DecodePacketErr it checks depth and element count
// against its own limits instead of package variables, accepts only what
// LDAP allows (definite lengths, low tag numbers) and shares b instead of
// copying each element's bytes into every ancestor, so memory stays
// proportional to the message. Packets' Data buffers are capped views of
// b: writing to them reallocates rather than touching a neighbour.
func decodeBER(b []byte, maxDepth int) (*ber.Packet, error) {
	d := decoder{maxDepth: maxDepth}
	p, rest, err := d.element(b, 1)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, malformed("%d bytes after the element", len(rest))
	}
	return p, nil
}

type decoder struct {
	maxDepth int
	elements int
	// slab and kids hand out the message's packets and child lists from
	// a few allocations instead of several per element: a search request
	// has dozens of elements.
	slab []node
	kids []*ber.Packet
}

// node is a packet with the buffer its Data points to.
type node struct {
	p    ber.Packet
	data bytes.Buffer
}

// slabSize is how many packets one allocation holds.
const slabSize = 32

// packet returns a packet whose Data reads content.
func (d *decoder) packet(content []byte) *ber.Packet {
	if len(d.slab) == 0 {
		d.slab = make([]node, slabSize)
	}
	n := &d.slab[0]
	d.slab = d.slab[1:]
	n.data = *bytes.NewBuffer(content)
	n.p.Data = &n.data
	return &n.p
}

// children returns a list with room for exactly n children.
func (d *decoder) children(n int) []*ber.Packet {
	if n > len(d.kids) {
		d.kids = make([]*ber.Packet, max(n, slabSize))
	}
	c := d.kids[:0:n]
	d.kids = d.kids[n:]
	return c
}

// countElements counts the BER elements directly in content, reading
// their headers only; element checks them in full.
func countElements(content []byte) int {
	n := 0
	for len(content) >= 2 {
		i, l := 2, 0
		switch l0 := content[1]; {
		case l0 < 0x80:
			l = int(l0)
		default:
			k := int(l0 & 0x7f)
			if l0 == 0x80 || k > 4 || len(content) < 2+k {
				return n + 1
			}
			for _, x := range content[2 : 2+k] {
				l = l<<8 | int(x)
			}
			i += k
		}
		n++
		if l > len(content)-i {
			return n
		}
		content = content[i+l:]
	}
	return n
}

func (d *decoder) element(b []byte, depth int) (*ber.Packet, []byte, error) {
	if depth > d.maxDepth {
		return nil, nil, &limitError{msg: fmt.Sprintf("message nested deeper than %d levels", d.maxDepth), nesting: true}
	}
	d.elements++
	if d.elements > maxElements {
		return nil, nil, overLimit("message has more than %d elements", maxElements)
	}
	if len(b) < 2 {
		return nil, nil, malformed("truncated BER element")
	}
	id := b[0]
	if id&0x1f == 0x1f {
		return nil, nil, malformed("high tag number form, which LDAP does not use")
	}
	i := 2
	var n int
	switch l0 := b[1]; {
	case l0 < 0x80:
		n = int(l0)
	case l0 == 0x80:
		return nil, nil, malformed("indefinite length, which LDAP forbids")
	default:
		k := int(l0 & 0x7f)
		if k > 4 || len(b) < 2+k {
			return nil, nil, malformed("bad BER length")
		}
		for _, x := range b[2 : 2+k] {
			n = n<<8 | int(x)
		}
		i += k
	}
	if n > len(b)-i {
		return nil, nil, malformed("BER length %d exceeds the %d bytes left", n, len(b)-i)
	}
	content := b[i : i+n : i+n]
	p := d.packet(content)
	p.Identifier = ber.Identifier{
		ClassType: ber.Class(id & 0xc0),
		TagType:   ber.Type(id & 0x20),
		Tag:       ber.Tag(id & 0x1f),
	}
	if p.TagType == ber.TypeConstructed {
		if len(content) > 0 {
			p.Children = d.children(countElements(content))
		}
		rest := content
		for len(rest) > 0 {
			child, r, err := d.element(rest, depth+1)
			if err != nil {
				return nil, nil, err
			}
			p.Children = append(p.Children, child)
			rest = r
		}
	} else if p.ClassType == ber.ClassUniversal {
		p.ByteValue = content
		switch p.Tag {
		case ber.TagBoolean:
			if len(content) != 1 {
				return nil, nil, malformed("BOOLEAN of %d bytes", len(content))
			}
			p.Value = content[0] != 0
		case ber.TagInteger, ber.TagEnumerated:
			v, err := parseInt(content)
			if err != nil {
				return nil, nil, err
			}
			p.Value = v
		case ber.TagOctetString:
			p.Value = string(content)
		}
	}
	return p, b[i+n:], nil
}

func parseInt(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 8 {
		return 0, malformed("INTEGER of %d bytes", len(b))
	}
	return ber.ParseInt64(b)
}

// message is a decoded LDAPMessage envelope.
type message struct {
	id       int64
	op       *ber.Packet
	controls []*ber.Packet
}

// decodeMessage decodes an LDAPMessage (RFC 4511 4.1.1) read by
// readEnvelope.
func decodeMessage(buf []byte, maxDepth int) (*message, error) {
	p, err := decodeBER(buf, maxDepth)
	if err != nil {
		return nil, err
	}
	if len(p.Children) < 2 || len(p.Children) > 3 {
		return nil, malformed("LDAPMessage has %d elements", len(p.Children))
	}
	id, err := intValue(p.Children[0], ber.ClassUniversal, ber.TagInteger)
	if err != nil {
		return nil, fmt.Errorf("messageID: %w", err)
	}
	if id < 0 || id > math.MaxInt32 {
		return nil, malformed("messageID %d out of range", id)
	}
	m := &message{id: id, op: p.Children[1]}
	if m.op.ClassType != ber.ClassApplication {
		return nil, malformed("protocolOp is not of the application class")
	}
	if len(p.Children) == 3 {
		c := p.Children[2]
		if c.ClassType != ber.ClassContext || c.Tag != 0 || c.TagType != ber.TypeConstructed {
			return nil, malformed("bad controls element")
		}
		m.controls = c.Children
	}
	return m, nil
}

// intValue reads an INTEGER or ENUMERATED with the given class and tag.
func intValue(p *ber.Packet, class ber.Class, tag ber.Tag) (int64, error) {
	if p.ClassType != class || p.Tag != tag || p.TagType != ber.TypePrimitive {
		return 0, malformed("expected an integer tagged %d, got tag %d", tag, p.Tag)
	}
	return parseInt(p.Data.Bytes())
}

// stringValue reads an OCTET STRING (or an implicitly tagged one).
func stringValue(p *ber.Packet, class ber.Class, tag ber.Tag) (string, error) {
	if p.ClassType != class || p.Tag != tag || p.TagType != ber.TypePrimitive {
		return "", malformed("expected a string tagged %d, got tag %d", tag, p.Tag)
	}
	return string(p.Data.Bytes()), nil
}

func octetString(p *ber.Packet) (string, error) {
	return stringValue(p, ber.ClassUniversal, ber.TagOctetString)
}

func boolValue(p *ber.Packet) (bool, error) {
	if p.ClassType != ber.ClassUniversal || p.Tag != ber.TagBoolean || p.TagType != ber.TypePrimitive {
		return false, malformed("expected a BOOLEAN")
	}
	v, _ := p.Value.(bool)
	return v, nil
}

func isSequence(p *ber.Packet) bool {
	return p.ClassType == ber.ClassUniversal && p.Tag == ber.TagSequence && p.TagType == ber.TypeConstructed
}
