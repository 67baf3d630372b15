package ldap

import (
	"errors"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// TestBindDNForms covers bind DNs that cannot name a user and the
// spelling of the ones that can. A hex-form cn (cn=#0C05...) and DNs that
// do not parse were refused as "no LDAP provider serves this DN" (49),
// which sent operators looking for a wrong base DN; they are now refused
// with invalidDNSyntax (34) and a message that says what is wrong.
// Unescaped spaces around "=" and "," are ignored (docs/ldap.md), an
// escaped one is part of the name.
func TestBindDNForms(t *testing.T) {
	for _, bindMode := range []string{"direct", "cached"} {
		t.Run(bindMode, func(t *testing.T) {
			tp := startProvider(t, "cached", bindMode)
			if bindMode == "cached" {
				// A remembered bind of admin must not make a DN that
				// cannot name a user succeed.
				if err := tp.dial(t).Bind(userDN("admin"), "admin-pw"); err != nil {
					t.Fatal(err)
				}
			}
			tests := []struct {
				name, dn, password string
				want               uint16
				message            string // part of the diagnostic message
			}{
				{"hex cn", "cn=#0c0561646d696e,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "#hex form"},
				{"hex cn after spaces", "cn =  #0C0561646D696E,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "#hex form"},
				{"hex cn, BER cut short", "cn=#0561,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "not a valid DN"},
				{"hex cn, not hex", "cn=#zz,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "not a valid DN"},
				{"hex cn, trailing bytes", "cn=#0c0561646d696e00,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "not a valid DN"},
				{"empty RDN", "cn=admin,,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "not a valid DN"},
				{"no attribute type", "=admin,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "not a valid DN"},
				{"unescaped quote", `cn="admin",ou=users,` + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "not a valid DN"},
				{"bad escape", `cn=adm\zzin,ou=users,` + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "not a valid DN"},
				{"not UTF-8", `cn=adm\ffin,ou=users,` + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "not UTF-8"},
				{"empty cn", "cn=,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "empty"},
				{"too long", "cn=" + strings.Repeat("a", maxDNLength) + ",ou=users," + base, "admin-pw", goldap.LDAPResultInvalidDNSyntax, "too long"},
				{"malformed outside every base", "cn=admin,,dc=example,dc=org", "admin-pw", goldap.LDAPResultInvalidDNSyntax, "not a valid DN"},
				// Well-formed DNs that name something else than a user
				// stay invalidCredentials.
				{"hex cn under ou=groups", "cn=#0c0561646d696e,ou=groups," + base, "admin-pw", goldap.LDAPResultInvalidCredentials, "cn=USER"},
				{"cn as an OID", "2.5.4.3=admin,ou=users," + base, "admin-pw", goldap.LDAPResultInvalidCredentials, "cn=USER"},
				{"well-formed, outside every base", "cn=admin,ou=users,dc=example,dc=org", "admin-pw", goldap.LDAPResultInvalidCredentials, "no LDAP provider"},
				// Spaces.
				{"leading space in cn", "cn= admin,ou=users," + base, "admin-pw", 0, ""},
				{"trailing space in cn", "cn=admin ,ou=users," + base, "admin-pw", 0, ""},
				{"spaces around separators", "cn = admin , ou = users , DC=ldap, DC=goauthentik, DC=io", "admin-pw", 0, ""},
				{"space around the DN", " cn=admin,ou=users," + base + " ", "admin-pw", 0, ""},
				{"spaces, wrong password", "cn= admin ,ou=users," + base, "wrong", goldap.LDAPResultInvalidCredentials, ""},
				{"escaped leading space names another user", `cn=\ admin,ou=users,` + base, "admin-pw", goldap.LDAPResultInvalidCredentials, ""},
				{"escaped trailing space names another user", `cn=admin\ ,ou=users,` + base, "admin-pw", goldap.LDAPResultInvalidCredentials, ""},
				{"hex form of another RDN", "cn=admin,ou=#0c057573657273," + base, "admin-pw", 0, ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					flows := tp.core.requestCount("GET /api/v3/flows")
					err := tp.dial(t).Bind(tt.dn, tt.password)
					if got := resultCode(err); got != tt.want {
						t.Fatalf("bind = %d (%v), want %d", got, err, tt.want)
					}
					var le *goldap.Error
					if tt.message != "" && (!errors.As(err, &le) || !strings.Contains(le.Err.Error(), tt.message)) {
						t.Errorf("message %v lacks %q", err, tt.message)
					}
					if tt.want == goldap.LDAPResultInvalidDNSyntax && tp.core.requestCount("GET /api/v3/flows") != flows {
						t.Error("a DN that cannot name a user reached the core")
					}
				})
			}
		})
	}
}

func TestBindUsername(t *testing.T) {
	p := e2eProvider(t)
	tests := []struct {
		name, dn, want string
		syntax         bool // a *bindDNError with syntax set, when want is ""
	}{
		{"plain", "cn=admin,ou=users," + base, "admin", false},
		{"escaped comma", `cn=a\,b,ou=users,` + base, "a,b", false},
		{"unescaped leading space ignored", "cn= admin,ou=users," + base, "admin", false},
		{"unescaped trailing space ignored", "cn=admin  ,ou=users," + base, "admin", false},
		{"escaped leading space kept", `cn=\ admin,ou=users,` + base, " admin", false},
		{"escaped trailing space kept", `cn=admin\ ,ou=users,` + base, "admin ", false},
		{"hex-escaped space kept", `cn=\20admin,ou=users,` + base, " admin", false},
		{"a # inside the value", "cn=a#b,ou=users," + base, "a#b", false},
		{"escaped leading #", `cn=\#admin,ou=users,` + base, "#admin", false},
		{"hex form", "cn=#0c0561646d696e,ou=users," + base, "", true},
		{"empty", "cn=,ou=users," + base, "", true},
		{"unparsable", "cn=#05,ou=users," + base, "", true},
		{"under ou=groups", "cn=admin,ou=groups," + base, "", false},
		{"multi-valued RDN", "cn=admin+uid=x,ou=users," + base, "", false},
		{"too short", base, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bindUsername(tt.dn, p.usersKey)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Errorf("bindUsername = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			var de *bindDNError
			if !errors.As(err, &de) || de.syntax != tt.syntax {
				t.Errorf("bindUsername = %q, %v; want a bindDNError with syntax %v", got, err, tt.syntax)
			}
		})
	}
}

// FuzzBindUsernameErrors: a DN that does not parse is always refused as
// a syntax error, and no accepted bind DN has its cn in hex form.
func FuzzBindUsernameErrors(f *testing.F) {
	for _, s := range []string{
		"cn=admin,ou=users," + base, "cn= admin ,ou=users," + base, "cn=#0c0561646d696e,ou=users," + base,
		"cn=#0561,ou=users," + base, `cn=\#x,ou=users,` + base, "cn=,ou=users," + base, "cn=a,,b", "=",
	} {
		f.Add(s)
	}
	p := e2eProvider(f)
	f.Fuzz(func(t *testing.T, dn string) {
		name, err := bindUsername(dn, p.usersKey)
		var de *bindDNError
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("%q: %v is not a bindDNError", dn, err)
		}
		if _, perr := parseDN(dn); perr != nil && (de == nil || !de.syntax) {
			t.Fatalf("%q does not parse (%v) but bindUsername = %q, %v", dn, perr, name, err)
		}
		if err == nil && firstValueIsHex(dn) {
			t.Fatalf("%q: a hex-form cn accepted as %q", dn, name)
		}
	})
}
