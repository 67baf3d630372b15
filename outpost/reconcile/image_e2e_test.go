package reconcile

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// akoutpostImage builds this repository's image from its Dockerfile's
// "prebuilt" target, with the context the Dockerfile's comment describes:
// the command built statically, the CA bundle and the links authentik's
// health checks call. The legacy builder runs it: no registry is needed.
func akoutpostImage(t *testing.T, e *engine) string {
	t.Helper()
	const ref = "akoutpost-reconcile-e2e:1"
	bin := filepath.Join(e.dir, "akoutpost")
	gobuild := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/akoutpost/akoutpost/cmd/akoutpost")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("building akoutpost: %v: %s", err, out)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name, src string, mode int64) {
		data, err := os.ReadFile(src)
		if err != nil && src != "/etc/ssl/certs/ca-certificates.crt" {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data))})
		tw.Write(data)
	}
	add("Dockerfile", filepath.Join(root, "Dockerfile"), 0o644)
	add("bin/akoutpost", bin, 0o755)
	add("bin/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt", 0o644)
	tw.WriteHeader(&tar.Header{Name: "bin/root/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, typ := range []string{"proxy", "ldap", "radius", "rac"} {
		tw.WriteHeader(&tar.Header{Name: "bin/root/" + typ, Typeflag: tar.TypeSymlink, Linkname: "/usr/local/bin/akoutpost", Mode: 0o777})
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := e.cli.ImageBuild(context.Background(), &buf, client.ImageBuildOptions{
		Tags: []string{ref}, Target: "prebuilt", Version: build.BuilderV1, Remove: true,
	})
	if err != nil {
		t.Fatalf("building the image: %v", err)
	}
	out, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(out), "Successfully tagged "+ref) {
		t.Fatalf("building the image from the Dockerfile's prebuilt target: %s", out)
	}
	return ref
}

// The outpost the controller deploys runs: the container, on a network of
// its own, connects to the test core and reports
// authentik_outpost_connection 1 on its metrics port, and its health check
// passes.
func TestControllerDeployedOutpostConnects(t *testing.T) {
	e := dockerEngine(t)
	img := akoutpostImage(t, e) // minutes on a busy machine: before the deadline
	ctx := contextTimeout(t, 3*time.Minute)
	nr, err := e.cli.NetworkCreate(ctx, "akrt-e2e", client.NetworkCreateOptions{Driver: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cli.NetworkRemove(context.Background(), nr.ID, client.NetworkRemoveOptions{}) })
	ni, err := e.cli.NetworkInspect(ctx, nr.ID, client.NetworkInspectOptions{})
	if err != nil || len(ni.Network.IPAM.Config) == 0 {
		t.Fatalf("network: %+v, %v", ni, err)
	}
	gateway := ni.Network.IPAM.Config[0].Gateway.String()

	bp := fmt.Sprintf(`version: 1
entries:
`+controllerEntries+`  - model: authentik_outposts.dockerserviceconnection
    id: docker
    identifiers: {name: test engine}
    attrs: {local: false, url: %q}
  - model: authentik_outposts.outpost
    identifiers: {name: running ldap}
    attrs:
      type: ldap
      service_connection: !KeyOf docker
      config: {container_image: %q, docker_network: akrt-e2e, docker_map_ports: false}
`, "unix://"+e.sock, img)
	core, err := outposttest.NewUnstartedServer(outposttest.Config{Blueprint: []byte(bp), Addr: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	port := core.URL()[strings.LastIndex(core.URL(), ":")+1:]
	// The outpost reaches the core through the network's gateway.
	if err := core.UpdateOutpostConfig("running ldap", map[string]any{"authentik_host": "http://" + gateway + ":" + port + "/"}); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(core.URL())
	api, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: core.APITokens()[0].Key, RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	// authentik's own Docker controller gives LDAP containers this health
	// check; the image must answer it.
	ctl, err := NewController(ControllerConfig{Client: api, HealthcheckCommand: []string{"CMD", "/ldap", "healthcheck"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.closeAll)
	pk := core.Outposts()[0].PK
	t.Cleanup(func() {
		for _, r := range ctl.recs {
			r.rec.Delete(context.Background(), pk)
		}
	})
	ctl.Poll(ctx)
	if st := ctl.Status(); len(st.Outposts) != 1 || st.Outposts[0].Result != "ok" {
		t.Fatalf("status %+v", st)
	}
	c := inspect(t, e, "ak-outpost-running-ldap")
	ip := c.NetworkSettings.Networks["akrt-e2e"].IPAddress.String()

	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		resp, err := hc.Get("http://" + ip + ":9300/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if strings.Contains(last, `authentik_outpost_connection{`) && strings.Contains(last, "} 1") &&
				connectionUp(last) {
				break
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			logs, _ := e.cli.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
			var out []byte
			if logs != nil {
				out, _ = io.ReadAll(logs)
				logs.Close()
			}
			t.Fatalf("the deployed outpost did not report a connection within 90s: %s\nlogs: %s", last, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Docker's own health check, the command the controller gave it.
	for {
		c = inspect(t, e, "ak-outpost-running-ldap")
		if c.State.Health != nil && c.State.Health.Status == "healthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health %+v", c.State.Health)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n := len(core.Hellos("running ldap")); n == 0 {
		t.Error("the core saw no hello from the deployed outpost")
	}
}

// connectionUp finds authentik_outpost_connection{...} 1 in a scrape.
func connectionUp(scrape string) bool {
	for _, line := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(line, "authentik_outpost_connection{") && strings.HasSuffix(line, " 1") {
			return true
		}
	}
	return false
}
