package outposttest

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Stages and their bindings to flows. An authentication flow runs the
// stages bound to it, in the bindings' order: the built-in
// default-authentication-flow has the four stages of authentik's default
// blueprint (identification, password, authenticator validation, user
// login), and a blueprint may declare flows of its own, Mutual TLS stages
// and bindings of any of these stages to a flow.

// Stage models, as blueprints name them.
const (
	modelIdentificationStage = "authentik_stages_identification.identificationstage"
	modelPasswordStage       = "authentik_stages_password.passwordstage"
	modelValidateStage       = "authentik_stages_authenticator_validate.authenticatorvalidatestage"
	modelUserLoginStage      = "authentik_stages_user_login.userloginstage"
	modelMTLSStage           = "authentik_stages_mtls.mutualtlsstage"
)

// stage is a stage object a flow binds.
type stage struct {
	uuid  string
	name  string
	model string // one of the stage models above
	mtls  mtlsConfig
}

func (st *stage) key() any { return st.uuid }

// mtlsConfig is a MutualTLSStage's settings.
type mtlsConfig struct {
	mode     string // "required" or "optional"
	cas      []*certKeyPair
	certAttr string // "subject", "common_name" or "email"
	userAttr string // "username" or "email"
}

// stageBinding is a FlowStageBinding: stage runs in flow at order.
type stageBinding struct {
	uuid  string
	flow  *flow
	stage *stage
	order int
}

func (b *stageBinding) key() any { return b.uuid }

// builtinStages are the stages of authentik's default authentication
// flow, bound to default-authentication-flow at these orders.
var builtinStages = []struct {
	name, model string
	order       int
}{
	{"default-authentication-identification", modelIdentificationStage, 10},
	{"default-authentication-password", modelPasswordStage, 20},
	{"default-authentication-mfa-validation", modelValidateStage, 30},
	{"default-authentication-login", modelUserLoginStage, 100},
}

// addBuiltinStages creates the default flow's stages and bindings.
func (m *model) addBuiltinStages() {
	f := m.flowBySlug("default-authentication-flow")
	for _, b := range builtinStages {
		st := &stage{uuid: m.uuid(b.model, b.name), name: b.name, model: b.model}
		m.stages = append(m.stages, st)
		m.stageBindings = append(m.stageBindings, &stageBinding{uuid: m.uuid("authentik_flows.flowstagebinding", b.name),
			flow: f, stage: st, order: b.order})
	}
}

// flowStages are the bindings of f in their order (ties in the order
// they were declared).
func (m *model) flowStages(f *flow) []*stageBinding {
	var out []*stageBinding
	for _, b := range m.stageBindings {
		if b.flow == f {
			out = append(out, b)
		}
	}
	slices.SortStableFunc(out, func(a, b *stageBinding) int { return a.order - b.order })
	return out
}

// stageObjects lists the stages of a stage model, for !Find.
func (m *model) stageObjects(name string) ([]any, bool) {
	switch name {
	case modelIdentificationStage, modelPasswordStage, modelValidateStage, modelUserLoginStage, modelMTLSStage:
	default:
		return nil, false
	}
	var out []any
	for _, st := range m.stages {
		if st.model == name {
			out = append(out, st)
		}
	}
	return out, true
}

