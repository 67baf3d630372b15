package ldapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	ldap "github.com/go-ldap/ldap/v3"
)

// Conn is one client connection. Handlers get it with every operation to
// read the connection's state and keep their own; its methods are safe for
// concurrent use.
type Conn struct {
	st     *settings
	id     uint64
	raw    net.Conn // as accepted: deadlines and Close go here
	remote net.Addr
	local  net.Addr
	log    *slog.Logger

	// ctx ends when the connection closes, or when draining gives up on
	// the operations left. Operation contexts derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	// wmu makes one writer at a time, and guards nc, which StartTLS swaps.
	wmu sync.Mutex
	nc  net.Conn

	mu       sync.Mutex
	tlsState *tls.ConnectionState
	boundDN  string
	values   map[any]any
	ops      map[int64]*operation
	idle     bool // the reader waits for the first byte of a message
	draining bool
	observed bool // ConnOpened succeeded, so ConnClosed is owed

	// opLock serialises binds with every other operation (RFC 4511
	// 4.2.1): binds hold it exclusively, other operations shared. The
	// reader takes it before starting an operation, so operations see
	// binds in the order the client sent them.
	opLock sync.RWMutex
	sem    chan struct{} // bounds operations in flight
	opsWG  sync.WaitGroup
	closer sync.Once

	// work hands an operation to an idle worker (see onWorker); workers
	// waits for the worker goroutines, which end with the connection, and
	// nworkers counts them (the reader alone starts them).
	work     chan func()
	workers  sync.WaitGroup
	nworkers int
}

// operation is an operation in flight.
type operation struct {
	id        int64
	cancel    context.CancelFunc
	abandoned atomic.Bool
}

// tlsHandshaker is a connection from a TLS listener.
type tlsHandshaker interface {
	HandshakeContext(context.Context) error
	ConnectionState() tls.ConnectionState
}

var errAbandoned = errors.New("ldapserver: operation abandoned")

func newConn(serveCtx context.Context, st *settings, nc net.Conn) *Conn {
	id := st.nextID.Add(1)
	c := &Conn{
		st:     st,
		id:     id,
		raw:    nc,
		nc:     nc,
		remote: nc.RemoteAddr(),
		local:  nc.LocalAddr(),
		values: map[any]any{},
		ops:    map[int64]*operation{},
		sem:    make(chan struct{}, st.maxOps),
		work:   make(chan func()),
	}
	c.log = st.log.With("conn", id, "remote", addrString(c.remote))
	// Operations keep the values of the Serve context but not its end:
	// a shutdown drains them first.
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(serveCtx))
	return c
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// ID identifies the connection among those of its Server.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the client's address (as the listener reports it, so the
// PROXY protocol's source when the host wraps the listener with it).
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the address the client connected to.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// TLS returns the TLS state, from a TLS listener or after StartTLS, or nil
// on a plain connection. ServerName holds the SNI the client sent.
func (c *Conn) TLS() *tls.ConnectionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tlsState == nil {
		return nil
	}
	s := *c.tlsState
	return &s
}

// BoundDN is the DN of the last successful bind, "" when anonymous.
func (c *Conn) BoundDN() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.boundDN
}

// Value returns what SetValue stored under key, or nil.
func (c *Conn) Value(key any) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[key]
}

// SetValue stores a per-connection value for the handler; a nil value
// deletes key. Keys should be of an unexported type, as with
// context.WithValue.
func (c *Conn) SetValue(key, value any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if value == nil {
		delete(c.values, key)
		return
	}
	c.values[key] = value
}

// Context ends when the connection closes. It carries the values of
// Serve's context.
func (c *Conn) Context() context.Context { return c.ctx }

// Close ends the connection at once, cancelling its operations: for
// instance when the session behind the bind has ended. It does not wait
// for the operations to return.
func (c *Conn) Close() error {
	var err error
	c.closer.Do(func() {
		c.cancel()
		err = c.raw.Close()
	})
	return err
}

// CloseWithNotice sends the client a notice of disconnection (RFC 4511
// 4.4.1) with code and message, such as ldap.LDAPResultUnavailable, then
// closes the connection.
func (c *Conn) CloseWithNotice(code uint16, message string) error {
	_ = c.write(nil, encodeNotice(code, message))
	return c.Close()
}

// String names the connection in logs.
func (c *Conn) String() string {
	return fmt.Sprintf("ldap conn %d from %s", c.id, addrString(c.remote))
}

// serve runs the connection until it ends, then releases everything it
// holds; every goroutine it starts has ended when it returns.
func (c *Conn) serve(serveCtx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.watch(serveCtx)
	}()
	notice := c.run()
	c.finish(notice)
	wg.Wait()
}

