package reconcile

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// controllerMetrics are the controller's Prometheus metrics. authentik has
// no metrics for its controllers, so the names are this project's. The
// outpost label is the outpost's name, bounded by the core's configuration.
type controllerMetrics struct {
	polls      *prometheus.CounterVec
	reconciles *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	objects    *prometheus.CounterVec
	last       *prometheus.GaugeVec
	healthy    *prometheus.GaugeVec
}

func newControllerMetrics(reg prometheus.Registerer) (*controllerMetrics, error) {
	m := &controllerMetrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akoutpost_controller_polls_total",
			Help: "Reads of the outposts and service connections from the core, by result.",
		}, []string{"result"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akoutpost_controller_reconciles_total",
			Help: "Reconciles of one outpost on one service connection, by connection kind and result.",
		}, []string{"kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "akoutpost_controller_reconcile_duration_seconds",
			Help:    "Time of one outpost's reconcile, by connection kind.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"kind"}),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akoutpost_controller_object_changes_total",
			Help: "Containers and Kubernetes objects created, updated, removed or skipped, by connection kind.",
		}, []string{"kind", "action"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "akoutpost_controller_last_reconcile_timestamp_seconds",
			Help: "Unix time of the outpost's last reconcile.",
		}, []string{"outpost", "kind"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "akoutpost_controller_outpost_reconciled",
			Help: "1 when the outpost's last reconcile succeeded, 0 when it failed.",
		}, []string{"outpost", "kind"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.polls, m.reconciles, m.duration, m.objects, m.last, m.healthy} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *controllerMetrics) observe(kind string, res Result, err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(kind, result).Inc()
	m.duration.WithLabelValues(kind).Observe(d.Seconds())
	for action, n := range map[string]int{"created": len(res.Created), "updated": len(res.Updated),
		"removed": len(res.Removed), "skipped": len(res.Skipped)} {
		if n > 0 {
			m.objects.WithLabelValues(kind, action).Add(float64(n))
		}
	}
}
