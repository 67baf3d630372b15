package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/internal/syncbuf"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startGateway runs the gateway against the demo core, with the demo's
// whoami application pointing at the gateway's own upstream.
func startGateway(t *testing.T, rate float64, burst int) (get func(path string) (*http.Response, string), logs *syncbuf.Buffer) {
	t.Helper()
	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	core, err := outposttest.NewUnstartedServer(outposttest.Config{
		Blueprint: outposttest.DemoBlueprint,
		LookupEnv: func(name string) (string, bool) {
			if name == "AKOUTPOST_DEMO_UPSTREAM" {
				return "http://" + upLn.Addr().String(), true
			}
			return "", false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Start(); err != nil {
		t.Fatal(err)
	}
	logs = &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{CoreURL: core.URL(), Token: core.Token("demo-proxy"),
			Listener: gwLn, Upstream: upLn, Rate: rate, Burst: burst,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
	}()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		client.CloseIdleConnections()
		core.Close()
	})
	return func(path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+gwLn.Addr().String()+path, nil)
		req.Host = "whoami.localhost:9000"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}, logs
}

func TestGatewayRedirectsAndLogs(t *testing.T) {
	get, logs := startGateway(t, 1000, 1000)

	// Until the outpost has applied its configuration the provider knows
	// no application and answers 503 at once.
	var resp *http.Response
	for range 200 {
		if resp, _ = get("/private?x=1"); resp.StatusCode != http.StatusServiceUnavailable {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if resp.StatusCode != http.StatusFound ||
		!strings.HasPrefix(resp.Header.Get("Location"), "http://whoami.localhost:9000/outpost.goauthentik.io/start") {
		t.Fatalf("unauthenticated request: %d Location %q, want the provider's login redirect",
			resp.StatusCode, resp.Header.Get("Location"))
	}

	// The demo's skip_path_regex lets /public/ through without a login, to
	// the gateway's own upstream.
	resp, body := get("/public/info")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream: GET /public/info") {
		t.Errorf("public path: %d %q, want the upstream's answer", resp.StatusCode, body)
	}

	// The line is written once the handler returns, which may be just
	// after the client has the whole response.
	for _, want := range []string{
		`msg=request method=GET host=whoami.localhost:9000 path=/private status=302`,
		`msg=request method=GET host=whoami.localhost:9000 path=/public/info status=200`,
	} {
		if !eventually(func() bool { return strings.Contains(logs.String(), want) }) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "x=1") {
		t.Error("the request log carries the query")
	}
}

func TestGatewayRateLimit(t *testing.T) {
	// No refill: exactly burst requests pass, whatever the timing.
	const burst = 3
	get, logs := startGateway(t, 0, burst)
	for i := range burst {
		if resp, _ := get("/"); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d of the burst got 429", i+1)
		}
	}
	resp, _ := get("/")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("request after the burst: %d, want 429 with Retry-After", resp.StatusCode)
	}
	if !eventually(func() bool { return strings.Contains(logs.String(), "status=429") }) {
		t.Errorf("the refused request is not logged:\n%s", logs)
	}
}

func TestBucketRefills(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBucket(2, 1, func() time.Time { return now })
	steps := []struct {
		advance time.Duration
		want    bool
	}{
		{0, true}, {0, false}, {250 * time.Millisecond, false}, {250 * time.Millisecond, true}, {time.Hour, true}, {0, false},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got := b.allow(); got != s.want {
			t.Errorf("step %d: allow = %v, want %v", i, got, s.want)
		}
	}
}

// eventually polls ok for a few seconds.
func eventually(ok func() bool) bool {
	for range 200 {
		if ok() {
			return true
		}
		time.Sleep(25 * time.Millisecond)
	}
	return false
}
