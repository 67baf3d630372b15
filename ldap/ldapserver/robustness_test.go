package ldapserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	ldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

// nestedNot returns a filter of depth nots around a presence filter.
func nestedNot(depth int) *ber.Packet {
	f := ber.NewString(ber.ClassContext, ber.TypePrimitive, ldap.FilterPresent, "cn", "present")
	for range depth {
		n := ber.Encode(ber.ClassContext, ber.TypeConstructed, ldap.FilterNot, nil, "not")
		n.AppendChild(f)
		f = n
	}
	return f
}

// deepBER returns n nested SEQUENCEs as raw bytes with minimal lengths.
func deepBER(n int) []byte {
	b := []byte{0x05, 0x00} // NULL
	for range n {
		b = append(encodeTL(0x30, len(b)), b...)
	}
	return b
}

func encodeTL(tag byte, n int) []byte {
	switch {
	case n < 0x80:
		return []byte{tag, byte(n)}
	case n < 0x100:
		return []byte{tag, 0x81, byte(n)}
	case n < 0x10000:
		return []byte{tag, 0x82, byte(n >> 8), byte(n)}
	}
	return []byte{tag, 0x83, byte(n >> 16), byte(n >> 8), byte(n)}
}

// Hostile or broken input ends only the connection that sent it, with a
// notice of disconnection where the stream allows one, and never brings
// the server down: another client is served right after. (Searches over a
// limit keep their connection: TestOverLimitSearchKeepsConnection.)
func TestMalformedInputClosesOnlyThatConnection(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{users: 3}, MaxMessageSize: 64 << 10})
	tests := []struct {
		name   string
		send   []byte
		notice bool // a notice of disconnection (protocolError) is expected
	}{
		{"text garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true},
		{"huge length", []byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01}, true},
		{"length of 8 bytes", []byte{0x30, 0x88, 0, 0, 0, 1, 0, 0, 0, 0}, true},
		{"over MaxMessageSize", append([]byte{0x30, 0x83, 0x01, 0x00, 0x01}, make([]byte, 16)...), true},
		{"indefinite length", []byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00}, true},
		{"deep BER nesting in a bind", envelope(1, func() *ber.Packet {
			p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "")
			p.Data.Write(deepBER(5000))
			return p
		}()), true},
		{"message ID not an integer", []byte{0x30, 0x05, 0x04, 0x01, 0x41, 0x42, 0x00}, true},
		{"unknown operation", envelope(1, ber.Encode(ber.ClassApplication, ber.TypeConstructed, 30, nil, "")), true},
		{"response sent as request", envelope(1, ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindResponse, nil, "")), true},
		{"truncated message", []byte{0x30, 0x10, 0x02, 0x01}, false},
		{"search with a broken filter", envelope(1, searchOp(t, ber.Encode(ber.ClassContext, ber.TypeConstructed, ldap.FilterNot, nil, "empty not"))), true},
		{"bind with a string version", envelope(1, func() *ber.Packet {
			p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "")
			p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "3", ""))
			p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, aliceDN, ""))
			p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, alicePass, ""))
			return p
		}()), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := srv.raw(t)
			if _, err := nc.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.name == "truncated message" {
				_ = nc.(*net.TCPConn).CloseWrite()
			}
			got := expectClosed(t, nc)
			if tt.notice {
				p, err := ber.DecodePacketErr(got)
				if err != nil {
					t.Fatalf("no notice of disconnection before close (got %x): %v", got, err)
				}
				id := p.Children[0].Value.(int64)
				op := p.Children[1]
				code, _ := ber.ParseInt64(op.Children[0].Data.Bytes())
				oid := string(op.Children[len(op.Children)-1].Data.Bytes())
				if id != 0 || code != ldap.LDAPResultProtocolError || oid != "1.3.6.1.4.1.1466.20036" {
					t.Errorf("notice: id %d, code %d, name %q", id, code, oid)
				}
			}
			// The server still serves.
			l := srv.dial(t)
			res, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(cn=*)", nil, nil))
			if err != nil || len(res.Entries) != 3 {
				t.Fatalf("server unusable after %s: %v", tt.name, err)
			}
		})
	}
	if !strings.Contains(srv.logs.String(), "malformed") {
		t.Error("malformed messages were not logged")
	}
}

// A filter nested within MaxFilterDepth is accepted and decompiled.
func TestFilterDepthWithinLimit(t *testing.T) {
	var got string
	h := &testHandler{search: func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		got = req.FilterString
		return ldapserver.Result{}
	}}
	srv := startServer(t, &ldapserver.Server{Handler: h})
	filter := strings.Repeat("(!", 20) + "(cn=*)" + strings.Repeat(")", 20)
	if _, err := srv.dial(t).Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, filter, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if got != filter {
		t.Errorf("FilterString = %q", got)
	}
}

