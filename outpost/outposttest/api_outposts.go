package outposttest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// defaultPageSize is what the core answers without page_size.
const defaultPageSize = 100

// paginate answers one page of items in the envelope of the schema's
// Paginated*List: pagination, results, autocomplete.
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T, render func(T) any) {
	q := r.URL.Query()
	size := defaultPageSize
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil && n > 0 {
			size = min(n, 10000)
		}
	}
	page := 1
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusNotFound, "Invalid page.")
			return
		}
		page = n
	}
	count := len(items)
	pages := max(1, (count+size-1)/size)
	if page > pages {
		writeError(w, http.StatusNotFound, "Invalid page.")
		return
	}
	lo := min((page-1)*size, count)
	hi := min(lo+size, count)
	results := make([]any, 0, hi-lo)
	for _, it := range items[lo:hi] {
		results = append(results, render(it))
	}
	next, prev, start, end := 0, 0, 0, 0
	if page < pages {
		next = page + 1
	}
	if page > 1 {
		prev = page - 1
	}
	if count > 0 {
		start, end = lo+1, hi
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"pagination": map[string]any{"next": next, "previous": prev, "count": count, "current": page,
			"total_pages": pages, "start_index": start, "end_index": end},
		"results":      results,
		"autocomplete": map[string]any{},
	})
}

// baseURL is the core URL as the request reached it; authentik builds the
// URLs it hands out (OIDC endpoints, issuers) from the request too,
// believing X-Forwarded-Proto as it does behind its reverse proxy.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

func (s *Server) handleRootConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"error_reporting": map[string]any{"enabled": false, "sentry_dsn": "", "environment": "testcore",
			"send_pii": false, "traces_sample_rate": 0.0},
		"capabilities":           []string{},
		"cache_timeout":          300,
		"cache_timeout_flows":    300,
		"cache_timeout_policies": 300,
	})
}

// visibleOutposts: an outpost token sees its own outpost; a superuser
// session sees all.
func (s *Server) visibleOutposts(rc *reqCtx) []*outpostObj {
	if rc.user != nil && rc.user.superuser() {
		return s.m.outposts
	}
	if rc.outpost != nil {
		return []*outpostObj{rc.outpost}
	}
	return nil
}

func (s *Server) handleOutposts(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	q := r.URL.Query()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var list []*outpostObj
	for _, o := range s.visibleOutposts(rc) {
		if v := q.Get("name__iexact"); v != "" && !strings.EqualFold(o.name, v) {
			continue
		}
		if v := q.Get("name__icontains"); v != "" && !strings.Contains(strings.ToLower(o.name), strings.ToLower(v)) {
			continue
		}
		if v := q.Get("managed__iexact"); v != "" && !strings.EqualFold(o.managed, v) {
			continue
		}
		list = append(list, o)
	}
	base := baseURL(r)
	paginate(w, r, list, func(o *outpostObj) any { return s.outpostJSON(o, base) })
}

func (s *Server) handleOutpost(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, o := range s.visibleOutposts(rc) {
		if o.uuid == r.PathValue("pk") {
			writeJSON(w, http.StatusOK, s.outpostJSON(o, baseURL(r)))
			return
		}
	}
	writeError(w, http.StatusNotFound, "No Outpost matches the given query.")
}

// outpostConfig is the outpost's config over authentik's defaults.
func outpostConfig(o *outpostObj, base string) map[string]any {
	cfg := map[string]any{
		"log_level":                        "info",
		"authentik_host":                   base + "/",
		"authentik_host_insecure":          false,
		"authentik_host_browser":           "",
		"refresh_interval":                 "minutes=5",
		"object_naming_template":           "ak-outpost-%(name)s",
		"container_image":                  nil,
		"docker_network":                   nil,
		"docker_map_ports":                 true,
		"docker_labels":                    nil,
		"kubernetes_replicas":              1,
		"kubernetes_namespace":             "default",
		"kubernetes_ingress_annotations":   map[string]any{},
		"kubernetes_ingress_secret_name":   "authentik-outpost-tls",
		"kubernetes_ingress_class_name":    nil,
		"kubernetes_httproute_annotations": map[string]any{},
		"kubernetes_httproute_parent_refs": []any{},
		"kubernetes_service_type":          "ClusterIP",
		"kubernetes_disabled_components":   []any{},
		"kubernetes_image_pull_secrets":    []any{},
		"kubernetes_json_patches":          nil,
	}
	for k, v := range o.config {
		cfg[k] = v
	}
	return cfg
}

