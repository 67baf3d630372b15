package proxy

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loopbackPort returns a loopback port that was free a moment ago, for peer
// programs that take an address rather than a listener.
func loopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPeer starts a real peer program (nginx, Caddy) that listens on
// port, stops it when the test ends, and returns its address and output.
// failureLog, when set, is read into the failure message if the peer
// never listens.
func startPeer(t *testing.T, what string, cmd *exec.Cmd, port int, failureLog string) (string, *strings.Builder) {
	t.Helper()
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
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
	t.Fatalf("%s did not start: %s\n%s", what, out, log)
	return "", nil
}
