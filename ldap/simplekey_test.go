package ldap

import (
	"math/rand/v2"
	"testing"
)

// TestSimpleKey checks the parser-free key against keyOf: whenever
// simpleKey accepts a DN, keyOf must accept it too and agree.
func TestSimpleKey(t *testing.T) {
	tests := []struct {
		dn     string
		simple bool
	}{
		{"cn=user5,ou=users,dc=ldap,dc=goauthentik,dc=io", true},
		{"CN=Alice.B_c-d,OU=Users,DC=ldap,DC=goauthentik,DC=io", true},
		{"cn=a", true},
		{"cn=", false},
		{"cn=a,", false},
		{"cn=a b,dc=x", false},
		{"cn=a+uid=b,dc=x", false},
		{`cn=a\,b,dc=x`, false},
		{"cn=#41,dc=x", false},
		{"1.2.3=a", false},
		{"cn=a=b", false},
		{"cn = a", false},
		{"", false},
	}
	for _, tt := range tests {
		k, ok := simpleKey(tt.dn)
		if ok != tt.simple {
			t.Errorf("simpleKey(%q) ok = %v, want %v", tt.dn, ok, tt.simple)
		}
		if ok {
			want, err := keyOf(tt.dn)
			if err != nil || k != want {
				t.Errorf("simpleKey(%q) = %q; keyOf = %q, %v", tt.dn, k, want, err)
			}
		}
	}
	// Random strings over an alphabet rich in separators.
	const alphabet = "aZ09.-_=, +\\#\"cn"
	r := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for range 100_000 {
		b := make([]byte, 1+r.IntN(24))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		k, ok := simpleKey(s)
		if !ok {
			continue
		}
		accepted++
		want, err := keyOf(s)
		if err != nil || k != want {
			t.Fatalf("simpleKey(%q) = %q; keyOf = %q, %v", s, k, want, err)
		}
	}
	if accepted < 100 {
		t.Errorf("only %d random DNs were plain: the comparison proves little", accepted)
	}
}
