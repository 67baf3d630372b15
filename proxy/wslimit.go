package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxWebsocketFrame is the largest payload of one websocket frame a client
// may send through proxy mode (1 MiB). A longer frame closes the
// connection: the upstream would otherwise have to buffer whatever length
// a client announces. Messages may be longer than this when the client
// fragments them; the limit is per frame, on the length as sent (after
// any permessage-deflate compression).
const maxWebsocketFrame = 1 << 20

// closeDeliveryBound bounds how long the proxy waits for the 1009 close
// frame to be written to the client before cutting the connection.
const closeDeliveryBound = 5 * time.Second

// errFrameTooLarge ends the copy towards the upstream; ReverseProxy then
// closes both connections.
var errFrameTooLarge = errors.New("websocket frame larger than the proxy's limit")

// limitWebsocket wraps the upstream connection of a websocket upgrade
// answered by the upstream, so that client frames over the limit close
// the connection, and registers it with tracker (when not nil) so that a
// shutdown can close it. Other responses are left alone. It is called
// from the ReverseProxy's ModifyResponse, the only point where the
// upstream connection of a 101 is reachable before the copying starts.
func limitWebsocket(res *http.Response, limit uint64, log *slog.Logger, provider string, tracker *wsTracker) {
	if res.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(res.Header.Get("Upgrade"), "websocket") {
		return
	}
	rwc, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		return
	}
	c := newWSLimitConn(rwc, limit, func(n uint64) {
		log.Warn("websocket frame over the limit; closing the connection",
			"provider", provider, "frame_bytes", n, "limit_bytes", limit)
	})
	if tracker != nil {
		tracker.add(c)
	}
	res.Body = c
}

// errWSEnded fails writes to a websocket the proxy ended.
var errWSEnded = errors.New("websocket closed by the proxy")

// wsLimitConn is the upstream side of a proxied websocket. ReverseProxy
// copies client bytes into Write and upstream bytes out of Read, each in
// its own goroutine, and calls Close when both copies are over; Write
// parses the client's frame headers, Read tracks the upstream's frame
// boundaries so a close frame can be slipped in between two frames.
type wsLimitConn struct {
	io.ReadWriteCloser
	limit   uint64
	onLimit func(frameLen uint64)
	tracker *wsTracker

	in  wsFrameParser // client → upstream; used by Write only
	out wsFrameParser // upstream → client; used by Read only

	// closeFrame is what Read still has to hand to the client once the
	// connection was ended; set before ended is closed, then Read only.
	closeFrame []byte

	end       sync.Once
	ended     chan struct{} // closed when the proxy ended the websocket
	deliverMu sync.Once
	delivered chan struct{} // closed when Read has nothing more to hand over
	closeOnce sync.Once
}

func newWSLimitConn(rwc io.ReadWriteCloser, limit uint64, onLimit func(uint64)) *wsLimitConn {
	return &wsLimitConn{ReadWriteCloser: rwc, limit: limit, onLimit: onLimit,
		ended: make(chan struct{}), delivered: make(chan struct{})}
}

// closeFrame is an unmasked (server to client) close frame.
func closeFrame(status uint16, reason string) []byte {
	f := []byte{0x88, byte(2 + len(reason)), byte(status >> 8), byte(status)}
	return append(f, reason...)
}

// finish ends the websocket once: frame is what the client gets (when the
// upstream's stream is between two frames), and closing the upstream
// wakes Read to hand it over. It reports whether this call ended it.
func (c *wsLimitConn) finish(frame []byte) bool {
	done := false
	c.end.Do(func() {
		c.closeFrame = frame
		close(c.ended)
		c.ReadWriteCloser.Close()
		done = true
	})
	return done
}

func (c *wsLimitConn) isEnded() bool {
	select {
	case <-c.ended:
		return true
	default:
		return false
	}
}

// Write forwards whole frames to the upstream until a frame header
// announces a payload over the limit. Then it forwards only what came
// before that header, ends the websocket with status 1009 (message too
// big), waits a bounded time for the close frame to be handed over and
// fails, which makes ReverseProxy close the client connection.
func (c *wsLimitConn) Write(p []byte) (int, error) {
	if c.isEnded() {
		return 0, errWSEnded
	}
	off, n, over := c.in.feed(p, c.limit)
	if !over {
		return c.ReadWriteCloser.Write(p)
	}
	// The start of a header cut across writes went out already; the
	// upstream is closed before it sees more.
	off = max(off, 0)
	if off > 0 {
		if _, err := c.ReadWriteCloser.Write(p[:off]); err != nil {
			return 0, err
		}
	}
	if c.finish(closeFrame(1009, "frame too large")) {
		c.onLimit(n)
	}
	t := time.NewTimer(closeDeliveryBound)
	defer t.Stop()
	select {
	case <-c.delivered:
	case <-t.C:
	}
	return off, fmt.Errorf("proxying a websocket frame of %d bytes: %w", n, errFrameTooLarge)
}

