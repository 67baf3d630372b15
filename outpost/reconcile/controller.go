package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/deploy"
)

// Reconciler is what the controller drives on one service connection;
// *Docker and *Kubernetes implement it.
type Reconciler interface {
	// Apply makes the outpost's objects match in.
	Apply(ctx context.Context, in deploy.Input) (Result, error)
	// Delete removes what the integration created for the outpost.
	Delete(ctx context.Context, outpostUUID string) (Result, error)
	// Outposts lists the UUIDs (hex) of outposts that have objects.
	Outposts(ctx context.Context) ([]string, error)
}

var (
	_ Reconciler = (*Docker)(nil)
	_ Reconciler = (*Kubernetes)(nil)
)

// ControllerConfig configures a Controller. Client is required.
type ControllerConfig struct {
	// Client reaches the core with an API token allowed to read outposts,
	// service connections, proxy providers, certificate key pairs and the
	// outposts' token keys (a superuser's token does).
	Client *outpost.Client
	// Version is the authentik version the default images follow
	// (deploy.Input.Version); ImageBase replaces deploy.DefaultImageBase.
	Version, ImageBase string
	// HealthcheckCommand replaces the containers' health-check command
	// (deploy.Input.HealthcheckCommand).
	HealthcheckCommand []string
	// LocalDockerHost is the engine a Docker connection marked "local"
	// reaches; empty means unix:///var/run/docker.sock.
	LocalDockerHost string
	// Poll is how often the core is asked for changes; zero means 10 s.
	Poll time.Duration
	// Interval is how often every outpost is reconciled even when the core
	// shows no change, which restores objects changed by hand; zero means
	// 5 min.
	Interval time.Duration
	// Timeout bounds one outpost's reconcile (an image pull included) and
	// each listing of what a connection holds, so an engine or cluster that
	// hangs delays the others by at most this; zero means 5 min.
	Timeout time.Duration
	// Registerer receives the controller's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives one line per reconcile and change; nil discards.
	Logger *slog.Logger
	// NewReconciler builds the reconciler of a connection; nil means
	// NewDocker or NewKubernetes. Hosts and tests may wrap them.
	NewReconciler func(kind string, docker DockerConfig, kube KubernetesConfig) (Reconciler, error)
}

// Controller reconciles every outpost that names a Docker or Kubernetes
// service connection. Create it with NewController and run it with Run.
type Controller struct {
	cfg     ControllerConfig
	log     *slog.Logger
	metrics *controllerMetrics

	mu      sync.Mutex
	status  map[string]*OutpostStatus // by outpost UUID (hex)
	conns   map[string]*ConnectionStatus
	polled  time.Time
	pollErr string

	// Owned by Run's goroutine.
	recs  map[string]*liveReconciler // by connection pk
	state map[string]*outpostState   // by outpost UUID (hex)
}

type liveReconciler struct {
	digest string
	rec    Reconciler
}

type outpostState struct {
	digest   string // of the last successfully reconciled input
	last     time.Time
	failures int
	retryAt  time.Time
	failed   string // digest of the input that failed
	conn     string // connection of the last reconcile
}

// OutpostStatus is the last reconcile of one outpost.
type OutpostStatus struct {
	UUID       string    `json:"uuid"`
	Name       string    `json:"name"`
	Connection string    `json:"connection"`
	Kind       string    `json:"kind"`
	Time       time.Time `json:"time"`
	Duration   string    `json:"duration"`
	// Result is "ok", "error" or "removed".
	Result   string `json:"result"`
	Error    string `json:"error,omitempty"`
	Failures int    `json:"failures,omitempty"`
	// Objects is what the reconcile changed and skipped.
	Objects Result `json:"objects"`
}

// ConnectionStatus is the state of one service connection.
type ConnectionStatus struct {
	PK    string `json:"pk"`
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Error string `json:"error,omitempty"`
}

// Status is everything the controller knows, as served in JSON.
type Status struct {
	// Time is the end of the last poll of the core; PollError its error.
	Time        time.Time          `json:"time"`
	PollError   string             `json:"poll_error,omitempty"`
	Outposts    []OutpostStatus    `json:"outposts"`
	Connections []ConnectionStatus `json:"connections"`
}

// NewController checks cfg; it does no I/O.
func NewController(cfg ControllerConfig) (*Controller, error) {
	if cfg.Client == nil {
		return nil, errors.New("reconcile: controller: Client is nil")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 10 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.NewReconciler == nil {
		cfg.NewReconciler = defaultReconciler
	}
	m, err := newControllerMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		cfg: cfg, log: orDiscard(cfg.Logger), metrics: m,
		status: map[string]*OutpostStatus{}, conns: map[string]*ConnectionStatus{},
		recs: map[string]*liveReconciler{}, state: map[string]*outpostState{},
	}
	return c, nil
}

func defaultReconciler(kind string, d DockerConfig, k KubernetesConfig) (Reconciler, error) {
	if kind == KindDocker {
		return NewDocker(d)
	}
	return NewKubernetes(k)
}

