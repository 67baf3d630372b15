package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/akoutpost/akoutpost/metrics"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/proxy/session"
)

// Config configures a [Provider]. The zero value is usable: no listeners
// (mount the provider as an http.Handler), sessions in memory, keys from
// the core.
type Config struct {
	// HTTPListener and HTTPSListener are served by Serve. nil means that
	// listener is not served. The HTTPS listener gets TLS from the provider:
	// each application's certificate by SNI, else a self-signed one.
	HTTPListener  net.Listener
	HTTPSListener net.Listener

	// SessionStore keeps login sessions. nil means a new in-memory store,
	// which loses sessions on restart and is not shared with replicas.
	SessionStore session.Store

	// CookieSecret, when set, is the key material for session and state
	// cookies of every application (keys are derived per application). nil
	// means each application's cookie_secret from the core, which every
	// replica of the outpost already shares.
	CookieSecret []byte

	// Now is the clock for session and token expiry. nil means time.Now.
	Now func() time.Time

	// HTTPClient calls the core's OAuth2 endpoints (token exchange,
	// introspection, JWKS). nil means a client on the transport of the
	// outpost's API client (same TLS settings and address as the core
	// connection).
	HTTPClient *http.Client

	// TrustedProxies lists the peers whose X-Forwarded-Host,
	// X-Forwarded-Proto, X-Forwarded-Uri and X-Original-URL are believed. nil trusts every
	// peer, as authentik's outpost does and as forward auth behind Traefik
	// or Caddy needs when the outpost is not reachable by clients directly.
	TrustedProxies []netip.Prefix

	// StrictHost refuses requests for hosts no application matches. When
	// false and exactly one application is configured, that application
	// answers every host (authentik's standalone behaviour).
	StrictHost bool

	// ReadHeaderTimeout and IdleTimeout apply to the served listeners.
	// Zero means 5s and 120s. There is deliberately no read or write
	// timeout: proxied uploads, downloads, server-sent events and websockets
	// may last as long as they need.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration

	// ShutdownTimeout bounds the drain of in-flight requests when Serve's
	// context ends. Zero means 10s.
	ShutdownTimeout time.Duration

	// CleanupInterval is how often Serve removes expired sessions from a
	// store that does not expire them itself (file, PostgreSQL). Zero
	// means 5 minutes.
	CleanupInterval time.Duration

	// HeaderAuthCacheTTL is how long a successful header login (Bearer or
	// Basic) is remembered, keyed by a hash of the header. Zero means 60s;
	// the token's own expiry shortens it.
	HeaderAuthCacheTTL time.Duration
}

// Provider is the proxy outpost provider. Create it with [New].
type Provider struct {
	cfg     Config
	deps    outpost.Deps
	log     *slog.Logger
	metrics *metrics.Proxy
	store   session.Store
	now     func() time.Time

	routes atomic.Pointer[routes]

	fallbackOnce sync.Once
	fallbackCert *tlsCertResult

	transports  transportCache
	buffers     bufferPool
	headerCache headerAuthCache

	// websockets are the proxied websockets, which Serve ends at shutdown
	// (http.Server.Shutdown does not track hijacked connections).
	websockets wsTracker
}

var (
	_ outpost.Provider       = (*Provider)(nil)
	_ outpost.MessageHandler = (*Provider)(nil)
	_ http.Handler           = (*Provider)(nil)
)

// New returns a provider for cfg with what the outpost lends it (see
// [outpost.Factory]): its logger, its registry for the proxy metrics, its
// API client, whose transport reaches the core's OAuth2 endpoints, and its
// certificates. A nil Logger discards and a nil Registerer keeps the
// metrics private. It validates cfg and does no I/O.
func New(d outpost.Deps, cfg Config) (*Provider, error) {
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, errors.New("proxy: invalid prefix in TrustedProxies")
		}
	}
	if cfg.ReadHeaderTimeout < 0 || cfg.IdleTimeout < 0 || cfg.ShutdownTimeout < 0 || cfg.HeaderAuthCacheTTL < 0 || cfg.CleanupInterval < 0 {
		return nil, errors.New("proxy: negative timeout in Config")
	}
	if cfg.CookieSecret != nil && len(cfg.CookieSecret) < 16 {
		return nil, errors.New("proxy: CookieSecret must be at least 16 bytes")
	}
	d = d.WithDefaults()
	p := &Provider{cfg: cfg, deps: d, log: d.Logger, store: cfg.SessionStore, now: cfg.Now}
	m, err := metrics.NewProxy(d.Registerer)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p.metrics = m
	if p.store == nil {
		p.store = &session.Memory{Now: cfg.Now}
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.routes.Store(&routes{})
	return p, nil
}

func (p *Provider) logger() *slog.Logger { return p.log }

// Factory returns the [outpost.Factory] of proxy outposts: it builds a
// provider for cfg with what the outpost lends. A host that mounts the
// provider gets it from [outpost.Outpost.Provider].
func Factory(cfg Config) outpost.Factory {
	return outpost.FactoryOf(func(d outpost.Deps) (*Provider, error) { return New(d, cfg) })
}

// HandleMessage implements [outpost.MessageHandler]. A session-end message
// (instruction 4) ends every session, of every application, whose login
// came from the authentik session it names; the store's sid index finds
// them. With a shared store (Redis, PostgreSQL) one replica's deletion ends
// the session on all replicas.
func (p *Provider) HandleMessage(ctx context.Context, m outpost.Message) error {
	if m.Instruction != outpost.InstructionSessionEnd {
		return nil
	}
	sid, _ := m.Args["session_id"].(string)
	if sid == "" {
		return errors.New("proxy: session end message without session_id")
	}
	n, err := p.store.Delete(ctx, session.Filter{SID: sid})
	if err != nil {
		return err
	}
	p.logger().Info("ended sessions on the core's request", "count", n)
	return nil
}
