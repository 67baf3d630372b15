package proxy

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/metrics"
)

// methodLabels are the method label's values: the standard methods, then
// "other" for any other token a client sends, so the label stays bounded.
var methodLabels = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace, "other",
}

// methodIndex is the index of m's label in methodLabels.
func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodConnect:
		return 6
	case http.MethodOptions:
		return 7
	case http.MethodTrace:
		return 8
	}
	return len(methodLabels) - 1
}

// methodLabel bounds the method label: a client can send any token.
func methodLabel(m string) string { return methodLabels[methodIndex(m)] }

// observers caches an application's histogram children by method, so a
// request observes its duration without WithLabelValues hashing and
// looking up its labels each time. A child is made on the first request
// with its method, as WithLabelValues would, so series that never saw a
// request are not exported. The zero value is ready to use.
type observers struct {
	request  [len(methodLabels)]atomic.Pointer[observer]
	upstream [len(methodLabels)]atomic.Pointer[observer]
}

// observer is one cached child, valid for the metrics and outpost name it
// was made with.
type observer struct {
	m       *metrics.Proxy
	outpost string
	o       prometheus.Observer
}

// requestObserver is m.RequestDuration's child for a request to a with
// method, in the outpost called outpost.
func (a *application) requestObserver(m *metrics.Proxy, outpost, method string) prometheus.Observer {
	i := methodIndex(method)
	if c := a.observers.request[i].Load(); c != nil && c.m == m && c.outpost == outpost {
		return c.o
	}
	o := m.RequestDuration.WithLabelValues(outpost, methodLabels[i], a.external.Host, "app")
	a.observers.request[i].Store(&observer{m: m, outpost: outpost, o: o})
	return o
}

// upstreamObserver is m.UpstreamResponseDuration's child for a's upstream
// round trips with method.
func (a *application) upstreamObserver(m *metrics.Proxy, method string) prometheus.Observer {
	i := methodIndex(method)
	if c := a.observers.upstream[i].Load(); c != nil && c.m == m {
		return c.o
	}
	o := m.UpstreamResponseDuration.WithLabelValues(a.outpostName, methodLabels[i],
		a.external.Scheme, a.external.Host, a.internal.Host)
	a.observers.upstream[i].Store(&observer{m: m, o: o})
	return o
}
