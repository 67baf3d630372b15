package reconcile

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// testImage is an image the tests build: a static program installed as
// /usr/local/bin/akoutpost that sleeps until stopped and answers
// "healthcheck" with exit 0, so containers start and report healthy without
// any registry.
const testImage = "akoutpost-reconcile-test:1"

// engine is one private dockerd the package's tests share.
type engine struct {
	sock string // unix socket path
	cmd  *exec.Cmd
	dir  string
	cli  *client.Client
	// tlsAddr is a TCP listener that requires a client certificate signed
	// by tls.ca; tls.other is a CA that signed nothing the engine knows.
	tlsAddr string
	tls     testTLS
}

var (
	engineOnce sync.Once
	engineInst *engine
	engineErr  error
)

// require skips the test when a program the test needs is missing, except
// under CI=true, where it fails.
func require(t *testing.T, why string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI: %v", why, err)
	}
	t.Skipf("%s not available (%v); .ci/run installs it", why, err)
}

// dockerEngine starts (once) a dockerd on a private socket, data root and
// exec root, with no bridge and no iptables rules, and imports testImage.
func dockerEngine(t *testing.T) *engine {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		require(t, "dockerd (Debian package docker.io)", err)
	}
	if os.Geteuid() != 0 {
		require(t, "root (dockerd runs as root)", fmt.Errorf("running as uid %d", os.Geteuid()))
	}
	engineOnce.Do(func() { engineInst, engineErr = startEngine() })
	if engineErr != nil {
		t.Fatalf("starting dockerd: %v", engineErr)
	}
	return engineInst
}

func startEngine() (*engine, error) {
	// Short paths: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "akrd")
	if err != nil {
		return nil, err
	}
	e := &engine{dir: dir, sock: filepath.Join(dir, "d.sock")}
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	if e.tls, err = makeTLS(dir); err != nil {
		return nil, err
	}
	if e.tlsAddr, err = freePort(); err != nil {
		return nil, err
	}
	e.cmd = exec.Command("dockerd", "--iptables=false", "--bridge=none", "-H", "unix://"+e.sock,
		"-H", "tcp://"+e.tlsAddr, "--tlsverify", "--tlscacert", filepath.Join(dir, "ca.pem"),
		"--tlscert", filepath.Join(dir, "server.pem"), "--tlskey", filepath.Join(dir, "server-key.pem"),
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"))
	e.cmd.Stdout, e.cmd.Stderr = log, log
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		return nil, err
	}
	e.cli, err = client.New(client.WithHost("unix://"+e.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		e.stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if _, err := e.cli.Ping(ctx, client.PingOptions{}); err == nil {
			break
		}
		if ctx.Err() != nil {
			tail, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			e.stop()
			return nil, fmt.Errorf("dockerd did not answer within 60s: %s", lastLines(string(tail), 5))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := e.importImage(ctx); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

const sleeperSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(0)
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
`

// importImage builds the sleeper statically and imports it as testImage.
func (e *engine) importImage(ctx context.Context) error {
	src := filepath.Join(e.dir, "sleeper")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module sleeper\n\ngo 1.22\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(sleeperSource), 0o644); err != nil {
		return err
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", "sleeper", ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the test image's program: %v: %s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(src, "sleeper"))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"usr/", "usr/local/", "usr/local/bin/", "tmp/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "usr/local/bin/akoutpost", Mode: 0o755, Size: int64(len(bin))}); err != nil {
		return err
	}
	if _, err := tw.Write(bin); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	r, err := e.cli.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, testImage, client.ImageImportOptions{
		Changes: []string{`ENTRYPOINT ["/usr/local/bin/akoutpost"]`, `ENV PATH=/usr/local/bin:/usr/bin:/bin`},
	})
	if err != nil {
		return fmt.Errorf("importing the test image: %w", err)
	}
	defer r.Close()
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		return fmt.Errorf("importing the test image: %w", err)
	}
	if strings.Contains(out.String(), `"error"`) {
		return fmt.Errorf("importing the test image: %s", out.String())
	}
	return nil
}

func (e *engine) stop() {
	if e.cli != nil {
		e.cli.Close()
	}
	if e.cmd != nil && e.cmd.Process != nil {
		e.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { e.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	// Container state under exec-root may hold mounts; leave what cannot
	// be removed to the temporary directory's cleaner.
	os.RemoveAll(e.dir)
}

// counter is a proxy in front of the engine that counts the requests that
// change something (every method but GET and HEAD).
type counter struct {
	sock   string
	writes atomic.Int64
	srv    *http.Server
	paths  sync.Map
}

func (e *engine) counter(t *testing.T) *counter {
	t.Helper()
	c := &counter{sock: filepath.Join(e.dir, fmt.Sprintf("c%d.sock", time.Now().UnixNano()%1e6))}
	ln, err := net.Listen("unix", c.sock)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse("http://docker")
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", e.sock)
	}}
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			c.writes.Add(1)
			c.paths.Store(r.Method+" "+r.URL.Path, true)
		}
		rp.ServeHTTP(w, r)
	})}
	done := make(chan struct{})
	go func() { c.srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		c.srv.Close()
		<-done
		rp.Transport.(*http.Transport).CloseIdleConnections()
	})
	return c
}

func (c *counter) host() string { return "unix://" + c.sock }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
