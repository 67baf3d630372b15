package reliability

import (
	"context"
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

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/akoutpost/akoutpost/proxy/session"
	"github.com/akoutpost/akoutpost/proxy/session/sessiontest"
)

// postgresServer is a throwaway PostgreSQL cluster this test starts, stops
// and restarts on the same port and data directory, so sessions written
// before the stop are there after the restart. sessiontest.PostgresURL
// cannot be used: its server lives for the whole test.
type postgresServer struct {
	t        *testing.T
	postgres string
	dir      string
	data     string
	port     int
	// wrap runs a program as the postgres user when the test runs as root
	// (PostgreSQL refuses to run as root).
	wrap func(name string, args ...string) *exec.Cmd
	cmd  *exec.Cmd
	done chan struct{}
}

// newPostgresServer runs initdb, or calls sessiontest.Unavailable when
// PostgreSQL is not installed.
func newPostgresServer(t *testing.T) *postgresServer {
	t.Helper()
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 != nil || err2 != nil {
		sessiontest.Unavailable(t, "no PostgreSQL: install initdb and postgres to stop and restart a session store")
	}
	dir, err := os.MkdirTemp("", "akoutpost-rel-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ps := &postgresServer{t: t, postgres: postgres, dir: dir, data: filepath.Join(dir, "data"),
		wrap: func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			sessiontest.Unavailable(t, "running as root and no postgres user to run PostgreSQL as")
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			sessiontest.Unavailable(t, "running as root and no runuser to run PostgreSQL as postgres")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		ps.wrap = func(name string, args ...string) *exec.Cmd {
			return exec.Command(runuser, append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	if out, err := ps.wrap(initdb, "-D", ps.data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln := listen(t)
	ps.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return ps
}

func (p *postgresServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

func (p *postgresServer) url() string {
	return "postgres://postgres@" + p.addr() + "/postgres?sslmode=disable&connect_timeout=2"
}

func (p *postgresServer) start() {
	p.t.Helper()
	p.cmd = p.wrap(p.postgres, "-D", p.data, "-p", strconv.Itoa(p.port), "-h", "127.0.0.1",
		"-k", p.dir, "-c", "fsync=off", "-c", "full_page_writes=off")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting postgres: %v", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.done)
	// Accepting TCP is not enough: the cluster answers "starting up" for a
	// moment, so wait for a query to succeed.
	eventually(p.t, "postgres up", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, p.url())
		if err != nil {
			return err
		}
		defer pool.Close()
		return pool.Ping(ctx)
	})
}

// stop asks the postmaster for a fast shutdown (SIGINT: every session is
// disconnected at once), the way an operator's restart does, and waits
// for it to exit. The signal goes to the postmaster itself, found in
// postmaster.pid, since runuser in between may not forward it.
func (p *postgresServer) stop() {
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

// TestSessionStorePostgresRestart is TestSessionStoreRestart with the
// PostgreSQL store: while the server is stopped, a valid session gets a
// 503 and never the upstream; once it is back (same data directory), the
// pool reconnects by itself and the same session works again.
func TestSessionStorePostgresRestart(t *testing.T) {
	ps := newPostgresServer(t)
	ps.start()
	t.Cleanup(ps.stop)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(ps.url())
	if err != nil {
		t.Fatal(err)
	}
	// Connections a stopped server cut are found dead on their next use;
	// a short health check drops them sooner, so fewer requests after the
	// restart land on one of them.
	cfg.HealthCheckPeriod = 500 * time.Millisecond
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store, err := session.NewPostgres(pool, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureSchema(ctx); err != nil {
		t.Fatal(fmt.Errorf("creating the session table: %w", err))
	}
	storeRestart(t, "PostgreSQL", store, ps.stop, ps.start)
}
