package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// traversalCorpus holds request paths that an upstream resolves outside
// /public/ although they start with it. Each was seen to work against a
// common server: nginx and Go resolve dot segments and decode %2e and %2F,
// Tomcat and Spring drop ";parameters" before resolving, IIS treats a
// backslash as a slash, and a proxy that decodes once in front of one that
// decodes again turns %252e into a dot.
var traversalCorpus = []string{
	"/public/../private/secret.txt",
	"/public/./../private/secret.txt",
	"/public//../private/secret.txt",
	"/public/x/../../private/secret.txt",
	"/public/%2e%2e/private/secret.txt",
	"/public/%2E%2E/private/secret.txt",
	"/public/.%2e/private/secret.txt",
	"/public/%2e./private/secret.txt",
	"/public/%2e/../private/secret.txt",
	"/public/..%2fprivate/secret.txt",
	"/public/..%2Fprivate/secret.txt",
	"/public/%2e%2e%2fprivate%2fsecret.txt",
	"/public%2f..%2fprivate/secret.txt",
	"/public/..;/private/secret.txt",
	"/public/..;jsessionid=1/private/secret.txt",
	"/public/%2e%2e;/private/secret.txt",
	"/public/%2e%2e%3b/private/secret.txt",
	"/public/..%5cprivate/secret.txt",
	"/public/..%5Cprivate%5Csecret.txt",
	"/public/%252e%252e/private/secret.txt",
	"/public/%252e%252e%252fprivate/secret.txt",
	"/public/%25252e%25252e/private/secret.txt",
	"/public/..%00/private/secret.txt",
	"/public/..%20/private/secret.txt",
	"/public/%20../private/secret.txt",
	"/public/.../private/secret.txt",
	"/public/..",
	"/public/x/..",
	"/public/.",
}

// TestPathForms: canonical paths keep their decoded forms; the traversal
// corpus and other disguised separators are not canonical.
func TestPathForms(t *testing.T) {
	for _, tc := range []struct {
		escaped string
		forms   []string
	}{
		{"/", []string{"/"}},
		{"/public/ok.txt", []string{"/public/ok.txt"}},
		{"/public/a%20b", []string{"/public/a b"}},
		{"/public/caf%C3%A9", []string{"/public/café"}},
		{"/public//x", []string{"/public//x", "/public/x"}},
		{"/public/x;jsessionid=1", []string{"/public/x;jsessionid=1", "/public/x"}},
		{"/public/%2570", []string{"/public/%70", "/public/p"}},
		{"/public/x..y/.hidden", []string{"/public/x..y/.hidden"}},
		{"/public/", []string{"/public/"}},
	} {
		forms, ok := pathForms(tc.escaped)
		if !ok || !slices.Equal(forms, tc.forms) {
			t.Errorf("pathForms(%q) = %q, %v; want %q, true", tc.escaped, forms, ok, tc.forms)
		}
	}
	notCanonical := append([]string{"", "*", "public/x", "/a\\b", "/a%2Fb", "/a%5c", "/a%0a", "/a%7f", "/a%zz"}, traversalCorpus...)
	for _, p := range notCanonical {
		if forms, ok := pathForms(p); ok {
			t.Errorf("pathForms(%q) = %q, canonical; want not canonical", p, forms)
		}
	}
}

// TestSkipPathTraversal is the story of a bypass: skip_path_regex was
// matched against the raw path, and the raw path was passed on, so
// "/public/../private/secret.txt" matched ^/public/ while the upstream
// served /private/secret.txt without a login. Every traversal form must
// now need a session in every mode, with every method, while the
// allowlisted file itself stays public.
func TestSkipPathTraversal(t *testing.T) {
	files := fileTree(t)
	e := newTestEnvUpstream(t, Config{}, http.FileServer(http.Dir(files)),
		app{name: "proxied", external: "http://app.test", skip: "^/public/"},
		app{name: "single", mode: "forward_single", external: "http://single.test", skip: "^/public/"},
		app{name: "domain", mode: "forward_domain", external: "http://auth.dom.test", cookieDomain: "dom.test",
			skip: `^http://app\.dom\.test/public/`},
	)
	addr := e.srv.Listener.Addr().String()

	type check struct {
		name    string
		request func(method, path string) rawRequest
		allowed int // status when the path is allowlisted
		denied  int // status when a session is needed
	}
	checks := []check{
		{"proxy mode", func(m, p string) rawRequest {
			return rawRequest{method: m, target: p, header: map[string]string{"Host": "app.test"}}
		}, 200, 302},
		{"nginx", func(m, p string) rawRequest {
			return rawRequest{method: "GET", target: pathNginx, header: map[string]string{"Host": "single.test", "X-Original-URI": p}}
		}, 200, 401},
		{"nginx X-Original-URL", func(m, p string) rawRequest {
			return rawRequest{method: "GET", target: pathNginx, header: map[string]string{"Host": "single.test", "X-Original-URL": "http://single.test" + p}}
		}, 200, 401},
		{"traefik", func(m, p string) rawRequest {
			return rawRequest{method: "GET", target: pathTraefik, header: map[string]string{"Host": "single.test",
				"X-Forwarded-Proto": "http", "X-Forwarded-Host": "single.test", "X-Forwarded-Uri": p, "X-Forwarded-Method": m}}
		}, 200, 302},
		{"caddy", func(m, p string) rawRequest {
			return rawRequest{method: "GET", target: pathCaddy, header: map[string]string{"Host": "single.test",
				"X-Forwarded-Proto": "http", "X-Forwarded-Host": "single.test", "X-Forwarded-Uri": p, "X-Forwarded-Method": m}}
		}, 200, 302},
		{"envoy", func(m, p string) rawRequest {
			return rawRequest{method: m, target: pathEnvoy + p, header: map[string]string{"Host": "single.test"}}
		}, 200, 302},
		{"forward_domain traefik", func(m, p string) rawRequest {
			return rawRequest{method: "GET", target: pathTraefik, header: map[string]string{"Host": "auth.dom.test",
				"X-Forwarded-Proto": "http", "X-Forwarded-Host": "app.dom.test", "X-Forwarded-Uri": p}}
		}, 200, 302},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if status, body := c.request("GET", "/public/ok.txt").do(t, addr); status != c.allowed {
				t.Fatalf("allowlisted /public/ok.txt: status %d, want %d (%.100s)", status, c.allowed, body)
			}
			if status, _ := c.request("GET", "/private/secret.txt").do(t, addr); status != c.denied {
				t.Fatalf("/private/secret.txt: status %d, want %d", status, c.denied)
			}
			for _, p := range traversalCorpus {
				for _, method := range []string{"GET", "POST"} {
					status, body := c.request(method, p).do(t, addr)
					if strings.Contains(body, "SECRET") || status != c.denied {
						t.Errorf("%s %s: status %d without a session, want %d: %.100s", method, p, status, c.denied, body)
					}
				}
			}
		})
	}
}

