// Command ldapload drives an LDAP server with concurrent clients over
// reused connections for a fixed duration and prints operations per second
// and latency percentiles, so two servers can be compared in the same run.
//
//	ldapload -addr 127.0.0.1:3389 -mode search -base dc=example,dc=org \
//	  -binddn cn=admin,dc=example,dc=org -bindpw secret -users 10000 -c 8 -d 10s
//
// In search mode each client binds once and then searches (uid=userN) for a
// random N below -users, asking for the attributes of -attrs; in bind mode
// each client rebinds as RDNATTR=userN,USERBASE with -userpw on its
// connection. Connections are opened once per client because reuse is what
// a real LDAP consumer (sssd, a web app pool) does.
//
// The default client (-client raw) writes pre-encoded BER requests and reads
// the answers with a minimal parser: the machine is shared between the load
// generator and the server under test, so a lean client leaves more CPU to
// the server and the ratio between two servers is less diluted by client
// cost. -client goldap uses github.com/go-ldap/ldap/v3 instead, as a cross
// check. Both fail an operation whose result code is not success, and a
// search that returns no entry.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

type options struct {
	addr, mode, base, bindDN, bindPW, userPW, userAttr, userBase string
	fixedDN, filterAttr, attrs, clientKind                       string
	users, clients, warmClients                                  int
	duration                                                     time.Duration
	warm                                                         bool
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:3389", "LDAP server host:port")
	flag.StringVar(&o.mode, "mode", "search", "search or bind")
	flag.StringVar(&o.base, "base", "dc=ldap,dc=goauthentik,dc=io", "search base DN")
	flag.StringVar(&o.userBase, "userbase", "", "DN suffix of users for bind mode (default ou=users,BASE)")
	flag.StringVar(&o.userAttr, "userattr", "cn", "RDN attribute of user DNs in bind mode (cn for the outpost, uid for slapd)")
	flag.StringVar(&o.bindDN, "binddn", "", "DN the search clients bind as (empty = anonymous)")
	flag.StringVar(&o.bindPW, "bindpw", "", "password of -binddn")
	flag.StringVar(&o.userPW, "userpw", "", "password of every userN in bind mode")
	flag.StringVar(&o.fixedDN, "dn", "", "bind mode: always bind as this DN instead of userN (for small demo populations)")
	flag.StringVar(&o.filterAttr, "filterattr", "uid", "search mode: the filter is (ATTR=userN)")
	flag.StringVar(&o.attrs, "attrs", "cn,uid,mail,memberOf", "search mode: comma-separated attributes to request; \"*\" for all user attributes")
	flag.StringVar(&o.clientKind, "client", "raw", "raw (pre-encoded BER, lean) or goldap (github.com/go-ldap/ldap/v3)")
	flag.IntVar(&o.users, "users", 10000, "population size: N is drawn from [0, users)")
	flag.IntVar(&o.clients, "c", 8, "concurrent clients, one connection each")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "duration of the run")
	flag.BoolVar(&o.warm, "warm", false, "bind mode: bind every user in [0, users) once before the timed run (fills a bind cache)")
	flag.IntVar(&o.warmClients, "warmc", 4, "concurrent clients of the -warm pass")
	flag.Parse()
	if o.userBase == "" {
		o.userBase = "ou=users," + o.base
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ldapload:", err)
		os.Exit(1)
	}
}

// client is one connection's way of running operations.
type client interface {
	bind(dn, pw string) error
	// search runs the equality search (attr=value) under base and returns
	// how many entries came back.
	search(base, attr, value string, attrs []string) (int, error)
	close()
}

// result is one client's latencies and its first error, if any.
type result struct {
	lat  []time.Duration
	errs int
	err  error
}

func (o options) userDN(n int) string {
	if o.fixedDN != "" {
		return o.fixedDN
	}
	return o.userAttr + "=user" + strconv.Itoa(n) + "," + o.userBase
}

func (o options) dial() (client, error) {
	switch o.clientKind {
	case "raw":
		return dialRaw(o.addr)
	case "goldap":
		c, err := ldap.DialURL("ldap://" + o.addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", o.addr, err)
		}
		return goldapClient{c}, nil
	}
	return nil, fmt.Errorf("unknown -client %q: want raw or goldap", o.clientKind)
}

