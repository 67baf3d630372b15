package ldapserver_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

func TestBind(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}})
	tests := []struct {
		name string
		bind func(l *ldap.Conn) error
		code uint16 // 0: success
	}{
		{"right password", func(l *ldap.Conn) error { return l.Bind(aliceDN, alicePass) }, 0},
		{"wrong password", func(l *ldap.Conn) error { return l.Bind(aliceDN, "wrong") }, ldap.LDAPResultInvalidCredentials},
		{"unknown user", func(l *ldap.Conn) error { return l.Bind("cn=bob,ou=users,"+baseDN, alicePass) }, ldap.LDAPResultInvalidCredentials},
		// RFC 4513 5.1.2: a name without a password must not look like a
		// successful bind; the handler is not even asked.
		{"unauthenticated", func(l *ldap.Conn) error { return l.UnauthenticatedBind(aliceDN) }, ldap.LDAPResultUnwillingToPerform},
		{"SASL EXTERNAL", func(l *ldap.Conn) error { return l.ExternalBind() }, ldap.LDAPResultAuthMethodNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := srv.dial(t)
			err := tt.bind(l)
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("bind failed: %v", err)
				}
				return
			}
			if !ldap.IsErrorWithCode(err, tt.code) {
				t.Fatalf("bind error = %v, want code %d", err, tt.code)
			}
		})
	}
}

// A failed bind leaves the connection anonymous (RFC 4511 4.2.1), unlike
// authentik's library, which kept the previous identity.
func TestFailedBindResetsIdentity(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}})
	l := srv.dial(t)
	if err := l.Bind(aliceDN, alicePass); err != nil {
		t.Fatal(err)
	}
	who, err := l.WhoAmI(nil)
	if err != nil || who.AuthzID != "dn:"+aliceDN {
		t.Fatalf("WhoAmI = %+v, %v; want dn:%s", who, err, aliceDN)
	}
	if err := l.Bind(aliceDN, "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("bind error = %v", err)
	}
	who, err = l.WhoAmI(nil)
	if err != nil || who.AuthzID != "" {
		t.Fatalf("WhoAmI after a failed bind = %+v, %v; want anonymous", who, err)
	}
}

func TestSearchStreamsEntriesInOrder(t *testing.T) {
	var got *ldapserver.SearchRequest
	h := &testHandler{users: 25}
	h.search = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		got = req
		h2 := &testHandler{users: h.users}
		return h2.Search(ctx, c, req, w)
	}
	srv := startServer(t, &ldapserver.Server{Handler: h})
	l := srv.dial(t)
	res, err := l.Search(ldap.NewSearchRequest("ou=users,"+baseDN, ldap.ScopeSingleLevel, ldap.DerefFindingBaseObj,
		0, 0, false, "(&(objectClass=person)(|(cn=user0*)(!(mail=*@example.com))))", []string{"cn", "mail"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 25 {
		t.Fatalf("got %d entries, want 25", len(res.Entries))
	}
	e := res.Entries[7]
	if e.DN != "cn=user007,ou=users,"+baseDN {
		t.Errorf("entry 7 DN = %q", e.DN)
	}
	var names []string
	for _, a := range e.Attributes {
		names = append(names, a.Name)
	}
	if strings.Join(names, ",") != "cn,objectClass,uidNumber,mail" {
		t.Errorf("attribute order = %v", names)
	}
	if v := e.GetAttributeValues("objectClass"); len(v) != 2 || v[1] != "person" {
		t.Errorf("objectClass = %v", v)
	}
	want := ldapserver.SearchRequest{BaseDN: "ou=users," + baseDN, Scope: 1, DerefAliases: 2,
		FilterString: "(&(objectClass=person)(|(cn=user0*)(!(mail=*@example.com))))"}
	if got.BaseDN != want.BaseDN || got.Scope != want.Scope || got.DerefAliases != want.DerefAliases || got.FilterString != want.FilterString {
		t.Errorf("request = %+v", got)
	}
	if strings.Join(got.Attributes, ",") != "cn,mail" || got.Filter.Tag != ldap.FilterAnd {
		t.Errorf("attributes %v, filter tag %d", got.Attributes, got.Filter.Tag)
	}
}

func TestSearchLimits(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{users: 10}})
	l := srv.dial(t)

	t.Run("size limit", func(t *testing.T) {
		res, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 3, 0, false, "(objectClass=*)", nil, nil))
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			t.Fatalf("error = %v, want sizeLimitExceeded", err)
		}
		if res == nil || len(res.Entries) != 3 {
			t.Fatalf("result = %+v, want 3 entries", res)
		}
	})
	t.Run("types only", func(t *testing.T) {
		res, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, true, "(objectClass=*)", nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range res.Entries[0].Attributes {
			if len(a.Values) != 0 {
				t.Errorf("attribute %s has values %v with typesOnly", a.Name, a.Values)
			}
		}
	})
	t.Run("unknown critical control", func(t *testing.T) {
		_, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(objectClass=*)", nil,
			[]ldap.Control{ldap.NewControlString("1.2.3.4.5", true, "")}))
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
			t.Fatalf("error = %v, want unavailableCriticalExtension", err)
		}
	})
	t.Run("unknown non-critical control", func(t *testing.T) {
		_, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(objectClass=*)", nil,
			[]ldap.Control{ldap.NewControlString("1.2.3.4.5", false, "")}))
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestSearchTimeLimit(t *testing.T) {
	h := &testHandler{search: func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		<-ctx.Done()
		return ldapserver.Failure(ldap.LDAPResultUnavailable, "stopped")
	}}
	srv := startServer(t, &ldapserver.Server{Handler: h})
	l := srv.dial(t)
	_, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 1, false, "(objectClass=*)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultTimeLimitExceeded) {
		t.Fatalf("error = %v, want timeLimitExceeded", err)
	}
}