// onWorker runs the operation f on one of the connection's workers,
// starting a worker when none is idle, up to one per operation that may be
// in flight. A worker lives as long as the connection, so the stack one
// search grew is there for the next, where a goroutine per operation grew
// a fresh stack every time (a tenth of a cached search's CPU). Only the
// reader calls it, after taking a slot of c.sem.
func (c *Conn) onWorker(f func()) {
	select {
	case c.work <- f:
		return
	default:
	}
	if c.nworkers >= cap(c.sem) {
		// Every worker exists and this operation holds a slot, so one of
		// them is between operations: wait for it, unless the
		// connection is ending and the workers with it.
		select {
		case c.work <- f:
			return
		case <-c.ctx.Done():
			c.workers.Go(f)
			return
		}
	}
	c.nworkers++
	c.workers.Go(func() {
		for {
			f()
			select {
			case f = <-c.work:
			case <-c.ctx.Done():
				return
			}
		}
	})
}

// watch starts draining when Serve's context ends: no more messages are
// read, and after DrainTimeout the operations left are cancelled.
func (c *Conn) watch(serveCtx context.Context) {
	select {
	case <-c.ctx.Done():
		return
	case <-serveCtx.Done():
	}
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	_ = c.raw.SetReadDeadline(time.Now()) // unblocks the reader
	if d := c.st.drainTimeout; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return
		}
	}
	c.cancel()
	// A reader that cleared its deadline meanwhile (after a handshake) is
	// woken again.
	_ = c.raw.SetReadDeadline(time.Now())
}

// run reads and dispatches messages until the connection must end, and
// returns the notice of disconnection to send, if any.
func (c *Conn) run() (notice *Result) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("ldap connection failed: panic", "panic", r, "stack", string(debug.Stack()))
			notice = &Result{Code: ldap.LDAPResultOther, Message: "internal error"}
		}
	}()
	if hs, ok := c.raw.(tlsHandshaker); ok {
		c.setDeadline(c.st.readTimeout)
		err := hs.HandshakeContext(c.ctx)
		c.clearDeadline()
		if err != nil {
			c.log.Debug("ldap TLS handshake failed", "error", err)
			return nil
		}
		state := hs.ConnectionState()
		c.mu.Lock()
		c.tlsState = &state
		c.mu.Unlock()
	}
	if obs, ok := c.st.handler.(ConnObserver); ok {
		if err := obs.ConnOpened(c); err != nil {
			c.log.Info("ldap connection refused by handler", "error", err)
			return nil
		}
		c.mu.Lock()
		c.observed = true
		c.mu.Unlock()
	}
	br := bufio.NewReader(c.nc)
	for {
		c.beginIdle()
		buf, err := readEnvelope(br, c.st.maxMessageSize, c.beginBody)
		if err == nil {
			var m *message
			if m, err = decodeMessage(buf, c.st.maxFilterDepth+5); err == nil {
				var stop bool
				br, stop, err = c.dispatch(m, br)
				if stop {
					return nil
				}
			} else if le := (*limitError)(nil); errors.As(err, &le) {
				le.id, le.op, le.known = peekMessage(buf)
				if le.nesting && le.op == tagSearchRequest {
					// Only a filter nests a search this deep.
					le.msg = fmt.Sprintf("filter nested deeper than %d levels", c.st.maxFilterDepth)
				}
			}
		}
		if le := (*limitError)(nil); errors.As(err, &le) && le.known {
			err = c.refuseOverLimit(le.id, le.op, le.msg)
		}
		if err != nil {
			return c.readFailed(err)
		}
	}
}

// refuseOverLimit answers message id, a request of operation op over one
// of the server's limits (RFC 4511 4.1.1 asks for a notice of
// disconnection only when a message cannot be parsed): a search, the
// request whose filter can grow without bound, or a write request, which
// the read-only directory refuses anyway, gets adminLimitExceeded and the
// connection reads on. Any other request has no business being that
// large or deep; it ends the connection with a notice.
func (c *Conn) refuseOverLimit(id int64, op uint8, msg string) error {
	var respTag uint8
	switch op {
	case tagSearchRequest:
		respTag = tagSearchDone
	case tagModifyRequest, tagAddRequest, tagDelRequest, tagModDNRequest:
		respTag = op + 1
	default:
		return malformed("%s", msg)
	}
	// Debug, not Info: the connection stays, so a client could repeat
	// this as fast as it likes.
	c.log.Debug("ldap request refused: over a limit", "msgid", id, "error", msg)
	return c.respondNow(id, respTag, &Result{Code: ldap.LDAPResultAdminLimitExceeded, Message: msg})
}

