package metrics_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/metrics"
)

// A host passes its own registry: the outpost gauges land next to the
// host's metrics, on the host's endpoint.
func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.NewOutpost(reg)
	if err != nil {
		panic(err)
	}
	m.Connection.WithLabelValues("my outpost", "proxy", "4f9c…").Set(1)

	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + metrics.MetricsPath)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "authentik_outpost_connection") {
			fmt.Println(line)
		}
	}
	// Output:
	// authentik_outpost_connection{outpost_name="my outpost",outpost_type="proxy",uuid="4f9c…"} 1
}
