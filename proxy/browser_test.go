package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
	"github.com/akoutpost/akoutpost/proxy"
)

// TestBrowserLogin drives Debian's headless Chromium through the whole
// login of two applications on one outpost: a proxy-mode app served by the
// outpost itself, and a forward_single app behind a real nginx configured
// with the documented auth_request snippet (testdata/nginx.conf.tmpl).
// Each time the browser is sent from the app to the core's login form,
// fills in username and password, comes back through the callback and
// must land on the page it asked for, showing the upstream's echo of the
// identity headers. Cookies, SameSite and redirects are thus checked by a
// real browser rather than by Go's cookie jar.
func TestBrowserLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and nginx")
	}
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		testservers.Unavailable(t, "chromium not installed (apt-get install chromium)")
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		testservers.Unavailable(t, "nginx not installed (apt-get install nginx)")
	}

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"uri": r.RequestURI, "headers": r.Header})
	}))
	t.Cleanup(upstream.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	outpostAddr := ln.Addr().String()
	nginxAddr := startNginx(t, "nginx.conf.tmpl", map[string]string{
		"UPSTREAM": upstream.Listener.Addr().String(), "OUTPOST": outpostAddr,
	})
	_, nginxPort, _ := net.SplitHostPort(nginxAddr)
	appURL := "http://app.localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	fwdURL := "http://fwd.localhost:" + nginxPort
	t.Setenv("AKOUTPOST_BROWSER_PROXY_URL", appURL)
	t.Setenv("AKOUTPOST_BROWSER_FORWARD_URL", fwdURL)
	t.Setenv("AKOUTPOST_BROWSER_UPSTREAM", upstream.URL)

	bp, err := os.ReadFile("testdata/browser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	core, err := outposttest.NewServer(bp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	o, err := outpost.New(outpost.Config{
		CoreURL: core.URL(), Token: core.Token("proxy-outpost"), Providers: map[string]outpost.Factory{"proxy": proxy.Factory(proxy.Config{HTTPListener: ln})}, UpdateJitter: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopOutpost := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(runCtx) }()
	t.Cleanup(func() {
		stopOutpost()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("outpost Run: %v", err)
		}
	})
	waitConfigured(t, outpostAddr, strings.TrimPrefix(appURL, "http://"))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	var logs strings.Builder
	browser, closeBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(f string, a ...any) {
		fmt.Fprintf(&logs, f+"\n", a...)
	}))
	defer closeBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}

	for _, tc := range []struct{ name, start, wantURI string }{
		{name: "proxy mode", start: appURL + "/hello?x=1", wantURI: "/hello?x=1"},
		{name: "forward auth behind nginx", start: fwdURL + "/page?y=2", wantURI: "/page?y=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh browser context per app, so neither login is skipped
			// by the core session cookie of the other.
			browser, closeTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
			defer closeTab()
			var text string
			err := chromedp.Do(browser,
				chromedp.Navigate(tc.start),
				chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
			)
			loc, _ := chromedp.Run(browser, chromedp.Location())
			if err != nil {
				t.Fatalf("opening %s: %v\n%s", tc.start, err, logs.String())
			}
			if !strings.HasPrefix(loc, core.URL()) {
				t.Fatalf("%s led to %s, not to the core's login", tc.start, loc)
			}
			err = chromedp.Do(browser,
				chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), "alice"),
				chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "alice-password"),
				chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
			)
			if err != nil {
				t.Fatalf("submitting the login form: %v", err)
			}
			// The browser now follows the core's redirects and the
			// callback's; wait until it is back on the application.
			var page struct {
				URI     string      `json:"uri"`
				Headers http.Header `json:"headers"`
			}
			origin := tc.start[:len("http://")+strings.Index(tc.start[len("http://"):], "/")]
			for i := 0; ; i++ {
				var err error
				if loc, err = chromedp.Run(browser, chromedp.Location()); err == nil && strings.HasPrefix(loc, origin) {
					text, err = chromedp.Run(browser, chromedp.Text(chromedp.CSS("body")))
					if err == nil && json.Unmarshal([]byte(text), &page) == nil {
						break
					}
				}
				if i > 600 {
					t.Fatalf("browser did not come back to the app: at %s showing %.500s", loc, text)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if loc != tc.start || page.URI != tc.wantURI {
				t.Errorf("landed on %s (upstream saw %q), want %s", loc, page.URI, tc.start)
			}
			for h, want := range map[string]string{
				"X-Authentik-Username": "alice", "X-Authentik-Email": "alice@example.com",
				"X-Authentik-Name": "Alice Example", "X-Authentik-Groups": "staff",
			} {
				if got := page.Headers.Get(h); got != want {
					t.Errorf("upstream saw %s %q, want %q", h, got, want)
				}
			}
			if page.Headers.Get("X-Authentik-Uid") == "" {
				t.Errorf("upstream saw no X-Authentik-Uid: %v", page.Headers)
			}
		})
	}
	if err := chromedp.Cancel(browser); err != nil {
		t.Logf("closing the browser: %v", err)
	}
}

// waitConfigured waits until the outpost at addr serves host, i.e. has
// loaded its first configuration from the core.
func waitConfigured(t *testing.T, addr, host string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	for i := 0; ; i++ {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = host
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusFound {
				return
			}
		}
		if i > 1200 {
			t.Fatalf("the outpost on %s never served %s", addr, host)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
