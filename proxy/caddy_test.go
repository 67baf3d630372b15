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

// TestCaddyForwardAuth logs a browser in through a real Caddy configured
// with authentik's documented snippet for a forward_single provider
// (testdata/Caddyfile.tmpl: forward_auth against auth/caddy).
func TestCaddyForwardAuth(t *testing.T) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		testservers.Unavailable(t, "caddy not installed")
	}
	e := newTestEnv(t, Config{}, app{name: "app", mode: "forward_single", external: "http://app.test"})
	dir := t.TempDir()
	port := testservers.FreePort(t)
	conf := strings.NewReplacer("{{PORT}}", strconv.Itoa(port),
		"{{UPSTREAM}}", e.upstream.Listener.Addr().String(), "{{OUTPOST}}", e.srv.Listener.Addr().String(),
	).Replace(readTemplate(t, "Caddyfile.tmpl"))
	confPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", confPath, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	addr, out := testservers.StartPeer(t, "caddy", cmd, port, "")
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: redirectDial(addr)}
	defer tr.CloseIdleConnections()
	browser := &http.Client{Jar: jar, Transport: tr}
	resp := mustGet(t, browser, "http://app.test/secret?x=1", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d after login through caddy\n%s", resp.StatusCode, out)
	}
	got := decodeEcho(t, resp)
	if got.URI != "/secret?x=1" || got.Headers.Get("X-Authentik-Username") != "alice" ||
		got.Headers.Get("X-Authentik-Meta-Provider") != "app" {
		t.Fatalf("upstream saw %+v", got)
	}
	// A forged header sent with a valid session is replaced by Caddy.
	got = decodeEcho(t, mustGet(t, browser, "http://app.test/again", map[string]string{"X-Authentik-Username": "mallory"}))
	if got.Headers.Get("X-Authentik-Username") != "alice" {
		t.Fatalf("forged username reached the upstream: %v", got.Headers)
	}
}
