// Command ldapfloor is the protocol floor of bench/ldap.sh: an LDAP server
// that does what every LDAP server must do on the wire and nothing else.
// It answers every bind with success and every search with one canned
// entry and searchResDone, whatever was asked: no lookup, no filter, no
// password check.
//
//	ldapfloor -listen 127.0.0.1:3389
//
// What it keeps of a real server is the connection handling: one goroutine
// per connection, whole LDAPMessage frames read through a buffered reader
// with a bound on their size, the request's BER structure checked element
// by element (a malformed or oversized message ends the connection with a
// notice of disconnection), an idle timeout and a write timeout, message
// IDs echoed, unbind and abandon honoured, and every response group
// (bindResponse; searchResEntry and searchResDone) leaving in one write of
// its own, never batched with the answer to another request.
//
// The responses are encoded once at start with go-asn1-ber; per request
// only the LDAPMessage header is built around them: the SEQUENCE length
// and the message ID, which differ from request to request.
//
// The canned entry has the shape of what the outpost returns in the
// benchmark (bench/genblueprint's users): cn, uid (a 64-character hex
// string, as authentik's hashed user id), mail when -mail is set (the
// benchmark's users have none, and the outpost leaves empty attributes
// out, as RFC 4511 asks) and memberOf with one group.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// options are the command's flags.
type options struct {
	listen       string
	maxMessage   int
	idleTimeout  time.Duration
	writeTimeout time.Duration
	entry        entryShape
}

// entryShape is the canned search entry.
type entryShape struct {
	dn, cn, uid, mail string
	memberOf          []string
}

func main() {
	o := options{}
	var memberOf string
	flag.StringVar(&o.listen, "listen", "127.0.0.1:3389", "address to listen on")
	flag.IntVar(&o.maxMessage, "maxmsg", 1<<20, "largest LDAPMessage accepted, in bytes")
	flag.DurationVar(&o.idleTimeout, "idle", 5*time.Minute, "close a connection idle this long (0: never)")
	flag.DurationVar(&o.writeTimeout, "writetimeout", 30*time.Second, "give up a write after this long (0: never)")
	flag.StringVar(&o.entry.dn, "dn", "cn=user5000,ou=users,dc=ldap,dc=goauthentik,dc=io", "DN of the canned entry")
	flag.StringVar(&o.entry.cn, "cn", "user5000", "cn of the canned entry")
	flag.StringVar(&o.entry.uid, "uid", "6b0247a21926fd69f0c9db2d21211a5e33ed192eaaf2bbe8c25ce4044ea99cc7", "uid of the canned entry")
	flag.StringVar(&o.entry.mail, "mail", "", "mail of the canned entry (none when empty)")
	flag.StringVar(&memberOf, "memberof", "cn=group0,ou=groups,dc=ldap,dc=goauthentik,dc=io", "memberOf of the canned entry (none when empty)")
	flag.Parse()
	if memberOf != "" {
		o.entry.memberOf = []string{memberOf}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Fatalf("ldapfloor: %v", err)
	}
	s := newServer(o)
	fmt.Printf("listening %s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		s.close(ln)
	}()
	if err := s.serve(ln); err != nil {
		log.Fatalf("ldapfloor: %v", err)
	}
}

// LDAP tags of the protocolOp CHOICE (RFC 4511 4.2-4.14), as the identifier
// octet: class and constructed bit included.
const (
	opBindRequest     = 0x60
	opUnbindRequest   = 0x42
	opSearchRequest   = 0x63
	opModifyRequest   = 0x66
	opAddRequest      = 0x68
	opDelRequest      = 0x4a
	opModDNRequest    = 0x6c
	opCompareRequest  = 0x6e
	opAbandonRequest  = 0x50
	opExtendedRequest = 0x77
)

// LDAP result codes used here.
const (
	resultSuccess            = 0
	resultProtocolError      = 2
	resultUnwillingToPerform = 53
)

// maxDepth bounds the nesting of a request's BER: a search with a filter
// nested this deep is refused as malformed.
const maxDepth = 64