// Run polls the core and reconciles until ctx ends; it returns nil then,
// after the reconcile in progress has stopped. Failures are logged, kept
// in the status and retried with backoff; they never end Run.
func (c *Controller) Run(ctx context.Context) error {
	defer c.closeAll()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		c.Poll(ctx)
		t.Reset(c.cfg.Poll)
	}
}

// Poll asks the core once and reconciles what changed, what failed and is
// due a retry, and what was last reconciled an Interval ago. Run calls it;
// a host or test may call it directly, but not concurrently with Run.
func (c *Controller) Poll(ctx context.Context) {
	snap, err := c.fetch(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("reading outposts from the core failed; retrying at the next poll", "error", err)
		c.metrics.polls.WithLabelValues("error").Inc()
		c.setPollError(time.Now(), err)
		return
	}
	c.metrics.polls.WithLabelValues("ok").Inc()
	c.setPollError(time.Now(), nil)

	wanted := map[string]map[string]bool{} // connection pk -> outpost hex UUIDs
	for _, o := range snap.outposts {
		if o.ServiceConnection == nil || *o.ServiceConnection == "" {
			continue
		}
		if o.Managed != nil && *o.Managed == "goauthentik.io/outposts/embedded" {
			continue
		}
		conn := snap.connections[*o.ServiceConnection]
		if conn == nil {
			c.record(o, &connection{pk: *o.ServiceConnection}, time.Now(), 0, Result{},
				fmt.Errorf("the outpost names service connection %s, which the token cannot read", *o.ServiceConnection))
			continue
		}
		if wanted[conn.pk] == nil {
			wanted[conn.pk] = map[string]bool{}
		}
		wanted[conn.pk][hexUUID(o.PK)] = true
		c.reconcileOutpost(ctx, o, conn)
		if ctx.Err() != nil {
			return
		}
	}
	c.sweep(ctx, snap, wanted)
}

// reconcileOutpost reconciles one outpost when it is due.
func (c *Controller) reconcileOutpost(ctx context.Context, o outpostWire, conn *connection) {
	st := c.state[hexUUID(o.PK)]
	if st == nil {
		st = &outpostState{}
		c.state[hexUUID(o.PK)] = st
	}
	now := time.Now()
	providers, perr := c.proxyProviders(ctx, o)
	coreDigest := digestOf(o, conn.digest, providers)
	due := st.digest != coreDigest || now.Sub(st.last) >= c.cfg.Interval || perr != nil
	if st.failures > 0 && st.failed == coreDigest {
		// Unchanged since it failed: wait for the backoff. A change in
		// the core (someone fixed it) is tried at once.
		due = !now.Before(st.retryAt)
	}
	if !due {
		return
	}
	start := time.Now()
	res, err := Result{}, perr
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		res, err = c.applyOutpost(rctx, o, conn, st, providers)
		cancel()
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		st.failures++
		st.retryAt = now.Add(backoff(c.cfg.Poll, st.failures))
		st.digest, st.failed = "", coreDigest
	} else {
		st.failures, st.digest, st.last = 0, coreDigest, now
	}
	st.conn = conn.pk
	c.record(o, conn, start, time.Since(start), res, err)
	c.metrics.observe(conn.kind, res, err, time.Since(start))
}

func (c *Controller) applyOutpost(ctx context.Context, o outpostWire, conn *connection, st *outpostState, providers []deploy.ProxyProvider) (Result, error) {
	var res Result
	// The outpost moved from another connection: clear the old one first.
	if st.conn != "" && st.conn != conn.pk {
		if old := c.recs[st.conn]; old != nil {
			r, err := old.rec.Delete(ctx, o.PK)
			res.add(r)
			if err != nil {
				return res, err
			}
		}
	}
	rec, err := c.reconciler(conn)
	if err != nil {
		return res, err
	}
	in, err := c.input(ctx, o, providers)
	if err != nil {
		return res, err
	}
	r, err := rec.Apply(ctx, in)
	res.add(r)
	if err != nil {
		return res, errors.New(redact(err.Error(), in.Token))
	}
	return res, nil
}

// sweep deletes the objects of outposts that are gone or no longer name
// the connection that holds them.
func (c *Controller) sweep(ctx context.Context, snap *snapshot, wanted map[string]map[string]bool) {
	names := map[string]outpostWire{}
	for _, o := range snap.outposts {
		names[hexUUID(o.PK)] = o
	}
	for _, conn := range snap.connections {
		rec, err := c.reconciler(conn)
		if err != nil {
			continue // reported on the connection
		}
		lctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		have, err := rec.Outposts(lctx)
		cancel()
		c.setConnError(conn, err)
		if err != nil {
			c.log.Warn("listing what a connection holds failed", "connection", conn.name, "error", err)
			continue
		}
		for _, id := range have {
			if wanted[conn.pk][id] {
				continue
			}
			start := time.Now()
			dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
			res, err := rec.Delete(dctx, id)
			cancel()
			o, ok := names[id]
			if !ok {
				o = outpostWire{PK: id, Name: "(deleted outpost " + id + ")"}
				c.mu.Lock()
				if s := c.status[id]; s != nil {
					o = outpostWire{PK: s.UUID, Name: s.Name}
				}
				c.mu.Unlock()
			}
			c.record(o, conn, start, time.Since(start), res, err)
			c.metrics.observe(conn.kind, res, err, time.Since(start))
			if err == nil {
				c.mu.Lock()
				if s := c.status[id]; s != nil {
					s.Result = "removed"
				}
				c.mu.Unlock()
				delete(c.state, id)
			}
		}
	}
}

