package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
	"github.com/akoutpost/akoutpost/proxy"
	"github.com/akoutpost/akoutpost/proxy/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Secrets of testdata/reliability.yaml.
const (
	alicePassword  = "Alice-Secret-Pw-7f3a91"
	binderPassword = "Binder-Secret-Pw-c44e02"
	binderCachedDN = "cn=binder,ou=users,dc=cached,dc=test"
	binderDirectDN = "cn=binder,ou=users,dc=direct,dc=test"
	aliceCachedDN  = "cn=alice,ou=users,dc=cached,dc=test"
	aliceDirectDN  = "cn=alice,ou=users,dc=direct,dc=test"
)

// logBuffer collects JSON log lines from several goroutines.
type logBuffer struct {
	syncbuf.Buffer
	// keep, when set, selects the lines kept (the JSON handler writes one
	// record per Write); the soak keeps only warnings and errors so the
	// buffer does not count as heap growth.
	keep func(line []byte) bool
}

func (b *logBuffer) Write(p []byte) (int, error) {
	if b.keep != nil && !b.keep(p) {
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// stack is a test core, an upstream, a proxy outpost and an LDAP outpost,
// all in this process on loopback.
type stack struct {
	core      *outposttest.Server
	logs      *logBuffer
	proxyAddr string
	ldapAddr  string
	upstream  *http.Server
	proxyOut  *outpost.Outpost
	ldapOut   *outpost.Outpost
}

type stackOptions struct {
	store    session.Store             // nil: memory
	upstream http.Handler              // nil: echo
	edit     func(*outposttest.Server) // before the outposts start
	// keepLog selects the log lines kept; nil keeps all.
	keepLog func(line []byte) bool
	// apiTimeout bounds each request to the core (zero: the client's 30s).
	apiTimeout time.Duration
	// coreDown stops the core before the outposts start; startStack then
	// returns without waiting for them to be configured.
	coreDown bool
}

// echo answers with the request URI and the identity headers it saw.
func echo(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(map[string]any{"uri": r.RequestURI, "user": r.Header.Get("X-Authentik-Username"),
		"jwt": r.Header.Get("X-Authentik-Jwt")})
}

func startStack(t testing.TB, opt stackOptions) *stack {
	t.Helper()
	s := &stack{logs: &logBuffer{keep: opt.keepLog}}
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := opt.upstream
	if h == nil {
		h = http.HandlerFunc(echo)
	}
	s.upstream = &http.Server{Handler: h}
	go s.upstream.Serve(up)
	t.Cleanup(func() { s.upstream.Close() })
	os.Setenv("AKOUTPOST_RELIABILITY_UPSTREAM", "http://"+up.Addr().String())
	defer os.Unsetenv("AKOUTPOST_RELIABILITY_UPSTREAM")
	bp, err := os.ReadFile("testdata/reliability.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.core, err = outposttest.NewServer(bp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.core.Close)
	if opt.edit != nil {
		opt.edit(s.core)
	}
	level := new(slog.LevelVar)
	level.Set(outpost.LevelTrace)
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: level}))

	pln := listen(t)
	pp := proxy.Factory(proxy.Config{HTTPListener: pln, StrictHost: true, SessionStore: opt.store})
	s.proxyAddr = pln.Addr().String()
	lln := listen(t)
	lp := ldap.Factory(ldap.Config{LDAPListener: lln, Version: "reliability"})
	s.ldapAddr = lln.Addr().String()
	if opt.coreDown {
		s.core.Stop()
	}
	s.proxyOut = s.run(t, "rel-proxy", "proxy", pp, log.With("test_outpost", "proxy"), opt.apiTimeout)
	s.ldapOut = s.run(t, "rel-ldap", "ldap", lp, log.With("test_outpost", "ldap"), opt.apiTimeout)
	if !opt.coreDown {
		s.waitReady(t)
	}
	return s
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func (s *stack) run(t testing.TB, name, typ string, f outpost.Factory, log *slog.Logger, timeout time.Duration) *outpost.Outpost {
	t.Helper()
	var hc *http.Client
	if timeout > 0 {
		hc = &http.Client{Timeout: timeout}
	}
	level := new(slog.LevelVar)
	level.Set(outpost.LevelTrace)
	o, err := outpost.New(outpost.Config{CoreURL: s.core.URL(), Token: s.core.Token(name),
		Providers: map[string]outpost.Factory{typ: f}, Registerer: prometheus.NewRegistry(), UpdateJitter: -1,
		Logger: log, LogLevel: level, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("outpost %s Run: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("outpost %s Run did not return within 30s of cancel", name)
		}
	})
	return o
}

// eventually polls f every 25ms until it returns nil, failing after a
// generous bound.
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	eventuallyWithin(t, what, 20*time.Second, f)
}

