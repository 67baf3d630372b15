package main

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
)

// listen opens a TCP listener that accepts the PROXY protocol (v1 and v2)
// from the trusted ranges, as authentik's listeners do. A header from any
// other peer is refused, so an untrusted client cannot spoof its address.
func listen(addr string, trusted []string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if len(trusted) == 0 {
		return ln, nil
	}
	policy, err := proxyproto.PolicyFromRanges(trusted, proxyproto.USE, proxyproto.REJECT)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("trusted proxy ranges: %w", err)
	}
	return proxyListener{&proxyproto.Listener{
		Listener:          ln,
		ConnPolicy:        policy,
		ReadHeaderTimeout: 10 * time.Second,
	}}, nil
}

// proxyListener hands out its connections as proxyConns.
type proxyListener struct{ *proxyproto.Listener }

func (l proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if pc, ok := c.(*proxyproto.Conn); ok {
		return &proxyConn{Conn: pc, raw: pc.Raw()}, nil
	}
	return c, nil
}

// proxyConn sends writes and deadlines straight to the TCP connection
// once the PROXY header has been dealt with: proxyproto.Conn checks for
// the header on every call and boxes every read deadline into an
// atomic.Value (an allocation), and http.Server sets read deadlines four
// times per request. Reads, and everything else, still go through
// proxyproto.Conn, which returns what it buffered while looking for the
// header first and reports the client's address from the header.
type proxyConn struct {
	*proxyproto.Conn
	raw net.Conn
	// ready is set after a successful Read: the header was read (or
	// found absent) and accepted, and proxyproto.Conn no longer needs
	// deadlines it would restore after reading it. A refused header fails
	// every Read, so ready stays false and nothing is bypassed.
	ready atomic.Bool
}

func (c *proxyConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err == nil && !c.ready.Load() {
		c.ready.Store(true)
	}
	return n, err
}

func (c *proxyConn) Write(b []byte) (int, error) {
	if c.ready.Load() {
		return c.raw.Write(b)
	}
	return c.Conn.Write(b)
}

func (c *proxyConn) SetDeadline(t time.Time) error {
	if c.ready.Load() {
		return c.raw.SetDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

func (c *proxyConn) SetReadDeadline(t time.Time) error {
	if c.ready.Load() {
		return c.raw.SetReadDeadline(t)
	}
	return c.Conn.SetReadDeadline(t)
}
