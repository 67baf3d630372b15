package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/akoutpost/akoutpost/outpost"
)

// run is the outpost itself: environment in, listeners opened, library
// called, until a signal ends ctx.
func (c command) run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: run takes no arguments", errUsage)
	}
	env, err := readEnvironment(c.getenv, true)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(outpost.ParseLogLevel(env.LogLevel))
	log := newLogger(c.stderr, level)
	o, release, err := c.newOutpost(env, log, level)
	if err != nil {
		return err
	}
	defer release()
	log.Info("starting authentik outpost", "version", version, "core", env.Host)
	return c.runOutpost(ctx, o)
}

// newOutpost builds a standalone outpost: its own registry with the Go and
// process collectors (only the command registers those), the metrics
// listener, and a factory for every provider type this binary serves.
// release closes what the chosen factory opened; call it after Run.
func (c command) newOutpost(env environment, log *slog.Logger, level *slog.LevelVar) (o *outpost.Outpost, release func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metricsLn, err := listen(env.ListenMetrics, env.TrustedCIDRs)
	if err != nil {
		return nil, nil, err
	}
	factories, release := standaloneProviders(env)
	token, tokenFile := env.Token, env.TokenFile
	if tokenFile != "" {
		token = "" // read, and followed, by the outpost
	}
	o, err = outpost.New(outpost.Config{
		CoreURL:         env.Host,
		Token:           token,
		TokenFile:       tokenFile,
		Insecure:        env.Insecure,
		BrowserURL:      env.HostBrowser,
		Providers:       factories,
		Logger:          log,
		LogLevel:        level,
		Registerer:      reg,
		MetricsListener: metricsLn,
		Version:         version,
		BuildHash:       buildHash(),
	})
	if err != nil {
		metricsLn.Close()
		return nil, nil, err
	}
	return o, release, nil
}

// runOutpost runs o, refreshing it on every SIGUSR1 that arrives meanwhile.
func (c command) runOutpost(ctx context.Context, o *outpost.Outpost) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.usr1:
				o.Refresh()
			}
		}
	})
	err := o.Run(ctx)
	cancel()
	wg.Wait()
	if ctx.Err() != nil && err == context.Canceled {
		return nil
	}
	return err
}
