package ldapserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	ldap "github.com/go-ldap/ldap/v3"
)

// opFunc runs one operation and returns its encoded response, or nil for
// none.
type opFunc func(ctx context.Context, op *operation) []byte

// dispatch starts the operation of m. It returns the reader to use next
// (StartTLS replaces it), whether the connection must end without a
// notice, or an error that ends it with one.
func (c *Conn) dispatch(m *message, br *bufio.Reader) (*bufio.Reader, bool, error) {
	ctrls, err := parseControls(m.controls)
	if err != nil {
		return br, false, err
	}
	tag := uint8(m.op.Tag)
	switch tag {
	case tagUnbindRequest:
		// RFC 4511 4.3: the client is done; in-flight operations are
		// abandoned with the connection.
		return br, true, nil
	case tagAbandonRequest:
		id, err := parseAbandon(m.op)
		if err != nil {
			return br, false, err
		}
		c.abandon(id)
		return br, false, nil
	case tagModifyRequest, tagAddRequest, tagDelRequest, tagModDNRequest:
		// The directory is read-only; the response tag follows the
		// request's.
		res := Result{Code: ldap.LDAPResultUnwillingToPerform, Message: "the directory is read-only"}
		return br, false, c.respondNow(m.id, tag+1, &res)
	case tagBindRequest, tagSearchRequest, tagCompareRequest, tagExtendedRequest:
	default:
		return br, false, malformed("unknown operation tag %d", tag)
	}

	respTag := tag + 1
	if tag == tagSearchRequest {
		respTag = tagSearchDone
	}
	if tag == tagExtendedRequest {
		respTag = tagExtendedResponse
	}
	goCtrls, paging, err := c.convertControls(ctrls, tag)
	if err != nil {
		return br, false, err
	}
	if oid := c.unsupportedCritical(ctrls, tag); oid != "" {
		res := Result{Code: ldap.LDAPResultUnavailableCriticalExtension, Message: "unsupported critical control " + oid}
		return br, false, c.respondNow(m.id, respTag, &res)
	}

	switch tag {
	case tagBindRequest:
		req, auth, err := parseBind(m.op)
		if err != nil {
			return br, false, err
		}
		req.Controls = goCtrls
		return br, false, c.start(m.id, respTag, true, false, func(ctx context.Context, op *operation) []byte {
			res := c.bind(ctx, req, auth)
			return encodeResult(m.id, tagBindResponse, &res)
		})
	case tagSearchRequest:
		req, err := parseSearch(m.op, c.st.maxFilterDepth)
		var le *limitError
		if errors.As(err, &le) {
			// A filter too deep to evaluate is refused; the stream is
			// intact, so the connection stays.
			return br, false, c.refuseOverLimit(m.id, tagSearchRequest, le.msg)
		}
		if err != nil {
			return br, false, err
		}
		req.Controls, req.Paging = goCtrls, paging
		is, ok := c.st.handler.(InlineSearcher)
		inline := ok && is.InlineSearch(c, req)
		return br, false, c.start(m.id, respTag, false, inline, func(ctx context.Context, op *operation) []byte {
			res, pending := c.search(ctx, op, m.id, req)
			// The entries not yet sent go out with SearchResultDone in
			// one write: a one-entry search costs one syscall, not two.
			return appendResult(pending, m.id, tagSearchDone, &res)
		})
	case tagCompareRequest:
		req, err := parseCompare(m.op)
		if err != nil {
			return br, false, err
		}
		req.Controls = goCtrls
		return br, false, c.start(m.id, respTag, false, false, func(ctx context.Context, op *operation) []byte {
			res := c.st.handler.Compare(ctx, c, req)
			return encodeResult(m.id, tagCompareResponse, &res)
		})
	}
	req, err := parseExtended(m.op)
	if err != nil {
		return br, false, err
	}
	req.Controls = goCtrls
	if req.OID == oidStartTLS {
		return c.startTLS(m.id, br)
	}
	return br, false, c.start(m.id, respTag, false, false, func(ctx context.Context, op *operation) []byte {
		res := c.extended(ctx, req)
		return encodeExtended(m.id, &res)
	})
}

// convertControls gives the controls go-ldap's shapes and picks out the
// paging control of a search.
func (c *Conn) convertControls(ctrls []control, tag uint8) ([]ldap.Control, *ldap.ControlPaging, error) {
	if len(ctrls) == 0 {
		return nil, nil, nil
	}
	out := make([]ldap.Control, 0, len(ctrls))
	var paging *ldap.ControlPaging
	for _, ct := range ctrls {
		if ct.oid == ldap.ControlTypePaging && tag != tagSearchRequest {
			out = append(out, &ldap.ControlString{ControlType: ct.oid, Criticality: ct.critical, ControlValue: string(ct.value)})
			continue
		}
		g, err := ct.goControl(8)
		if err != nil {
			return nil, nil, err
		}
		if p, ok := g.(*ldap.ControlPaging); ok {
			paging = p
		}
		out = append(out, g)
	}
	return out, paging, nil
}

