package ldap

import (
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// rootDSEAttrs are what clients read from the root DSE before they bind
// (SSSD, ldap3 with server info, Apache's mod_ldap, directory browsers).
var rootDSEAttrs = []string{"namingContexts", "supportedControl", "supportedExtension",
	"supportedLDAPVersion", "subschemaSubentry"}

// RFC 4513 5.1.1: a simple bind with an empty DN and an empty password is
// an anonymous bind and succeeds. authentik's outpost refuses it (its
// issues #3361, #2120 and #11464 ask for it), so `ldapsearch -x -b "" -s
// base +` got 50 and nothing. An anonymous connection reads the root DSE
// and the schema and nothing else.
func TestAnonymousBind(t *testing.T) {
	tp := startProvider(t, "cached", "direct")
	before := tp.core.requestCount("GET /api/v3/flows")
	for _, name := range []string{"anonymous bind", "no bind"} {
		t.Run(name, func(t *testing.T) {
			c := tp.dial(t)
			if name == "anonymous bind" {
				if err := c.UnauthenticatedBind(""); err != nil {
					t.Fatalf("anonymous bind: %v", err)
				}
			}
			res, err := c.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"+"}, nil))
			if err != nil || len(res.Entries) != 1 {
				t.Fatalf("root DSE with +: %v, %v", dnsOf(res), err)
			}
			for _, a := range rootDSEAttrs {
				if len(res.Entries[0].GetAttributeValues(a)) == 0 {
					t.Errorf("root DSE lacks %s: %v", a, res.Entries[0].Attributes)
				}
			}
			if got := res.Entries[0].GetAttributeValue("namingContexts"); got != strings.ToLower(base) {
				t.Errorf("namingContexts = %q", got)
			}
			if !slices.Contains(res.Entries[0].GetAttributeValues("supportedLDAPVersion"), "3") {
				t.Errorf("supportedLDAPVersion = %q", res.Entries[0].GetAttributeValues("supportedLDAPVersion"))
			}
			schema, err := c.Search(goldap.NewSearchRequest("cn=subschema", goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"objectClasses"}, nil))
			if err != nil || len(schema.Entries) != 1 || len(schema.Entries[0].GetAttributeValues("objectClasses")) == 0 {
				t.Errorf("subschema: %v, %v", dnsOf(schema), err)
			}
			// Every other search succeeds with no entries, and the
			// connection stays.
			for _, scope := range []int{goldap.ScopeBaseObject, goldap.ScopeWholeSubtree} {
				res, err := c.Search(goldap.NewSearchRequest(base, scope, 0, 0, 0, false, "(objectClass=*)", nil, nil))
				if err != nil || len(res.Entries) != 0 {
					t.Errorf("anonymous search of the base (scope %d) = %v, %v; want success with no entries", scope, dnsOf(res), err)
				}
			}
			res, err = c.Search(goldap.NewSearchRequest("ou=users,"+base, goldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=*)", nil, nil))
			if err != nil || len(res.Entries) != 0 {
				t.Errorf("anonymous search of ou=users = %v, %v; want success with no entries", dnsOf(res), err)
			}
			if _, err := c.Compare(userDN("admin"), "mail", "admin@goauthentik.io"); resultCode(err) != goldap.LDAPResultInsufficientAccessRights {
				t.Errorf("anonymous compare: %v, want 50", err)
			}
		})
	}
	if tp.core.requestCount("GET /api/v3/flows") != before {
		t.Error("an anonymous bind ran the flow")
	}

	// A bind as someone, then an anonymous bind: the connection is
	// anonymous again and sees nothing but the root DSE.
	t.Run("anonymous after a bind", func(t *testing.T) {
		c := tp.dial(t)
		if err := c.Bind(userDN("admin"), "admin-pw"); err != nil {
			t.Fatal(err)
		}
		if got := search(t, c, base, "(objectClass=user)", "cn"); len(got) == 0 {
			t.Fatal("the bound admin sees no users")
		}
		if err := c.UnauthenticatedBind(""); err != nil {
			t.Fatalf("anonymous bind: %v", err)
		}
		res, err := c.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=user)", nil, nil))
		if err != nil || len(res.Entries) != 0 {
			t.Errorf("search after the anonymous bind = %v, %v; want success with no entries", dnsOf(res), err)
		}
		if who, err := c.WhoAmI(nil); err != nil || who.AuthzID != "" {
			t.Errorf("whoami after the anonymous bind = %+v, %v", who, err)
		}
	})

	// RFC 4513 5.1.2: a DN with an empty password is an unauthenticated
	// bind, still refused; so is a password without a DN.
	t.Run("unauthenticated binds stay refused", func(t *testing.T) {
		if got := resultCode(tp.dial(t).UnauthenticatedBind(userDN("admin"))); got != goldap.LDAPResultUnwillingToPerform {
			t.Errorf("unauthenticated bind = %d, want 53", got)
		}
		if got := resultCode(tp.dial(t).Bind("", "admin-pw")); got != goldap.LDAPResultUnwillingToPerform {
			t.Errorf("password without a DN = %d, want 53", got)
		}
	})
}
