package outposttest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

type applier struct {
	allowed map[string]bool
	apply   func(m *model, existing any, f fields, ident string) (any, error)
}

func set(keys ...string) map[string]bool {
	out := map[string]bool{}
	for _, k := range keys {
		out[k] = true
	}
	return out
}

var providerCommon = []string{"name", "authorization_flow", "authentication_flow", "invalidation_flow", "property_mappings"}

// modelAppliers lists the supported models and their attributes.
var modelAppliers = map[string]applier{
	"authentik_core.user": {set("username", "name", "email", "password", "groups", "attributes",
		"is_active", "type", "path", "roles"), applyUser},
	"authentik_core.group": {set("name", "is_superuser", "parent", "parents", "attributes", "roles", "users"), applyGroup},
	"authentik_rbac.role":  {set("name"), applyRole},
	"authentik_core.application": {set("name", "slug", "provider", "backchannel_providers", "meta_launch_url",
		"meta_description", "meta_publisher", "meta_icon", "open_in_new_tab", "policy_engine_mode", "group"), applyApplication},
	"authentik_providers_proxy.proxyprovider": {set(append([]string{"internal_host", "external_host",
		"internal_host_ssl_validation", "mode", "cookie_domain", "skip_path_regex", "basic_auth_enabled",
		"basic_auth_user_attribute", "basic_auth_password_attribute", "intercept_header_auth",
		"access_token_validity", "refresh_token_validity", "certificate", "client_id", "client_secret",
		"cookie_secret", "signing_key", "redirect_uris", "jwt_federation_sources", "jwt_federation_providers"},
		providerCommon...)...), applyProvider(kindProxy)},
	"authentik_providers_ldap.ldapprovider": {set(append([]string{"base_dn", "certificate", "tls_server_name",
		"uid_start_number", "gid_start_number", "search_mode", "bind_mode", "mfa_support"}, providerCommon...)...),
		applyProvider(kindLDAP)},
	"authentik_providers_radius.radiusprovider": {set(append([]string{"client_networks", "shared_secret",
		"mfa_support", "certificate"}, providerCommon...)...), applyProvider(kindRADIUS)},
	"authentik_outposts.outpost":                         {set("name", "type", "providers", "config", "service_connection", "managed"), applyOutpost},
	"authentik_outposts.dockerserviceconnection":         {set("name", "local", "url", "tls_verification", "tls_authentication"), applyServiceConn(connDocker)},
	"authentik_outposts.kubernetesserviceconnection":     {set("name", "local", "kubeconfig", "verify_ssl"), applyServiceConn(connKubernetes)},
	"authentik_core.token":                               {set("identifier", "key", "user", "intent", "description", "expiring"), applyToken},
	"authentik_crypto.certificatekeypair":                {set("name", "certificate_data", "key_data", "managed"), applyCert},
	"authentik_stages_authenticator_totp.totpdevice":     {set("user", "name", "key", "digits", "step", "confirmed", "tolerance", "t0", "drift"), applyTOTP},
	"authentik_stages_authenticator_static.staticdevice": {set("user", "name", "confirmed", "token_set"), applyStatic},
	"authentik_policies.policybinding":                   {set("target", "user", "group", "negate", "enabled", "order", "timeout", "failure_result"), applyBinding},
	"authentik_flows.flow":                               {set("name", "slug", "title", "designation"), applyFlow},
	"authentik_flows.flowstagebinding":                   {set("target", "stage", "order"), applyStageBinding},
	modelMTLSStage:                                       {set("name", "mode", "certificate_authorities", "cert_attribute", "user_attribute"), applyMTLSStage},
}

