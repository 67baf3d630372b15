// Command embedded shows how a host program embeds outposts the way the
// authentik server embeds its own: the host owns the Prometheus registry,
// the HTTP mux and the lifecycle, and the outposts plug into them.
//
//   - One registry: the host's metrics and every outpost's
//     authentik_outpost_* series are served side by side on one /metrics.
//   - One listener: each request the outposts claim (an application's host,
//     a trusted X-Forwarded-Host, a forward_domain cookie domain, the
//     /outpost.goauthentik.io/ endpoints on any host, so a reverse proxy can
//     point forward auth at the host's own address) goes to its outpost;
//     everything else reaches the host's own routes.
//   - One lifecycle: the outposts run under the host's context, and
//     cancelling it (Ctrl-C) stops the HTTP server and every outpost.
//   - Several outposts: each token in AUTHENTIK_TOKEN (comma-separated)
//     is a proxy outpost of its own, all in this one process.
//
// Run it against a core, for example the test core of `akoutpost testcore`:
//
//	AUTHENTIK_HOST=http://127.0.0.1:9100 AUTHENTIK_TOKEN=tok1,tok2 go run ./examples/embedded -listen 127.0.0.1:9000
//
// then try `curl -H 'Host: whoami.localhost:9000' http://127.0.0.1:9000/`
// (a redirect to log in), `curl http://127.0.0.1:9000/` (the host's own
// page) and `curl http://127.0.0.1:9000/metrics`.
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
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/metrics"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "HTTP `address` of the host")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	cfg := config{
		CoreURL:  os.Getenv("AUTHENTIK_HOST"),
		Tokens:   strings.Split(os.Getenv("AUTHENTIK_TOKEN"), ","),
		Listener: ln,
		Logger:   log,
	}
	if err := run(ctx, cfg); err != nil {
		log.Error("host stopped", "err", err)
		os.Exit(1)
	}
}

// config is what the host needs; main fills it from the environment and
// tests fill it with the test core's URL and tokens.
type config struct {
	CoreURL  string
	Tokens   []string     // one proxy outpost per token
	Listener net.Listener // the host's only HTTP listener; run closes it
	Logger   *slog.Logger
}

// run serves the host until ctx ends, then stops the server and the
// outposts and returns once all of them have.
func run(ctx context.Context, cfg config) error {
	// The host's registry, with a metric of the host's own. The outposts
	// register into it too, so one /metrics shows everything.
	reg := prometheus.NewRegistry()
	hostRequests := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "host_requests_total", Help: "Requests served by the host's own routes.",
	})
	reg.MustRegister(hostRequests)

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		hostRequests.Inc()
		fmt.Fprintln(w, "hello from the host")
	})
	mux.Handle(metrics.MetricsPath, metrics.Handler(reg))

	var outposts []*outpost.Outpost
	for _, token := range cfg.Tokens {
		o, err := outpost.New(outpost.Config{
			CoreURL: cfg.CoreURL, Token: token,
			// No listeners: the host's server serves the provider.
			Providers:  map[string]outpost.Factory{"proxy": proxy.Factory(proxy.Config{StrictHost: true})},
			Registerer: reg, // no MetricsListener: the host serves /metrics
			Logger:     cfg.Logger,
		})
		if err != nil {
			return fmt.Errorf("embedded: outpost %d: %w", len(outposts)+1, err)
		}
		outposts = append(outposts, o)
	}

	// The outposts' applications change with every refresh, so the
	// decision is made per request. An outpost still starting has no
	// provider yet and claims nothing.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		providers := make([]*proxy.Provider, 0, len(outposts))
		for _, o := range outposts {
			if p, ok := o.Provider().(*proxy.Provider); ok {
				providers = append(providers, p)
			}
		}
		if p := proxy.Route(r, providers...); p != nil {
			p.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(outposts)+1)
	for _, o := range outposts {
		wg.Go(func() { errs <- o.Run(ctx) })
	}
	wg.Go(func() {
		if err := srv.Serve(cfg.Listener); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("embedded: serve: %w", err)
		}
	})

	// The first failure (or the host's own shutdown) stops everything.
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	cancel()
	shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	if serr := srv.Shutdown(shutdown); err == nil {
		err = serr
	}
	wg.Wait()
	return err
}
