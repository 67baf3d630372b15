package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/proxy/session"
)

// postgresUp waits until the cluster answers a query: accepting TCP is
// not enough, it answers "starting up" for a moment.
func postgresUp(t *testing.T, url string) {
	t.Helper()
	eventually(t, "postgres up", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		return pool.Ping(ctx)
	})
}

// TestSessionStorePostgresRestart is TestSessionStoreRestart with the
// PostgreSQL store: while the server is stopped, a valid session gets a
// 503 and never the upstream; once it is back (same data directory), the
// pool reconnects by itself and the same session works again.
func TestSessionStorePostgresRestart(t *testing.T) {
	ps := testservers.StartPostgres(t)
	postgresUp(t, ps.URL())
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(ps.URL())
	if err != nil {
		t.Fatal(err)
	}
	// Connections a stopped server cut are found dead on their next use;
	// a short health check drops them sooner, so fewer requests after the
	// restart land on one of them.
	cfg.HealthCheckPeriod = 500 * time.Millisecond
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store, err := session.NewPostgres(pool, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureSchema(ctx); err != nil {
		t.Fatal(fmt.Errorf("creating the session table: %w", err))
	}
	storeRestart(t, "PostgreSQL", store, ps.Stop, func() { ps.Start(); postgresUp(t, ps.URL()) })
}