// server holds the pre-encoded protocolOps and the open connections.
type server struct {
	o options

	bindOK     []byte // bindResponse, success
	entry      []byte // searchResEntry, the canned entry
	searchDone []byte // searchResDone, success
	// unwilling holds, per request tag of an operation that the floor does
	// not serve but that has a response, the response protocolOp:
	// unwillingToPerform.
	unwilling map[byte][]byte

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newServer(o options) *server {
	s := &server{o: o, conns: map[net.Conn]struct{}{}}
	s.bindOK = result(1, resultSuccess, "").Bytes()
	s.searchDone = result(5, resultSuccess, "").Bytes()
	s.entry = encodeEntry(o.entry)
	s.unwilling = map[byte][]byte{}
	for req, resp := range map[byte]ber.Tag{
		opModifyRequest: 7, opAddRequest: 9, opDelRequest: 11, opModDNRequest: 13, opCompareRequest: 15,
	} {
		s.unwilling[req] = result(resp, resultUnwillingToPerform, "not served by the floor").Bytes()
	}
	ext := result(24, resultUnwillingToPerform, "not served by the floor")
	s.unwilling[opExtendedRequest] = ext.Bytes()
	return s
}

// result is an LDAPResult-shaped protocolOp with application tag tag.
func result(tag ber.Tag, code int, msg string) *ber.Packet {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, "resultCode"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, msg, "diagnosticMessage"))
	return p
}

// notice is the protocolOp of a notice of disconnection (RFC 4511 4.4.1).
func notice(code int, msg string) []byte {
	p := result(24, code, msg)
	p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, "1.3.6.1.4.1.1466.20036", "responseName"))
	return p.Bytes()
}

// encodeEntry is the searchResEntry protocolOp of e, attributes without a
// value left out.
func encodeEntry(e entryShape) []byte {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "SearchResultEntry")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.dn, "objectName"))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
	add := func(name string, values ...string) {
		var kept []string
		for _, v := range values {
			if v != "" {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			return
		}
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attribute")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "type"))
		vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
		for _, v := range kept {
			vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "value"))
		}
		a.AppendChild(vals)
		attrs.AppendChild(a)
	}
	add("cn", e.cn)
	add("uid", e.uid)
	add("mail", e.mail)
	add("memberOf", e.memberOf...)
	p.AppendChild(attrs)
	return p.Bytes()
}

