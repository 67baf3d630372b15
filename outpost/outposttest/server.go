package outposttest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Config configures a [Server] made with [NewUnstartedServer].
type Config struct {
	// Blueprint is the authentik blueprint (YAML) the core starts with.
	// Empty starts a core with only the built-in flows.
	Blueprint []byte
	// Addr is the address Start listens on; empty means 127.0.0.1:0 (a
	// free loopback port).
	Addr string
	// Logger receives a record per request at debug level and errors; nil
	// discards.
	Logger *slog.Logger
	// Secret seeds every derived token, client secret, UUID and primary
	// key. The zero value uses a fixed seed, so the same blueprint always
	// gives the same tokens; set it when the core listens where others
	// could read the blueprint and compute the tokens.
	Secret string
	// LookupEnv resolves the blueprint's !Env tags; nil uses
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// TLS serves HTTPS (and wss) with a self-signed certificate for
	// 127.0.0.1 and localhost, for testing AUTHENTIK_INSECURE and
	// certificate checks; see [Server.Certificate].
	TLS bool
}

// Server is an authentik-compatible test core. Its methods are safe for
// concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger

	mu sync.RWMutex // guards m and everything the model points to
	m  *model
	// blueprints are the documents loaded so far, to dry-run the next
	// one. The text is kept, not the parsed form: a parsed blueprint of
	// 100,000 users holds hundreds of MiB the core never reads again.
	blueprints [][]byte

	// modelGen counts write locks of mu: the directory cache is valid
	// while it is unchanged. Guarded by mu.
	modelGen uint64
	dir      dirCache

	lifeMu    sync.Mutex // guards the fields below
	srv       *http.Server
	ln        net.Listener
	addr      string
	serveDone chan struct{}
	closed    bool

	handler http.Handler
	// inflightMu orders inflight.Add against inflight.Wait: a request that
	// the closing server had already accepted may start while Stop waits,
	// and a WaitGroup must not go up from zero during a Wait.
	inflightMu sync.Mutex
	inflight   sync.WaitGroup
	tlsCfg     *tls.Config
	tlsCert    *x509.Certificate

	hub      hub
	faults   faultList
	reqs     requestLog
	sessions sessionStore
	oauth    oauthStore
}

