package main

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // RADIUS's authenticators are MD5 by definition.
	"net"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

const testSecret = "test-secret"

// reply builds a reply to req with layeh.com/radius, with a
// Message-Authenticator unless withMA is false.
func reply(t *testing.T, req []byte, code radius.Code, withMA bool) []byte {
	t.Helper()
	p, err := radius.Parse(req, []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Response(code)
	if withMA {
		r.Add(attrMessageAuthenticator, make([]byte, 16))
	}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if withMA {
		// Over the reply with the request's authenticator (RFC 3579 3.2),
		// then the Response Authenticator over the signed reply.
		at := len(b) - 16
		c := append([]byte(nil), b...)
		copy(c[4:20], req[4:20])
		h := hmac.New(md5.New, []byte(testSecret))
		h.Write(c)
		copy(b[at:], h.Sum(nil))
		copy(b[4:20], req[4:20])
		m := md5.New() //nolint:gosec // see the import
		m.Write(b)
		m.Write([]byte(testSecret))
		copy(b[4:20], m.Sum(nil))
	}
	return b
}

func newTestWorker() *worker {
	return newWorker(options{secret: testSecret, password: "benchpass", prefix: "user", nasID: "t", users: 10}, nil)
}

// TestRequest checks the hand-built request with layeh.com/radius: the
// password decrypts, and the Message-Authenticator verifies.
func TestRequest(t *testing.T) {
	w := newTestWorker()
	req, err := w.encode("user7", 42)
	if err != nil {
		t.Fatal(err)
	}
	p, err := radius.Parse(req, []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	if p.Identifier != 42 || rfc2865.UserName_GetString(p) != "user7" || rfc2865.UserPassword_GetString(p) != "benchpass" ||
		rfc2865.NASIdentifier_GetString(p) != "t" {
		t.Errorf("request %+v", p)
	}
	ma := p.Get(attrMessageAuthenticator)
	if len(ma) != 16 {
		t.Fatalf("Message-Authenticator %x", ma)
	}
	c := append([]byte(nil), req...)
	clear(c[len(c)-16:])
	h := hmac.New(md5.New, []byte(testSecret))
	h.Write(c)
	if !hmac.Equal(h.Sum(nil), ma) {
		t.Error("the request's Message-Authenticator does not verify")
	}
}

func TestCheckReply(t *testing.T) {
	w := newTestWorker()
	req, err := w.encode("user1", 9)
	if err != nil {
		t.Fatal(err)
	}
	req = append([]byte(nil), req...)
	for _, code := range []radius.Code{radius.CodeAccessAccept, radius.CodeAccessReject} {
		if got, why := checkReply(reply(t, req, code, true), req, []byte(testSecret)); why != "" || got != byte(code) {
			t.Errorf("%v: code %d, %q", code, got, why)
		}
	}
	if _, why := checkReply(reply(t, req, radius.CodeAccessAccept, false), req, []byte(testSecret)); why != "no Message-Authenticator" {
		t.Errorf("a reply without Message-Authenticator: %q", why)
	}
	forged := reply(t, req, radius.CodeAccessAccept, true)
	forged[len(forged)-1] ^= 1
	if _, why := checkReply(forged, req, []byte(testSecret)); why == "" {
		t.Error("an altered reply passed")
	}
	if _, why := checkReply(reply(t, req, radius.CodeAccessAccept, true), req, []byte("other")); why == "" {
		t.Error("a reply under another secret passed")
	}
}

// TestRun drives a small server that accepts user0..user4 and rejects
// the rest, and checks that a run fails when too many are rejected.
func TestRun(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := append([]byte(nil), buf[:n]...)
			p, err := radius.Parse(req, []byte(testSecret))
			if err != nil {
				continue
			}
			code := radius.CodeAccessReject
			if u := rfc2865.UserName_GetString(p); len(u) == 5 && u[4] < '5' &&
				rfc2865.UserPassword_GetString(p) == "benchpass" {
				code = radius.CodeAccessAccept
			}
			_, _ = pc.WriteTo(reply(t, req, code, true), from)
		}
	}()
	defer func() { pc.Close(); <-done }()
	o := options{addr: pc.LocalAddr().String(), secret: testSecret, password: "benchpass", prefix: "user",
		nasID: "t", users: 5, workers: 2, requests: 50, timeout: 2 * time.Second, maxFailures: 0.01}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	o.users = 10
	if err := run(o); err == nil {
		t.Error("a run with about half the requests rejected passed")
	}
}