// unsupportedCritical returns the OID of a critical control neither the
// layer nor the handler supports for the operation, or "".
func (c *Conn) unsupportedCritical(ctrls []control, tag uint8) string {
	for _, ct := range ctrls {
		if !ct.critical {
			continue
		}
		switch {
		case ct.oid == ldap.ControlTypePaging && tag == tagSearchRequest:
		case ct.oid == oidManageDsaIT: // no referral objects here: a no-op
		case c.st.controls[ct.oid]:
		default:
			return ct.oid
		}
	}
	return ""
}

// respondNow answers a message from the reader without an operation.
func (c *Conn) respondNow(id int64, respTag uint8, res *Result) error {
	var b []byte
	if respTag == tagExtendedResponse {
		b = encodeExtended(id, &ExtendedResult{Result: *res})
	} else {
		b = encodeResult(id, respTag, res)
	}
	if err := c.write(nil, b); err != nil {
		return fmt.Errorf("ldapserver: writing response: %w", err)
	}
	return nil
}

// start runs fn as operation id on a worker (on the reader when inline),
// once the operations before it allow: a bind (exclusive) waits for all of
// them, any operation waits for a bind before it, and at most
// MaxOpsPerConn run at once.
func (c *Conn) start(id int64, respTag uint8, exclusive, inline bool, fn opFunc) error {
	c.mu.Lock()
	_, dup := c.ops[id]
	c.mu.Unlock()
	if dup {
		return malformed("messageID %d is already in use", id)
	}
	unlock := c.opLock.RUnlock
	if exclusive {
		c.opLock.Lock()
		unlock = c.opLock.Unlock
	} else {
		c.opLock.RLock()
	}
	select {
	case c.sem <- struct{}{}:
	case <-c.ctx.Done():
		unlock()
		return c.ctx.Err()
	}
	if err := c.ctx.Err(); err != nil {
		// The connection ended while this waited for a bind or for room.
		<-c.sem
		unlock()
		return err
	}
	ctx, cancel := context.WithCancel(c.ctx)
	op := &operation{id: id, cancel: cancel}
	c.mu.Lock()
	c.ops[id] = op
	c.mu.Unlock()

	c.opsWG.Add(1)
	run := c.onWorker
	if inline {
		run = func(f func()) { f() }
	}
	run(func() {
		defer c.opsWG.Done()
		defer func() {
			cancel()
			c.endOp(op)
			<-c.sem
			unlock()
		}()
		if b := c.runOp(ctx, op, respTag, fn); b != nil {
			if err := c.writeFinal(op, b); err != nil && !errors.Is(err, errAbandoned) {
				c.log.Debug("ldap response not sent", "msgid", id, "error", err)
			}
		}
	})
	return nil
}

// runOp calls fn, turning a panic into operationsError: a crashed
// handler must never look like success.
func (c *Conn) runOp(ctx context.Context, op *operation, respTag uint8, fn opFunc) (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("ldap handler panicked", "msgid", op.id, "panic", r, "stack", string(debug.Stack()))
			res := Result{Code: ldap.LDAPResultOperationsError, Message: "internal error"}
			if respTag == tagExtendedResponse {
				out = encodeExtended(op.id, &ExtendedResult{Result: res})
			} else {
				out = encodeResult(op.id, respTag, &res)
			}
		}
	}()
	return fn(ctx, op)
}

// writeFinal sends the response that ends op. The operation stops
// counting as outstanding before the response can reach the client, so a
// client that waits for it and then sends StartTLS is not refused; and it
// happens under the write lock, so StartTLS cannot switch the connection
// to TLS while this response is still to be written in plain text.
func (c *Conn) writeFinal(op *operation, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.endOp(op)
	return c.writeLocked(op, b)
}

// endOp forgets op and, once nothing is in flight, re-arms the idle
// timeout of a waiting reader.
func (c *Conn) endOp(op *operation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ops, op.id)
	if c.idle && !c.draining && len(c.ops) == 0 {
		c.setDeadline(c.st.idleTimeout)
	}
}

// abandon cancels operation id, if still running, and drops its response
// (RFC 4511 4.11). Abandoning an unknown operation is not an error.
func (c *Conn) abandon(id int64) {
	c.mu.Lock()
	op := c.ops[id]
	c.mu.Unlock()
	if op != nil {
		op.abandoned.Store(true)
		op.cancel()
	}
}