func eventuallyWithin(t testing.TB, what string, bound time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, bound, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (s *stack) waitReady(t testing.TB) {
	t.Helper()
	c := s.client(nil, false)
	defer c.CloseIdleConnections()
	eventually(t, "proxy configured", func() error {
		resp, err := c.Get("http://app.test/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			return errors.New(resp.Status)
		}
		return nil
	})
	eventually(t, "ldap configured", func() error {
		l, err := s.ldap()
		if err != nil {
			return err
		}
		defer l.Close()
		if err := l.Bind(binderCachedDN, binderPassword); err != nil {
			return err
		}
		_, err = s.search(l, "dc=cached,dc=test", "(cn=alice)")
		return err
	})
}

// client reaches every ".test" host through the proxy listener.
func (s *stack) client(jar http.CookieJar, follow bool) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if h, _, _ := net.SplitHostPort(a); strings.HasSuffix(h, ".test") {
			a = s.proxyAddr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}}
	c := &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

func (s *stack) ldap() (*goldap.Conn, error) {
	l, err := goldap.DialURL("ldap://" + s.ldapAddr)
	if err != nil {
		return nil, err
	}
	l.SetTimeout(30 * time.Second)
	return l, nil
}

// search returns the DNs found under base.
func (s *stack) search(l *goldap.Conn, base, filter string) ([]string, error) {
	res, err := l.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		0, 0, false, filter, []string{"cn", "mail"}, nil))
	if err != nil {
		return nil, err
	}
	var dns []string
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	if len(dns) == 0 {
		return nil, errors.New("search found nothing under " + base)
	}
	return dns, nil
}

// login runs a browser login through the core's form and returns the jar
// holding the outpost's session cookie.
func (s *stack) login(t testing.TB, target, user, password string) http.CookieJar {
	t.Helper()
	return s.loginWith(t, nil, target, user, password)
}

func (s *stack) loginWith(t testing.TB, cookies []*http.Cookie, target, user, password string) http.CookieJar {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	if cookies != nil {
		u, _ := url.Parse("http://fwd.test/")
		jar.SetCookies(u, cookies)
	}
	c := s.client(jar, true)
	defer c.CloseIdleConnections()
	resp, err := c.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `name="password"`) {
		t.Fatalf("expected the core's login page, got %d: %.300s", resp.StatusCode, page)
	}
	form := url.Values{"username": {user}, "password": {password}, "next": {resp.Request.URL.Query().Get("next")}}
	resp, err = c.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cookies != nil {
		// The login ends on the page only the reverse proxy would serve.
		if resp.Request.URL.Host != "fwd.test" {
			t.Fatalf("forward login ended at %s", resp.Request.URL)
		}
		return jar
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"user":"`+user+`"`) {
		t.Fatalf("login to %s: %d %.300s", target, resp.StatusCode, body)
	}
	return jar
}

// forwardLogin logs in to fwd.test the way a browser behind Traefik does:
// the check's redirect and cookies, then the core's form.
func (s *stack) forwardLogin(t testing.TB, user, password string) http.CookieJar {
	t.Helper()
	c := s.client(nil, false)
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "http://outpost.test/outpost.goauthentik.io/auth/traefik", nil)
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("X-Forwarded-Host", "fwd.test")
	req.Header.Set("X-Forwarded-Uri", "/page")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("unauthenticated forward check: %d", resp.StatusCode)
	}
	jar := s.loginWith(t, resp.Cookies(), resp.Header.Get("Location"), user, password)
	return jar
}

// get fetches target with jar and no redirects followed.
func (s *stack) get(jar http.CookieJar, target string) (int, string, error) {
	c := s.client(jar, false)
	defer c.CloseIdleConnections()
	resp, err := c.Get(target)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// forwardAuth asks the traefik endpoint about fwd.test with jar's cookies
// for fwd.test.
func (s *stack) forwardAuth(jar http.CookieJar, uri string) (int, error) {
	c := s.client(nil, false)
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "http://outpost.test/outpost.goauthentik.io/auth/traefik", nil)
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("X-Forwarded-Host", "fwd.test")
	req.Header.Set("X-Forwarded-Uri", uri)
	if jar != nil {
		u, _ := url.Parse("http://fwd.test/")
		for _, ck := range jar.Cookies(u) {
			req.AddCookie(ck)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
