package outposttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// mtlsBlueprint has a flow cert-login (Mutual TLS stage by common name,
// then user login), a flow cert-by-email (an optional Mutual TLS stage by
// email, then user login), a flow cert-or-password (that optional stage,
// then the default flow's stages) and two outposts, of which only radius
// may pass certificates.
func mtlsBlueprint(ca *CA) string {
	indent := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n        ") }
	return fmt.Sprintf(`
version: 1
entries:
  - model: authentik_core.user
    id: alice
    identifiers: {username: alice}
    attrs: {password: alice-pw, email: alice@example.com}
  - model: authentik_core.user
    identifiers: {username: bob}
    attrs: {password: bob-pw, is_active: false}
  - model: authentik_crypto.certificatekeypair
    id: ca
    identifiers: {name: client-ca}
    attrs:
      certificate_data: |
        %s
  - model: authentik_flows.flow
    id: cert-login
    identifiers: {slug: cert-login}
    attrs: {name: Certificate login, designation: authentication}
  - model: authentik_flows.flow
    id: cert-by-email
    identifiers: {slug: cert-by-email}
    attrs: {name: Certificate by email, designation: authentication}
  - model: authentik_flows.flow
    id: cert-or-password
    identifiers: {slug: cert-or-password}
    attrs: {name: Certificate or password, designation: authentication}
  - model: authentik_providers_radius.radiusprovider
    id: wifi
    identifiers: {name: wifi}
    attrs: {authorization_flow: !KeyOf cert-login, shared_secret: s}
  - model: authentik_core.application
    identifiers: {slug: wifi}
    attrs: {name: Wi-Fi, provider: !KeyOf wifi}
  - model: authentik_outposts.outpost
    identifiers: {name: radius}
    attrs: {type: radius, providers: [!KeyOf wifi]}
  - model: authentik_outposts.outpost
    identifiers: {name: other}
    attrs: {type: radius}
  - model: authentik_stages_mtls.mutualtlsstage
    id: by-cn
    identifiers: {name: by-cn}
    attrs: {mode: required, certificate_authorities: [!KeyOf ca], cert_attribute: common_name, user_attribute: username}
    permissions:
      - permission: authentik_stages_mtls.pass_outpost_certificate
        user: !Find [authentik_core.user, [name, Outpost radius Service-Account]]
  - model: authentik_stages_mtls.mutualtlsstage
    id: by-email
    identifiers: {name: by-email}
    attrs: {mode: optional, certificate_authorities: [!KeyOf ca], cert_attribute: email, user_attribute: email}
    permissions:
      - permission: pass_outpost_certificate
        user: !Find [authentik_core.user, [name, Outpost radius Service-Account]]
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-login, stage: !KeyOf by-cn, order: 10}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-login, stage: !Find [authentik_stages_user_login.userloginstage, [name, default-authentication-login]], order: 20}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-by-email, stage: !KeyOf by-email, order: 10}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-by-email, stage: !Find [authentik_stages_user_login.userloginstage, [name, default-authentication-login]], order: 20}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-or-password, stage: !KeyOf by-email, order: 0}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-or-password, stage: !Find [authentik_stages_identification.identificationstage, [name, default-authentication-identification]], order: 10}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-or-password, stage: !Find [authentik_stages_password.passwordstage, [name, default-authentication-password]], order: 20}
  - model: authentik_flows.flowstagebinding
    identifiers: {target: !KeyOf cert-or-password, stage: !Find [authentik_stages_user_login.userloginstage, [name, default-authentication-login]], order: 100}
`, indent(ca.CertPEM))
}

// certFlow runs a flow as an outpost passing a client certificate: the
// certificate (PEM, escaped as authentik's outposts do) goes in
// X-Authentik-Outpost-Certificate on every request.
type certFlow struct {
	*flowClient
	cert string
}

func newCertFlow(t *testing.T, s *Server, slug, outpost, certPEM string) *certFlow {
	f := newFlowClient(t, s, slug)
	f.token = s.Token(outpost)
	f.c.Transport = headerTransport{next: f.c.Transport, header: url.QueryEscape(certPEM)}
	return &certFlow{flowClient: f, cert: certPEM}
}

type headerTransport struct {
	next   http.RoundTripper
	header string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if h.header != "" {
		r.Header.Set(headerOutpostCertificate, h.header)
	}
	next := h.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// me is the username of the flow client's session, "" when it has none.
func (f *certFlow) me() string {
	f.t.Helper()
	resp, err := f.c.Get(f.s.URL() + "/api/v3/core/users/me/")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return ""
	}
	u, _ := out["user"].(map[string]any)
	name, _ := u["username"].(string)
	return name
}

