package metrics

import "github.com/prometheus/client_golang/prometheus"

// RADIUS holds the RADIUS provider's metrics, under the names and labels
// of authentik's RADIUS outpost.
type RADIUS struct {
	// RequestDuration times the Access-Requests the provider answers.
	// Labels: outpost_name, app (the chosen provider's application slug).
	RequestDuration *prometheus.HistogramVec
	// RequestsRejected counts requests answered with Access-Reject and
	// requests dropped unanswered. Labels: outpost_name, reason (a fixed
	// vocabulary chosen by the provider, never error text), app ("" when
	// no provider was chosen, as for a forged packet).
	RequestsRejected *prometheus.CounterVec
}

// NewRADIUS registers the RADIUS metrics on reg, reusing identical ones.
func NewRADIUS(reg prometheus.Registerer) (*RADIUS, error) {
	var m RADIUS
	var err error
	if m.RequestDuration, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "authentik_outpost_radius_request_duration_seconds",
		Help: "RADIUS request latencies in seconds",
	}, []string{"outpost_name", "app"})); err != nil {
		return nil, err
	}
	if m.RequestsRejected, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authentik_outpost_radius_requests_rejected_total",
		Help: "Total number of rejected requests",
	}, []string{"outpost_name", "reason", "app"})); err != nil {
		return nil, err
	}
	return &m, nil
}
