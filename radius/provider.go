package radius

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/akoutpost/akoutpost/metrics"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/flow"
)

// Config configures a [Provider]. The zero value of every field but RADIUS
// works; without RADIUS the provider serves nothing.
type Config struct {
	// RADIUSConn is the UDP socket authentication requests arrive on
	// (AUTHENTIK_LISTEN__RADIUS, 0.0.0.0:1812), the counterpart of the
	// other providers' listeners. Serve closes it. Nil: not served.
	RADIUSConn net.PacketConn
	// Token is the outpost token, sent to the flow executor so the core
	// believes the client address the outpost passes. Empty (the usual
	// case): the outpost's own token, asked of its API client on every
	// authentication, so a rotated token file is followed.
	Token string
	// MaxInFlight bounds the requests authenticated at once (default 256).
	// A request beyond it is dropped, and the client retransmits it.
	MaxInFlight int
	// DuplicateWindow is how long a reply is kept to answer
	// retransmissions of its request (default 30 s, longer than the
	// retries of common NAS defaults: 3 to 5 tries, 3 to 5 s apart).
	DuplicateWindow time.Duration
	// RequestTimeout bounds one authentication, flow and access check
	// together (default 30 s).
	RequestTimeout time.Duration
	// DrainTimeout bounds how long Serve waits for authentications in
	// flight once its context ends (default 10 s).
	DrainTimeout time.Duration
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
}

// Provider serves the RADIUS providers of an outpost: PAP Access-Requests
// authenticated by the providers' flows. Create it with [New].
type Provider struct {
	cfg  Config
	deps *lent

	state    atomic.Pointer[state]
	dups     *replyCache
	inflight chan struct{} // a slot per authentication running
	served   atomic.Bool
	eap      *eapSessions
	tunnels  sync.WaitGroup // the EAP sessions' TLS goroutines
}

var _ outpost.Provider = (*Provider)(nil)

// New returns a provider for cfg with what the outpost lends it (see
// [outpost.Factory]): authentications run flows through d.API, which is
// required; EAP certificates come from d.Certificates; the RADIUS metrics
// go to d.Registerer (nil: a private registry); d.Logger may be nil to
// discard. It validates cfg and does no I/O.
func New(d outpost.Deps, cfg Config) (*Provider, error) {
	if d.API == nil {
		return nil, errors.New("radius: the outpost's API client is required")
	}
	if cfg.MaxInFlight < 0 || cfg.DuplicateWindow < 0 || cfg.RequestTimeout < 0 || cfg.DrainTimeout < 0 {
		return nil, errors.New("radius: MaxInFlight and the durations must not be negative")
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = 30 * time.Second
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d = d.WithDefaults()
	log := d.Logger.With("provider", "radius")
	m, err := metrics.NewRADIUS(d.Registerer)
	if err != nil {
		return nil, fmt.Errorf("radius: %w", err)
	}
	exec, err := flow.ForOutpost(d.API, cfg.Token, log, d.Registerer)
	if err != nil {
		return nil, fmt.Errorf("radius: %w", err)
	}
	p := &Provider{cfg: cfg, inflight: make(chan struct{}, cfg.MaxInFlight)}
	p.deps = &lent{log: log, metrics: m, executor: exec, certs: d.Certificates}
	p.dups = newReplyCache(cfg.DuplicateWindow, maxCachedReplies, cfg.Now)
	p.eap = newEAPSessions(cfg.Now, &p.tunnels)
	return p, nil
}

// Factory returns the [outpost.Factory] of RADIUS outposts: it builds a
// provider for cfg with what the outpost lends.
func Factory(cfg Config) outpost.Factory {
	return outpost.FactoryOf(func(d outpost.Deps) (*Provider, error) { return New(d, cfg) })
}

// lent is what the provider was built with.
type lent struct {
	log      *slog.Logger
	metrics  *metrics.RADIUS
	executor *flow.Executor
	certs    *outpost.Certificates // nil: no certificates, so no EAP
}

func (p *Provider) logger() *slog.Logger { return p.deps.log }

// state is one applied configuration.
type state struct {
	providers   []*providerConfig
	outpostName string
	// certs are the providers' certificates for EAP, by provider pk.
	certs map[int]*tls.Certificate
}

// loadCertificates fetches the certificates the providers name for EAP.
// A failed fetch keeps the provider's previous certificate, if it had one
// under the same id.
func (p *Provider) loadCertificates(ctx context.Context, old, next *state) {
	next.certs = map[int]*tls.Certificate{}
	l := p.deps
	for _, c := range next.providers {
		if c.CertificateID == "" || l.certs == nil {
			continue
		}
		cert, err := l.certs.Get(ctx, c.CertificateID)
		if err == nil && cert.PrivateKey == nil {
			err = errors.New("the certificate has no private key")
		}
		if err != nil {
			p.logger().Warn("fetching a RADIUS provider's certificate failed; EAP needs it", "provider", c.Name, "error", err)
			if prev := old.provider(c.PK); prev != nil && prev.CertificateID == c.CertificateID {
				cert = old.certs[c.PK]
			} else {
				continue
			}
		}
		if cert != nil {
			next.certs[c.PK] = cert
		}
	}
}

// provider returns the provider with pk, nil if there is none.
func (s *state) provider(pk int) *providerConfig {
	if s == nil {
		return nil
	}
	for _, c := range s.providers {
		if c.PK == pk {
			return c
		}
	}
	return nil
}

// candidate is a provider a client address may belong to.
type candidate struct {
	cfg  *providerConfig
	bits int
}

// candidates lists the providers whose client networks hold addr, the
// most specific network first; among equally specific ones, the core's
// order (by name). The request's Message-Authenticator then picks the one
// whose secret signed it.
func (s *state) candidates(addr netip.Addr) []candidate {
	var out []candidate
	for _, c := range s.providers {
		if bits := c.match(addr); bits >= 0 {
			out = append(out, candidate{cfg: c, bits: bits})
		}
	}
	slices.SortStableFunc(out, func(a, b candidate) int { return b.bits - a.bits })
	return out
}

// Apply installs the RADIUS provider objects of an update. Objects that do
// not decode are refused (named in the *outpost.ApplyError) without
// stopping the others; one that served before keeps its last good version.
func (p *Provider) Apply(ctx context.Context, u outpost.Update) error {
	old := p.state.Load()
	var refused []outpost.RefusedObject
	next := &state{outpostName: u.Outpost.Name}
	for i, raw := range u.Providers {
		cfg, err := decodeProvider(raw)
		if err != nil {
			name, pk := outpost.ObjectName(raw, i)
			if prev := old.byPK(pk); prev != nil {
				err = fmt.Errorf("%w (its previous configuration is kept)", err)
				cfg = prev
			}
			p.logger().Error("refusing RADIUS provider", "provider", name, "error", err)
			refused = append(refused, outpost.RefusedObject{Name: name, Err: err})
			if cfg == nil {
				continue
			}
		}
		next.providers = append(next.providers, cfg)
	}
	p.loadCertificates(ctx, old, next)
	p.state.Store(next)
	if len(refused) > 0 {
		return &outpost.ApplyError{Applied: len(next.providers), Refused: refused}
	}
	return nil
}

// byPK returns the provider object pk of s, if any (s may be nil).
func (s *state) byPK(pk int) *providerConfig {
	if s == nil || pk == 0 {
		return nil
	}
	for _, c := range s.providers {
		if c.PK == pk {
			return c
		}
	}
	return nil
}