func applyUser(m *model, existing any, f fields, ident string) (any, error) {
	u, _ := existing.(*user)
	if u == nil {
		u = &user{pk: m.nextUserPK, uuid: m.uuid("authentik_core.user", ident), isActive: true,
			userType: "internal", path: "users", attributes: map[string]any{},
			joined: epoch, updated: epoch, pwChanged: epoch}
		m.nextUserPK++
		m.users = append(m.users, u)
	}
	var password string
	var pwSet bool
	errs := []error{
		f.str("username", &u.username), f.str("name", &u.name), f.str("email", &u.email),
		f.boolean("is_active", &u.isActive), f.str("type", &u.userType), f.str("path", &u.path),
		f.mapping("attributes", &u.attributes), refs(f, "groups", &u.groups), refs(f, "roles", &u.roles),
	}
	if f.has("password") {
		pwSet = true
		errs = append(errs, f.str("password", &password))
	}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	u.groups, u.roles = dedupe(u.groups), dedupe(u.roles)
	if u.username == "" {
		return nil, f.errorf("username", "is required")
	}
	switch u.userType {
	case "internal", "external", "service_account", "internal_service_account":
	default:
		return nil, f.errorf("type", "unknown user type %q", u.userType)
	}
	if pwSet {
		if err := m.setPassword(u, password); err != nil {
			return nil, f.errorf("password", "%v", err)
		}
	}
	return u, nil
}

// setPassword hashes a password once per distinct password: even at bcrypt's
// minimum cost a hash takes about a millisecond, which made a blueprint of
// 100,000 users (who share a password, as benchmark directories do) take
// minutes to load. Users with the same password then share a salt, which
// a test core can afford. The memo is keyed by a digest so the model holds
// no cleartext.
func (m *model) setPassword(u *user, password string) error {
	if password == "" {
		u.password = nil
		return nil
	}
	key := sha256.Sum256([]byte(password))
	if h, ok := m.pwHashes[key]; ok {
		u.password = h
		return nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hashing the password: %w", err)
	}
	if m.pwHashes == nil {
		m.pwHashes = map[[sha256.Size]byte][]byte{}
	}
	m.pwHashes[key] = h
	u.password = h
	return nil
}

