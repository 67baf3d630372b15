package ldap

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// wireProvider is an LDAPOutpostConfig as the core sends it.
type wireProvider struct {
	PK              int     `json:"pk"`
	Name            string  `json:"name"`
	BaseDN          string  `json:"base_dn"`
	BindFlowSlug    string  `json:"bind_flow_slug"`
	UnbindFlowSlug  *string `json:"unbind_flow_slug"`
	ApplicationSlug string  `json:"application_slug"`
	Certificate     *string `json:"certificate"`
	TLSServerName   string  `json:"tls_server_name"`
	UIDStartNumber  *int    `json:"uid_start_number"`
	GIDStartNumber  *int    `json:"gid_start_number"`
	SearchMode      string  `json:"search_mode"`
	BindMode        string  `json:"bind_mode"`
	MFASupport      *bool   `json:"mfa_support"`
}

// providerConfig is one LDAP provider object, converted and validated.
type providerConfig struct {
	PK            int
	Name          string
	BaseDN        string // as configured, case kept: the base entry's DN
	BindFlow      string
	AppSlug       string
	CertificateID string
	TLSServerName string
	UIDStart      int
	GIDStart      int
	CachedSearch  bool
	CachedBind    bool
	MFA           bool

	// Derived DNs: authentik lower-cases the base for everything below it.
	usersDN, groupsDN, vgroupsDN string
	// Keys (see dnKey) of the base and the three containers.
	baseKey, usersKey, groupsKey, vgroupsKey string
}

// decodeProvider converts one item of /outposts/ldap/.
func decodeProvider(raw json.RawMessage) (*providerConfig, error) {
	var w wireProvider
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("decoding LDAP provider: %w", err)
	}
	p := &providerConfig{
		PK:            w.PK,
		Name:          w.Name,
		BaseDN:        strings.TrimSpace(w.BaseDN),
		BindFlow:      w.BindFlowSlug,
		AppSlug:       w.ApplicationSlug,
		TLSServerName: strings.TrimSpace(w.TLSServerName),
		UIDStart:      2000,
		GIDStart:      4000,
		CachedSearch:  w.SearchMode == "cached",
		CachedBind:    w.BindMode == "cached",
		MFA:           w.MFASupport == nil || *w.MFASupport,
	}
	if w.Certificate != nil {
		p.CertificateID = *w.Certificate
	}
	if w.UIDStartNumber != nil {
		p.UIDStart = *w.UIDStartNumber
	}
	if w.GIDStartNumber != nil {
		p.GIDStart = *w.GIDStartNumber
	}
	if p.BaseDN == "" {
		return nil, fmt.Errorf("LDAP provider %d (%s): base_dn is empty", w.PK, w.Name)
	}
	base, err := parseDN(p.BaseDN)
	if err != nil || len(base.RDNs) == 0 {
		return nil, fmt.Errorf("LDAP provider %d (%s): base_dn %q: %w", w.PK, w.Name, p.BaseDN, errors.Join(err, errors.New("not a DN")))
	}
	if p.BindFlow == "" {
		return nil, fmt.Errorf("LDAP provider %d (%s): no bind flow", w.PK, w.Name)
	}
	lower := strings.ToLower(p.BaseDN)
	p.usersDN = "ou=users," + lower
	p.groupsDN = "ou=groups," + lower
	p.vgroupsDN = "ou=virtual-groups," + lower
	p.baseKey = dnKey(base)
	p.usersKey = "ou=users," + p.baseKey
	p.groupsKey = "ou=groups," + p.baseKey
	p.vgroupsKey = "ou=virtual-groups," + p.baseKey
	return p, nil
}

// userDN is a user's DN under this provider.
func (p *providerConfig) userDN(username string) string {
	return "cn=" + escapeDNValue(username) + "," + p.usersDN
}

func (p *providerConfig) groupDN(name string) string {
	return "cn=" + escapeDNValue(name) + "," + p.groupsDN
}

func (p *providerConfig) vgroupDN(username string) string {
	return "cn=" + escapeDNValue(username) + "," + p.vgroupsDN
}

func (p *providerConfig) userKey(username string) string {
	return rdnKey("cn", username) + "," + p.usersKey
}

func (p *providerConfig) groupKey(name string) string {
	return rdnKey("cn", name) + "," + p.groupsKey
}

func (p *providerConfig) vgroupKey(username string) string {
	return rdnKey("cn", username) + "," + p.vgroupsKey
}