func TestPagedSearch(t *testing.T) {
	var pages atomic.Int32
	h := &testHandler{users: 23}
	h.search = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		if req.Paging == nil {
			return ldapserver.Failure(ldap.LDAPResultOperationsError, "no paging control")
		}
		pages.Add(1)
		return (&testHandler{users: h.users}).Search(ctx, c, req, w)
	}
	srv := startServer(t, &ldapserver.Server{Handler: h})
	l := srv.dial(t)
	res, err := l.SearchWithPaging(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(objectClass=*)", nil, nil), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 23 {
		t.Fatalf("got %d entries, want 23", len(res.Entries))
	}
	seen := map[string]bool{}
	for _, e := range res.Entries {
		if seen[e.DN] {
			t.Errorf("entry %s seen twice", e.DN)
		}
		seen[e.DN] = true
	}
	if pages.Load() != 5 {
		t.Errorf("handler saw %d pages, want 5", pages.Load())
	}
}

// A handler that ignores paging still ends the client's paging loop: the
// layer answers with an empty cookie.
func TestPagedSearchHandlerWithoutPaging(t *testing.T) {
	h := &testHandler{users: 7}
	h.search = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		for i := range h.users {
			if err := w.WriteEntry(userEntry(i)); err != nil {
				return ldapserver.Failure(ldap.LDAPResultOther, "write failed")
			}
		}
		return ldapserver.Result{}
	}
	srv := startServer(t, &ldapserver.Server{Handler: h})
	res, err := srv.dial(t).SearchWithPaging(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(cn=*)", nil, nil), 2)
	if err != nil || len(res.Entries) != 7 {
		t.Fatalf("got %v entries, err %v; want 7", len(res.Entries), err)
	}
}

func TestCompare(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}})
	l := srv.dial(t)
	for _, tt := range []struct {
		value string
		want  bool
	}{{"alice", true}, {"bob", false}} {
		got, err := l.Compare(aliceDN, "cn", tt.value)
		if err != nil || got != tt.want {
			t.Errorf("Compare(cn=%s) = %v, %v; want %v", tt.value, got, err, tt.want)
		}
	}
}

func TestWhoAmI(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}})
	l := srv.dial(t)
	who, err := l.WhoAmI(nil)
	if err != nil || who.AuthzID != "" {
		t.Fatalf("anonymous WhoAmI = %+v, %v", who, err)
	}
	if err := l.Bind(aliceDN, alicePass); err != nil {
		t.Fatal(err)
	}
	who, err = l.WhoAmI(nil)
	if err != nil || who.AuthzID != "dn:"+aliceDN {
		t.Fatalf("bound WhoAmI = %+v, %v", who, err)
	}
}

