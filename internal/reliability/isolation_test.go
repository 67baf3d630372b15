package reliability

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
	"github.com/akoutpost/akoutpost/proxy/session"
)

// TestBrokenProviderIsolated breaks one provider's configuration at a
// time while another provider of the same outpost gets a change: the
// broken one is reported in the logs and keeps its last good state (or
// answers its own error), the healthy one applies its change and serves.
func TestBrokenProviderIsolated(t *testing.T) {
	t.Run("bad regex", func(t *testing.T) {
		s := startStack(t, stackOptions{})
		jar := s.login(t, "http://app.test/before", "alice", alicePassword)
		if err := s.core.UpdateProvider("app", map[string]any{"skip_path_regex": "(unclosed"}); err != nil {
			t.Fatal(err)
		}
		if err := s.core.UpdateProvider("fwd", map[string]any{"skip_path_regex": "^/fwd-public"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "healthy provider applies its change", func() error {
			if code, err := s.forwardAuth(nil, "/fwd-public/x"); err != nil || code != 200 {
				return fmt.Errorf("%d %v", code, err)
			}
			return nil
		})
		if n := s.count("skip_path_regex"); n == 0 {
			t.Error("the broken regex is not reported in the logs")
		}
		if code, _, err := s.get(jar, "http://app.test/still"); err != nil || code != 200 {
			t.Fatalf("the broken provider's existing session: %d %v", code, err)
		}
	})
	t.Run("unreachable internal host", func(t *testing.T) {
		s := startStack(t, stackOptions{})
		jar := s.login(t, "http://app.test/before", "alice", alicePassword)
		fj := s.forwardLogin(t, "alice", alicePassword)
		dead := listen(t)
		deadAddr := dead.Addr().String()
		dead.Close()
		if err := s.core.UpdateProvider("app", map[string]any{"internal_host": "http://" + deadAddr}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "app proxies to the dead host", func() error {
			if code, _, err := s.get(jar, "http://app.test/x"); err != nil || code != http.StatusBadGateway {
				return fmt.Errorf("%d %v", code, err)
			}
			return nil
		})
		if code, err := s.forwardAuth(fj, "/y"); err != nil || code != 200 {
			t.Fatalf("forward auth next to a provider with a dead upstream: %d %v", code, err)
		}
		if s.count(deadAddr) == 0 {
			t.Error("the unreachable upstream is not reported in the logs")
		}
	})
	t.Run("bad base DN and certificate", func(t *testing.T) {
		s := startStack(t, stackOptions{})
		// The certificate endpoints fail, and the cached provider gets a
		// base DN that is not a DN and a certificate it cannot fetch.
		s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/crypto/", Status: 500})
		if err := s.core.UpdateProvider("cached", map[string]any{"base_dn": "not a dn,,="}); err != nil {
			t.Fatal(err)
		}
		if err := s.core.UpdateProvider("app", map[string]any{"certificate": "rel certificate"}); err != nil {
			t.Fatal(err)
		}
		if err := s.core.UpdateUser("binder", map[string]any{"email": "binder-after@example.com"}); err != nil {
			t.Fatal(err)
		}
		s.core.TriggerUpdate("rel-ldap")
		eventually(t, "healthy LDAP provider serves", func() error {
			l, err := s.ldap()
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.Bind(binderDirectDN, binderPassword); err != nil {
				return err
			}
			_, err = s.search(l, "dc=direct,dc=test", "(mail=binder-after@example.com)")
			return err
		})
		if s.count("not a dn") == 0 {
			t.Error("the broken base DN is not reported in the logs")
		}
		if code, _, err := s.get(nil, "http://app.test/x"); err != nil || code != http.StatusFound {
			t.Fatalf("proxy app whose certificate cannot be fetched: %d %v", code, err)
		}
	})
}

// TestTokenRevokedWhileRunning: the core starts refusing the outpost's
// token (403 on the API and the websocket). The outpost reports a
// permanent error and does not hammer the core; sessions it already holds
// keep serving.
func TestTokenRevokedWhileRunning(t *testing.T) {
	s := startStack(t, stackOptions{})
	jar := s.login(t, "http://app.test/before", "alice", alicePassword)
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/outposts/", Status: http.StatusForbidden})
	s.core.Fault(outposttest.Fault{PathPrefix: "/ws/", Status: http.StatusForbidden})
	s.core.ResetRequests()
	s.core.DropWebsockets()
	s.core.TriggerUpdate("rel-proxy")
	s.proxyOut.Refresh()
	s.ldapOut.Refresh()
	eventually(t, "the refusal is logged", func() error {
		if s.count("403") == 0 {
			return errors.New("no 403 in the logs")
		}
		return nil
	})
	// A retry storm would show as hundreds of requests in this window.
	time.Sleep(3 * time.Second)
	api, ws := s.core.RequestCount("/api/v3/outposts/"), s.core.RequestCount("/ws/")
	t.Logf("in the 3s after revocation: %d API requests, %d websocket dials from 2 outposts", api, ws)
	if api > 20 || ws > 20 {
		t.Errorf("retry storm: %d API requests and %d websocket dials within 3s of revocation", api, ws)
	}
	if code, _, err := s.get(jar, "http://app.test/after"); err != nil || code != 200 {
		t.Fatalf("existing session after revocation: %d %v", code, err)
	}
}

// redisServer is a redis-server this test starts, stops and restarts on
// the same port, with an append-only file so data survives the restart.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	eventually(r.t, "redis up", func() error {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)))
		if err == nil {
			c.Close()
		}
		return err
	})
}

