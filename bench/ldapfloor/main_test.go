package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testOptions() options {
	return options{
		maxMessage:   4096,
		idleTimeout:  time.Minute,
		writeTimeout: time.Minute,
		entry: entryShape{
			dn: "cn=user7,ou=users,dc=example,dc=org", cn: "user7", uid: "abc123",
			memberOf: []string{"cn=group1,ou=groups,dc=example,dc=org"},
		},
	}
}

// start runs a floor server on a loopback port until the test ends.
func start(t *testing.T, o options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(o)
	done := make(chan error, 1)
	go func() { done <- s.serve(ln) }()
	t.Cleanup(func() {
		s.close(ln)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestGoLDAPClient runs binds and searches through go-ldap, past message
// IDs that need two and three octets.
func TestGoLDAPClient(t *testing.T) {
	addr := start(t, testOptions())
	c, err := ldap.DialURL("ldap://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 300 {
		if i%3 == 0 {
			if err := c.Bind("cn=anyone,dc=example,dc=org", "whatever"); err != nil {
				t.Fatalf("bind %d: %v", i, err)
			}
			continue
		}
		res, err := c.Search(ldap.NewSearchRequest("dc=example,dc=org", ldap.ScopeWholeSubtree,
			ldap.NeverDerefAliases, 0, 0, false, "(uid=nobody)", []string{"cn"}, nil))
		if err != nil {
			t.Fatalf("search %d: %v", i, err)
		}
		if len(res.Entries) != 1 {
			t.Fatalf("search %d: %d entries, want 1", i, len(res.Entries))
		}
		e := res.Entries[0]
		if e.DN != "cn=user7,ou=users,dc=example,dc=org" || e.GetAttributeValue("cn") != "user7" ||
			e.GetAttributeValue("uid") != "abc123" ||
			e.GetAttributeValue("memberOf") != "cn=group1,ou=groups,dc=example,dc=org" {
			t.Fatalf("search %d: entry %+v", i, e)
		}
		if e.GetAttributeValue("mail") != "" {
			t.Fatalf("search %d: an empty mail was sent", i)
		}
	}
}

// rawConn sends hand-made messages and reads the answers.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawConn) send(b ...[]byte) {
	c.t.Helper()
	if _, err := c.nc.Write(bytes.Join(b, nil)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next message's ID, protocolOp tag and result code (-1
// when it has none).
func (c *rawConn) read() (id int64, op byte, code int64) {
	c.t.Helper()
	p, err := ber.ReadPacket(c.r)
	if err != nil {
		c.t.Fatalf("reading an answer: %v", err)
	}
	if len(p.Children) < 2 {
		c.t.Fatalf("answer with %d elements", len(p.Children))
	}
	id = p.Children[0].Value.(int64)
	o := p.Children[1]
	op = byte(o.ClassType) | byte(o.TagType) | byte(o.Tag)
	code = -1
	if op != 0x64 && len(o.Children) > 0 {
		code = o.Children[0].Value.(int64)
	}
	return id, op, code
}

// closed checks that the server closed the connection.
func (c *rawConn) closed() {
	c.t.Helper()
	if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
		c.t.Fatalf("connection still open (read: %v)", err)
	}
}

func message(id int64, op *ber.Packet, controls ...*ber.Packet) []byte {
	m := ber.NewSequence("LDAPMessage")
	m.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "messageID"))
	m.AppendChild(op)
	if len(controls) > 0 {
		cs := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "controls")
		for _, c := range controls {
			cs.AppendChild(c)
		}
		m.AppendChild(cs)
	}
	return m.Bytes()
}

func bindRequest(id int64) []byte {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 0, nil, "bind")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "version"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x", "name"))
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "pw", "simple"))
	return message(id, op)
}

func searchRequest(id int64, controls ...*ber.Packet) []byte {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 3, nil, "search")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "dc=example,dc=org", "base"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 2, "scope"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "deref"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "sizeLimit"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "timeLimit"))
	op.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "typesOnly"))
	f := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "equalityMatch")
	f.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "uid", "attr"))
	f.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "user1", "value"))
	op.AppendChild(f)
	attrs := ber.NewSequence("attributes")
	attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn", "attr"))
	op.AppendChild(attrs)
	return message(id, op, controls...)
}

func control(oid string) *ber.Packet {
	c := ber.NewSequence("control")
	c.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oid, "type"))
	return c
}

