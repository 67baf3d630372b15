package outposttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

// authentik's own REST writes for the objects the test core models, so a
// separate process (an admin's script, a controller under test) can edit
// the core: PATCH, PUT and DELETE on outposts, service connections and
// proxy and LDAP providers, allowed to a user with the change (or delete)
// permission of the model, with the request and response shapes of
// schema.yml. Each write sends the affected outposts the same
// trigger-update message as a Go edit.

const maxWriteBody = 1 << 20

const errNoPermission = "You do not have permission to perform this action."

// readBody decodes a JSON object request body.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var body map[string]any
	dec := json.NewDecoder(io.LimitReader(r.Body, maxWriteBody))
	if err := dec.Decode(&body); err != nil || body == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"non_field_errors": []string{"Invalid data. Expected a dictionary."}})
		return nil, false
	}
	return body, true
}

func fieldError(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{field: []string{msg}})
}

// writeOutpost handles PATCH, PUT and DELETE of /outposts/instances/{uuid}/.
func (s *Server) writeOutpost(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	s.lockModel()
	var o *outpostObj
	for _, x := range s.m.outposts {
		if x.uuid == r.PathValue("uuid") {
			o = x
		}
	}
	perm := "authentik_outposts.change_outpost"
	if r.Method == http.MethodDelete {
		perm = "authentik_outposts.delete_outpost"
	}
	switch {
	case o == nil || !slices.Contains(s.visibleOutposts(rc), o) && !s.m.hasPermission(rc.user, perm, o):
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "No Outpost matches the given query.")
		return
	case !s.m.hasPermission(rc.user, perm, o):
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, errNoPermission)
		return
	}
	name := o.name
	if r.Method == http.MethodDelete {
		s.mu.Unlock()
		s.TriggerUpdate(name)
		if err := s.DeleteOutpost(name); err != nil {
			writeError(w, http.StatusNotFound, "No Outpost matches the given query.")
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		s.mu.Unlock()
		return
	}
	if r.Method == http.MethodPut {
		for _, k := range []string{"name", "type", "providers", "config"} {
			if _, ok := body[k]; !ok {
				s.mu.Unlock()
				fieldError(w, k, "This field is required.")
				return
			}
		}
	}
	next := *o
	for k, v := range body {
		var err string
		switch k {
		case "name":
			n, ok := v.(string)
			if !ok || n == "" {
				err = "Not a valid string."
			}
			next.name = n
		case "type":
			t, _ := v.(string)
			if t != o.otype {
				err = "The test core does not change an outpost's type."
			}
		case "config":
			m, ok := v.(map[string]any)
			if !ok {
				err = "Expected a dictionary of items."
			}
			next.config = cloneMap(m)
		case "managed":
			next.managed, _ = v.(string)
		case "service_connection":
			next.conn = nil
			if id, ok := v.(string); ok && id != "" {
				if next.conn = s.m.connByUUID(id); next.conn == nil {
					err = fmt.Sprintf("Invalid pk %q - object does not exist.", id)
				}
			} else if v != nil && v != "" {
				err = "Incorrect type."
			}
		case "providers":
			l, ok := v.([]any)
			if !ok {
				err = "Expected a list of items."
				break
			}
			next.providers = nil
			for _, x := range l {
				f, _ := x.(float64)
				p := s.m.providerByPK(int(f))
				if p == nil || p.kind != o.otype {
					err = fmt.Sprintf("Invalid pk \"%v\" - object does not exist.", x)
					break
				}
				next.providers = append(next.providers, p)
			}
		default:
			continue // read-only fields are ignored, as DRF does
		}
		if err != "" {
			s.mu.Unlock()
			fieldError(w, k, err)
			return
		}
	}
	oldName := o.name
	*o = next
	out := s.outpostJSON(o, baseURL(r))
	s.mu.Unlock()
	s.TriggerUpdate(oldName)
	if o.name != oldName {
		s.TriggerUpdate(o.name)
	}
	writeJSON(w, http.StatusOK, out)
}

