package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
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

// standaloneProviders offers every type this binary serves. The outpost
// builds only the one whose type the core reports, so each factory opens
// its listeners itself: an LDAP outpost never binds :9000. What a factory
// opens beyond its listeners (a session store's connections) is closed by
// release, once the outpost's Run has returned.
func standaloneProviders(env environment) (factories map[string]outpost.Factory, release func()) {
	var (
		mu      sync.Mutex
		closers []func()
	)
	factories = map[string]outpost.Factory{
		"proxy": func(ctx context.Context, d outpost.Deps) (outpost.Provider, error) {
			p, closeStore, err := openProxy(ctx, env, d)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			closers = append(closers, closeStore)
			mu.Unlock()
			return p, nil
		},
		"ldap": func(_ context.Context, d outpost.Deps) (outpost.Provider, error) {
			return openLDAP(env, d)
		},
		"radius": func(_ context.Context, d outpost.Deps) (outpost.Provider, error) {
			return openRADIUS(env, d)
		},
	}
	release = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range closers {
			c()
		}
		closers = nil
	}
	return factories, release
}

func openProxy(ctx context.Context, env environment, d outpost.Deps) (*proxy.Provider, func(), error) {
	log := d.Logger
	spec := env.SessionStore
	if storeKind(spec) == "file" && strings.TrimPrefix(spec, "file://") == "" {
		dir, err := defaultSessionDir(env.TempDir, env.Host, d.Outpost.PK)
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
	p, err := proxy.New(d, proxy.Config{HTTPListener: lns[0], HTTPSListener: lns[1], SessionStore: store})
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

func openLDAP(env environment, d outpost.Deps) (outpost.Provider, error) {
	lns, err := listenAll(env.TrustedCIDRs, env.ListenLDAP, env.ListenLDAPS)
	if err != nil {
		return nil, err
	}
	p, err := ldap.New(d, ldap.Config{
		LDAPListener: lns[0], LDAPSListener: lns[1], Version: version, BindThrottle: env.BindThrottle,
	})
	if err != nil {
		closeAll(lns)
		return nil, err
	}
	d.Logger.Info("serving ldap", "ldap", env.ListenLDAP, "ldaps", env.ListenLDAPS)
	return p, nil
}

// openRADIUS opens the RADIUS socket (UDP; no PROXY protocol, which is a
// TCP framing) and the provider on it.
func openRADIUS(env environment, d outpost.Deps) (outpost.Provider, error) {
	conn, err := net.ListenPacket("udp", env.ListenRADIUS)
	if err != nil {
		return nil, fmt.Errorf("AUTHENTIK_LISTEN__RADIUS: %w", err)
	}
	p, err := radius.New(d, radius.Config{RADIUSConn: conn})
	if err != nil {
		conn.Close()
		return nil, err
	}
	d.Logger.Info("serving radius", "radius", env.ListenRADIUS)
	return p, nil
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