type whoAmIHandler struct{ testHandler }

func (h *whoAmIHandler) WhoAmI(ctx context.Context, c *ldapserver.Conn) (string, ldapserver.Result) {
	return "u:alice", ldapserver.Result{}
}

func TestWhoAmIHandler(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &whoAmIHandler{}})
	who, err := srv.dial(t).WhoAmI(nil)
	if err != nil || who.AuthzID != "u:alice" {
		t.Fatalf("WhoAmI = %+v, %v", who, err)
	}
}

func TestUnknownExtendedOperation(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}})
	_, err := srv.dial(t).Extended(ldap.NewExtendedRequest("1.3.6.1.4.1.4203.1.11.1", nil)) // password modify
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultProtocolError) {
		t.Fatalf("error = %v, want protocolError (RFC 4511 4.12)", err)
	}
}

func TestWritesRefused(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}})
	l := srv.dial(t)
	tests := []struct {
		name string
		op   func() error
	}{
		{"add", func() error {
			r := ldap.NewAddRequest("cn=new,"+baseDN, nil)
			r.Attribute("cn", []string{"new"})
			return l.Add(r)
		}},
		{"modify", func() error {
			r := ldap.NewModifyRequest(aliceDN, nil)
			r.Replace("mail", []string{"x@example.org"})
			return l.Modify(r)
		}},
		{"delete", func() error { return l.Del(ldap.NewDelRequest(aliceDN, nil)) }},
		{"modify DN", func() error { return l.ModifyDN(ldap.NewModifyDNRequest(aliceDN, "cn=alicia", true, "")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
				t.Fatalf("error = %v, want unwillingToPerform (53)", err)
			}
		})
	}
	// The connection is still usable.
	if err := l.Bind(aliceDN, alicePass); err != nil {
		t.Fatal(err)
	}
}

func TestStartTLS(t *testing.T) {
	cert, pool := selfSigned(t, "ldap.example.org")
	var sni atomic.Value
	h := &testHandler{}
	h.bind = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.BindRequest) ldapserver.Result {
		if st := c.TLS(); st != nil {
			sni.Store(st.ServerName)
		}
		return (&testHandler{}).Bind(ctx, c, req)
	}
	srv := startServer(t, &ldapserver.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	l := srv.dial(t)
	if err := l.StartTLS(&tls.Config{RootCAs: pool, ServerName: "ldap.example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Bind(aliceDN, alicePass); err != nil {
		t.Fatal(err)
	}
	if got, _ := sni.Load().(string); got != "ldap.example.org" {
		t.Errorf("SNI seen by the handler = %q", got)
	}
	res, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(cn=*)", nil, nil))
	if err != nil || len(res.Entries) != 0 {
		t.Fatalf("search over TLS: %v, %v", res, err)
	}
}

func TestStartTLSUnavailable(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &testHandler{}})
	l := srv.dial(t)
	err := l.StartTLS(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // refused before any handshake
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultProtocolError) {
		t.Fatalf("error = %v, want protocolError (RFC 4511 4.14.2)", err)
	}
}

// LDAPS: the host wraps the listener; handlers see the TLS state and SNI
// from the first operation.
func TestTLSListener(t *testing.T) {
	cert, pool := selfSigned(t, "ldaps.example.org")
	var sni atomic.Value
	h := &testHandler{}
	h.bind = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.BindRequest) ldapserver.Result {
		if st := c.TLS(); st != nil {
			sni.Store(st.ServerName)
		}
		return ldapserver.Result{}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&ldapserver.Server{Handler: h}).Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	l, err := ldap.DialURL("ldaps://"+ln.Addr().String(), ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "ldaps.example.org"}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind(aliceDN, alicePass); err != nil {
		t.Fatal(err)
	}
	if got, _ := sni.Load().(string); got != "ldaps.example.org" {
		t.Errorf("SNI = %q", got)
	}
}

