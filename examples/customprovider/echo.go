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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/outpost"
)

// echoProvider is a provider of the caller's own: the two methods of
// outpost.Provider, plus outpost.MessageHandler for the core's messages.
type echoProvider struct {
	ln       net.Listener
	log      *slog.Logger
	requests *prometheus.CounterVec

	// sites maps an external host to its provider object's name. Apply
	// swaps it while requests read it, hence the atomic pointer.
	sites        atomic.Pointer[map[string]string]
	announcement atomic.Pointer[string]
}

var (
	_ outpost.Provider       = (*echoProvider)(nil)
	_ outpost.MessageHandler = (*echoProvider)(nil)
)

// newEchoProvider is the provider's factory, less the listener: the
// outpost calls it with what it lends once it knows its type.
func newEchoProvider(ln net.Listener, d outpost.Deps) (*echoProvider, error) {
	requests, err := registerMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	return &echoProvider{ln: ln, log: d.Logger, requests: requests}, nil
}

// echoObject is the part of a provider object this provider reads. Each
// provider decodes the core's JSON itself, so a new type needs no change
// in the outpost.
type echoObject struct {
	Name         string `json:"name"`
	ExternalHost string `json:"external_host"`
}

// Apply serves the good objects and refuses the others, by name, in an
// *outpost.ApplyError: one bad object must not stop the others.
func (p *echoProvider) Apply(ctx context.Context, u outpost.Update) error {
	sites := map[string]string{}
	var refused []outpost.RefusedObject
	for i, raw := range u.Providers {
		var obj echoObject
		if err := json.Unmarshal(raw, &obj); err != nil {
			name, _ := outpost.ObjectName(raw, i)
			refused = append(refused, outpost.RefusedObject{Name: name, Err: fmt.Errorf("decoding: %w", err)})
			continue
		}
		eu, err := url.Parse(obj.ExternalHost)
		if err != nil || eu.Host == "" {
			refused = append(refused, outpost.RefusedObject{Name: obj.Name,
				Err: fmt.Errorf("external host %q is not a URL", obj.ExternalHost)})
			continue
		}
		sites[strings.ToLower(eu.Host)] = obj.Name
	}
	p.sites.Store(&sites)
	p.log.Info("echo configuration applied", "outpost", u.Outpost.Name, "sites", len(sites))
	if len(refused) > 0 {
		return &outpost.ApplyError{Applied: len(sites), Refused: refused}
	}
	return nil
}

// registerMetrics uses the registerer the outpost lends, reusing a
// collector another outpost in the same process registered first.
func registerMetrics(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "echo_requests_total", Help: "Requests answered by the echo provider.",
	}, []string{"provider"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("echo: registering metrics: %w", err)
		}
		c = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return c, nil
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
	p.requests.WithLabelValues(name).Inc()
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
