package reliability

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// count returns how many log lines contain every one of parts.
func (s *stack) count(parts ...string) int {
	n := 0
	for _, line := range strings.Split(s.logs.String(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			n++
		}
	}
	return n
}

func ldapResult(err error) uint16 {
	var le *goldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0
}

// startCallback runs a new browser login up to the moment the core sends
// the browser back to the outpost's callback, and returns the callback URL
// and the jar holding the state cookie.
func (s *stack) startCallback(t *testing.T) (string, http.CookieJar) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := s.client(jar, true)
	c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.Contains(req.URL.Path, "/outpost.goauthentik.io/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://app.test/new")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	form := map[string][]string{"username": {"alice"}, "password": {alicePassword}, "next": {resp.Request.URL.Query().Get("next")}}
	resp, err = c.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/outpost.goauthentik.io/callback") {
		t.Fatalf("login did not reach the callback: %d %q", resp.StatusCode, loc)
	}
	return loc, jar
}

// TestCoreDownWhileRunning stops the core under running outposts. What
// was established keeps working (proxy sessions, forward-auth sessions,
// cached LDAP binds and searches); what needs the core fails closed
// (direct binds get an LDAP error, never success; a new login's callback
// shows the error page). When the core returns the websockets reconnect
// and the next update is applied without restarting anything.
func TestCoreDownWhileRunning(t *testing.T) {
	s := startStack(t, stackOptions{})
	jar := s.login(t, "http://app.test/before", "alice", alicePassword)
	fj := s.forwardLogin(t, "alice", alicePassword)
	cached, err := s.ldap()
	if err != nil {
		t.Fatal(err)
	}
	defer cached.Close()
	if err := cached.Bind(binderCachedDN, binderPassword); err != nil {
		t.Fatalf("cached bind with the core up: %v", err)
	}
	callback, cbJar := s.startCallback(t)
	wsBefore := len(s.core.Hellos("rel-proxy")) + len(s.core.Hellos("rel-ldap"))

	s.core.Stop()
	eventually(t, "outposts notice the core is gone", func() error {
		if s.proxyOut.Connected() || s.ldapOut.Connected() {
			return errors.New("still connected")
		}
		return nil
	})
	for i := range 5 {
		if code, body, err := s.get(jar, fmt.Sprintf("http://app.test/during/%d", i)); err != nil || code != 200 || !strings.Contains(body, `"user":"alice"`) {
			t.Fatalf("proxy session with the core down: %d %v %.200s", code, err, body)
		}
		if code, err := s.forwardAuth(fj, "/during"); err != nil || code != 200 {
			t.Fatalf("forward auth session with the core down: %d %v", code, err)
		}
	}
	if _, err := s.search(cached, "dc=cached,dc=test", "(cn=alice)"); err != nil {
		t.Fatalf("cached search with the core down: %v", err)
	}
	// A fresh connection's bind in cached mode is answered from the
	// bind cache.
	again, err := s.ldap()
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Bind(binderCachedDN, binderPassword); err != nil {
		t.Errorf("cached bind on a new connection with the core down: %v", err)
	} else if _, err := s.search(again, "dc=cached,dc=test", "(cn=binder)"); err != nil {
		t.Errorf("cached search after a cached bind with the core down: %v", err)
	}
	// A wrong password must not be let in by the cache.
	if err := again.Bind(binderCachedDN, "not-the-password"); err == nil {
		t.Error("cached bind accepted a wrong password with the core down")
	}
	again.Close()
	direct, err := s.ldap()
	if err != nil {
		t.Fatal(err)
	}
	err = direct.Bind(binderDirectDN, binderPassword)
	direct.Close()
	if err == nil {
		t.Fatal("direct bind succeeded with the core down")
	}
	if code := ldapResult(err); code == 0 || code == goldap.LDAPResultSuccess {
		t.Fatalf("direct bind with the core down: %v, want an LDAP result code", err)
	}
	t.Logf("direct bind with the core down: %v", err)
	c := s.client(cbJar, false)
	resp, err := c.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
	if resp.StatusCode < 500 {
		t.Fatalf("new login's callback with the core down: %d, want the error page (5xx)", resp.StatusCode)
	}
	t.Logf("new login's callback with the core down: %d", resp.StatusCode)

	if err := s.core.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "websockets reconnect", func() error {
		if !s.proxyOut.Connected() || !s.ldapOut.Connected() {
			return errors.New("not connected")
		}
		if n := len(s.core.Hellos("rel-proxy")) + len(s.core.Hellos("rel-ldap")); n <= wsBefore {
			return fmt.Errorf("%d hellos, had %d", n, wsBefore)
		}
		return nil
	})
	// The next update applies: a skip rule lets /public in without login,
	// and a directory change shows in cached searches.
	if err := s.core.UpdateProvider("app", map[string]any{"skip_path_regex": "^/public"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "update after reconnect (proxy)", func() error {
		code, _, err := s.get(nil, "http://app.test/public/x")
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		return nil
	})
	if err := s.core.UpdateUser("alice", map[string]any{"email": "alice-after@example.com"}); err != nil {
		t.Fatal(err)
	}
	s.core.TriggerUpdate("rel-ldap")
	eventually(t, "update after reconnect (ldap)", func() error {
		res, err := cached.Search(goldap.NewSearchRequest("dc=cached,dc=test", goldap.ScopeWholeSubtree, 0, 0, 0, false,
			"(mail=alice-after@example.com)", []string{"mail"}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) != 1 {
			return fmt.Errorf("%d entries", len(res.Entries))
		}
		return nil
	})
	direct, err = s.ldap()
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if err := direct.Bind(binderDirectDN, binderPassword); err != nil {
		t.Fatalf("direct bind after the core returned: %v", err)
	}
}

// TestCoreMisbehavingKeepsLastGood: the core answers the configuration
// endpoints with 500s, slowly, with malformed JSON or by dropping the
// connection. Each refresh ends (bounded by the client's timeout and
// retries), is logged, and the last good configuration keeps serving;
// once the core behaves, the pending change is applied.
func TestCoreMisbehavingKeepsLastGood(t *testing.T) {
	cases := []struct {
		name  string
		fault outposttest.Fault
	}{
		{"500", outposttest.Fault{PathPrefix: "/api/v3/outposts/", Status: 500}},
		{"slow", outposttest.Fault{PathPrefix: "/api/v3/outposts/", Delay: 10 * time.Second}},
		{"malformed", outposttest.Fault{PathPrefix: "/api/v3/outposts/", Malformed: true}},
		{"drop", outposttest.Fault{PathPrefix: "/api/v3/outposts/", Drop: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startStack(t, stackOptions{apiTimeout: time.Second})
			jar := s.login(t, "http://app.test/before", "alice", alicePassword)
			l, err := s.ldap()
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.Bind(binderCachedDN, binderPassword); err != nil {
				t.Fatal(err)
			}
			failedBefore := s.count("refresh failed")
			s.core.Fault(tc.fault)
			if err := s.core.UpdateProvider("app", map[string]any{"skip_path_regex": "^/public"}); err != nil {
				t.Fatal(err)
			}
			s.core.TriggerUpdate("rel-ldap")
			// Both outposts report the failed refresh...
			eventually(t, "refresh failure logged", func() error {
				p, l := s.count("refresh failed", `"test_outpost":"proxy"`), s.count("refresh failed", `"test_outpost":"ldap"`)
				if p+l <= failedBefore || p == 0 || l == 0 {
					return fmt.Errorf("proxy %d ldap %d failures logged", p, l)
				}
				return nil
			})
			// ... and keep serving the last good configuration.
			if code, _, err := s.get(nil, "http://app.test/public/x"); err != nil || code != http.StatusFound {
				t.Fatalf("unauthenticated /public during the fault: %d %v (the new config must not be half-applied)", code, err)
			}
			if code, _, err := s.get(jar, "http://app.test/during"); err != nil || code != 200 {
				t.Fatalf("session during the fault: %d %v", code, err)
			}
			if _, err := s.search(l, "dc=cached,dc=test", "(cn=alice)"); err != nil {
				t.Fatalf("cached search during the fault: %v", err)
			}
			s.core.ClearFaults()
			s.core.TriggerUpdate("rel-proxy")
			eventually(t, "update once the core behaves", func() error {
				code, _, err := s.get(nil, "http://app.test/public/x")
				if err != nil || code != 200 {
					return fmt.Errorf("%d %v", code, err)
				}
				return nil
			})
		})
	}
}
