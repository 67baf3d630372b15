package reliability

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestProxyRefusesHostileHTTP sends, with a valid session cookie, request
// shapes a hostile client or a desynchronising front proxy might use.
// Each must be refused by the server before the upstream sees it, and the
// outpost must keep serving afterwards.
func TestProxyRefusesHostileHTTP(t *testing.T) {
	s := startStack(t, stackOptions{})
	jar := s.login(t, "http://app.test/", "alice", alicePassword)
	u, _ := url.Parse("http://app.test/")
	var cookie string
	for _, c := range jar.Cookies(u) {
		cookie += c.Name + "=" + c.Value + "; "
	}
	big := strings.Repeat("a", 2<<20)
	cases := []struct {
		name, raw string
	}{
		{"conflicting content lengths", "POST / HTTP/1.1\r\nHost: app.test\r\nCookie: " + cookie + "\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc"},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: app.test\r\nCookie: " + cookie + "\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: app.test\r\nCookie: " + cookie + "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{"oversized header", "GET / HTTP/1.1\r\nHost: app.test\r\nCookie: " + cookie + "\r\nX-Big: " + big + "\r\n\r\n"},
		{"oversized cookie", "GET / HTTP/1.1\r\nHost: app.test\r\nCookie: " + cookie + "x=" + big + "\r\n\r\n"},
		{"two hosts", "GET / HTTP/1.1\r\nHost: app.test\r\nHost: fwd.test\r\nCookie: " + cookie + "\r\n\r\n"},
		{"header name with space", "GET / HTTP/1.1\r\nHost: app.test\r\nCookie: " + cookie + "\r\nX Bad: 1\r\n\r\n"},
		{"bare CR in a header", "GET / HTTP/1.1\r\nHost: app.test\r\nCookie: " + cookie + "\r\nX-A: 1\rX-B: 2\r\n\r\n"},
		{"absolute-form to another host", "GET http://evil.test/ HTTP/1.1\r\nHost: app.test\r\nCookie: " + cookie + "\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.proxyAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			go c.Write([]byte(tc.raw))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Logf("connection closed without an answer: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("answered 200: the upstream was reached")
			}
			t.Logf("answered %d", resp.StatusCode)
		})
	}
	if code, body, err := s.get(jar, "http://app.test/after"); err != nil || code != 200 || !strings.Contains(body, `"user":"alice"`) {
		t.Fatalf("serving after the hostile requests: %d %v", code, err)
	}
}

// TestProxySlowClient: a client that opens a connection and trickles a
// header never completes is disconnected by the header timeout (5s by
// default), so it cannot hold a connection forever.
func TestProxySlowClient(t *testing.T) {
	s := startStack(t, stackOptions{})
	c, err := net.Dial("tcp", s.proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: "))
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("a slow client held its connection for 60s")
			}
			return // closed by the server
		}
	}
}
