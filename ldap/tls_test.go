package ldap_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

func leafOf(t *testing.T, certPEM string) []byte {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

// The certificate follows the SNI name: exact tls_server_name, then a
// wildcard one, else the self-signed fallback. authentik compared string
// pointers and never matched (§6 of the reference).
func TestIntegrationSNI(t *testing.T) {
	bp, err := os.ReadFile("testdata/sni.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := startStack(t, bp, "ldap-outpost", nil)
	certA, _, err := s.core.CertificatePEM("cert-a")
	if err != nil {
		t.Fatal(err)
	}
	certB, _, err := s.core.CertificatePEM("cert-b")
	if err != nil {
		t.Fatal(err)
	}
	a, b := leafOf(t, certA), leafOf(t, certB)
	tests := []struct {
		sni  string
		want []byte // nil: neither provider's certificate
	}{
		{"ldap.a.example", a},
		{"LDAP.A.Example", a},
		{"x.b.example", b},
		{"other.example", nil},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			for _, mode := range []string{"ldaps", "starttls"} {
				var peer []byte
				conf := &tls.Config{InsecureSkipVerify: true, ServerName: tt.sni}
				if mode == "ldaps" {
					c, err := goldap.DialURL("ldaps://"+s.addrs, goldap.DialWithTLSConfig(conf))
					if err != nil {
						t.Fatal(err)
					}
					st, _ := c.TLSConnectionState()
					peer = st.PeerCertificates[0].Raw
					c.Close()
				} else {
					c := s.dial(t)
					if err := c.StartTLS(conf); err != nil {
						t.Fatal(err)
					}
					st, _ := c.TLSConnectionState()
					peer = st.PeerCertificates[0].Raw
				}
				switch {
				case tt.want == nil && (string(peer) == string(a) || string(peer) == string(b)):
					t.Errorf("%s: a provider's certificate for an unknown name", mode)
				case tt.want != nil && string(peer) != string(tt.want):
					t.Errorf("%s: wrong certificate", mode)
				}
			}
		})
	}
	// Binds route by base DN.
	for _, dn := range []string{"cn=alice,ou=users,dc=a,dc=example", "cn=alice,ou=users,dc=b,dc=example"} {
		if err := s.dial(t).Bind(dn, "alice-pw"); err != nil {
			t.Errorf("bind %s: %v", dn, err)
		}
	}
}