func run(o options) error {
	if o.mode != "search" && o.mode != "bind" {
		return fmt.Errorf("unknown -mode %q: want search or bind", o.mode)
	}
	if o.mode == "bind" && o.warm {
		start := time.Now()
		if err := warm(o); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "warm: bound %d users once in %s\n", o.users, time.Since(start).Round(time.Millisecond))
	}
	var attrs []string
	for a := range strings.SplitSeq(o.attrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			attrs = append(attrs, a)
		}
	}
	conns := make([]client, o.clients)
	for i := range conns {
		c, err := o.dial()
		if err != nil {
			return err
		}
		defer c.close()
		if o.mode == "search" && o.bindDN != "" {
			if err := c.bind(o.bindDN, o.bindPW); err != nil {
				return fmt.Errorf("bind as %s: %w", o.bindDN, err)
			}
		}
		conns[i] = c
	}
	results := make([]result, o.clients)
	deadline := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { results[i] = drive(o, c, attrs, deadline) })
	}
	wg.Wait()
	var all []time.Duration
	errs := 0
	var first error
	for _, r := range results {
		all = append(all, r.lat...)
		errs += r.errs
		if first == nil {
			first = r.err
		}
	}
	if first != nil {
		fmt.Fprintln(os.Stderr, "first error:", first)
	}
	if len(all) == 0 {
		return fmt.Errorf("no operation succeeded (%d errors)", errs)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))] }
	fmt.Printf("mode=%s ops=%d errors=%d ops/s=%.0f p50=%s p99=%s\n", o.mode, len(all), errs,
		float64(len(all))/o.duration.Seconds(), pct(0.50), pct(0.99))
	return nil
}

// warm binds every user once, spread over a few connections.
func warm(o options) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for w := range o.warmClients {
		wg.Go(func() {
			c, err := o.dial()
			if err == nil {
				defer c.close()
				for n := w; n < o.users && err == nil; n += o.warmClients {
					if err = c.bind(o.userDN(n), o.userPW); err != nil {
						err = fmt.Errorf("warm bind as %s: %w", o.userDN(n), err)
					}
				}
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

func drive(o options, c client, attrs []string, deadline time.Time) result {
	var r result
	for time.Now().Before(deadline) {
		n := rand.IntN(o.users)
		start := time.Now()
		var err error
		if o.mode == "bind" {
			err = c.bind(o.userDN(n), o.userPW)
		} else {
			var got int
			got, err = c.search(o.base, o.filterAttr, "user"+strconv.Itoa(n), attrs)
			if err == nil && got == 0 {
				err = fmt.Errorf("(%s=user%d): no entry", o.filterAttr, n)
			}
		}
		if err != nil {
			r.errs++
			if r.err == nil {
				r.err = err
			}
			continue
		}
		r.lat = append(r.lat, time.Since(start))
	}
	return r
}

type goldapClient struct{ c *ldap.Conn }

func (g goldapClient) bind(dn, pw string) error { return g.c.Bind(dn, pw) }
func (g goldapClient) close()                   { g.c.Close() }

func (g goldapClient) search(base, attr, value string, attrs []string) (int, error) {
	res, err := g.c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, "("+attr+"="+ldap.EscapeFilter(value)+")", attrs, nil))
	if err != nil {
		return 0, err
	}
	return len(res.Entries), nil
}

// rawClient speaks just enough BER for simple binds and equality searches,
// one operation at a time on its connection.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
	id   int
	buf  []byte // request being built
	msg  []byte // answer being read
}

func dialRaw(addr string) (*rawClient, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &rawClient{conn: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (c *rawClient) close() {
	// unbindRequest, then close: polite to both servers.
	c.id++
	var b builder
	b.begin(0x30)
	b.int(0x02, c.id)
	b.buf = append(b.buf, 0x42, 0x00)
	b.end()
	c.conn.Write(b.buf)
	c.conn.Close()
}

func (c *rawClient) bind(dn, pw string) error {
	c.id++
	b := builder{buf: c.buf[:0]}
	b.begin(0x30)
	b.int(0x02, c.id)
	b.begin(0x60) // [APPLICATION 0] BindRequest
	b.int(0x02, 3)
	b.str(0x04, dn)
	b.str(0x80, pw) // simple [0]
	b.end()
	b.end()
	c.buf = b.buf
	if _, err := c.conn.Write(b.buf); err != nil {
		return fmt.Errorf("writing bind: %w", err)
	}
	op, code, err := c.readOp()
	if err != nil {
		return err
	}
	if op != 0x61 {
		return fmt.Errorf("bind: unexpected answer tag 0x%02x", op)
	}
	if code != 0 {
		return fmt.Errorf("bind as %s: result code %d", dn, code)
	}
	return nil
}

func (c *rawClient) search(base, attr, value string, attrs []string) (int, error) {
	c.id++
	b := builder{buf: c.buf[:0]}
	b.begin(0x30)
	b.int(0x02, c.id)
	b.begin(0x63) // [APPLICATION 3] SearchRequest
	b.str(0x04, base)
	b.int(0x0a, 2) // wholeSubtree
	b.int(0x0a, 0) // neverDerefAliases
	b.int(0x02, 0) // no size limit
	b.int(0x02, 0) // no time limit
	b.buf = append(b.buf, 0x01, 0x01, 0x00)
	b.begin(0xa3) // equalityMatch [3]
	b.str(0x04, attr)
	b.str(0x04, value)
	b.end()
	b.begin(0x30)
	for _, a := range attrs {
		b.str(0x04, a)
	}
	b.end()
	b.end()
	b.end()
	c.buf = b.buf
	if _, err := c.conn.Write(b.buf); err != nil {
		return 0, fmt.Errorf("writing search: %w", err)
	}
	entries := 0
	for {
		op, code, err := c.readOp()
		if err != nil {
			return entries, err
		}
		switch op {
		case 0x64: // SearchResultEntry
			entries++
		case 0x73: // SearchResultReference
		case 0x65: // SearchResultDone
			if code != 0 {
				return entries, fmt.Errorf("search: result code %d", code)
			}
			return entries, nil
		default:
			return entries, fmt.Errorf("search: unexpected answer tag 0x%02x", op)
		}
	}
}

// readOp reads one LDAPMessage of the current message ID and returns its
// protocolOp tag and, for LDAPResult-shaped answers, the result code.
func (c *rawClient) readOp() (op byte, code int, err error) {
	for {
		tag, err := c.r.ReadByte()
		if err != nil {
			return 0, 0, fmt.Errorf("reading answer: %w", err)
		}
		if tag != 0x30 {
			return 0, 0, fmt.Errorf("answer tag 0x%02x is not a SEQUENCE", tag)
		}
		n, err := readLength(c.r)
		if err != nil {
			return 0, 0, err
		}
		if cap(c.msg) < n {
			c.msg = make([]byte, n)
		}
		c.msg = c.msg[:n]
		if _, err := io.ReadFull(c.r, c.msg); err != nil {
			return 0, 0, fmt.Errorf("reading answer: %w", err)
		}
		p := parser{b: c.msg}
		_, idb := p.next()
		op, body := p.next()
		if p.err != nil {
			return 0, 0, p.err
		}
		id := 0
		for _, x := range idb {
			id = id<<8 | int(x)
		}
		if id == 0 && op == 0x78 {
			return 0, 0, errors.New("server sent a notice of disconnection")
		}
		if id != c.id {
			continue // an answer to something we gave up on
		}
		if op == 0x61 || op == 0x65 {
			q := parser{b: body}
			_, v := q.next()
			if q.err != nil || len(v) == 0 {
				return 0, 0, errors.New("answer without a result code")
			}
			code = int(v[len(v)-1])
		}
		return op, code, nil
	}
}

func readLength(r *bufio.Reader) (int, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, fmt.Errorf("reading answer length: %w", err)
	}
	if b < 0x80 {
		return int(b), nil
	}
	k := int(b & 0x7f)
	if k == 0 || k > 4 {
		return 0, fmt.Errorf("unsupported BER length form 0x%02x", b)
	}
	n := 0
	for range k {
		x, err := r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("reading answer length: %w", err)
		}
		n = n<<8 | int(x)
	}
	return n, nil
}

// parser walks definite-length TLVs.
type parser struct {
	b   []byte
	err error
}

func (p *parser) next() (tag byte, val []byte) {
	if p.err != nil {
		return 0, nil
	}
	if len(p.b) < 2 {
		p.err = errors.New("truncated answer")
		return 0, nil
	}
	tag = p.b[0]
	n := int(p.b[1])
	p.b = p.b[2:]
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(p.b) < k {
			p.err = errors.New("bad length in answer")
			return 0, nil
		}
		n = 0
		for _, x := range p.b[:k] {
			n = n<<8 | int(x)
		}
		p.b = p.b[k:]
	}
	if n > len(p.b) {
		p.err = errors.New("truncated answer")
		return 0, nil
	}
	val, p.b = p.b[:n], p.b[n:]
	return tag, val
}

