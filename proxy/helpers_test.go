package proxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/outpost"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testEnv is one outpost proxy provider in front of an echo upstream, with
// a fake identity provider. Hosts ending in ".test" reach the provider.
type testEnv struct {
	t        testing.TB
	idp      *fakeIDP
	p        *Provider
	srv      *httptest.Server
	upstream *httptest.Server
	apps     []app
}

// app describes one provider object for testEnv.apply.
type app struct {
	name, mode, external, cookieDomain, skip string
	basic                                    bool
	intercept                                *bool
	clientID, cookieSecret                   string
}

func newTestEnv(t testing.TB, cfg Config, apps ...app) *testEnv {
	t.Helper()
	return newTestEnvUpstream(t, cfg, http.HandlerFunc(echo), apps...)
}

// newTestEnvDeps is newTestEnv with what an outpost would lend.
func newTestEnvDeps(t testing.TB, d outpost.Deps, cfg Config, apps ...app) *testEnv {
	t.Helper()
	return newTestEnvWith(t, d, cfg, http.HandlerFunc(echo), apps...)
}

// newTestEnvUpstream is newTestEnv with another upstream than echo.
func newTestEnvUpstream(t testing.TB, cfg Config, upstream http.Handler, apps ...app) *testEnv {
	t.Helper()
	return newTestEnvWith(t, outpost.Deps{}, cfg, upstream, apps...)
}

func newTestEnvWith(t testing.TB, d outpost.Deps, cfg Config, upstream http.Handler, apps ...app) *testEnv {
	t.Helper()
	e := &testEnv{t: t, idp: newFakeIDP(t)}
	e.upstream = httptest.NewServer(upstream)
	t.Cleanup(e.upstream.Close)
	p, err := New(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	e.srv = httptest.NewServer(p)
	t.Cleanup(e.srv.Close)
	if len(apps) > 0 {
		if err := e.apply(apps...); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	return e
}

// echo answers with what the upstream received; /ws is a websocket that
// answers each message with the user name and the message.
func echo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/stream" {
		// One line, flushed, then nothing until the client goes away: the
		// line only arrives if the proxy streams.
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		return
	}
	if r.URL.Path == "/ws" {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		user := r.Header.Get("X-Authentik-Username")
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, []byte(user+":"+string(msg))); err != nil {
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"host": r.Host, "uri": r.RequestURI, "headers": r.Header,
	})
}

type echoed struct {
	Host    string      `json:"host"`
	URI     string      `json:"uri"`
	Headers http.Header `json:"headers"`
}

func (e *testEnv) wire(a app) json.RawMessage {
	if a.mode == "" {
		a.mode = "proxy"
	}
	if a.clientID == "" {
		a.clientID = e.idp.client
	}
	if a.cookieSecret == "" {
		a.cookieSecret = "COOKIESECRET0123456789ABCDEFGHIJ"
	}
	w := map[string]any{
		"pk": int(crc32.ChecksumIEEE([]byte(a.name))), "name": a.name, "external_host": a.external, "internal_host": e.upstream.URL,
		"internal_host_ssl_validation": true, "client_id": a.clientID, "client_secret": e.idp.secret,
		"oidc_configuration": e.idp.oidcConfig(), "cookie_secret": a.cookieSecret, "certificate": nil,
		"skip_path_regex": a.skip, "basic_auth_enabled": a.basic, "basic_auth_user_attribute": "basic_user",
		"basic_auth_password_attribute": "basic_pass", "mode": a.mode, "cookie_domain": a.cookieDomain,
		"access_token_validity": 3600.0, "scopes_to_request": []string{"openid", "profile", "email", "ak_proxy"},
		"assigned_application_slug": a.name + "-slug", "assigned_application_name": a.name,
	}
	if a.intercept != nil {
		w["intercept_header_auth"] = *a.intercept
	}
	b, _ := json.Marshal(w)
	return b
}

func (e *testEnv) apply(apps ...app) error {
	e.apps = apps
	var raws []json.RawMessage
	for _, a := range apps {
		raws = append(raws, e.wire(a))
	}
	return applyTo(e, e.p, raws)
}

func applyTo(e *testEnv, p *Provider, raws []json.RawMessage) error {
	return p.Apply(context.Background(), outpost.Update{
		Outpost:   outpost.Info{Name: "test-outpost", Version: "0.0.0-test", BrowserURL: e.idp.srv.URL},
		Providers: raws,
	})
}

// transport sends every ".test" host to the provider's server.
func (e *testEnv) transport() *http.Transport {
	return &http.Transport{DialContext: redirectDial(e.srv.Listener.Addr().String())}
}

// redirectDial dials addr for every ".test" host, and other hosts as asked.
func redirectDial(addr string) func(ctx context.Context, network, a string) (net.Conn, error) {
	return func(ctx context.Context, network, a string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(a)
		if strings.HasSuffix(host, ".test") {
			a = addr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
}

// browser returns a client with a cookie jar that follows redirects.
func (e *testEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := e.transport()
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr}
}

// noFollow returns a client that does not follow redirects, sharing jar.
func (e *testEnv) noFollow(jar http.CookieJar) *http.Client {
	tr := e.transport()
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

func boolPtr(b bool) *bool { return &b }

func mustGet(t *testing.T, c *http.Client, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decodeEcho(t *testing.T, resp *http.Response) echoed {
	t.Helper()
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("decoding upstream echo (status %d): %v", resp.StatusCode, err)
	}
	return e
}

func basicB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
