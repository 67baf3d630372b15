package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/outpost"
)

// frame encodes one websocket frame with a payload of n bytes (only the
// header when header is set), masked as a client sends it or not.
func frame(n uint64, masked, header bool) []byte {
	b := []byte{0x82} // FIN, binary
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126, 0, 0)
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = append(b, m|127, 0, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint64(b[2:], n)
	}
	if masked {
		b = append(b, 1, 2, 3, 4)
	}
	if header {
		return b
	}
	return append(b, make([]byte, n)...)
}

// feedSplit feeds stream to a parser in chunks cut at cuts and returns
// the absolute offset of the over-limit frame's header and its length,
// or -1.
func feedSplit(stream []byte, cuts []int, limit uint64) (int, uint64) {
	var f wsFrameParser
	start := 0
	for _, end := range append(cuts, len(stream)) {
		if end < start || end > len(stream) {
			continue
		}
		if off, n, over := f.feed(stream[start:end], limit); over {
			return start + off, n
		}
		start = end
	}
	return -1, 0
}

func TestWSFrameParser(t *testing.T) {
	const limit = 70000
	sizes := []uint64{0, 1, 125, 126, 127, 0xffff, 0x10000, limit}
	for _, masked := range []bool{true, false} {
		var under []byte
		for _, n := range sizes {
			under = append(under, frame(n, masked, false)...)
		}
		for _, tc := range []struct {
			name     string
			stream   []byte
			wantOff  int
			wantSize uint64
		}{
			{"frames up to the limit", under, -1, 0},
			{"cut inside a 16-bit length", append(frame(10, masked, false), frame(0xffff, masked, false)...), -1, 0},
			{"one over, 64-bit length", append(bytes.Clone(under), frame(limit+1, masked, true)...), len(under), limit + 1},
			{"top bit set", append(frame(3, masked, false), append([]byte{0x82, 127, 0x80}, make([]byte, 7)...)...), len(frame(3, masked, false)), 1 << 63},
		} {
			t.Run(fmt.Sprintf("%s masked=%v", tc.name, masked), func(t *testing.T) {
				// Every single cut, and byte by byte.
				var every []int
				for i := 1; i < len(tc.stream) && i < 200; i++ {
					every = append(every, i)
				}
				cutsets := [][]int{nil, every}
				for i := 0; i < len(tc.stream); i += 1 + len(tc.stream)/97 {
					cutsets = append(cutsets, []int{i})
				}
				for _, cuts := range cutsets {
					off, n := feedSplit(tc.stream, cuts, limit)
					if off != tc.wantOff || n != tc.wantSize {
						t.Fatalf("cuts %v: got offset %d length %d, want %d %d", cuts, off, n, tc.wantOff, tc.wantSize)
					}
				}
			})
		}
	}
	var f wsFrameParser
	f.feed(frame(5, true, false)[:8], 100)
	if f.atBoundary() {
		t.Error("at a boundary in the middle of a frame")
	}
	f.feed(frame(5, true, false)[8:], 100)
	if !f.atBoundary() {
		t.Error("not at a boundary after a whole frame")
	}
}

// FuzzWSFrameParser checks that where a stream is cut never changes what
// the parser finds.
func FuzzWSFrameParser(f *testing.F) {
	f.Add(frame(5, true, false), uint16(3), uint16(100))
	f.Add(append(frame(200, true, false), frame(1<<20, true, true)...), uint16(205), uint16(1000))
	f.Add([]byte{0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, uint16(1), uint16(10))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16, limit uint16) {
		wantOff, wantN := feedSplit(stream, nil, uint64(limit))
		off, n := feedSplit(stream, []int{int(cut) % (len(stream) + 1)}, uint64(limit))
		if off != wantOff || n != wantN {
			t.Fatalf("cut at %d: offset %d length %d; whole: %d %d", cut, off, n, wantOff, wantN)
		}
		if off >= 0 && (off >= len(stream) || n <= uint64(limit)) {
			t.Fatalf("offset %d length %d for a stream of %d and limit %d", off, n, len(stream), limit)
		}
	})
}