func applyFlow(m *model, existing any, f fields, ident string) (any, error) {
	fl, _ := existing.(*flow)
	var slug string
	if err := f.str("slug", &slug); err != nil {
		return nil, err
	}
	if fl == nil && slug != "" {
		// The built-in flows exist before any blueprint.
		fl = m.flowBySlug(slug)
	}
	if fl == nil {
		fl = &flow{uuid: m.uuid("authentik_flows.flow", ident), designation: "authentication"}
		m.flows = append(m.flows, fl)
	}
	errs := []error{f.str("slug", &fl.slug), f.str("name", &fl.name), f.str("title", &fl.title),
		f.str("designation", &fl.designation)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	switch {
	case fl.slug == "":
		return nil, f.errorf("slug", "is required")
	case fl.designation != "authentication" && fl.designation != "authorization" && fl.designation != "invalidation":
		return nil, f.errorf("designation", "must be authentication, authorization or invalidation, not %q", fl.designation)
	}
	if fl.name == "" {
		fl.name = fl.slug
	}
	if fl.title == "" {
		fl.title = fl.name
	}
	return fl, nil
}

func applyMTLSStage(m *model, existing any, f fields, ident string) (any, error) {
	st, _ := existing.(*stage)
	if st == nil {
		st = &stage{uuid: m.uuid(modelMTLSStage, ident), model: modelMTLSStage}
		m.stages = append(m.stages, st)
	}
	c := &st.mtls
	errs := []error{f.str("name", &st.name), f.str("mode", &c.mode), refs(f, "certificate_authorities", &c.cas),
		f.str("cert_attribute", &c.certAttr), f.str("user_attribute", &c.userAttr)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	switch {
	case st.name == "":
		return nil, f.errorf("name", "is required")
	case c.mode != "required" && c.mode != "optional":
		return nil, f.errorf("mode", "must be required or optional, not %q", c.mode)
	case c.certAttr != "subject" && c.certAttr != "common_name" && c.certAttr != "email":
		return nil, f.errorf("cert_attribute", "must be subject, common_name or email, not %q", c.certAttr)
	case c.userAttr != "username" && c.userAttr != "email":
		return nil, f.errorf("user_attribute", "must be username or email, not %q", c.userAttr)
	}
	for _, ca := range c.cas {
		if ca.certPEM == "" {
			return nil, f.errorf("certificate_authorities", "%q has no certificate_data", ca.name)
		}
	}
	return st, nil
}

func applyStageBinding(m *model, existing any, f fields, ident string) (any, error) {
	b, _ := existing.(*stageBinding)
	if b == nil {
		b = &stageBinding{uuid: m.uuid("authentik_flows.flowstagebinding", ident)}
		m.stageBindings = append(m.stageBindings, b)
	}
	errs := []error{ref(f, "target", &b.flow), ref(f, "stage", &b.stage), f.integer("order", &b.order)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	switch {
	case b.flow == nil:
		return nil, f.errorf("target", "is required")
	case b.stage == nil:
		return nil, f.errorf("stage", "is required")
	case b.flow.designation != "authentication":
		return nil, f.errorf("target", "the test core runs stages in authentication flows only, %q is %s",
			b.flow.slug, b.flow.designation)
	}
	return b, nil
}

// The Mutual TLS stage (authentik_stages_mtls, an enterprise stage) asks
// nothing: on the request that reaches it, it takes the client
// certificate an outpost passes in X-Authentik-Outpost-Certificate (a
// URL-escaped PEM certificate; only when the outpost's service account
// holds pass_outpost_certificate on the stage or globally), checks it
// against the stage's certificate authorities and makes the user it
// names the flow's pending user. The headers reverse proxies set are
// not read.

// headerOutpostCertificate carries the client certificate an outpost
// passes to the flow.
const headerOutpostCertificate = "X-Authentik-Outpost-Certificate"

// oidEmailAddress is the emailAddress attribute of a subject (PKCS #9).
var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// checkMTLS runs a Mutual TLS stage for plan; it returns the message of
// the access denial, or "" when the flow goes on.
func (s *Server) checkMTLS(r *http.Request, plan *flowPlan, st *stage) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := st.mtls
	var certs []*x509.Certificate
	if o := s.m.outpostByToken(r.Header.Get("X-authentik-outpost-token")); o != nil && o.account != nil &&
		s.m.hasPermission(o.account, "pass_outpost_certificate", st) {
		if cert := parseForwardedCert(r.Header.Get(headerOutpostCertificate)); cert != nil {
			certs = append(certs, cert)
		}
	}
	if len(c.cas) == 0 {
		// authentik falls back to the brand's client certificates, which
		// the test core does not have.
		if c.mode == "optional" {
			return ""
		}
		return "Unknown error"
	}
	cert := verifyClientCert(c.cas, certs, time.Now())
	if cert == nil {
		if c.mode == "optional" {
			return ""
		}
		return "Certificate required but no certificate was given."
	}
	var value string
	switch c.certAttr {
	case "subject":
		value = cert.Subject.String()
	case "common_name":
		value = subjectAttribute(cert, oidCommonName)
	case "email":
		value = subjectAttribute(cert, oidEmailAddress)
	}
	var found *user
	if value != "" {
		for _, u := range s.m.users {
			if c.userAttr == "username" && u.username == value || c.userAttr == "email" && u.email == value {
				found = u
				break
			}
		}
	}
	if found == nil {
		return "No user found for certificate."
	}
	plan.user = found
	return ""
}

// parseForwardedCert decodes a URL-escaped PEM certificate; nil when it
// is not one.
func parseForwardedCert(raw string) *x509.Certificate {
	if raw == "" {
		return nil
	}
	text, err := url.QueryUnescape(raw)
	if err != nil {
		return nil
	}
	b, _ := pem.Decode([]byte(text))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	return cert
}

// verifyClientCert returns the first of certs that chains to one of the
// authorities, valid now and usable for client authentication.
func verifyClientCert(authorities []*certKeyPair, certs []*x509.Certificate, now time.Time) *x509.Certificate {
	roots := x509.NewCertPool()
	for _, ca := range authorities {
		if c, err := parseCertPEM(ca.certPEM); err == nil {
			roots.AddCert(c)
		}
	}
	for _, cert := range certs {
		_, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err == nil {
			return cert
		}
	}
	return nil
}

// subjectAttribute is the first value of the subject attribute oid.
func subjectAttribute(cert *x509.Certificate, oid asn1.ObjectIdentifier) string {
	for _, a := range cert.Subject.Names {
		if a.Type.Equal(oid) {
			if s, ok := a.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}