// Read passes the upstream's bytes through. Once the websocket was ended
// it hands out the close frame, provided the upstream stopped between two
// frames (a close frame inside another frame would garble both), then
// reports the end of the stream.
func (c *wsLimitConn) Read(p []byte) (int, error) {
	if c.isEnded() {
		return c.readClose(p)
	}
	n, err := c.ReadWriteCloser.Read(p)
	c.out.feed(p[:n], ^uint64(0))
	if err != nil && c.isEnded() {
		if n > 0 {
			return n, nil
		}
		return c.readClose(p)
	}
	return n, err
}

func (c *wsLimitConn) readClose(p []byte) (int, error) {
	if len(c.closeFrame) > 0 && c.out.atBoundary() {
		n := copy(p, c.closeFrame)
		c.closeFrame = c.closeFrame[n:]
		return n, nil
	}
	// ReverseProxy's copy calls Read again only after writing what the
	// previous Read returned: the close frame has reached the client.
	c.deliverMu.Do(func() { close(c.delivered) })
	return 0, io.EOF
}

// Close closes the upstream connection; ReverseProxy calls it once both
// directions are done, so the websocket is no longer tracked.
func (c *wsLimitConn) Close() error {
	err := c.ReadWriteCloser.Close()
	c.closeOnce.Do(func() {
		if c.tracker != nil {
			c.tracker.remove(c)
		}
	})
	return err
}

// wsTracker holds the websockets a provider proxies, so that a shutdown
// can end them: http.Server.Shutdown does not track hijacked connections.
type wsTracker struct {
	mu      sync.Mutex
	conns   map[*wsLimitConn]struct{}
	closing bool
	changed chan struct{} // closed and replaced on every removal
}

func (t *wsTracker) add(c *wsLimitConn) {
	t.mu.Lock()
	c.tracker = t
	if t.conns == nil {
		t.conns = map[*wsLimitConn]struct{}{}
		t.changed = make(chan struct{})
	}
	t.conns[c] = struct{}{}
	closing := t.closing
	t.mu.Unlock()
	if closing {
		// Upgraded while shutting down: it ends at once.
		c.finish(closeFrame(1001, "outpost shutting down"))
	}
}

func (t *wsTracker) remove(c *wsLimitConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[c]; !ok {
		return
	}
	delete(t.conns, c)
	close(t.changed)
	t.changed = make(chan struct{})
}

// len returns how many websockets are open.
func (t *wsTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// goingAway ends every websocket: each client gets a close frame with
// status 1001 (going away) when its upstream's stream is between two
// frames, then its connection ends once the client answers the close (a
// websocket client does) and ReverseProxy closes it. It returns when none
// is left or ctx ends, and reports how many were still open then.
func (t *wsTracker) goingAway(ctx context.Context) int {
	t.mu.Lock()
	t.closing = true
	conns := make([]*wsLimitConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.finish(closeFrame(1001, "outpost shutting down"))
	}
	for {
		t.mu.Lock()
		n, ch := len(t.conns), t.changed
		t.mu.Unlock()
		if n == 0 {
			return 0
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return n
		}
	}
}

// wsFrameParser follows RFC 6455 frame headers across arbitrary write
// boundaries: it collects each header (2 to 14 bytes), then skips the
// payload length it announces.
type wsFrameParser struct {
	hdr    [14]byte
	n      int    // header bytes collected so far
	remain uint64 // payload bytes of the current frame still to come
}

// atBoundary reports whether the bytes seen so far end exactly between
// two frames.
func (f *wsFrameParser) atBoundary() bool { return f.n == 0 && f.remain == 0 }

// feed consumes p. When a frame header announces a payload longer than
// limit it stops and reports over, the offset in p where that frame's
// header starts (negative when it started in an earlier call) and the
// announced length; the parser must not be fed after that.
func (f *wsFrameParser) feed(p []byte, limit uint64) (off int, length uint64, over bool) {
	start := -f.n // a header in progress began before p
	for i := 0; i < len(p); {
		if f.remain > 0 {
			k := uint64(len(p) - i)
			if k > f.remain {
				k = f.remain
			}
			i += int(k)
			f.remain -= k
			continue
		}
		if f.n == 0 {
			start = i
		}
		f.hdr[f.n] = p[i]
		f.n++
		i++
		need, ok := headerLen(f.hdr[:f.n])
		if !ok || f.n < need {
			continue
		}
		length := payloadLen(f.hdr[:f.n])
		f.n = 0
		if length > limit {
			return start, length, true
		}
		f.remain = length
	}
	return 0, 0, false
}

// headerLen is the full length of a frame header given its first bytes,
// known once the second byte (mask bit and 7-bit length) is in.
func headerLen(h []byte) (int, bool) {
	if len(h) < 2 {
		return 0, false
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4 // masking key
	}
	return n, true
}

// payloadLen reads the payload length of a complete header. A 64-bit
// length with its top bit set is invalid per RFC 6455; it reads as a
// huge length, which is over any limit.
func payloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}
