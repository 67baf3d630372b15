package sessiontest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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

func freePort(t testing.TB) int {
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

// startProcess starts cmd and stops it when the test ends.
func startProcess(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
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
	port := freePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	startProcess(t, cmd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitDial(t, addr)
	return addr
}

// PostgresURL returns a connection string for tests:
// AKOUTPOST_TEST_POSTGRES_URL, else a throwaway cluster made with initdb
// (run as the postgres user when the tests run as root, since PostgreSQL
// refuses to run as root), stopped when the test ends. Without either it
// calls Unavailable.
func PostgresURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("AKOUTPOST_TEST_POSTGRES_URL"); u != "" {
		return u
	}
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
	wrap := func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
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
		wrap = func(name string, args ...string) *exec.Cmd {
			return exec.Command(runuser, append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := wrap(initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	startProcess(t, wrap(postgres, "-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1",
		"-k", dir, "-c", "fsync=off", "-c", "full_page_writes=off"))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitDial(t, addr)
	return "postgres://postgres@" + addr + "/postgres?sslmode=disable"
}