// TestMessageIDs checks that IDs of every length are echoed, in order,
// for requests sent back to back (with and without controls).
func TestMessageIDs(t *testing.T) {
	c := dial(t, start(t, testOptions()))
	ids := []int64{1, 127, 128, 255, 256, 65535, 65536, 1<<24 - 1, 1 << 24, 1<<31 - 1}
	var reqs [][]byte
	for i, id := range ids {
		if i%2 == 0 {
			reqs = append(reqs, bindRequest(id))
		} else {
			reqs = append(reqs, searchRequest(id, control("1.2.840.113556.1.4.319")))
		}
	}
	c.send(reqs...)
	for i, want := range ids {
		if i%2 == 0 {
			id, op, code := c.read()
			if id != want || op != 0x61 || code != 0 {
				t.Fatalf("bind %d: id %d op 0x%02x code %d", want, id, op, code)
			}
			continue
		}
		id, op, _ := c.read()
		if id != want || op != 0x64 {
			t.Fatalf("search %d: entry id %d op 0x%02x", want, id, op)
		}
		id, op, code := c.read()
		if id != want || op != 0x65 || code != 0 {
			t.Fatalf("search %d: done id %d op 0x%02x code %d", want, id, op, code)
		}
	}
}

// TestAbandonAndUnbind: abandon has no answer and the connection goes on;
// unbind closes it.
func TestAbandonAndUnbind(t *testing.T) {
	c := dial(t, start(t, testOptions()))
	abandon := ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, 16, 1, "abandon")
	c.send(message(2, abandon), bindRequest(3))
	if id, op, code := c.read(); id != 3 || op != 0x61 || code != 0 {
		t.Fatalf("bind after abandon: id %d op 0x%02x code %d", id, op, code)
	}
	unbind := ber.Encode(ber.ClassApplication, ber.TypePrimitive, 2, nil, "unbind")
	c.send(message(4, unbind), bindRequest(5))
	c.closed()
}

// TestUnserved: operations the floor does not serve are refused with the
// response their request calls for.
func TestUnserved(t *testing.T) {
	c := dial(t, start(t, testOptions()))
	del := ber.NewString(ber.ClassApplication, ber.TypePrimitive, 10, "cn=x", "del")
	c.send(message(9, del))
	if id, op, code := c.read(); id != 9 || op != 0x6b || code != 53 {
		t.Fatalf("delete: id %d op 0x%02x code %d", id, op, code)
	}
	ext := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 23, nil, "extended")
	ext.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.4203.1.11.3", "whoami"))
	c.send(message(10, ext))
	if id, op, code := c.read(); id != 10 || op != 0x78 || code != 53 {
		t.Fatalf("extended: id %d op 0x%02x code %d", id, op, code)
	}
}

// TestMalformed: what cannot be parsed or is too large ends the connection
// with a notice of disconnection.
func TestMalformed(t *testing.T) {
	addr := start(t, testOptions())
	for name, msg := range map[string][]byte{
		"not a sequence":      {0x31, 0x03, 0x02, 0x01, 0x01},
		"over the size bound": append([]byte{0x30, 0x82, 0x10, 0x01}, make([]byte, 4097)...),
		"indefinite length":   {0x30, 0x80, 0x02, 0x01, 0x01},
		"inner overflow":      {0x30, 0x07, 0x02, 0x01, 0x01, 0x60, 0x02, 0x02, 0x05},
		"message ID 0":        bindRequest(0),
		"negative message ID": {0x30, 0x05, 0x02, 0x01, 0xff, 0x42, 0x00},
		"unknown operation":   {0x30, 0x05, 0x02, 0x01, 0x01, 0x5f, 0x00},
		"trailing data":       append(append([]byte{0x30, 0x09}, bindRequest(1)[2:]...), 0x04, 0x00),
		"nested too deep":     deep(maxDepth + 2),
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, addr)
			c.send(msg)
			id, op, code := c.read()
			if id != 0 || op != 0x78 || code != resultProtocolError {
				t.Fatalf("id %d op 0x%02x code %d, want a notice of disconnection", id, op, code)
			}
			c.closed()
		})
	}
}

// deep is a search whose content nests n levels. go-asn1-ber copies a
// child's bytes into its parent when appended, so it is built from the
// inside out.
func deep(n int) []byte {
	p := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "and")
	for range n - 1 {
		parent := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "and")
		parent.AppendChild(p)
		p = parent
	}
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 3, nil, "search")
	op.AppendChild(p)
	return message(1, op)
}

// TestRespondAllocates nothing per answer.
func TestRespondAllocates(t *testing.T) {
	s := newServer(testOptions())
	c := &conn{s: s, w: bufio.NewWriter(io.Discard)}
	n := testing.AllocsPerRun(100, func() {
		c.respond(70000, s.entry)
		c.respond(70000, s.searchDone)
		_ = c.w.Flush()
	})
	if n != 0 {
		t.Fatalf("%v allocations per answer", n)
	}
}
