package outposttest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
)

// RadiusAttribute is one RADIUS attribute that check_access returns for a
// RADIUS provider, standing in for what authentik's RADIUS property
// mappings (Python expressions the test core cannot run) would add to
// the packet.
type RadiusAttribute struct {
	// Type is the attribute number, such as 25 (Class) or 26
	// (Vendor-Specific, whose Value then starts with the vendor id).
	Type byte
	// Value is the attribute's value, at most 253 bytes.
	Value []byte
}

// SetRadiusAttributes sets the attributes the access check of the named
// RADIUS provider returns to users who pass it (none by default, as a
// provider without property mappings). It sends no trigger update: as in
// authentik, property mappings are evaluated on every access check.
func (s *Server) SetRadiusAttributes(providerName string, attrs ...RadiusAttribute) error {
	for _, a := range attrs {
		if len(a.Value) > 253 {
			return fmt.Errorf("outposttest: RADIUS attribute %d: %d bytes, at most 253 fit", a.Type, len(a.Value))
		}
	}
	s.lockModel()
	defer s.mu.Unlock()
	p := s.m.providerByName(providerName)
	if p == nil || p.kind != kindRADIUS {
		return fmt.Errorf("outposttest: no RADIUS provider named %q", providerName)
	}
	p.radiusAttrs = slices.Clone(attrs)
	return nil
}

// radiusConfigJSON is the schema's RadiusOutpostConfig.
func (s *Server) radiusConfigJSON(p *provider) map[string]any {
	a, _ := s.m.appOf(p)
	return map[string]any{
		"pk": p.pk, "name": p.name, "application_slug": a.slug, "auth_flow_slug": p.authorization.slug,
		"client_networks": p.clientNetworks, "shared_secret": p.sharedSecret, "mfa_support": p.mfaSupport,
		"certificate": certRef(p.certificate),
	}
}

// handleRadiusCheckAccess answers RadiusCheckAccess for the request's
// user (the session the authentication flow created): the application's
// policy result and, when it passes, the attributes as authentik sends
// them, a base64 Access-Request packet holding them.
func (s *Server) handleRadiusCheckAccess(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, access, ok := s.accessCheck(w, r, kindRADIUS, "No RadiusProvider matches the given query.")
	if !ok {
		return
	}
	out := map[string]any{"access": access}
	passing := access["passing"].(bool)
	if passing {
		out["attributes"] = base64.StdEncoding.EncodeToString(radiusPacket(p.radiusAttrs))
	}
	// Without access the schema's optional, non-nullable attributes is
	// left out. (authentik's serializer sends null there; outposts must
	// take both.)
	writeJSON(w, http.StatusOK, out)
}

// radiusPacket encodes attrs in an Access-Request with a random
// identifier and authenticator, as authentik's pyrad packet is.
func radiusPacket(attrs []RadiusAttribute) []byte {
	b := make([]byte, 20, 20+len(attrs)*8)
	b[0] = 1
	_, _ = rand.Read(b[1:2])
	_, _ = rand.Read(b[4:20])
	for _, a := range attrs {
		b = append(b, a.Type, byte(2+len(a.Value)))
		b = append(b, a.Value...)
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	return b
}
