package outposttest

import (
	"fmt"
	"net/http"
)

// Service connections (the integrations authentik's controllers deploy
// outposts through) and API tokens of users, with the fields of
// schema.yml's DockerServiceConnection, KubernetesServiceConnection and
// Token.

// Service connection kinds.
const (
	connDocker     = "docker"
	connKubernetes = "kubernetes"
)

type serviceConn struct {
	uuid string
	name string
	kind string
	// local means the controller's own engine or cluster.
	local bool
	// docker
	url               string
	tlsVerification   *certKeyPair
	tlsAuthentication *certKeyPair
	// kubernetes
	kubeconfig map[string]any
	verifySSL  bool
}

type apiToken struct {
	identifier  string
	key         string
	user        *user
	description string
}

func applyServiceConn(kind string) func(m *model, existing any, f fields, ident string) (any, error) {
	return func(m *model, existing any, f fields, ident string) (any, error) {
		c, _ := existing.(*serviceConn)
		if c == nil {
			model := "authentik_outposts.dockerserviceconnection"
			if kind == connKubernetes {
				model = "authentik_outposts.kubernetesserviceconnection"
			}
			c = &serviceConn{uuid: m.uuid(model, ident), kind: kind, verifySSL: true, kubeconfig: map[string]any{}}
			m.conns = append(m.conns, c)
		}
		errs := []error{f.str("name", &c.name), f.boolean("local", &c.local)}
		if kind == connDocker {
			errs = append(errs, f.str("url", &c.url), ref(f, "tls_verification", &c.tlsVerification),
				ref(f, "tls_authentication", &c.tlsAuthentication))
		} else {
			errs = append(errs, f.mapping("kubeconfig", &c.kubeconfig), f.boolean("verify_ssl", &c.verifySSL))
		}
		if err := firstErr(errs); err != nil {
			return nil, err
		}
		if c.name == "" {
			return nil, f.errorf("name", "is required")
		}
		if kind == connDocker && !c.local && c.url == "" {
			return nil, f.errorf("url", "is required unless local is true")
		}
		return c, nil
	}
}

func applyAPIToken(m *model, existing any, f fields, ident string) (any, error) {
	t, _ := existing.(*apiToken)
	if t == nil {
		t = &apiToken{}
		m.apiTokens = append(m.apiTokens, t)
	}
	intent := "api"
	errs := []error{f.str("identifier", &t.identifier), f.str("key", &t.key), ref(f, "user", &t.user),
		f.str("description", &t.description), f.str("intent", &intent)}
	if err := firstErr(errs); err != nil {
		return nil, err
	}
	if t.identifier == "" {
		return nil, f.errorf("identifier", "is required")
	}
	if intent != "api" {
		return nil, f.errorf("intent", "only api tokens are supported, not %q", intent)
	}
	if t.user == nil {
		return nil, f.errorf("user", "is required")
	}
	if t.key == "" {
		t.key = m.derive(64, "api token", t.identifier)
	}
	return t, nil
}

func (m *model) apiTokenByKey(key string) *apiToken {
	for _, t := range m.apiTokens {
		if constantTimeEqual(t.key, key) {
			return t
		}
	}
	return nil
}

func (m *model) connByUUID(id string) *serviceConn {
	for _, c := range m.conns {
		if c.uuid == id {
			return c
		}
	}
	return nil
}

func (m *model) connByName(name string) *serviceConn {
	for _, c := range m.conns {
		if c.name == name {
			return c
		}
	}
	return nil
}

// connJSON is the schema's DockerServiceConnection or
// KubernetesServiceConnection.
func connJSON(c *serviceConn) map[string]any {
	out := map[string]any{"pk": c.uuid, "name": c.name, "local": c.local}
	if c.kind == connDocker {
		out["component"] = "ak-service-connection-docker-form"
		out["verbose_name"] = "Docker Service-Connection"
		out["verbose_name_plural"] = "Docker Service-Connections"
		out["meta_model_name"] = "authentik_outposts.dockerserviceconnection"
		out["url"] = c.url
		out["tls_verification"] = certRef(c.tlsVerification)
		out["tls_authentication"] = certRef(c.tlsAuthentication)
	} else {
		out["component"] = "ak-service-connection-kubernetes-form"
		out["verbose_name"] = "Kubernetes Service-Connection"
		out["verbose_name_plural"] = "Kubernetes Service-Connections"
		out["meta_model_name"] = "authentik_outposts.kubernetesserviceconnection"
		out["kubeconfig"] = cloneMap(c.kubeconfig)
		out["verify_ssl"] = c.verifySSL
	}
	return out
}

