package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/akoutpost/akoutpost/metrics"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/flow"
)

// Config configures a [Provider]. The zero value of every field but the
// listeners works; with neither listener the provider serves nothing.
type Config struct {
	// LDAPListener is the plain listener (AUTHENTIK_LISTEN__LDAP, 3389), on which
	// clients may upgrade with StartTLS. Nil: not served.
	LDAPListener net.Listener
	// LDAPSListener is the listener on which every connection starts with TLS
	// (AUTHENTIK_LISTEN__LDAPS, 6636). Nil: not served. The provider wraps
	// it in TLS itself; pass a plain listener.
	LDAPSListener net.Listener
	// Token is the outpost token, sent to the flow executor in the
	// X-authentik-outpost-token header so the core lets the outpost pass
	// the client's address. Empty (the usual case): the outpost's own
	// token, asked of its API client on every bind, so a rotated token
	// file is followed.
	Token string
	// Version is reported as the root DSE's vendorVersion.
	Version string
	// CachedBindTTL bounds how long cached bind mode remembers a
	// successful bind (default 5 minutes); the session's own expiry bounds
	// it further.
	CachedBindTTL time.Duration
	// DrainTimeout bounds how long Serve waits for operations in flight
	// once its context ends (default 10 s).
	DrainTimeout time.Duration
	// BindThrottle delays and then refuses failed binds per bind DN and
	// client address; its zero value takes the defaults documented on
	// [BindThrottle] (5 failures in 5 minutes lock a pair for 5 minutes).
	BindThrottle BindThrottle
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
}

// Provider serves the LDAP providers of an outpost. Create it with [New].
type Provider struct {
	cfg  Config
	deps *lent

	state atomic.Pointer[state]

	refreshMu sync.Mutex  // one directory refresh at a time
	known     *knownUsers // the last full fetch; guarded by refreshMu

	tls    tlsState
	conns  connRegistry
	served atomic.Bool

	throttle *throttle
	// wait holds a refused bind's answer back; tests replace it.
	wait func(ctx context.Context, d time.Duration)
}

var (
	_ outpost.Provider       = (*Provider)(nil)
	_ outpost.MessageHandler = (*Provider)(nil)
)

// New returns a provider for cfg with what the outpost lends it (see
// [outpost.Factory]): binds run flows and searches read users and groups
// through d.API, which is required; the LDAP metrics go to d.Registerer
// (nil: a private registry); d.Logger may be nil to discard. It validates
// cfg and does no I/O.
func New(d outpost.Deps, cfg Config) (*Provider, error) {
	if d.API == nil {
		return nil, errors.New("ldap: the outpost's API client is required")
	}
	if cfg.CachedBindTTL < 0 || cfg.DrainTimeout < 0 {
		return nil, errors.New("ldap: CachedBindTTL and DrainTimeout must not be negative")
	}
	if cfg.CachedBindTTL == 0 {
		cfg.CachedBindTTL = 5 * time.Minute
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "devel"
	}
	bt, err := cfg.BindThrottle.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.BindThrottle = bt
	d = d.WithDefaults()
	log := d.Logger.With("provider", "ldap")
	m, err := metrics.NewLDAP(d.Registerer)
	if err != nil {
		return nil, fmt.Errorf("ldap: %w", err)
	}
	exec, err := flow.ForOutpost(d.API, cfg.Token, log, d.Registerer)
	if err != nil {
		return nil, fmt.Errorf("ldap: %w", err)
	}
	p := &Provider{cfg: cfg, throttle: newThrottle(bt, cfg.Now), wait: wait}
	p.deps = &lent{log: log, dir: apiDirectory{api: d.API}, metrics: m, executor: exec, certs: d.Certificates}
	p.conns.init()
	return p, nil
}

// Factory returns the [outpost.Factory] of LDAP outposts: it builds a
// provider for cfg with what the outpost lends.
func Factory(cfg Config) outpost.Factory {
	return outpost.FactoryOf(func(d outpost.Deps) (*Provider, error) { return New(d, cfg) })
}

// lent is what the provider was built with.
type lent struct {
	log      *slog.Logger
	dir      directory
	metrics  *metrics.LDAP
	executor *flow.Executor
	certs    *outpost.Certificates // nil: no certificates (the fallback is used)
}