// NewServer loads blueprint and starts the core on a free loopback port.
// Call Close when done.
func NewServer(blueprint []byte) (*Server, error) {
	s, err := NewUnstartedServer(Config{Blueprint: blueprint})
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewUnstartedServer loads cfg.Blueprint but does not listen; call Start.
func NewUnstartedServer(cfg Config) (*Server, error) {
	if cfg.Secret == "" {
		cfg.Secret = "akoutpost-testcore"
	}
	if cfg.LookupEnv == nil {
		cfg.LookupEnv = os.LookupEnv
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, m: newModel(cfg.Secret)}
	s.sessions.init(cfg.Secret)
	s.oauth.init()
	s.hub.init()
	if len(cfg.Blueprint) > 0 {
		if err := s.load(cfg.Blueprint); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	if cfg.TLS {
		if err := s.makeTLS(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// makeTLS creates the certificate the core serves with, once, so it stays
// the same across Stop and Start.
func (s *Server) makeTLS() error {
	kp := &certKeyPair{name: "localhost"}
	if err := generateCert(kp, false); err != nil {
		return fmt.Errorf("outposttest: TLS certificate: %w", err)
	}
	cert, err := tls.X509KeyPair([]byte(kp.certPEM), []byte(kp.keyPEM))
	if err != nil {
		return fmt.Errorf("outposttest: TLS certificate: %w", err)
	}
	s.tlsCert, err = parseCertPEM(kp.certPEM)
	if err != nil {
		return err
	}
	s.tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return nil
}

// Certificate is the certificate of a core started with Config.TLS, for
// clients that verify it (nil otherwise).
func (s *Server) Certificate() *x509.Certificate { return s.tlsCert }

// LoadBlueprint applies another blueprint on top of the running core, as
// authentik applies a blueprint to an existing install: entries whose
// model and identifiers match an existing object update it. Every
// connected outpost is then told to refresh. On error nothing changes.
func (s *Server) LoadBlueprint(blueprint []byte) error {
	if err := s.load(blueprint); err != nil {
		return err
	}
	s.triggerAll()
	return nil
}

// lockModel takes the model's write lock; everything that may change the
// model takes it this way, so that caches derived from the model can tell
// they are stale.
func (s *Server) lockModel() {
	s.mu.Lock()
	s.modelGen++
}

func (s *Server) load(data []byte) error {
	bp, err := parseBlueprint(data)
	if err != nil {
		return err
	}
	s.lockModel()
	defer s.mu.Unlock()
	if len(s.blueprints) > 0 {
		// Try everything loaded so far plus this blueprint on a scratch
		// model first, so a failing entry leaves the live core untouched.
		scratch := newModel(s.cfg.Secret)
		for _, prev := range s.blueprints {
			pbp, err := parseBlueprint(prev)
			if err != nil {
				return err
			}
			l := &loader{m: scratch, ids: map[string]any{}, lookupEnv: s.cfg.LookupEnv, dryRun: true}
			if err := l.apply(pbp); err != nil {
				return err
			}
		}
		l := &loader{m: scratch, ids: map[string]any{}, lookupEnv: s.cfg.LookupEnv, dryRun: true}
		if err := l.apply(bp); err != nil {
			return err
		}
	}
	l := &loader{m: s.m, ids: map[string]any{}, lookupEnv: s.cfg.LookupEnv}
	if err := l.apply(bp); err != nil {
		return err
	}
	s.blueprints = append(s.blueprints, bytes.Clone(data))
	return nil
}

// Start listens and serves. After Stop it listens on the same address
// again, so outposts reconnect to the same URL.
func (s *Server) Start() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return errors.New("outposttest: Start after Close")
	}
	if s.srv != nil {
		return errors.New("outposttest: already started")
	}
	addr := s.addr
	if addr == "" {
		addr = s.cfg.Addr
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("outposttest: listening on %s: %w", addr, err)
	}
	s.addr = ln.Addr().String()
	if s.tlsCfg != nil {
		ln = tls.NewListener(ln, s.tlsCfg)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	s.serveDone = done
	srv := s.srv
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("test core stopped serving", "error", err)
		}
	}()
	return nil
}

// Stop takes the core down: the listener closes, open requests are cut and
// websockets close with 1012 (service restart), as when authentik
// restarts. Start brings it back on the same address.
func (s *Server) Stop() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.srv == nil {
		return
	}
	_ = s.srv.Close()
	<-s.serveDone
	s.hub.closeAll(1012, "service restart")
	s.inflightMu.Lock()
	s.inflight.Wait()
	s.inflightMu.Unlock()
	s.hub.wait()
	s.srv, s.ln, s.serveDone = nil, nil, nil
}

// Close stops the core for good and waits for every goroutine it started.
func (s *Server) Close() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.stopLocked()
	s.closed = true
}

// URL is the core's base URL, such as http://127.0.0.1:41234, without a
// trailing slash. It stays the same across Stop and Start.
func (s *Server) URL() string {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.addr == "" {
		return ""
	}
	if s.tlsCfg != nil {
		return "https://" + s.addr
	}
	return "http://" + s.addr
}