func applyGroup(m *model, existing any, f fields, ident string) (any, error) {
	g, _ := existing.(*group)
	if g == nil {
		g = &group{uuid: m.uuid("authentik_core.group", ident), attributes: map[string]any{}}
		b, _ := hex.DecodeString(strings.ReplaceAll(g.uuid, "-", "")[:4])
		g.numPK = int(b[0])<<8 | int(b[1]) + 1
		m.groups = append(m.groups, g)
	}
	var parent *group
	var members []*user
	errs := []error{f.str("name", &g.name), f.boolean("is_superuser", &g.isSuperuser),
		f.mapping("attributes", &g.attributes), refs(f, "roles", &g.roles), refs(f, "parents", &g.parents),
		ref(f, "parent", &parent), refs(f, "users", &members)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if f.has("parent") {
		g.parents = nil
		if parent != nil {
			g.parents = []*group{parent}
		}
	}
	for _, p := range g.parents {
		if p == g {
			return nil, f.errorf("parents", "a group cannot be its own parent")
		}
	}
	for _, u := range members {
		if !containsPtr(u.groups, g) {
			u.groups = append(u.groups, g)
		}
	}
	if g.name == "" {
		return nil, f.errorf("name", "is required")
	}
	return g, nil
}

func applyRole(m *model, existing any, f fields, ident string) (any, error) {
	r, _ := existing.(*role)
	if r == nil {
		r = &role{uuid: m.uuid("authentik_rbac.role", ident)}
		m.roles = append(m.roles, r)
	}
	if err := f.str("name", &r.name); err != nil {
		return nil, err
	}
	if r.name == "" {
		return nil, f.errorf("name", "is required")
	}
	return r, nil
}

func applyApplication(m *model, existing any, f fields, ident string) (any, error) {
	a, _ := existing.(*application)
	if a == nil {
		a = &application{uuid: m.uuid("authentik_core.application", ident), engineMode: "any"}
		m.apps = append(m.apps, a)
	}
	var ignored string
	errs := []error{f.str("name", &a.name), f.str("slug", &a.slug), ref(f, "provider", &a.provider),
		refs(f, "backchannel_providers", &a.backchannel), f.str("meta_launch_url", &a.launchURL),
		f.str("meta_description", &a.metaDesc), f.str("meta_publisher", &ignored), f.str("meta_icon", &ignored),
		f.boolean("open_in_new_tab", &a.openInNewTab), f.str("policy_engine_mode", &a.engineMode), f.str("group", &a.group)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if a.slug == "" || a.name == "" {
		return nil, f.errorf("slug", "an application needs a name and a slug")
	}
	if a.engineMode != "any" && a.engineMode != "all" {
		return nil, f.errorf("policy_engine_mode", "must be any or all")
	}
	for _, o := range m.apps {
		if o != a && o.provider != nil && o.provider == a.provider {
			return nil, f.errorf("provider", "provider %q is already assigned to application %q", a.provider.name, o.slug)
		}
	}
	return a, nil
}

func applyProvider(kind string) func(m *model, existing any, f fields, ident string) (any, error) {
	return func(m *model, existing any, f fields, ident string) (any, error) {
		p, _ := existing.(*provider)
		if p == nil {
			p = &provider{pk: m.nextProviderPK, kind: kind}
			m.nextProviderPK++
			if kind == kindProxy {
				p.sslValidation, p.mode, p.interceptHeader = true, "proxy", true
				p.tokenValidity, p.refreshValidity = "hours=1", "days=30"
				p.clientID = m.derive(40, "client_id", ident)
				p.clientSecret = m.derive(128, "client_secret", ident)
				p.cookieSecret = m.deriveAlnum(32, "cookie_secret", ident)
				p.authorization = m.flowBySlug("default-provider-authorization-implicit-consent")
				p.invalidation = m.flowBySlug("default-provider-invalidation-flow")
			} else if kind == kindRADIUS {
				// authentik's defaults: a generated secret, every address.
				p.sharedSecret = m.deriveAlnum(40, "shared_secret", ident)
				p.clientNetworks, p.mfaSupport = "0.0.0.0/0, ::/0", true
				p.authorization = m.flowBySlug("default-authentication-flow")
				p.invalidation = m.flowBySlug("default-invalidation-flow")
			} else {
				p.baseDN, p.uidStart, p.gidStart = "DC=ldap,DC=goauthentik,DC=io", 2000, 4000
				p.searchMode, p.bindMode, p.mfaSupport = "direct", "direct", true
				p.authorization = m.flowBySlug("default-authentication-flow")
				p.invalidation = m.flowBySlug("default-invalidation-flow")
			}
			m.providers = append(m.providers, p)
		}
		errs := []error{f.str("name", &p.name), ref(f, "authorization_flow", &p.authorization),
			ref(f, "authentication_flow", &p.authentication), ref(f, "invalidation_flow", &p.invalidation),
			ref(f, "certificate", &p.certificate)}
		if kind == kindProxy {
			errs = append(errs, f.str("internal_host", &p.internalHost), f.str("external_host", &p.externalHost),
				f.boolean("internal_host_ssl_validation", &p.sslValidation), f.str("mode", &p.mode),
				f.str("cookie_domain", &p.cookieDomain), f.str("skip_path_regex", &p.skipPathRegex),
				f.boolean("basic_auth_enabled", &p.basicAuth), f.str("basic_auth_user_attribute", &p.basicUserAttr),
				f.str("basic_auth_password_attribute", &p.basicPassAttr),
				f.boolean("intercept_header_auth", &p.interceptHeader),
				f.str("access_token_validity", &p.tokenValidity), f.str("refresh_token_validity", &p.refreshValidity),
				f.str("client_id", &p.clientID), f.str("client_secret", &p.clientSecret),
				f.str("cookie_secret", &p.cookieSecret), ref(f, "signing_key", &p.signingKey),
				redirectURIs(f, &p.redirectURIs))
		} else if kind == kindRADIUS {
			errs = append(errs, f.str("client_networks", &p.clientNetworks), f.str("shared_secret", &p.sharedSecret),
				f.boolean("mfa_support", &p.mfaSupport))
		} else {
			errs = append(errs, f.str("base_dn", &p.baseDN), f.str("tls_server_name", &p.tlsServerName),
				f.integer("uid_start_number", &p.uidStart), f.integer("gid_start_number", &p.gidStart),
				f.str("search_mode", &p.searchMode), f.str("bind_mode", &p.bindMode),
				f.boolean("mfa_support", &p.mfaSupport))
		}
		if err := firstErr(errs); err != nil {
			return nil, err
		}
		return p, validateProvider(f, p)
	}
}

func validateProvider(f fields, p *provider) error {
	if p.name == "" {
		return f.errorf("name", "is required")
	}
	if p.authorization == nil {
		return f.errorf("authorization_flow", "is required")
	}
	if _, err := timedelta(p.tokenValidity); p.kind == kindProxy && err != nil {
		return f.errorf("access_token_validity", "%v", err)
	}
	if p.kind == kindRADIUS {
		// RadiusProviderRequest: both at least one character.
		if p.sharedSecret == "" {
			return f.errorf("shared_secret", "may not be blank")
		}
		if p.clientNetworks == "" {
			return f.errorf("client_networks", "may not be blank")
		}
		return nil
	}
	if p.kind == kindLDAP {
		for _, v := range []string{p.searchMode, p.bindMode} {
			if v != "direct" && v != "cached" {
				return f.errorf("search_mode", "search_mode and bind_mode must be direct or cached, not %q", v)
			}
		}
		return nil
	}
	switch p.mode {
	case "proxy", "forward_single", "forward_domain":
	default:
		return f.errorf("mode", "must be proxy, forward_single or forward_domain, not %q", p.mode)
	}
	u, err := url.Parse(p.externalHost)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return f.errorf("external_host", "must be an absolute URL, not %q", p.externalHost)
	}
	if p.mode == "proxy" && p.internalHost == "" {
		return f.errorf("internal_host", "is required in proxy mode")
	}
	return nil
}

func redirectURIs(f fields, dst *[]redirectURI) error {
	v, ok := f.v["redirect_uris"]
	if !ok {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		return f.errorf("redirect_uris", "must be a list")
	}
	*dst = nil
	for _, e := range l {
		switch x := e.(type) {
		case string:
			*dst = append(*dst, redirectURI{mode: "strict", url: x})
		case map[string]any:
			mode, _ := x["matching_mode"].(string)
			u, _ := x["url"].(string)
			if mode == "" {
				mode = "strict"
			}
			if mode != "strict" && mode != "regex" || u == "" {
				return f.errorf("redirect_uris", "each item needs url and matching_mode strict or regex")
			}
			*dst = append(*dst, redirectURI{mode: mode, url: u})
		default:
			return f.errorf("redirect_uris", "each item must be a URL or {matching_mode, url}")
		}
	}
	return nil
}

func applyOutpost(m *model, existing any, f fields, ident string) (any, error) {
	o, _ := existing.(*outpostObj)
	if o == nil {
		o = &outpostObj{uuid: m.uuid("authentik_outposts.outpost", ident), config: map[string]any{}}
		m.outposts = append(m.outposts, o)
	}
	errs := []error{f.str("name", &o.name), f.str("type", &o.otype), refs(f, "providers", &o.providers),
		f.mapping("config", &o.config), f.str("managed", &o.managed), ref(f, "service_connection", &o.conn)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if o.name == "" {
		return nil, f.errorf("name", "is required")
	}
	if o.otype != kindProxy && o.otype != kindLDAP && o.otype != kindRADIUS {
		return nil, f.errorf("type", "must be proxy, ldap or radius, not %q", o.otype)
	}
	for _, p := range o.providers {
		if p.kind != o.otype {
			return nil, f.errorf("providers", "provider %q is a %s provider, the outpost is %s", p.name, p.kind, o.otype)
		}
	}
	if o.account == nil {
		hexID := strings.ReplaceAll(o.uuid, "-", "")
		o.account = &user{pk: m.nextUserPK, uuid: m.uuid("authentik_core.user", "outpost "+o.uuid),
			username: "ak-outpost-" + hexID, name: "Outpost " + o.name + " Service-Account",
			isActive: true, userType: "internal_service_account", path: "goauthentik.io/outposts",
			attributes: map[string]any{}, joined: epoch, updated: epoch, pwChanged: epoch, serviceOf: o}
		m.nextUserPK++
		m.users = append(m.users, o.account)
		o.token = m.derive(64, "outpost token", o.uuid)
	}
	return o, nil
}

func applyCert(m *model, existing any, f fields, ident string) (any, error) {
	c, _ := existing.(*certKeyPair)
	if c == nil {
		c = &certKeyPair{uuid: m.uuid("authentik_crypto.certificatekeypair", ident)}
		m.certs = append(m.certs, c)
	}
	errs := []error{f.str("name", &c.name), f.str("certificate_data", &c.certPEM),
		f.str("key_data", &c.keyPEM), f.str("managed", &c.managed)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if c.name == "" {
		return nil, f.errorf("name", "is required")
	}
	if c.certPEM != "" {
		if _, err := parseCertPEM(c.certPEM); err != nil {
			return nil, f.errorf("certificate_data", "%v", err)
		}
	}
	return c, nil
}

func applyTOTP(m *model, existing any, f fields, ident string) (any, error) {
	d, _ := existing.(*totpDevice)
	if d == nil {
		d = &totpDevice{id: m.nextDeviceID, digits: 6, step: 30, tolerance: 1, confirmed: true}
		m.nextDeviceID++
		d.key, _ = hex.DecodeString(m.derive(40, "totp", ident))
		m.totp = append(m.totp, d)
	}
	var key string
	errs := []error{ref(f, "user", &d.user), f.str("name", &d.name), f.str("key", &key),
		f.integer("digits", &d.digits), f.integer("step", &d.step), f.boolean("confirmed", &d.confirmed),
		f.integer("tolerance", &d.tolerance), f.integer("t0", &d.t0), f.integer("drift", &d.drift)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if key != "" {
		b, err := hex.DecodeString(key)
		if err != nil || len(b) == 0 {
			return nil, f.errorf("key", "must be the hex-encoded secret")
		}
		d.key = b
	}
	if d.user == nil {
		return nil, f.errorf("user", "is required")
	}
	if d.digits != 6 && d.digits != 8 || d.step <= 0 {
		return nil, f.errorf("digits", "digits must be 6 or 8 and step positive")
	}
	if d.tolerance < 0 {
		return nil, f.errorf("tolerance", "must not be negative")
	}
	return d, nil
}

func applyStatic(m *model, existing any, f fields, ident string) (any, error) {
	d, _ := existing.(*staticDevice)
	if d == nil {
		d = &staticDevice{id: m.nextDeviceID, confirmed: true}
		m.nextDeviceID++
		m.static = append(m.static, d)
	}
	errs := []error{ref(f, "user", &d.user), f.str("name", &d.name), f.boolean("confirmed", &d.confirmed)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if v, ok := f.v["token_set"]; ok {
		l, ok := v.([]any)
		if !ok {
			return nil, f.errorf("token_set", "must be a list")
		}
		d.tokens = nil
		for _, t := range l {
			switch x := t.(type) {
			case string:
				d.tokens = append(d.tokens, x)
			case map[string]any:
				s, ok := x["token"].(string)
				if !ok || len(x) != 1 {
					return nil, f.errorf("token_set", "each item must be a token or {token: TOKEN}")
				}
				d.tokens = append(d.tokens, s)
			default:
				return nil, f.errorf("token_set", "each item must be a token or {token: TOKEN}")
			}
		}
	}
	if d.user == nil {
		return nil, f.errorf("user", "is required")
	}
	return d, nil
}

func applyBinding(m *model, existing any, f fields, ident string) (any, error) {
	b, _ := existing.(*binding)
	if b == nil {
		b = &binding{enabled: true}
		m.bindings = append(m.bindings, b)
	}
	var ignored int
	var ignoredBool bool
	errs := []error{ref(f, "target", &b.target), ref(f, "user", &b.user), ref(f, "group", &b.group),
		f.boolean("negate", &b.negate), f.boolean("enabled", &b.enabled), f.integer("order", &b.order),
		f.integer("timeout", &ignored), f.boolean("failure_result", &ignoredBool)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if b.target == nil {
		return nil, f.errorf("target", "must name an application")
	}
	if (b.user == nil) == (b.group == nil) {
		return nil, f.errorf("user", "a binding needs exactly one of user or group (policies are not supported)")
	}
	return b, nil
}

// finish checks what only the whole model can tell and fills in generated
// certificates.
func (m *model) finish(generate bool) error {
	signing := map[*certKeyPair]bool{}
	for _, p := range m.providers {
		if p.signingKey != nil {
			signing[p.signingKey] = true
		}
	}
	for _, c := range m.certs {
		if c.certPEM == "" && generate {
			if err := generateCert(c, signing[c]); err != nil {
				return fmt.Errorf("blueprint: certificate %q: %w", c.name, err)
			}
		}
	}
	return nil
}

// objectsOf lists a model's objects for !Find.
func (m *model) objectsOf(name string) ([]any, bool) {
	var out []any
	switch name {
	case "authentik_core.user":
		for _, o := range m.users {
			out = append(out, o)
		}
	case "authentik_core.group":
		for _, o := range m.groups {
			out = append(out, o)
		}
	case "authentik_rbac.role":
		for _, o := range m.roles {
			out = append(out, o)
		}
	case "authentik_flows.flow":
		for _, o := range m.flows {
			out = append(out, o)
		}
	case "authentik_core.application":
		for _, o := range m.apps {
			out = append(out, o)
		}
	case "authentik_providers_proxy.proxyprovider", "authentik_providers_ldap.ldapprovider",
		"authentik_providers_radius.radiusprovider":
		for _, o := range m.providers {
			if name == "authentik_providers_proxy.proxyprovider" && o.kind == kindProxy ||
				name == "authentik_providers_ldap.ldapprovider" && o.kind == kindLDAP ||
				name == "authentik_providers_radius.radiusprovider" && o.kind == kindRADIUS {
				out = append(out, o)
			}
		}
	case "authentik_outposts.outpost":
		for _, o := range m.outposts {
			out = append(out, o)
		}
	case "authentik_crypto.certificatekeypair":
		for _, o := range m.certs {
			out = append(out, o)
		}
	default:
		return m.stageObjects(name)
	}
	return out, true
}

func findField(o any, field string) (any, bool) {
	switch x := o.(type) {
	case *user:
		return pick(field, map[string]any{"pk": x.pk, "uuid": x.uuid, "username": x.username, "email": x.email, "name": x.name})
	case *group:
		return pick(field, map[string]any{"pk": x.uuid, "group_uuid": x.uuid, "name": x.name})
	case *role:
		return pick(field, map[string]any{"pk": x.uuid, "uuid": x.uuid, "name": x.name})
	case *flow:
		return pick(field, map[string]any{"pk": x.uuid, "flow_uuid": x.uuid, "slug": x.slug, "name": x.name, "designation": x.designation})
	case *application:
		return pick(field, map[string]any{"pk": x.uuid, "slug": x.slug, "name": x.name})
	case *provider:
		return pick(field, map[string]any{"pk": x.pk, "name": x.name})
	case *outpostObj:
		return pick(field, map[string]any{"pk": x.uuid, "uuid": x.uuid, "name": x.name, "managed": x.managed})
	case *certKeyPair:
		return pick(field, map[string]any{"pk": x.uuid, "kp_uuid": x.uuid, "name": x.name, "managed": x.managed})
	case *stage:
		return pick(field, map[string]any{"pk": x.uuid, "stage_uuid": x.uuid, "name": x.name})
	}
	return nil, false
}

func pick(field string, m map[string]any) (any, bool) {
	v, ok := m[field]
	return v, ok
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// dedupe drops repeated items, as a many-to-many relation does.
func dedupe[T comparable](l []T) []T {
	var out []T
	for _, x := range l {
		if !containsPtr(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func containsPtr[T comparable](l []T, x T) bool {
	for _, e := range l {
		if e == x {
			return true
		}
	}
	return false
}
