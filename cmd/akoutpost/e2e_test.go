package main

import (
	"io"
	"net"
	"regexp"
	"strings"
	"testing"

	ldapclient "github.com/go-ldap/ldap/v3"
	"layeh.com/radius"
)

// The testcore contract scripts rely on: one line per outpost, then the URL.
// Then a standalone outpost run from the environment alone connects to it
// and reports authentik_outpost_connection 1 on its metrics listener.
func TestTestcoreAndRun(t *testing.T) {
	coreAddr := freeAddr(t)
	lines, stopCore := startCommand(t, nil, "testcore", "--listen", coreAddr)
	defer stopCore()

	tokens := map[string]string{}
	outpostLine := regexp.MustCompile(`^outpost (\S+) type (\S+) token (\S+)$`)
	var url string
	for lines.Scan() {
		line := lines.Text()
		if m := outpostLine.FindStringSubmatch(line); m != nil {
			tokens[m[2]] = m[3]
			continue
		}
		if u, ok := strings.CutPrefix(line, "listening "); ok {
			url = u
			break
		}
		t.Fatalf("unexpected testcore line %q", line)
	}
	if url != "http://"+coreAddr || tokens["proxy"] == "" || tokens["ldap"] == "" {
		t.Fatalf("testcore printed url %q and tokens for %v", url, tokens)
	}

	metrics := freeAddr(t)
	_, stopRun := startCommand(t, map[string]string{
		"AUTHENTIK_HOST":            url,
		"AUTHENTIK_TOKEN":           tokens["proxy"],
		"AUTHENTIK_LISTEN__HTTP":    freeAddr(t),
		"AUTHENTIK_LISTEN__HTTPS":   freeAddr(t),
		"AUTHENTIK_LISTEN__METRICS": metrics,
		"AKOUTPOST_SESSION_STORE":   "memory",
	}, "run")
	connected := regexp.MustCompile(`(?m)^authentik_outpost_connection\{[^}]*outpost_type="proxy"[^}]*\} 1$`)
	waitFor(t, "authentik_outpost_connection 1", func() bool {
		code, body := get("http://" + metrics + "/metrics")
		return code == 200 && connected.MatchString(body)
	})
	if code, _ := get("http://" + metrics + "/outpost.goauthentik.io/ping"); code != 204 {
		t.Errorf("ping answered %d, want 204", code)
	}
	if code := stopRun(); code != 0 {
		t.Errorf("run exited %d after a signal, want 0", code)
	}
}

// The demo prints an ldapsearch line and URLs that work as printed.
func TestDemo(t *testing.T) {
	lines, stop := startCommand(t, nil, "demo", "--core", freeAddr(t), "--upstream", "127.0.0.1:0",
		"--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--ldap", "127.0.0.1:0", "--ldaps", "127.0.0.1:0", "--radius", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	defer stop()
	var out []string
	for lines.Scan() {
		out = append(out, lines.Text())
		if strings.HasPrefix(lines.Text(), "Press Ctrl-C") {
			break
		}
	}
	text := strings.Join(out, "\n")
	search := regexp.MustCompile(`ldapsearch -x -H ldap://(\S+) -D '([^']+)' -w (\S+) -b '([^']+)' '([^']+)'`).FindStringSubmatch(text)
	proxyURL := regexp.MustCompile(`http://whoami\.localhost:(\d+)/`).FindStringSubmatch(text)
	metrics := regexp.MustCompile(`http://(\S+)/metrics`).FindStringSubmatch(text)
	radtest := regexp.MustCompile(`radtest (\S+) (\S+) (\S+) 0 (\S+)`).FindStringSubmatch(text)
	if search == nil || proxyURL == nil || metrics == nil || radtest == nil {
		t.Fatalf("demo output lacks the ldapsearch line, proxy URL, metrics URL or radtest line:\n%s", text)
	}

	// The outposts connect in the background; retry the printed search
	// until the LDAP outpost has its configuration.
	var entries int
	waitFor(t, "the printed ldapsearch to find users", func() bool {
		conn, err := ldapclient.DialURL("ldap://" + search[1])
		if err != nil {
			return false
		}
		defer conn.Close()
		if err := conn.Bind(search[2], search[3]); err != nil {
			return false
		}
		res, err := conn.Search(ldapclient.NewSearchRequest(search[4], ldapclient.ScopeWholeSubtree,
			ldapclient.NeverDerefAliases, 0, 0, false, search[5], []string{"cn", "mail"}, nil))
		if err != nil {
			return false
		}
		entries = len(res.Entries)
		return entries > 0
	})

	// Proxy mode sends an anonymous browser to log in at the core.
	waitFor(t, "the proxy outpost to redirect to login", func() bool {
		code, _ := get("http://127.0.0.1:"+proxyURL[1]+"/", "Host", "whoami.localhost:9000")
		return code == 302
	})
	waitFor(t, "both outposts on the shared /metrics", func() bool {
		_, body := get("http://" + metrics[1] + "/metrics")
		return strings.Contains(body, `outpost_type="proxy"`) && strings.Contains(body, `outpost_type="ldap"`)
	})
	// The printed radtest line's user, password, server and secret.
	nas, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer nas.Close()
	server, err := net.ResolveUDPAddr("udp", radtest[3])
	if err != nil {
		t.Fatal(err)
	}
	var code radius.Code
	waitFor(t, "the printed radtest to be answered", func() bool {
		var ok bool
		code, ok = radiusAccess(t, nas, server, radtest[1], radtest[2], radtest[4])
		return ok
	})
	if code != radius.CodeAccessAccept {
		t.Errorf("the printed radtest got %v, want Access-Accept", code)
	}
	if code := stop(); code != 0 {
		t.Errorf("demo exited %d after a signal, want 0", code)
	}
}

// `manifests` renders, for the outpost the environment names, what
// authentik's controllers would create.
func TestManifests(t *testing.T) {
	coreAddr := freeAddr(t)
	lines, stopCore := startCommand(t, nil, "testcore", "--listen", coreAddr)
	defer stopCore()
	token := ""
	for lines.Scan() {
		if f := strings.Fields(lines.Text()); len(f) == 6 && f[0] == "outpost" && f[3] == "proxy" {
			token = f[5]
		}
		if strings.HasPrefix(lines.Text(), "listening ") {
			break
		}
	}
	vars := map[string]string{"AUTHENTIK_HOST": "http://" + coreAddr, "AUTHENTIK_TOKEN": token}
	for kind, want := range map[string][]string{
		"kubernetes": {"kind: Deployment", "kind: Secret", "kind: Ingress", "host: whoami.localhost"},
		"compose":    {"services:", "io.goauthentik.outpost-uuid", "AUTHENTIK_TOKEN"},
	} {
		var out, errs strings.Builder
		c := command{stdout: &out, stderr: &errs, getenv: envOf(vars)}
		if code := c.main(t.Context(), []string{"manifests", kind}); code != 0 {
			t.Fatalf("manifests %s: exit %d: %s", kind, code, errs.String())
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("manifests %s lacks %q:\n%s", kind, w, out.String())
			}
		}
	}
	var errs strings.Builder
	c := command{stdout: io.Discard, stderr: &errs, getenv: envOf(vars)}
	if code := c.main(t.Context(), []string{"manifests", "helm"}); code != 2 {
		t.Errorf("manifests helm: exit %d, want 2", code)
	}
}
