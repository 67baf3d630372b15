package ldapserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	ldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	baseDN    = "dc=example,dc=org"
	aliceDN   = "cn=alice,ou=users,dc=example,dc=org"
	alicePass = "s3cret"
)

// testHandler is a directory of numbered users. Its function fields, when
// set, replace the default behaviour of an operation.
type testHandler struct {
	users   int
	bind    func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.BindRequest) ldapserver.Result
	search  func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result
	compare func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.CompareRequest) ldapserver.Result
}

var _ ldapserver.Handler = (*testHandler)(nil)

func (h *testHandler) Bind(ctx context.Context, c *ldapserver.Conn, req *ldapserver.BindRequest) ldapserver.Result {
	if h.bind != nil {
		return h.bind(ctx, c, req)
	}
	if req.DN == aliceDN && req.Password == alicePass {
		return ldapserver.Result{}
	}
	return ldapserver.Failure(ldap.LDAPResultInvalidCredentials, "invalid credentials")
}

func userEntry(i int) *ldapserver.Entry {
	name := fmt.Sprintf("user%03d", i)
	return &ldapserver.Entry{
		DN: "cn=" + name + ",ou=users," + baseDN,
		Attributes: []ldapserver.Attribute{
			{Type: "cn", Values: []string{name}},
			{Type: "objectClass", Values: []string{"top", "person"}},
			{Type: "uidNumber", Values: []string{strconv.Itoa(2000 + i)}},
			{Type: "mail", Values: []string{name + "@example.org"}},
		},
	}
}

// Search streams the users, paging with the offset as cookie when asked.
func (h *testHandler) Search(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
	if h.search != nil {
		return h.search(ctx, c, req, w)
	}
	start, end := 0, h.users
	if req.Paging != nil && req.Paging.PagingSize > 0 {
		if len(req.Paging.Cookie) > 0 {
			n, err := strconv.Atoi(string(req.Paging.Cookie))
			if err != nil || n < 0 || n > h.users {
				return ldapserver.Failure(ldap.LDAPResultUnwillingToPerform, "bad paging cookie")
			}
			start = n
		}
		end = min(start+int(req.Paging.PagingSize), h.users)
	}
	for i := start; i < end; i++ {
		err := w.WriteEntry(userEntry(i))
		if errors.Is(err, ldapserver.ErrSizeLimitExceeded) {
			break
		}
		if err != nil {
			return ldapserver.Failure(ldap.LDAPResultUnavailable, "search stopped")
		}
	}
	res := ldapserver.Result{}
	if req.Paging != nil && req.Paging.PagingSize > 0 {
		cookie := []byte(nil)
		if end < h.users {
			cookie = []byte(strconv.Itoa(end))
		}
		res.Controls = []ldap.Control{ldapserver.PagingResult(cookie)}
	}
	return res
}

func (h *testHandler) Compare(ctx context.Context, c *ldapserver.Conn, req *ldapserver.CompareRequest) ldapserver.Result {
	if h.compare != nil {
		return h.compare(ctx, c, req)
	}
	if req.DN == aliceDN && req.Attribute == "cn" && req.Value == "alice" {
		return ldapserver.Result{Code: ldap.LDAPResultCompareTrue}
	}
	return ldapserver.Result{Code: ldap.LDAPResultCompareFalse}
}

// server is a Server running on a loopback listener for one test.
type server struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	logs   *syncbuf.Buffer
}

// startServer serves s on 127.0.0.1:0 until the test ends (or stop).
func startServer(t *testing.T, s *ldapserver.Server) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { srv.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

// stop ends Serve and returns its error; it may be called more than once.
func (s *server) stop() error {
	s.cancel()
	err, ok := <-s.done
	if ok {
		close(s.done)
	}
	return err
}

func (s *server) dial(t *testing.T) *ldap.Conn {
	t.Helper()
	l, err := ldap.DialURL("ldap://" + s.addr)
	if err != nil {
		t.Fatal(err)
	}
	l.SetTimeout(30 * time.Second)
	t.Cleanup(func() { l.Close() })
	return l
}

func (s *server) raw(t *testing.T) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return nc
}

// envelope wraps a protocolOp into an LDAPMessage.
func envelope(id int64, op *ber.Packet) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "id"))
	p.AppendChild(op)
	return p.Bytes()
}

// searchOp builds a SearchRequest protocolOp for filter.
func searchOp(t testing.TB, filter *ber.Packet) *ber.Packet {
	t.Helper()
	return searchOpBase(t, baseDN, filter)
}

func searchOpBase(t testing.TB, base string, filter *ber.Packet) *ber.Packet {
	t.Helper()
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "search")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, base, "base"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 2, "scope"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "deref"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "size"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "time"))
	op.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "typesOnly"))
	op.AppendChild(filter)
	op.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes"))
	return op
}

func compileFilter(t testing.TB, s string) *ber.Packet {
	t.Helper()
	f, err := ldap.CompileFilter(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readResponse reads one LDAPMessage and returns its ID, protocolOp tag
// and result code (-1 for messages without one).
func readResponse(t *testing.T, nc net.Conn) (id int64, tag ber.Tag, code int64, p *ber.Packet) {
	t.Helper()
	p, err := ber.ReadPacket(nc)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	id = p.Children[0].Value.(int64)
	op := p.Children[1]
	code = -1
	if len(op.Children) > 0 && op.Children[0].Tag == ber.TagEnumerated {
		code, _ = ber.ParseInt64(op.Children[0].Data.Bytes())
	}
	return id, op.Tag, code, p
}

// expectClosed reads until the server closes nc, returning what it sent.
func expectClosed(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("server did not close the connection; got %d bytes", len(got))
			}
			return got
		}
	}
}

// selfSigned returns a certificate for names and a pool trusting it.
func selfSigned(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}