// Abandon cancels the operation's context and its response is never sent.
func TestAbandon(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	h := &testHandler{users: 1}
	h.search = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		if req.BaseDN != "cn=slow" {
			return (&testHandler{users: 1}).Search(ctx, c, req, w)
		}
		close(started)
		<-ctx.Done()
		close(cancelled)
		_ = w.WriteEntry(userEntry(0)) // refused: nothing may reach the client
		return ldapserver.Result{}
	}
	srv := startServer(t, &ldapserver.Server{Handler: h})
	nc := srv.raw(t)
	slow := searchOpBase(t, "cn=slow", compileFilter(t, "(cn=*)"))
	mustWrite(t, nc, envelope(1, slow))
	<-started
	mustWrite(t, nc, envelope(2, ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationAbandonRequest, int64(1), "abandon")))
	<-cancelled
	mustWrite(t, nc, envelope(3, searchOp(t, compileFilter(t, "(cn=*)"))))
	// Only message 3's entry and result arrive.
	for _, want := range []ber.Tag{ldap.ApplicationSearchResultEntry, ldap.ApplicationSearchResultDone} {
		id, tag, _, _ := readResponse(t, nc)
		if id != 3 || tag != want {
			t.Fatalf("got message %d tag %d, want message 3 tag %d", id, tag, want)
		}
	}
}

func mustWrite(t *testing.T, nc net.Conn, b []byte) {
	t.Helper()
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// A bind waits for the operations before it and the ones after it wait
// for the bind (RFC 4511 4.2.1), even when the client pipelines them.
func TestBindSerialisesWithOtherOperations(t *testing.T) {
	var active, overlap atomic.Int32
	h := &testHandler{}
	h.search = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		active.Add(1)
		defer active.Add(-1)
		time.Sleep(20 * time.Millisecond) // widen the window a bind could slip into
		_ = w.WriteEntry(&ldapserver.Entry{DN: "cn=seen", Attributes: []ldapserver.Attribute{{Type: "boundAs", Values: []string{c.BoundDN()}}}})
		return ldapserver.Result{}
	}
	h.bind = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.BindRequest) ldapserver.Result {
		if active.Load() != 0 {
			overlap.Add(1)
		}
		time.Sleep(20 * time.Millisecond)
		return ldapserver.Result{}
	}
	srv := startServer(t, &ldapserver.Server{Handler: h})
	nc := srv.raw(t)
	bind := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "")
	bind.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(3), ""))
	bind.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, aliceDN, ""))
	bind.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, alicePass, ""))
	var msgs bytes.Buffer
	msgs.Write(envelope(1, searchOp(t, compileFilter(t, "(cn=*)"))))
	msgs.Write(envelope(2, searchOp(t, compileFilter(t, "(cn=*)"))))
	msgs.Write(envelope(3, bind))
	msgs.Write(envelope(4, searchOp(t, compileFilter(t, "(cn=*)"))))
	mustWrite(t, nc, msgs.Bytes())
	boundAs := map[int64]string{}
	for done := 0; done < 4; {
		id, tag, _, p := readResponse(t, nc)
		switch tag {
		case ldap.ApplicationSearchResultEntry:
			attrs := p.Children[1].Children[1]
			boundAs[id] = string(attrs.Children[0].Children[1].Children[0].Data.Bytes())
		default:
			done++
		}
	}
	if overlap.Load() != 0 {
		t.Error("a bind ran while searches were in flight")
	}
	if boundAs[1] != "" || boundAs[2] != "" || boundAs[4] != aliceDN {
		t.Errorf("searches saw bound DNs %v", boundAs)
	}
}

// MaxOpsPerConn bounds the operations in flight; the rest wait and are
// all answered.
func TestMaxOpsPerConn(t *testing.T) {
	const limit, sent = 2, 12
	var active, peak atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	h := &testHandler{search: func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n == limit {
			once.Do(func() { close(release) })
		}
		<-release
		return ldapserver.Result{}
	}}
	srv := startServer(t, &ldapserver.Server{Handler: h, MaxOpsPerConn: limit})
	nc := srv.raw(t)
	var msgs bytes.Buffer
	for i := range sent {
		msgs.Write(envelope(int64(i+1), searchOp(t, compileFilter(t, "(cn=*)"))))
	}
	mustWrite(t, nc, msgs.Bytes())
	seen := map[int64]bool{}
	for range sent {
		id, tag, code, _ := readResponse(t, nc)
		if tag != ldap.ApplicationSearchResultDone || code != 0 || seen[id] {
			t.Fatalf("unexpected response id %d tag %d code %d", id, tag, code)
		}
		seen[id] = true
	}
	if p := peak.Load(); p > limit {
		t.Errorf("%d operations ran at once, limit %d", p, limit)
	}
}

