package ldapserver

import (
	"bytes"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	ldap "github.com/go-ldap/ldap/v3"
)

// The builder's lengths are right on both sides of every length-form
// boundary: go-asn1-ber decodes what it encodes, to the byte.
func TestEncodeEntryLengths(t *testing.T) {
	for _, n := range []int{0, 1, 100, 127, 128, 200, 255, 256, 1000, 65535, 65536, 70000, 1 << 24} {
		e := &Entry{DN: "cn=x", Attributes: []Attribute{
			{Type: "a", Values: []string{strings.Repeat("v", n)}},
			{Type: "b", Values: []string{"1", "2"}},
			{Type: "empty"},
		}}
		b := encodeEntry(7, e, false)
		p, err := ber.DecodePacketErr(b)
		if err != nil {
			t.Fatalf("value of %d bytes: %v", n, err)
		}
		if !bytes.Equal(p.Bytes(), b) {
			t.Fatalf("value of %d bytes: not the minimal encoding", n)
		}
		op := p.Children[1]
		if p.Children[0].Value.(int64) != 7 || op.Tag != tagSearchEntry || op.ClassType != ber.ClassApplication {
			t.Fatalf("envelope: %v", ber.DescribePacket(p))
		}
		attrs := op.Children[1].Children
		if len(attrs) != 2 || attrs[0].Children[1].Children[0].Data.Len() != n || attrs[1].Children[0].Value != "b" {
			t.Fatalf("value of %d bytes: attributes decoded wrongly", n)
		}
	}
}

// An attribute without values is never sent (RFC 4511 4.1.7), except in a
// typesOnly search, which sends the types of every attribute given.
func TestEncodeEntryLeavesOutEmptyAttributes(t *testing.T) {
	e := &Entry{DN: "cn=x", Attributes: []Attribute{{Type: "memberOf"}, {Type: "cn", Values: []string{"x"}}, {Type: "mail", Values: []string{}}}}
	for _, tt := range []struct {
		typesOnly bool
		want      []string
	}{
		{false, []string{"cn"}},
		{true, []string{"memberOf", "cn", "mail"}},
	} {
		p, err := ber.DecodePacketErr(encodeEntry(1, e, tt.typesOnly))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range p.Children[1].Children[1].Children {
			got = append(got, a.Children[0].Value.(string))
			if n := len(a.Children[1].Children); tt.typesOnly && n != 0 || !tt.typesOnly && n == 0 {
				t.Errorf("typesOnly %v: %s has %d values", tt.typesOnly, got[len(got)-1], n)
			}
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("typesOnly %v: attributes %q, want %q", tt.typesOnly, got, tt.want)
		}
	}
}

func TestEncodeTypesOnly(t *testing.T) {
	b := encodeEntry(1, &Entry{DN: "cn=x", Attributes: []Attribute{{Type: "a", Values: []string{"secret"}}}}, true)
	if bytes.Contains(b, []byte("secret")) {
		t.Fatal("typesOnly entry carries values")
	}
}

func TestEncodeResultWithControlsAndReferral(t *testing.T) {
	r := &Result{Code: ldap.LDAPResultReferral, Message: "go there", Referral: []string{"ldap://a/", "ldap://b/"},
		Controls: []ldap.Control{PagingResult([]byte("next"))}}
	p, err := ber.DecodePacketErr(encodeResult(9, tagSearchDone, r))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Children) != 3 {
		t.Fatalf("want envelope with controls, got %d children", len(p.Children))
	}
	op := p.Children[1]
	if len(op.Children) != 4 || len(op.Children[3].Children) != 2 {
		t.Fatalf("referral not encoded: %d children", len(op.Children))
	}
	c, err := ldap.DecodeControl(p.Children[2].Children[0])
	if err != nil {
		t.Fatal(err)
	}
	if pc, ok := c.(*ldap.ControlPaging); !ok || string(pc.Cookie) != "next" {
		t.Fatalf("paging control = %v", c)
	}
}

// decodeBER builds the same tree go-asn1-ber builds for valid LDAP.
func TestDecodeBERMatchesAsn1Ber(t *testing.T) {
	for _, s := range []string{"(cn=*)", "(&(objectClass=user)(|(cn=a*b*c)(!(mail=x))))", "(uid:caseExactMatch:=Alice)", "(cn:dn:2.5.13.2:=x)", "(&)", "(age>=10)"} {
		f, err := ldap.CompileFilter(s)
		if err != nil {
			t.Fatal(err)
		}
		b := f.Bytes()
		got, str, err := parseFilter(b, 0)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !bytes.Equal(got.Bytes(), b) {
			t.Errorf("%s: re-encodes differently", s)
		}
		want, _ := ldap.DecompileFilter(f)
		if str != want {
			t.Errorf("%s: decompiled %q, want %q", s, str, want)
		}
	}
}

func TestDecodeBERRefuses(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", []byte{0x04, 0x05, 'a'}},
		{"trailing bytes", []byte{0x04, 0x01, 'a', 0x00}},
		{"indefinite", []byte{0x30, 0x80, 0x00, 0x00}},
		{"high tag", []byte{0x1f, 0x81, 0x01, 0x00}},
		{"length overflow", []byte{0x04, 0x85, 1, 0, 0, 0, 0}},
		{"boolean of 2 bytes", []byte{0x01, 0x02, 0x00, 0x00}},
		{"integer of 9 bytes", []byte{0x02, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"too deep", deepSequence(50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeBER(tt.b, 37); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func deepSequence(n int) []byte {
	b := []byte{0x05, 0x00}
	for range n {
		b = append([]byte{0x30, byte(len(b))}, b...)
		if len(b) > 120 {
			break
		}
	}
	return b
}

// Many tiny elements cost far more memory decoded than encoded; their
// number is bounded.
func TestDecodeBERBoundsElements(t *testing.T) {
	content := bytes.Repeat([]byte{0x05, 0x00}, maxElements)
	b := append([]byte{0x30, 0x83, byte(len(content) >> 16), byte(len(content) >> 8), byte(len(content))}, content...)
	if _, err := decodeBER(b, 37); err == nil {
		t.Fatal("accepted a message of more elements than the bound")
	}
}

func TestWriteNotMutatingShared(t *testing.T) {
	// Writing into a decoded packet's Data must not spill into its
	// neighbour: the buffers are capped views of one message.
	p, err := decodeBER([]byte{0x30, 0x06, 0x04, 0x01, 'a', 0x04, 0x01, 'b'}, 4)
	if err != nil {
		t.Fatal(err)
	}
	p.Children[0].Data.WriteString("XYZ")
	if got := p.Children[1].Data.String(); got != "b" {
		t.Fatalf("neighbour changed to %q", got)
	}
}
