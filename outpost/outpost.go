package outpost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/metrics"
)

// EmbeddedManaged is the "managed" value of authentik's embedded outpost.
const EmbeddedManaged = "goauthentik.io/outposts/embedded"

// ErrNoOutpost reports that the core lists no outpost for the token: the
// token belongs to something else, or the outpost was deleted.
var ErrNoOutpost = errors.New("the core lists no outpost for this token; check that AUTHENTIK_TOKEN is an outpost's token")

// ErrUnsupportedType reports an outpost type no configured factory builds.
var ErrUnsupportedType = errors.New("no provider for the outpost's type")

// Config configures an [Outpost]. CoreURL, Token (or TokenFile) and
// Providers are required; every other zero value is usable.
type Config struct {
	// CoreURL is the core's URL (AUTHENTIK_HOST). Its path is a prefix
	// (https://h/sub/ puts the API at /sub/api/v3/) and its query parameters
	// are added to the websocket URL, as authentik does. A core on a unix
	// socket is unix:///path/to.sock: the API, the websocket and the
	// provider's back-channel calls (token, JWKS, flows) all use it, and
	// browsers are sent to the authentik_host setting.
	CoreURL string
	// Token is the outpost's token (AUTHENTIK_TOKEN). It never appears in
	// logs or errors.
	Token string
	// TokenFile, set instead of Token, is a file holding the token
	// (AUTHENTIK_TOKEN=file:///path). It is re-read when it changes,
	// including the symbolic link swap of a Kubernetes Secret volume, and
	// API calls and the control channel move to the new token without a
	// restart. A file that vanishes or becomes empty keeps the last good
	// token, and a warning says why.
	TokenFile string
	// Insecure skips TLS verification of the core, for the API and the
	// websocket (AUTHENTIK_INSECURE).
	Insecure bool
	// BrowserURL is the core URL for browser redirects
	// (AUTHENTIK_HOST_BROWSER). Empty: the outpost setting
	// authentik_host_browser; else, when CoreURL is internal (a unix
	// socket, loopback, localhost), the setting authentik_host; else
	// CoreURL. The settings are followed live, at every refresh.
	BrowserURL string

	// Providers maps each outpost type this outpost can serve ("proxy",
	// "ldap", "radius", ...) to the factory that builds its provider. The
	// outpost builds only the one for the type the core reports.
	Providers map[string]Factory

	// Logger receives the outpost's logs; nil discards. Its records pass
	// through a level that follows the outpost's log_level setting.
	Logger *slog.Logger
	// LogLevel, when set, is the LevelVar of Logger's handler: the outpost
	// stores the log_level setting in it, so log_level can also raise the
	// verbosity. Nil: log_level can only hide records Logger would print.
	// Neither applies to the embedded outpost (managed), whose host owns
	// the level.
	LogLevel *slog.LevelVar

	// Registerer receives the outpost's and its provider's collectors. Nil
	// means a private registry, served by MetricsListener and returned by
	// Gatherer.
	Registerer prometheus.Registerer
	// Gatherer is what MetricsListener serves when Registerer is set and
	// is not itself a Gatherer.
	Gatherer prometheus.Gatherer
	// MetricsListener, when set, serves /metrics and the ping endpoint
	// (metrics.Handler) for as long as Run runs. Run closes it.
	MetricsListener net.Listener

	// HTTPClient is the base client for the core's API; nil means a pooled
	// client that honours HTTP_PROXY.
	HTTPClient *http.Client

	// UpdateJitter bounds the random delay before a refresh that the core
	// triggered, so replicas do not refresh in lock step. Zero means 1 s;
	// negative means none.
	UpdateJitter time.Duration

	// Version and BuildHash are reported in the User-Agent, the hello and
	// the authentik_outpost_info metric. Version defaults to "devel".
	Version, BuildHash string
	// InstanceUUID names this replica to the core; empty means a random
	// UUID per New, as authentik makes one per process start.
	InstanceUUID string
}