// handleConnections lists the service connections of one kind. As in
// authentik, the list is filtered by the view permission: a token without
// it sees an empty list.
func (s *Server) handleConnections(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := requestContext(r)
		s.mu.RLock()
		defer s.mu.RUnlock()
		perm := "authentik_outposts.view_" + kind + "serviceconnection"
		var list []*serviceConn
		for _, c := range s.m.conns {
			if c.kind == kind && s.m.hasPermission(rc.user, perm, c) {
				list = append(list, c)
			}
		}
		paginate(w, r, list, func(c *serviceConn) any { return connJSON(c) })
	}
}

// handleViewKey answers /core/tokens/{identifier}/view_key/ for a user who
// may see the key: a superuser, the token's owner, or a holder of
// authentik_core.view_token_key. Outposts' tokens are named
// ak-outpost-<uuid>-api as in authentik. A token the user cannot see is 404.
func (s *Server) handleViewKey(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	id := r.PathValue("identifier")
	s.mu.RLock()
	defer s.mu.RUnlock()
	var key string
	var owner *user
	for _, t := range s.m.apiTokens {
		if t.identifier == id {
			key, owner = t.key, t.user
		}
	}
	for _, o := range s.m.outposts {
		if "ak-outpost-"+o.uuid+"-api" == id {
			key, owner = o.token, o.account
		}
	}
	if key == "" || !(rc.user != nil && rc.user == owner || s.m.hasPermission(rc.user, "authentik_core.view_token_key", nil)) {
		writeError(w, http.StatusNotFound, "No Token matches the given query.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": key})
}

// TokenInfo is an API token of the blueprint (authentik_core.token).
type TokenInfo struct {
	Identifier string
	Key        string
	Username   string
}

// APITokens lists the blueprint's API tokens, in blueprint order.
func (s *Server) APITokens() []TokenInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]TokenInfo, 0, len(s.m.apiTokens))
	for _, t := range s.m.apiTokens {
		out = append(out, TokenInfo{Identifier: t.identifier, Key: t.key, Username: t.user.username})
	}
	return out
}

// SetOutpostServiceConnection makes the named outpost name the named
// service connection ("" for none) and triggers an update.
func (s *Server) SetOutpostServiceConnection(outpostName, connName string) error {
	s.lockModel()
	o := s.m.outpostByName(outpostName)
	var c *serviceConn
	if connName != "" {
		c = s.m.connByName(connName)
	}
	switch {
	case o == nil:
		s.mu.Unlock()
		return fmt.Errorf("outposttest: no outpost named %q", outpostName)
	case connName != "" && c == nil:
		s.mu.Unlock()
		return fmt.Errorf("outposttest: no service connection named %q", connName)
	}
	o.conn = c
	s.mu.Unlock()
	s.TriggerUpdate(outpostName)
	return nil
}

// DeleteOutpost removes the named outpost, its service account and token,
// as deleting it in authentik does.
func (s *Server) DeleteOutpost(name string) error {
	s.lockModel()
	defer s.mu.Unlock()
	for i, o := range s.m.outposts {
		if o.name != name {
			continue
		}
		s.m.outposts = append(s.m.outposts[:i:i], s.m.outposts[i+1:]...)
		for j, u := range s.m.users {
			if u == o.account {
				s.m.users = append(s.m.users[:j:j], s.m.users[j+1:]...)
				break
			}
		}
		return nil
	}
	return fmt.Errorf("outposttest: no outpost named %q", name)
}

func connRef(c *serviceConn) any {
	if c == nil {
		return nil
	}
	return c.uuid
}

func connObj(c *serviceConn) any {
	if c == nil {
		return nil
	}
	return connJSON(c)
}

func (m *model) providerByPK(pk int) *provider {
	for _, p := range m.providers {
		if p.pk == pk {
			return p
		}
	}
	return nil
}
