package ldapserver

import (
	"slices"

	ldap "github.com/go-ldap/ldap/v3"
)

// builder appends BER to a byte slice. Constructed elements are opened
// with begin, which reserves a five-byte length, and closed with end, which
// writes the length in its shortest form and moves the content back over
// the unused bytes. Encoding this way costs one allocation per message,
// where go-asn1-ber's packets copy every element into each ancestor.
type builder struct {
	buf   []byte
	stack [8]int // offsets of open elements' content; LDAP nests 5 deep
	depth int
}

const (
	classUniversal   = 0x00
	classApplication = 0x40
	classContext     = 0x80
	constructed      = 0x20

	tagBoolean     = 0x01
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagEnumerated  = 0x0a
	tagSequence    = 0x10
	tagSet         = 0x11
)

func (b *builder) begin(id byte) {
	b.buf = append(b.buf, id|constructed, 0, 0, 0, 0, 0)
	b.stack[b.depth] = len(b.buf)
	b.depth++
}

func (b *builder) end() {
	b.depth--
	start := b.stack[b.depth]
	n := len(b.buf) - start
	var l [5]byte
	ll := encodeLength(l[:0], n)
	hdr := start - 5 // the length bytes reserved by begin
	copy(b.buf[hdr:], ll)
	if gap := 5 - len(ll); gap > 0 {
		copy(b.buf[hdr+len(ll):], b.buf[start:])
		b.buf = b.buf[:len(b.buf)-gap]
	}
}

func encodeLength(dst []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n < 1<<8:
		return append(dst, 0x81, byte(n))
	case n < 1<<16:
		return append(dst, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func (b *builder) bytes(id byte, v []byte) {
	b.buf = append(b.buf, id)
	b.buf = encodeLength(b.buf, len(v))
	b.buf = append(b.buf, v...)
}

func (b *builder) string(id byte, v string) {
	b.buf = append(b.buf, id)
	b.buf = encodeLength(b.buf, len(v))
	b.buf = append(b.buf, v...)
}

func (b *builder) int(id byte, v int64) {
	n := 1
	for x := v; x > 127 || x < -128; x >>= 8 {
		n++
	}
	b.buf = append(b.buf, id, byte(n))
	for i := n - 1; i >= 0; i-- {
		b.buf = append(b.buf, byte(v>>(8*i)))
	}
}

// raw appends already encoded BER.
func (b *builder) raw(v []byte) { b.buf = append(b.buf, v...) }

// beginMessage opens an LDAPMessage and its protocolOp.
func (b *builder) beginMessage(id int64, opTag byte) {
	b.begin(classUniversal | tagSequence)
	b.int(classUniversal|tagInteger, id)
	b.begin(classApplication | opTag)
}

// endMessage closes the protocolOp, appends the response controls and
// closes the LDAPMessage.
func (b *builder) endMessage(controls []ldap.Control) {
	b.end()
	if len(controls) > 0 {
		b.begin(classContext | 0)
		for _, c := range controls {
			b.raw(c.Encode().Bytes())
		}
		b.end()
	}
	b.end()
}

// result appends the LDAPResult fields (RFC 4511 4.1.9).
func (b *builder) result(r *Result) {
	b.int(classUniversal|tagEnumerated, int64(r.Code))
	b.string(classUniversal|tagOctetString, r.MatchedDN)
	b.string(classUniversal|tagOctetString, r.Message)
	if r.Code == ldap.LDAPResultReferral && len(r.Referral) > 0 {
		b.begin(classContext | 3)
		for _, u := range r.Referral {
			b.string(classUniversal|tagOctetString, u)
		}
		b.end()
	}
}

// encodeResult encodes a response made of an LDAPResult alone.
func encodeResult(id int64, opTag byte, r *Result) []byte {
	return appendResult(make([]byte, 0, 64+len(r.MatchedDN)+len(r.Message)), id, opTag, r)
}

// appendResult appends the encoding of encodeResult to dst.
func appendResult(dst []byte, id int64, opTag byte, r *Result) []byte {
	b := builder{buf: dst}
	b.beginMessage(id, opTag)
	b.result(r)
	b.endMessage(r.Controls)
	return b.buf
}

// encodeExtended encodes an ExtendedResponse (RFC 4511 4.12).
func encodeExtended(id int64, r *ExtendedResult) []byte {
	b := builder{buf: make([]byte, 0, 96+len(r.Message)+len(r.Value))}
	b.beginMessage(id, tagExtendedResponse)
	b.result(&r.Result)
	if r.OID != "" {
		b.string(classContext|10, r.OID)
	}
	if r.Value != nil {
		b.bytes(classContext|11, r.Value)
	}
	b.endMessage(r.Controls)
	return b.buf
}

// encodeEntry encodes a SearchResultEntry (RFC 4511 4.5.2), attributes in
// the order given; typesOnly drops the values. An attribute without values
// is left out unless typesOnly: RFC 4511 4.1.7 allows an empty value set
// only there.
func encodeEntry(id int64, e *Entry, typesOnly bool) []byte {
	return appendEntry(nil, id, e, typesOnly)
}

// appendEntry appends the encoding of encodeEntry to dst, growing it once.
func appendEntry(dst []byte, id int64, e *Entry, typesOnly bool) []byte {
	size := 32 + len(e.DN)
	for _, a := range e.Attributes {
		if !typesOnly && len(a.Values) == 0 {
			continue
		}
		size += 12 + len(a.Type)
		if !typesOnly {
			for _, v := range a.Values {
				size += 5 + len(v)
			}
		}
	}
	b := builder{buf: slices.Grow(dst, size)}
	b.beginMessage(id, tagSearchEntry)
	b.string(classUniversal|tagOctetString, e.DN)
	b.begin(classUniversal | tagSequence)
	for _, a := range e.Attributes {
		if !typesOnly && len(a.Values) == 0 {
			continue
		}
		b.begin(classUniversal | tagSequence)
		b.string(classUniversal|tagOctetString, a.Type)
		b.begin(classUniversal | tagSet)
		if !typesOnly {
			for _, v := range a.Values {
				b.string(classUniversal|tagOctetString, v)
			}
		}
		b.end()
		b.end()
	}
	b.end()
	b.endMessage(nil)
	return b.buf
}

// encodeReference encodes a SearchResultReference (RFC 4511 4.5.3).
func encodeReference(id int64, urls []string) []byte {
	var b builder
	b.beginMessage(id, tagSearchReference)
	for _, u := range urls {
		b.string(classUniversal|tagOctetString, u)
	}
	b.endMessage(nil)
	return b.buf
}

// encodeNotice encodes the Notice of Disconnection (RFC 4511 4.4.1): an
// unsolicited ExtendedResponse with messageID 0.
func encodeNotice(code uint16, msg string) []byte {
	return encodeExtended(0, &ExtendedResult{Result: Result{Code: code, Message: msg}, OID: oidNoticeOfDisc})
}
