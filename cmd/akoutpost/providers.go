package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/proxy"
	"github.com/akoutpost/akoutpost/proxy/session"
	"github.com/akoutpost/akoutpost/radius"
)

// standaloneProviders offers every type this binary serves. The outpost runs
// the one whose type the core reports, so each opens its listeners only when
// chosen: an LDAP outpost never binds :9000.
func standaloneProviders(env environment, log *slog.Logger) []outpost.Provider {
	return []outpost.Provider{
		&lazyProvider{typ: "proxy", open: func(ctx context.Context, o outpost.Info) (outpost.Provider, func(), error) {
			return openProxy(ctx, env, o, log)
		}},
		&lazyProvider{typ: "ldap", open: func(context.Context, outpost.Info) (outpost.Provider, func(), error) {
			return openLDAP(env, log)
		}},
		&lazyProvider{typ: "radius", open: func(context.Context, outpost.Info) (outpost.Provider, func(), error) {
			return openRADIUS(env, log)
		}},
	}
}

func openProxy(ctx context.Context, env environment, o outpost.Info, log *slog.Logger) (outpost.Provider, func(), error) {
	spec := env.SessionStore
	if storeKind(spec) == "file" && strings.TrimPrefix(spec, "file://") == "" {
		dir, err := defaultSessionDir(env.TempDir, env.Host, o.PK)
		if err != nil {
			return nil, nil, err
		}
		spec = "file://" + dir
	}
	store, closeStore, err := openSessionStore(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	lns, err := listenAll(env.TrustedCIDRs, env.ListenHTTP, env.ListenHTTPS)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	p, err := proxy.New(proxy.Config{
		Logger: log, HTTPListener: lns[0], HTTPSListener: lns[1], SessionStore: store,
	})
	if err != nil {
		closeAll(lns)
		closeStore()
		return nil, nil, err
	}
	attrs := []any{"http", env.ListenHTTP, "https", env.ListenHTTPS, "sessions", storeKind(spec)}
	if storeKind(spec) == "file" {
		// Only the directory: other store URLs can carry a password.
		attrs = append(attrs, "session_dir", strings.TrimPrefix(spec, "file://"))
	}
	log.Info("serving proxy", attrs...)
	return p, closeStore, nil
}

func openLDAP(env environment, log *slog.Logger) (outpost.Provider, func(), error) {
	lns, err := listenAll(env.TrustedCIDRs, env.ListenLDAP, env.ListenLDAPS)
	if err != nil {
		return nil, nil, err
	}
	p, err := ldap.New(ldap.Config{
		Logger: log, LDAPListener: lns[0], LDAPSListener: lns[1], Version: version,
		BindThrottle: env.BindThrottle,
	})
	if err != nil {
		closeAll(lns)
		return nil, nil, err
	}
	log.Info("serving ldap", "ldap", env.ListenLDAP, "ldaps", env.ListenLDAPS)
	return p, func() {}, nil
}

// openRADIUS opens the RADIUS socket (UDP; no PROXY protocol, which is a
// TCP framing) and the provider on it.
func openRADIUS(env environment, log *slog.Logger) (outpost.Provider, func(), error) {
	conn, err := net.ListenPacket("udp", env.ListenRADIUS)
	if err != nil {
		return nil, nil, fmt.Errorf("AUTHENTIK_LISTEN__RADIUS: %w", err)
	}
	p, err := radius.New(radius.Config{Logger: log, RADIUSConn: conn})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	log.Info("serving radius", "radius", env.ListenRADIUS)
	return p, func() {}, nil
}

func listenAll(trusted []string, addrs ...string) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := listen(a, trusted)
		if err != nil {
			closeAll(lns)
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// defaultSessionDir is the file store used when AKOUTPOST_SESSION_STORE is
// empty: a directory under tmp named from a hash of the core's URL and the
// outpost's primary key, like authentik's standalone proxy keeping its
// sessions in a temporary directory, so sessions survive a restart.
//
// It is one outpost's own: two outposts on one host, of one core or of two,
// never share sessions (and so never a sign-out) unless the operator names
// the same store for both. Replicas of one outpost on one host do share it,
// as they share the core's session ends.
//
// The directory is created 0700. One that already exists must be a
// directory, not a symbolic link, and closed to other users: the temporary
// directory is shared, and whoever could write there could plant sessions.
func defaultSessionDir(tmp, coreURL, outpostPK string) (string, error) {
	h := sha256.Sum256([]byte(strings.TrimRight(coreURL, "/") + "\x00" + outpostPK))
	dir := filepath.Join(tmp, "akoutpost-sessions-"+hex.EncodeToString(h[:8]))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("session directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("session directory: %w", err)
	}
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("session directory %s is not a directory closed to other users (mode %s); "+
			"remove it, or set AKOUTPOST_SESSION_STORE", dir, fi.Mode())
	}
	return dir, nil
}

// openSessionStore maps AKOUTPOST_SESSION_STORE to a store: "memory",
// "file:///dir", "redis://..." (or rediss://) or "postgres://...". The
// caller resolves the default (an empty spec) with defaultSessionDir.
func openSessionStore(ctx context.Context, spec string) (session.Store, func(), error) {
	switch kind := storeKind(spec); kind {
	case "memory":
		return &session.Memory{}, func() {}, nil
	case "file":
		dir := strings.TrimPrefix(spec, "file://")
		if dir == "" {
			return nil, nil, errors.New("AKOUTPOST_SESSION_STORE: file:// needs a directory")
		}
		s, err := session.NewFile(dir, nil)
		return s, func() {}, err
	case "redis":
		opts, err := redis.ParseURL(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("AKOUTPOST_SESSION_STORE: %w", errors.Unwrap(err))
		}
		client := redis.NewClient(opts)
		s, err := session.NewRedis(client, "", nil)
		if err != nil {
			client.Close()
			return nil, nil, err
		}
		return s, func() { client.Close() }, nil
	case "postgres":
		pool, err := pgxpool.New(ctx, spec)
		if err != nil {
			// pgx errors can quote the connection string; say only what kind.
			return nil, nil, errors.New("AKOUTPOST_SESSION_STORE: not a valid PostgreSQL URL")
		}
		s, err := session.NewPostgres(pool, "", nil)
		if err == nil {
			err = s.EnsureSchema(ctx)
		}
		if err != nil {
			pool.Close()
			return nil, nil, fmt.Errorf("postgres session store: %w", err)
		}
		return s, pool.Close, nil
	default:
		return nil, nil, fmt.Errorf("AKOUTPOST_SESSION_STORE: unknown store %q (memory, file://, redis://, postgres://)", kind)
	}
}

func storeKind(spec string) string {
	switch {
	case spec == "", strings.HasPrefix(spec, "file://"):
		return "file"
	case spec == "memory":
		return "memory"
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"):
		return "redis"
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return "postgres"
	}
	scheme, _, _ := strings.Cut(spec, "://")
	return scheme
}

// lazyProvider builds its provider, and opens its listeners, on the first
// Apply: only then is the outpost's type known.
type lazyProvider struct {
	typ  string
	open func(context.Context, outpost.Info) (outpost.Provider, func(), error)

	mu      sync.Mutex
	p       outpost.Provider
	release func()
}

var (
	_ outpost.Provider       = (*lazyProvider)(nil)
	_ outpost.MessageHandler = (*lazyProvider)(nil)
)

func (l *lazyProvider) Type() string { return l.typ }

// provider returns the provider, opening it for the outpost o on the first
// call.
func (l *lazyProvider) provider(ctx context.Context, o outpost.Info) (outpost.Provider, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p == nil {
		p, release, err := l.open(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("starting the %s provider: %w", l.typ, err)
		}
		l.p, l.release = p, release
	}
	return l.p, nil
}

func (l *lazyProvider) Apply(ctx context.Context, u outpost.Update) error {
	p, err := l.provider(ctx, u.Outpost)
	if err != nil {
		return err
	}
	return p.Apply(ctx, u)
}

// Serve runs the provider the first Apply opened; the outpost calls it
// only after a successful Apply.
func (l *lazyProvider) Serve(ctx context.Context) error {
	l.mu.Lock()
	p := l.p
	l.mu.Unlock()
	if p == nil {
		return fmt.Errorf("the %s provider has no configuration yet", l.typ)
	}
	defer func() {
		l.mu.Lock()
		l.release()
		l.mu.Unlock()
	}()
	return p.Serve(ctx)
}

func (l *lazyProvider) HandleMessage(ctx context.Context, m outpost.Message) error {
	l.mu.Lock()
	p := l.p
	l.mu.Unlock()
	if h, ok := p.(outpost.MessageHandler); ok {
		return h.HandleMessage(ctx, m)
	}
	return nil
}
