package outpost

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-retryablehttp"
)

// ErrUnauthorized reports that the core rejected the token (HTTP 401 or 403).
// It is permanent: repeating the request with the same token will not help,
// so callers slow down instead of retrying.
var ErrUnauthorized = errors.New("the core rejected the outpost token")

// APIError is a response from the core with a status other than 2xx.
type APIError struct {
	Method     string
	Path       string // the request path, without the query
	StatusCode int
	Body       string // the start of the response body, for diagnosis
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if errors.Is(e, ErrUnauthorized) {
		msg += " (" + ErrUnauthorized.Error() + ")"
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Is makes errors.Is(err, ErrUnauthorized) true for 401 and 403.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized &&
		(e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

// ClientConfig configures a [Client]. Only URL and Token are required.
type ClientConfig struct {
	// URL is the core's URL (AUTHENTIK_HOST). Its path is a prefix: with
	// https://h/sub the API is at https://h/sub/api/v3. unix:///path/to.sock
	// reaches a core on a unix socket, as http://localhost.
	URL *url.URL
	// Token is the outpost's API token. It is sent only in the
	// Authorization header and never appears in logs or errors.
	Token string
	// TokenFunc, when set instead of Token, is asked for the token on every
	// request, so a rotated token is used without a new client.
	TokenFunc func() string
	// Insecure skips TLS verification of the core (AUTHENTIK_INSECURE). It
	// applies when HTTPClient is nil or its Transport is an *http.Transport
	// (which is then cloned, not modified).
	Insecure bool
	// HTTPClient is the base client; nil means a pooled client honouring
	// HTTP_PROXY. Its Timeout, when zero, becomes Timeout.
	HTTPClient *http.Client
	// Version and BuildHash make the User-Agent
	// goauthentik.io/outpost/<Version>[+<BuildHash>]. Version defaults to
	// "devel".
	Version, BuildHash string
	// Logger receives request retries at debug level; nil discards.
	Logger *slog.Logger
	// Timeout bounds each attempt of a request; zero means 30 s.
	Timeout time.Duration
	// RetryMax is how many times a request is retried after a connection
	// error or a 5xx; zero means 4, negative means no retries.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the jittered exponential wait
	// between attempts; zero means 500 ms and 10 s.
	RetryWaitMin, RetryWaitMax time.Duration
}

// Client is a small client for the core's API (/api/v3), authenticated
// with the outpost token. It is safe for concurrent use.
type Client struct {
	socket    string   // the unix socket the core listens on, if it does
	base      *url.URL // the core URL as configured; http://localhost for a socket
	api       string   // scheme://host/prefix/api/v3, no trailing slash
	token     func() string
	userAgent string
	transport http.RoundTripper
	rc        *retryablehttp.Client
}

// maxResponseBytes bounds a response body: a page of 100 objects is far
// smaller, and a hostile or broken core must not exhaust memory.
const maxResponseBytes = 32 << 20

// pageSize is the page size authentik's outposts ask for.
const pageSize = 100

// NewClient validates cfg and builds a client. It does no I/O.
func NewClient(cfg ClientConfig) (*Client, error) {
	socket, err := unixSocket(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("outpost client: %w", err)
	}
	if socket == "" && (cfg.URL == nil || cfg.URL.Host == "" || (cfg.URL.Scheme != "http" && cfg.URL.Scheme != "https")) {
		return nil, errors.New("outpost client: the core URL must be an absolute http, https or unix URL")
	}
	token := cfg.TokenFunc
	if token == nil {
		if cfg.Token == "" {
			return nil, errors.New("outpost client: the token is empty")
		}
		token = func() string { return cfg.Token }
	}
	if cfg.Version == "" {
		cfg.Version = "devel"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	switch {
	case cfg.RetryMax == 0:
		cfg.RetryMax = 4
	case cfg.RetryMax < 0:
		cfg.RetryMax = 0
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = 500 * time.Millisecond
	}
	if cfg.RetryWaitMax <= 0 {
		cfg.RetryWaitMax = 10 * time.Second
	}
	if cfg.RetryWaitMax < cfg.RetryWaitMin {
		cfg.RetryWaitMax = cfg.RetryWaitMin
	}

	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	if hc.Timeout == 0 {
		hc.Timeout = cfg.Timeout
	}
	hc.Transport = coreTransport(hc.Transport, cfg.Insecure)

	base := *cfg.URL
	base.User = nil
	if socket != "" {
		if hc.Transport, err = socketTransport(hc.Transport, socket); err != nil {
			return nil, fmt.Errorf("outpost client: %w", err)
		}
		base = url.URL{Scheme: "http", Host: socketHost, RawQuery: cfg.URL.RawQuery}
	}
	prefix := strings.TrimSuffix(base.EscapedPath(), "/")
	c := &Client{
		socket:    socket,
		base:      &base,
		api:       base.Scheme + "://" + base.Host + prefix + "/api/v3",
		token:     token,
		userAgent: userAgent(cfg.Version, cfg.BuildHash),
		transport: hc.Transport,
	}
	c.rc = &retryablehttp.Client{
		HTTPClient:   &hc,
		Logger:       retryLogger{logger(cfg.Logger)},
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		RetryMax:     cfg.RetryMax,
		CheckRetry:   retryPolicy,
		Backoff:      jitterBackoff,
		// Keep the last response so its status becomes an APIError rather
		// than retryablehttp's generic "giving up" text.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return c, nil
}

// userAgent is authentik's outpost User-Agent.
func userAgent(version, build string) string {
	if build != "" {
		return "goauthentik.io/outpost/" + version + "+" + build
	}
	return "goauthentik.io/outpost/" + version
}

// coreTransport applies the insecure flag to rt without modifying a
// transport the caller owns.
func coreTransport(rt http.RoundTripper, insecure bool) http.RoundTripper {
	var t *http.Transport
	switch v := rt.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
		// Every call goes to the one core, many at once under load (LDAP
		// binds, RADIUS authentications, token exchanges): the default of
		// 2 idle connections per host would open and close a connection
		// for most of them.
		t.MaxIdleConnsPerHost = coreIdleConns
		t.MaxIdleConns = max(t.MaxIdleConns, coreIdleConns)
	case *http.Transport:
		if !insecure {
			return v
		}
		t = v.Clone()
	default:
		return rt
	}
	if insecure {
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{}
		}
		t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the operator asked for it (AUTHENTIK_INSECURE)
	}
	return t
}

// coreIdleConns is how many idle connections to the core the default
// transport keeps.
const coreIdleConns = 256

// socketHost is the host of requests to a core on a unix socket: the
// socket needs none, and authentik's embedded outpost names it so too.
const socketHost = "localhost"

// unixSocket returns the socket path of a unix:///path/to.sock core URL,
// or "" for any other URL.
func unixSocket(u *url.URL) (string, error) {
	if u == nil || u.Scheme != "unix" {
		return "", nil
	}
	if (u.Host != "" && u.Host != socketHost) || !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
		return "", fmt.Errorf("core URL %q: a unix socket URL is unix:///absolute/path/to.sock", u.Redacted())
	}
	return u.Path, nil
}

// socketTransport is rt dialing the unix socket at path for every request,
// without a proxy.
func socketTransport(rt http.RoundTripper, path string) (http.RoundTripper, error) {
	t, ok := rt.(*http.Transport)
	if !ok {
		return nil, errors.New("a core on a unix socket needs an *http.Transport (or none) in HTTPClient")
	}
	t = t.Clone()
	t.Proxy = nil
	var d net.Dialer
	t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", path)
	}
	return t, nil
}

// internalAddress reports whether the core is reached at an address browsers
// cannot use: a unix socket, a loopback or unspecified address, or
// localhost. Browser-facing URLs then come from the authentik_host setting.
func (c *Client) internalAddress() bool {
	if c.socket != "" {
		return true
	}
	host := c.base.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// BaseURL returns the core URL as configured (without user info), or
// http://localhost for a core on a unix socket.
func (c *Client) BaseURL() *url.URL { u := *c.base; return &u }

// UserAgent returns the User-Agent every request carries.
func (c *Client) UserAgent() string { return c.userAgent }

// Transport returns the round tripper of the core connection (TLS settings
// included), for clients that need their own cookie jar or headers. It does
// not add the token.
func (c *Client) Transport() http.RoundTripper { return c.transport }

// Get fetches path (relative to /api/v3, e.g. "/outposts/instances/") and
// decodes the JSON response into out. Unknown fields are ignored.
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any) error {
	return c.Do(ctx, http.MethodGet, path, query, nil, out)
}

// Do sends a request with an optional JSON body (nil for none; []byte and
// json.RawMessage are sent as they are) and decodes the JSON response into
// out (nil discards it). Connection errors and 5xx responses are retried
// with jittered exponential backoff; 4xx responses are not. A non-2xx answer
// is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := c.api + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var raw any
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case json.RawMessage:
		raw = []byte(b)
	default:
		enc, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encoding request body: %w", method, path, err)
		}
		raw = enc
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, raw)
	if err != nil {
		return fmt.Errorf("%s %s: building request: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token())
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.rc.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return fmt.Errorf("%s %s: %w", method, path, c.redact(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%s %s: reading response: %w", method, path, c.redact(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Method: method, Path: c.apiPath(path), StatusCode: resp.StatusCode, Body: c.excerpt(data)}
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("%s %s: response larger than %d bytes", method, path, maxResponseBytes)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding response: %w", method, path, err)
	}
	return nil
}

// List fetches every page of a paginated list, calling each for every item
// of "results" in order. It asks for page_size=100 (unless query sets it)
// and follows pagination.next until it is 0. A page that points backwards
// ends the listing with an error instead of looping.
func (c *Client) List(ctx context.Context, path string, query url.Values, each func(json.RawMessage) error) error {
	q := url.Values{}
	for k, v := range query {
		q[k] = append([]string(nil), v...)
	}
	if q.Get("page_size") == "" {
		q.Set("page_size", strconv.Itoa(pageSize))
	}
	var page struct {
		Pagination struct {
			Next float64 `json:"next"`
		} `json:"pagination"`
		Results []json.RawMessage `json:"results"`
	}
	for n := 1; ; {
		q.Set("page", strconv.Itoa(n))
		page.Pagination.Next = 0
		page.Results = nil
		if err := c.Get(ctx, path, q, &page); err != nil {
			return err
		}
		for _, item := range page.Results {
			if err := each(item); err != nil {
				return err
			}
		}
		next := int(page.Pagination.Next)
		if next <= 0 {
			return nil
		}
		if next <= n {
			return fmt.Errorf("GET %s: page %d points to page %d as next", path, n, next)
		}
		n = next
	}
}

// apiPath is the path the request went to, as the server saw it.
func (c *Client) apiPath(path string) string {
	u, err := url.Parse(c.api + path)
	if err != nil {
		return path
	}
	return u.Path
}

// excerpt keeps the start of an error body, valid UTF-8 on one line, with
// the token removed should a server ever echo it.
func (c *Client) excerpt(data []byte) string {
	const max = 200
	s := strings.TrimSpace(string(data))
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	s = strings.Join(strings.Fields(s), " ")
	return c.redactString(s)
}

func (c *Client) redactString(s string) string {
	if token := c.token(); token != "" {
		s = strings.ReplaceAll(s, token, "[redacted]")
	}
	return s
}

// redact keeps err's chain (errors.Is still works) unless its text would
// carry the token, in which case only the redacted text remains.
func (c *Client) redact(err error) error {
	if token := c.token(); token != "" && strings.Contains(err.Error(), token) {
		return errors.New(c.redactString(err.Error()))
	}
	return err
}

// Token returns the token the client sends now. Providers that talk to
// the core on their own (the flow executor) ask for it on every request,
// so a rotated token reaches them too.
func (c *Client) Token() string { return c.token() }

// retryPolicy retries connection errors and 5xx (and 429, which asks for
// it), never other 4xx, and stops at once when the context ended or the
// failure is one that repeating cannot fix (a bad certificate).
func retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		var unknownAuthority x509.UnknownAuthorityError
		var hostname x509.HostnameError
		var invalid x509.CertificateInvalidError
		var verify *tls.CertificateVerificationError
		if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
			errors.As(err, &invalid) || errors.As(err, &verify) {
			return false, nil
		}
		return true, nil
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return true, nil
	}
	return false, nil
}

