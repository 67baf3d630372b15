package ldap_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/akoutpost/akoutpost/ldap"
	"github.com/akoutpost/akoutpost/outpost"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

const base = "DC=ldap,DC=goauthentik,DC=io"

func userDN(name string) string { return "cn=" + name + ",ou=users," + base }

// stack is a test core, an outpost and its LDAP provider on loopback.
type stack struct {
	core  *outposttest.Server
	addr  string
	addrs string // LDAPS
	o     *outpost.Outpost
}

func startStack(t *testing.T, blueprint []byte, outpostName string, edit func(*outposttest.Server)) *stack {
	t.Helper()
	return startStackWith(t, blueprint, outpostName, edit, ldap.Config{})
}

// startStackWith is startStack with the provider's Config taken from cfg
// (its listeners, token and version are set here).
func startStackWith(t *testing.T, blueprint []byte, outpostName string, edit func(*outposttest.Server), cfg ldap.Config) *stack {
	t.Helper()
	core, err := outposttest.NewServer(blueprint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	if edit != nil {
		edit(core)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lns, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.LDAPListener, cfg.LDAPSListener, cfg.Token, cfg.Version = ln, lns, core.Token(outpostName), "test"
	o, err := outpost.New(outpost.Config{CoreURL: core.URL(), Token: core.Token(outpostName),
		Providers: map[string]outpost.Factory{"ldap": ldap.Factory(cfg)}, Registerer: prometheus.NewRegistry(), UpdateJitter: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("outpost Run: %v", err)
		}
	})
	select {
	case <-o.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the LDAP outpost never became ready")
	}
	return &stack{core: core, addr: ln.Addr().String(), addrs: lns.Addr().String(), o: o}
}

func (s *stack) dial(t *testing.T) *goldap.Conn {
	t.Helper()
	c, err := goldap.DialURL("ldap://" + s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func code(err error) uint16 {
	if err == nil {
		return 0
	}
	var le *goldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0xffff
}

func e2eBlueprint(t *testing.T) []byte {
	b, err := os.ReadFile("testdata/e2e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIntegrationBind(t *testing.T) {
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	totp, err := s.core.TOTPCode("mfa", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dn, password string
		want               uint16
	}{
		{"right", userDN("admin"), "admin-pw", 0},
		{"mixed-case DN", "cn=admin,ou=Users,DC=ldaP,dc=goauthentik,dc=io", "admin-pw", 0},
		{"wrong", userDN("admin"), "admin-pwfqwerwqer", goldap.LDAPResultInvalidCredentials},
		{"MFA right", userDN("mfa"), "mfa-pw;" + totp, 0},
		{"MFA wrong", userDN("mfa"), "mfa-pw;000000", goldap.LDAPResultInvalidCredentials},
		{"inactive", userDN("inactive"), "inactive-pw", goldap.LDAPResultInvalidCredentials},
		{"no access", userDN("outsider"), "outsider-pw", goldap.LDAPResultInsufficientAccessRights},
		{"outside ou=users", "cn=admin,ou=groups," + base, "admin-pw", goldap.LDAPResultInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := code(s.dial(t).Bind(tt.dn, tt.password)); got != tt.want {
				t.Errorf("bind = %d, want %d", got, tt.want)
			}
		})
	}
	// The core down: never success.
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/flows/", Status: 500})
	if got := code(s.dial(t).Bind(userDN("admin"), "admin-pw")); got != goldap.LDAPResultUnavailable {
		t.Errorf("core failing: bind = %d, want 52", got)
	}
	s.core.ClearFaults()
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/outposts/ldap/", Status: 503})
	if got := code(s.dial(t).Bind(userDN("admin"), "admin-pw")); got != goldap.LDAPResultBusy {
		t.Errorf("access check busy: bind = %d, want 51", got)
	}
	s.core.ClearFaults()
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/core/users/me/", Malformed: true})
	if got := code(s.dial(t).Bind(userDN("admin"), "admin-pw")); got == 0 {
		t.Error("a malformed users/me answer let the bind through")
	}
	s.core.ClearFaults()
}

func dns(es []*goldap.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, strings.ToLower(e.DN))
	}
	return out
}

// authentik's e2e search expectations against the test core.
func TestIntegrationSearch(t *testing.T) {
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	c := s.dial(t)
	if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(goldap.NewSearchRequest("ou=Users,DC=ldaP,dc=goauthentik,dc=io", goldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(objectClass=user)", []string{"*", "+"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	got := dns(res.Entries)
	for _, u := range []string{"admin", "viewer", "mfa", "inactive", "outsider"} {
		if !slices.Contains(got, strings.ToLower(userDN(u))) {
			t.Errorf("%s missing from %q", u, got)
		}
	}
	if !slices.ContainsFunc(got, func(dn string) bool { return strings.HasPrefix(dn, "cn=ak-outpost-") }) {
		t.Errorf("the outpost's service account is missing from %q", got)
	}
	for _, e := range res.Entries {
		if e.GetAttributeValue("cn") != "admin" {
			continue
		}
		for attr, want := range map[string]string{"mail": "admin@goauthentik.io", "ak-superuser": "TRUE",
			"ak-active": "TRUE", "extraAttribute": "bar", "homeDirectory": "/home/admin", "sAMAccountName": "admin",
			"memberOf": "cn=admins,ou=groups,dc=ldap,dc=goauthentik,dc=io"} {
			if v := e.GetAttributeValue(attr); v != want {
				t.Errorf("admin %s = %q, want %q", attr, v, want)
			}
		}
		if e.GetAttributeValue("createTimestamp") == "" || len(e.GetAttributeValues("objectClass")) != 7 {
			t.Errorf("admin entry incomplete: %v", e.Attributes)
		}
	}
	// Only cn when asked for cn.
	res, err = c.Search(goldap.NewSearchRequest("ou=users,"+base, goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", []string{"cn"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Entries {
		if len(e.Attributes) != 1 || e.Attributes[0].Name != "cn" {
			t.Errorf("%s has %v", e.DN, e.Attributes)
		}
	}
	// An unprivileged user sees itself only.
	v := s.dial(t)
	if err := v.Bind(userDN("viewer"), "viewer-pw"); err != nil {
		t.Fatal(err)
	}
	res, err = v.Search(goldap.NewSearchRequest("ou=users,"+base, goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", []string{"*", "+"}, nil))
	if err != nil || !slices.Equal(dns(res.Entries), []string{strings.ToLower(userDN("viewer"))}) {
		t.Errorf("viewer saw %v, %v", dnsOf(res), err)
	}
	// The schema.
	res, err = c.Search(goldap.NewSearchRequest("cn=subschema", goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"objectClasses"}, nil))
	if err != nil || len(res.Entries) != 1 || !strings.Contains(strings.Join(res.Entries[0].GetAttributeValues("objectClasses"), "\n"), "'goauthentik.io/ldap/user'") {
		t.Errorf("schema: %v", err)
	}
	// Paged search over everything.
	paged, err := c.SearchWithPaging(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil), 3)
	if err != nil || len(paged.Entries) < 10 {
		t.Errorf("paged search: %d entries, %v", len(dnsOf(paged)), err)
	}
}

func dnsOf(r *goldap.SearchResult) []string {
	if r == nil {
		return nil
	}
	return dns(r.Entries)
}

// Ending the user's session in authentik closes the LDAP connection
// (authentik's e2e: "session terminated by server").
func TestIntegrationSessionEnd(t *testing.T) {
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", nil)
	c := s.dial(t)
	if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	if n := s.core.EndSessions("admin"); n == 0 {
		t.Fatal("no session to end")
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, err := c.Search(goldap.NewSearchRequest(base, goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil))
		if err != nil {
			if code(err) != 0xffff && code(err) != goldap.ErrorNetwork && code(err) != goldap.LDAPResultUnavailable {
				t.Errorf("search after session end: %v, want the connection closed", err)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("the connection survived the end of its session")
}

// Cached bind mode: a bind is remembered, but a password change seen by a
// refresh forgets it, so the old password stops working (authentik's
// cached binds kept old passwords until restart, #12294).
func TestIntegrationCachedBindAfterPasswordChange(t *testing.T) {
	s := startStack(t, e2eBlueprint(t), "ldap-outpost", func(core *outposttest.Server) {
		if err := core.UpdateProvider("ldap", map[string]any{"bind_mode": "cached"}); err != nil {
			t.Fatal(err)
		}
	})
	if err := s.dial(t).Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	flows := s.core.RequestCount("/api/v3/flows/")
	if err := s.dial(t).Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	if s.core.RequestCount("/api/v3/flows/") != flows {
		t.Error("the second bind was not served from the cache")
	}
	if err := s.core.SetUserPassword("admin", "changed-pw"); err != nil {
		t.Fatal(err)
	}
	s.core.TriggerUpdate("ldap-outpost")
	deadline := time.Now().Add(10 * time.Second)
	for code(s.dial(t).Bind(userDN("admin"), "admin-pw")) != goldap.LDAPResultInvalidCredentials {
		if time.Now().After(deadline) {
			t.Fatal("the old password still binds after the refresh")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.dial(t).Bind(userDN("admin"), "changed-pw"); err != nil {
		t.Errorf("new password: %v", err)
	}
	// Failed binds are never cached, and the core failing is never success
	// even for a DN with a cached bind under another password.
	s.core.Fault(outposttest.Fault{PathPrefix: "/api/v3/flows/", Status: 502})
	if got := code(s.dial(t).Bind(userDN("admin"), "admin-pw")); got != goldap.LDAPResultUnavailable {
		t.Errorf("core down, uncached password: %d, want 52", got)
	}
}