func (s *Server) outpostJSON(o *outpostObj, base string) map[string]any {
	cfg := outpostConfig(o, base)
	interval := 300
	if v, ok := cfg["refresh_interval"].(string); ok {
		if d, err := timedelta(v); err == nil {
			interval = int(d / time.Second)
		}
	}
	pks := make([]int, 0, len(o.providers))
	objs := make([]any, 0, len(o.providers))
	for _, p := range o.providers {
		pks = append(pks, p.pk)
		objs = append(objs, s.providerJSON(p))
	}
	return map[string]any{
		"pk": o.uuid, "name": o.name, "type": o.otype, "providers": pks, "providers_obj": objs,
		"service_connection": connRef(o.conn), "service_connection_obj": connObj(o.conn), "refresh_interval_s": interval,
		"token_identifier": "ak-outpost-" + o.uuid + "-api", "config": cfg, "managed": nullString(o.managed),
	}
}

// providerJSON is the schema's Provider.
func (s *Server) providerJSON(p *provider) map[string]any {
	out := map[string]any{
		"pk": p.pk, "name": p.name, "authentication_flow": nil, "authorization_flow": p.authorization.uuid,
		"invalidation_flow": nil, "property_mappings": []string{},
		"assigned_application_slug": nil, "assigned_application_name": nil,
		"assigned_backchannel_application_slug": nil, "assigned_backchannel_application_name": nil,
	}
	if p.authentication != nil {
		out["authentication_flow"] = p.authentication.uuid
	}
	if p.invalidation != nil {
		out["invalidation_flow"] = p.invalidation.uuid
	}
	if a, back := s.m.appOf(p); a != nil {
		if back {
			out["assigned_backchannel_application_slug"], out["assigned_backchannel_application_name"] = a.slug, a.name
		} else {
			out["assigned_application_slug"], out["assigned_application_name"] = a.slug, a.name
		}
	}
	switch p.kind {
	case kindProxy:
		out["component"], out["verbose_name"], out["verbose_name_plural"] = "ak-provider-proxy-form", "Proxy Provider", "Proxy Providers"
		out["meta_model_name"] = "authentik_providers_proxy.proxyprovider"
	case kindRADIUS:
		out["component"], out["verbose_name"], out["verbose_name_plural"] = "ak-provider-radius-form", "Radius Provider", "Radius Providers"
		out["meta_model_name"] = "authentik_providers_radius.radiusprovider"
	default:
		out["component"], out["verbose_name"], out["verbose_name_plural"] = "ak-provider-ldap-form", "LDAP Provider", "LDAP Providers"
		out["meta_model_name"] = "authentik_providers_ldap.ldapprovider"
	}
	return out
}

// visibleProviders lists the providers of a kind the request may read,
// bound to an application as authentik's outpost config lists require.
func (s *Server) visibleProviders(rc *reqCtx, kind string) []*provider {
	var pool []*provider
	switch {
	case rc.user != nil && rc.user.superuser():
		pool = s.m.providers
	case rc.outpost != nil:
		pool = rc.outpost.providers
	}
	var out []*provider
	for _, p := range pool {
		if p.kind != kind {
			continue
		}
		if a, back := s.m.appOf(p); a == nil || kind == kindProxy && back {
			continue
		}
		out = append(out, p)
	}
	return out
}

func (s *Server) handleProviderConfigs(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := requestContext(r)
		s.mu.RLock()
		defer s.mu.RUnlock()
		list := s.visibleProviders(rc, kind)
		base := baseURL(r)
		render := func(p *provider) any { return s.ldapConfigJSON(p) }
		switch kind {
		case kindProxy:
			render = func(p *provider) any { return s.proxyConfigJSON(p, base) }
		case kindRADIUS:
			render = func(p *provider) any { return s.radiusConfigJSON(p) }
		}
		paginate(w, r, list, render)
	}
}

func certRef(c *certKeyPair) any {
	if c == nil {
		return nil
	}
	return c.uuid
}

