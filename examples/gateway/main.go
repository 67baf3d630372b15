// Command gateway shows a custom gateway built from the proxy provider: the
// provider is one http.Handler inside the gateway's own http.Server, behind
// the gateway's own middleware (a request log and a token-bucket rate limit
// answering 429), in front of an upstream the gateway runs itself.
//
// The outpost still fetches the applications from the core and keeps them
// current; the gateway decides how requests reach the provider.
//
// Run it against a core whose proxy application's internal host is the
// gateway's upstream, for example `akoutpost testcore` with the demo
// blueprint (whose whoami application points at http://127.0.0.1:9080):
//
//	AUTHENTIK_HOST=http://127.0.0.1:9100 AUTHENTIK_TOKEN=... go run ./examples/gateway -listen 127.0.0.1:9000 -upstream 127.0.0.1:9080
//
// then open http://whoami.localhost:9000/ and log in.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "gateway `address`")
	upstream := flag.String("upstream", "127.0.0.1:9080", "`address` of the gateway's own upstream")
	rate := flag.Float64("rate", 20, "requests per second allowed after the burst")
	burst := flag.Int("burst", 40, "requests allowed at once")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	cfg := config{CoreURL: os.Getenv("AUTHENTIK_HOST"), Token: os.Getenv("AUTHENTIK_TOKEN"),
		Rate: *rate, Burst: *burst, Logger: log}
	var err error
	if cfg.Listener, err = net.Listen("tcp", *listen); err == nil {
		cfg.Upstream, err = net.Listen("tcp", *upstream)
	}
	if err == nil {
		err = run(ctx, cfg)
	}
	if err != nil {
		log.Error("gateway stopped", "err", err)
		os.Exit(1)
	}
}

type config struct {
	CoreURL, Token string
	Listener       net.Listener // the gateway; run closes it
	Upstream       net.Listener // the upstream application; run closes it
	Rate           float64      // tokens per second
	Burst          int          // bucket size
	Logger         *slog.Logger // request log and outpost logs; nil discards
}

// run serves the gateway and its upstream until ctx ends.
func run(ctx context.Context, cfg config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// No listeners in the provider's config: the gateway serves it,
	// through the outpost's handler (503 until the provider exists).
	o, err := outpost.New(outpost.Config{CoreURL: cfg.CoreURL, Token: cfg.Token, Logger: log,
		Providers: map[string]outpost.Factory{"proxy": proxy.Factory(proxy.Config{StrictHost: true})}})
	if err != nil {
		return err
	}

	// Outermost first: every request is logged, including the ones the
	// limiter refuses, and refused requests never reach the provider.
	gateway := &http.Server{
		Handler:           logRequests(log, limit(newBucket(cfg.Rate, cfg.Burst, time.Now), o.Handler())),
		ReadHeaderTimeout: 10 * time.Second,
	}
	app := &http.Server{Handler: http.HandlerFunc(upstream), ReadHeaderTimeout: 10 * time.Second}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { errs <- o.Run(ctx) })
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{gateway, cfg.Listener}, {app, cfg.Upstream}} {
		wg.Go(func() {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		})
	}
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	cancel()
	shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	gateway.Shutdown(shutdown)
	app.Shutdown(shutdown)
	wg.Wait()
	return err
}

// upstream is the application behind the gateway. The provider has already
// checked the login and set authentik's identity headers.
func upstream(w http.ResponseWriter, r *http.Request) {
	user := r.Header.Get("X-authentik-username")
	if user == "" {
		user = "anonymous (an unauthenticated path)"
	}
	fmt.Fprintf(w, "upstream: %s %s for %s\n", r.Method, r.URL.Path, user)
}

// statusRecorder remembers the status a handler wrote, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection, which the
// proxy needs for websockets and flushing.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		// Only the path: queries can carry codes and tokens.
		log.Info("request", "method", r.Method, "host", r.Host, "path", r.URL.Path,
			"status", rec.status, "duration", time.Since(start))
	})
}

// bucket is a token bucket shared by all clients: it holds at most burst
// tokens and gains rate tokens per second.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rate float64, burst int, now func() time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

func (b *bucket) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	b.tokens = min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
	b.last = t
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func limit(b *bucket, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !b.allow() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}
