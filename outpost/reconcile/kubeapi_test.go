package reconcile

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// apiServer is one private etcd and kube-apiserver, started by the shared
// scripts (../shared/k8s beside the repository), that the package's tests
// share.
type apiServer struct {
	dir        string
	kubeconfig []byte
	pids       []int
}

var (
	apiServerOnce sync.Once
	apiServerInst *apiServer
	apiServerErr  error
)

// repoRoot is the directory of go.mod above the test's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test directory")
		}
		dir = parent
	}
}

// k8sScripts finds ../shared/k8s beside the repository root.
func k8sScripts() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	s := filepath.Join(root, "..", "shared", "k8s")
	if _, err := os.Stat(filepath.Join(s, "start.sh")); err != nil {
		return "", fmt.Errorf("no start.sh in %s", s)
	}
	return s, nil
}

// kubeAPI starts (once) etcd and kube-apiserver through start.sh. Outside
// CI a kube-apiserver that is not built yet skips the test rather than
// spending ten minutes building it: run ../shared/k8s/build-apiserver.sh.
func kubeAPI(t *testing.T) *apiServer {
	t.Helper()
	scripts, err := k8sScripts()
	require(t, "../shared/k8s (the kube-apiserver scripts)", err)
	_, err = exec.LookPath("etcd")
	require(t, "etcd (Debian package etcd-server)", err)
	if os.Getenv("CI") != "true" {
		ver := os.Getenv("K8S_VERSION")
		if ver == "" {
			ver = "v1.37.2"
		}
		cache := os.Getenv("K8S_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "akoutpost-k8s")
		}
		if _, err := os.Stat(filepath.Join(cache, "kube-apiserver-"+ver)); err != nil {
			t.Skipf("kube-apiserver is not built (%v); run %s/build-apiserver.sh (about ten minutes) or .ci/run", err, scripts)
		}
	}
	apiServerOnce.Do(func() { apiServerInst, apiServerErr = startAPIServer(scripts) })
	if apiServerErr != nil {
		t.Fatalf("starting kube-apiserver: %v", apiServerErr)
	}
	return apiServerInst
}

func startAPIServer(scripts string) (*apiServer, error) {
	dir, err := os.MkdirTemp("", "akrk")
	if err != nil {
		return nil, err
	}
	a := &apiServer{dir: dir}
	cmd := exec.Command(filepath.Join(scripts, "start.sh"), dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start.sh: %v: %s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "pids" {
			for _, p := range f[1:] {
				n, err := strconv.Atoi(p)
				if err != nil {
					return nil, fmt.Errorf("start.sh printed %q", sc.Text())
				}
				a.pids = append(a.pids, n)
			}
		}
	}
	if len(a.pids) != 2 {
		return nil, fmt.Errorf("start.sh printed no pids: %s", out)
	}
	if a.kubeconfig, err = os.ReadFile(filepath.Join(dir, "kubeconfig")); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

func (a *apiServer) stop() {
	// The API server first, then its store.
	for i := len(a.pids) - 1; i >= 0; i-- {
		pid := a.pids[i]
		syscall.Kill(pid, syscall.SIGTERM)
		for range 100 {
			if syscall.Kill(pid, 0) != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
	os.RemoveAll(a.dir)
}

// writeCounter counts the requests to the API server that change something.
type writeCounter struct {
	n     atomic.Int64
	mu    sync.Mutex
	calls []string
}

func (c *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			c.n.Add(1)
			c.mu.Lock()
			c.calls = append(c.calls, r.Method+" "+r.URL.Path)
			c.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

func (c *writeCounter) since(n int64) (int64, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.n.Load() - n
	return k, append([]string(nil), c.calls[len(c.calls)-int(k):]...)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// restConfig is the admin configuration of the test API server, with
// writes counted when c is set.
func (a *apiServer) restConfig(t *testing.T, c *writeCounter) *rest.Config {
	t.Helper()
	rc, err := clientcmd.RESTConfigFromKubeConfig(a.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		rc.WrapTransport = c.wrap
	}
	rc.QPS, rc.Burst = 200, 400
	return rc
}

func contextTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