// serve accepts connections until ln is closed, then waits for them to end.
func (s *server) serve(ln net.Listener) error {
	defer s.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// close stops accepting and closes every connection.
func (s *server) close(ln net.Listener) {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	ln.Close()
}

// conn is one client connection's state.
type conn struct {
	s   *server
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	msg []byte // the request being read, reused
}

// errUnbind ends a connection whose client sent unbindRequest.
var errUnbind = errors.New("unbind")

// handle serves one connection until it ends.
func (s *server) handle(nc net.Conn) {
	defer nc.Close()
	c := &conn{s: s, nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	for {
		err := c.next()
		if err == nil {
			continue
		}
		var pe *protocolError
		if errors.As(err, &pe) {
			// A notice of disconnection, then close: the stream cannot
			// be trusted after a malformed message.
			c.respond(0, notice(resultProtocolError, pe.msg))
			if c.flush() == nil {
				linger(nc)
			}
		}
		return
	}
}

// linger half-closes nc after a notice of disconnection and reads what the
// client still sends, for a bounded time and size: closing a socket with
// unread input makes the kernel send a reset, which can destroy the notice
// before the client reads it.
func linger(nc net.Conn) {
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.CopyN(io.Discard, nc, 1<<20)
}

// protocolError is a message the floor cannot parse or accept.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "protocol error: " + e.msg }

func malformed(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// next reads one LDAPMessage and answers it.
func (c *conn) next() error {
	if d := c.s.o.idleTimeout; d > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(d))
	}
	if err := c.readFrame(); err != nil {
		return err
	}
	id, op, err := parseMessage(c.msg)
	if err != nil {
		return err
	}
	switch op {
	case opBindRequest:
		c.respond(id, c.s.bindOK)
	case opSearchRequest:
		c.respond(id, c.s.entry)
		c.respond(id, c.s.searchDone)
	case opUnbindRequest:
		return errUnbind
	case opAbandonRequest:
		// Every operation is answered before the next message is read,
		// so there is never one in flight to abandon (RFC 4511 4.11:
		// abandon has no response).
		return nil
	default:
		b, ok := c.s.unwilling[op]
		if !ok {
			return malformed("unknown operation 0x%02x", op)
		}
		c.respond(id, b)
	}
	return c.flush()
}

// readFrame reads one LDAPMessage into c.msg: its content, after the outer
// SEQUENCE's tag and length.
func (c *conn) readFrame() error {
	tag, err := c.r.ReadByte()
	if err != nil {
		return err
	}
	if tag != 0x30 {
		return malformed("message tag 0x%02x is not a SEQUENCE", tag)
	}
	n, err := readLength(c.r)
	if err != nil {
		return err
	}
	if n > c.s.o.maxMessage {
		return malformed("message of %d bytes, over the limit of %d", n, c.s.o.maxMessage)
	}
	if cap(c.msg) < n {
		c.msg = make([]byte, n)
	}
	c.msg = c.msg[:n]
	if _, err := io.ReadFull(c.r, c.msg); err != nil {
		return fmt.Errorf("reading a message: %w", err)
	}
	return nil
}

// readLength reads a definite BER length of at most four octets.
func readLength(r *bufio.Reader) (int, error) {
	l0, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	if l0 < 0x80 {
		return int(l0), nil
	}
	k := int(l0 & 0x7f)
	if k == 0 {
		return 0, malformed("indefinite length, which LDAP forbids")
	}
	if k > 4 {
		return 0, malformed("length of %d octets", k)
	}
	n := 0
	for range k {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n = n<<8 | int(b)
	}
	return n, nil
}

// parseMessage checks the BER structure of an LDAPMessage's content and
// returns its message ID and the identifier octet of its protocolOp. Every
// element, nested ones included, must be well formed and fit in its
// parent; the optional controls after the protocolOp are checked the same
// way and then ignored.
func parseMessage(b []byte) (id int32, op byte, err error) {
	tag, v, rest, err := element(b)
	if err != nil {
		return 0, 0, err
	}
	if tag != 0x02 || len(v) == 0 || len(v) > 4 || v[0]&0x80 != 0 || len(v) > 1 && v[0] == 0 && v[1]&0x80 == 0 {
		return 0, 0, malformed("bad messageID")
	}
	for _, x := range v {
		id = id<<8 | int32(x)
	}
	if id == 0 {
		// RFC 4511 4.1.1.1: zero is for unsolicited notifications.
		return 0, 0, malformed("messageID 0 in a request")
	}
	op, v, rest, err = element(rest)
	if err != nil {
		return 0, 0, err
	}
	if op&0x20 != 0 {
		if err := walk(v, 1); err != nil {
			return 0, 0, err
		}
	}
	if len(rest) > 0 {
		tag, v, rest, err = element(rest)
		if err != nil {
			return 0, 0, err
		}
		if tag != 0xa0 || len(rest) != 0 {
			return 0, 0, malformed("unexpected data after the protocolOp")
		}
		if err := walk(v, 1); err != nil {
			return 0, 0, err
		}
	}
	return id, op, nil
}

// walk checks that b is a sequence of well-formed BER elements, descending
// into constructed ones.
func walk(b []byte, depth int) error {
	if depth > maxDepth {
		return malformed("BER nested deeper than %d levels", maxDepth)
	}
	for len(b) > 0 {
		tag, v, rest, err := element(b)
		if err != nil {
			return err
		}
		if tag&0x20 != 0 {
			if err := walk(v, depth+1); err != nil {
				return err
			}
		}
		b = rest
	}
	return nil
}

// element splits the first BER element off b: its identifier octet (tags
// above 30, which LDAP never uses, are refused), its value and what
// follows it.
func element(b []byte) (tag byte, v, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, malformed("truncated element")
	}
	tag = b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, malformed("multi-octet tag")
	}
	n, i := int(b[1]), 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(b) < 2+k {
			return 0, nil, nil, malformed("bad length")
		}
		n = 0
		for _, x := range b[2 : 2+k] {
			n = n<<8 | int(x)
		}
		i += k
	}
	if n > len(b)-i {
		return 0, nil, nil, malformed("element longer than its parent")
	}
	return tag, b[i : i+n], b[i+n:], nil
}

// respond buffers one LDAPMessage: the header with id around the
// pre-encoded protocolOp op. The bytes go to the buffer one by one, which
// allocates nothing.
func (c *conn) respond(id int32, op []byte) {
	k := 1
	for x := id; x > 0x7f; x >>= 8 {
		k++
	}
	n := 2 + k + len(op)
	w := c.w
	w.WriteByte(0x30)
	switch {
	case n < 0x80:
	case n < 1<<8:
		w.WriteByte(0x81)
	case n < 1<<16:
		w.WriteByte(0x82)
		w.WriteByte(byte(n >> 8))
	default:
		w.WriteByte(0x84)
		w.WriteByte(byte(n >> 24))
		w.WriteByte(byte(n >> 16))
		w.WriteByte(byte(n >> 8))
	}
	w.WriteByte(byte(n))
	w.WriteByte(0x02)
	w.WriteByte(byte(k))
	for i := k - 1; i >= 0; i-- {
		w.WriteByte(byte(id >> (8 * i)))
	}
	w.Write(op)
}

// flush sends what respond buffered, in one write.
func (c *conn) flush() error {
	if d := c.s.o.writeTimeout; d > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	}
	return c.w.Flush()
}
