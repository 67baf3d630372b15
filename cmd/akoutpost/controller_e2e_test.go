package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// kubeAPIServer starts etcd and kube-apiserver with ../shared/k8s/start.sh
// and returns the kubeconfig. Outside CI it skips when a tool is missing or
// kube-apiserver is not built yet (building takes about ten minutes).
func kubeAPIServer(t *testing.T) []byte {
	t.Helper()
	skip := func(format string, a ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format+" (required in CI)", a...)
		}
		t.Skipf(format+"; .ci/run installs and builds it", a...)
	}
	scripts, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "k8s"))
	if _, err := os.Stat(filepath.Join(scripts, "start.sh")); err != nil {
		skip("no ../shared/k8s/start.sh: %v", err)
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		skip("etcd (Debian package etcd-server) not available: %v", err)
	}
	if os.Getenv("CI") != "true" {
		home, _ := os.UserHomeDir()
		cache := os.Getenv("K8S_CACHE")
		if cache == "" {
			cache = filepath.Join(home, ".cache", "akoutpost-k8s")
		}
		if m, _ := filepath.Glob(filepath.Join(cache, "kube-apiserver-*")); len(m) == 0 {
			skip("kube-apiserver is not built (run %s/build-apiserver.sh)", scripts)
		}
	}
	dir, err := os.MkdirTemp("", "akck")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(scripts, "start.sh"), dir).Output()
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start.sh: %v: %s", err, out)
	}
	pids := regexp.MustCompile(`(?m)^pids (\d+) (\d+)$`).FindStringSubmatch(string(out))
	t.Cleanup(func() {
		for _, p := range []string{pids[2], pids[1]} {
			pid, _ := strconv.Atoi(p)
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
		os.RemoveAll(dir)
	})
	if pids == nil {
		t.Fatalf("start.sh printed no pids: %s", out)
	}
	kc, err := os.ReadFile(filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

// End to end through the commands: `akoutpost testcore` with a blueprint
// whose outpost names a Kubernetes integration prints the controller's API
// token; `akoutpost controller` with that token applies the outpost's
// objects to a real API server; `akoutpost controller status` shows it; a
// signal stops the controller.
func TestControllerCommandEndToEnd(t *testing.T) {
	kc := kubeAPIServer(t)
	kcJSON, err := yaml.YAMLToJSON(kc)
	if err != nil {
		t.Fatal(err)
	}
	bp := filepath.Join(t.TempDir(), "blueprint.yaml")
	err = os.WriteFile(bp, []byte(fmt.Sprintf(`version: 1
entries:
  - model: authentik_core.group
    id: admins
    identifiers: {name: admins}
    attrs: {is_superuser: true}
  - model: authentik_core.user
    id: admin
    identifiers: {username: admin}
    attrs: {groups: [!KeyOf admins]}
  - model: authentik_core.token
    identifiers: {identifier: controller}
    attrs: {user: !KeyOf admin, intent: api}
  - model: authentik_outposts.kubernetesserviceconnection
    id: kube
    identifiers: {name: cluster}
    attrs: {local: false, kubeconfig: %s}
  - model: authentik_outposts.outpost
    identifiers: {name: cmd ldap}
    attrs: {type: ldap, service_connection: !KeyOf kube, config: {container_image: "example.org/akoutpost:1"}}
`, kcJSON)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lines, stopCore := startCommand(t, nil, "testcore", "--blueprint", bp, "--listen", freeAddr(t))
	defer stopCore()
	var url, token string
	for lines.Scan() {
		if m := regexp.MustCompile(`^token controller (\S+)$`).FindStringSubmatch(lines.Text()); m != nil {
			token = m[1]
		}
		if u, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
			url = u
			break
		}
	}
	if url == "" || token == "" {
		t.Fatalf("testcore printed url %q token %q", url, token)
	}

	metrics := freeAddr(t)
	vars := map[string]string{"AUTHENTIK_HOST": url, "AUTHENTIK_TOKEN": token, "AUTHENTIK_LISTEN__METRICS": metrics,
		"AKOUTPOST_CONTROLLER_POLL": "200ms"}
	_, stopController := startCommand(t, vars, "controller")
	defer stopController()

	rc, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	var dep *unstructured.Unstructured
	waitFor(t, "the outpost's Deployment", func() bool {
		dep, err = dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).
			Namespace("default").Get(context.Background(), "ak-outpost-cmd-ldap", metav1.GetOptions{})
		return err == nil
	})
	if img, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers"); len(img) != 1 ||
		img[0].(map[string]any)["image"] != "example.org/akoutpost:1" {
		t.Errorf("containers %v", img)
	}
	var st struct {
		Outposts []struct {
			Name, Result string
			Objects      struct{ Created []string }
		}
	}
	waitFor(t, "controller status to show the reconcile", func() bool {
		var out strings.Builder
		code := command{stdout: &out, stderr: &out, getenv: envOf(vars)}.main(context.Background(), []string{"controller", "status"})
		return code == 0 && json.Unmarshal([]byte(out.String()), &st) == nil && len(st.Outposts) == 1
	})
	if st.Outposts[0].Name != "cmd ldap" || st.Outposts[0].Result != "ok" {
		t.Errorf("status %+v", st)
	}
	if code := stopController(); code != 0 {
		t.Errorf("controller exited %d after a signal", code)
	}
}
