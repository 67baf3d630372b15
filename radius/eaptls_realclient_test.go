package radius

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/akoutpost/akoutpost/internal/testservers"
	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// eapol_test with EAP-TLS against the certs provider: the certificate is
// judged by the core's Mutual TLS stage, the user by the application's
// policy, and the keys of the Access-Accept are those eapol_test derives.
func TestEapolTestEAPTLS(t *testing.T) {
	if _, err := exec.LookPath("eapol_test"); err != nil {
		testservers.Unavailable(t, "eapol_test not available (%v); .ci/run installs it (Debian's eapoltest)", err)
	}
	ca, other := clientCAs(t)
	s := startStack(t, eapTLSBlueprint(ca), Config{})
	if err := s.core.SetRadiusAttributes("certs", outposttest.RadiusAttribute{Type: 25, Value: []byte("certs-class")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the certificates", func() bool {
		st := s.p.state.Load()
		return st != nil && len(st.certs) == 2
	})
	dir := t.TempDir()
	// client writes a certificate for commonName issued by c, and its key,
	// and returns the network block's lines for them.
	client := func(c *outposttest.CA, commonName string) string {
		certPEM, keyPEM, err := c.Issue(commonName, commonName+"@example.com")
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.CreateTemp(dir, commonName+"-*")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		certFile, keyFile := f.Name()+".crt", f.Name()+".key"
		if err := os.WriteFile(certFile, []byte(certPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, []byte(keyPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		return "\tclient_cert=\"" + filepath.ToSlash(certFile) + "\"\n\tprivate_key=\"" + filepath.ToSlash(keyFile) + "\"\n"
	}
	for _, tc := range []struct {
		name, network string
		reason        string // of the reject; "" for success
		requests      int    // core requests
	}{
		{"valid certificate", "\teap=TLS\n\tidentity=\"alice\"\n" + client(ca, "alice"), "", 2},
		{"certificate of another CA", "\teap=TLS\n\tidentity=\"alice\"\n" + client(other, "alice"), rejectInvalidCredentials, 1},
		{"unknown user", "\teap=TLS\n\tidentity=\"mallory\"\n" + client(ca, "mallory"), rejectInvalidCredentials, 1},
		{"deactivated user", "\teap=TLS\n\tidentity=\"dave\"\n" + client(ca, "dave"), rejectInvalidCredentials, 1},
		{"denied by policy", "\teap=TLS\n\tidentity=\"bob\"\n" + client(ca, "bob"), rejectAccessDenied, 2},
		// wpa_supplicant does not run EAP-TLS without a key of its own:
		// it refuses the method (TestEAPTLSConversation has a client
		// that finishes the handshake without a certificate).
		{"no client certificate", "\teap=TLS\n\tidentity=\"alice\"\n", rejectEAPMethod, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := s.eapolCase(t, "certs", "certs-secret", tc.network, tc.reason, tc.requests)
			if tc.reason == "" {
				// The core's attributes come along.
				wantOutput(t, out, "Attribute 25 (Class)", "Value: "+hex.EncodeToString([]byte("certs-class")))
			}
		})
	}
}
