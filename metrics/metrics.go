package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// OtherHost is the label value for a request host that is not one of the
// configured application hosts. Clients choose the Host header, so using it
// verbatim would let anyone create series without bound.
const OtherHost = "other"

// Outpost holds the core gauges every outpost exports.
type Outpost struct {
	// Info is always 1; its labels identify the running instance.
	// Labels: outpost_name, outpost_type, uuid, version, build.
	Info *prometheus.GaugeVec
	// Connection is 1 while the control channel is up, 0 otherwise.
	// Labels: outpost_name, outpost_type, uuid.
	Connection *prometheus.GaugeVec
	// LastUpdate is the Unix time of the last successful refresh.
	// Labels: outpost_name, outpost_type, uuid, version, build.
	LastUpdate *prometheus.GaugeVec
}

// NewOutpost registers the core gauges on reg, or reuses identical ones
// already registered there (a second outpost on the same registry).
func NewOutpost(reg prometheus.Registerer) (*Outpost, error) {
	info := []string{"outpost_name", "outpost_type", "uuid", "version", "build"}
	var m Outpost
	var err error
	if m.Info, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authentik_outpost_info",
		Help: "Outpost info",
	}, info)); err != nil {
		return nil, err
	}
	if m.Connection, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authentik_outpost_connection",
		Help: "Connection status",
	}, []string{"outpost_name", "outpost_type", "uuid"})); err != nil {
		return nil, err
	}
	if m.LastUpdate, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authentik_outpost_last_update",
		Help: "Time of last update",
	}, info)); err != nil {
		return nil, err
	}
	return &m, nil
}

// Forget deletes every series of the instance uuid, so an outpost that
// stopped does not leave stale gauges on a registry that outlives it.
func (m *Outpost) Forget(uuid string) {
	l := prometheus.Labels{"uuid": uuid}
	m.Info.DeletePartialMatch(l)
	m.Connection.DeletePartialMatch(l)
	m.LastUpdate.DeletePartialMatch(l)
}

// Proxy holds the proxy provider's histograms.
type Proxy struct {
	// RequestDuration times every request the proxy answers.
	// Labels: outpost_name, method, host (a configured host or [OtherHost]),
	// type ("app", "ping" or "static").
	RequestDuration *prometheus.HistogramVec
	// UpstreamResponseDuration times upstream round trips in proxy mode.
	// Labels: outpost_name, method, scheme, host, upstream_host (both hosts
	// from configuration, never from the client).
	UpstreamResponseDuration *prometheus.HistogramVec
}

// NewProxy registers the proxy histograms on reg, reusing identical ones.
func NewProxy(reg prometheus.Registerer) (*Proxy, error) {
	var m Proxy
	var err error
	if m.RequestDuration, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authentik_outpost_proxy_request_duration_seconds",
		Help: "Proxy request latencies in seconds",
	}, []string{"outpost_name", "method", "host", "type"})); err != nil {
		return nil, err
	}
	if m.UpstreamResponseDuration, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authentik_outpost_proxy_upstream_response_duration_seconds",
		Help: "Proxy upstream response latencies in seconds",
	}, []string{"outpost_name", "method", "scheme", "host", "upstream_host"})); err != nil {
		return nil, err
	}
	return &m, nil
}

// LDAP holds the LDAP provider's metrics.
type LDAP struct {
	// RequestDuration times LDAP operations.
	// Labels: outpost_name, type (bind, search, ...), app (a provider's
	// application slug, or "" before one is known).
	RequestDuration *prometheus.HistogramVec
	// RequestsRejected counts refused operations.
	// Labels: outpost_name, type, reason (a fixed vocabulary chosen by the
	// provider, never error text), app.
	RequestsRejected *prometheus.CounterVec
}

// NewLDAP registers the LDAP metrics on reg, reusing identical ones.
func NewLDAP(reg prometheus.Registerer) (*LDAP, error) {
	var m LDAP
	var err error
	if m.RequestDuration, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authentik_outpost_ldap_request_duration_seconds",
		Help: "LDAP request latencies in seconds",
	}, []string{"outpost_name", "type", "app"})); err != nil {
		return nil, err
	}
	if m.RequestsRejected, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authentik_outpost_ldap_requests_rejected_total",
		Help: "Total number of rejected LDAP requests",
	}, []string{"outpost_name", "type", "reason", "app"})); err != nil {
		return nil, err
	}
	return &m, nil
}

// Flow holds the flow executor's timings.
type Flow struct {
	// GetSeconds times fetching a challenge. Labels: stage (the challenge
	// component, a fixed vocabulary), flow (the flow slug, from configuration).
	GetSeconds *prometheus.HistogramVec
	// PostSeconds times answering a challenge. Labels: stage, flow.
	PostSeconds *prometheus.HistogramVec
}

// NewFlow registers the flow timings on reg, reusing identical ones.
func NewFlow(reg prometheus.Registerer) (*Flow, error) {
	var m Flow
	var err error
	if m.GetSeconds, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authentik_outpost_flow_timing_get_seconds",
		Help: "Duration it took to get a challenge in seconds",
	}, []string{"stage", "flow"})); err != nil {
		return nil, err
	}
	if m.PostSeconds, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authentik_outpost_flow_timing_post_seconds",
		Help: "Duration it took to send a challenge in seconds",
	}, []string{"stage", "flow"})); err != nil {
		return nil, err
	}
	return &m, nil
}

// register registers c on reg. When reg already holds an identical collector
// it returns that one instead, so several users of one registry update the
// same families. A nil reg registers nothing, which suits tests and callers
// that do not export metrics.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("metrics: registering collector: %w", err)
}
