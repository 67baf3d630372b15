package ldap_test

import (
	"fmt"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// Issue 6 bounds what one direct bind costs the core, over connections
// that are reused, at 3 requests: the identification answer (which starts
// the flow, as authentik's executor allows), the password answer, and the
// access check.
const targetRequestsPerDirectBind = 3

// coreRequests returns the API requests the core saw, as lines for a log,
// and how many went to the flow executor and to users/me.
func coreRequests(core *outposttest.Server) (lines string, total, flows, me int) {
	var b strings.Builder
	for _, r := range core.Requests() {
		if !strings.HasPrefix(r.Path, "/api/v3/") || strings.HasPrefix(r.Path, "/api/v3/outposts/instances/") {
			// The outpost's own configuration and websocket traffic is
			// not part of a bind.
			continue
		}
		total++
		switch {
		case strings.HasPrefix(r.Path, "/api/v3/flows/executor/"):
			flows++
		case r.Path == "/api/v3/core/users/me/":
			me++
		}
		fmt.Fprintf(&b, "  %s %s -> %d\n", r.Method, r.Path, r.Status)
	}
	return b.String(), total, flows, me
}

// TestDirectBindRequestCount counts the core requests of direct binds (no
// bind cache) made over a reused LDAP connection, so a change that adds a
// round trip to every bind shows up without any timing.
func TestDirectBindRequestCount(t *testing.T) {
	// Throttling off: six wrong passwords in a row would lock the pair,
	// and a locked bind asks the core nothing (TestThrottleLdapwhoami).
	s := startStackWith(t, e2eBlueprint(t), "ldap-outpost", nil,
		ldap.Config{BindThrottle: ldap.BindThrottle{MaxFailures: -1, Delay: -1}})
	tests := []struct {
		name, user, password string
		wantCode             uint16
		max                  int
	}{
		{"success", "admin", "admin-pw", 0, targetRequestsPerDirectBind},
		{"success, user without search permission", "viewer", "viewer-pw", 0, targetRequestsPerDirectBind},
		// A refused bind stops after the password stage: no access check.
		{"wrong password", "viewer", "not-the-password", goldap.LDAPResultInvalidCredentials, 2},
	}
	const binds = 5
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.dial(t)
			// The first bind of a connection also asks who the user is;
			// the binds after it, on the same connection, are counted.
			_ = c.Bind(userDN(tt.user), tt.password)
			s.core.ResetRequests()
			for range binds {
				if got := code(c.Bind(userDN(tt.user), tt.password)); got != tt.wantCode {
					t.Fatalf("bind as %s = %d, want %d", tt.user, got, tt.wantCode)
				}
			}
			lines, total, _, _ := coreRequests(s.core)
			t.Logf("%d binds made %d core requests (%.1f per bind):\n%s", binds, total, float64(total)/binds, lines)
			if total > tt.max*binds {
				t.Errorf("%.1f core requests per direct bind, want at most %d", float64(total)/binds, tt.max)
			}
		})
	}
}

// TestDirectRebindAnotherUser checks that a connection rebinding as
// another user asks who that user is instead of keeping the previous
// identity: viewer, who may not search the directory, must not inherit
// admin's view.
func TestDirectRebindAnotherUser(t *testing.T) {
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	c := s.dial(t)
	search := func() []string {
		t.Helper()
		res, err := c.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false,
			"(cn=admin)", []string{"cn"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		return dns(res.Entries)
	}
	for range 2 {
		if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
			t.Fatal(err)
		}
	}
	if got := search(); len(got) == 0 {
		t.Fatal("admin, bound twice, does not see its own entry")
	}
	s.core.ResetRequests()
	if err := c.Bind(userDN("viewer"), "viewer-pw"); err != nil {
		t.Fatal(err)
	}
	lines, _, _, me := coreRequests(s.core)
	if me != 1 {
		t.Errorf("rebinding as another user asked users/me %d times, want 1:\n%s", me, lines)
	}
	if got := search(); len(got) != 0 {
		t.Errorf("viewer, bound after admin on the same connection, sees admin's entries %v", got)
	}
	// A failed bind leaves the connection anonymous; the next bind as the
	// same user as before the failure asks again.
	if err := c.Bind(userDN("viewer"), "wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	s.core.ResetRequests()
	if err := c.Bind(userDN("viewer"), "viewer-pw"); err != nil {
		t.Fatal(err)
	}
	if lines, _, _, me := coreRequests(s.core); me != 1 {
		t.Errorf("a bind after a failed one asked users/me %d times, want 1:\n%s", me, lines)
	}
}