// wsEcho is a websocket upstream sending every message back. It accepts
// messages far over the proxy's limit, so only the proxy can refuse one,
// and reports the size of each message it read on got, when not nil.
func wsEcho(got chan<- int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(4 * maxWebsocketFrame)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if got != nil {
				select {
				case got <- len(msg):
				default:
				}
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
}

// wsLimitEnv is a proxy-mode application in front of a websocket echo
// upstream that itself accepts messages far over the proxy's limit, so
// only the proxy can refuse one. got receives the size of every message
// the upstream read.
func wsLimitEnv(t *testing.T) (*testEnv, *http.Client, *syncbuf.Buffer, chan int) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	e := newTestEnvDeps(t, outpost.Deps{Logger: slog.New(slog.NewTextHandler(logs, nil))}, Config{})
	got := make(chan int, 100)
	e.upstream = httptest.NewServer(wsEcho(got))
	t.Cleanup(e.upstream.Close)
	if err := e.apply(app{name: "app", external: "http://app.test"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	login(t, e, b, "http://app.test/")
	return e, b, logs, got
}

func dialWS(t *testing.T, ctx context.Context, b *http.Client) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.Dial(ctx, "ws://app.test/ws", &websocket.DialOptions{HTTPClient: b,
		CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		t.Fatalf("dial: %v (resp %v)", err, resp)
	}
	conn.SetReadLimit(4 * maxWebsocketFrame)
	return conn
}

// TestWebsocketFrameLimit sends frames up to the limit (echoed), then one
// over it (the connection closes and the upstream never sees it), then
// checks that the proxy still serves websockets and HTTP.
func TestWebsocketFrameLimit(t *testing.T) {
	e, b, logs, got := wsLimitEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := dialWS(t, ctx, b)
	defer conn.CloseNow()
	for _, n := range []int{1, 125, 126, 0xffff, 0x10000, 100000, maxWebsocketFrame} {
		msg := make([]byte, n)
		rand.Read(msg)
		if err := conn.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatalf("write %d bytes: %v", n, err)
		}
		_, back, err := conn.Read(ctx)
		if err != nil || !bytes.Equal(back, msg) {
			t.Fatalf("echo of %d bytes: got %d bytes, %v", n, len(back), err)
		}
		<-got
	}

	// The write may or may not complete (the proxy stops reading); the
	// read must end with the connection closed.
	werr := make(chan error, 1)
	go func() { werr <- conn.Write(ctx, websocket.MessageBinary, make([]byte, maxWebsocketFrame+1)) }()
	_, _, err := conn.Read(ctx)
	if err == nil {
		t.Fatal("a frame over the limit was answered")
	}
	if ctx.Err() != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
	t.Logf("client read after the oversized frame: %v (close status %d)", err, websocket.CloseStatus(err))
	if s := websocket.CloseStatus(err); s != -1 && s != websocket.StatusMessageTooBig {
		t.Errorf("close status %d, want %d or none", s, websocket.StatusMessageTooBig)
	}
	conn.CloseNow()
	<-werr
	select {
	case n := <-got:
		t.Errorf("the upstream read a message of %d bytes after the limit", n)
	default:
	}
	if !strings.Contains(logs.String(), "websocket frame over the limit") {
		t.Errorf("the refusal is not logged:\n%s", logs.String())
	}

	// The proxy lives on: a new websocket and a plain request.
	again := dialWS(t, ctx, b)
	defer again.CloseNow()
	if err := again.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, back, err := again.Read(ctx); err != nil || string(back) != "still here" {
		t.Fatalf("echo after the refusal: %q %v", back, err)
	}
	again.Close(websocket.StatusNormalClosure, "")
	resp := mustGet(t, e.noFollow(b.Jar), "http://app.test/", nil)
	resp.Body.Close()
	if resp.StatusCode == http.StatusBadGateway || resp.StatusCode >= 500 {
		t.Fatalf("plain request after the refusal: %d", resp.StatusCode)
	}
}

// TestWebsocketFrameLimitCloseFrame speaks the protocol by hand so that
// what the client receives is exact: a header announcing 2 MiB, with a
// few bytes of payload, is answered with a close frame of status 1009 and
// then the end of the connection.
func TestWebsocketFrameLimitCloseFrame(t *testing.T) {
	e, b, _, got := wsLimitEnv(t)
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	u, _ := url.Parse("http://app.test/")
	var cookies []string
	for _, ck := range b.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	key := make([]byte, 16)
	rand.Read(key)
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nCookie: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(key), strings.Join(cookies, "; "))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	// A small frame first, echoed, so the upstream is known to be reading.
	hello := append(frame(5, true, true), 'h'^1, 'e'^2, 'l'^3, 'l'^4, 'o'^1)
	// The oversized header is written in two pieces, cut inside its
	// length, as a slow client would.
	over := append(frame(2<<20, true, true), 9, 9, 9)
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 7)
	if _, err := io.ReadFull(br, echo); err != nil || !bytes.Equal(echo, []byte{0x82, 5, 'h', 'e', 'l', 'l', 'o'}) {
		t.Fatalf("echo %q %v", echo, err)
	}
	<-got
	if _, err := c.Write(over[:4]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(over[4:]); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading after the oversized frame: %v", err)
	}
	want := append([]byte{0x88, 17, 0x03, 0xf1}, "frame too large"...)
	if !bytes.Equal(rest, want) {
		t.Fatalf("after the oversized frame the client got %q, want %q", rest, want)
	}
	select {
	case n := <-got:
		t.Errorf("the upstream read a message of %d bytes after the limit", n)
	default:
	}
}