// Outpost connects to the core, keeps its provider's configuration current
// and tells the core it is alive. Create it with [New] and call [Outpost.Run].
type Outpost struct {
	cfg      Config
	coreURL  *url.URL
	log      *slog.Logger
	level    *slog.LevelVar
	reg      prometheus.Registerer
	gatherer prometheus.Gatherer
	metrics  *metrics.Outpost
	api      *Client
	certs    *Certificates
	instance string
	jitter   time.Duration

	running      atomic.Bool
	connected    atomic.Bool
	warnedNoHost atomic.Bool // about an internal core URL without authentik_host
	tokenFile    *tokenFile  // when the token comes from Config.TokenFile

	// provider is the provider Run built, nil before that.
	provider atomic.Pointer[providerBox]

	// refreshNow asks for an immediate refresh (Refresh, SIGUSR1);
	// refreshSoon for one after the update jitter (core trigger,
	// reconnect). Both hold at most one pending request, which coalesces
	// triggers that arrive while a refresh runs.
	refreshNow  chan struct{}
	refreshSoon chan struct{}

	mu      sync.Mutex // guards current
	current *state

	// applied is closed once Apply first succeeded, in whole or in part:
	// the provider may serve. ready is closed once the provider first serves a valid
	// configuration (see Ready).
	applied, ready         chan struct{}
	appliedOnce, readyOnce sync.Once

	// firstDial is closed once the first dial of the control channel has
	// succeeded or failed; firstRefreshStarted is set when the first
	// refresh starts fetching (see runControl).
	firstDial           chan struct{}
	firstDialOnce       sync.Once
	firstRefreshStarted atomic.Bool
}

// providerBox holds a Provider for an atomic.Pointer.
type providerBox struct {
	typ string
	p   Provider
}

// state is what the last successful refresh learned.
type state struct {
	info     Info
	settings Settings
	interval time.Duration
}

