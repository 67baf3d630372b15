package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"

	"github.com/akoutpost/akoutpost/ldap/ldapserver"
)

// Serve serves the configured listeners until ctx ends, then drains
// operations in flight for at most Config.DrainTimeout. It closes the
// listeners. If one listener fails, the other is stopped too and the
// error returned. Serve may be called once.
func (p *Provider) Serve(ctx context.Context) error {
	if !p.served.CompareAndSwap(false, true) {
		return errors.New("ldap: Serve called twice")
	}
	srv := &ldapserver.Server{
		Handler: handler{p},
		// The outpost's logger once Apply lent it (the outpost calls Serve
		// after Apply), so protocol failures are not discarded when no
		// Config.Logger was given.
		Logger:            p.logger(),
		TLSConfig:         p.tlsConfig(),
		DrainTimeout:      p.cfg.DrainTimeout,
		SupportedControls: []string{oidPagedResults},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	serve := func(run func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(); err != nil && ctx.Err() == nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	if p.cfg.LDAPListener != nil {
		serve(func() error { return srv.Serve(ctx, p.cfg.LDAPListener) })
	}
	if p.cfg.LDAPSListener != nil {
		ln := tls.NewListener(p.cfg.LDAPSListener, p.tlsConfig())
		serve(func() error { return srv.Serve(ctx, ln) })
	}
	<-ctx.Done()
	wg.Wait()
	return errors.Join(errs...)
}
