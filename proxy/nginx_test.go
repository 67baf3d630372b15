package proxy

import (
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/akoutpost/akoutpost/internal/testservers"
)

// TestNginxAuthRequest logs a browser in through a real nginx configured
// with authentik's documented snippet for a forward_single provider
// (testdata/nginx.conf.tmpl: auth_request against auth/nginx), then checks that the upstream sees the
// identity headers and not the client's forged ones.
func TestNginxAuthRequest(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "app", mode: "forward_single", external: "http://app.test"})
	addr, dir := startNginx(t, e)

	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: redirectDial(addr)}
	defer tr.CloseIdleConnections()
	browser := &http.Client{Jar: jar, Transport: tr}

	resp := mustGet(t, browser, "http://app.test/secret?x=1", map[string]string{"X-Authentik-Username": "mallory"})
	if resp.StatusCode != 200 {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("status %d after login through nginx\n%s", resp.StatusCode, log)
	}
	got := decodeEcho(t, resp)
	if got.URI != "/secret?x=1" || got.Headers.Get("X-Authentik-Username") != "alice" ||
		got.Headers.Get("X-Authentik-Groups") != "admins|staff" {
		t.Fatalf("upstream saw %+v", got)
	}
	// Logged in: a forged header is overwritten by nginx with the real one.
	got = decodeEcho(t, mustGet(t, browser, "http://app.test/again", map[string]string{"X-Authentik-Username": "mallory"}))
	if got.Headers.Get("X-Authentik-Username") != "alice" {
		t.Fatalf("forged username reached the upstream: %v", got.Headers)
	}
	// Without the session cookie: 302 to the outpost's start, by nginx.
	nf := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp = mustGet(t, nf, "http://app.test/secret", nil)
	if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "/outpost.goauthentik.io/start?rd=") {
		t.Fatalf("anonymous: status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestNginxSkipPathTraversal: behind the documented nginx configuration,
// with a file-serving upstream and skip_path_regex ^/public/, the
// traversal corpus must not read private files without a session. nginx
// resolves the path for its own location matching but passes the raw URI
// to the upstream and to the outpost's check.
func TestNginxSkipPathTraversal(t *testing.T) {
	e := newTestEnvUpstream(t, Config{}, http.FileServer(http.Dir(fileTree(t))),
		app{name: "app", mode: "forward_single", external: "http://app.test", skip: "^/public/"})
	addr, _ := startNginx(t, e)
	get := func(p string) (int, string) {
		return rawRequest{method: "GET", target: p, header: map[string]string{"Host": "app.test"}}.do(t, addr)
	}
	if status, body := get("/public/ok.txt"); status != 200 || body != "public" {
		t.Fatalf("allowlisted file: status %d body %q", status, body)
	}
	if status, _ := get("/private/secret.txt"); status != 302 {
		t.Fatalf("private file: status %d, want nginx's 302 to the login", status)
	}
	for _, p := range append(traversalCorpus, pathPrefix+"/../private/secret.txt", pathPrefix+"/%2e%2e/private/secret.txt") {
		status, body := get(p)
		if strings.Contains(body, "SECRET") || status == 200 {
			t.Errorf("%s: status %d without a session: %.100s", p, status, body)
		}
	}
}

// startNginx runs nginx with testdata/nginx.conf.tmpl in front of e's
// upstream and outpost, and returns its address and directory.
func startNginx(t *testing.T, e *testEnv) (addr, dir string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		testservers.Unavailable(t, "nginx not installed (apt-get install nginx)")
	}
	dir = t.TempDir()
	port := testservers.FreePort(t)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	conf := strings.NewReplacer("{{DIR}}", dir, "{{PORT}}", strconv.Itoa(port), "{{USER}}", user,
		"{{UPSTREAM}}", e.upstream.Listener.Addr().String(), "{{OUTPOST}}", e.srv.Listener.Addr().String(),
	).Replace(readTemplate(t, "nginx.conf.tmpl"))
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confPath, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	addr, _ = testservers.StartPeer(t, "nginx", cmd, port, filepath.Join(dir, "error.log"))
	return addr, dir
}

// readTemplate reads a reverse proxy configuration from testdata. The same
// files are the snippets the README shows.
func readTemplate(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
