package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pgx and go-redis are not started by these tests, but the
		// HTTP client's idle connections may linger briefly.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestReadEnvironment(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		vars          map[string]string
		wantToken     string
		wantTokenFile string // followed for rotation
		wantErr       string
	}{
		{name: "plain", vars: map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "t"}, wantToken: "t"},
		{name: "no host", vars: map[string]string{"AUTHENTIK_TOKEN": "t"}, wantErr: "AUTHENTIK_HOST"},
		{name: "no token", vars: map[string]string{"AUTHENTIK_HOST": "https://h/"}, wantErr: "AUTHENTIK_TOKEN"},
		{name: "token from file", vars: map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "file://" + tokenFile}, wantToken: "from-file", wantTokenFile: tokenFile},
		{name: "token file missing", vars: map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "file://" + dir + "/nope"}, wantErr: "AUTHENTIK_TOKEN: reading"},
		{name: "token file fallback", vars: map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "file://" + dir + "/nope?fb"}, wantToken: "fb"},
		{name: "token from env", vars: map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "env://OTHER", "OTHER": "o"}, wantToken: "o"},
		{name: "token env unset", vars: map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "env://OTHER"}, wantErr: "OTHER is not set"},
		{name: "core on a unix socket", vars: map[string]string{"AUTHENTIK_HOST": "unix:///run/core.sock", "AUTHENTIK_TOKEN": "t"}, wantToken: "t"},
		{name: "not a URL", vars: map[string]string{"AUTHENTIK_HOST": "h", "AUTHENTIK_TOKEN": "t"}, wantErr: "not an http(s) URL"},
		{name: "bad insecure", vars: map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "t", "AUTHENTIK_INSECURE": "maybe"}, wantErr: "AUTHENTIK_INSECURE"},
		{name: "port only", vars: map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "t", "AUTHENTIK_LISTEN__METRICS": "9300"}, wantErr: "not host:port"},
		{name: "bad cidr", vars: map[string]string{"AUTHENTIK_HOST": "https://h/", "AUTHENTIK_TOKEN": "t", "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS": "10.0.0.0/8, nope"}, wantErr: "not a CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := readEnvironment(envOf(tt.vars), true)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if tok := tt.vars["AUTHENTIK_TOKEN"]; tok != "" && strings.Contains(err.Error(), "from-file") {
					t.Errorf("error %q shows the token", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env.Token != tt.wantToken || env.TokenFile != tt.wantTokenFile {
				t.Errorf("token %q file %q, want %q file %q", env.Token, env.TokenFile, tt.wantToken, tt.wantTokenFile)
			}
		})
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead || r.URL.Path != "/outpost.goauthentik.io/ping" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(status)
	}))
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	cmd := func(listen string) int {
		c := command{stdout: io.Discard, stderr: io.Discard, getenv: envOf(map[string]string{"AUTHENTIK_LISTEN__METRICS": listen})}
		return c.main(context.Background(), []string{"healthcheck"})
	}
	if code := cmd("0.0.0.0:" + port); code != 0 {
		t.Errorf("healthy outpost on a wildcard address: exit %d, want 0", code)
	}
	status = http.StatusServiceUnavailable
	if code := cmd(addr); code != 1 {
		t.Errorf("ping answering 503: exit %d, want 1", code)
	}
	srv.Close()
	if code := cmd(addr); code != 1 {
		t.Errorf("listener down: exit %d, want 1", code)
	}
}

func TestUsage(t *testing.T) {
	var stderr strings.Builder
	c := command{stdout: io.Discard, stderr: &stderr, getenv: envOf(nil)}
	if code := c.main(context.Background(), []string{"frobnicate"}); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "usage:") {
		t.Errorf("no usage printed: %q", stderr.String())
	}
	stderr.Reset()
	if code := c.main(context.Background(), []string{"run"}); code != 1 || !strings.Contains(stderr.String(), "AUTHENTIK_HOST") {
		t.Errorf("run without environment: exit %d, stderr %q", code, stderr.String())
	}
}

// startCommand runs the command in-process and returns a reader of its
// standard output and a function that stops it and returns its exit code.
func startCommand(t *testing.T, vars map[string]string, args ...string) (*bufio.Scanner, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	logs := &syncbuf.Buffer{}
	c := command{stdout: pw, stderr: logs, getenv: envOf(vars)}
	go func() {
		done <- c.main(ctx, args)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() { code = waitExit(t, args, cancel, pr, done) })
		return code
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of %v:\n%s", args, logs.String())
		}
	})
	return lines, stop
}

// waitExit ends a command started by startCommand and returns its exit code.
func waitExit(t *testing.T, args []string, cancel func(), pr *io.PipeReader, done chan int) int {
	cancel()
	go io.Copy(io.Discard, pr) // let a blocked write finish
	select {
	case code := <-done:
		return code
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		t.Fatalf("%v did not stop within 30 s", args)
		return -1
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls f until it is true or a generous deadline passes.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(url string, header ...string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	client.CloseIdleConnections()
	return resp.StatusCode, string(b)
}
