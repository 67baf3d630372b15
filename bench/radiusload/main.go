// Command radiusload drives a RADIUS server with PAP Access-Requests from
// concurrent workers and prints requests per second and latency
// percentiles, so two servers can be compared in the same run.
//
//	radiusload -addr 127.0.0.1:1812 -secret s3cret -users 10000 -password benchpass -c 16 -d 10s
//
// Each worker owns a UDP socket and has one request in flight at a time,
// as a NAS port does: User-Name userN for a random N below -users, the
// User-Password encrypted with the shared secret, a NAS-Identifier and a
// Message-Authenticator (RFC 3579 3.2, required by servers hardened
// against BlastRADIUS). A request unanswered after -timeout counts as a
// timeout and is not retransmitted. Every reply must carry a valid
// Response Authenticator and a valid Message-Authenticator; one that does
// not is counted as bad. Access-Accepts and Access-Rejects are counted
// apart, and the run fails when rejects, timeouts and bad replies are
// more than -max-failures of the requests sent.
//
// The request encoder and the reply checks are written out by hand, with
// layeh.com/radius for the password's encryption and the Response
// Authenticator check: the load generator shares the machine with the
// servers, so a lean client leaves them more of it. It reports its own
// CPU time per request (client-cpu) to show how much it took.
//
// `radiusload count-core -target URL` is a reverse proxy in front of an
// authentik core that counts the requests it passes by method and path,
// and the connections opened to it;
// GET /.bench/counts on it lists the counts, so a script can work out the
// core requests per authentication from two snapshots; `radiusload counts
// URL` prints them.
package main

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // RADIUS's authenticators are MD5 by definition.
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"layeh.com/radius"
)

// RADIUS codes and attribute types used here (RFC 2865, RFC 3579).
const (
	codeAccessRequest = 1
	codeAccessAccept  = 2
	codeAccessReject  = 3

	attrUserName             = 1
	attrUserPassword         = 2
	attrNASIdentifier        = 32
	attrMessageAuthenticator = 80
)

type options struct {
	addr, secret, password, prefix, nasID string
	users, workers, requests              int
	duration, timeout                     time.Duration
	maxFailures                           float64
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "count-core" || os.Args[1] == "counts") {
		cmd, f := os.Args[1], countCore
		if cmd == "counts" {
			f = printCounts
		}
		if err := f(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "radiusload %s: %v\n", cmd, err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:1812", "RADIUS server host:port (UDP)")
	flag.StringVar(&o.secret, "secret", "", "shared secret (required)")
	flag.StringVar(&o.password, "password", "benchpass", "password of every user")
	flag.StringVar(&o.prefix, "prefix", "user", "usernames are PREFIX0..PREFIX(N-1)")
	flag.StringVar(&o.nasID, "nas-id", "radiusload", "NAS-Identifier of the requests")
	flag.IntVar(&o.users, "users", 10000, "population size N: each request names a random user below it")
	flag.IntVar(&o.workers, "c", 16, "concurrent workers, one socket and one request in flight each")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "duration of the run")
	flag.IntVar(&o.requests, "n", 0, "send this many requests in all instead of running for -d")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Second, "time to wait for a reply before counting a timeout")
	flag.Float64Var(&o.maxFailures, "max-failures", 0.01,
		"fail when rejects, timeouts and bad replies are more than this fraction of the requests")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "radiusload:", err)
		os.Exit(1)
	}
}

// result is what one worker saw.
type result struct {
	accepts, rejects, timeouts, bad int
	latencies                       []time.Duration
	firstBad                        string
}