func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// TestSessionStoreRestart stops Redis under a running proxy outpost: a
// request with a valid session fails closed with a clear 503 (never reaches
// the upstream, is not sent to log in again, keeps its cookie) while the
// store is down, and the same session works
// again once Redis is back, without any restart of the outpost.
func TestSessionStoreRestart(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testservers.Unavailable(t, "no redis-server")
	}
	ln := listen(t)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	rs := &redisServer{t: t, bin: bin, port: port, dir: t.TempDir()}
	rs.start()
	t.Cleanup(rs.stop)
	rc := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 1})
	t.Cleanup(func() { rc.Close() })
	store, err := session.NewRedis(rc, "reliability:", nil)
	if err != nil {
		t.Fatal(err)
	}
	storeRestart(t, "Redis", store, rs.stop, rs.start)
}

// storeRestart logs in through a proxy outpost using store, calls stop,
// checks that requests with the session get 503 (and never the upstream),
// then calls start and waits for the same session to work again.
func storeRestart(t *testing.T, name string, store session.Store, stop, start func()) {
	t.Helper()
	s := startStack(t, stackOptions{store: store})
	jar := s.login(t, "http://app.test/before", "alice", alicePassword)

	stop()
	statuses := map[int]int{}
	for i := range 5 {
		code, body, err := s.get(jar, fmt.Sprintf("http://app.test/down/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if code == 200 || strings.Contains(body, `"user"`) {
			t.Fatalf("store down: request reached the upstream: %d %.200s", code, body)
		}
		statuses[code]++
	}
	t.Logf("with %s down, requests with a valid session got %v", name, statuses)
	if statuses[http.StatusServiceUnavailable] != 5 {
		t.Errorf("with %s down, requests with a valid session got %v, want 503 each time", name, statuses)
	}
	if s.count("loading session") == 0 {
		t.Error("the store failure is not logged")
	}
	start()
	eventually(t, "session works again after "+name+" restarts", func() error {
		code, body, err := s.get(jar, "http://app.test/back")
		if err != nil || code != 200 || !strings.Contains(body, `"user":"alice"`) {
			return fmt.Errorf("%d %v", code, err)
		}
		return nil
	})
}
