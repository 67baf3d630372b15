package outpost_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
)

const clientToken = "very-secret-token-xyz"

func newTestClient(t *testing.T, rawURL string) *outpost.Client {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: clientToken, Version: "1.2.3",
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientRetries(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		wantCalls int32
		wantAuth  bool
	}{
		{"500 is retried", http.StatusInternalServerError, 5, false},
		{"503 is retried", http.StatusServiceUnavailable, 5, false},
		{"400 is not", http.StatusBadRequest, 1, false},
		{"404 is not", http.StatusNotFound, 1, false},
		{"401 is permanent", http.StatusUnauthorized, 1, true},
		{"403 is permanent", http.StatusForbidden, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(c.status)
				fmt.Fprintf(w, `{"detail":"nope %s"}`, r.Header.Get("Authorization"))
			}))
			defer srv.Close()
			log, logs := newLogger(outpost.LevelTrace)
			u, _ := url.Parse(srv.URL)
			cl, err := outpost.NewClient(outpost.ClientConfig{URL: u, Token: clientToken, Logger: log,
				RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			err = cl.Get(context.Background(), "/x/", nil, nil)
			if strings.Contains(logs.String(), clientToken) {
				t.Errorf("the logs carry the token: %s", logs)
			}
			if c.wantCalls > 1 && !strings.Contains(logs.String(), "retrying") {
				t.Errorf("retries were not logged at debug: %s", logs)
			}
			var apiErr *outpost.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != c.status || apiErr.Path != "/api/v3/x/" {
				t.Fatalf("Get: %v, want an APIError with status %d", err, c.status)
			}
			if got := calls.Load(); got != c.wantCalls {
				t.Errorf("%d calls, want %d", got, c.wantCalls)
			}
			if errors.Is(err, outpost.ErrUnauthorized) != c.wantAuth {
				t.Errorf("errors.Is(ErrUnauthorized) = %v, want %v", !c.wantAuth, c.wantAuth)
			}
			// The server echoed the Authorization header into its body; the
			// error must still not carry the token.
			if strings.Contains(err.Error(), clientToken) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestClientRecoversAfter5xx(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, `{"a":1,"unknown":{"nested":true}}`)
	}))
	defer srv.Close()
	var out struct{ A int }
	if err := newTestClient(t, srv.URL).Get(context.Background(), "/x/", nil, &out); err != nil || out.A != 1 {
		t.Fatalf("Get: %v, %+v", err, out)
	}
}

func TestClientConnectionErrorHidesToken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	err := newTestClient(t, u).Get(context.Background(), "/x/", nil, nil)
	if err == nil || strings.Contains(err.Error(), clientToken) || errors.Is(err, outpost.ErrUnauthorized) {
		t.Fatalf("Get against a closed port: %v", err)
	}
}

func TestClientRequestShape(t *testing.T) {
	cases := []struct {
		name, base, want string
	}{
		{"root", "/", "/api/v3/core/users/"},
		{"no slash", "", "/api/v3/core/users/"},
		{"sub-path", "/sub/", "/sub/api/v3/core/users/"},
		{"sub-path without slash", "/sub", "/sub/api/v3/core/users/"},
		{"nested", "/a/b/", "/a/b/api/v3/core/users/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got *http.Request
			var body []byte
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Clone(context.Background())
				body = make([]byte, r.ContentLength)
				r.Body.Read(body)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			cl := newTestClient(t, srv.URL+c.base)
			err := cl.Do(context.Background(), http.MethodPost, "/core/users/", url.Values{"q": {"x y"}},
				map[string]string{"k": "v"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.URL.Path != c.want || got.URL.Query().Get("q") != "x y" {
				t.Errorf("request went to %s", got.URL)
			}
			if got.Header.Get("Authorization") != "Bearer "+clientToken {
				t.Errorf("Authorization %q", got.Header.Get("Authorization"))
			}
			if ua := got.Header.Get("User-Agent"); ua != "goauthentik.io/outpost/1.2.3" || ua != cl.UserAgent() {
				t.Errorf("User-Agent %q", ua)
			}
			if string(body) != `{"k":"v"}` || got.Header.Get("Content-Type") != "application/json" {
				t.Errorf("body %q, type %q", body, got.Header.Get("Content-Type"))
			}
		})
	}
}

func TestClientList(t *testing.T) {
	const total = 250
	var pages []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		pages = append(pages, r.URL.Query().Get("page")+"/"+r.URL.Query().Get("page_size")+"/"+r.URL.Query().Get("f"))
		var results []int
		for i := (n - 1) * size; i < total && i < n*size; i++ {
			results = append(results, i)
		}
		next := 0
		if n*size < total {
			next = n + 1
		}
		json.NewEncoder(w).Encode(map[string]any{"pagination": map[string]any{"next": next, "current": n}, "results": results})
	}))
	defer srv.Close()
	var got []int
	err := newTestClient(t, srv.URL).List(context.Background(), "/core/users/", url.Values{"f": {"1"}}, func(m json.RawMessage) error {
		var i int
		if err := json.Unmarshal(m, &i); err != nil {
			return err
		}
		got = append(got, i)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total || got[total-1] != total-1 {
		t.Errorf("got %d items", len(got))
	}
	if want := "1/100/1 2/100/1 3/100/1"; strings.Join(pages, " ") != want {
		t.Errorf("pages %v, want %s", pages, want)
	}
}

// A core whose pagination never ends, or points backwards, must not loop
// forever (authentik's paginator re-requests a failing page in a tight loop).
func TestClientListBackwardsNext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"pagination":{"next":1},"results":[1]}`)
	}))
	defer srv.Close()
	err := newTestClient(t, srv.URL).List(context.Background(), "/x/", nil, func(json.RawMessage) error { return nil })
	if err == nil {
		t.Fatal("List followed a next page pointing backwards")
	}
}

func TestNewClientValidates(t *testing.T) {
	u, _ := url.Parse("http://h/")
	rel, _ := url.Parse("/x")
	cases := []struct {
		name string
		cfg  outpost.ClientConfig
	}{
		{"nil url", outpost.ClientConfig{Token: "t"}},
		{"relative", outpost.ClientConfig{URL: rel, Token: "t"}},
		{"no token", outpost.ClientConfig{URL: u}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := outpost.NewClient(c.cfg); err == nil {
				t.Fatal("NewClient accepted an invalid config")
			}
		})
	}
}

// The default transport keeps enough idle connections to the core for
// concurrent binds and authentications: Go's default of 2 per host made
// most core calls under load open a new connection.
func TestClientKeepsIdleConnections(t *testing.T) {
	c, err := outpost.NewClient(outpost.ClientConfig{URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.Transport().(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", c.Transport())
	}
	if tr.MaxIdleConnsPerHost < 64 {
		t.Errorf("MaxIdleConnsPerHost = %d", tr.MaxIdleConnsPerHost)
	}
}
