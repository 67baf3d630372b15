package ldapserver

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	ldap "github.com/go-ldap/ldap/v3"
)

// FuzzDecodeMessage feeds client bytes through everything the reader does
// before a handler runs: envelope decoding and the parser of the
// operation found. Nothing may panic, and a decoded tree must re-encode to
// something that decodes to the same bytes again. Seeds live in
// testdata/fuzz/FuzzDecodeMessage.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x42, 0x00}) // unbind
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b, DefaultMaxFilterDepth+5)
		id, op, peeked := peekMessage(b)
		if err != nil {
			return
		}
		// What the reader answers a message over a limit with agrees with
		// the full decoding (of a message that readEnvelope lets through,
		// a SEQUENCE).
		if b[0] == 0x30 && (!peeked || id != m.id || op != uint8(m.op.Tag)) {
			t.Fatalf("peekMessage = %d, %d, %v; decoded %d, %d", id, op, peeked, m.id, m.op.Tag)
		}
		p, err := decodeBER(b, DefaultMaxFilterDepth+5)
		if err != nil {
			t.Fatalf("decodeMessage accepted what decodeBER refuses: %v", err)
		}
		re := p.Bytes()
		p2, err := decodeBER(re, DefaultMaxFilterDepth+5)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !bytes.Equal(p2.Bytes(), re) {
			t.Fatal("re-encoding is not stable")
		}
		ctrls, err := parseControls(m.controls)
		if err == nil {
			for _, c := range ctrls {
				_, _ = c.goControl(8)
			}
		}
		switch m.op.Tag {
		case tagBindRequest:
			req, _, err := parseBind(m.op)
			if err == nil && req.String() == "" {
				t.Fatal("empty description")
			}
		case tagSearchRequest:
			if req, err := parseSearch(m.op, DefaultMaxFilterDepth); err == nil && req.FilterString == "" {
				t.Fatal("search accepted without a filter string")
			}
		case tagCompareRequest:
			_, _ = parseCompare(m.op)
		case tagExtendedRequest:
			_, _ = parseExtended(m.op)
		case tagAbandonRequest:
			_, _ = parseAbandon(m.op)
		}
	})
}

// FuzzParseFilter checks the filter path: a filter that passes the checks
// and names its attributes as RFC 4512 allows decompiles to text that
// go-ldap compiles back to the same text. (Other attribute descriptions
// are no protocol error, RFC 4511 4.5.1.7 makes them Undefined, but
// go-ldap escapes them one way only.) Seeds live in
// testdata/fuzz/FuzzParseFilter.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"(cn=*)", "(&(a=b)(!(c<=d)))", "(cn=a*b*c)", "(x:dn:1.2.3:=v)", "(|)"} {
		p, err := ldap.CompileFilter(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		f, s, err := parseFilter(b, 0)
		if err != nil || !plainAttributes(f) {
			return
		}
		p, err := ldap.CompileFilter(s)
		if err != nil {
			// go-ldap's compiler refuses some filters its decompiler
			// writes (for example an empty attribute description); the
			// server passes those on and handlers must cope.
			return
		}
		s2, err := ldap.DecompileFilter(p)
		if err != nil || s2 != s {
			t.Fatalf("filter %q compiles back to %q (%v)", s, s2, err)
		}
	})
}

// plainAttributes reports whether every attribute description and
// matching rule in filter f is made of RFC 4512 descr/numericoid/option
// characters.
func plainAttributes(f *ber.Packet) bool {
	plain := func(b []byte) bool {
		for _, c := range b {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ';') {
				return false
			}
		}
		return true
	}
	switch f.Tag {
	case ldap.FilterAnd, ldap.FilterOr, ldap.FilterNot:
		for _, c := range f.Children {
			if !plainAttributes(c) {
				return false
			}
		}
		return true
	case ldap.FilterPresent:
		return plain(f.Data.Bytes())
	case ldap.FilterExtensibleMatch:
		for _, c := range f.Children {
			if c.Tag != ldap.MatchingRuleAssertionMatchValue && c.Tag != ldap.MatchingRuleAssertionDNAttributes && !plain(c.Data.Bytes()) {
				return false
			}
		}
		return true
	}
	return plain(f.Children[0].Data.Bytes())
}

// FuzzReadEnvelope feeds client bytes to the framing reader with a small
// size limit: a message is returned whole, or refused; one over the limit
// that is read past leaves the reader at the byte after it, with the
// message ID and operation that its first bytes hold. Nothing panics.
func FuzzReadEnvelope(f *testing.F) {
	f.Add([]byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x42, 0x00})
	f.Add(append([]byte{0x30, 0x81, 0x80, 0x02, 0x01, 0x07, 0x63, 0x7b}, make([]byte, 123)...))
	f.Add([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01})
	const maxSize = 64
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.NewReader(b)
		r := bufio.NewReader(in)
		buf, err := readEnvelope(r, maxSize, func() {})
		var le *limitError
		switch {
		case err == nil:
			if len(buf) > maxSize+6 || !bytes.Equal(buf, b[:len(buf)]) {
				t.Fatalf("returned %d bytes that are not the message's", len(buf))
			}
		case errors.As(err, &le):
			if !le.known {
				t.Fatal("a message read past without its ID")
			}
			id, op, ok := peekMessage(b)
			if !ok || id != le.id || op != le.op {
				t.Fatalf("read past message %d op %d; its start says %d op %d (%v)", le.id, le.op, id, op, ok)
			}
			if n := len(b) - in.Len() - r.Buffered(); n <= maxSize {
				t.Fatalf("read past only %d bytes of an oversized message", n)
			}
		}
	})
}
