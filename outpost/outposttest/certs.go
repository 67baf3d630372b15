package outposttest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // authentik reports a SHA-1 fingerprint too
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// generateCert fills c with a fresh self-signed certificate and key, as
// authentik's "generate" action does: RSA when the pair signs tokens (JWKS
// needs RS256), ECDSA P-256 otherwise because it is fast.
func generateCert(c *certKeyPair, rsaKey bool) error {
	var pub, priv any
	if rsaKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return fmt.Errorf("generating an RSA key: %w", err)
		}
		pub, priv = &k.PublicKey, k
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("generating an ECDSA key: %w", err)
		}
		pub, priv = &k.PublicKey, k
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return fmt.Errorf("generating a serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: c.name, Organization: []string{"authentik Self-signed Certificate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{c.name, "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return fmt.Errorf("creating the certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encoding the key: %w", err)
	}
	c.certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	c.keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return nil
}

func parseCertPEM(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate: %w", err)
	}
	return cert, nil
}

func parseKeyPEM(s string) (any, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("no PEM key block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported private key encoding")
}

// certJSON is the CertificateKeyPair of the API.
func certJSON(c *certKeyPair) map[string]any {
	out := map[string]any{
		"pk": c.uuid, "name": c.name, "fingerprint_sha256": nil, "fingerprint_sha1": nil,
		"cert_expiry": nil, "cert_subject": nil, "private_key_available": c.keyPEM != "",
		"key_type": nil, "managed": nullString(c.managed),
		"certificate_download_url": "/api/v3/crypto/certificatekeypairs/" + c.uuid + "/view_certificate/?download",
		"private_key_download_url": "/api/v3/crypto/certificatekeypairs/" + c.uuid + "/view_private_key/?download",
	}
	cert, err := parseCertPEM(c.certPEM)
	if err != nil {
		return out
	}
	s256 := sha256.Sum256(cert.Raw)
	s1 := sha1.Sum(cert.Raw) //nolint:gosec
	out["fingerprint_sha256"] = colonHex(s256[:])
	out["fingerprint_sha1"] = colonHex(s1[:])
	out["cert_expiry"] = cert.NotAfter.UTC().Format(time.RFC3339)
	out["cert_subject"] = cert.Subject.String()
	switch cert.PublicKey.(type) {
	case *rsa.PublicKey:
		out["key_type"] = "rsa"
	case *ecdsa.PublicKey:
		out["key_type"] = "ec"
	case ed25519.PublicKey:
		out["key_type"] = "ed25519"
	}
	return out
}

func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	parts := make([]string, 0, len(b))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// timedelta parses authentik's "hours=1;minutes=30" duration strings.
func timedelta(s string) (time.Duration, error) {
	var d time.Duration
	if strings.TrimSpace(s) == "" {
		return 0, errors.New("empty duration")
	}
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return 0, fmt.Errorf("duration %q: want unit=number pairs like hours=1", s)
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		unit := map[string]time.Duration{"microseconds": time.Microsecond, "milliseconds": time.Millisecond,
			"seconds": time.Second, "minutes": time.Minute, "hours": time.Hour, "days": 24 * time.Hour,
			"weeks": 7 * 24 * time.Hour}[strings.TrimSpace(k)]
		if unit == 0 {
			return 0, fmt.Errorf("duration %q: unknown unit %q", s, k)
		}
		d += time.Duration(n * float64(unit))
	}
	return d, nil
}

func (s *Server) handleCert(w http.ResponseWriter, r *http.Request) {
	rc := requestContext(r)
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.m.certByUUID(r.PathValue("kp"))
	if c == nil || !s.canViewCert(rc, c) {
		writeError(w, http.StatusNotFound, "No CertificateKeyPair matches the given query.")
		return
	}
	var data string
	switch r.PathValue("view") {
	case "":
		writeJSON(w, http.StatusOK, certJSON(c))
		return
	case "view_certificate":
		data = c.certPEM
	case "view_private_key":
		data = c.keyPEM
	default:
		writeError(w, http.StatusNotFound, "Not found.")
		return
	}
	if r.URL.Query().Has("download") {
		w.Header().Set("Content-Disposition", `attachment; filename="`+r.PathValue("view")+`.pem"`)
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write([]byte(data))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// canViewCert: an outpost sees the certificates and signing keys of its
// providers; superusers see all.
func (s *Server) canViewCert(rc *reqCtx, c *certKeyPair) bool {
	if rc.user != nil && rc.user.superuser() {
		return true
	}
	if rc.outpost == nil {
		return false
	}
	for _, p := range rc.outpost.providers {
		if p.certificate == c || p.signingKey == c {
			return true
		}
	}
	return false
}
