package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The listener's connections: a PROXY header from a trusted peer names
// the client, a connection without one works, and a header from an
// untrusted peer is refused. Requests on one connection (keep-alive) work
// after the header, when writes and deadlines bypass the wrapper.
func TestListenProxyProtocol(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		header  string
		remote  string // the client address the server sees, "" for refused
	}{
		{"trusted v1 header", []string{"127.0.0.0/8"}, "PROXY TCP4 192.0.2.7 127.0.0.1 51234 80\r\n", "192.0.2.7:51234"},
		{"trusted, no header", []string{"127.0.0.0/8"}, "", "127.0.0.1"},
		{"untrusted header", []string{"10.0.0.0/8"}, "PROXY TCP4 192.0.2.7 127.0.0.1 51234 80\r\n", ""},
		{"untrusted, no header", []string{"10.0.0.0/8"}, "", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := listen("127.0.0.1:0", tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.WriteString(w, r.RemoteAddr)
				}),
				ReadHeaderTimeout: 5 * time.Second,
				IdleTimeout:       time.Minute,
			}
			done := make(chan struct{})
			go func() { defer close(done); srv.Serve(ln) }()
			defer func() { srv.Close(); <-done }()

			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			io.WriteString(c, tc.header)
			for i := range 3 {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if tc.remote == "" {
					if err == nil {
						t.Fatalf("header from an untrusted peer accepted: status %d", resp.StatusCode)
					}
					return
				}
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got := string(body); !strings.HasPrefix(got, tc.remote) {
					t.Fatalf("request %d: server saw client %q, want %q", i, got, tc.remote)
				}
			}
		})
	}
}