// Several operations of one connection run at once: four searches wait
// for each other inside the handler, which only works if none waits for
// another to finish.
func TestConcurrentOperationsOnOneConnection(t *testing.T) {
	const n = 4
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	h := &testHandler{search: func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(20 * time.Second):
			return ldapserver.Failure(ldap.LDAPResultBusy, "operations were serialised")
		}
		if err := w.WriteEntry(userEntry(0)); err != nil {
			return ldapserver.Failure(ldap.LDAPResultOther, "%v", err)
		}
		return ldapserver.Result{}
	}}
	srv := startServer(t, &ldapserver.Server{Handler: h})
	l := srv.dial(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(cn=*)", nil, nil))
			if err == nil && len(res.Entries) != 1 {
				err = errors.New("wrong entry count")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// A panicking handler answers operationsError, never success, and the
// server (and the connection) live on. authentik's outpost answered
// success when its bind handler crashed.
func TestHandlerPanic(t *testing.T) {
	h := &testHandler{}
	h.bind = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.BindRequest) ldapserver.Result {
		if req.DN == "cn=crash" {
			panic("bind exploded")
		}
		return (&testHandler{}).Bind(ctx, c, req)
	}
	h.search = func(ctx context.Context, c *ldapserver.Conn, req *ldapserver.SearchRequest, w ldapserver.SearchWriter) ldapserver.Result {
		panic("search exploded")
	}
	srv := startServer(t, &ldapserver.Server{Handler: h})
	l := srv.dial(t)
	if err := l.Bind("cn=crash", "pw-must-not-leak"); !ldap.IsErrorWithCode(err, ldap.LDAPResultOperationsError) {
		t.Fatalf("panicking bind: %v, want operationsError", err)
	}
	if who, err := l.WhoAmI(nil); err != nil || who.AuthzID != "" {
		t.Fatalf("after a panicking bind WhoAmI = %+v, %v; want anonymous", who, err)
	}
	_, err := l.Search(ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(cn=*)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultOperationsError) {
		t.Fatalf("panicking search: %v, want operationsError", err)
	}
	if err := l.Bind(aliceDN, alicePass); err != nil {
		t.Fatalf("connection unusable after panics: %v", err)
	}
	logs := srv.logs.String()
	if !strings.Contains(logs, "search exploded") || !strings.Contains(logs, "bind exploded") {
		t.Error("the panics were not logged")
	}
	if strings.Contains(logs, "pw-must-not-leak") {
		t.Error("a bind password reached the log")
	}
}

// BenchmarkSearchRoundTrip measures one search of ten entries over
// loopback with go-ldap as the client.
func BenchmarkSearchRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&ldapserver.Server{Handler: &testHandler{users: 10}}).Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()
	l, err := ldap.DialURL("ldap://" + ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	req := ldap.NewSearchRequest(baseDN, 2, 0, 0, 0, false, "(objectClass=person)", nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		res, err := l.Search(req)
		if err != nil || len(res.Entries) != 10 {
			b.Fatalf("%v entries, %v", len(res.Entries), err)
		}
	}
}

func TestServeErrors(t *testing.T) {
	t.Run("no handler", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := (&ldapserver.Server{}).Serve(context.Background(), ln); err == nil {
			t.Fatal("Serve without a Handler succeeded")
		}
	})
	t.Run("listener fails", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- (&ldapserver.Server{Handler: &testHandler{}}).Serve(context.Background(), ln) }()
		// A connection is open when the listener goes away; it is
		// drained and closed too, and Serve reports the listener's error.
		l, err := ldap.DialURL("ldap://" + ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.Bind(aliceDN, alicePass); err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if err := <-done; err == nil {
			t.Fatal("Serve returned nil after its listener failed")
		}
	})
}

type refusingHandler struct{ testHandler }

func (*refusingHandler) ConnOpened(c *ldapserver.Conn) error {
	return errors.New("too many connections")
}
func (*refusingHandler) ConnClosed(c *ldapserver.Conn) { panic("ConnClosed for a refused connection") }

func TestConnOpenedRefuses(t *testing.T) {
	srv := startServer(t, &ldapserver.Server{Handler: &refusingHandler{}})
	nc := srv.raw(t)
	if got := expectClosed(t, nc); len(got) != 0 {
		t.Errorf("refused connection got %x", got)
	}
	if strings.Contains(srv.logs.String(), "ConnClosed") {
		t.Error("ConnClosed ran for a refused connection")
	}
}
