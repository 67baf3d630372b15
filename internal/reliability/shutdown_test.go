package reliability

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// download is what the slow upstream streams: 32 chunks of 64 KiB, a
// pause between them, so the transfer is in flight when SIGTERM arrives.
const (
	chunk  = 64 << 10
	chunks = 32
)

func freeAddr(t *testing.T) string {
	ln := listen(t)
	defer ln.Close()
	return ln.Addr().String()
}

// process is an `akoutpost run` started by the test.
type process struct {
	cmd    *exec.Cmd
	stderr *logBuffer
	done   chan error
}

func startRun(t *testing.T, bin string, env map[string]string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, "run"), stderr: &logBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		// Kill is harmless on an exited process; Wait's result was
		// already taken by wait or is taken here.
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	})
	return p
}

// wait returns the exit error once the process ended, failing after a
// generous bound: a drain that never ends is the bug this looks for.
func (p *process) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("akoutpost run still running 60s after SIGTERM; output:\n%s", p.stderr.String())
		return nil
	}
}

// wsEcho is a websocket upstream sending every message back.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if err := c.Write(r.Context(), typ, msg); err != nil {
			return
		}
	}
}

// TestGracefulShutdownOfRun sends SIGTERM to real `akoutpost run`
// processes while a proxied download and an LDAP search (whose core query
// is slow) are in flight: both complete intact, and the processes exit 0.
func TestGracefulShutdownOfRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the command; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "akoutpost")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/akoutpost")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	started := make(chan struct{}, 1)
	payload := bytes.Repeat([]byte("akoutpost-reliability-"), chunk*chunks/22+1)[:chunk*chunks]
	want := sha256.Sum256(payload)
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			wsEcho(w, r)
			return
		}
		if r.URL.Path != "/download" {
			echo(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		for i := range chunks {
			w.Write(payload[i*chunk : (i+1)*chunk])
			w.(http.Flusher).Flush()
			if i == 0 {
				started <- struct{}{}
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	up := listen(t)
	upSrv := &http.Server{Handler: upstream}
	go upSrv.Serve(up)
	t.Cleanup(func() { upSrv.Close() })
	bp, err := os.ReadFile("testdata/reliability.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.Setenv("AKOUTPOST_RELIABILITY_UPSTREAM", "http://"+up.Addr().String())
	core, err := outposttest.NewServer(bp)
	os.Unsetenv("AKOUTPOST_RELIABILITY_UPSTREAM")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)

	s := &stack{core: core, logs: &logBuffer{}, proxyAddr: freeAddr(t), ldapAddr: freeAddr(t)}
	common := func(name string) map[string]string {
		return map[string]string{"AUTHENTIK_HOST": core.URL(), "AUTHENTIK_TOKEN": core.Token(name),
			"AUTHENTIK_LISTEN__HTTPS": freeAddr(t), "AUTHENTIK_LISTEN__LDAPS": freeAddr(t),
			"AUTHENTIK_LISTEN__METRICS": freeAddr(t), "AKOUTPOST_SESSION_STORE": "memory",
			"AUTHENTIK_LOG_LEVEL": "debug"}
	}
	penv := common("rel-proxy")
	penv["AUTHENTIK_LISTEN__HTTP"] = s.proxyAddr
	lenv := common("rel-ldap")
	lenv["AUTHENTIK_LISTEN__LDAP"] = s.ldapAddr
	lenv["AUTHENTIK_LISTEN__HTTP"] = freeAddr(t)
	proxyProc := startRun(t, bin, penv)
	ldapProc := startRun(t, bin, lenv)
	s.waitReady(t)

	jar := s.login(t, "http://app.test/", "alice", alicePassword)
	l, err := s.ldap()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind(binderDirectDN, binderPassword); err != nil {
		t.Fatal(err)
	}

	// A proxied websocket, open across the SIGTERM.
	wsCtx, wsCancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer wsCancel()
	wsClient := s.client(jar, false)
	defer wsClient.CloseIdleConnections()
	ws, _, err := websocket.Dial(wsCtx, "ws://app.test/ws", &websocket.DialOptions{HTTPClient: wsClient})
	if err != nil {
		t.Fatalf("websocket through the proxy: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(wsCtx, websocket.MessageText, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(wsCtx); err != nil || string(msg) != "before" {
		t.Fatalf("websocket echo before SIGTERM: %q %v", msg, err)
	}

	var wg sync.WaitGroup
	var dlErr, searchErr error
	var searchFound int
	wg.Go(func() {
		c := s.client(jar, false)
		defer c.CloseIdleConnections()
		resp, err := c.Get("http://app.test/download")
		if err != nil {
			dlErr = err
			return
		}
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		switch {
		case err != nil:
			dlErr = fmt.Errorf("download cut after %d bytes: %w", n, err)
		case resp.StatusCode != 200 || [32]byte(h.Sum(nil)) != want:
			dlErr = fmt.Errorf("download: status %d, %d bytes, content differs", resp.StatusCode, n)
		}
	})
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the download never started")
	}
	// The direct search's query to the core hangs for 2s: the search is
	// in flight in the LDAP process when it gets SIGTERM.
	before := core.RequestCount("/api/v3/core/users/")
	core.Fault(outposttest.Fault{PathPrefix: "/api/v3/core/users/", Delay: 2 * time.Second, Count: 1})
	wg.Go(func() {
		res, err := l.Search(goldap.NewSearchRequest("dc=direct,dc=test", goldap.ScopeWholeSubtree, 0, 0, 0, false,
			"(objectClass=user)", []string{"cn"}, nil))
		if err != nil {
			searchErr = err
			return
		}
		searchFound = len(res.Entries)
	})
	eventually(t, "the search reaches the core", func() error {
		if core.RequestCount("/api/v3/core/users/") <= before {
			return errors.New("not yet")
		}
		return nil
	})
	proxyProc.cmd.Process.Signal(syscall.SIGTERM)
	ldapProc.cmd.Process.Signal(syscall.SIGTERM)
	perr, lerr := proxyProc.wait(t), ldapProc.wait(t)
	wg.Wait()
	if dlErr != nil {
		t.Errorf("in-flight download across SIGTERM: %v", dlErr)
	}
	if searchErr != nil || searchFound == 0 {
		t.Errorf("in-flight LDAP search across SIGTERM: %d entries, %v", searchFound, searchErr)
	}
	if perr != nil || lerr != nil {
		t.Errorf("exit after SIGTERM: proxy %v, ldap %v", perr, lerr)
	}
	for name, p := range map[string]*process{"proxy": proxyProc, "ldap": ldapProc} {
		if out := p.stderr.String(); strings.Contains(out, "panic") || strings.Contains(out, "DATA RACE") {
			t.Errorf("%s process output:\n%s", name, out)
		}
	}
	// The websocket does not outlive the process: the proxy ends it at
	// shutdown with a close frame saying the outpost goes away.
	_, _, err = ws.Read(wsCtx)
	switch st := websocket.CloseStatus(err); {
	case err == nil:
		t.Error("websocket still delivering after the proxy exited")
	case wsCtx.Err() != nil:
		t.Error("websocket still open 90s after SIGTERM")
	case st != websocket.StatusGoingAway:
		t.Errorf("websocket ended with %v at shutdown, want close status %d", err, websocket.StatusGoingAway)
	}
	// Nothing listens any more.
	if c, err := net.DialTimeout("tcp", s.proxyAddr, time.Second); err == nil {
		c.Close()
		t.Error("proxy listener still accepts after exit")
	}
}
