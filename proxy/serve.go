package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

type tlsCertResult struct {
	cert *tls.Certificate
	err  error
}

// Serve serves the listeners of Config until ctx ends, then stops
// accepting, drains in-flight requests within ShutdownTimeout, and returns
// once every goroutine it started has ended. Without listeners it just
// waits for ctx (the provider is then served through a host's mux). It
// returns nil after a clean shutdown.
func (p *Provider) Serve(ctx context.Context) error {
	type srv struct {
		s  *http.Server
		ln net.Listener
	}
	var servers []srv
	mk := func(ln net.Listener, tlsConf *tls.Config) {
		rht := p.cfg.ReadHeaderTimeout
		if rht == 0 {
			rht = 5 * time.Second
		}
		idle := p.cfg.IdleTimeout
		if idle == 0 {
			idle = 120 * time.Second
		}
		s := &http.Server{
			Handler:           p,
			ReadHeaderTimeout: rht,
			IdleTimeout:       idle,
			MaxHeaderBytes:    1 << 20,
			ErrorLog:          slog.NewLogLogger(p.logger().Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
		s.Protocols = new(http.Protocols)
		s.Protocols.SetHTTP1(true)
		if tlsConf != nil {
			// HTTP/2 where ALPN chose it, HTTP/1.1 otherwise. Websockets
			// keep working: a client opens a websocket on a connection
			// that negotiated http/1.1, because the HTTP/2 server does
			// not offer extended CONNECT (RFC 8441), and an Upgrade
			// header on an HTTP/2 stream is refused as malformed.
			s.Protocols.SetHTTP2(true)
		}
		servers = append(servers, srv{s, ln})
	}
	if p.cfg.HTTPListener != nil {
		mk(p.cfg.HTTPListener, nil)
	}
	if p.cfg.HTTPSListener != nil {
		conf := p.TLSConfig()
		mk(tls.NewListener(p.cfg.HTTPSListener, conf), conf)
	}
	var wg sync.WaitGroup
	if c, ok := p.store.(cleaner); ok {
		jctx, stop := context.WithCancel(ctx)
		defer func() { stop(); wg.Wait() }()
		wg.Go(func() { p.janitor(jctx, c) })
	}
	if len(servers) == 0 {
		<-ctx.Done()
		return nil
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		p.logger().Info("serving proxy", "addr", s.ln.Addr().String())
		wg.Go(func() {
			if err := s.s.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("proxy: serving %s: %w", s.ln.Addr(), err)
			}
		})
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	timeout := p.cfg.ShutdownTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.s.Shutdown(sctx); err != nil {
			// Drain bound reached: cut what is left (hijacked websockets
			// included, which Shutdown does not track).
			s.s.Close()
			errs = append(errs, fmt.Errorf("proxy: draining %s: %w", s.ln.Addr(), err))
		}
	}
	// Proxied websockets get a close frame (1001, going away) and the rest
	// of the drain bound to close.
	if n := p.websockets.goingAway(sctx); n > 0 {
		p.logger().Warn("websockets still open after the drain bound; they end with the process", "count", n)
	}
	wg.Wait()
	p.transports.closeIdle()
	close(errc)
	for err := range errc {
		errs = append(errs, err)
	}
	if serveErr != nil {
		errs = append([]error{serveErr}, errs...)
	}
	return errors.Join(errs...)
}

// cleaner is a store that removes expired sessions only when asked (the
// file and PostgreSQL stores).
type cleaner interface {
	Cleanup(ctx context.Context) (int, error)
}

// janitor removes expired sessions every CleanupInterval until ctx ends.
func (p *Provider) janitor(ctx context.Context, c cleaner) {
	every := p.cfg.CleanupInterval
	if every == 0 {
		every = 5 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := c.Cleanup(ctx)
			if err != nil && ctx.Err() == nil {
				p.logger().Warn("removing expired sessions", "error", err)
			} else if n > 0 {
				p.logger().Debug("removed expired sessions", "count", n)
			}
		}
	}
}

// TLSConfig returns the TLS configuration of the HTTPS listener, for hosts
// that serve the provider on their own TLS listener: each application's
// certificate by SNI (host name, port ignored), else a self-signed
// certificate generated once per provider. ALPN offers h2, then
// http/1.1: an [http.Server] serving a listener made with it must have
// HTTP/2 enabled (its default), or the host removes "h2" from NextProtos.
func (p *Provider) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: p.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

func (p *Provider) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if name := strings.ToLower(strings.TrimSuffix(hello.ServerName, ".")); name != "" {
		if c := p.routes.Load().certs[name]; c != nil {
			return c, nil
		}
	}
	p.fallbackOnce.Do(func() {
		c, err := selfSigned()
		p.fallbackCert = &tlsCertResult{cert: c, err: err}
	})
	return p.fallbackCert.cert, p.fallbackCert.err
}

// selfSigned makes the fallback certificate, named as authentik names its
// own.
func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating fallback key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, fmt.Errorf("generating fallback serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "authentik default certificate", Organization: []string{"authentik"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"*"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating fallback certificate: %w", err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
