package ldapserver_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	ldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

// bigOr is an OR of n presence filters: n+1 BER elements.
func bigOr(n int) *ber.Packet {
	or := ber.Encode(ber.ClassContext, ber.TypeConstructed, ldap.FilterOr, nil, "or")
	for range n {
		or.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, ldap.FilterPresent, "cn", "present"))
	}
	return or
}

// addOp is an AddRequest of an entry with one attribute of value v.
func addOp(v string) *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationAddRequest, nil, "add")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, aliceDN, "dn"))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
	a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attribute")
	a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "jpegPhoto", "type"))
	vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "values")
	vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "value"))
	a.AppendChild(vals)
	attrs.AppendChild(a)
	op.AppendChild(attrs)
	return op
}

// A search over a limit (filter depth, element count, message size) is
// well-framed, so the server answers it with adminLimitExceeded and the
// connection stays usable. Before, the connection was closed: a filter of
// about 650 KB, or nested 33 deep, cost the client its connection and, on
// the way, often the notice of disconnection too.
func TestOverLimitSearchKeepsConnection(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{users: 3}, MaxMessageSize: 512 << 10})
	tests := []struct {
		name    string
		send    []byte
		respTag ber.Tag
		msg     string
	}{
		{"filter nested 40 deep", envelope(7, searchOp(t, nestedNot(40))), ldap.ApplicationSearchResultDone, "filter nested deeper than 32 levels"},
		{"filter nested 33 deep", envelope(7, searchOp(t, nestedNot(32))), ldap.ApplicationSearchResultDone, "filter nested deeper than 32 levels"},
		{"BER nested 5000 deep", envelope(7, func() *ber.Packet {
			p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "")
			p.Data.Write(deepBER(5000))
			return p
		}()), ldap.ApplicationSearchResultDone, "nested deeper than"},
		{"too many elements", envelope(7, searchOp(t, bigOr(70000))), ldap.ApplicationSearchResultDone, "more than 65536 elements"},
		{"search over MaxMessageSize", envelope(7, searchOp(t, compileFilter(t, "(cn="+strings.Repeat("x", 1<<20)+")"))),
			ldap.ApplicationSearchResultDone, "exceeds the limit of 524288 bytes"},
		{"add over MaxMessageSize", envelope(7, addOp(strings.Repeat("x", 600<<10))), ldap.ApplicationAddResponse, "exceeds the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := srv.raw(t)
			mustWrite(t, nc, tt.send)
			id, tag, code, p := readResponse(t, nc)
			msg := string(p.Children[1].Children[2].Data.Bytes())
			if id != 7 || tag != tt.respTag || code != ldap.LDAPResultAdminLimitExceeded || !strings.Contains(msg, tt.msg) {
				t.Fatalf("got id %d, tag %d, code %d, message %q; want id 7, tag %d, code 11, message with %q", id, tag, code, msg, tt.respTag, tt.msg)
			}
			// The same connection goes on.
			mustWrite(t, nc, envelope(8, searchOp(t, compileFilter(t, "(cn=*)"))))
			for entries := 0; ; {
				id, tag, code, _ := readResponse(t, nc)
				if tag == ldap.ApplicationSearchResultEntry {
					entries++
					continue
				}
				if id != 8 || tag != ldap.ApplicationSearchResultDone || code != 0 || entries != 3 {
					t.Fatalf("next search: id %d, tag %d, code %d, %d entries", id, tag, code, entries)
				}
				break
			}
		})
	}
	if !strings.Contains(srv.logs.String(), "over a limit") {
		t.Error("refusals were not logged")
	}
	// At the limit, a filter is served.
	nc := srv.raw(t)
	mustWrite(t, nc, envelope(9, searchOp(t, nestedNot(31))))
	for {
		id, tag, code, _ := readResponse(t, nc)
		if tag == ldap.ApplicationSearchResultEntry {
			continue
		}
		if id != 9 || tag != ldap.ApplicationSearchResultDone || code != 0 {
			t.Errorf("filter nested 32 deep: id %d, tag %d, code %d", id, tag, code)
		}
		break
	}
}

// A request that must end the connection (here a bind longer than the
// server reads past) gets its notice of disconnection even while the
// client is still sending: the server half-closes and reads on for a
// moment instead of closing a socket with unread input, which makes the
// kernel send a reset that can destroy the notice. The client sees the
// notice, then an orderly end of stream.
func TestNoticeSurvivesUnreadInput(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}, MaxMessageSize: 16 << 10})
	nc := srv.raw(t)
	// A bind declared 1 MiB long: beyond 16 x 16 KiB, so it is not read
	// past. The client sends 256 KiB of it before reading.
	msg := append([]byte{0x30, 0x83, 0x10, 0x00, 0x00, 0x02, 0x01, 0x01, 0x60, 0x83, 0x0f, 0xff, 0xf8},
		make([]byte, 256<<10)...)
	wrote := make(chan error, 1)
	go func() {
		_, err := nc.Write(msg)
		wrote <- err
	}()
	p, err := ber.ReadPacket(nc)
	if err != nil {
		t.Fatalf("no notice of disconnection: %v", err)
	}
	if id := p.Children[0].Value.(int64); id != 0 {
		t.Errorf("notice has message ID %d", id)
	}
	op := p.Children[1]
	code, _ := ber.ParseInt64(op.Children[0].Data.Bytes())
	if oid := string(op.Children[len(op.Children)-1].Data.Bytes()); code != ldap.LDAPResultProtocolError || oid != "1.3.6.1.4.1.1466.20036" {
		t.Errorf("notice: code %d, name %q", code, oid)
	}
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("after the notice: %v, want an orderly end of stream", err)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Errorf("the server reset the connection while the client was sending: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the client's write did not finish")
	}
}
