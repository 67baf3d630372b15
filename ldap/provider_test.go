package ldap

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/akoutpost/akoutpost/outpost"
)

const base = "DC=ldap,DC=goauthentik,DC=io"

// testProvider is a provider serving 127.0.0.1 against a fake core.
type testProvider struct {
	core        *fakeCore
	p           *Provider
	reg         *prometheus.Registry
	update      outpost.Update
	ldap, ldaps string
}

func providerJSON(searchMode, bindMode string) json.RawMessage {
	return json.RawMessage(`{"pk": 1, "name": "ldap", "base_dn": "` + base + `",
		"bind_flow_slug": "default-authentication-flow", "application_slug": "ldap-app",
		"uid_start_number": 2000, "gid_start_number": 4000,
		"search_mode": "` + searchMode + `", "bind_mode": "` + bindMode + `", "mfa_support": true}`)
}

// testDeps lends a provider a client for a core that is never called.
func testDeps(t testing.TB) outpost.Deps {
	t.Helper()
	api, err := outpost.NewClient(outpost.ClientConfig{URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return outpost.Deps{API: api}
}

func startProvider(t testing.TB, searchMode, bindMode string) *testProvider {
	t.Helper()
	return startProviderWith(t, searchMode, bindMode, nil)
}

// startProviderWith is startProvider with a chance to change the
// provider's Config before New.
func startProviderWith(t testing.TB, searchMode, bindMode string, edit func(*Config)) *testProvider {
	t.Helper()
	tp := &testProvider{core: newFakeCore(t), reg: prometheus.NewRegistry()}
	api, err := outpost.NewClient(outpost.ClientConfig{URL: tp.core.url(), Token: "outpost-token", RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	tp.update = outpost.Update{
		Outpost:   outpost.Info{Name: "test-outpost"},
		Providers: []json.RawMessage{providerJSON(searchMode, bindMode)},
	}
	lnPlain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnTLS, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp.ldap, tp.ldaps = lnPlain.Addr().String(), lnTLS.Addr().String()
	cfg := Config{LDAPListener: lnPlain, LDAPSListener: lnTLS, Token: "outpost-token", Version: "test"}
	if edit != nil {
		edit(&cfg)
	}
	tp.p, err = New(outpost.Deps{API: api, Logger: slog.New(slog.DiscardHandler), Registerer: tp.reg}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.p.Apply(context.Background(), tp.update); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tp.p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return tp
}

func (tp *testProvider) dial(t testing.TB) *goldap.Conn {
	t.Helper()
	c, err := goldap.DialURL("ldap://" + tp.ldap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func userDN(name string) string { return "cn=" + name + ",ou=users," + base }

func resultCode(err error) uint16 {
	if err == nil {
		return 0
	}
	var le *goldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0xffff
}

func TestBind(t *testing.T) {
	tp := startProvider(t, "cached", "direct")
	tests := []struct {
		name, dn, password string
		want               uint16
	}{
		{"right password", userDN("admin"), "admin-pw", 0},
		{"mixed-case DN", "CN=admin,OU=Users,dc=LDAP,dc=goauthentik,dc=io", "admin-pw", 0},
		{"wrong password", userDN("admin"), "admin-pwfqwerwqer", goldap.LDAPResultInvalidCredentials},
		{"unknown user", userDN("nobody"), "x", goldap.LDAPResultInvalidCredentials},
		{"mfa right code", userDN("mfa"), "mfa-pw;123456", 0},
		{"mfa wrong code", userDN("mfa"), "mfa-pw;654321", goldap.LDAPResultInvalidCredentials},
		{"mfa missing code", userDN("mfa"), "mfa-pw", goldap.LDAPResultInvalidCredentials},
		{"inactive user", userDN("inactive"), "inactive-pw", goldap.LDAPResultInvalidCredentials},
		{"no access to the application", userDN("outsider"), "outsider-pw", goldap.LDAPResultInsufficientAccessRights},
		// authentik bound cn=admin,ou=groups,BASE as admin (#25394).
		{"DN under ou=groups", "cn=admin,ou=groups," + base, "admin-pw", goldap.LDAPResultInvalidCredentials},
		{"DN directly under base", "cn=admin," + base, "admin-pw", goldap.LDAPResultInvalidCredentials},
		{"uid instead of cn", "uid=admin,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidCredentials},
		{"other base", "cn=admin,ou=users,dc=example,dc=com", "admin-pw", goldap.LDAPResultInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tp.dial(t)
			if got := resultCode(c.Bind(tt.dn, tt.password)); got != tt.want {
				t.Errorf("bind = %d, want %d", got, tt.want)
			}
		})
	}
	// An unauthenticated bind never reaches the core.
	before := tp.core.requestCount("GET /api/v3/flows")
	if got := resultCode(tp.dial(t).UnauthenticatedBind(userDN("admin"))); got != goldap.LDAPResultUnwillingToPerform {
		t.Errorf("unauthenticated bind = %d, want 53", got)
	}
	if tp.core.requestCount("GET /api/v3/flows") != before {
		t.Error("an unauthenticated bind ran the flow")
	}
	if n := testutil.CollectAndCount(tp.reg, "authentik_outpost_ldap_requests_rejected_total"); n == 0 {
		t.Error("no rejected binds counted")
	}
	// Labels are authentik's, with bounded values.
	families, err := tp.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "authentik_outpost_ldap_request_duration_seconds":
				if labels["outpost_name"] == "test-outpost" && labels["type"] == "bind" && labels["app"] == "ldap-app" {
					found["duration"] = true
				}
			case "authentik_outpost_ldap_requests_rejected_total":
				if labels["reason"] == "invalid_credentials" && labels["type"] == "bind" {
					found["rejected"] = true
				}
				if strings.Contains(labels["reason"], "pw") {
					t.Errorf("a reason label carries request data: %q", labels["reason"])
				}
			case "authentik_outpost_flow_timing_get_seconds":
				if labels["flow"] == "default-authentication-flow" && labels["stage"] == "ak-stage-identification" {
					found["flow"] = true
				}
			}
		}
	}
	for _, k := range []string{"duration", "rejected", "flow"} {
		if !found[k] {
			t.Errorf("metric %s with the expected labels not found", k)
		}
	}
}

// The core failing must never let a bind through: authentik answered
// success when its bind handler panicked on a failed access check.
func TestBindCoreDown(t *testing.T) {
	tp := startProvider(t, "cached", "direct")
	for _, tt := range []struct {
		status int
		want   uint16
	}{
		{500, goldap.LDAPResultUnavailable},
		{502, goldap.LDAPResultUnavailable},
		{503, goldap.LDAPResultBusy},
		{429, goldap.LDAPResultBusy},
		{404, goldap.LDAPResultOther},
	} {
		tp.core.setDown(tt.status)
		if got := resultCode(tp.dial(t).Bind(userDN("admin"), "admin-pw")); got != tt.want {
			t.Errorf("core answering %d: bind = %d, want %d", tt.status, got, tt.want)
		}
	}
	tp.core.setDown(0)
	tp.core.srv.Close()
	if got := resultCode(tp.dial(t).Bind(userDN("admin"), "admin-pw")); got != goldap.LDAPResultUnavailable {
		t.Errorf("core gone: bind = %d, want 52", got)
	}
}

func TestCachedBind(t *testing.T) {
	tp := startProvider(t, "cached", "cached")
	if err := tp.dial(t).Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	flows := tp.core.requestCount("GET /api/v3/flows")
	if err := tp.dial(t).Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	if tp.core.requestCount("GET /api/v3/flows") != flows {
		t.Error("a cached bind ran the flow")
	}
	// Failures are never cached: each runs the flow.
	for range 2 {
		if got := resultCode(tp.dial(t).Bind(userDN("admin"), "wrong")); got != goldap.LDAPResultInvalidCredentials {
			t.Fatalf("wrong password = %d", got)
		}
	}
	if got := tp.core.requestCount("GET /api/v3/flows"); got != flows+2 {
		t.Errorf("flows run = %d, want %d", got, flows+2)
	}
	// The password changes; after a refresh the old one is forgotten.
	tp.core.setPassword("admin", "new-pw")
	if err := tp.p.Apply(context.Background(), tp.update); err != nil {
		t.Fatal(err)
	}
	if got := resultCode(tp.dial(t).Bind(userDN("admin"), "admin-pw")); got != goldap.LDAPResultInvalidCredentials {
		t.Errorf("old password after change = %d, want 49", got)
	}
	if err := tp.dial(t).Bind(userDN("admin"), "new-pw"); err != nil {
		t.Errorf("new password: %v", err)
	}
	// A session end forgets the bind.
	for _, id := range tp.core.sessionIDs("admin") {
		tp.p.HandleMessage(context.Background(), outpost.Message{Instruction: outpost.InstructionSessionEnd, Args: map[string]any{"session_id": id}})
	}
	flows = tp.core.requestCount("GET /api/v3/flows")
	if err := tp.dial(t).Bind(userDN("admin"), "new-pw"); err != nil {
		t.Fatal(err)
	}
	if tp.core.requestCount("GET /api/v3/flows") != flows+1 {
		t.Error("a bind of an ended session came from the cache")
	}
}

func search(t *testing.T, c *goldap.Conn, baseDN, filter string, attrs ...string) []*goldap.Entry {
	t.Helper()
	res, err := c.Search(goldap.NewSearchRequest(baseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil))
	if err != nil {
		t.Fatalf("search %s %s: %v", baseDN, filter, err)
	}
	return res.Entries
}

func dns(entries []*goldap.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.DN)
	}
	return out
}

func allUserDNs() []string {
	return []string{userDN("ak-outpost-4c5e0e1f"), userDN("admin"), userDN("viewer"), userDN("mfa"), userDN("inactive"), userDN("outsider")}
}

func lower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

// authentik's e2e expectations, in both search modes.
func TestSearchE2E(t *testing.T) {
	for _, mode := range []string{"cached", "direct"} {
		t.Run(mode, func(t *testing.T) {
			tp := startProvider(t, mode, "direct")
			c := tp.dial(t)
			if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
				t.Fatal(err)
			}
			got := search(t, c, "ou=Users,DC=ldaP,dc=goauthentik,dc=io", "(objectClass=user)", "*", "+")
			want := lower(allUserDNs())
			if !slices.Equal(lower(dns(got)), want) {
				t.Fatalf("permitted user saw %q, want %q", dns(got), want)
			}
			admin := got[1]
			for attr, val := range map[string]string{"cn": "admin", "mail": "admin@goauthentik.io", "uidNumber": "2007",
				"ak-superuser": "TRUE", "extraAttribute": "bar", "homeDirectory": "/home/admin",
				"memberOf": "cn=akadmin-group,ou=groups,dc=ldap,dc=goauthentik,dc=io", "modifyTimestamp": "20260203040506Z"} {
				if v := admin.GetAttributeValue(attr); v != val {
					t.Errorf("%s = %q, want %q", attr, v, val)
				}
			}
			if oc := admin.GetAttributeValues("objectClass"); len(oc) != 7 {
				t.Errorf("objectClass = %q", oc)
			}
			// Only cn when asked for cn.
			for _, e := range search(t, c, "ou=users,"+base, "(objectClass=user)", "cn") {
				if len(e.Attributes) != 1 || e.Attributes[0].Name != "cn" {
					t.Errorf("%s: attributes %v, want only cn", e.DN, e.Attributes)
				}
			}
			// An unprivileged user sees one user: itself.
			v := tp.dial(t)
			if err := v.Bind(userDN("viewer"), "viewer-pw"); err != nil {
				t.Fatal(err)
			}
			if got := dns(search(t, v, "ou=users,"+base, "(objectClass=user)", "*", "+")); !slices.Equal(lower(got), lower([]string{userDN("viewer")})) {
				t.Errorf("unprivileged user saw %q", got)
			}
			groups := search(t, v, base, "(objectClass=group)", "member")
			if len(groups) != 2 {
				t.Errorf("unprivileged user saw groups %q", dns(groups))
			}
			// The schema names authentik's object class.
			schema := search(t, c, "cn=subschema", "(objectClass=*)", "objectClasses")
			if len(schema) != 1 || !slices.ContainsFunc(schema[0].GetAttributeValues("objectClasses"), func(s string) bool {
				return strings.Contains(s, "'goauthentik.io/ldap/user'")
			}) {
				t.Error("schema lacks goauthentik.io/ldap/user")
			}
		})
	}
}

func TestSearchProtocol(t *testing.T) {
	tp := startProvider(t, "cached", "direct")
	// The root DSE answers anonymous clients.
	anon := tp.dial(t)
	res, err := anon.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"namingContexts", "supportedControl"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("namingContexts") != strings.ToLower(base) {
		t.Fatalf("root DSE = %+v, %v", res, err)
	}
	// Anything else needs a bind: no entries, and the connection stays.
	res, err = anon.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if err != nil || len(res.Entries) != 0 {
		t.Errorf("anonymous search = %v, %v; want success with no entries", res, err)
	}
	c := tp.dial(t)
	if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	// Errors are LDAP results; the connection stays usable.
	_, err = c.Search(goldap.NewSearchRequest("cn=nobody,ou=users,"+base, goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if got := resultCode(err); got != goldap.LDAPResultNoSuchObject {
		t.Errorf("missing base = %d, want 32", got)
	}
	// Three fixture users have a modifyTimestamp (authentik's #17960: SSSD's
	// ordering filters failed and disconnected).
	if got := search(t, c, base, "(modifyTimestamp>=20200101000000Z)", "cn"); len(got) != 3 {
		t.Errorf("ordering filter found %d entries, want 3", len(got))
	}
	// sizeLimit is answered with sizeLimitExceeded.
	res, err = c.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 1, 0, false, "(objectClass=user)", []string{"cn"}, nil))
	if got := resultCode(err); got != goldap.LDAPResultSizeLimitExceeded || res == nil || len(res.Entries) != 1 {
		t.Errorf("sizeLimit 1: code %d, result %+v", got, res)
	}
	// Paged results: every entry, in pages of two.
	paged, err := c.SearchWithPaging(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", []string{"cn"}, nil), 2)
	if err != nil || !slices.Equal(lower(dns(paged.Entries)), lower(allUserDNs())) {
		t.Errorf("paged search = %v, %v", dnsOf(paged), err)
	}
	// A cookie is good once.
	ctrl := goldap.NewControlPaging(2)
	req := goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", []string{"cn"}, []goldap.Control{ctrl})
	first, err := c.Search(req)
	if err != nil || len(first.Entries) != 2 {
		t.Fatalf("first page = %v, %v", dnsOf(first), err)
	}
	cookie := goldap.FindControl(first.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging).Cookie
	ctrl.SetCookie(cookie)
	if second, err := c.Search(req); err != nil || len(second.Entries) != 2 {
		t.Fatalf("second page = %v, %v", dnsOf(second), err)
	}
	ctrl.SetCookie(cookie)
	if _, err := c.Search(req); resultCode(err) != goldap.LDAPResultUnwillingToPerform {
		t.Errorf("reused cookie: %v", err)
	}
	// Compare.
	if ok, err := c.Compare(userDN("admin"), "mail", "ADMIN@goauthentik.io"); err != nil || !ok {
		t.Errorf("compare = %v, %v", ok, err)
	}
	// WhoAmI.
	if who, err := c.WhoAmI(nil); err != nil || !strings.EqualFold(who.AuthzID, "dn:"+userDN("admin")) {
		t.Errorf("whoami = %+v, %v", who, err)
	}
}

func dnsOf(r *goldap.SearchResult) []string {
	if r == nil {
		return nil
	}
	return dns(r.Entries)
}

// A failed bind makes the connection anonymous again (RFC 4511 4.2.1);
// authentik kept the previous identity.
func TestFailedBindResetsIdentity(t *testing.T) {
	tp := startProvider(t, "cached", "direct")
	c := tp.dial(t)
	if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	c.Bind(userDN("admin"), "wrong")
	res, err := c.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", nil, nil))
	if err != nil || len(res.Entries) != 0 {
		t.Errorf("search after failed bind: %d entries, %v; want none (anonymous again)", len(res.Entries), err)
	}
}

func TestSessionEndClosesConnection(t *testing.T) {
	tp := startProvider(t, "cached", "direct")
	c := tp.dial(t)
	if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	ids := tp.core.sessionIDs("admin")
	if len(ids) != 1 {
		t.Fatalf("sessions = %v", ids)
	}
	if err := tp.p.HandleMessage(context.Background(), outpost.Message{Instruction: outpost.InstructionSessionEnd, Args: map[string]any{"session_id": ids[0]}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Search(goldap.NewSearchRequest(base, goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil)); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("the connection of an ended session still answers")
}

func TestTLS(t *testing.T) {
	tp := startProvider(t, "cached", "direct")
	conf := &tls.Config{InsecureSkipVerify: true, ServerName: "ldap.example.com"}
	ldaps, err := goldap.DialURL("ldaps://"+tp.ldaps, goldap.DialWithTLSConfig(conf))
	if err != nil {
		t.Fatal(err)
	}
	defer ldaps.Close()
	if err := ldaps.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Errorf("LDAPS bind: %v", err)
	}
	c := tp.dial(t)
	if err := c.StartTLS(conf); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Errorf("bind after StartTLS: %v", err)
	}
}

// Direct search mode has no directory snapshot: a refresh asks the core
// which users changed since the oldest cached bind.
func TestCachedBindDirectSearch(t *testing.T) {
	tp := startProvider(t, "direct", "cached")
	if err := tp.dial(t).Bind(userDN("viewer"), "viewer-pw"); err != nil {
		t.Fatal(err)
	}
	if err := tp.dial(t).Bind(userDN("admin"), "admin-pw"); err != nil {
		t.Fatal(err)
	}
	tp.core.setPassword("admin", "new-pw")
	// The fake's users changed "now"; the cached binds were stored now too,
	// and the refresh looks back one minute before the oldest.
	if err := tp.p.Apply(context.Background(), tp.update); err != nil {
		t.Fatal(err)
	}
	if got := resultCode(tp.dial(t).Bind(userDN("admin"), "admin-pw")); got != goldap.LDAPResultInvalidCredentials {
		t.Errorf("old password after change = %d, want 49", got)
	}
	flows := tp.core.requestCount("GET /api/v3/flows")
	if err := tp.dial(t).Bind(userDN("viewer"), "viewer-pw"); err != nil {
		t.Fatal(err)
	}
	if tp.core.requestCount("GET /api/v3/flows") != flows {
		t.Error("an unchanged user's cached bind was forgotten")
	}
	if err := tp.p.HandleMessage(context.Background(), outpost.Message{Instruction: outpost.InstructionSessionEnd, Args: map[string]any{}}); err == nil {
		t.Error("a session end without session_id was accepted")
	}
}

// A failed refresh keeps the last good directory (authentik served an
// empty or partial one, #4138); a good one replaces it atomically.
func TestRefreshKeepsLastGoodDirectory(t *testing.T) {
	tp := startProvider(t, "cached", "direct")
	c := tp.dial(t)
	if err := c.Bind(userDN("viewer"), "viewer-pw"); err != nil {
		t.Fatal(err)
	}
	memberOf := func() []string {
		t.Helper()
		es := search(t, c, userDN("viewer"), "(objectClass=person)", "memberOf")
		if len(es) != 1 {
			t.Fatalf("viewer sees %d entries of itself", len(es))
		}
		return es[0].GetAttributeValues("memberOf")
	}
	if got := memberOf(); !slices.Equal(got, []string{"cn=staff,ou=groups,dc=ldap,dc=goauthentik,dc=io"}) {
		t.Fatalf("memberOf = %q", got)
	}
	// The core moves viewer to another group, but the refresh fails.
	tp.core.mu.Lock()
	tp.core.user("viewer").Groups = []groupRef{{PK: "g-y", NumPK: 5, Name: "y"}}
	tp.core.mu.Unlock()
	tp.core.setDown(500)
	if err := tp.p.Apply(context.Background(), tp.update); err != nil {
		t.Fatalf("Apply with the directory unreachable: %v", err)
	}
	tp.core.setDown(0)
	if got := memberOf(); !slices.Equal(got, []string{"cn=staff,ou=groups,dc=ldap,dc=goauthentik,dc=io"}) {
		t.Errorf("after a failed refresh memberOf = %q, want the last good one", got)
	}
	if err := tp.p.Apply(context.Background(), tp.update); err != nil {
		t.Fatal(err)
	}
	if got := memberOf(); !slices.Equal(got, []string{"cn=y,ou=groups,dc=ldap,dc=goauthentik,dc=io"}) {
		t.Errorf("after a good refresh memberOf = %q", got)
	}
}

// A refresh that finds the same JSON keeps the directory it has; one that
// finds a changed user rebuilds it, decoding only that user.
func TestRefreshReusesUnchangedUsers(t *testing.T) {
	tp := startProvider(t, "cached", "direct")
	snap := func() *snapshot {
		t.Helper()
		st := tp.p.state.Load()
		if st == nil || len(st.providers) != 1 {
			t.Fatal("no provider state")
		}
		return st.providers[0].snap.Load()
	}
	byName := func(s *snapshot, name string) *user {
		t.Helper()
		for _, u := range s.userList {
			if u.Username == name {
				return u
			}
		}
		t.Fatalf("no user %s in the directory", name)
		return nil
	}
	first := snap()
	if err := tp.p.Apply(context.Background(), tp.update); err != nil {
		t.Fatal(err)
	}
	if snap() != first {
		t.Error("an unchanged directory was rebuilt")
	}

	tp.core.mu.Lock()
	tp.core.user("viewer").Name = "Viewer Renamed"
	tp.core.mu.Unlock()
	if err := tp.p.Apply(context.Background(), tp.update); err != nil {
		t.Fatal(err)
	}
	second := snap()
	if second == first {
		t.Fatal("a changed user did not rebuild the directory")
	}
	if got := byName(second, "viewer").Name; got != "Viewer Renamed" {
		t.Errorf("viewer's name after the refresh = %q", got)
	}
	// Decoding makes new strings; a reused user keeps the old ones.
	if unsafe.StringData(byName(second, "admin").UID) != unsafe.StringData(byName(first, "admin").UID) {
		t.Error("an unchanged user was decoded again")
	}
	if unsafe.StringData(byName(second, "viewer").UID) == unsafe.StringData(byName(first, "viewer").UID) {
		t.Error("the changed user was not decoded again")
	}
	c := tp.dial(t)
	if err := c.Bind(userDN("viewer"), "viewer-pw"); err != nil {
		t.Fatal(err)
	}
	es := search(t, c, userDN("viewer"), "(objectClass=person)", "displayName")
	if len(es) != 1 || es[0].GetAttributeValue("displayName") != "Viewer Renamed" {
		t.Errorf("search after the refresh: %d entries, displayName %q", len(es), es[0].GetAttributeValue("displayName"))
	}
}

func TestNewNeedsTheAPIClient(t *testing.T) {
	if _, err := New(outpost.Deps{}, Config{}); err == nil || !strings.Contains(err.Error(), "API client") {
		t.Errorf("New without an API client: %v, want an error naming it", err)
	}
}
