package metrics_test

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/metrics"
)

// A standalone outpost serves its registry on its own listener (":9300");
// the ping endpoint is what health checks call.
func ExampleServe() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, ln, prometheus.NewRegistry()) }()

	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + metrics.PingPath)
	if err != nil {
		fmt.Println(err)
	} else {
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	tr.CloseIdleConnections()
	cancel()
	fmt.Println(<-done)
	// Output:
	// 204
	// <nil>
}