// writeConnection handles PATCH, PUT and DELETE of a service connection.
func (s *Server) writeConnection(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := requestContext(r)
		s.lockModel()
		c := s.m.connByUUID(r.PathValue("uuid"))
		model := kind + "serviceconnection"
		perm := "authentik_outposts.change_" + model
		if r.Method == http.MethodDelete {
			perm = "authentik_outposts.delete_" + model
		}
		switch {
		case c == nil || c.kind != kind || !s.m.hasPermission(rc.user, "authentik_outposts.view_"+model, c):
			s.mu.Unlock()
			writeError(w, http.StatusNotFound, "No Service Connection matches the given query.")
			return
		case !s.m.hasPermission(rc.user, perm, c):
			s.mu.Unlock()
			writeError(w, http.StatusForbidden, errNoPermission)
			return
		}
		var affected []string
		for _, o := range s.m.outposts {
			if o.conn == c {
				affected = append(affected, o.name)
			}
		}
		if r.Method == http.MethodDelete {
			s.m.conns = slices.DeleteFunc(s.m.conns, func(x *serviceConn) bool { return x == c })
			for _, o := range s.m.outposts {
				if o.conn == c {
					o.conn = nil
				}
			}
			s.mu.Unlock()
			for _, n := range affected {
				s.TriggerUpdate(n)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		body, ok := readBody(w, r)
		if !ok {
			s.mu.Unlock()
			return
		}
		next := *c
		for k, v := range body {
			var err string
			switch k {
			case "name":
				next.name, _ = v.(string)
				if next.name == "" {
					err = "This field may not be blank."
				}
			case "local":
				b, ok := v.(bool)
				if !ok {
					err = "Must be a valid boolean."
				}
				next.local = b
			case "url":
				next.url, _ = v.(string)
			case "verify_ssl":
				b, ok := v.(bool)
				if !ok {
					err = "Must be a valid boolean."
				}
				next.verifySSL = b
			case "kubeconfig":
				m, ok := v.(map[string]any)
				if !ok {
					err = "Expected a dictionary of items."
				}
				next.kubeconfig = cloneMap(m)
			case "tls_verification", "tls_authentication":
				var kp *certKeyPair
				if id, ok := v.(string); ok && id != "" {
					if kp = s.m.certByUUID(id); kp == nil {
						err = fmt.Sprintf("Invalid pk %q - object does not exist.", id)
					}
				}
				if k == "tls_verification" {
					next.tlsVerification = kp
				} else {
					next.tlsAuthentication = kp
				}
			}
			if err != "" {
				s.mu.Unlock()
				fieldError(w, k, err)
				return
			}
		}
		*c = next
		out := connJSON(c)
		s.mu.Unlock()
		for _, n := range affected {
			s.TriggerUpdate(n)
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// handleProxyProvider answers GET /providers/proxy/{id}/ with the schema's
// ProxyProvider, to users who may view proxy providers.
func (s *Server) handleProxyProvider(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, _ := strconv.Atoi(r.PathValue("id"))
	p := s.m.providerByPK(id)
	if p == nil || p.kind != kindProxy || !s.m.hasPermission(rc.user, "authentik_providers_proxy.view_proxyprovider", p) {
		writeError(w, http.StatusNotFound, "No Proxy Provider matches the given query.")
		return
	}
	out := s.providerJSON(p)
	var outposts []string
	for _, o := range s.m.outposts {
		if containsPtr(o.providers, p) {
			outposts = append(outposts, o.uuid)
		}
	}
	for k, v := range map[string]any{
		"client_id": p.clientID, "internal_host": p.internalHost, "external_host": p.externalHost,
		"internal_host_ssl_validation": p.sslValidation, "certificate": certRef(p.certificate),
		"skip_path_regex": p.skipPathRegex, "basic_auth_enabled": p.basicAuth,
		"basic_auth_password_attribute": p.basicPassAttr, "basic_auth_user_attribute": p.basicUserAttr,
		"mode": p.mode, "intercept_header_auth": p.interceptHeader, "redirect_uris": []any{},
		"cookie_domain": p.cookieDomain, "jwt_federation_sources": []any{}, "jwt_federation_providers": []any{},
		"access_token_validity": p.tokenValidity, "refresh_token_validity": p.refreshValidity,
		"outpost_set": append([]string{}, outposts...),
	} {
		out[k] = v
	}
	writeJSON(w, http.StatusOK, out)
}

// writeProvider handles PATCH of /providers/proxy/{id}/ and
// /providers/ldap/{id}/ for the scalar attributes the blueprint knows.
func (s *Server) writeProvider(kind string) http.HandlerFunc {
	model := map[string]string{kindProxy: "authentik_providers_proxy.proxyprovider", kindLDAP: "authentik_providers_ldap.ldapprovider"}[kind]
	return func(w http.ResponseWriter, r *http.Request) {
		rc := requestContext(r)
		id, _ := strconv.Atoi(r.PathValue("id"))
		s.mu.RLock()
		p := s.m.providerByPK(id)
		allowed := p != nil && p.kind == kind && s.m.hasPermission(rc.user, "authentik_providers_"+kind+".change_"+kind+"provider", p)
		name := ""
		if p != nil {
			name = p.name
		}
		s.mu.RUnlock()
		if !allowed {
			writeError(w, http.StatusNotFound, "No Provider matches the given query.")
			return
		}
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		attrs := map[string]any{}
		for k, v := range body {
			switch v.(type) {
			case string, bool, float64:
				if modelAppliers[model].allowed[k] && k != "certificate" && k != "signing_key" && k != "name" && !isFlowField(k) {
					if f, ok := v.(float64); ok {
						v = int(f)
					}
					attrs[k] = v
				}
			}
		}
		if err := s.UpdateProvider(name, attrs); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"non_field_errors": []string{err.Error()}})
			return
		}
		s.mu.RLock()
		out := s.providerJSON(p)
		s.mu.RUnlock()
		writeJSON(w, http.StatusOK, out)
	}
}

func isFlowField(k string) bool {
	return k == "authorization_flow" || k == "authentication_flow" || k == "invalidation_flow"
}
