package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/proxy/session"
)

// The session cache must not keep a session alive: once the store no
// longer has it, or it has expired, a cached cookie is stale like any other.
func TestSessionCacheFollowsTheStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, a *application, now *time.Time)
	}{
		{"still valid", func(*testing.T, *application, *time.Time) {}},
		{"ended in the store", func(t *testing.T, a *application, _ *time.Time) {
			if n, err := a.p.store.Delete(context.Background(), session.Filter{Subject: "user-sub-1"}); err != nil || n != 1 {
				t.Fatalf("Delete: %d, %v", n, err)
			}
		}},
		{"expired", func(_ *testing.T, _ *application, now *time.Time) { *now = now.Add(2 * time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			p, err := New(outpost.Deps{}, Config{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			ext, _ := url.Parse("https://app.example.com")
			a := &application{p: p, name: "app", mode: modeProxy, external: ext, clientID: "c-app",
				cookieName: "authentik_proxy_app", validity: time.Hour}
			if err := a.initCodecs([]byte("0123456789abcdef0123456789abcdef")); err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
			r.Header.Set("Cookie", sessionCookie(t, a, fixedClaims()))

			first, stale, down := a.session(r)
			if first == nil || stale || down || first.headers.Get("X-Authentik-Username") != "alice" {
				t.Fatalf("first lookup: identity %v, stale %v, store down %v", first, stale, down)
			}
			tc.end(t, a, &now)
			again, stale, down := a.session(r)
			if tc.name == "still valid" {
				if again != first || stale || down {
					t.Fatalf("second lookup did not come from the cache: %p vs %p, stale %v", again, first, stale)
				}
				return
			}
			if again != nil || !stale || down {
				t.Fatalf("ended session still accepted: claims %v, stale %v, store down %v", again, stale, down)
			}
			if _, ok := a.sessions.get(r.Header.Get("Cookie")[len(a.cookieName)+1:]); ok {
				t.Fatal("ended session left in the cache")
			}
		})
	}
}
