package proxy_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// TestSessionStoreScopeProcesses runs `akoutpost run` processes on one
// host (one TMPDIR) with the default session store. The default used to
// be one directory for every outpost on the host, with one index of
// sessions by user: signing out at one outpost ended the same user's
// sessions at every other outpost process, even one of another core. Now
// the default is per outpost (core URL and outpost primary key), and
// outposts share a store only when the operator names the same one for
// them, as replicas of one outpost do.
func TestSessionStoreScopeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and starts outpost processes")
	}
	bin := buildCommand(t)
	startEchoUpstream(t)
	newCore := func(t *testing.T) *outposttest.Server { return startBlueprintCore(t, "twooutposts.yaml") }

	t.Run("two outposts of one core", func(t *testing.T) {
		tmp := t.TempDir()
		core := newCore(t)
		a := startOutpostProcess(t, bin, core, "app-outpost", "app.test", tmp, "")
		b := startOutpostProcess(t, bin, core, "other-outpost", "other.test", tmp, "")
		ca := loginAt(t, a, "app.test")
		cb := loginAt(t, b, "other.test")
		signOutAt(t, a, "app.test", ca)
		if s := statusAt(t, a, "app.test", ca); s != http.StatusFound {
			t.Fatalf("outpost A after its sign-out: status %d, want 302 to the login", s)
		}
		if s := statusAt(t, b, "other.test", cb); s != http.StatusOK {
			t.Fatalf("outpost B after alice signed out at outpost A: status %d, want 200", s)
		}
		if n := sessionDirs(t, tmp); n != 2 {
			t.Errorf("%d default session directories for two outposts, want 2", n)
		}
	})

	t.Run("one outpost of two cores", func(t *testing.T) {
		// The cores load the same blueprint, so the outposts have the
		// same primary key and alice the same subject at both; only the
		// core's URL tells the two apart.
		tmp := t.TempDir()
		core1, core2 := newCore(t), newCore(t)
		if pk1, pk2 := outpostPK(t, core1, "app-outpost"), outpostPK(t, core2, "app-outpost"); pk1 != pk2 {
			t.Fatalf("the cores gave the outpost primary keys %s and %s; the test needs them equal", pk1, pk2)
		}
		a := startOutpostProcess(t, bin, core1, "app-outpost", "app.test", tmp, "")
		b := startOutpostProcess(t, bin, core2, "app-outpost", "app.test", tmp, "")
		ca := loginAt(t, a, "app.test")
		cb := loginAt(t, b, "app.test")
		signOutAt(t, a, "app.test", ca)
		if s := statusAt(t, a, "app.test", ca); s != http.StatusFound {
			t.Fatalf("outpost of core 1 after its sign-out: status %d, want 302", s)
		}
		if s := statusAt(t, b, "app.test", cb); s != http.StatusOK {
			t.Fatalf("outpost of core 2 after alice signed out at core 1's: status %d, want 200", s)
		}
		if n := sessionDirs(t, tmp); n != 2 {
			t.Errorf("%d default session directories for two cores, want 2", n)
		}
	})

	// Replicas sharing a file store remember the sessions they checked
	// and look at their files again within session.FileRecheck, so a
	// session that ends anywhere is refused by every replica at most a
	// second after: each case waits that second (a bound, not a measure
	// of speed) and then expects the session refused by both.
	t.Run("replicas naming one store", func(t *testing.T) {
		tmp := t.TempDir()
		dir := filepath.Join(t.TempDir(), "shared")
		store := "file://" + dir
		core := newCore(t)
		a := startOutpostProcess(t, bin, core, "app-outpost", "app.test", tmp, store)
		b := startOutpostProcess(t, bin, core, "app-outpost", "app.test", tmp, store)
		// loginShared logs in at A and has B serve the session, so both
		// remember it.
		loginShared := func(t *testing.T) string {
			t.Helper()
			c := loginAt(t, a, "app.test")
			for _, r := range []string{a, b} {
				if s := statusAt(t, r, "app.test", c); s != http.StatusOK {
					t.Fatalf("replica %s with the session made at A: status %d, want 200", r, s)
				}
			}
			return c
		}
		refusedWithin := func(t *testing.T, what, c string) {
			t.Helper()
			time.Sleep(time.Second)
			for name, r := range map[string]string{"A": a, "B": b} {
				if s := statusAt(t, r, "app.test", c); s != http.StatusFound {
					t.Errorf("replica %s a second after %s: status %d, want 302 to the login", name, what, s)
				}
			}
		}

		c := loginShared(t)
		signOutAt(t, a, "app.test", c)
		refusedWithin(t, "the sign-out at A", c)

		c = loginShared(t)
		removed := 0
		files, _ := filepath.Glob(filepath.Join(dir, "sessions", "*.json"))
		for _, f := range files {
			if os.Remove(f) == nil {
				removed++
			}
		}
		if removed == 0 {
			t.Fatalf("no session file under %s", dir)
		}
		refusedWithin(t, "its file was removed by hand", c)

		// The core's session-end message reaches both replicas over
		// their websockets; the first removes the files, the second
		// forgets what it remembered. Delivery is the core's, so this
		// waits for it rather than for a second.
		c = loginShared(t)
		if n := core.EndSessions("alice"); n == 0 {
			t.Fatal("the core ended no session of alice")
		}
		for name, r := range map[string]string{"A": a, "B": b} {
			deadline := time.Now().Add(20 * time.Second)
			for statusAt(t, r, "app.test", c) != http.StatusFound {
				if time.Now().After(deadline) {
					t.Fatalf("replica %s still serves a session the core ended", name)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if n := sessionDirs(t, tmp); n != 0 {
			t.Errorf("%d default session directories with an explicit store, want none", n)
		}
	})
}

// startOutpostProcess runs `akoutpost run` for the named outpost of core
// with TMPDIR set to tmp and AKOUTPOST_SESSION_STORE to store (unset when
// empty), and returns its HTTP address once it serves host.
func startOutpostProcess(t *testing.T, bin string, core *outposttest.Server, outpostName, host, tmp, store string) string {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", itoa(freePort(t)))
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AKOUTPOST_SESSION_STORE=") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"TMPDIR="+tmp,
		"AUTHENTIK_HOST="+core.URL(),
		"AUTHENTIK_TOKEN="+core.Token(outpostName),
		"AUTHENTIK_LISTEN__HTTP="+addr,
		"AUTHENTIK_LISTEN__HTTPS=127.0.0.1:"+itoa(freePort(t)),
		"AUTHENTIK_LISTEN__METRICS=127.0.0.1:"+itoa(freePort(t)),
	)
	if store != "" {
		env = append(env, "AKOUTPOST_SESSION_STORE="+store)
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = env
	var out *syncbuf.Buffer
	t.Cleanup(func() { // after the process stopped
		if t.Failed() {
			t.Logf("outpost %s on %s:\n%s", outpostName, addr, out.String())
		}
	})
	out = testservers.StartProcess(t, cmd)
	waitConfigured(t, addr, host)
	return addr
}

// clientVia reaches addr for every .test host and the core directly.
func clientVia(t *testing.T, addr string, jar http.CookieJar, follow bool) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if h, _, _ := net.SplitHostPort(a); strings.HasSuffix(h, ".test") {
			a = addr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// loginAt logs alice in through the outpost at addr and returns the Cookie
// header of host, so that later requests show the session, not a jar.
func loginAt(t *testing.T, addr, host string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	resp, body := browserLogin(t, clientVia(t, addr, jar, true), "http://"+host+"/hello", "alice", "alice-password")
	var got upstreamView
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Headers.Get("X-Authentik-Username") != "alice" {
		t.Fatalf("login at %s: %d %.300s", host, resp.StatusCode, body)
	}
	u, _ := url.Parse("http://" + host + "/")
	var parts []string
	for _, c := range jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// statusAt requests host's page at addr with the Cookie header, without
// following redirects.
func statusAt(t *testing.T, addr, host, cookie string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/page", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := clientVia(t, addr, nil, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func signOutAt(t *testing.T, addr, host, cookie string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/outpost.goauthentik.io/sign_out", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := clientVia(t, addr, nil, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign out at %s: status %d, want 302", host, resp.StatusCode)
	}
}

// sessionDirs counts the default session directories under tmp.
func sessionDirs(t *testing.T, tmp string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(tmp, "akoutpost-sessions*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func outpostPK(t *testing.T, core *outposttest.Server, name string) string {
	t.Helper()
	for _, o := range core.Outposts() {
		if o.Name == name {
			return o.PK
		}
	}
	t.Fatalf("the core has no outpost %s", name)
	return ""
}