// New validates cfg and builds an outpost. It does no I/O.
func New(cfg Config) (*Outpost, error) {
	u, err := url.Parse(cfg.CoreURL)
	if err != nil {
		return nil, fmt.Errorf("outpost: core URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https" || u.Host == "") && u.Scheme != "unix" {
		return nil, fmt.Errorf("outpost: core URL %q must be an absolute http, https or unix URL", u.Redacted())
	}
	if cfg.Token == "" && cfg.TokenFile == "" {
		return nil, errors.New("outpost: the token is empty")
	}
	if cfg.Token != "" && cfg.TokenFile != "" {
		return nil, errors.New("outpost: set the token or the token file, not both")
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("outpost: no providers configured")
	}
	for t, f := range cfg.Providers {
		if t == "" || f == nil {
			return nil, fmt.Errorf("outpost: the factory for type %q is nil or has no type", t)
		}
	}
	if cfg.Version == "" {
		cfg.Version = "devel"
	}
	if cfg.UpdateJitter == 0 {
		cfg.UpdateJitter = time.Second
	}
	instance := cfg.InstanceUUID
	if instance == "" {
		instance = uuid.NewString()
	}

	o := &Outpost{
		cfg:         cfg,
		coreURL:     u,
		instance:    instance,
		jitter:      max(cfg.UpdateJitter, 0),
		refreshNow:  make(chan struct{}, 1),
		refreshSoon: make(chan struct{}, 1),
		applied:     make(chan struct{}),
		ready:       make(chan struct{}),
		firstDial:   make(chan struct{}),
	}
	o.level = cfg.LogLevel
	if o.level == nil {
		o.level = new(slog.LevelVar)
		o.level.Set(LevelTrace)
	}
	base := logger(cfg.Logger)
	if cfg.LogLevel == nil {
		base = slog.New(levelHandler{level: o.level, next: base.Handler()})
	}
	o.log = base

	o.reg, o.gatherer = cfg.Registerer, cfg.Gatherer
	if o.reg == nil {
		r := prometheus.NewRegistry()
		o.reg, o.gatherer = r, r
	} else if o.gatherer == nil {
		o.gatherer, _ = o.reg.(prometheus.Gatherer)
	}
	if cfg.MetricsListener != nil && o.gatherer == nil {
		return nil, errors.New("outpost: MetricsListener needs a Gatherer when Registerer is not a registry")
	}
	if o.metrics, err = metrics.NewOutpost(o.reg); err != nil {
		return nil, fmt.Errorf("outpost: %w", err)
	}

	tokenFunc := func() string { return cfg.Token }
	if cfg.TokenFile != "" {
		o.tokenFile = newTokenFile(cfg.TokenFile, o.log, time.Now)
		tokenFunc = o.tokenFile.Token
	}
	o.api, err = NewClient(ClientConfig{
		URL:        u,
		TokenFunc:  tokenFunc,
		Insecure:   cfg.Insecure,
		HTTPClient: cfg.HTTPClient,
		Version:    cfg.Version,
		BuildHash:  cfg.BuildHash,
		Logger:     o.log.With("logger", "api"),
	})
	if err != nil {
		return nil, fmt.Errorf("outpost: %w", err)
	}
	// The websocket goes where the API goes: over the socket, as
	// ws://localhost, for a core on a unix socket.
	o.coreURL = o.api.BaseURL()
	o.certs = NewCertificates(o.api, o.log)
	return o, nil
}

// Gatherer returns the registry the outpost's metrics are on, for a host
// that serves them itself; nil when Registerer was set without a Gatherer.
func (o *Outpost) Gatherer() prometheus.Gatherer { return o.gatherer }

// InstanceUUID returns the id this replica reports to the core.
func (o *Outpost) InstanceUUID() string { return o.instance }

// Connected reports whether the control channel to the core is up.
func (o *Outpost) Connected() bool { return o.connected.Load() }

// Info returns the outpost as of the last successful refresh, and false
// before the first one.
func (o *Outpost) Info() (Info, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.current == nil {
		return Info{}, false
	}
	return o.current.info, true
}

// Provider returns the provider Run built for the outpost's type, and
// nil until Run has learned the type and the factory has returned. A host
// that mounts the provider (a proxy provider in its HTTP mux, say) gets it
// here, or keeps what its own factory returned.
func (o *Outpost) Provider() Provider {
	if b := o.provider.Load(); b != nil {
		return b.p
	}
	return nil
}

// Handler returns a handler a host mounts for the outpost: once Run has
// built a provider that is an [http.Handler] (the proxy provider), it
// serves each request; before that, and for a provider that serves no
// HTTP, it answers 503 at once with a Retry-After, so no request waits
// for the core.
func (o *Outpost) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := o.Provider().(http.Handler); ok {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "This outpost is starting: it has not yet learned its configuration from authentik.",
			http.StatusServiceUnavailable)
	})
}

// Ready is closed once the outpost's provider first serves a valid
// configuration: every provider object, or at least one of them (the
// others refused, see [ApplyError]), or an outpost with no provider
// objects at all. It stays open while the core is unreachable at start or
// every object is refused. A host or a test waits on it instead of polling.
func (o *Outpost) Ready() <-chan struct{} { return o.ready }

// Refresh asks Run to fetch the configuration again now. It never blocks;
// requests made while one is pending are merged. The command calls it on
// SIGUSR1.
func (o *Outpost) Refresh() { signal(o.refreshNow) }