// proxyConfigJSON is the schema's ProxyOutpostConfig.
func (s *Server) proxyConfigJSON(p *provider, base string) map[string]any {
	a, _ := s.m.appOf(p)
	var validity any
	if d, err := timedelta(p.tokenValidity); err == nil {
		validity = d.Seconds()
	}
	return map[string]any{
		"pk": p.pk, "name": p.name, "internal_host": p.internalHost, "external_host": p.externalHost,
		"internal_host_ssl_validation": p.sslValidation, "client_id": p.clientID, "client_secret": p.clientSecret,
		"oidc_configuration": s.oidcConfiguration(p, a, base), "cookie_secret": p.cookieSecret,
		"certificate": certRef(p.certificate), "skip_path_regex": p.skipPathRegex,
		"basic_auth_enabled": p.basicAuth, "basic_auth_password_attribute": p.basicPassAttr,
		"basic_auth_user_attribute": p.basicUserAttr, "mode": p.mode, "cookie_domain": p.cookieDomain,
		"access_token_validity": validity, "intercept_header_auth": p.interceptHeader,
		"scopes_to_request":         []string{"openid", "profile", "email", "entitlements", "ak_proxy"},
		"assigned_application_slug": a.slug, "assigned_application_name": a.name,
	}
}

// ldapConfigJSON is the schema's LDAPOutpostConfig.
func (s *Server) ldapConfigJSON(p *provider) map[string]any {
	a, _ := s.m.appOf(p)
	var unbind any
	if p.invalidation != nil {
		unbind = p.invalidation.slug
	}
	return map[string]any{
		"pk": p.pk, "name": p.name, "base_dn": p.baseDN, "bind_flow_slug": p.authorization.slug,
		"unbind_flow_slug": unbind, "application_slug": a.slug, "certificate": certRef(p.certificate),
		"tls_server_name": p.tlsServerName, "uid_start_number": p.uidStart, "gid_start_number": p.gidStart,
		"search_mode": p.searchMode, "bind_mode": p.bindMode, "mfa_support": p.mfaSupport,
	}
}

// issuer is the provider's OIDC issuer under base.
func issuer(base string, a *application) string {
	return base + "/application/o/" + url.PathEscape(a.slug) + "/"
}

// oidcConfiguration is the schema's OpenIDConnectConfiguration.
func (s *Server) oidcConfiguration(p *provider, a *application, base string) map[string]any {
	alg := "HS256"
	if p.signingKey != nil {
		alg = "RS256"
	}
	slug := url.PathEscape(a.slug)
	return map[string]any{
		"issuer":                                issuer(base, a),
		"authorization_endpoint":                base + "/application/o/authorize/",
		"token_endpoint":                        base + "/application/o/token/",
		"userinfo_endpoint":                     base + "/application/o/userinfo/",
		"end_session_endpoint":                  base + "/application/o/" + slug + "/end-session/",
		"introspection_endpoint":                base + "/application/o/introspect/",
		"jwks_uri":                              base + "/application/o/" + slug + "/jwks/",
		"response_types_supported":              []string{"code", "id_token", "id_token token", "code token", "code id_token", "code id_token token"},
		"id_token_signing_alg_values_supported": []string{alg},
		"subject_types_supported":               []string{"public"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
	}
}

// healthTTL is how long authentik keeps an instance's state after its last
// hello (1.5 times the 10 s hello interval).
const healthTTL = 15 * time.Second

// handleOutpostHealth lists the instances that said hello recently, as
// OutpostHealth objects.
func (s *Server) handleOutpostHealth(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	s.mu.RLock()
	var o *outpostObj
	for _, v := range s.visibleOutposts(rc) {
		if v.uuid == r.PathValue("pk") {
			o = v
		}
	}
	s.mu.RUnlock()
	if o == nil {
		writeError(w, http.StatusNotFound, "No Outpost matches the given query.")
		return
	}
	latest := map[string]Hello{}
	var order []string
	for _, h := range s.Hellos(o.name) {
		if _, seen := latest[h.InstanceUUID]; !seen {
			order = append(order, h.InstanceUUID)
		}
		latest[h.InstanceUUID] = h
	}
	out := []any{}
	for _, id := range order {
		h := latest[id]
		if time.Since(h.Time) > healthTTL {
			continue
		}
		str := func(k string) string { v, _ := h.Args[k].(string); return v }
		b := func(k string) bool { v, _ := h.Args[k].(bool); return v }
		out = append(out, map[string]any{
			"uid": id, "last_seen": h.Time.UTC().Format(time.RFC3339Nano), "version": str("version"),
			"golang_version": str("golangVersion"), "openssl_enabled": b("opensslEnabled"),
			"openssl_version": str("opensslVersion"), "fips_enabled": nil, "version_should": str("version"),
			"version_outdated": false, "build_hash": str("buildHash"), "build_hash_should": str("buildHash"),
			"hostname": str("hostname"),
		})
	}
	writeJSON(w, http.StatusOK, out)
}