// jitterBackoff is exponential backoff with jitter: attempt n waits a random
// duration in [d/2, d) with d = min·2ⁿ capped at max, so replicas retrying
// against a recovering core spread out. A Retry-After on 429/503 is
// honoured up to max.
func jitterBackoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			return capDuration(time.Duration(s)*time.Second, max)
		}
	}
	return jitter(expDuration(min, max, attempt))
}

// expDuration is min·2ⁿ capped at max, without overflow.
func expDuration(min, max time.Duration, n int) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	return capDuration(d, max)
}

func capDuration(d, max time.Duration) time.Duration {
	if d > max {
		return max
	}
	return d
}

// jitter returns a random duration in [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}

// retryLogger adapts slog to retryablehttp's LeveledLogger at debug level:
// the client's callers log failures themselves, with context. retryablehttp
// logs only method and URL (API URLs carry no secrets), never headers.
type retryLogger struct{ l *slog.Logger }

func (r retryLogger) Error(msg string, kv ...any) { r.l.Debug(msg, kv...) }
func (r retryLogger) Info(msg string, kv ...any)  { r.l.Debug(msg, kv...) }
func (r retryLogger) Debug(msg string, kv ...any) { r.l.Debug(msg, kv...) }
func (r retryLogger) Warn(msg string, kv ...any)  { r.l.Debug(msg, kv...) }