// readFailed decides how a connection ends after err.
func (c *Conn) readFailed(err error) *Result {
	c.mu.Lock()
	draining := c.draining
	c.mu.Unlock()
	var pe *protocolError
	var le *limitError
	var ne net.Error
	switch {
	case draining:
		return &Result{Code: ldap.LDAPResultUnavailable, Message: "server is shutting down"}
	case errors.As(err, &pe):
		c.log.Warn("ldap client sent a malformed message, disconnecting", "error", err)
		return &Result{Code: ldap.LDAPResultProtocolError, Message: pe.msg}
	case errors.As(err, &le):
		c.log.Warn("ldap client sent a message over a limit, disconnecting", "error", err)
		return &Result{Code: ldap.LDAPResultProtocolError, Message: le.msg}
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		c.log.Debug("ldap connection timed out", "error", err)
		return nil
	}
	c.log.Debug("ldap connection read failed", "error", err)
	return nil
}

// finish ends the connection: operations are cancelled (or, when
// draining, waited for until the watch gives up), the notice is sent, the
// connection closed and the observer told.
func (c *Conn) finish(notice *Result) {
	c.mu.Lock()
	draining := c.draining
	c.mu.Unlock()
	if draining {
		c.opsWG.Wait()
	} else {
		c.cancel()
	}
	if notice != nil {
		if c.write(nil, encodeNotice(notice.Code, notice.Message)) == nil && !draining {
			c.linger()
		}
	}
	_ = c.Close()
	c.opsWG.Wait()
	c.workers.Wait()
	c.mu.Lock()
	observed := c.observed
	c.mu.Unlock()
	if obs, ok := c.st.handler.(ConnObserver); ok && observed {
		func() {
			defer func() {
				if r := recover(); r != nil {
					c.log.Error("ldap ConnClosed panicked", "panic", r, "stack", string(debug.Stack()))
				}
			}()
			obs.ConnClosed(c)
		}()
	}
}

// Bounds of the lingering close after a notice of disconnection.
const (
	lingerTimeout = 2 * time.Second
	lingerBytes   = 1 << 20
)

// linger half-closes the connection after a notice of disconnection and
// reads what the client still sends, for at most lingerTimeout and
// lingerBytes, until it closes its side. Closing a socket that holds
// unread input makes the kernel answer with a reset, which can destroy
// the notice before the client has read it, for instance while the
// client is still sending the message that ended the connection. A
// connection that cannot be half-closed is closed at once.
func (c *Conn) linger() {
	c.wmu.Lock()
	nc := c.nc
	c.wmu.Unlock()
	if tc, ok := nc.(*tls.Conn); ok {
		_ = tc.CloseWrite() // close_notify
		nc = tc.NetConn()
	}
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, nc, lingerBytes)
}

// setDeadline sets the read deadline d from now, or none for d == 0.
func (c *Conn) setDeadline(d time.Duration) {
	var t time.Time
	if d > 0 {
		t = time.Now().Add(d)
	}
	_ = c.raw.SetReadDeadline(t)
}

// clearDeadline removes the read deadline, unless draining set one.
func (c *Conn) clearDeadline() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.draining {
		c.setDeadline(0)
	}
}

// beginIdle arms the idle timeout while the reader waits for a message:
// only when no operation is in flight, since a client waiting for a long
// search is not idle.
func (c *Conn) beginIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = true
	if c.draining {
		return
	}
	if len(c.ops) == 0 {
		c.setDeadline(c.st.idleTimeout)
	} else {
		c.setDeadline(0)
	}
}

// beginBody arms the read timeout once a message has begun.
func (c *Conn) beginBody() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = false
	if !c.draining {
		c.setDeadline(c.st.readTimeout)
	}
}

// write sends one encoded message. A response of an abandoned operation is
// dropped (RFC 4511 4.11). A failed write closes the connection, since a
// partial message leaves the stream unusable.
func (c *Conn) write(op *operation, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(op, b)
}

func (c *Conn) writeLocked(op *operation, b []byte) error {
	if op != nil && op.abandoned.Load() {
		return errAbandoned
	}
	if d := c.st.writeTimeout; d > 0 {
		_ = c.raw.SetWriteDeadline(time.Now().Add(d))
	}
	if _, err := c.nc.Write(b); err != nil {
		_ = c.Close()
		return err
	}
	return nil
}

func (c *Conn) setWriteDeadline(d time.Duration) {
	_ = c.raw.SetWriteDeadline(time.Now().Add(d))
}
