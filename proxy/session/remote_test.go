package session_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/proxy/session"
	"github.com/akoutpost/akoutpost/proxy/session/sessiontest"
)

func TestRedis(t *testing.T) {
	addr := testservers.RedisAddr(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	if err := client.Ping(context.Background()).Err(); err != nil {
		testservers.Unavailable(t, "Redis at %s does not answer: %v", addr, err)
	}
	n := 0
	sessiontest.Run(t, func(t *testing.T, now func() time.Time) session.Store {
		n++
		s, err := session.NewRedis(client, fmt.Sprintf("akoutpost-test:%d:%d:", time.Now().UnixNano(), n), now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// postgresPool connects to the test PostgreSQL server.
func postgresPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := testservers.PostgresURL(t)
	ctx := context.Background()
	var pool *pgxpool.Pool
	var err error
	// A freshly started server may accept TCP before it accepts queries.
	for range 50 {
		pool, err = pgxpool.New(ctx, url)
		if err == nil {
			if err = pool.Ping(ctx); err == nil {
				break
			}
			pool.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		testservers.Unavailable(t, "PostgreSQL does not answer: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestPostgres(t *testing.T) {
	pool := postgresPool(t)
	ctx := context.Background()
	n := 0
	sessiontest.Run(t, func(t *testing.T, now func() time.Time) session.Store {
		n++
		s, err := session.NewPostgres(pool, fmt.Sprintf("akoutpost_test_%d_%d", time.Now().UnixNano()%1e9, n), now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// authentikSchema has the columns of authentik's ProxySession model
// (reference doc §7.3). authentik's own keys are up to 58 characters
// ("authentik_proxy_session_" and a UUID); ours are 43.
const authentikSchema = `CREATE TABLE IF NOT EXISTS authentik_providers_proxy_proxysession (
	uuid uuid PRIMARY KEY,
	expires timestamptz NULL,
	expiring boolean NOT NULL,
	session_key text NOT NULL UNIQUE,
	user_id uuid NULL,
	session_data jsonb NOT NULL
)`

func TestAuthentikPostgres(t *testing.T) {
	pool := postgresPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, authentikSchema); err != nil {
		t.Fatal(err)
	}
	sessiontest.Run(t, func(t *testing.T, now func() time.Time) session.Store {
		if _, err := pool.Exec(ctx, "DELETE FROM "+session.AuthentikTable); err != nil {
			t.Fatal(err)
		}
		s, err := session.NewAuthentikPostgres(pool, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	})
	// authentik's own rows (no akoutpost payload) are neither read nor
	// deleted.
	if _, err := pool.Exec(ctx, `INSERT INTO `+session.AuthentikTable+
		` (uuid, expires, expiring, session_key, session_data) VALUES (gen_random_uuid(), now() + interval '1 hour', true, 'theirs', '{"claims":{"sub":"x"}}')`); err != nil {
		t.Fatal(err)
	}
	s, _ := session.NewAuthentikPostgres(pool, nil)
	if _, err := s.Load(ctx, "theirs"); err == nil {
		t.Fatal("loaded a row authentik wrote")
	}
	if n, err := s.Delete(ctx, session.Filter{ID: "theirs"}); err != nil || n != 0 {
		t.Fatalf("Delete of authentik's row = %d, %v", n, err)
	}
}
