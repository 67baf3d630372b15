package proxy_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/proxy"
)

// TestTraefikForwardAuth runs a real Traefik (built by .ci/build-traefik,
// found through AKOUTPOST_TRAEFIK or on PATH) with the forwardAuth
// configuration of docs/proxy-traefik.md (testdata/traefik.yml) in front
// of a forward_single application, and of a forward_domain one with the
// docs' notes applied; it logs a browser in through the test core and
// checks the identity headers the upstream receives.
func TestTraefikForwardAuth(t *testing.T) {
	t.Run("forward_single", func(t *testing.T) { traefikForwardAuth(t, false) })
	t.Run("forward_domain", func(t *testing.T) { traefikForwardAuth(t, true) })
}

// domainRouters are the docs' forward_domain notes for testdata/traefik.yml:
// the middleware on the router of every host under the cookie domain, and
// the outpost's paths of those hosts (the external host's among them)
// routed to the outpost.
var domainRouters = strings.NewReplacer(
	"rule: \"Host(`fwd.test`)\"", "rule: \"HostRegexp(`^[a-z0-9]+[.]fwd[.]test$`)\"",
	"rule: \"Host(`fwd.test`) && PathPrefix(`/outpost.goauthentik.io/`)\"", "rule: \"HostRegexp(`^[a-z0-9]+[.]fwd[.]test$`) && PathPrefix(`/outpost.goauthentik.io/`)\"",
)

func traefikForwardAuth(t *testing.T, domain bool) {
	bin := os.Getenv("AKOUTPOST_TRAEFIK")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("traefik"); err != nil {
			testservers.Unavailable(t, "traefik not found: build it with .ci/build-traefik and set AKOUTPOST_TRAEFIK")
		}
	}
	core := startCore(t)
	appHost := "fwd.test"
	if domain {
		if err := core.UpdateProvider("fwd", map[string]any{"mode": "forward_domain",
			"external_host": "http://auth.fwd.test", "cookie_domain": "fwd.test"}); err != nil {
			t.Fatal(err)
		}
		appHost = "wiki.fwd.test"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := runOutpost(t, outpost.Config{CoreURL: core.URL(), Token: core.Token("proxy-outpost"), Providers: map[string]outpost.Factory{"proxy": proxy.Factory(proxy.Config{HTTPListener: ln, StrictHost: true})}})
	select {
	case <-o.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the outpost never became ready")
	}

	dir := t.TempDir()
	port := testservers.FreePort(t)
	tmpl, err := os.ReadFile(filepath.Join("testdata", "traefik.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// startCore's echo upstream, which the blueprint's applications name.
	upstreamAddr := strings.TrimPrefix(os.Getenv("AKOUTPOST_PROXY_TEST_UPSTREAM"), "http://")
	dynamic := strings.NewReplacer("{{OUTPOST}}", ln.Addr().String(), "{{UPSTREAM}}", upstreamAddr,
		"app.example.com", "fwd.test").Replace(string(tmpl))
	if domain {
		dynamic = domainRouters.Replace(dynamic)
		if !strings.Contains(dynamic, "HostRegexp") {
			t.Fatal("the forward_domain routers were not written")
		}
	}
	dynPath := filepath.Join(dir, "dynamic.yml")
	if err := os.WriteFile(dynPath, []byte(dynamic), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--entryPoints.web.address=127.0.0.1:"+strconv.Itoa(port),
		"--providers.file.filename="+dynPath,
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--log.level=ERROR")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	addr, out := testservers.StartPeer(t, "traefik", cmd, port, "")

	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if h, _, _ := net.SplitHostPort(a); strings.HasSuffix(h, ".test") {
			a = addr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}}
	defer tr.CloseIdleConnections()
	browser := &http.Client{Jar: jar, Transport: tr}

	// Traefik loads the file provider shortly after it listens: until
	// then it answers 404 for every host.
	waitUntil(t, "Traefik to route "+appHost, func() bool {
		nf := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := nf.Get("http://" + appHost + "/secret")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusFound
	})

	resp, body := browserLogin(t, browser, "http://"+appHost+"/secret?x=1", "alice", "alice-password")
	var got upstreamView
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("after login: %d at %s: %.300s\n%s", resp.StatusCode, resp.Request.URL, body, out.String())
	}
	if got.URI != "/secret?x=1" || got.Headers.Get("X-Authentik-Username") != "alice" ||
		got.Headers.Get("X-Authentik-Meta-Provider") != "fwd" {
		t.Fatalf("upstream saw %s %v", got.URI, got.Headers)
	}
	// A forged identity header is replaced by Traefik with the outpost's.
	req, _ := http.NewRequest(http.MethodGet, "http://"+appHost+"/again", nil)
	req.Header.Set("X-authentik-username", "mallory")
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got = upstreamView{}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.Headers.Get("X-Authentik-Username") != "alice" {
		t.Fatalf("with a forged header: %v, upstream saw %v", err, got.Headers)
	}
}
