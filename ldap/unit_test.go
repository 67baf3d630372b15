package ldap

import (
	"crypto/tls"
	"net/url"
	"testing"
	"time"
)

func TestBindCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newBindCache(5*time.Minute, func() time.Time { return now })
	id := identity{userPK: 7, sessionID: "s1"}
	c.store("k", "pw", id, time.Time{})
	if _, ok := c.lookup("k", "pw"); !ok {
		t.Fatal("stored bind not found")
	}
	if _, ok := c.lookup("k", "PW"); ok {
		t.Error("another password matched")
	}
	if _, ok := c.lookup("other", "pw"); ok {
		t.Error("another DN matched")
	}
	for _, e := range c.entries {
		if string(e.digest[:]) == "pw" {
			t.Error("the password is stored")
		}
	}
	now = now.Add(5 * time.Minute)
	if _, ok := c.lookup("k", "pw"); ok {
		t.Error("an expired bind matched")
	}
	// The session's expiry bounds the entry before the TTL does.
	c.store("k", "pw", id, now.Add(time.Minute))
	now = now.Add(2 * time.Minute)
	if _, ok := c.lookup("k", "pw"); ok {
		t.Error("a bind outlived its session")
	}
	// An already expired session is not stored.
	c.store("k", "pw", id, now.Add(-time.Second))
	if c.len() != 0 {
		t.Error("a bind of an expired session was stored")
	}
	c.store("k", "pw", id, time.Time{})
	if n := c.forgetWhere(func(i *identity, _ time.Time) bool { return i.sessionID == "s1" }); n != 1 || c.len() != 0 {
		t.Errorf("forgetWhere dropped %d", n)
	}
}

func TestPickCertificate(t *testing.T) {
	a := &tls.Certificate{Certificate: [][]byte{[]byte("a")}}
	bc := &tls.Certificate{Certificate: [][]byte{[]byte("b")}}
	mk := func(name string, c *tls.Certificate) *provider {
		rt := &provider{cfg: &providerConfig{TLSServerName: name}}
		rt.cert.Store(c)
		return rt
	}
	st := &state{providers: []*provider{mk("ldap.a.example", a), mk("*.b.example", bc), mk("", nil)}}
	tests := []struct {
		sni  string
		want *tls.Certificate
	}{
		{"ldap.a.example", a},
		{"LDAP.A.EXAMPLE.", a},
		{"x.b.example", bc},
		{"x.y.b.example", nil},
		{"other", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := pickCertificate(st, tt.sni); got != tt.want {
			t.Errorf("SNI %q: got %v, want %v", tt.sni, got, tt.want)
		}
	}
	// One certificate shared by every provider needs no SNI.
	one := &state{providers: []*provider{mk("x", a), mk("y", a)}}
	if pickCertificate(one, "") != a {
		t.Error("the only certificate was not chosen")
	}
	self, err := selfSigned(time.Now())
	if err != nil || len(self.Certificate) != 1 {
		t.Fatalf("selfSigned: %v", err)
	}
}

func TestDecodeProvider(t *testing.T) {
	for _, bad := range []string{`{}`, `{"base_dn": "not a dn", "bind_flow_slug": "x"}`, `{"base_dn": "dc=x"}`, `[`} {
		if _, err := decodeProvider([]byte(bad)); err == nil {
			t.Errorf("decodeProvider(%s) succeeded", bad)
		}
	}
	p, err := decodeProvider([]byte(`{"pk": 2, "base_dn": "DC=Example,DC=com", "bind_flow_slug": "f"}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.UIDStart != 2000 || p.GIDStart != 4000 || !p.MFA || p.CachedSearch || p.CachedBind {
		t.Errorf("defaults: %+v", p)
	}
	if p.usersDN != "ou=users,dc=example,dc=com" || p.usersKey != "ou=users,dc=example,dc=com" {
		t.Errorf("users DN %q key %q", p.usersDN, p.usersKey)
	}
}

func TestPushdown(t *testing.T) {
	p := e2eProvider(t)
	tests := []struct {
		filter      string
		users, grps string // encoded queries, "-" for not fetched
	}{
		{"(objectClass=user)", "", "-"},
		// Virtual groups are groups too, built from users.
		{"(objectClass=group)", "", ""},
		{"(objectClass=goauthentik.io/ldap/group)", "-", ""},
		{"(objectClass=goauthentik.io/ldap/virtual-group)", "", "-"},
		{"(|(objectClass=user)(objectClass=group))", "", ""},
		{"(&(objectClass=user)(cn=alice))", "username=alice", "-"},
		{"(&(objectClass=user)(mail=a@b))", "email=a%40b", "-"},
		{"(&(objectClass=user)(memberOf=cn=staff,ou=groups," + b + "))", "groups_by_name=staff", "-"},
		// Not a group of this provider: nothing to push, the filter decides.
		{"(&(objectClass=user)(memberOf=cn=staff,ou=users," + b + "))", "", "-"},
		{"(&(objectClass=group)(member=cn=bob,ou=users," + b + "))", "username=bob", "members_by_username=bob"},
		{"(&(objectClass=posixGroup)(member=cn=bob,ou=users," + b + "))", "username=bob", "members_by_username=bob"},
		// OR and NOT are never pushed.
		{"(|(cn=alice)(cn=bob))", "", ""},
		{"(&(objectClass=user)(!(cn=alice)))", "", "-"},
		{"(cn=alice)", "username=alice", ""},
	}
	for _, tt := range tests {
		f, err := parseFilter(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		uq, gq := pushdown(p, f)
		enc := func(q url.Values) string {
			if q == nil {
				return "-"
			}
			return q.Encode()
		}
		if enc(uq) != tt.users || enc(gq) != tt.grps {
			t.Errorf("%s: users %q groups %q, want %q %q", tt.filter, enc(uq), enc(gq), tt.users, tt.grps)
		}
	}
}
