package flow

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/akoutpost/akoutpost/outpost/outposttest"
)

// A client certificate goes in X-Authentik-Outpost-Certificate on every
// request of the run, as the PEM escaped for a query (the core reads it
// with unquote_plus); without one the header is absent.
func TestRunClientCertificateHeader(t *testing.T) {
	ca, err := outposttest.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.Issue("alice", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, certPEM)
	f, srv := newFakeCore(t)
	res, err := newExecutor(t, srv, nil).Run(context.Background(), Request{
		Flow: "login", Username: "alice", Password: "secret", ClientCertificate: cert,
	})
	if err != nil || res.Outcome != OutcomeSuccess {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if err := res.Session.Get(context.Background(), "/core/users/me/", nil, nil); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	headers := f.headers
	f.headers = nil
	f.mu.Unlock()
	for i, h := range headers {
		raw := h.Get(HeaderOutpostCertificate)
		if strings.ContainsAny(raw, " \n") {
			t.Errorf("request %d: the header is not escaped: %q", i, raw)
		}
		text, err := url.QueryUnescape(raw)
		if err != nil || text != certPEM {
			t.Errorf("request %d: header %q (%v), want the certificate's PEM", i, raw, err)
		}
	}
	if _, err := newExecutor(t, srv, nil).Run(context.Background(), Request{Flow: "login", Username: "alice", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, h := range f.headers {
		if _, ok := h[http.CanonicalHeaderKey(HeaderOutpostCertificate)]; ok {
			t.Errorf("request %d without a certificate sent the header", i)
		}
	}
}

// Against the test core's Mutual TLS stage: the certificate logs its user
// in, with no password; a certificate of another authority, or none, is
// denied.
func TestRunMutualTLSFlow(t *testing.T) {
	ca, err := outposttest.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := outposttest.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	bp := `
version: 1
entries:
  - model: authentik_core.user
    identifiers: {username: alice}
  - model: authentik_crypto.certificatekeypair
    id: ca
    identifiers: {name: client-ca}
    attrs:
      certificate_data: |
        ` + strings.ReplaceAll(strings.TrimSpace(ca.CertPEM), "\n", "\n        ") + `
  - model: authentik_flows.flow
    id: certs
    identifiers: {slug: certs}
    attrs: {designation: authentication}
  - model: authentik_outposts.outpost
    identifiers: {name: radius}
    attrs: {type: radius}
  - model: authentik_stages_mtls.mutualtlsstage
    id: mtls
    identifiers: {name: mtls}
    attrs: {mode: required, certificate_authorities: [!KeyOf ca], cert_attribute: common_name, user_attribute: username}
    permissions:
      - permission: authentik_stages_mtls.pass_outpost_certificate
        user: !Find [authentik_core.user, [name, Outpost radius Service-Account]]
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf certs, stage: !KeyOf mtls, order: 10}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf certs, stage: !Find [authentik_stages_user_login.userloginstage, [name, default-authentication-login]], order: 20}
`
	core, err := outposttest.NewServer([]byte(bp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Close)
	base, _ := url.Parse(core.URL())
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	exec, err := New(Config{BaseURL: base, Transport: tr, Token: core.Token("radius")})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(c *outposttest.CA) *x509.Certificate {
		p, _, err := c.Issue("alice", "")
		if err != nil {
			t.Fatal(err)
		}
		return parseCert(t, p)
	}
	res, err := exec.Run(context.Background(), Request{Flow: "certs", Username: "anonymous", ClientCertificate: issue(ca)})
	if err != nil || res.Outcome != OutcomeSuccess {
		t.Fatalf("with a valid certificate: %+v, %v", res, err)
	}
	var me struct {
		User struct {
			Username string `json:"username"`
		} `json:"user"`
	}
	if err := res.Session.Get(context.Background(), "/core/users/me/", nil, &me); err != nil || me.User.Username != "alice" {
		t.Errorf("the session is %q's (%v), want alice's", me.User.Username, err)
	}
	for name, cert := range map[string]*x509.Certificate{"another CA": issue(other), "none": nil} {
		res, err := exec.Run(context.Background(), Request{Flow: "certs", Username: "alice", ClientCertificate: cert})
		if err != nil || res.Outcome != OutcomeDenied {
			t.Errorf("%s: %+v, %v; want denied", name, res, err)
		}
	}
}

func parseCert(t *testing.T, certPEM string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