// Thousands of pipelined operations and abandons of them on one
// connection are all accounted for, and the server stays responsive.
func TestOperationStorm(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{users: 1}})
	nc := srv.raw(t)
	const n = 2000
	var msgs bytes.Buffer
	for i := 1; i <= n; i++ {
		msgs.Write(envelope(int64(2*i), searchOp(t, compileFilter(t, "(cn=*)"))))
		msgs.Write(envelope(int64(2*i+1), ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationAbandonRequest, int64(2*i-2), "abandon")))
	}
	// Written concurrently with reading the responses, as a real client's
	// socket would be; the last search ends the loop below, after which
	// the write has completed.
	wrote := make(chan error, 1)
	go func() {
		_, err := nc.Write(msgs.Bytes())
		wrote <- err
	}()
	defer func() {
		if err := <-wrote; err != nil {
			t.Error(err)
		}
	}()
	done := 0
	for done < n {
		// Abandoned searches may or may not have answered; every search
		// that was not abandoned in time does. Count until the last one,
		// which nothing abandons.
		id, tag, _, _ := readResponse(t, nc)
		if tag == ldap.ApplicationSearchResultDone {
			done++
			if id == 2*n {
				break
			}
		}
	}
	l := srv.dial(t)
	if err := l.Bind(aliceDN, alicePass); err != nil {
		t.Fatal(err)
	}
}

// Shutdown drains: a search in flight when Serve's context ends completes
// and reaches the client, then Serve returns.
func TestShutdownDrainsOperations(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := &testHandler{search: func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		close(started)
		<-release
		if err := w.WriteEntry(userEntry(1)); err != nil {
			return ldapserver.Failure(ldap.LDAPResultOther, "%v", err)
		}
		return ldapserver.Result{}
	}}
	srv := startServer(t, &ldapserver.Server{Handler: h, DrainTimeout: time.Minute})
	l := srv.dial(t)
	type result struct {
		res *ldap.SearchResult
		err error
	}
	got := make(chan result, 1)
	go func() {
		res, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(cn=*)", nil, nil))
		got <- result{res, err}
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- srv.stop() }()
	close(release)
	r := <-got
	if r.err != nil || len(r.res.Entries) != 1 {
		t.Fatalf("search in flight during shutdown: %v, %v", r.res, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// Past DrainTimeout, operations left are cancelled and Serve returns.
func TestShutdownCancelsAfterDrainTimeout(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	h := &testHandler{search: func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ldapserver.Failure(ldap.LDAPResultUnavailable, "shutting down")
	}}
	srv := startServer(t, &ldapserver.Server{Handler: h, DrainTimeout: 50 * time.Millisecond})
	l := srv.dial(t)
	go func() { _, _ = l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(cn=*)", nil, nil)) }()
	<-started
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	<-cancelled
}

func TestIdleTimeout(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}, IdleTimeout: 50 * time.Millisecond})
	nc := srv.raw(t)
	if got := expectClosed(t, nc); len(got) != 0 {
		t.Errorf("idle close sent %x", got)
	}
}

// observer records connections and lets a test end a session from the
// server side, as a session-end message from the core would.
type observer struct {
	testHandler
	mu     sync.Mutex
	conns  map[uint64]*ldapserver.Conn
	closed chan uint64
}

func (o *observer) ConnOpened(c *ldapserver.Conn) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.conns[c.ID()] = c
	c.SetValue("opened", true)
	return nil
}

func (o *observer) ConnClosed(c *ldapserver.Conn) { o.closed <- c.ID() }

func TestConnObserverAndServerSideClose(t *testing.T) {
	o := &observer{conns: map[uint64]*ldapserver.Conn{}, closed: make(chan uint64, 1)}
	srv := startServer(t, &ldapserver.Server{Handler: o})
	l := srv.dial(t)
	if err := l.Bind(aliceDN, alicePass); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	var c *ldapserver.Conn
	for _, cc := range o.conns {
		c = cc
	}
	o.mu.Unlock()
	if c == nil || c.BoundDN() != aliceDN || c.Value("opened") != true || c.RemoteAddr() == nil || c.TLS() != nil {
		t.Fatalf("connection state: %+v", c)
	}
	if err := c.CloseWithNotice(ldap.LDAPResultUnavailable, "session ended"); err != nil {
		t.Fatal(err)
	}
	if id := <-o.closed; id != c.ID() {
		t.Errorf("ConnClosed for %d, want %d", id, c.ID())
	}
	if c.Context().Err() == nil {
		t.Error("connection context still live after close")
	}
	if _, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(cn=*)", nil, nil)); err == nil {
		t.Error("search succeeded on a connection the server closed")
	}
}

