package radius

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// wireProvider is a RadiusOutpostConfig as the core sends it.
type wireProvider struct {
	PK              int     `json:"pk"`
	Name            string  `json:"name"`
	ApplicationSlug string  `json:"application_slug"`
	AuthFlowSlug    string  `json:"auth_flow_slug"`
	ClientNetworks  *string `json:"client_networks"`
	SharedSecret    string  `json:"shared_secret"`
	MFASupport      *bool   `json:"mfa_support"`
	Certificate     *string `json:"certificate"`
}

// defaultClientNetworks is authentik's default for client_networks: every
// address.
const defaultClientNetworks = "0.0.0.0/0, ::/0"

// providerConfig is one RADIUS provider object, converted and validated.
type providerConfig struct {
	PK       int
	Name     string
	AppSlug  string
	AuthFlow string
	Secret   string
	MFA      bool
	// Networks are the client networks, as written (addresses become
	// single-address prefixes), in the order given.
	Networks      []netip.Prefix
	CertificateID string
}

// decodeProvider converts one item of /outposts/radius/. A provider with
// no usable client network, no shared secret or no flow is an error: it
// could never answer anyone.
func decodeProvider(raw json.RawMessage) (*providerConfig, error) {
	var w wireProvider
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("decoding RADIUS provider: %w", err)
	}
	p := &providerConfig{
		PK: w.PK, Name: w.Name, AppSlug: w.ApplicationSlug, AuthFlow: w.AuthFlowSlug,
		Secret: w.SharedSecret, MFA: w.MFASupport == nil || *w.MFASupport,
	}
	if w.Certificate != nil {
		p.CertificateID = *w.Certificate
	}
	networks := defaultClientNetworks
	if w.ClientNetworks != nil {
		networks = *w.ClientNetworks
	}
	nets, err := parseNetworks(networks)
	if err != nil {
		return nil, fmt.Errorf("RADIUS provider %d (%s): client_networks: %w", w.PK, w.Name, err)
	}
	p.Networks = nets
	switch {
	case p.Secret == "":
		return nil, fmt.Errorf("RADIUS provider %d (%s): shared_secret is empty", w.PK, w.Name)
	case p.AuthFlow == "":
		return nil, fmt.Errorf("RADIUS provider %d (%s): no authentication flow", w.PK, w.Name)
	case p.AppSlug == "":
		return nil, fmt.Errorf("RADIUS provider %d (%s): no application", w.PK, w.Name)
	}
	return p, nil
}

// parseNetworks parses a comma-separated list of CIDRs. A bare address is
// a network of that one address. Any item that is neither is an error:
// authentik logs and skips such an item, which leaves an administrator's
// typo silently refusing (or, in its sort, crashing on) every client.
func parseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if pfx, err := netip.ParsePrefix(item); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		if a, err := netip.ParseAddr(item); err == nil && a.Zone() == "" {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		errs = append(errs, fmt.Errorf("%q is not a CIDR", truncate(item, 64)))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, errors.New("no network given; no client could connect")
	}
	return out, nil
}

// match returns the length of the longest of p's networks holding addr,
// or -1 when none does.
func (c *providerConfig) match(addr netip.Addr) int {
	best := -1
	for _, n := range c.Networks {
		if n.Addr().Is4() != addr.Is4() {
			continue
		}
		if n.Contains(addr) && n.Bits() > best {
			best = n.Bits()
		}
	}
	return best
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
