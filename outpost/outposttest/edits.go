package outposttest

import (
	"fmt"
	"maps"
	"time"
)

// Live edits change the running core the way an administrator would.
// Changes to outposts, providers and certificates send the affected
// outposts a trigger-update message, as authentik's signals do; changes to
// users and groups do not (authentik does not either), so providers that
// cache the directory see them at their next refresh.

// OutpostInfo describes an outpost of the blueprint.
type OutpostInfo struct {
	Name  string
	Type  string
	PK    string
	Token string
}

// Outposts lists the outposts, in blueprint order.
func (s *Server) Outposts() []OutpostInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]OutpostInfo, 0, len(s.m.outposts))
	for _, o := range s.m.outposts {
		out = append(out, OutpostInfo{Name: o.name, Type: o.otype, PK: o.uuid, Token: o.token})
	}
	return out
}

// Token returns the API token of the named outpost, "" if there is none.
// It is derived from the blueprint (and Config.Secret), so a core
// restarted with the same blueprint accepts the same token.
func (s *Server) Token(outpostName string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if o := s.m.outpostByName(outpostName); o != nil {
		return o.token
	}
	return ""
}

// UpdateOutpostConfig merges patch into the named outpost's config (a nil
// value removes a key) and triggers an update.
func (s *Server) UpdateOutpostConfig(outpostName string, patch map[string]any) error {
	s.lockModel()
	o := s.m.outpostByName(outpostName)
	if o == nil {
		s.mu.Unlock()
		return fmt.Errorf("outposttest: no outpost named %q", outpostName)
	}
	cfg := maps.Clone(o.config)
	for k, v := range patch {
		if v == nil {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	o.config = cfg
	s.mu.Unlock()
	s.TriggerUpdate(outpostName)
	return nil
}

// UpdateProvider changes attributes of the named provider, with the
// blueprint's attribute names (external_host, mode, skip_path_regex,
// base_dn, search_mode, ...). References are given by name: certificate
// and signing_key name a certificate key pair, *_flow a flow slug. The
// outposts serving the provider are told to refresh.
func (s *Server) UpdateProvider(name string, attrs map[string]any) error {
	s.lockModel()
	p := s.m.providerByName(name)
	if p == nil {
		s.mu.Unlock()
		return fmt.Errorf("outposttest: no provider named %q", name)
	}
	model := "authentik_providers_proxy.proxyprovider"
	switch p.kind {
	case kindLDAP:
		model = "authentik_providers_ldap.ldapprovider"
	case kindRADIUS:
		model = "authentik_providers_radius.radiusprovider"
	}
	f, err := s.editFields(model, name, attrs)
	if err == nil {
		_, err = modelAppliers[model].apply(s.m, p, f, "")
	}
	if err == nil {
		err = s.m.finish(true)
	}
	outposts := s.outpostsOf(p)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, o := range outposts {
		s.TriggerUpdate(o)
	}
	return nil
}

func (s *Server) outpostsOf(p *provider) []string {
	var out []string
	for _, o := range s.m.outposts {
		if containsPtr(o.providers, p) {
			out = append(out, o.name)
		}
	}
	return out
}

// editFields checks attribute names and resolves references given by
// name. Callers hold s.mu.
func (s *Server) editFields(model, name string, attrs map[string]any) (fields, error) {
	f := fields{entry: &bpEntry{index: -1, model: model, id: name}, v: map[string]any{}}
	for k, v := range attrs {
		if !modelAppliers[model].allowed[k] {
			return f, fmt.Errorf("outposttest: %s: unknown attribute %q", f.entry, k)
		}
		str, isStr := v.(string)
		switch k {
		case "certificate", "signing_key":
			if isStr && str != "" {
				c := s.certByName(str)
				if c == nil {
					return f, fmt.Errorf("outposttest: %s: no certificate key pair named %q", f.entry, str)
				}
				v = c
			} else {
				v = nil
			}
		case "authorization_flow", "authentication_flow", "invalidation_flow":
			if fl := s.m.flowBySlug(str); fl != nil {
				v = fl
			} else {
				return f, fmt.Errorf("outposttest: %s: no flow with slug %q", f.entry, str)
			}
		case "groups":
			names, _ := v.([]string)
			l := []any{}
			for _, n := range names {
				g := s.m.groupByName(n)
				if g == nil {
					return f, fmt.Errorf("outposttest: %s: no group named %q", f.entry, n)
				}
				l = append(l, g)
			}
			v = l
		}
		f.v[k] = v
	}
	return f, nil
}

func (s *Server) certByName(name string) *certKeyPair {
	for _, c := range s.m.certs {
		if c.name == name {
			return c
		}
	}
	return nil
}

// UpdateUser changes attributes of the named user, with the blueprint's
// attribute names (name, email, is_active, attributes, type, path,
// password); groups is a []string of group names.
func (s *Server) UpdateUser(username string, attrs map[string]any) error {
	s.lockModel()
	defer s.mu.Unlock()
	u := s.m.userByName(username)
	if u == nil {
		return fmt.Errorf("outposttest: no user named %q", username)
	}
	f, err := s.editFields("authentik_core.user", username, attrs)
	if err != nil {
		return err
	}
	if _, err := applyUser(s.m, u, f, ""); err != nil {
		return err
	}
	now := time.Now()
	u.updated = now
	if _, ok := attrs["password"]; ok {
		u.pwChanged = now
	}
	return nil
}

// SetUserPassword changes a user's password.
func (s *Server) SetUserPassword(username, password string) error {
	return s.UpdateUser(username, map[string]any{"password": password})
}

// UpdateGroup changes attributes of the named group (name, is_superuser,
// attributes).
func (s *Server) UpdateGroup(name string, attrs map[string]any) error {
	s.lockModel()
	defer s.mu.Unlock()
	g := s.m.groupByName(name)
	if g == nil {
		return fmt.Errorf("outposttest: no group named %q", name)
	}
	f, err := s.editFields("authentik_core.group", name, attrs)
	if err != nil {
		return err
	}
	_, err = applyGroup(s.m, g, f, "")
	return err
}

// AddUserToGroup makes the user a direct member of the group.
func (s *Server) AddUserToGroup(username, groupName string) error {
	return s.membership(username, groupName, true)
}

// RemoveUserFromGroup removes the user's direct membership.
func (s *Server) RemoveUserFromGroup(username, groupName string) error {
	return s.membership(username, groupName, false)
}

func (s *Server) membership(username, groupName string, add bool) error {
	s.lockModel()
	defer s.mu.Unlock()
	u, g := s.m.userByName(username), s.m.groupByName(groupName)
	if u == nil || g == nil {
		return fmt.Errorf("outposttest: no user %q or no group %q", username, groupName)
	}
	var groups []*group
	for _, x := range u.groups {
		if x != g {
			groups = append(groups, x)
		}
	}
	if add {
		groups = append(groups, g)
	}
	u.groups = groups
	u.updated = time.Now()
	return nil
}

// RotateCertificate replaces the named key pair by a freshly generated
// certificate and key (new fingerprint) and triggers an update of the
// outposts whose providers use it.
func (s *Server) RotateCertificate(name string) error {
	s.lockModel()
	c := s.certByName(name)
	if c == nil {
		s.mu.Unlock()
		return fmt.Errorf("outposttest: no certificate key pair named %q", name)
	}
	signing := false
	var outposts []string
	for _, p := range s.m.providers {
		if p.signingKey == c {
			signing = true
		}
		if p.signingKey == c || p.certificate == c {
			outposts = append(outposts, s.outpostsOf(p)...)
		}
	}
	err := generateCert(c, signing)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("outposttest: rotating %q: %w", name, err)
	}
	for _, o := range outposts {
		s.TriggerUpdate(o)
	}
	return nil
}

// CertificatePEM returns the named key pair's certificate and key.
func (s *Server) CertificatePEM(name string) (cert, key string, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.certByName(name)
	if c == nil {
		return "", "", fmt.Errorf("outposttest: no certificate key pair named %q", name)
	}
	return c.certPEM, c.keyPEM, nil
}