func extendedOp(oid string) *ber.Packet {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "extended")
	e.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oid, "name"))
	return e
}

const oidStartTLS = "1.3.6.1.4.1.1466.20037"

// StartTLS is refused with operationsError while operations are in flight
// and once TLS is active (RFC 4511 4.14.2), and the connection goes on.
func TestStartTLSRefusals(t *testing.T) {
	cert, pool := selfSigned(t, "ldap.example.org")
	started := make(chan struct{})
	release := make(chan struct{})
	h := &testHandler{}
	h.search = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		if req.BaseDN == "cn=slow" {
			close(started)
			<-release
		}
		return ldapserver.Result{}
	}
	srv := startServer(t, &ldapserver.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	nc := srv.raw(t)

	mustWrite(t, nc, envelope(1, searchOpBase(t, "cn=slow", compileFilter(t, "(cn=*)"))))
	<-started
	mustWrite(t, nc, envelope(2, extendedOp(oidStartTLS)))
	if id, tag, code, _ := readResponse(t, nc); id != 2 || tag != ldap.ApplicationExtendedResponse || code != ldap.LDAPResultOperationsError {
		t.Fatalf("StartTLS with a search in flight: id %d tag %d code %d", id, tag, code)
	}
	close(release)
	if id, _, code, _ := readResponse(t, nc); id != 1 || code != 0 {
		t.Fatalf("search: id %d code %d", id, code)
	}

	mustWrite(t, nc, envelope(3, extendedOp(oidStartTLS)))
	if id, _, code, _ := readResponse(t, nc); id != 3 || code != 0 {
		t.Fatalf("StartTLS: id %d code %d", id, code)
	}
	tc := tls.Client(nc, &tls.Config{RootCAs: pool, ServerName: "ldap.example.org"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, tc, envelope(4, extendedOp(oidStartTLS)))
	if id, _, code, _ := readResponse(t, tc); id != 4 || code != ldap.LDAPResultOperationsError {
		t.Fatalf("second StartTLS: id %d code %d", id, code)
	}
	mustWrite(t, tc, envelope(5, searchOp(t, compileFilter(t, "(cn=*)"))))
	if id, _, code, _ := readResponse(t, tc); id != 5 || code != 0 {
		t.Fatalf("search over TLS: id %d code %d", id, code)
	}
}

// Unbind ends the connection without a response.
func TestUnbindCloses(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}})
	nc := srv.raw(t)
	mustWrite(t, nc, envelope(1, ber.Encode(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationUnbindRequest, nil, "unbind")))
	if got := expectClosed(t, nc); len(got) != 0 {
		t.Errorf("unbind answered with %x", got)
	}
}

// An extended operation the handler implements reaches it; the layer
// keeps StartTLS and WhoAmI.
type extHandler struct{ testHandler }

func (*extHandler) Extended(ctx context.Context, c *ldapserver.Conn, req *ldapserver.ExtendedRequest) ldapserver.ExtendedResult {
	return ldapserver.ExtendedResult{OID: req.OID, Value: append([]byte("echo:"), req.Value...)}
}

func TestExtendedHandler(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &extHandler{}})
	res, err := srv.dial(t).Extended(ldap.NewExtendedRequest("1.2.3.4", ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, "x", "value")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Value == nil || res.Value.Data.String() != "echo:x" {
		t.Fatalf("response value = %v", res.Value)
	}
}

// countingHandler records the most connections open at once.
type countingHandler struct {
	testHandler
	open, peak atomic.Int32
}

func (h *countingHandler) ConnOpened(c *ldapserver.Conn) error {
	n := h.open.Add(1)
	for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
	}
	return nil
}

func (h *countingHandler) ConnClosed(c *ldapserver.Conn) { h.open.Add(-1) }

// At MaxConns, further clients wait in the backlog and are served once a
// connection ends.
func TestMaxConns(t *testing.T) {
	h := &countingHandler{}
	srv := startServer(t, &ldapserver.Server{Handler: h, MaxConns: 1})
	first := srv.dial(t)
	if err := first.Bind(aliceDN, alicePass); err != nil {
		t.Fatal(err)
	}
	second := srv.raw(t)
	mustWrite(t, second, envelope(1, extendedOp("1.3.6.1.4.1.4203.1.11.3")))
	first.Close()
	if id, tag, code, _ := readResponse(t, second); id != 1 || tag != ldap.ApplicationExtendedResponse || code != 0 {
		t.Fatalf("second client: id %d tag %d code %d", id, tag, code)
	}
	if p := h.peak.Load(); p != 1 {
		t.Errorf("%d connections were served at once, MaxConns 1", p)
	}
}