func (p *Provider) logger() *slog.Logger { return p.deps.log }

// state is one applied configuration.
type state struct {
	// providers, the longest base DN first, so routing picks the most
	// specific one.
	providers   []*provider
	outpostName string
	naming      []string
}

// provider is one LDAP provider object and what lives as long as its
// configuration: the cached directory and the cached binds.
type provider struct {
	cfg   *providerConfig
	snap  atomic.Pointer[snapshot]
	binds *bindCache
	cert  atomic.Pointer[tls.Certificate]
}

// route returns the provider whose base DN is key or an ancestor of it.
func (s *state) route(key string) *provider {
	for _, rt := range s.providers {
		if under(key, rt.cfg.baseKey) {
			return rt
		}
	}
	return nil
}

// routeBind routes a bind DN and returns its key.
func (s *state) routeBind(dn string) (*provider, string) {
	key, err := keyOf(dn)
	if err != nil {
		return nil, ""
	}
	return s.route(key), key
}

func (s *state) byPK(pk int) *provider {
	for _, rt := range s.providers {
		if rt.cfg.PK == pk {
			return rt
		}
	}
	return nil
}

// Apply installs the LDAP provider objects of an update. Objects that do
// not decode are skipped (and reported in the error) without stopping the
// others. In cached search mode the directory is fetched before Apply
// returns; a failed fetch keeps the last good directory.
func (p *Provider) Apply(ctx context.Context, u outpost.Update) error {
	old := p.state.Load()
	var refused []outpost.RefusedObject
	next := &state{outpostName: u.Outpost.Name}
	for i, raw := range u.Providers {
		cfg, err := decodeProvider(raw)
		if err != nil {
			name, pk := outpost.ObjectName(raw, i)
			// One that served before keeps its last good version.
			var prev *provider
			if old != nil && pk != 0 {
				prev = old.byPK(pk)
			}
			if prev != nil {
				p.logger().Error("keeping previous configuration of provider", "provider", name, "error", err)
				err = fmt.Errorf("%w (its previous configuration is kept)", err)
				next.providers = append(next.providers, prev)
				next.naming = append(next.naming, strings.ToLower(prev.cfg.BaseDN))
			} else {
				p.logger().Error("skipping provider", "provider", name, "error", err)
			}
			refused = append(refused, outpost.RefusedObject{Name: name, Err: err})
			continue
		}
		next.providers = append(next.providers, p.runtimeFor(old, cfg))
		next.naming = append(next.naming, strings.ToLower(cfg.BaseDN))
	}
	slices.SortStableFunc(next.providers, func(a, b *provider) int {
		return len(b.cfg.baseKey) - len(a.cfg.baseKey)
	})
	p.loadCertificates(ctx, next)
	p.state.Store(next)
	p.refresh(ctx, next)
	if len(refused) > 0 {
		return &outpost.ApplyError{Applied: len(next.providers), Refused: refused}
	}
	return nil
}

// runtimeFor reuses the state of an unchanged provider object, keeping
// its directory and cached binds; a changed object starts afresh.
func (p *Provider) runtimeFor(old *state, cfg *providerConfig) *provider {
	if old != nil {
		if rt := old.byPK(cfg.PK); rt != nil && *rt.cfg == *cfg {
			return rt
		}
	}
	return &provider{cfg: cfg, binds: newBindCache(p.cfg.CachedBindTTL, p.cfg.Now)}
}

// HandleMessage acts on session-end messages: the binds of that session
// are forgotten and its connections closed, so a user logged out in
// authentik is logged out of LDAP too.
func (p *Provider) HandleMessage(ctx context.Context, m outpost.Message) error {
	if m.Instruction != outpost.InstructionSessionEnd {
		return nil
	}
	id, _ := m.Args["session_id"].(string)
	if id == "" {
		return errors.New("ldap: session end without session_id")
	}
	if st := p.state.Load(); st != nil {
		for _, rt := range st.providers {
			rt.binds.forgetWhere(func(i *identity, _ time.Time) bool { return i.sessionID == id })
		}
	}
	if n := p.conns.closeSession(id); n > 0 {
		p.logger().Info("closed LDAP connections of an ended session", "connections", n)
	}
	return nil
}