func (c *Conn) bind(ctx context.Context, req *BindRequest, auth bindAuth) Result {
	// RFC 4511 4.2.1: whatever the outcome, the previous authentication
	// is gone; a failed bind leaves the connection anonymous.
	c.mu.Lock()
	c.boundDN = ""
	c.mu.Unlock()
	switch {
	case req.Version != 3:
		return Result{Code: ldap.LDAPResultProtocolError, Message: "only LDAPv3 is supported"}
	case auth == authSASL:
		return Result{Code: ldap.LDAPResultAuthMethodNotSupported, Message: "SASL is not supported"}
	case req.DN != "" && req.Password == "":
		// RFC 4513 5.1.2: an unauthenticated bind would look like a
		// success to careless applications.
		return Result{Code: ldap.LDAPResultUnwillingToPerform, Message: "unauthenticated bind (name without password) is not allowed"}
	}
	res := c.st.handler.Bind(ctx, c, req)
	if res.Code == ldap.LDAPResultSuccess {
		c.mu.Lock()
		c.boundDN = req.DN
		c.mu.Unlock()
	}
	return res
}

// search runs a search; it returns the result and the encoded entries
// still waiting in the writer's buffer, to be sent before the result.
func (c *Conn) search(ctx context.Context, op *operation, id int64, req *SearchRequest) (Result, []byte) {
	if req.TimeLimit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeLimit)*time.Second)
		defer cancel()
	}
	w := &searchWriter{c: c, op: op, ctx: ctx, id: id, req: req}
	res := c.st.handler.Search(ctx, c, req, w)
	w.mu.Lock()
	w.done = true // an entry after SearchResultDone would corrupt the result
	pending := w.pending
	w.pending = nil
	w.mu.Unlock()
	switch {
	case req.TimeLimit > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && (res.Code != ldap.LDAPResultSuccess || w.stopped):
		res = Result{Code: ldap.LDAPResultTimeLimitExceeded, Message: "time limit exceeded", Controls: res.Controls}
	case w.overLimit && res.Code == ldap.LDAPResultSuccess:
		res.Code = ldap.LDAPResultSizeLimitExceeded
		if res.Message == "" {
			res.Message = "size limit exceeded"
		}
	}
	if req.Paging != nil && ldap.FindControl(res.Controls, ldap.ControlTypePaging) == nil &&
		(res.Code == ldap.LDAPResultSuccess || res.Code == ldap.LDAPResultSizeLimitExceeded) {
		// The handler did not page: everything was sent, so the empty
		// cookie tells the client there is no next page.
		res.Controls = append(res.Controls, PagingResult(nil))
	}
	return res, pending
}

var errSearchDone = errors.New("ldapserver: SearchWriter used after Search returned")

// searchWriter streams one search's results.
type searchWriter struct {
	mu        sync.Mutex // guards against a handler's stray goroutine
	done      bool       // Search has returned
	c         *Conn
	op        *operation
	ctx       context.Context
	id        int64
	req       *SearchRequest
	sent      int
	overLimit bool // an entry was refused for the size limit
	stopped   bool // an entry was refused because ctx ended
	// pending holds encoded entries not yet written: small results leave
	// with SearchResultDone in one write, large ones go out in chunks of
	// about flushSize, so a search costs few syscalls and bounded memory.
	pending []byte
}

// flushSize is when a search's buffered entries are written out.
const flushSize = 32 << 10

// flushLocked writes the buffered entries.
func (w *searchWriter) flushLocked() error {
	if len(w.pending) == 0 {
		return nil
	}
	err := w.c.write(w.op, w.pending)
	w.pending = w.pending[:0]
	return err
}

func (w *searchWriter) WriteEntry(e *Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errSearchDone
	}
	if err := w.ctx.Err(); err != nil {
		w.stopped = true
		return err
	}
	if e == nil {
		return errors.New("ldapserver: WriteEntry with a nil entry")
	}
	if w.req.SizeLimit > 0 && w.sent >= w.req.SizeLimit {
		w.overLimit = true
		return ErrSizeLimitExceeded
	}
	w.pending = appendEntry(w.pending, w.id, e, w.req.TypesOnly)
	w.sent++
	if len(w.pending) >= flushSize {
		if err := w.flushLocked(); err != nil {
			return fmt.Errorf("ldapserver: writing entry %q: %w", e.DN, err)
		}
	}
	return nil
}

func (w *searchWriter) WriteReference(urls ...string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errSearchDone
	}
	if err := w.ctx.Err(); err != nil {
		w.stopped = true
		return err
	}
	// References keep their place among the entries.
	w.pending = append(w.pending, encodeReference(w.id, urls)...)
	if err := w.flushLocked(); err != nil {
		return fmt.Errorf("ldapserver: writing reference: %w", err)
	}
	return nil
}
