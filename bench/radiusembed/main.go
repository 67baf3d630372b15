// Command radiusembed runs a RADIUS outpost embedded as a host program
// would run it, with an HTTP client of its own for the core, so that
// bench/radius.sh can measure what the size of the idle connection pool
// to the core does to PAP throughput:
//
//	radiusembed -core http://127.0.0.1:9100 -token TOKEN -listen 127.0.0.1:1812 -idle 256
//
// -idle 0 passes no HTTP client, so the outpost builds its default one,
// as `akoutpost run` does; -idle N passes a clone of
// http.DefaultTransport that keeps N idle connections per host. It runs
// until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/radius"
)

func main() {
	core := flag.String("core", "", "`URL` of the core")
	token := flag.String("token", "", "the outpost's token")
	listen := flag.String("listen", "127.0.0.1:1812", "UDP `address` of the RADIUS listener")
	idle := flag.Int("idle", 0, "idle connections kept per host to the core (0: the outpost's default client)")
	flag.Parse()
	if err := run(*core, *token, *listen, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "radiusembed:", err)
		os.Exit(1)
	}
}

func run(core, token, listen string, idle int) error {
	if core == "" || token == "" {
		return errors.New("-core and -token are required")
	}
	if idle < 0 {
		return errors.New("-idle must not be negative")
	}
	conn, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	var client *http.Client
	if idle > 0 {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = idle
		t.MaxIdleConns = max(t.MaxIdleConns, idle)
		client = &http.Client{Transport: t}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o, err := outpost.New(outpost.Config{CoreURL: core, Token: token, Providers: map[string]outpost.Factory{"radius": radius.Factory(radius.Config{RADIUSConn: conn})},
		Registerer: prometheus.NewRegistry(), Logger: log, HTTPClient: client})
	if err != nil {
		conn.Close()
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return o.Run(ctx)
}
