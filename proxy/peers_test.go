package proxy_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/internal/testservers"
)

// freePort returns a loopback port that was free a moment ago, for peer
// programs that take an address rather than a listener.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// nginxConfig fills a configuration template from testdata: {{DIR}},
// {{PORT}} and {{USER}} are set here, the rest comes from vars.
func nginxConfig(t *testing.T, name, dir string, port int, vars map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		// nginx refuses to drop to "nobody" when it cannot; as root in a
		// container it must be told to stay root.
		user = "user root root;"
	}
	pairs := []string{"{{DIR}}", dir, "{{PORT}}", strconv.Itoa(port), "{{USER}}", user}
	for k, v := range vars {
		pairs = append(pairs, "{{"+k+"}}", v)
	}
	return strings.NewReplacer(pairs...).Replace(string(b))
}

// startNginx runs nginx with the template name until the test ends and
// returns its loopback address. Without nginx the test is skipped (failed
// when CI=true).
func startNginx(t *testing.T, name string, vars map[string]string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		testservers.Unavailable(t, "nginx not installed (apt-get install nginx)")
	}
	dir := t.TempDir()
	port := freePort(t)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(nginxConfig(t, name, dir, port, vars)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confPath, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	var out *syncbuf.Buffer
	t.Cleanup(func() { // after nginx stopped
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output: %s\nerror.log:\n%s", out, log)
		}
	})
	out = testservers.StartProcess(t, cmd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitDial(t, addr, "nginx")
	return addr
}

// waitDial waits until something accepts connections on addr.
func waitDial(t *testing.T, addr, what string) {
	t.Helper()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if i > 1200 {
			t.Fatalf("%s did not start listening on %s", what, addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
