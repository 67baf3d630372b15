// Package testservers starts the real servers tests need (Redis,
// PostgreSQL) on loopback, and says what to do when a server or peer
// program is missing: skip on a developer's machine, fail under CI.
// It is test plumbing, internal to this module.
package testservers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
)

// Unavailable skips a test whose server or peer program is missing, except
// in CI (CI=true), where a missing server is a broken environment and
// fails the test.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s", msg)
	}
	t.Skip(msg)
}

// FreePort returns a loopback port that was free a moment ago, for
// programs that take an address rather than a listener.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitDial(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server on %s did not come up", addr)
}

// StartProcess starts cmd with its output going to the returned buffer
// (unless cmd already has its own), and stops it when the test ends: an
// interrupt, then a kill after 30 s. A cleanup the caller registers
// before this call runs after the process has stopped.
func StartProcess(t testing.TB, cmd *exec.Cmd) *syncbuf.Buffer {
	t.Helper()
	out := &syncbuf.Buffer{}
	if cmd.Stdout == nil && cmd.Stderr == nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return out
}

// RedisAddr returns the address of a Redis server for tests:
// AKOUTPOST_TEST_REDIS_ADDR, else a throwaway redis-server on loopback,
// stopped when the test ends. Without either it calls Unavailable.
func RedisAddr(t testing.TB) string {
	t.Helper()
	if a := os.Getenv("AKOUTPOST_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(t, "no Redis: set AKOUTPOST_TEST_REDIS_ADDR or install redis-server")
	}
	port := FreePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	StartProcess(t, cmd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitDial(t, addr)
	return addr
}

// PostgresURL returns a connection string for tests:
// AKOUTPOST_TEST_POSTGRES_URL, else a throwaway cluster from
// [StartPostgres]. Without either it calls Unavailable.
func PostgresURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("AKOUTPOST_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return StartPostgres(t).URL()
}

// Postgres is a throwaway PostgreSQL cluster on loopback that a test can
// stop and start again on the same port and data directory, so what was
// written before a stop is there after the restart.
type Postgres struct {
	t        testing.TB
	postgres string
	dir      string
	data     string
	port     int
	// wrap runs a program as the postgres user when the tests run as
	// root, since PostgreSQL refuses to run as root.
	wrap func(name string, args ...string) *exec.Cmd
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPostgres makes a cluster with initdb and starts it; it is stopped
// when the test ends. Without initdb and postgres it calls Unavailable.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 != nil || err2 != nil {
		Unavailable(t, "no PostgreSQL: set AKOUTPOST_TEST_POSTGRES_URL or install initdb and postgres")
	}
	dir, err := os.MkdirTemp("", "akoutpost-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &Postgres{t: t, postgres: postgres, dir: dir, data: filepath.Join(dir, "data"), port: FreePort(t),
		wrap: func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Unavailable(t, "running as root and no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			Unavailable(t, "running as root and no runuser to run PostgreSQL as postgres")
		}
		p.wrap = func(name string, args ...string) *exec.Cmd {
			return exec.Command(runuser, append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	if out, err := p.wrap(initdb, "-D", p.data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	t.Cleanup(p.Stop)
	p.Start()
	return p
}

// URL is the cluster's connection string.
func (p *Postgres) URL() string {
	return "postgres://postgres@" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) +
		"/postgres?sslmode=disable&connect_timeout=2"
}

// Start runs the server and waits until it accepts connections. The
// server may still answer "starting up" for a moment after that.
func (p *Postgres) Start() {
	p.t.Helper()
	p.cmd = p.wrap(p.postgres, "-D", p.data, "-p", strconv.Itoa(p.port), "-h", "127.0.0.1",
		"-k", p.dir, "-c", "fsync=off", "-c", "full_page_writes=off")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting postgres: %v", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.done)
	waitDial(p.t, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)))
}

// Stop asks the postmaster for a fast shutdown (SIGINT: every session is
// cut at once), the way an operator's restart does, and waits for it to
// exit. The signal goes to the postmaster itself, found in
// postmaster.pid, since runuser in between may not forward it.
func (p *Postgres) Stop() {
	if p.cmd == nil {
		return
	}
	pid := 0
	if b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid")); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	}
	if pid > 0 {
		syscall.Kill(pid, syscall.SIGINT)
	} else {
		p.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-p.done
	}
	p.cmd = nil
}

// StartPeer starts a real peer program (nginx, Caddy) that listens on
// port on loopback, stops it with an interrupt when the test ends, and
// returns its address and its output. failureLog, when set, is read into
// the failure message if the peer never listens.
func StartPeer(t testing.TB, what string, cmd *exec.Cmd, port int, failureLog string) (string, *syncbuf.Buffer) {
	t.Helper()
	out := StartProcess(t, cmd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for range 400 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, out
		}
		time.Sleep(25 * time.Millisecond)
	}
	var log []byte
	if failureLog != "" {
		log, _ = os.ReadFile(failureLog)
	}
	t.Fatalf("%s did not start: %s\n%s", what, out.String(), log)
	return "", nil
}
