package ldap

import (
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// A search that waits for the core runs on a worker, so the connection's
// other requests are still read and answered meanwhile; only searches
// answered from memory run on the reader.
func TestSlowDirectSearchDoesNotHoldTheConnection(t *testing.T) {
	tp := startProvider(t, "direct", "direct")
	c := tp.dial(t)
	if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(5 * time.Second)
	hold := make(chan struct{})
	listings := func() int { return tp.core.requestCount("GET /api/v3/core/users/?") }
	before := listings()
	tp.core.mu.Lock()
	tp.core.hold = hold
	tp.core.mu.Unlock()
	released := false
	release := func() {
		if !released {
			released = true
			close(hold)
		}
	}
	defer release()

	slow := make(chan error, 1)
	go func() {
		_, err := c.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false,
			"(&(objectClass=user)(cn=alice))", nil, nil))
		slow <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for listings() == before {
		if time.Now().After(deadline) {
			t.Fatal("the direct search never reached the core")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := c.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=*)", []string{"namingContexts"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("root DSE while a direct search waits for the core: %v", err)
	}
	select {
	case err := <-slow:
		t.Fatalf("the direct search finished while the core held it: %v", err)
	default:
	}
	release()
	if err := <-slow; err != nil {
		t.Fatalf("direct search: %v", err)
	}
}
