package radius

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// eapBlueprint is testBlueprint with a certificate for wifi, so wifi
// serves EAP.
var eapBlueprint = strings.Replace(strings.Replace(testBlueprint, "entries:\n", `entries:
  - model: authentik_crypto.certificatekeypair
    id: radius-cert
    identifiers: {name: radius-cert}
`, 1), `attrs: {shared_secret: wifi-secret, client_networks: "10.0.0.0/8, 127.0.0.0/8", mfa_support: true}`,
	`attrs: {shared_secret: wifi-secret, client_networks: "10.0.0.0/8, 127.0.0.0/8", mfa_support: true, certificate: !KeyOf radius-cert}`, 1)

// eapolTest runs wpa_supplicant's eapol_test with the network block
// network (the ca_cert line is added) and returns its output and whether
// it reported SUCCESS.
// eapolCase runs eapol_test with network against the application app and
// checks the outcome: success when reason is empty, else a reject counted
// under reason; requests core requests; on success, MPPE keys that
// eapol_test derived itself. It returns eapol_test's output.
func (s *stack) eapolCase(t *testing.T, app, secret, network, reason string, requests int) string {
	t.Helper()
	s.core.ResetRequests()
	before := 0.0
	if reason != "" {
		before = s.rejected(reason, app)
	}
	out, ok := s.eapolTest(t, secret, network)
	if os.Getenv("EAPOL_DEBUG") != "" {
		t.Log(out)
	}
	if want := reason == ""; ok != want {
		t.Fatalf("success %v, want %v:\n%s", ok, want, out)
	}
	if reason != "" {
		if got := s.rejected(reason, app); got != before+1 {
			t.Errorf("rejected{reason=%s} went from %v to %v", reason, before, got)
		}
	}
	if got := s.core.RequestCount("/api/v3/"); got != requests {
		t.Errorf("%d core requests, want %d", got, requests)
	}
	if reason == "" {
		// eapol_test derives the MSK itself and compares it with the
		// MS-MPPE keys of the Access-Accept.
		wantOutput(t, out, "MPPE keys OK: 1  mismatch: 0")
	}
	return out
}

func (s *stack) eapolTest(t *testing.T, secret, network string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	cert, _, err := s.core.CertificatePEM("radius-cert")
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	conf := filepath.Join(dir, "eapol.conf")
	if err := os.WriteFile(ca, []byte(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	network = "network={\n\tkey_mgmt=WPA-EAP\n\tca_cert=\"" + ca + "\"\n" + network + "}\n"
	if err := os.WriteFile(conf, []byte(network), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "eapol_test", "-c", conf, "-a", "127.0.0.1", "-p", strconv.Itoa(s.addr.Port),
		"-s", secret, "-t", "20", "-r", "0")
	out, err := cmd.CombinedOutput()
	return string(out), err == nil && strings.Contains(string(out), "\nSUCCESS")
}

func TestEapolTest(t *testing.T) {
	requireTool(t, "eapol_test")
	s := startStack(t, eapBlueprint, Config{})
	if err := s.core.SetRadiusAttributes("wifi", outposttest.RadiusAttribute{Type: 25, Value: []byte("wifi-class")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "wifi's certificate", func() bool {
		st := s.p.state.Load()
		return st != nil && len(st.certs) == 1
	})
	for _, tc := range []struct {
		name, network string
		reason        string // of the reject; "" for success
		requests      int    // core requests
	}{
		{"PEAP-GTC", "\teap=PEAP\n\tidentity=\"alice\"\n\tanonymous_identity=\"anonymous\"\n\tpassword=\"alice-pw\"\n\tphase1=\"peapver=0\"\n\tphase2=\"auth=GTC\"\n", "", 3},
		{"PEAP-GTC wrong password", "\teap=PEAP\n\tidentity=\"alice\"\n\tpassword=\"nope\"\n\tphase1=\"peapver=0\"\n\tphase2=\"auth=GTC\"\n", rejectInvalidCredentials, 2},
		{"PEAP-GTC denied by policy", "\teap=PEAP\n\tidentity=\"bob\"\n\tpassword=\"bob-pw\"\n\tphase1=\"peapver=0\"\n\tphase2=\"auth=GTC\"\n", rejectAccessDenied, 3},
		{"EAP-TTLS/PAP", "\teap=TTLS\n\tidentity=\"alice\"\n\tanonymous_identity=\"anonymous\"\n\tpassword=\"alice-pw\"\n\tphase2=\"auth=PAP\"\n", "", 3},
		{"EAP-TTLS/PAP wrong password", "\teap=TTLS\n\tidentity=\"alice\"\n\tpassword=\"nope\"\n\tphase2=\"auth=PAP\"\n", rejectInvalidCredentials, 2},
		{"PEAP-MSCHAPv2 refused", "\teap=PEAP\n\tidentity=\"alice\"\n\tpassword=\"alice-pw\"\n\tphase2=\"auth=MSCHAPV2\"\n", rejectEAPMethod, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.eapolCase(t, "wifi", "wifi-secret", tc.network, tc.reason, tc.requests)
		})
	}
}
