package outposttest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/akoutpost/akoutpost/outpost"
)

// Connection describes one websocket an outpost instance opened.
type Connection struct {
	// Outpost is the outpost's name.
	Outpost string
	// InstanceUUID and Attempt are the query parameters the instance sent.
	InstanceUUID string
	Attempt      int
	Connected    time.Time
	// Closed is the zero time while the connection is open.
	Closed time.Time
	// Hellos counts the hello messages received; LastHello holds the args
	// of the last one (version, hostname, uuid, ...).
	Hellos    int
	LastHello map[string]any
	// Messages counts every message received, acknowledgements included.
	Messages int
}

// Hello is one hello message the core received.
type Hello struct {
	Outpost      string
	InstanceUUID string
	Attempt      int
	Time         time.Time
	Args         map[string]any
}

type wsConn struct {
	info    Connection
	outpost string // outpost UUID
	conn    *websocket.Conn
	raw     net.Conn // the hijacked connection under conn
	cancel  context.CancelFunc
}

// hijackCapture keeps the connection websocket.Accept hijacks, so the core
// can cut it.
type hijackCapture struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackCapture) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := hijacker(h.ResponseWriter)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	h.conn = c
	return c, rw, err
}

// hub tracks the open websockets.
type hub struct {
	mu      sync.Mutex
	conns   []*wsConn // open and closed, in connection order
	hellos  []Hello
	changed chan struct{} // closed and replaced on every change
	wg      sync.WaitGroup
	// accepting counts handshakes under way: the client may already
	// have the 101 while the connection is not in conns yet, and a
	// message sent then must still reach it, as authentik adds a
	// connection to its group before accepting it.
	accepting int
}

func (h *hub) init() { h.changed = make(chan struct{}) }

// notify wakes waiters; callers hold h.mu.
func (h *hub) notify() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// closeAll closes every open websocket with code. Peers get a moment to
// answer the close frame; then the connections are cut.
func (h *hub) closeAll(code websocket.StatusCode, reason string) {
	h.mu.Lock()
	var open []*wsConn
	for _, c := range h.conns {
		if c.info.Closed.IsZero() {
			open = append(open, c)
		}
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.conn.Close(code, reason)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(closeGrace)
	select {
	case <-done:
		t.Stop()
	case <-t.C:
	}
	// Close waits up to 5s for the peer's close frame; cutting the TCP
	// connection ends that wait at once.
	for _, c := range open {
		if c.raw != nil {
			_ = c.raw.Close()
		}
		c.cancel()
	}
	<-done
}

// closeGrace is how long closeAll waits for peers to answer a close frame.
const closeGrace = 500 * time.Millisecond

func (h *hub) wait() { h.wg.Wait() }

func (s *Server) handleWebsocket(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	pk := r.PathValue("pk")
	s.mu.RLock()
	var o *outpostObj
	for _, v := range s.visibleOutposts(rc) {
		if v.uuid == pk {
			o = v
		}
	}
	s.mu.RUnlock()
	if o == nil {
		// authentik denies the connection when the token may not view
		// this outpost.
		writeError(w, http.StatusForbidden, "You do not have permission to perform this action.")
		return
	}
	hc := &hijackCapture{ResponseWriter: w}
	s.hub.mu.Lock()
	s.hub.accepting++
	s.hub.mu.Unlock()
	accepted := false
	defer func() {
		if !accepted {
			s.hub.mu.Lock()
			s.hub.accepting--
			s.hub.notify()
			s.hub.mu.Unlock()
		}
	}()
	conn, err := websocket.Accept(hc, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("websocket accept failed", "error", err)
		return
	}
	conn.SetReadLimit(1 << 20)
	q := r.URL.Query()
	attempt, _ := strconv.Atoi(q.Get("attempt"))
	// The connection outlives the request context only until Stop or Close.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c := &wsConn{conn: conn, raw: hc.conn, outpost: o.uuid, cancel: cancel, info: Connection{
		Outpost: o.name, InstanceUUID: q.Get("instance_uuid"), Attempt: attempt, Connected: time.Now()}}
	s.hub.mu.Lock()
	s.hub.conns = append(s.hub.conns, c)
	s.hub.accepting--
	accepted = true
	s.hub.wg.Add(1)
	s.hub.notify()
	s.hub.mu.Unlock()
	defer s.hub.wg.Done()
	defer cancel()
	s.serveWebsocket(ctx, c)
}

