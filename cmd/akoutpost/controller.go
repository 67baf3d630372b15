package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/akoutpost/akoutpost/metrics"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/reconcile"
)

// controller runs reconcile.Controller against the core the environment
// names, serving /metrics and the status on the metrics listener, or with
// "status" prints the status of the controller running on this machine.
func (c command) controller(ctx context.Context, args []string) error {
	if len(args) == 1 && args[0] == "status" {
		return c.controllerStatus(ctx)
	}
	if len(args) > 0 {
		return fmt.Errorf("%w: controller takes no arguments but \"status\"", errUsage)
	}
	env, err := readEnvironment(c.getenv, true)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(outpost.ParseLogLevel(env.LogLevel))
	log := newLogger(c.stderr, level)
	u, _ := url.Parse(env.Host) // checked by readEnvironment
	client, err := outpost.NewClient(outpost.ClientConfig{
		URL: u, Token: env.Token, Insecure: env.Insecure, Version: version, BuildHash: buildHash(), Logger: log,
	})
	if err != nil {
		return err
	}
	var interval, poll time.Duration
	for name, dst := range map[string]*time.Duration{"AKOUTPOST_CONTROLLER_INTERVAL": &interval, "AKOUTPOST_CONTROLLER_POLL": &poll} {
		if v := c.getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("%s: %q is not a positive duration such as 5m", name, v)
			}
			*dst = d
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctl, err := reconcile.NewController(reconcile.ControllerConfig{
		Client:          client,
		Version:         version,
		ImageBase:       c.getenv("AUTHENTIK_OUTPOSTS__CONTAINER_IMAGE_BASE"),
		LocalDockerHost: c.getenv("DOCKER_HOST"),
		Poll:            poll,
		Interval:        interval,
		Registerer:      reg,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", env.ListenMetrics)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", env.ListenMetrics, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	mux.Handle(reconcile.StatusPath, ctl)
	mux.HandleFunc("/outpost.goauthentik.io/ping", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "error", err)
		}
	})
	log.Info("starting outpost controller", "version", version, "core", env.Host, "listen", env.ListenMetrics)
	err = ctl.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	wg.Wait()
	return err
}

// controllerStatus prints the JSON status of the local controller.
func (c command) controllerStatus(ctx context.Context) error {
	env, err := readEnvironment(c.getenv, false)
	if err != nil {
		return err
	}
	addr, err := loopback(env.ListenMetrics)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+reconcile.StatusPath, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("controller status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("controller status: %s answered %s", addr, resp.Status)
	}
	_, err = io.Copy(c.stdout, io.LimitReader(resp.Body, 16<<20))
	return err
}

// loopback turns a wildcard listen address into one to dial locally.
func loopback(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}