// builder encodes definite-length TLVs, patching lengths as constructed
// values end.
type builder struct {
	buf   []byte
	stack []int
}

func (b *builder) begin(tag byte) {
	// Reserve 4 length bytes (0x83 + 3): requests stay far below 16 MiB.
	b.buf = append(b.buf, tag, 0x83, 0, 0, 0)
	b.stack = append(b.stack, len(b.buf))
}

func (b *builder) end() {
	start := b.stack[len(b.stack)-1]
	b.stack = b.stack[:len(b.stack)-1]
	n := len(b.buf) - start
	b.buf[start-3], b.buf[start-2], b.buf[start-1] = byte(n>>16), byte(n>>8), byte(n)
}

func (b *builder) str(tag byte, s string) {
	b.buf = append(b.buf, tag)
	b.length(len(s))
	b.buf = append(b.buf, s...)
}

func (b *builder) int(tag byte, v int) {
	var tmp [8]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte(v)
		v >>= 8
		if v == 0 && tmp[i] < 0x80 {
			break
		}
	}
	b.buf = append(b.buf, tag, byte(len(tmp)-i))
	b.buf = append(b.buf, tmp[i:]...)
}

func (b *builder) length(n int) {
	switch {
	case n < 0x80:
		b.buf = append(b.buf, byte(n))
	case n < 0x100:
		b.buf = append(b.buf, 0x81, byte(n))
	default:
		b.buf = append(b.buf, 0x82, byte(n>>8), byte(n))
	}
}