// Handler returns the core's HTTP handler, for mounting it elsewhere
// (websocket and session features still work; Stop and Start do not
// affect it).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, h) }
	api("GET /api/v3/root/config/{$}", s.handleRootConfig)
	api("GET /api/v3/outposts/instances/{$}", s.handleOutposts)
	api("GET /api/v3/outposts/instances/{pk}/{$}", s.handleOutpost)
	api("GET /api/v3/outposts/instances/{pk}/health/{$}", s.handleOutpostHealth)
	api("GET /api/v3/outposts/proxy/{$}", s.handleProviderConfigs(kindProxy))
	api("GET /api/v3/outposts/ldap/{$}", s.handleProviderConfigs(kindLDAP))
	api("GET /api/v3/outposts/ldap/{id}/check_access/{$}", s.handleCheckAccess)
	api("GET /api/v3/outposts/radius/{$}", s.handleProviderConfigs(kindRADIUS))
	api("GET /api/v3/outposts/radius/{id}/check_access/{$}", s.handleRadiusCheckAccess)
	api("GET /api/v3/crypto/certificatekeypairs/{kp}/{$}", s.handleCert)
	api("GET /api/v3/crypto/certificatekeypairs/{kp}/{view}/{$}", s.handleCert)
	api("GET /api/v3/core/users/{$}", s.handleUsers)
	api("GET /api/v3/core/users/me/{$}", s.handleMe)
	api("GET /api/v3/core/users/{pk}/{$}", s.handleUser)
	api("GET /api/v3/core/groups/{$}", s.handleGroups)
	api("GET /api/v3/core/groups/{uuid}/{$}", s.handleGroup)
	api("GET /api/v3/flows/executor/{slug}/{$}", s.handleExecutor)
	api("POST /api/v3/flows/executor/{slug}/{$}", s.handleExecutor)
	api("GET /api/v3/outposts/service_connections/docker/{$}", s.handleConnections(connDocker))
	api("GET /api/v3/outposts/service_connections/kubernetes/{$}", s.handleConnections(connKubernetes))
	api("GET /api/v3/core/tokens/{identifier}/view_key/{$}", s.handleViewKey)
	for _, m := range []string{"PATCH", "PUT", "DELETE"} {
		api(m+" /api/v3/outposts/instances/{uuid}/{$}", s.writeOutpost)
		api(m+" /api/v3/outposts/service_connections/docker/{uuid}/{$}", s.writeConnection(connDocker))
		api(m+" /api/v3/outposts/service_connections/kubernetes/{uuid}/{$}", s.writeConnection(connKubernetes))
	}
	api("GET /api/v3/providers/proxy/{id}/{$}", s.handleProxyProvider)
	api("PATCH /api/v3/providers/proxy/{id}/{$}", s.writeProvider(kindProxy))
	api("PATCH /api/v3/providers/ldap/{id}/{$}", s.writeProvider(kindLDAP))
	api("GET /ws/outpost/{pk}/{$}", s.handleWebsocket)
	s.oidcRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			s.handleIndex(w, r)
			return
		}
		writeError(w, http.StatusNotFound, "Not found.")
	})
	return s.middleware(mux)
}

// reqCtx is who a request comes from.
type reqCtx struct {
	outpost *outpostObj  // the outpost whose token the request carries
	user    *user        // the session's user, else the token's service account
	session *coreSession // the authentik_session cookie's session, if valid
}

type reqCtxKey struct{}

func requestContext(r *http.Request) *reqCtx {
	rc, _ := r.Context().Value(reqCtxKey{}).(*reqCtx)
	if rc == nil {
		return &reqCtx{}
	}
	return rc
}

// middleware records the request, applies faults and works out who is
// asking.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflightMu.Lock()
		s.inflight.Add(1)
		s.inflightMu.Unlock()
		defer s.inflight.Done()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		rc := &reqCtx{}
		token := bearer(r)
		s.mu.RLock()
		if token != "" {
			rc.outpost = s.m.outpostByToken(token)
			if rc.outpost != nil {
				rc.user = rc.outpost.account
			} else if t := s.m.apiTokenByKey(token); t != nil && t.user.isActive {
				rc.user = t.user
			}
		}
		s.mu.RUnlock()
		if sess := s.sessions.fromRequest(r); sess != nil {
			rc.session = sess
			// Django's session authentication treats the session of a
			// user who is no longer active as anonymous (ModelBackend's
			// get_user refuses inactive users).
			if u := sess.currentUser(); u != nil && s.userActive(u) {
				rc.user = u
			}
		}
		entry := s.reqs.start(r, rc)
		defer func() { s.reqs.finish(entry, rec.status) }()
		s.log.Debug("test core request", "method", r.Method, "path", r.URL.Path)

		if s.faults.apply(rec, r) {
			return
		}
		protected := strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/ws/")
		if protected && token != "" && rc.outpost == nil && rc.user == nil {
			// DRF answers an unknown token with 403 and this detail.
			writeError(rec, http.StatusForbidden, "Token invalid/expired")
			return
		}
		if protected && rc.user == nil && !strings.HasPrefix(r.URL.Path, "/api/v3/flows/executor/") &&
			r.URL.Path != "/api/v3/root/config/" {
			writeError(rec, http.StatusForbidden, "Authentication credentials were not provided.")
			return
		}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), reqCtxKey{}, rc)))
	})
}

// bearer returns the token of "Authorization: Bearer" or of the header
// outposts send on flow requests.
func bearer(r *http.Request) string {
	if t := r.Header.Get("X-authentik-outpost-token"); t != "" {
		return t
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}

type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"detail":"encoding the answer failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError answers like Django REST framework: {"detail": "..."}.
func writeError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
