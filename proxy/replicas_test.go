package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/proxy/session"
	"github.com/akoutpost/akoutpost/proxy/session/sessiontest"
)

// replica starts a second provider with the same configuration as e,
// using store, and returns a client that reaches it for ".test" hosts.
func (e *testEnv) replica(t *testing.T, store session.Store) (*Provider, *http.Transport) {
	t.Helper()
	p, err := New(outpost.Deps{}, Config{SessionStore: store})
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	for _, a := range e.apps {
		raws = append(raws, e.wire(a))
	}
	if err := applyTo(e, p, raws); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	tr := &http.Transport{DialContext: redirectDial(srv.Listener.Addr().String())}
	t.Cleanup(tr.CloseIdleConnections)
	return p, tr
}

// testReplicas: two outposts behind a load balancer share a store. A login
// through one is valid on the other; a sign-out through one, or a session
// end received by one, ends the session on both. authentik kept sessions
// per replica (#5674, #6883) and its session end reached only the replicas
// whose websocket was up. settle lets a change made through one replica's
// store reach the other's (the file store rechecks a session it
// remembers within session.FileRecheck); nil for stores that need nothing.
func testReplicas(t *testing.T, newStore func(t *testing.T) session.Store, settle func()) {
	if settle == nil {
		settle = func() {}
	}
	e := newTestEnv(t, Config{SessionStore: newStore(t)}, app{name: "app", external: "http://app.test"})
	_, trA := e.replica(t, newStore(t))
	pB, trB := e.replica(t, newStore(t))
	jar, _ := cookiejar.New(nil)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	a := &http.Client{Jar: jar, Transport: trA}
	b := &http.Client{Jar: jar, Transport: trB, CheckRedirect: noRedirect}
	aNF := &http.Client{Jar: jar, Transport: trA, CheckRedirect: noRedirect}

	if resp := mustGet(t, a, "http://app.test/x", nil); resp.StatusCode != 200 {
		t.Fatalf("login through A: status %d", resp.StatusCode)
	}
	if resp := mustGet(t, b, "http://app.test/x", nil); resp.StatusCode != 200 {
		t.Fatalf("session from A refused by B: status %d", resp.StatusCode)
	}
	// The browser drops its cookie at sign-out; replay a copy taken before,
	// so the check is that the session is gone, not just the cookie.
	u, _ := url.Parse("http://app.test/")
	var copied string
	for _, c := range jar.Cookies(u) {
		copied += c.Name + "=" + c.Value + "; "
	}
	if resp := mustGet(t, b, "http://app.test/outpost.goauthentik.io/sign_out", nil); resp.StatusCode != 302 {
		t.Fatalf("sign out through B: status %d", resp.StatusCode)
	}
	settle()
	replay := &http.Client{Transport: trA, CheckRedirect: noRedirect}
	if resp := mustGet(t, replay, "http://app.test/x", map[string]string{"Cookie": copied}); resp.StatusCode != 302 {
		t.Fatalf("A after sign out through B: status %d, want a login redirect", resp.StatusCode)
	}
	if resp := mustGet(t, a, "http://app.test/y", nil); resp.StatusCode != 200 {
		t.Fatalf("second login through A: status %d", resp.StatusCode)
	}
	if err := pB.HandleMessage(context.Background(), outpost.Message{
		Instruction: outpost.InstructionSessionEnd, Args: map[string]any{"session_id": "authentik-session-hash-1"}}); err != nil {
		t.Fatal(err)
	}
	settle()
	if resp := mustGet(t, aNF, "http://app.test/x", nil); resp.StatusCode != 302 {
		t.Fatalf("A after session end received by B: status %d, want a login redirect", resp.StatusCode)
	}
}

func TestReplicasShareFileStore(t *testing.T) {
	dir := t.TempDir()
	clock := &sessiontest.Clock{}
	clock.Advance(time.Since(time.Time{}))
	testReplicas(t, func(t *testing.T) session.Store {
		s, err := session.NewFile(dir, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, func() { clock.Advance(session.FileRecheck) })
}

func TestReplicasShareRedis(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: testservers.RedisAddr(t)})
	t.Cleanup(func() { client.Close() })
	for i := 0; client.Ping(context.Background()).Err() != nil; i++ {
		if i > 200 {
			t.Fatal("Redis does not answer")
		}
		time.Sleep(25 * time.Millisecond)
	}
	testReplicas(t, func(t *testing.T) session.Store {
		s, err := session.NewRedis(client, "replicas:", nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, nil)
}

func TestReplicasSharePostgres(t *testing.T) {
	dsn := testservers.PostgresURL(t)
	ctx := context.Background()
	var pool *pgxpool.Pool
	var err error
	for i := 0; ; i++ {
		if pool, err = pgxpool.New(ctx, dsn); err == nil {
			if err = pool.Ping(ctx); err == nil {
				break
			}
			pool.Close()
		}
		if i > 100 {
			t.Fatalf("PostgreSQL does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(pool.Close)
	table := fmt.Sprintf("replicas_%d", time.Now().UnixNano()%1e9)
	testReplicas(t, func(t *testing.T) session.Store {
		s, err := session.NewPostgres(pool, table, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}, nil)
}
