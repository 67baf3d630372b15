package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// retryDelays returns the retry_in of every logged failed attempt to
// fetch the configuration, in order, for one of the stack's outposts.
func (s *stack) retryDelays(t *testing.T, outpostName string) []time.Duration {
	t.Helper()
	var ds []time.Duration
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if !strings.Contains(line, "fetching outpost configuration failed, retrying") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if rec["test_outpost"] != outpostName {
			continue
		}
		d, err := time.ParseDuration(fmt.Sprint(rec["retry_in"]))
		if err != nil {
			t.Fatalf("retry_in of %s: %v", line, err)
		}
		ds = append(ds, d)
	}
	return ds
}

// TestCoreUnreachableAtStart starts a proxy outpost and an LDAP outpost
// while the core is down. Both retry with a growing delay (the delays they
// report, not measured time, are checked) and do not accept before their
// first configuration: a proxied request and an LDAP bind made while the
// core is down wait in the listeners' backlog. Once the core answers, both
// outposts are configured without a restart, the waiting request and bind
// are answered (redirect to login, bind success), and a login, a session,
// cached and direct binds and searches work.
func TestCoreUnreachableAtStart(t *testing.T) {
	s := startStack(t, stackOptions{coreDown: true})
	for _, name := range []string{"proxy", "ldap"} {
		eventually(t, name+" outpost retries twice", func() error {
			if n := len(s.retryDelays(t, name)); n < 2 {
				return fmt.Errorf("%d failed attempts logged", n)
			}
			return nil
		})
	}
	if s.proxyOut.Connected() || s.ldapOut.Connected() {
		t.Fatal("an outpost reports a connection to a core that is down")
	}
	// Until its first configuration an outpost does not accept on its
	// listeners: a client that connects now waits in the backlog, and is
	// answered once the core is back.
	dialed := make(chan struct{}, 1)
	pc := s.client(nil, false)
	defer pc.CloseIdleConnections()
	pc.Timeout = 3 * time.Minute
	tr := pc.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := dial(ctx, network, a)
		select {
		case dialed <- struct{}{}:
		default:
		}
		return c, err
	}
	proxyAnswer := make(chan error, 1)
	go func() {
		resp, err := pc.Get("http://app.test/early")
		if err != nil {
			proxyAnswer <- err
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			err = fmt.Errorf("early request answered %s, want a redirect to login", resp.Status)
		}
		proxyAnswer <- err
	}()
	<-dialed
	early, err := s.ldap()
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	early.SetTimeout(3 * time.Minute)
	bindAnswer := make(chan error, 1)
	go func() { bindAnswer <- early.Bind(binderDirectDN, binderPassword) }()

	t.Logf("starting the core after %d and %d failed attempts", len(s.retryDelays(t, "proxy")), len(s.retryDelays(t, "ldap")))
	if err := s.core.Start(); err != nil {
		t.Fatal(err)
	}
	// The next attempt comes after the delay last logged (a few seconds
	// here, plus the client's own retries within an attempt).
	for what, ch := range map[string]chan error{"proxy request": proxyAnswer, "LDAP bind": bindAnswer} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s made while the core was down: %v", what, err)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s made while the core was down: no answer 3 minutes after the core started", what)
		}
	}
	s.waitReady(t)
	for _, name := range []string{"proxy", "ldap"} {
		ds := s.retryDelays(t, name)
		t.Logf("%s outpost: %d failed attempts while the core was down, delays %v", name, len(ds), ds)
		for i := 1; i < len(ds); i++ {
			if ds[i] < ds[i-1] {
				t.Errorf("%s outpost: delay %d (%v) shorter than the one before (%v): no backoff", name, i, ds[i], ds[i-1])
			}
		}
		if ds[len(ds)-1] <= ds[0] {
			t.Errorf("%s outpost: delays %v do not grow", name, ds)
		}
	}
	jar := s.login(t, "http://app.test/after", "alice", alicePassword)
	if code, body, err := s.get(jar, "http://app.test/again"); err != nil || code != 200 || !strings.Contains(body, `"user":"alice"`) {
		t.Fatalf("proxy session after the late core: %d %v %.200s", code, err, body)
	}
	l, err := s.ldap()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind(binderDirectDN, binderPassword); err != nil {
		t.Fatalf("direct bind after the late core: %v", err)
	}
	if _, err := s.search(l, "dc=direct,dc=test", "(cn=alice)"); err != nil {
		t.Fatalf("direct search after the late core: %v", err)
	}
}
