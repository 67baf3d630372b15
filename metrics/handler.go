package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PingPath is authentik's health endpoint. It answers 204 with an empty body
// for as long as the process serves HTTP; the command's healthcheck asks it.
const PingPath = "/outpost.goauthentik.io/ping"

// MetricsPath is where the Prometheus exposition is served.
const MetricsPath = "/metrics"

// shutdownGrace bounds how long Serve waits for in-flight scrapes after its
// context ends.
const shutdownGrace = 5 * time.Second

// Handler serves the exposition of g on [MetricsPath] and the health answer on
// [PingPath]; every other path is 404. A nil g serves an empty exposition.
func Handler(g prometheus.Gatherer) http.Handler {
	if g == nil {
		g = prometheus.NewRegistry()
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		// A collector failing must not hide the families that worked: a
		// partial scrape is more useful to an operator than a 500.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc(PingPath, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// Serve serves [Handler](g) on ln until ctx ends, then shuts down gracefully
// (in-flight scrapes get a few seconds) and returns nil. It returns an error
// only when serving failed for another reason. Serve closes ln.
func Serve(ctx context.Context, ln net.Listener, g prometheus.Gatherer) error {
	if ln == nil {
		return errors.New("metrics: nil listener")
	}
	srv := &http.Server{
		Handler:           Handler(g),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serving on %s: %w", ln.Addr(), err)
	}
	return nil
}
