package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/akoutpost/akoutpost/internal/testservers"
)

// httpsEnv is a logged-in proxy-mode application served by Serve on an
// HTTPS listener (and the test's plain HTTP server, where the login ran).
type httpsEnv struct {
	*testEnv
	httpsAddr string
	browser   *http.Client
}

func newHTTPSEnv(t *testing.T) *httpsEnv {
	t.Helper()
	e := newTestEnv(t, Config{}, app{name: "app", external: "http://app.test"})
	ln := listen(t)
	e.p.cfg.HTTPSListener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	b := e.browser()
	if resp := login(t, e, b, "http://app.test/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: status %d", resp.StatusCode)
	}
	return &httpsEnv{testEnv: e, httpsAddr: ln.Addr().String(), browser: b}
}

// client reaches the HTTPS listener for ".test" hosts with the browser's
// cookies, offering ALPN protos.
func (e *httpsEnv) client(t *testing.T, protos ...string) *http.Client {
	tr := &http.Transport{
		DialContext:     redirectDial(e.httpsAddr),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: protos},
	}
	for _, p := range protos {
		if p == "h2" {
			tr.ForceAttemptHTTP2 = true
		}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: e.browser.Jar, Transport: tr}
}

// TestHTTP2OnHTTPSListener: the HTTPS listener offered only http/1.1 in
// ALPN, while browsers and load balancers expect h2 on TLS. A Go HTTP/2
// client now gets HTTP/2 end to end through the proxy (the upstream is
// still reached over HTTP/1.1), and a client offering only http/1.1 still
// gets it.
func TestHTTP2OnHTTPSListener(t *testing.T) {
	e := newHTTPSEnv(t)
	for _, tc := range []struct {
		name   string
		protos []string
		major  int
	}{
		{"h2 offered", []string{"h2", "http/1.1"}, 2},
		{"http/1.1 only", []string{"http/1.1"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.client(t, tc.protos...)
			resp := mustGet(t, c, "https://app.test/page?q=1", nil)
			if resp.ProtoMajor != tc.major || resp.TLS == nil {
				t.Fatalf("response over %s, want HTTP/%d over TLS", resp.Proto, tc.major)
			}
			got := decodeEcho(t, resp)
			if resp.StatusCode != http.StatusOK || got.URI != "/page?q=1" || got.Host != "app.test" ||
				got.Headers.Get("X-Authentik-Username") != "alice" {
				t.Fatalf("status %d, upstream saw %s %s %v", resp.StatusCode, got.Host, got.URI, got.Headers)
			}
			// The outpost's own endpoints answer over it too.
			if resp := mustGet(t, c, "https://app.test"+pathPing, nil); resp.StatusCode != http.StatusNoContent || resp.ProtoMajor != tc.major {
				t.Fatalf("ping: %d over %s", resp.StatusCode, resp.Proto)
			}
		})
	}

	// Without a session an HTTP/2 request is sent to log in, as over
	// HTTP/1.1.
	tr := &http.Transport{DialContext: redirectDial(e.httpsAddr), ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	anon := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := mustGet(t, anon, "https://app.test/private", nil)
	if resp.StatusCode != http.StatusFound || resp.ProtoMajor != 2 {
		t.Fatalf("no session over HTTP/2: %d over %s, want 302 over HTTP/2", resp.StatusCode, resp.Proto)
	}
}

// TestWebsocketOnHTTPSListenerWithHTTP2: serving h2 must not break
// websockets. A websocket client negotiates http/1.1 and upgrades, as
// browsers do (the HTTP/2 server offers no extended CONNECT, so they do not
// try websockets over h2), while HTTP/2 requests share the listener.
func TestWebsocketOnHTTPSListenerWithHTTP2(t *testing.T) {
	e := newHTTPSEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "wss://app.test/ws", &websocket.DialOptions{HTTPClient: e.client(t, "http/1.1")})
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	defer conn.CloseNow()
	h2 := e.client(t, "h2", "http/1.1")
	for i, msg := range []string{"ping", "again"} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := conn.Read(ctx)
		if err != nil || string(got) != "alice:"+msg {
			t.Fatalf("message %d: read %q %v", i, got, err)
		}
		// An HTTP/2 request between the messages.
		if resp := mustGet(t, h2, "https://app.test/x", nil); resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("HTTP/2 request beside the websocket: %d over %s", resp.StatusCode, resp.Proto)
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

// TestHTTP2NoExtendedConnect guards the reason websockets keep working
// with h2 on: browsers open a websocket over an HTTP/2 connection only when
// the server's SETTINGS offer extended CONNECT (RFC 8441,
// SETTINGS_ENABLE_CONNECT_PROTOCOL = 1), and the proxy's websockets are
// HTTP/1.1 upgrades. Should the HTTP/2 server start offering it, browsers
// would send websockets where the proxy cannot pass them on.
func TestHTTP2NoExtendedConnect(t *testing.T) {
	e := newHTTPSEnv(t)
	conn, err := tls.Dial("tcp", e.httpsAddr, &tls.Config{ServerName: "app.test", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q, want h2", p)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The client preface and an empty SETTINGS frame.
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	// The server's first frame is its SETTINGS.
	var hdr [9]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		t.Fatal(err)
	}
	length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	if hdr[3] != 0x4 || length%6 != 0 || length > 1<<14 {
		t.Fatalf("first frame: type %d, length %d, want SETTINGS", hdr[3], length)
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(conn, payload); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < length; i += 6 {
		id, val := binary.BigEndian.Uint16(payload[i:]), binary.BigEndian.Uint32(payload[i+2:])
		if id == 0x8 && val == 1 {
			t.Fatal("the HTTP/2 server offers extended CONNECT: browsers would send websockets over HTTP/2")
		}
	}
}

// TestCurlHTTP2: curl, built with nghttp2, gets HTTP/2 from the HTTPS
// listener with --http2 (ALPN), through the proxy to the upstream.
func TestCurlHTTP2(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		testservers.Unavailable(t, "curl not installed (apt-get install curl)")
	}
	e := newHTTPSEnv(t)
	_, port, _ := net.SplitHostPort(e.httpsAddr)
	u, _ := url.Parse("http://app.test/")
	var cookies []string
	for _, c := range e.browser.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	out, err := exec.Command(curl, "--http2", "--insecure", "--silent", "--show-error",
		"--resolve", "app.test:"+port+":127.0.0.1", "--cookie", strings.Join(cookies, "; "),
		"--write-out", "\n%{http_version} %{http_code}", "https://app.test:"+port+"/from-curl").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	i := strings.LastIndexByte(string(out), '\n')
	body, status := string(out[:max(i, 0)]), string(out[i+1:])
	if status != "2 200" {
		t.Fatalf("curl --http2: HTTP version and status %q, want \"2 200\"; body %.300s", status, body)
	}
	if !strings.Contains(body, `"uri":"/from-curl"`) || !strings.Contains(body, `"X-Authentik-Username":["alice"]`) {
		t.Fatalf("the upstream did not see the logged-in request: %.300s", body)
	}
}