// refreshAfterJitter asks for a refresh after the update jitter.
func (o *Outpost) refreshAfterJitter() { signal(o.refreshSoon) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run connects to the core, builds the provider for the outpost's type
// with its factory, applies the configuration to it, runs it, and keeps
// its configuration current, until ctx ends. It then closes the control channel (status 1000), lets the
// provider drain, and returns after every goroutine it started has ended.
//
// Run keeps trying while the core is unreachable or rejects the token (the
// latter slowly, since it needs an operator); it returns early only for an
// outpost type no factory builds, when the factory fails, or when the
// provider's Serve fails (with that error). It returns nil when ctx ended. Run may be called once.
func (o *Outpost) Run(ctx context.Context) error {
	if !o.running.CompareAndSwap(false, true) {
		return errors.New("outpost: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		// A registry that outlives this outpost (a host's) keeps no
		// series of a stopped instance.
		o.metrics.Forget(o.instance)
	}()

	if o.tokenFile != nil {
		if err := o.tokenFile.load(); err != nil {
			return fmt.Errorf("outpost: %w", err)
		}
	}
	if ln := o.cfg.MetricsListener; ln != nil {
		wg.Go(func() {
			o.log.Info("starting metrics server", "listen", ln.Addr().String())
			if err := metrics.Serve(ctx, ln, o.gatherer); err != nil {
				o.log.Error("metrics server failed", "error", err)
			}
		})
	}

	inst, err := o.startup(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	o.log.Info("fetched outpost configuration", "outpost", inst.Name, "type", inst.Type,
		"embedded", inst.Managed == EmbeddedManaged, "instance", o.instance)
	prov, err := o.build(ctx, inst)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		o.log.Error("cannot start the provider", "type", inst.Type, "error", err)
		return err
	}

	var serveErr error // written before cancel, read after wg.Wait
	wg.Go(func() { o.runControl(ctx, inst.PK) })
	wg.Go(func() { o.refreshLoop(ctx, prov, inst) })
	wg.Go(func() {
		select {
		case <-o.applied:
		case <-ctx.Done():
			return
		}
		err := prov.Serve(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped serving")
		}
		serveErr = fmt.Errorf("outpost: provider %s: %w", inst.Type, err)
		cancel()
	})
	<-ctx.Done()
	wg.Wait()
	return serveErr
}

// outpostObject is the part of the API's Outpost the outpost uses.
type outpostObject struct {
	PK               string          `json:"pk"`
	Name             string          `json:"name"`
	Type             string          `json:"type"`
	Managed          *string         `json:"managed"`
	Config           json.RawMessage `json:"config"`
	RefreshIntervalS int             `json:"refresh_interval_s"`
}

// instance is an outpostObject converted once at the edge.
type instance struct {
	PK, Name, Type, Managed string
	Config                  map[string]any
	RefreshInterval         time.Duration
}

// Retry pacing of start-up.
const (
	retryMin          = time.Second
	retryMax          = time.Minute
	unauthorizedRetry = 3 * time.Minute
	noOutpostRetry    = time.Minute
)

// startup finds the token's outpost and the core's global config, retrying
// until it succeeds or ctx ends.
func (o *Outpost) startup(ctx context.Context) (instance, error) {
	var inst instance
	err := o.retry(ctx, "fetching outpost configuration", func() error {
		var err error
		inst, err = o.fetchOutpost(ctx, "")
		return err
	})
	if err != nil {
		return instance{}, err
	}
	if _, ok := o.cfg.Providers[inst.Type]; !ok {
		err := fmt.Errorf("outpost: %w: the core reports type %q for outpost %q; this program serves %v",
			ErrUnsupportedType, inst.Type, inst.Name, o.types())
		o.log.Error("cannot serve this outpost", "error", err)
		return instance{}, err
	}
	err = o.retry(ctx, "fetching global configuration", func() error {
		var rc struct {
			CacheTimeoutFlows int `json:"cache_timeout_flows"`
		}
		if err := o.api.Get(ctx, "/root/config/", nil, &rc); err != nil {
			return err
		}
		o.log.Debug("fetched global configuration", "cache_timeout_flows", rc.CacheTimeoutFlows)
		return nil
	})
	return inst, err
}

// retry runs f until it succeeds or ctx ends, logging every failure with
// the real delay before the next attempt. A rejected token or an empty
// outpost list waits minutes, since only an operator can fix them, and is
// logged once in full rather than on every attempt.
func (o *Outpost) retry(ctx context.Context, what string, f func() error) error {
	b := backoff{min: retryMin, max: retryMax}
	var lastPermanent error
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var delay time.Duration
		switch {
		case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrNoOutpost):
			delay = jitter(noOutpostRetry)
			if errors.Is(err, ErrUnauthorized) {
				delay = jitter(unauthorizedRetry)
			}
			if lastPermanent == nil || lastPermanent.Error() != err.Error() {
				o.log.Error(what+" failed permanently; fix the token or the outpost in authentik",
					"error", err, "retry_in", delay.Round(time.Second).String())
			} else {
				o.log.Debug(what+" still failing", "error", err, "retry_in", delay.Round(time.Second).String())
			}
			lastPermanent = err
		default:
			delay = b.next()
			lastPermanent = nil
			o.log.Warn(what+" failed, retrying", "error", err, "retry_in", delay.Round(time.Millisecond).String())
		}
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// fetchOutpost gets the token's outpost, preferring pk when the token sees
// several.
func (o *Outpost) fetchOutpost(ctx context.Context, pk string) (instance, error) {
	var list struct {
		Results []outpostObject `json:"results"`
	}
	if err := o.api.Get(ctx, "/outposts/instances/", nil, &list); err != nil {
		return instance{}, err
	}
	if len(list.Results) == 0 {
		return instance{}, ErrNoOutpost
	}
	obj := list.Results[0]
	for _, r := range list.Results {
		if pk != "" && r.PK == pk {
			obj = r
		}
	}
	if obj.PK == "" || obj.Type == "" {
		return instance{}, errors.New("GET /outposts/instances/: the outpost has no pk or type")
	}
	inst := instance{PK: obj.PK, Name: obj.Name, Type: obj.Type, RefreshInterval: refreshInterval(obj.RefreshIntervalS)}
	if obj.Managed != nil {
		inst.Managed = *obj.Managed
	}
	if len(obj.Config) > 0 && string(obj.Config) != "null" {
		dec := json.NewDecoder(bytesReader(obj.Config))
		dec.UseNumber()
		if err := dec.Decode(&inst.Config); err != nil {
			return instance{}, fmt.Errorf("outpost %q: config is not an object: %w", obj.Name, err)
		}
	}
	return inst, nil
}

// refreshInterval applies authentik's rule: ≤0 means 5 minutes, and less
// than 30 s is raised to 30 s.
func refreshInterval(seconds int) time.Duration {
	switch {
	case seconds <= 0:
		return 5 * time.Minute
	case seconds < 30:
		return 30 * time.Second
	}
	return time.Duration(seconds) * time.Second
}

func (o *Outpost) types() []string {
	ts := slices.Collect(maps.Keys(o.cfg.Providers))
	slices.Sort(ts)
	return ts
}

// build runs the factory for the outpost's type.
func (o *Outpost) build(ctx context.Context, inst instance) (Provider, error) {
	settings, err := DecodeSettings(inst.Config)
	if err != nil {
		// The refresh loop reports it and retries; the provider starts
		// from the defaults meanwhile.
		settings = Settings{}
	}
	p, err := o.cfg.Providers[inst.Type](ctx, Deps{
		Outpost:      o.info(inst, settings),
		Settings:     settings,
		API:          o.api,
		Logger:       o.log,
		Registerer:   o.reg,
		Certificates: o.certs,
	})
	if err == nil && p == nil {
		err = errors.New("the factory returned no provider")
	}
	if err != nil {
		return nil, fmt.Errorf("outpost: building the %s provider: %w", inst.Type, err)
	}
	o.provider.Store(&providerBox{typ: inst.Type, p: p})
	return p, nil
}