func run(o options) error {
	switch {
	case o.secret == "":
		return errors.New("-secret is required")
	case o.users < 1 || o.workers < 1:
		return errors.New("-users and -c must be at least 1")
	case len(o.password) > 128:
		return errors.New("-password: at most 128 bytes fit User-Password")
	}
	raddr, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return err
	}
	conns := make([]*net.UDPConn, o.workers)
	for i := range conns {
		if conns[i], err = net.DialUDP("udp", nil, raddr); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	var (
		remaining atomic.Int64
		wg        sync.WaitGroup
	)
	remaining.Store(int64(o.requests))
	results := make([]result, o.workers)
	start := time.Now()
	end := start.Add(o.duration)
	for i := range o.workers {
		wg.Go(func() {
			w := newWorker(o, conns[i])
			for {
				if o.requests > 0 {
					if remaining.Add(-1) < 0 {
						break
					}
				} else if !time.Now().Before(end) {
					break
				}
				w.once(&results[i])
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var total result
	for _, r := range results {
		total.accepts += r.accepts
		total.rejects += r.rejects
		total.timeouts += r.timeouts
		total.bad += r.bad
		total.latencies = append(total.latencies, r.latencies...)
		if total.firstBad == "" {
			total.firstBad = r.firstBad
		}
	}
	sent := total.accepts + total.rejects + total.timeouts + total.bad
	answered := total.accepts + total.rejects
	slices.Sort(total.latencies)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("req/s=%.0f accepts=%d rejects=%d timeouts=%d bad=%d p50=%.2fms p99=%.2fms requests=%d seconds=%.2f client-cpu=%.3fms/req\n",
		float64(answered)/elapsed.Seconds(), total.accepts, total.rejects, total.timeouts, total.bad,
		ms(percentile(total.latencies, 0.50)), ms(percentile(total.latencies, 0.99)), sent, elapsed.Seconds(),
		ms(cpu)/float64(max(sent, 1)))
	if total.firstBad != "" {
		fmt.Fprintln(os.Stderr, "radiusload: first bad reply:", total.firstBad)
	}
	if sent == 0 || total.accepts == 0 {
		return errors.New("no Access-Accept")
	}
	if failed := total.rejects + total.timeouts + total.bad; float64(failed) > o.maxFailures*float64(sent) {
		return fmt.Errorf("%d of %d requests failed (rejects, timeouts, bad replies)", failed, sent)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile of sorted latencies.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// worker sends one request at a time on its own socket.
type worker struct {
	o      options
	conn   *net.UDPConn
	secret []byte
	rng    *mrand.Rand
	id     byte
	req    []byte
	buf    []byte
}

func newWorker(o options, conn *net.UDPConn) *worker {
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	w := &worker{o: o, conn: conn, secret: []byte(o.secret), rng: mrand.New(mrand.NewChaCha8(seed)),
		req: make([]byte, 0, 512), buf: make([]byte, radius.MaxPacketLength+1)}
	w.id = byte(w.rng.UintN(256))
	return w
}

// once sends one Access-Request and waits for its reply.
func (w *worker) once(r *result) {
	w.id++
	n := w.rng.IntN(w.o.users)
	req, err := w.encode(w.o.prefix+strconv.Itoa(n), w.id)
	if err != nil {
		r.bad++
		r.firstBad = err.Error()
		return
	}
	start := time.Now()
	if _, err := w.conn.Write(req); err != nil {
		r.bad++
		if r.firstBad == "" {
			r.firstBad = "sending: " + err.Error()
		}
		return
	}
	deadline := start.Add(w.o.timeout)
	_ = w.conn.SetReadDeadline(deadline)
	for {
		m, err := w.conn.Read(w.buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.timeouts++
				return
			}
			// ICMP port unreachable and the like: the server is not there.
			r.bad++
			if r.firstBad == "" {
				r.firstBad = "reading: " + err.Error()
			}
			time.Sleep(time.Until(deadline))
			return
		}
		reply := w.buf[:m]
		if m >= 20 && reply[1] != w.id {
			continue // a late reply to a request already counted as a timeout
		}
		lat := time.Since(start)
		code, why := checkReply(reply, req, w.secret)
		switch {
		case why != "":
			r.bad++
			if r.firstBad == "" {
				r.firstBad = why
			}
		case code == codeAccessAccept:
			r.accepts++
			r.latencies = append(r.latencies, lat)
		default:
			r.rejects++
			r.latencies = append(r.latencies, lat)
		}
		return
	}
}

// encode builds an Access-Request for user with identifier id: User-Name,
// User-Password, NAS-Identifier and Message-Authenticator, in w.req.
func (w *worker) encode(user string, id byte) ([]byte, error) {
	b := append(w.req[:0], codeAccessRequest, id, 0, 0)
	var auth [16]byte
	binary.LittleEndian.PutUint64(auth[:8], w.rng.Uint64())
	binary.LittleEndian.PutUint64(auth[8:], w.rng.Uint64())
	b = append(b, auth[:]...)
	pw, err := radius.NewUserPassword([]byte(w.o.password), w.secret, auth[:])
	if err != nil {
		return nil, err
	}
	for _, a := range []struct {
		typ   byte
		value []byte
	}{{attrUserName, []byte(user)}, {attrUserPassword, pw}, {attrNASIdentifier, []byte(w.o.nasID)}} {
		if len(a.value) == 0 || len(a.value) > 253 {
			return nil, fmt.Errorf("attribute %d: %d bytes", a.typ, len(a.value))
		}
		b = append(b, a.typ, byte(2+len(a.value)))
		b = append(b, a.value...)
	}
	b = append(b, attrMessageAuthenticator, 18)
	at := len(b)
	b = append(b, make([]byte, 16)...)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	h := hmac.New(md5.New, w.secret)
	h.Write(b)
	h.Sum(b[at:at])
	w.req = b
	return b, nil
}

// checkReply checks a reply to req: its header, its Response
// Authenticator and exactly one valid Message-Authenticator, which in a
// reply is computed over the packet with the request's authenticator in
// place of its own (RFC 3579 3.2). It returns the code, or why the reply
// is bad.
func checkReply(reply, req, secret []byte) (byte, string) {
	if len(reply) < 20 {
		return 0, fmt.Sprintf("a reply of %d bytes", len(reply))
	}
	length := int(binary.BigEndian.Uint16(reply[2:4]))
	if length < 20 || length > len(reply) {
		return 0, fmt.Sprintf("a reply whose Length %d does not fit its %d bytes", length, len(reply))
	}
	reply = reply[:length]
	code := reply[0]
	if code != codeAccessAccept && code != codeAccessReject {
		return 0, fmt.Sprintf("a reply of code %d", code)
	}
	if !radius.IsAuthenticResponse(reply, req, secret) {
		return 0, "a wrong Response Authenticator"
	}
	at := -1
	for i := 20; i < length; {
		if i+2 > length || reply[i+1] < 2 || i+int(reply[i+1]) > length {
			return 0, "malformed attributes"
		}
		if reply[i] == attrMessageAuthenticator {
			if at >= 0 || reply[i+1] != 18 {
				return 0, "more than one Message-Authenticator, or one of a wrong length"
			}
			at = i + 2
		}
		i += int(reply[i+1])
	}
	if at < 0 {
		return 0, "no Message-Authenticator"
	}
	c := make([]byte, length)
	copy(c, reply)
	copy(c[4:20], req[4:20])
	clear(c[at : at+16])
	h := hmac.New(md5.New, secret)
	h.Write(c)
	if !hmac.Equal(h.Sum(nil), reply[at:at+16]) {
		return 0, "a wrong Message-Authenticator"
	}
	return code, ""
}