func TestMutualTLSStage(t *testing.T) {
	ca, err := NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer([]byte(mtlsBlueprint(ca)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	issue := func(c *CA, cn, email string) string {
		cert, _, err := c.Issue(cn, email)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	alice := issue(ca, "alice", "alice@example.com")
	for _, tc := range []struct {
		name, flow, outpost, cert string
		post                      bool   // start with the POST of an identification answer, as the outpost's executor does
		component                 string // of the last challenge
		message                   string // of a denial
		user                      string // logged in
	}{
		{"valid certificate", "cert-login", "radius", alice, false, componentRedirect, "", "alice"},
		{"valid certificate, started by a POST", "cert-login", "radius", alice, true, componentRedirect, "", "alice"},
		{"another CA", "cert-login", "radius", issue(other, "alice", ""), true, componentAccessDenied,
			"Certificate required but no certificate was given.", ""},
		{"unknown user", "cert-login", "radius", issue(ca, "mallory", ""), true, componentAccessDenied,
			"No user found for certificate.", ""},
		{"inactive user", "cert-login", "radius", issue(ca, "bob", ""), true, componentAccessDenied, "User is not active.", ""},
		{"no certificate", "cert-login", "radius", "", true, componentAccessDenied,
			"Certificate required but no certificate was given.", ""},
		{"garbage", "cert-login", "radius", "not a certificate", true, componentAccessDenied,
			"Certificate required but no certificate was given.", ""},
		{"an outpost without the permission", "cert-login", "other", alice, true, componentAccessDenied,
			"Certificate required but no certificate was given.", ""},
		{"optional stage, by email", "cert-by-email", "radius", alice, false, componentRedirect, "", "alice"},
		{"optional stage without a certificate", "cert-or-password", "radius", "", false, componentIdentification, "", ""},
		{"optional stage without a certificate, then user login", "cert-by-email", "radius", "", false,
			componentAccessDenied, "User is not active.", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCertFlow(t, s, tc.flow, tc.outpost, tc.cert)
			var ch map[string]any
			if tc.post {
				ch = f.step(map[string]any{"component": componentIdentification, "uid_field": "alice", "password": ""})
			} else {
				ch = f.step(nil)
			}
			if ch["component"] != tc.component {
				t.Fatalf("challenge %v, want %s", ch, tc.component)
			}
			if tc.message != "" && ch["error_message"] != tc.message {
				t.Errorf("error_message %q, want %q", ch["error_message"], tc.message)
			}
			if got := f.me(); got != tc.user {
				t.Errorf("logged in as %q, want %q", got, tc.user)
			}
		})
	}

	// Without a certificate the optional stage lets the password stages
	// run.
	f := newCertFlow(t, s, "cert-or-password", "radius", "")
	f.bind("alice", password("alice-pw"))
	if got := f.me(); got != "alice" {
		t.Errorf("after the password stages: logged in as %q", got)
	}
}

func TestFlowBlueprintErrors(t *testing.T) {
	for _, tc := range []struct{ name, entry, want string }{
		{"mode", `{model: authentik_stages_mtls.mutualtlsstage, identifiers: {name: x}, attrs: {mode: sometimes, cert_attribute: subject, user_attribute: username}}`, "mode"},
		{"cert_attribute", `{model: authentik_stages_mtls.mutualtlsstage, identifiers: {name: x}, attrs: {mode: required, cert_attribute: serial, user_attribute: username}}`, "cert_attribute"},
		{"user_attribute", `{model: authentik_stages_mtls.mutualtlsstage, identifiers: {name: x}, attrs: {mode: required, cert_attribute: subject, user_attribute: uid}}`, "user_attribute"},
		{"designation", `{model: authentik_flows.flow, identifiers: {slug: x}, attrs: {designation: enrollment}}`, "designation"},
		{"binding to a logout flow", `{model: authentik_flows.flowstagebinding, identifiers: {target: !Find [authentik_flows.flow, [slug, default-invalidation-flow]], stage: !Find [authentik_stages_password.passwordstage, [name, default-authentication-password]], order: 1}}`, "authentication flows only"},
		{"binding without a stage", `{model: authentik_flows.flowstagebinding, identifiers: {target: !Find [authentik_flows.flow, [slug, default-authentication-flow]], order: 1}}`, "stage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewUnstartedServer(Config{Blueprint: []byte("version: 1\nentries:\n  - " + tc.entry + "\n")})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %s", err, tc.want)
			}
		})
	}
}

// A stage bound to the default flow runs among its built-in stages.
func TestDefaultFlowTakesBindings(t *testing.T) {
	ca, err := NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	bp := mtlsBlueprint(ca) + `  - model: authentik_flows.flowstagebinding
    identifiers: {target: !Find [authentik_flows.flow, [slug, default-authentication-flow]], stage: !KeyOf by-cn, order: 25}
`
	s, err := NewServer([]byte(bp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	// The password alone is no longer enough.
	f := newCertFlow(t, s, "default-authentication-flow", "radius", "")
	ch := f.bind("alice", password("alice-pw"))
	if ch["component"] != componentAccessDenied {
		t.Fatalf("without a certificate: %v", ch)
	}
	cert, _, err := ca.Issue("alice", "")
	if err != nil {
		t.Fatal(err)
	}
	f = newCertFlow(t, s, "default-authentication-flow", "radius", cert)
	if ch := f.bind("alice", password("alice-pw")); ch["component"] != componentRedirect || f.me() != "alice" {
		t.Fatalf("with a certificate: %v", ch)
	}
}