// TestWebsocketGoingAway ends proxied websockets the way a shutdown
// does: each client gets a close frame with status 1001, the tracker
// empties once the clients answered, and a websocket upgraded afterwards
// is ended at once.
func TestWebsocketGoingAway(t *testing.T) {
	up := httptest.NewServer(wsEcho(nil))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	tracker := &wsTracker{}
	log := slog.New(slog.DiscardHandler)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: func(res *http.Response) error {
			limitWebsocket(res, maxWebsocketFrame, log, "test", tracker)
			return nil
		},
	}
	front := httptest.NewServer(rp)
	defer front.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var conns []*websocket.Conn
	for i := range 3 {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front.URL, "http")+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		msg := fmt.Sprintf("hello %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, back, err := c.Read(ctx); err != nil || string(back) != msg {
			t.Fatalf("echo: %q %v", back, err)
		}
		conns = append(conns, c)
	}
	if n := tracker.len(); n != 3 {
		t.Fatalf("tracking %d websockets, want 3", n)
	}
	// The clients read while the proxy goes away, so they answer the close.
	statuses := make(chan websocket.StatusCode, len(conns))
	for _, c := range conns {
		go func() {
			_, _, err := c.Read(ctx)
			statuses <- websocket.CloseStatus(err)
		}()
	}
	if left := tracker.goingAway(ctx); left != 0 {
		t.Fatalf("%d websockets still open when goingAway returned", left)
	}
	for range conns {
		if s := <-statuses; s != websocket.StatusGoingAway {
			t.Errorf("client saw close status %d, want %d", s, websocket.StatusGoingAway)
		}
	}
	// Upgraded after the shutdown began: ended at once.
	late, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer late.CloseNow()
	if _, _, err := late.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("late websocket: %v, want close status %d", err, websocket.StatusGoingAway)
	}
	for tracker.len() != 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if n := tracker.len(); n != 0 {
		t.Errorf("still tracking %d websockets", n)
	}
}
