package deploy

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/akoutpost/akoutpost/outpost"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// golden compares got with testdata/name, or writes it there with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the rendered output (run go test -update if the change is intended)\ngot:\n%s", path, got)
	}
}

// The outposts of the golden files. The token is a placeholder the guides
// tell readers to replace.
const (
	testUUID    = "4a8b2f1e-93c5-4d6a-b7e0-5f21c8d9a3b4"
	testToken   = "REPLACE-WITH-THE-OUTPOST-TOKEN"
	testVersion = "2026.2.3"
)

func testSettings() outpost.Settings {
	s := outpost.DefaultSettings()
	s.AuthentikHost = "https://authentik.example.com/"
	s.KubernetesNamespace = "authentik"
	return s
}

func proxyInput() Input {
	return Input{
		Name:     "Proxy Outpost",
		UUID:     testUUID,
		Type:     TypeProxy,
		Version:  testVersion,
		Token:    testToken,
		Settings: testSettings(),
		ProxyProviders: []ProxyProvider{
			{ExternalHost: "https://app.example.com", Mode: ModeProxy},
			{ExternalHost: "https://whoami.example.com", Mode: ModeForwardSingle},
		},
	}
}

func ldapInput() Input {
	in := proxyInput()
	in.Name = "LDAP Outpost"
	in.Type = TypeLDAP
	in.ProxyProviders = nil
	return in
}
