package ldap_test

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/akoutpost/akoutpost/ldap"
)

// TestThrottleLdapwhoami guesses a password with OpenLDAP's ldapwhoami
// until the throttle locks the pair. The client sees the same answer for
// a wrong password and for a locked pair (49, the same message), even
// with the right password; locked binds ask the core nothing; another
// address binds as the user meanwhile; the lockout ends on the clock.
func TestThrottleLdapwhoami(t *testing.T) {
	requireTool(t, "ldapwhoami")
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	s := startStackWith(t, e2eBlueprint(t), "ldap-outpost", nil, ldap.Config{Now: clock,
		BindThrottle: ldap.BindThrottle{MaxFailures: 3, Lockout: time.Hour, Delay: time.Millisecond, MaxDelay: 2 * time.Millisecond}})
	whoami := func(pw string) (string, error) {
		cmd := exec.Command("ldapwhoami", "-H", "ldap://"+s.addr, "-x", "-D", userDN("viewer"), "-w", pw)
		cmd.Env = append(os.Environ(), "LDAPCONF=/dev/null", "LDAPRC=/dev/null")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	var wrong string
	for i := range 3 {
		out, err := whoami("guess")
		if err == nil {
			t.Fatalf("a wrong password was accepted: %s", out)
		}
		if i == 0 {
			wrong = out
		} else if out != wrong {
			t.Fatalf("wrong password %d answered %q, the first %q", i+1, out, wrong)
		}
	}
	if !strings.Contains(wrong, "Invalid credentials (49)") {
		t.Fatalf("a wrong password answered %q", wrong)
	}
	s.core.ResetRequests()
	for _, pw := range []string{"guess", "viewer-pw"} {
		out, err := whoami(pw)
		if err == nil || out != wrong {
			t.Errorf("locked, password %q answered %q (err %v), want what a wrong password gets: %q", pw, out, err, wrong)
		}
	}
	if lines, total, _, _ := coreRequests(s.core); total != 0 {
		t.Errorf("locked binds made %d core requests:\n%s", total, lines)
	}

	// From 127.0.0.2, another address of this host, the user binds.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := goldap.DialURL("ldap://"+s.addr, goldap.DialWithDialer(d))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(userDN("viewer"), "viewer-pw"); err != nil {
		t.Errorf("another address was locked out too: %v", err)
	}

	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	out, err := whoami("viewer-pw")
	if err != nil || !strings.Contains(strings.ToLower(out), "cn=viewer,ou=users") {
		t.Errorf("after the lockout, ldapwhoami = %q (%v)", out, err)
	}
}