// reconciler returns the connection's reconciler, rebuilt when the
// connection changed.
func (c *Controller) reconciler(conn *connection) (Reconciler, error) {
	if lr := c.recs[conn.pk]; lr != nil && lr.digest == conn.digest {
		return lr.rec, nil
	}
	if lr := c.recs[conn.pk]; lr != nil {
		closeReconciler(lr.rec)
		delete(c.recs, conn.pk)
	}
	d := conn.docker
	d.Logger = c.log.With("connection", conn.name)
	k := conn.kube
	k.Logger = d.Logger
	rec, err := c.cfg.NewReconciler(conn.kind, d, k)
	c.setConnError(conn, err)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", conn.name, err)
	}
	c.recs[conn.pk] = &liveReconciler{digest: conn.digest, rec: rec}
	return rec, nil
}

func closeReconciler(r Reconciler) {
	if cl, ok := r.(interface{ Close() error }); ok {
		cl.Close()
	}
}

func (c *Controller) closeAll() {
	for pk, lr := range c.recs {
		closeReconciler(lr.rec)
		delete(c.recs, pk)
	}
}

func (c *Controller) record(o outpostWire, conn *connection, start time.Time, d time.Duration, res Result, err error) {
	s := OutpostStatus{
		UUID: o.PK, Name: o.Name, Connection: conn.name, Kind: conn.kind, Time: start.UTC(),
		Duration: d.Round(time.Millisecond).String(), Result: "ok", Objects: res,
	}
	if st := c.state[hexUUID(o.PK)]; st != nil {
		s.Failures = st.failures
	}
	if err != nil {
		s.Result, s.Error = "error", err.Error()
		c.log.Warn("reconcile failed", "outpost", o.Name, "connection", conn.name, "error", err, "retry_in", backoff(c.cfg.Poll, s.Failures))
	} else if res.Writes() > 0 || len(res.Skipped) > 0 {
		c.log.Info("reconciled", "outpost", o.Name, "connection", conn.name, "created", res.Created,
			"updated", res.Updated, "removed", res.Removed, "skipped", res.Skipped, "took", s.Duration)
	} else {
		c.log.Debug("reconciled, nothing to change", "outpost", o.Name, "connection", conn.name, "took", s.Duration)
	}
	c.mu.Lock()
	c.status[hexUUID(o.PK)] = &s
	c.mu.Unlock()
	c.metrics.last.WithLabelValues(o.Name, conn.kind).Set(float64(start.Unix()))
	ok := 1.0
	if err != nil {
		ok = 0
	}
	c.metrics.healthy.WithLabelValues(o.Name, conn.kind).Set(ok)
}

func (c *Controller) setPollError(t time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.polled = t.UTC()
	c.pollErr = ""
	if err != nil {
		c.pollErr = err.Error()
	}
}

func (c *Controller) setConnError(conn *connection, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &ConnectionStatus{PK: conn.pk, Name: conn.name, Kind: conn.kind}
	if err != nil {
		s.Error = err.Error()
	}
	c.conns[conn.pk] = s
}

// Status returns a copy of the controller's status, outposts by name.
func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Time: c.polled, PollError: c.pollErr, Outposts: []OutpostStatus{}, Connections: []ConnectionStatus{}}
	for _, s := range c.status {
		st.Outposts = append(st.Outposts, *s)
	}
	for _, s := range c.conns {
		st.Connections = append(st.Connections, *s)
	}
	slices.SortFunc(st.Outposts, func(a, b OutpostStatus) int { return compareStrings(a.Name, b.Name) })
	slices.SortFunc(st.Connections, func(a, b ConnectionStatus) int { return compareStrings(a.Name, b.Name) })
	return st
}

// StatusPath is where the command serves the status on its metrics port.
const StatusPath = "/akoutpost/controller/status"

// ServeHTTP answers with Status as JSON.
func (c *Controller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(c.Status())
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// backoff is the wait before retry n (from 1): the poll interval doubled
// per failure up to 5 minutes, with up to 20% jitter.
func backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	d = min(d, 5*time.Minute)
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

func hexUUID(s string) string {
	out := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			out = append(out, s[i])
		}
	}
	return string(out)
}

// digestOf hashes values to notice a change without keeping them.
func digestOf(v ...any) string {
	raw, _ := json.Marshal(v) // plain data
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}
