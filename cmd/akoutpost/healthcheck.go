package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// healthcheck asks the local outpost's ping endpoint whether it is up. It
// dials the metrics listener directly, never through HTTP_PROXY (a proxied
// health check is how authentik's reports healthy outposts as failing), and
// turns a wildcard listen address into loopback.
func healthcheck(ctx context.Context, metricsAddr string) error {
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return fmt.Errorf("metrics address %q: %w", metricsAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		Timeout:   5 * time.Second,
	}
	url := "http://" + net.JoinHostPort(host, port) + "/outpost.goauthentik.io/ping"
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "goauthentik.io/healthcheck")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health endpoint: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("health endpoint answered %s", resp.Status)
	}
	return nil
}
