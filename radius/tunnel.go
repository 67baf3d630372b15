package radius

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxTunnelBuffer bounds what a tunnel buffers in either direction: a TLS
// flight with a certificate chain is a few kilobytes.
const maxTunnelBuffer = 64 << 10

var errTunnelBuffer = errors.New("radius: TLS data over the tunnel's buffer")

// tunnel is the server end of a TLS session whose records travel in EAP
// packets (EAP-TLS, EAP-TTLS, PEAP). crypto/tls runs in a goroutine of
// its own on an in-memory connection; feed hands it what the client sent
// and returns what it answered, once it waits for more.
type tunnel struct {
	tc *tls.Conn
	// clientCert makes the handshake ask for a client certificate
	// (EAP-TLS); see requestClientCertificate.
	clientCert atomic.Bool

	mu      sync.Mutex
	cond    *sync.Cond
	in      []byte // records from the client, not yet read by TLS
	out     []byte // records TLS wrote, not yet sent
	app     []byte // application data TLS decrypted, not yet taken
	waiting bool   // TLS is blocked reading with in empty
	ready   bool   // the handshake completed
	done    bool   // the goroutine ended
	closed  bool
	err     error
}

// newTunnel starts a tunnel's goroutine, counted in wg.
func newTunnel(wg *sync.WaitGroup, cfg *tls.Config) *tunnel {
	t := &tunnel{}
	t.cond = sync.NewCond(&t.mu)
	t.tc = tls.Server(tunnelConn{t}, t.serverConfig(cfg))
	wg.Go(t.run)
	return t
}

func (t *tunnel) run() {
	err := t.tc.Handshake()
	if err == nil {
		t.mu.Lock()
		t.ready = true
		t.mu.Unlock()
	}
	buf := make([]byte, 16<<10)
	for err == nil {
		var n int
		n, err = t.tc.Read(buf)
		t.mu.Lock()
		if len(t.app)+n > maxTunnelBuffer {
			err = errTunnelBuffer
		} else {
			t.app = append(t.app, buf[:n]...)
		}
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.done, t.err = true, err
	t.cond.Broadcast()
	t.mu.Unlock()
}

// feed gives TLS the client's records and waits until TLS wants more or
// ended; it returns the records TLS wrote meanwhile. An error means the
// session is over (a failed handshake, a closed tunnel).
func (t *tunnel) feed(records []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil, t.endErr()
	}
	if len(t.in)+len(records) > maxTunnelBuffer {
		return nil, errTunnelBuffer
	}
	t.in = append(t.in, records...)
	t.waiting = false
	t.cond.Broadcast()
	for !(t.waiting && len(t.in) == 0) && !t.done {
		t.cond.Wait()
	}
	out := t.out
	t.out = nil
	if t.done {
		return out, t.endErr()
	}
	return out, nil
}

func (t *tunnel) endErr() error {
	if t.err == nil || errors.Is(t.err, io.EOF) {
		return errors.New("radius: the TLS session ended")
	}
	return t.err
}

// established reports whether the handshake completed.
func (t *tunnel) established() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready && !t.done
}

// takeApp returns the application data decrypted so far.
func (t *tunnel) takeApp() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	app := t.app
	t.app = nil
	return app
}

// write encrypts plain for the client and returns the records.
func (t *tunnel) write(plain []byte) ([]byte, error) {
	if !t.established() {
		return nil, errors.New("radius: the TLS handshake is not complete")
	}
	if _, err := t.tc.Write(plain); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.out
	t.out = nil
	return out, nil
}

// keyingMaterial derives n bytes of keying material with label from the
// TLS master secret (RFC 5705 with no context: the PRF over the client
// and server randoms, as EAP-TTLS and PEAP define their keys).
func (t *tunnel) keyingMaterial(label string, n int) ([]byte, error) {
	cs := t.tc.ConnectionState()
	return cs.ExportKeyingMaterial(label, nil, n)
}

// close ends the session; the goroutine then returns.
func (t *tunnel) close() {
	t.mu.Lock()
	t.closed = true
	t.cond.Broadcast()
	t.mu.Unlock()
}

// tunnelConn is the in-memory connection TLS runs on.
type tunnelConn struct{ t *tunnel }

func (c tunnelConn) Read(b []byte) (int, error) {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.in) == 0 {
		if t.closed {
			return 0, io.EOF
		}
		t.waiting = true
		t.cond.Broadcast()
		t.cond.Wait()
	}
	t.waiting = false
	n := copy(b, t.in)
	t.in = t.in[n:]
	return n, nil
}

func (c tunnelConn) Write(b []byte) (int, error) {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, net.ErrClosed
	}
	if len(t.out)+len(b) > maxTunnelBuffer {
		return 0, errTunnelBuffer
	}
	t.out = append(t.out, b...)
	return len(b), nil
}

func (c tunnelConn) Close() error                   { c.t.close(); return nil }
func (tunnelConn) LocalAddr() net.Addr              { return tunnelAddr{} }
func (tunnelConn) RemoteAddr() net.Addr             { return tunnelAddr{} }
func (tunnelConn) SetDeadline(time.Time) error      { return nil }
func (tunnelConn) SetReadDeadline(time.Time) error  { return nil }
func (tunnelConn) SetWriteDeadline(time.Time) error { return nil }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "eap" }
func (tunnelAddr) String() string  { return "eap" }
