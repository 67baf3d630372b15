package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/outpost"
)

// echoProvider is a provider of the caller's own: the three methods of
// outpost.Provider, plus outpost.MessageHandler for the core's messages.
type echoProvider struct {
	typ string
	ln  net.Listener
	log *slog.Logger

	// sites maps an external host to its provider object's name. Apply
	// swaps it while requests read it, hence the atomic pointer.
	sites        atomic.Pointer[map[string]string]
	announcement atomic.Pointer[string]

	metricsOnce sync.Once
	requests    atomic.Pointer[prometheus.CounterVec]
}

var (
	_ outpost.Provider       = (*echoProvider)(nil)
	_ outpost.MessageHandler = (*echoProvider)(nil)
)

func newEchoProvider(typ string, ln net.Listener, log *slog.Logger) *echoProvider {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &echoProvider{typ: typ, ln: ln, log: log}
}

func (p *echoProvider) Type() string { return p.typ }

// echoObject is the part of a provider object this provider reads. Each
// provider decodes the core's JSON itself, so a new type needs no change
// in the outpost.
type echoObject struct {
	Name         string `json:"name"`
	ExternalHost string `json:"external_host"`
}

func (p *echoProvider) Apply(ctx context.Context, u outpost.Update) error {
	p.metricsOnce.Do(func() { p.registerMetrics(u.Env.Registerer) })
	sites := map[string]string{}
	var errs []error
	for _, raw := range u.Providers {
		var obj echoObject
		if err := json.Unmarshal(raw, &obj); err != nil {
			errs = append(errs, fmt.Errorf("echo: provider object: %w", err))
			continue
		}
		eu, err := url.Parse(obj.ExternalHost)
		if err != nil || eu.Host == "" {
			// One bad object must not stop the others from being served.
			errs = append(errs, fmt.Errorf("echo: provider %q: external host %q is not a URL", obj.Name, obj.ExternalHost))
			continue
		}
		sites[strings.ToLower(eu.Host)] = obj.Name
	}
	p.sites.Store(&sites)
	u.Env.Logger.Info("echo configuration applied", "outpost", u.Outpost.Name, "sites", len(sites))
	return errors.Join(errs...)
}

// registerMetrics uses the registerer the outpost lends, reusing a
// collector another outpost in the same process registered first.
func (p *echoProvider) registerMetrics(reg prometheus.Registerer) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "echo_requests_total", Help: "Requests answered by the echo provider.",
	}, []string{"provider"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			p.log.Warn("echo metrics not registered", "err", err)
			return
		}
		c = are.ExistingCollector.(*prometheus.CounterVec)
	}
	p.requests.Store(c)
}

// HandleMessage keeps the announcement of a provider-specific message.
func (p *echoProvider) HandleMessage(ctx context.Context, m outpost.Message) error {
	if m.Instruction != outpost.InstructionProviderSpecific {
		return nil
	}
	if s, ok := m.Args["announcement"].(string); ok {
		p.announcement.Store(&s)
	}
	return nil
}

func (p *echoProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var name string
	if sites := p.sites.Load(); sites != nil {
		name = (*sites)[strings.ToLower(r.Host)]
	}
	if name == "" {
		http.Error(w, "no echo site for this host", http.StatusNotFound)
		name = "other" // bounded label: unknown hosts share one value
	} else {
		fmt.Fprintf(w, "echo %s: %s %s\n", name, r.Method, r.URL.Path)
		if a := p.announcement.Load(); a != nil {
			fmt.Fprintf(w, "announcement: %s\n", *a)
		}
	}
	if c := p.requests.Load(); c != nil {
		c.WithLabelValues(name).Inc()
	}
}

// Serve serves the listener until ctx ends, then drains for a bounded time.
func (p *echoProvider) Serve(ctx context.Context) error {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(p.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("echo: serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	<-errc // http.ErrServerClosed once Serve has returned
	return err
}