// TestOwnPathTraversalNeedsSession: nginx's check lets the outpost's own
// endpoints through, but "/outpost.goauthentik.io/../private" is /private
// to the upstream.
func TestOwnPathTraversalNeedsSession(t *testing.T) {
	e := newTestEnv(t, Config{}, app{name: "single", mode: "forward_single", external: "http://single.test"})
	addr := e.srv.Listener.Addr().String()
	for _, tc := range []struct {
		uri    string
		status int
	}{
		{pathStart + "?rd=/x", 200},
		{pathPrefix + "/../private/secret.txt", 401},
		{pathPrefix + "/%2e%2e/private/secret.txt", 401},
		{pathPrefix + "/..;/private/secret.txt", 401},
	} {
		r := rawRequest{method: "GET", target: pathNginx, header: map[string]string{"Host": "single.test", "X-Original-URI": tc.uri}}
		if status, _ := r.do(t, addr); status != tc.status {
			t.Errorf("X-Original-URI %s: status %d, want %d", tc.uri, status, tc.status)
		}
	}
}

// fileTree writes public/ok.txt and private/secret.txt for a file-serving
// upstream.
func fileTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"public/ok.txt": "public", "private/secret.txt": "SECRET"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// rawRequest is sent on its own connection with the target as written:
// Go's client would resolve or re-escape some of them.
type rawRequest struct {
	method, target string
	header         map[string]string
}

func (r rawRequest) do(t *testing.T, addr string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", r.method, r.target)
	for k, v := range r.header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("Content-Length: 0\r\nConnection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// FuzzSkipPath: whatever path a client sends, if it is allowlisted
// without a session, every upstream reading of it resolves to a path the
// allowlist matches.
func FuzzSkipPath(f *testing.F) {
	for _, p := range traversalCorpus {
		f.Add(p)
	}
	for _, p := range []string{"/public/ok.txt", "/public/a;b/c", "/public//x", "/public/%2570", "/static/app.css", "/health"} {
		f.Add(p)
	}
	skip := []*regexp.Regexp{regexp.MustCompile(`^/public/`), regexp.MustCompile(`^/static/[^/]+\.css$`), regexp.MustCompile(`/health$`)}
	single, _ := fuzzApps(f)
	single.skip = skip
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil || u.Host != "" || u.Scheme != "" {
			return
		}
		if !single.allowlisted(u) {
			return
		}
		for name, resolve := range upstreamReadings {
			resolved := resolve(u.EscapedPath())
			if !slices.ContainsFunc(skip, func(re *regexp.Regexp) bool { return re.MatchString(resolved) }) {
				t.Fatalf("%q is allowlisted, but %s resolves it to %q, which is not", raw, name, resolved)
			}
		}
	})
}

// upstreamReadings model how common servers resolve an escaped path.
var upstreamReadings = map[string]func(string) string{
	"nginx": func(p string) string { return removeDotSegments(mergeSlashes(unescapeAll(p, 1))) },
	"go":    func(p string) string { return removeDotSegments(unescapeAll(p, 1)) },
	"tomcat": func(p string) string {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			segs[i], _, _ = strings.Cut(s, ";")
		}
		return removeDotSegments(unescapeAll(strings.Join(segs, "/"), 1))
	},
	"iis":           func(p string) string { return removeDotSegments(strings.ReplaceAll(unescapeAll(p, 1), `\`, "/")) },
	"double-decode": func(p string) string { return removeDotSegments(unescapeAll(p, 3)) },
}

func unescapeAll(p string, rounds int) string {
	for range rounds {
		d, err := url.PathUnescape(p)
		if err != nil {
			return p
		}
		p = d
	}
	return p
}

// removeDotSegments is RFC 3986 §5.2.4, also for segments with trailing
// dots and spaces that Windows trims.
func removeDotSegments(p string) string {
	var out []string
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch strings.TrimRight(s, " ") {
		case ".":
			if i == len(segs)-1 {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if i == len(segs)-1 {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "/")
}