func (s *Server) serveWebsocket(ctx context.Context, c *wsConn) {
	defer func() {
		s.hub.mu.Lock()
		c.info.Closed = time.Now()
		s.hub.notify()
		s.hub.mu.Unlock()
		_ = c.conn.CloseNow()
	}()
	for {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			return
		}
		var msg outpost.Message
		if err := json.Unmarshal(data, &msg); err != nil {
			s.log.Debug("websocket: malformed message", "outpost", c.info.Outpost, "error", err)
			continue
		}
		s.hub.mu.Lock()
		c.info.Messages++
		if msg.Instruction == outpost.InstructionHello {
			c.info.Hellos++
			c.info.LastHello = maps.Clone(msg.Args)
			s.hub.hellos = append(s.hub.hellos, Hello{Outpost: c.info.Outpost, InstanceUUID: c.info.InstanceUUID,
				Attempt: c.info.Attempt, Time: time.Now(), Args: maps.Clone(msg.Args)})
		}
		s.hub.notify()
		s.hub.mu.Unlock()
		if msg.Instruction == outpost.InstructionAck {
			continue
		}
		// authentik acknowledges every message that is not itself an ACK.
		if err := writeMessage(ctx, c.conn, outpost.Message{Instruction: outpost.InstructionAck, Args: map[string]any{}}); err != nil {
			return
		}
	}
}

func writeMessage(ctx context.Context, conn *websocket.Conn, m outpost.Message) error {
	if m.Args == nil {
		m.Args = map[string]any{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, b)
}

// Send sends a control message to every open websocket of the named
// outpost ("" for all outposts) and returns how many received it.
func (s *Server) Send(outpostName string, instruction int, args map[string]any) int {
	s.mu.RLock()
	var uuid string
	if o := s.m.outpostByName(outpostName); o != nil {
		uuid = o.uuid
	}
	s.mu.RUnlock()
	if outpostName != "" && uuid == "" {
		return 0
	}
	s.hub.mu.Lock()
	// Handshakes under way finish first (bounded: a stuck one must not
	// stop the message).
	deadline := time.After(5 * time.Second)
	for s.hub.accepting > 0 {
		changed := s.hub.changed
		s.hub.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
		}
		s.hub.mu.Lock()
		if changed == s.hub.changed { // the deadline passed
			break
		}
	}
	var targets []*wsConn
	for _, c := range s.hub.conns {
		if c.info.Closed.IsZero() && (outpostName == "" || c.outpost == uuid) {
			targets = append(targets, c)
		}
	}
	s.hub.mu.Unlock()
	n := 0
	for _, c := range targets {
		if writeMessage(context.Background(), c.conn, outpost.Message{Instruction: instruction, Args: args}) == nil {
			n++
		}
	}
	return n
}

// TriggerUpdate tells the named outpost's instances to refresh their
// configuration (instruction 2), as authentik does when an outpost or one
// of its providers is saved. It returns how many instances were told.
func (s *Server) TriggerUpdate(outpostName string) int {
	return s.Send(outpostName, outpost.InstructionTriggerUpdate, nil)
}

func (s *Server) triggerAll() { s.Send("", outpost.InstructionTriggerUpdate, nil) }

// DropWebsockets closes every open websocket with status 1012 (service
// restart) while the core keeps serving HTTP.
func (s *Server) DropWebsockets() { s.hub.closeAll(1012, "service restart") }

// Connections lists the websockets the named outpost opened ("" for all),
// open and closed, in the order they connected.
func (s *Server) Connections(outpostName string) []Connection {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	var out []Connection
	for _, c := range s.hub.conns {
		if outpostName == "" || c.info.Outpost == outpostName {
			info := c.info
			info.LastHello = maps.Clone(c.info.LastHello)
			out = append(out, info)
		}
	}
	return out
}

// Hellos lists the hello messages the named outpost sent ("" for all).
func (s *Server) Hellos(outpostName string) []Hello {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	var out []Hello
	for _, h := range s.hub.hellos {
		if outpostName == "" || h.Outpost == outpostName {
			h.Args = maps.Clone(h.Args)
			out = append(out, h)
		}
	}
	return out
}

// WaitFor blocks until cond, called with the named outpost's connections
// after every websocket event, returns true, or ctx ends.
func (s *Server) WaitFor(ctx context.Context, outpostName string, cond func([]Connection) bool) error {
	for {
		s.hub.mu.Lock()
		ch := s.hub.changed
		s.hub.mu.Unlock()
		if cond(s.Connections(outpostName)) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return errors.Join(errors.New("outposttest: condition not met"), ctx.Err())
		}
	}
}

// WaitConnected blocks until the named outpost has at least n open
// websockets that sent a hello, or ctx ends.
func (s *Server) WaitConnected(ctx context.Context, outpostName string, n int) error {
	return s.WaitFor(ctx, outpostName, func(cs []Connection) bool { return OpenConnections(cs) >= n })
}

// OpenConnections counts the open connections that sent a hello.
func OpenConnections(cs []Connection) int {
	n := 0
	for _, c := range cs {
		if c.Closed.IsZero() && c.Hellos > 0 {
			n++
		}
	}
	return n
}
