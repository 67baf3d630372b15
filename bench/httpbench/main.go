// Command httpbench holds the small HTTP programs of bench/proxy.sh and
// bench/nginx.sh, so the scripts need nothing but Go, wrk and nginx:
//
//	httpbench ports N                          print N free loopback ports
//	httpbench upstream -listen ADDR            the small upstream both sides proxy to
//	httpbench revproxy -listen ADDR -upstream URL [-identity-headers] [-tls]
//	                                           the baseline: httputil.ReverseProxy, tuned pool, no auth
//	                                           (-tls: HTTPS with h2 and http/1.1, self-signed)
//	httpbench ok -listen ADDR                  answers 200 at once (nginx auth_request baseline)
//	httpbench login -connect ADDR -url URL -user U -password P
//	                                           logs in through the outpost, prints the Cookie header
//	httpbench load -connect ADDR -url URL [-proto h2|http/1.1] [-conns N] [-streams M] [-duration D] [-cookie C]
//	                                           a Go load generator over HTTPS, for HTTP/2 (wrk has none)
//
// The servers run until they are signalled.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: httpbench ports|upstream|revproxy|ok|login|load [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "ports":
		err = ports(args)
	case "upstream":
		err = serve(args, upstreamHandler)
	case "ok":
		err = serve(args, okHandler)
	case "revproxy":
		err = revproxy(args)
	case "login":
		err = login(args)
	case "load":
		err = load(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
}

// ports prints free loopback ports for the programs that take an address
// (akoutpost run, nginx). They were free a moment ago; on a benchmark
// machine nothing else races for them.
func ports(args []string) error {
	n := 1
	if len(args) > 0 {
		if _, err := fmt.Sscan(args[0], &n); err != nil {
			return fmt.Errorf("ports: count %q: %w", args[0], err)
		}
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		// All held open at once so that no port is returned twice.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("ports: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	}
	fmt.Println(strings.Join(out, " "))
	return nil
}

var upstreamBody = []byte("hello from the upstream\n")

// upstreamHandler is a small application: a short fixed body, so the
// figures measure the proxies, not the application.
func upstreamHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(upstreamBody)
}

func okHandler(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

func serve(args []string, h http.HandlerFunc) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:0", "address to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return listenAndServe(*addr, h)
}

func listenAndServe(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

// revproxy is the baseline of bench/proxy.sh: the standard library's
// reverse proxy with an idle pool large enough that no connection to the
// upstream is ever closed for lack of room, and pooled copy buffers.
func revproxy(args []string) error {
	fs := flag.NewFlagSet("revproxy", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:0", "address to serve on")
	upstream := fs.String("upstream", "", "upstream URL")
	identity := fs.Bool("identity-headers", false,
		"also send authentik's identity headers (fixed values the size of the bench user's) and X-Forwarded-*: "+
			"what an authenticated request costs the upstream, with no authentication (a reference, not the baseline)")
	useTLS := fs.Bool("tls", false, "serve HTTPS with h2 and http/1.1 in ALPN and a self-signed certificate, as the outpost's HTTPS listener")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		return fmt.Errorf("revproxy: -upstream %q is not a URL", *upstream)
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			if *identity {
				for k, v := range identityHeaders {
					pr.Out.Header[k] = v
				}
				pr.SetXForwarded()
			}
		},
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     90 * time.Second,
		},
		BufferPool: newBufferPool(),
	}
	if *useTLS {
		return listenAndServeTLS(*addr, rp)
	}
	return listenAndServe(*addr, rp)
}

// identityHeaders are the headers the outpost sends for bench/proxy.sh's
// user, with values of the same lengths (the token is 1,051 bytes), shared
// by all requests as the outpost shares a session's.
var identityHeaders = http.Header{
	"X-Authentik-Username":      {"bench"},
	"X-Authentik-Groups":        {""},
	"X-Authentik-Entitlements":  {""},
	"X-Authentik-Email":         {"bench@example.com"},
	"X-Authentik-Name":          {"Bench User"},
	"X-Authentik-Uid":           {strings.Repeat("0123456789abcdef", 4)},
	"X-Authentik-Jwt":           {strings.Repeat("x", 1051)},
	"X-Authentik-Meta-Jwks":     {"http://127.0.0.1:40000/application/o/app/jwks/"},
	"X-Authentik-Meta-Outpost":  {"bench-proxy"},
	"X-Authentik-Meta-Provider": {"app"},
	"X-Authentik-Meta-App":      {"app"},
	"X-Authentik-Meta-Version":  {"goauthentik.io/outpost/2026.2.3"},
}

// bufferPool recycles the 32 KiB copy buffers ReverseProxy otherwise
// allocates per request.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(s []byte) { b.p.Put(&s) }

// login runs the browser's OIDC login through the outpost (or nginx in
// front of it) and the test core with a cookie jar, then prints the Cookie
// header that makes -url answer 200, for wrk's -H.
func login(args []string) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	connect := fs.String("connect", "", "address that serves -url's host (the outpost or nginx)")
	target := fs.String("url", "", "application URL to open, e.g. http://app.bench/")
	user := fs.String("user", "", "username")
	password := fs.String("password", "", "password")
	wait := fs.Duration("wait", 30*time.Second, "how long the outpost may take to learn its configuration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" || *connect == "" {
		return errors.New("login: -url and -connect are required")
	}
	// The application's host is not in DNS: dial -connect for it, and the
	// test core's own address for the rest of the flow.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, _, _ := net.SplitHostPort(addr); h == u.Hostname() {
			addr = *connect
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	tr := &http.Transport{DialContext: dial}
	defer tr.CloseIdleConnections()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}

	// Until the outpost has its configuration it answers 400 (no app for
	// the host), and nginx 500; the login page means the flow is running.
	var page *http.Response
	var body []byte
	deadline := time.Now().Add(*wait)
	for {
		page, body, err = get(c, *target, "")
		if err == nil && strings.Contains(string(body), `name="password"`) {
			break
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("status %d at %s: %.200s", page.StatusCode, page.Request.URL, body)
			}
			return fmt.Errorf("login: no login page: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	form := url.Values{"username": {*user}, "password": {*password}, "next": {page.Request.URL.Query().Get("next")}}
	resp, err := c.PostForm(page.Request.URL.String(), form)
	if err != nil {
		return fmt.Errorf("login: posting the form: %w", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Host != u.Host {
		return fmt.Errorf("login: ended with status %d at %s: %.200s", resp.StatusCode, resp.Request.URL, body)
	}

	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	header := strings.Join(parts, "; ")
	// The header alone, without the jar or redirects, must reach the
	// upstream: otherwise wrk would measure redirects.
	plain := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, body, err = get(plain, *target, header)
	if err != nil {
		return fmt.Errorf("login: checking the cookie: %w", err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != string(upstreamBody) {
		return fmt.Errorf("login: the cookie got status %d: %.200s", resp.StatusCode, body)
	}
	fmt.Println(header)
	return nil
}

func get(c *http.Client, target, cookie string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return nil, nil, err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}
