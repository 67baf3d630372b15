package outpost

import (
	"context"
	"crypto/fips140"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Control channel timing. The core forgets an instance 15 s after its last
// hello, so hellos go out every 10 s from their own goroutine, never behind
// a refresh. A connection silent for three hello intervals is dead: the core
// answers every hello with an ack, so silence means a half-open socket.
const (
	helloInterval    = 10 * time.Second
	readTimeout      = 3 * helloInterval
	writeTimeout     = 10 * time.Second
	handshakeTimeout = 10 * time.Second
	messageTimeout   = 30 * time.Second
	reconnectMin     = time.Second
	reconnectMax     = 2 * time.Minute
	// stableAfter is how long a connection must last before a drop counts
	// as a fresh failure again rather than one more in a series.
	stableAfter = time.Minute
	readLimit   = 1 << 20
)

// runControl keeps the control channel to the core open until ctx ends:
// dial, hello, read; on any drop reconnect with jittered exponential backoff.
// A connection is followed by a refresh whenever a configuration was
// fetched before it: the core's triggers meanwhile were lost. That is
// every reconnection, and the first connection when it came up after the
// first refresh had begun (the first refresh waits for it a little; see
// refreshLoop).
func (o *Outpost) runControl(ctx context.Context, pk string) {
	b := backoff{min: reconnectMin, max: reconnectMax}
	defer o.firstDialOnce.Do(func() { close(o.firstDial) })
	for attempt := 0; ; attempt++ {
		start := time.Now()
		conn, err := o.dial(ctx, pk, attempt)
		if err == nil {
			o.log.Info("connected control channel", "outpost", pk, "attempt", attempt)
			o.setConnected(true)
			// Checked before firstDial lets the first refresh start: a
			// refresh that starts later sees what this connection missed.
			if attempt > 0 || o.firstRefreshStarted.Load() {
				o.refreshAfterJitter()
			}
		}
		o.firstDialOnce.Do(func() { close(o.firstDial) })
		if err == nil {
			err = o.session(ctx, conn)
			o.setConnected(false)
			if time.Since(start) > stableAfter {
				b.reset()
			}
		}
		if ctx.Err() != nil {
			return
		}
		delay := b.next()
		o.log.Warn("control channel down, reconnecting", "error", err, "attempt", attempt+1,
			"retry_in", delay.Round(time.Millisecond).String())
		if !sleep(ctx, delay) {
			return
		}
	}
}

func (o *Outpost) setConnected(up bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.connected.Store(up)
	if o.current != nil { // else the first refresh sets it, with the name
		o.setConnectionMetric(o.current.info, up)
	}
}

// controlURL is ws(s)://host<path>ws/outpost/<pk>/ with the core URL's own
// query parameters plus instance_uuid and attempt, keys sorted.
func (o *Outpost) controlURL(pk string, attempt int) string {
	u := *o.coreURL
	u.User = nil
	u.Fragment = ""
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws/outpost/" + pk + "/"
	u.RawPath = ""
	q := u.Query()
	q.Set("instance_uuid", o.instance)
	q.Set("attempt", strconv.Itoa(attempt))
	u.RawQuery = q.Encode()
	return u.String()
}

func (o *Outpost) dial(ctx context.Context, pk string, attempt int) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+o.api.Token())
	h.Set("User-Agent", o.api.UserAgent())
	u := o.controlURL(pk, attempt)
	conn, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: o.api.Transport()},
		HTTPHeader: h,
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		where := strings.SplitN(u, "?", 2)[0]
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return nil, fmt.Errorf("connecting %s: %w (HTTP %d)", where, ErrUnauthorized, resp.StatusCode)
		}
		return nil, fmt.Errorf("connecting %s: %w", where, o.api.redact(err))
	}
	conn.SetReadLimit(readLimit)
	return conn, nil
}

// session runs one connection: a hello goroutine (the only writer) and the
// read loop. It returns why the connection ended; when ctx ended it closes
// with status 1000 first.
func (o *Outpost) session(ctx context.Context, conn *websocket.Conn) error {
	sctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(helloInterval)
		defer t.Stop()
		for sctx.Err() == nil {
			if err := o.hello(sctx, conn); err != nil {
				stop(fmt.Errorf("sending hello: %w", err))
				return
			}
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	})
	wg.Go(func() {
		// The read context is not sctx: ending the session must close the
		// connection with a status, not abort a read (which closes it
		// abruptly). Close below unblocks the read instead.
		base := context.WithoutCancel(ctx)
		for {
			rctx, cancel := context.WithTimeout(base, readTimeout)
			typ, data, err := conn.Read(rctx)
			cancel()
			if err != nil {
				stop(fmt.Errorf("reading: %w", err))
				return
			}
			if typ != websocket.MessageText {
				continue
			}
			o.handleFrame(sctx, data)
		}
	})
	<-sctx.Done()
	if ctx.Err() != nil {
		o.log.Debug("closing control channel")
		conn.Close(websocket.StatusNormalClosure, "outpost shutting down")
	} else {
		conn.CloseNow()
	}
	wg.Wait()
	return context.Cause(sctx)
}

// helloArgs are authentik's hello arguments.
func (o *Outpost) helloArgs() map[string]any {
	args := map[string]any{
		"version":        o.cfg.Version,
		"buildHash":      o.cfg.BuildHash,
		"uuid":           o.instance,
		"golangVersion":  runtime.Version(),
		"opensslEnabled": false,
		"opensslVersion": "",
		"fipsEnabled":    fips140.Enabled(),
	}
	// The core replaces the stored hostname on every message, so it goes
	// into every hello, not only the first.
	if h, err := os.Hostname(); err == nil {
		args["hostname"] = h
	}
	return args
}

func (o *Outpost) hello(ctx context.Context, conn *websocket.Conn) error {
	data, err := json.Marshal(Message{Instruction: InstructionHello, Args: o.helloArgs()})
	if err != nil {
		return err
	}
	// Not bound to ctx: coder/websocket drops the connection without a
	// close frame when a write's context ends, and a shutdown racing a hello
	// must still end with a normal closure. The timeout bounds a stuck peer.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, data)
}

// handleFrame acts on one message from the core. Malformed frames, acks and
// unknown instructions are ignored: a newer core must not disconnect us.
func (o *Outpost) handleFrame(ctx context.Context, data []byte) {
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		o.log.Debug("ignoring malformed control message", "error", err)
		return
	}
	switch m.Instruction {
	case InstructionAck, InstructionHello:
	case InstructionTriggerUpdate:
		o.log.Debug("core triggered an update")
		o.refreshAfterJitter()
	case InstructionProviderSpecific, InstructionSessionEnd:
		o.dispatch(ctx, m)
	default:
		o.log.Debug("ignoring unknown control instruction", "instruction", m.Instruction)
	}
}

// dispatch hands a message to the running provider if it wants messages.
// It runs on the read loop, bounded in time, so messages stay in order.
func (o *Outpost) dispatch(ctx context.Context, m Message) {
	if _, ok := o.Info(); !ok {
		return // nothing applied yet
	}
	h, ok := o.Provider().(MessageHandler)
	if !ok {
		return
	}
	if m.Args == nil {
		m.Args = map[string]any{}
	}
	mctx, cancel := context.WithTimeout(ctx, messageTimeout)
	defer cancel()
	if err := h.HandleMessage(mctx, m); err != nil && !errors.Is(err, context.Canceled) {
		o.log.Warn("provider failed to handle a control message", "instruction", m.Instruction, "error", err)
	}
}
